"""ST-GCN (Yan et al., AAAI 2018) for any skeleton layout; AimCLR's configuration by default.

The graph is the ST-GCN "spatial" partition of the layout, ``A`` of shape ``(K=3, V, V)``
(:meth:`ssal.skeleton.SkeletonLayout.adjacency`), registered as a buffer. Each layer is

    gcn:  y = sum_k W_k x A_k (+ bias)           (1x1 convolutions, one per partition subset)
    tcn:  BN -> ReLU -> Conv(kernel x 1, stride) -> BN -> Dropout
    out = ReLU(tcn(gcn(x)) + residual(x))

with learnable edge-importance weights multiplying ``A`` element-wise per layer. The default
plan is the encoder AimCLR and CrosSCLR pretrain (``hidden_channels: 16, hidden_dim: 256`` in
their configs, ``net/st_gcn.py``): 10 layers of 16, 16, 16, 16, 32/s2, 32, 32, 64/s2, 64, **256**
channels and global average pooling over T and V to a 256-d feature. Their ``fc`` (256 -> 128)
is what MoCo's projector replaces; :class:`STGCN` with ``out_dim=None`` returns the pooled
feature itself (the evaluated feature; the learner puts AimCLR's projector
``Linear(256, 256)-ReLU-Linear(256, 128)`` on top), with ``out_dim=128`` it keeps the ``fc``
(843,152 parameters on the 16-joint E-Gait layout, as AimCLR's ``Model``).

Graph convolution cost: ST-GCN computes ``conv1x1(x)`` to ``K*C_out`` channels and then
``einsum('nkctv,kvw->nctw')``. The operator is linear in ``x`` on both sides, so
``sum_k W_k x A_k`` can equally be computed by aggregating neighbours first, one matmul
``x @ [A_0 | A_1 | A_2]`` on the ``C_in`` channels, followed by one 1x1 convolution from
``K*C_in`` to ``C_out`` channels. This is what :class:`GraphConv` does: on CPU it is as fast
or faster on every layer of the plan, and 2-4x faster where ``C_in < C_out`` (the first layer
and the widening layers). ST-GCN's per-subset conv bias ``b_k`` becomes the exact term
``sum_k b_k colsum(A_k)``, so the layer equals ST-GCN's, bias included (tested against a slow
reference loop in ``tests/models/test_models.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.schema import STGCNConfig as _G  # the defaults
from ..skeleton import SkeletonLayout
from .base import (
    IN_CHANNELS,
    Encoder,
    JointBatchNorm,
    as_float,
    as_int,
    check_setting,
    global_pool,
)
from .fused import (
    batch_norm_in_place,
    bn_dropout_add_relu,
    bn_momentum,
    bn_relu_conv_backward,
    conv_bn,
    conv_fusable,
    fused_applicable,
    half_keep_bits,
    temporal_conv,
)
from .recompute import AutocastState

#: Width multipliers and strides of the 10-layer ST-GCN plan (times ``base_channels``).
STANDARD_PLAN: tuple[tuple[int, int], ...] = (
    (1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1), (4, 1),
)


def _aggregate_mix(x: Tensor, agg: Tensor, weight: Tensor, k: int) -> Tensor:
    """``conv1x1(x @ [A_0 | .. | A_{K-1}])``: neighbour aggregation, then channel mixing.

    ``agg`` is :func:`aggregation_matrix` of the adjacency. With ``x`` in channels-last memory
    order (N, T, V, C) the aggregation is one batched matmul ``agg @ x[n, t]`` whose result,
    laid out as (N, T, V, K*C), already is the 1x1 convolution's channels-last input with
    channel ``k * C + c``: no layout copy (an NCHW ``x`` is read strided, also correct).
    """
    n, c, t, v = x.shape
    return F.conv2d(aggregate(agg, x).view(n, t, v, k * c).permute(0, 3, 1, 2), weight)


def aggregate(agg: Tensor, x: Tensor) -> Tensor:
    """``agg @ x[n, t]`` for every (n, t): ``x`` (N, C, T, V) -> (N, T, V*K, C), contiguous.

    One ``bmm`` over the N*T frames with ``agg`` broadcast (stride 0): about 2x faster, forward
    and backward, than ``torch.matmul``'s broadcasting path, which transposes both operands.
    """
    n, c, t, v = x.shape
    frames = x.permute(0, 2, 3, 1).reshape(n * t, v, c)  # a view when x is channels-last
    return torch.bmm(agg.expand(n * t, *agg.shape), frames).view(n, t, agg.shape[0], c)


def aggregation_matrix(adjacency: Tensor) -> Tensor:
    """``(K, V, V)`` adjacency -> ``(V*K, V)`` matrix whose row ``w * K + k``, column ``v`` is
    ``A_k[v, w]`` (the neighbour aggregation of :func:`_aggregate_mix`)."""
    k, v = adjacency.shape[0], adjacency.shape[2]
    return adjacency.permute(2, 0, 1).reshape(v * k, v)


class _RecomputedGraphConv(torch.autograd.Function):
    """:func:`_aggregate_mix` that keeps only its inputs for the backward pass.

    The aggregated tensor ``z`` is K (= 3) times the size of the layer input; autograd would
    keep it alive until the backward pass (it is the 1x1 convolution's input). Here the
    backward pass recomputes it from ``x`` (one small matmul), which removes about 40% of the
    activation memory of an ST-GCN training step for a few percent more compute. The
    recomputation runs the same operations on the same inputs, so gradients are identical.
    """

    @staticmethod
    def forward(ctx, x: Tensor, agg: Tensor, weight: Tensor, k: int) -> Tensor:
        ctx.k = k
        ctx.autocast = AutocastState.of(x)  # the backward pass recomputes under the same
        ctx.save_for_backward(x, agg, weight)
        return _aggregate_mix(x, agg, weight, k)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        saved = ctx.saved_tensors
        inputs = [t.detach().requires_grad_(need) for t, need in zip(saved, ctx.needs_input_grad[:3])]
        with torch.enable_grad(), ctx.autocast.restored():
            x, agg, weight = inputs
            y = _aggregate_mix(x, agg, weight, ctx.k)
        wanted = [t for t in inputs if t.requires_grad]
        grads = iter(torch.autograd.grad(y, wanted, grad_out) if wanted else ())
        return (*(next(grads) if t.requires_grad else None for t in inputs), None)


class GraphConv(nn.Module):
    """Spatial graph convolution ``y = sum_k W_k x A_k + sum_k b_k colsum(A_k)``.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        num_subsets: K, the number of partition subsets of the adjacency.
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int) -> None:
        super().__init__()
        self.num_subsets = num_subsets
        # Input channel index k * C_in + i holds neighbour subset k of input channel i.
        self.conv = nn.Conv2d(num_subsets * in_channels, out_channels, kernel_size=1, bias=False)
        self.bias = nn.Parameter(torch.zeros(num_subsets, out_channels))
        bound = 1.0 / (in_channels ** 0.5)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """``x`` (N, C_in, T, V), ``adjacency`` (K, V, V) -> (N, C_out, T, V)."""
        k = adjacency.shape[0]
        agg, bias = self.operands(adjacency)
        weight = self.conv.weight
        # Under torch.compile the compiler plans the saved tensors itself (and cannot trace the
        # torch.autograd.grad of the recomputing backward): the plain ops there.
        if (torch.is_grad_enabled() and not torch.compiler.is_compiling()
                and (x.requires_grad or agg.requires_grad or weight.requires_grad)):
            y = _RecomputedGraphConv.apply(x, agg, weight, k)
        else:
            y = _aggregate_mix(x, agg, weight, k)
        return y + bias.unsqueeze(1)

    def operands(self, adjacency: Tensor) -> tuple[Tensor, Tensor]:
        """``(agg, bias)`` for an adjacency ``(K, V, V)``: the aggregation matrix
        (:func:`aggregation_matrix`) and the per-joint bias ``sum_k b_k colsum(A_k)`` ``(C_out, V)``."""
        return aggregation_matrix(adjacency), torch.einsum("ko,kw->ow", self.bias, adjacency.sum(dim=1))

    def subset_weights(self) -> Tensor:
        """The per-subset 1x1 weights ``W_k`` as ``(K, C_out, C_in)`` (for inspection/tests)."""
        w = self.conv.weight[:, :, 0, 0]
        return w.view(w.shape[0], self.num_subsets, -1).permute(1, 0, 2)


class _GraphBNReLUConv(torch.autograd.Function):
    """``tconv(relu(bn(gcn(x))))`` as one node that keeps only the layer input ``x``.

    :class:`_RecomputedGraphConv` already recomputes the graph convolution in the backward
    pass; the graph convolution's output (the BatchNorm input, a full-size map) is then needed
    by nothing else, so here it is not kept either: the backward pass recomputes it once and
    uses it for both backward passes (BN -> ReLU -> conv, :func:`~ssal.models.fused.bn_relu_conv_backward`,
    then the graph convolution). One saved full-size tensor less per layer, no extra FLOPs.
    """

    @staticmethod
    def forward(ctx, x: Tensor, agg: Tensor, weight: Tensor, bias: Tensor, k: int, bn_weight: Tensor,
                bn_bias: Tensor, conv_weight: Tensor, conv_bias: Tensor | None, running_mean: Tensor,
                running_var: Tensor, momentum: float, eps: float, stride: tuple[int, int],
                padding: tuple[int, int]) -> Tensor:
        # the sum, BatchNorm and ReLU in place on the convolution's fresh output
        g = _aggregate_mix(x, agg, weight, k).add_(bias.unsqueeze(1))
        mean, invstd = batch_norm_in_place(g, bn_weight, bn_bias, running_mean, running_var, momentum, eps)
        y = temporal_conv(g.relu_(), conv_weight, conv_bias, stride, padding)
        ctx.save_for_backward(x, agg, weight, bias, bn_weight, bn_bias, conv_weight, running_mean, running_var,
                              mean, invstd)
        ctx.k, ctx.eps, ctx.stride, ctx.padding = k, eps, stride, padding
        ctx.has_conv_bias = conv_bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, agg, weight, bias, bn_weight, bn_bias, conv_weight, running_mean, running_var, mean, invstd = \
            ctx.saved_tensors
        needs = ctx.needs_input_grad
        leaves = [t.detach().requires_grad_(n) for t, n in zip((x, agg, weight), needs[:3])]
        with torch.enable_grad():
            mixed = _aggregate_mix(leaves[0], leaves[1], leaves[2], ctx.k)
        g = mixed.detach().add_(bias.unsqueeze(1))  # nothing reads mixed's value again
        want_g = any(needs[:4])
        grad_g, grad_bw, grad_bb, grad_cw, grad_cb = bn_relu_conv_backward(
            grad_y, g, bn_weight, bn_bias, conv_weight, running_mean, running_var, mean, invstd,
            ctx.eps, ctx.stride, ctx.padding, ctx.has_conv_bias, (want_g, needs[5], needs[6], needs[7], needs[8]))
        del g
        wanted = [t for t in leaves if t.requires_grad]
        grads = iter(torch.autograd.grad(mixed, wanted, grad_g) if wanted and grad_g is not None else ())
        first = [next(grads) if t.requires_grad and grad_g is not None else None for t in leaves]
        grad_bias = sum_over_batch_and_time(grad_g) if needs[3] and grad_g is not None else None
        return (*first, grad_bias, None, grad_bw, grad_bb, grad_cw, grad_cb, None, None, None, None, None, None)


def sum_over_batch_and_time(grad: Tensor) -> Tensor:
    """``grad.sum((0, 2))`` for ``grad`` (N, C, T, V): the gradient of a per-(channel, joint) bias.

    On channels-last storage this is a sum over the rows of an ``(N*T, V*C)`` matrix, 10-50x
    faster on CPU than the strided two-axis reduction autograd runs for a broadcast add.
    """
    n, c, t, v = grad.shape
    if grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous():
        return grad.permute(0, 2, 3, 1).reshape(n * t, v * c).sum(0).view(v, c).t()
    return grad.sum((0, 2))


def graph_bn_relu_conv(x: Tensor, adjacency: Tensor, gcn: GraphConv, bn: nn.BatchNorm2d, conv: nn.Conv2d) -> Tensor:
    """``conv(relu(bn(gcn(x, adjacency))))`` for a training-mode ``bn``, keeping only ``x`` for
    the backward pass (:class:`_GraphBNReLUConv`); the modules themselves where
    :func:`~ssal.models.fused.fused_applicable` says no."""
    if not (fused_applicable(x, bn) and conv_fusable(conv)):
        return conv(F.relu(bn(gcn(x, adjacency))))
    agg, bias = gcn.operands(adjacency)
    return _GraphBNReLUConv.apply(x, agg, gcn.conv.weight, bias, adjacency.shape[0], bn.weight, bn.bias,
                                  conv.weight, conv.bias, bn.running_mean, bn.running_var, bn_momentum(bn),
                                  bn.eps, tuple(conv.stride), tuple(conv.padding))


def _half_keep_mask(x: Tensor) -> Tensor:
    """A Bernoulli(0.5) keep mask shaped and laid out like ``x``: 8 mask entries per random byte.

    Each bit of a uniform random byte is an independent fair coin, so this is the distribution
    of ``rand_like(x) >= 0.5`` at an eighth of the generator calls (the mask of AimCLR's
    dropout 0.5 costs ~6% of a training step when drawn one float per entry).
    """
    if torch.compiler.is_compiling():  # the compiler cannot trace random_ on bytes: one float per entry
        return torch.rand_like(x) >= 0.5
    n = x.numel()
    bits = half_keep_bits(n, x.device)
    shifts = torch.arange(8, dtype=torch.uint8, device=x.device)
    flat = (bits.unsqueeze(1) >> shifts).bitwise_and_(1).view(-1)[:n].bool()
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        nb, c, t, v = x.shape
        return flat.view(nb, t, v, c).permute(0, 3, 1, 2)
    return flat.view(x.shape)


class MaskDropout(nn.Module):
    """Inverted dropout with its mask drawn by ``torch.rand`` (same distribution as
    ``nn.Dropout``; on CPU about 2.5x faster than its ``bernoulli_``, which costs ~10% of an
    ST-GCN training step), or by random bits where ``p = 0.5`` (:func:`_half_keep_mask`, 4x
    faster again). The mask has ``x``'s memory layout (channels-last stays channels-last)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 0.5 and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            keep = _half_keep_mask(x)
        else:
            keep = torch.rand_like(x) >= self.p
        return x.mul(keep).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class STGCNBlock(nn.Module):
    """One ST-GCN layer: graph convolution, temporal convolution, residual, ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_subsets: int,
        num_joints: int,
        temporal_kernel: int = _G.temporal_kernel,
        stride: int = 1,
        dropout: float = 0.0,
        residual: bool = True,
        edge_importance: bool = _G.edge_importance,
    ) -> None:
        super().__init__()
        pad = (temporal_kernel - 1) // 2
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            MaskDropout(dropout) if dropout > 0 else nn.Identity(),
        )
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.edge_importance = (
            nn.Parameter(torch.ones(num_subsets, num_joints, num_joints)) if edge_importance else None
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, adjacency: Tensor, joints: Tensor | None = None, last: bool = False) -> Tensor:
        """``x`` (N, C_in, T, V) -> (N, C_out, ceil(T / stride), V).

        ``joints``: the sub-graph of these joints only (``x`` holds ``len(joints)`` joints; the
        weighted adjacency is restricted to their rows and columns, PSTL's ``st_gcn.forward``).
        ``last``: no further layer keeps the output for its backward pass (training memory only:
        the fused tail then keeps a byte mask of the ReLU instead of the output)."""
        if self.edge_importance is not None:
            adjacency = adjacency * self.edge_importance
        if joints is not None:
            adjacency = adjacency[:, joints][:, :, joints]
        bn1, _, conv, bn2, drop = self.tcn
        if not self.training:
            y = self.tcn(self.gcn(x, adjacency))
            return self.relu(y + self.residual(x) if self.residual is not None else y)
        # Training: graph conv -> BN -> ReLU -> conv as one node that keeps only the layer input,
        # then BN -> dropout -> + residual -> ReLU as one node (or the modules where it does not apply).
        y = graph_bn_relu_conv(x, adjacency, self.gcn, cast(nn.BatchNorm2d, bn1), cast(nn.Conv2d, conv))
        res = self._residual_training(x)
        p = drop.p if isinstance(drop, MaskDropout) else 0.0
        out = bn_dropout_add_relu(y, cast(nn.BatchNorm2d, bn2), p, res, keep_output=not last)
        if out is not None:
            return out
        y = drop(bn2(y))
        return self.relu(y + res if res is not None else y)

    def _residual_training(self, x: Tensor) -> Tensor | None:
        """The residual branch in training: conv -> BN as a node that keeps only ``x``."""
        if isinstance(self.residual, nn.Sequential):
            conv, bn = self.residual
            return conv_bn(x, cast(nn.Conv2d, conv), cast(nn.BatchNorm2d, bn))
        return self.residual(x) if self.residual is not None else None


#: AimCLR's ``hidden_dim``: the width of the last layer, i.e. of the pooled feature.
AIMCLR_HIDDEN_DIM = 256


def layer_plan(
    base_channels: int = _G.base_channels,
    num_layers: int | None = None,
    channels: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    hidden_dim: int | None = None,
) -> list[tuple[int, int]]:
    """The ``(channels, stride)`` of each layer.

    * ``channels`` given: those widths; ``strides`` default to 2 wherever the width grows
      (after the first layer) and 1 elsewhere, as in ST-GCN's plan. ``hidden_dim``, if given,
      must equal the last entry of ``channels``.
    * otherwise: the 10-layer ST-GCN plan scaled by ``base_channels``
      (:data:`STANDARD_PLAN`), truncated to its first ``num_layers`` layers if given; the last
      layer has ``hidden_dim`` channels. By default (None) the full 10-layer plan ends at
      AimCLR's 256 (:data:`AIMCLR_HIDDEN_DIM`) and a truncated plan keeps its scaled width;
      ``hidden_dim = 4 * base_channels`` gives the plain scaled 10-layer plan.
    """
    if channels is not None:
        check_setting(
            hidden_dim is None or (isinstance(channels, (list, tuple)) and len(channels) > 0
                                   and hidden_dim == channels[-1]),
            "hidden_dim",
            f"{hidden_dim!r} differs from the last entry of channels {channels!r} (set one of them)",
        )
        check_setting(
            isinstance(channels, (list, tuple)) and len(channels) > 0,
            "channels", f"expected a non-empty list of integers, got {channels!r}",
        )
        widths = [as_int(c, "channels") for c in channels]
        if strides is None:
            steps = [1] + [2 if b > a else 1 for a, b in zip(widths, widths[1:])]
        else:
            check_setting(
                isinstance(strides, (list, tuple)) and len(strides) == len(widths),
                "strides", f"expected {len(widths)} integers (one per layer), got {strides!r}",
            )
            steps = [as_int(s, "strides") for s in strides]
        return list(zip(widths, steps))
    check_setting(strides is None, "strides", "only valid together with 'channels'")
    base = as_int(base_channels, "base_channels")
    n = len(STANDARD_PLAN) if num_layers is None else as_int(num_layers, "num_layers")
    check_setting(
        n <= len(STANDARD_PLAN), "num_layers",
        f"at most {len(STANDARD_PLAN)} (or give 'channels'), got {n}",
    )
    plan = [(base * mult, stride) for mult, stride in STANDARD_PLAN[:n]]
    if hidden_dim is not None:
        plan[-1] = (as_int(hidden_dim, "hidden_dim"), plan[-1][1])
    elif n == len(STANDARD_PLAN):
        plan[-1] = (AIMCLR_HIDDEN_DIM, plan[-1][1])
    return plan


class STGCNBackbone(nn.Module):
    """ST-GCN layers without pooling or ``fc``: ``(N, 3, T, V) -> (N, C_last, T', V)``.

    Args:
        layout: skeleton layout; its adjacency ``(K, V, V)`` is stored as buffer ``A``.
        base_channels, num_layers, channels, strides, hidden_dim: the layer plan
            (:func:`layer_plan`; default AimCLR's 16..64, 256; ``hidden_dim`` None = 256).
        temporal_kernel: temporal kernel size (odd).
        dropout: dropout of every layer but the first (AimCLR's practice).
        edge_importance: learn a per-layer multiplicative weight on each edge of ``A``.
    """

    A: Tensor  # buffer (register_buffer in __init__)

    def __init__(
        self,
        layout: SkeletonLayout,
        base_channels: int = _G.base_channels,
        num_layers: int | None = _G.num_layers,
        channels: Sequence[int] | None = _G.channels,
        strides: Sequence[int] | None = _G.strides,
        temporal_kernel: int = _G.temporal_kernel,
        dropout: float = _G.dropout,
        edge_importance: bool = _G.edge_importance,
        hidden_dim: int | None = _G.hidden_dim,
    ) -> None:
        super().__init__()
        kernel = as_int(temporal_kernel, "temporal_kernel")
        check_setting(kernel % 2 == 1, "temporal_kernel", f"must be odd, got {kernel}")
        drop = as_float(dropout, "dropout", 0.0, 1.0)
        check_setting(isinstance(edge_importance, bool), "edge_importance",
                      f"expected true or false, got {edge_importance!r}")
        plan = layer_plan(base_channels, num_layers, channels, strides, hidden_dim)
        adjacency = torch.from_numpy(layout.adjacency())
        self.register_buffer("A", adjacency)
        num_subsets, v = adjacency.shape[0], layout.num_joints
        self.layout = layout
        self.input_norm = JointBatchNorm(IN_CHANNELS, v)
        blocks = []
        c_in = IN_CHANNELS
        for i, (c_out, stride) in enumerate(plan):
            blocks.append(
                STGCNBlock(
                    c_in, c_out, num_subsets, v, kernel, stride,
                    dropout=0.0 if i == 0 else drop,
                    residual=i > 0,
                    edge_importance=edge_importance,
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = c_in

    def forward(self, x: Tensor, joints: Tensor | None = None) -> Tensor:
        """``x`` (N, 3, T, V) -> last feature map (N, C_last, T', V).

        ``joints`` (sorted joint indices): after the input normalisation only these joints are
        kept and every layer convolves over their sub-graph, so the map has ``len(joints)``
        joints (PSTL's ``ignore_joint``, ``module/gcn/st_gcn.py``)."""
        # Activations run channels-last (N, T, V, C in memory): the graph aggregation then needs
        # no layout copy and oneDNN's convolutions are 10-50% faster on this layout.
        x = self.input_norm(x)
        if joints is not None:
            x = x[:, :, :, joints]
        x = x.contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(self.blocks):
            x = block(x, self.A, joints, last=i == len(self.blocks) - 1)
        return x


class STGCN(Encoder):
    """ST-GCN encoder: backbone, global average pooling over T and V, optional ``fc``.

    Settings (all keyword arguments of :class:`STGCNBackbone`) plus ``out_dim``: ``None``
    (no ``fc``: the output is the pooled ``C_last``-d feature, AimCLR's evaluated feature) or
    the size of an ``fc`` layer on it. ``feature_maps`` returns ``[map]`` with ``map`` of shape
    ``(N, C_last, T', V)`` (``(N, 256, ceil(ceil(T/2)/2), V)`` for the default plan).
    """

    def __init__(
        self,
        layout: SkeletonLayout,
        base_channels: int = _G.base_channels,
        num_layers: int | None = _G.num_layers,
        channels: Sequence[int] | None = _G.channels,
        strides: Sequence[int] | None = _G.strides,
        temporal_kernel: int = _G.temporal_kernel,
        dropout: float = _G.dropout,
        edge_importance: bool = _G.edge_importance,
        out_dim: int | None = _G.out_dim,
        hidden_dim: int | None = _G.hidden_dim,
    ) -> None:
        super().__init__()
        self._settings: dict[str, Any] = {
            "base_channels": base_channels, "num_layers": num_layers,
            "channels": None if channels is None else list(channels),
            "strides": None if strides is None else list(strides),
            "temporal_kernel": temporal_kernel, "dropout": dropout,
            "edge_importance": edge_importance, "out_dim": out_dim, "hidden_dim": hidden_dim,
        }
        self.layout = layout
        self.backbone = STGCNBackbone(
            layout, base_channels, num_layers, channels, strides, temporal_kernel, dropout,
            edge_importance, hidden_dim,
        )
        self.fc: nn.Module
        if out_dim is None:
            self.out_dim = self.backbone.out_channels
            self.fc = nn.Identity()
        else:
            self.out_dim = as_int(out_dim, "out_dim")
            self.fc = nn.Linear(self.backbone.out_channels, self.out_dim)

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """``[last map (N, C_last, T', V)]``."""
        self.check_input(x)
        return [self.backbone(x)]

    def joint_subset_maps(self, x: Tensor, joints: Tensor) -> list[Tensor]:
        """:meth:`feature_maps` of the sub-graph of ``joints`` (sorted indices; the other joints
        are removed after the input normalisation): ``[(N, C_last, T', len(joints))]``."""
        self.check_input(x)
        return [self.backbone(x, joints)]

    def fuse(self, maps: list[Tensor]) -> Tensor:
        """Global average pooling over T and V, then ``fc`` (if any): ``(N, out_dim)``."""
        if len(maps) != 1:
            raise ValueError(f"STGCN.fuse expects 1 feature map, got {len(maps)}")
        return self.fc(global_pool(maps[0]))
