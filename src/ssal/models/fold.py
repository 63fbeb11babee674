"""Inference copies of the encoders with every BatchNorm folded into a neighbouring layer.

In eval mode a BatchNorm is the per-channel affine map ``s * x + t`` with
``s = gamma / sqrt(running_var + eps)`` and ``t = beta - s * running_mean``. Where it sits right
after a linear layer (or right before a 1x1 one) it can be merged into that layer's weight and
bias, which removes one pass over the activations per BatchNorm and leaves the output equal up
to float round-off (tested to 1e-5 in ``tests/inference/test_inference.py``):

* ST-GCN layer ``gcn -> BN -> ReLU -> conv(9x1) -> BN (-> dropout) (+ conv1x1 -> BN residual)``:
  the first BN goes into the graph convolution (its 1x1 weight rows and its ``(C, V)`` bias map,
  which absorbs ``sum_k b_k colsum(A_k)`` too), the second into the temporal convolution, the
  residual's into the residual convolution. The edge importance is multiplied into the adjacency
  once. Activations stay in channels-last memory order (N, T, V, C): the neighbour aggregation
  is then one batched matmul whose result already is the 1x1 convolution's input layout, so the
  permute-and-copy of the training path disappears, and oneDNN's channels-last convolutions are
  10-30% faster than NCHW ones on this CPU (see benchmarks/RESULTS.md).
* the per-joint input BatchNorm (``data_bn``) becomes a ``(C, V)`` affine map without the
  transposes BatchNorm1d needs.
* AFF image branch: the stem's BN goes into the stem convolution, each block's ``norm2`` into the
  first 1x1 convolution of its channel MLP (a 1x1 convolution has no padding, so a BN before it
  folds exactly). ``norm1`` (before the FFT) and the final ``norm`` (its output is a feature map
  callers read) stay, as per-channel affine maps. Between the FFTs the frequency mask's complex
  MLP runs as complex matrix products on the spectrum as the FFT lays it out
  (:class:`FoldedAFFBlock`): no real/imaginary concatenation and split, no layout copy. The
  inverse transform is two real matrix products (:mod:`ssal.models.dft`) and the MLP's GELU is
  its first convolution's epilogue (:func:`conv_gelu`), except while ``torch.jit`` traces.
* the graph convolutions of narrow ST-GCN layers run as one dense matrix product each
  (:class:`FoldedSTGCNBlock`, :data:`DENSE_GRAPH_CONV_MAX_RATIO`); the temporal convolutions of
  wide ones through a DFT over time (:mod:`ssal.models.spectral`, :data:`SPECTRAL_MIN_CHANNELS`),
  which needs 3-4x fewer FLOPs than the direct convolution.

The folded copy is for inference only: its layers refuse to run in training mode. The original
encoder is not modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import spectral as spectral_conv
from .aff import AFFBackbone, AFFBlock, BlockComplexLinear
from .base import JointBatchNorm
from .dft import irfft2_by_matmul
from .stgcn import STGCNBackbone, STGCNBlock, aggregate

#: A folded graph convolution runs as one dense ``(V*C_in, V*C_out)`` matrix product instead of
#: aggregation then 1x1 convolution when that costs at most this many times the factorised
#: FLOPs (``V*C_out / (K*(V + C_out))``). Measured per block inside CFFN's folded graph branch
#: on the 2-core Xeon of benchmarks/RESULTS.md (V = 16, K = 3, batch 256): ratio 2.7 (3 -> 16
#: and 16 -> 16 channels) 11 vs 15 and 17 vs 21 ms a block, dense faster; ratio 3.6 (16 -> 32,
#: 32 -> 32) 1.5-3 ms a block slower. AimCLR's widths (64+) stay factorised.
DENSE_GRAPH_CONV_MAX_RATIO = 3.0

#: A folded ST-GCN block whose temporal convolution has at least this many input and output
#: channels runs it through a DFT over time (:mod:`ssal.models.spectral`). Measured on whole
#: folded encoders (T = 75, batch 64: predict's CPU default) on the 2-core Xeon of
#: benchmarks/RESULTS.md: CFFN 166 ms direct, 131 ms from 64 channels, 121 ms from 128;
#: AimCLR's ST-GCN 152, 112 and 97 ms.
SPECTRAL_MIN_CHANNELS = 128


def bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """``(s, t)`` with ``bn(x) == s * x + t`` per channel in eval mode."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    s = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.double()
    t = -bn.running_mean.double() * s
    if bn.bias is not None:
        t = t + bn.bias.double()
    return s, t


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` with the BatchNorm that follows it merged in: ``bn(conv(x))``."""
    s, t = bn_affine(bn)
    out = copy.deepcopy(conv)
    w = conv.weight.double() * s.view(-1, *([1] * (conv.weight.ndim - 1)))
    b = t if conv.bias is None else conv.bias.double() * s + t
    out.weight = nn.Parameter(w.to(conv.weight.dtype), requires_grad=False)
    out.bias = nn.Parameter(b.to(conv.weight.dtype), requires_grad=False)
    return out


def fold_bn_conv1x1(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of the 1x1 ``conv`` with the BatchNorm before it merged in: ``conv(bn(x))``."""
    if conv.kernel_size != (1, 1) or conv.groups != 1:
        raise ValueError("only an ungrouped 1x1 convolution absorbs a preceding BatchNorm exactly")
    s, t = bn_affine(bn)
    w = conv.weight.double()[:, :, 0, 0]
    b = w @ t + (0.0 if conv.bias is None else conv.bias.double())
    out = copy.deepcopy(conv)
    out.weight = nn.Parameter((w * s).to(conv.weight.dtype)[:, :, None, None], requires_grad=False)
    out.bias = nn.Parameter(b.to(conv.weight.dtype), requires_grad=False)
    return out


def _add_relu_(y: Tensor, other: Tensor) -> Tensor:
    """``relu(y + other)`` written into ``y`` (one pass with aten's fused kernel when present)."""
    if _FUSED_ADD_RELU is not None and not torch.is_grad_enabled():
        return _FUSED_ADD_RELU(y, other)
    return y.add_(other).relu_()


_FUSED_ADD_RELU: Callable[[Tensor, Tensor], Tensor] | None
try:  # a private aten kernel (PyTorch's mobile optimiser uses it); fall back to two passes
    _FUSED_ADD_RELU = torch.ops.aten._add_relu_.Tensor
except (AttributeError, RuntimeError):  # pragma: no cover - depends on the torch build
    _FUSED_ADD_RELU = None

_CONV_POINTWISE: Callable[..., Tensor] | None
try:  # oneDNN convolution with a fused element-wise epilogue (what inductor's CPU fusion calls)
    _CONV_POINTWISE = torch.ops.mkldnn._convolution_pointwise.default
except (AttributeError, RuntimeError):  # pragma: no cover - depends on the torch build
    _CONV_POINTWISE = None


def _traced() -> bool:
    """True while ``torch.jit`` records the module: the portable operations are used then, so
    that the trace holds no length-specific constants and no private kernels."""
    return torch.jit.is_tracing() or torch.jit.is_scripting()


def conv_gelu(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``gelu(conv(x))`` (exact, erf-based GELU). On the CPU under no-grad it is one oneDNN call
    with GELU as the convolution's epilogue, which saves a pass over the activations (about
    half of the pair's time on the channel-MLP shapes of CFFN); otherwise two calls."""
    if (_CONV_POINTWISE is not None and not torch.is_grad_enabled() and not _traced() and x.device.type == "cpu"
            and x.dtype == torch.float32 and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
            and torch.backends.mkldnn.is_available()):
        return _CONV_POINTWISE(x, conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
                               conv.groups, "gelu", [], "none")
    return F.gelu(conv(x))


class _InferenceOnly(nn.Module):
    def _check_eval(self) -> None:
        if self.training:
            raise RuntimeError(f"{type(self).__name__} has BatchNorm folded in and is for inference only; "
                               "train the original encoder (ssal.inference.load_encoder)")


class JointAffine(_InferenceOnly):
    """The eval-mode :class:`~ssal.models.base.JointBatchNorm` as ``x * scale + shift`` with
    ``(1, C, 1, V)`` buffers (no transposes)."""

    scale: Tensor  # buffers (register_buffer in __init__)
    shift: Tensor

    def __init__(self, norm: JointBatchNorm, channels: int, num_joints: int) -> None:
        super().__init__()
        s, t = bn_affine(norm.bn)  # BatchNorm1d over C*V, index c * V + v
        self.register_buffer("scale", s.float().view(1, channels, 1, num_joints))
        self.register_buffer("shift", t.float().view(1, channels, 1, num_joints))

    def forward(self, x: Tensor) -> Tensor:
        self._check_eval()
        return torch.addcmul(self.shift, x, self.scale)


class FoldedSTGCNBlock(_InferenceOnly):
    """An eval-mode :class:`~ssal.models.stgcn.STGCNBlock` with its BatchNorms folded.

    ``forward(x, adjacency)`` keeps the block's signature; the adjacency (times the edge
    importance) was baked in when the block was folded, so the argument is ignored.

    The graph convolution (aggregation over the K adjacency subsets, then the 1x1 convolution)
    is either kept factorised or multiplied out into one dense ``(V*C_in, V*C_out)`` matrix,
    ``M[(v, c), (w, o)] = sum_k A_k[v, w] W[o, k*C_in + c]``, applied to each frame's
    ``(V*C_in)`` row of the channels-last activations with the bias map added by the same
    ``addmm``. ``dense=None`` picks by :data:`DENSE_GRAPH_CONV_MAX_RATIO`: narrow layers run
    dense, where one large matrix product beats a batch of tiny ones despite more FLOPs.
    """

    agg: Tensor  # buffers (register_buffer in __init__)
    gcn_weight: Tensor
    gcn_bias: Tensor
    dense_weight: Tensor
    dense_bias: Tensor

    def __init__(self, block: STGCNBlock, adjacency: Tensor, dense: bool | None = None,
                 spectral: bool | None = None) -> None:
        super().__init__()
        with torch.no_grad():
            a = adjacency if block.edge_importance is None else adjacency * block.edge_importance
            k, v = a.shape[0], a.shape[2]
            self.num_subsets = k
            # block.tcn is BN -> ReLU -> conv -> BN -> dropout (STGCNBlock.__init__)
            bn1 = cast(nn.BatchNorm2d, block.tcn[0])
            conv_t, bn2 = cast(nn.Conv2d, block.tcn[2]), cast(nn.BatchNorm2d, block.tcn[3])
            s1, t1 = bn_affine(bn1)
            w = block.gcn.conv.weight.double() * s1.view(-1, 1, 1, 1)
            bias = torch.einsum("ko,kw->ow", block.gcn.bias.double(), a.double().sum(dim=1))
            bias = bias * s1[:, None] + t1[:, None]
            dtype = block.gcn.conv.weight.dtype
            # Aggregation matrix for activations in channels-last memory order (N, T, V, C): row
            # w * K + k, column v holds A_k[v, w], so ``agg @ x[n, t]`` (V, C) -> (V*K, C) is the
            # aggregated map laid out as (N, T, V, K*C), i.e. an (N, K*C, T, V) channels-last
            # tensor whose channel k * C + c is what the 1x1 weight expects. No layout copies.
            agg = a.permute(2, 0, 1).reshape(v * k, v)
            c_out, c_in = w.shape[0], w.shape[1] // k
            if dense is None:
                dense = v * c_out <= DENSE_GRAPH_CONV_MAX_RATIO * k * (v + c_out)
            self.dense = dense
            if dense:
                m = torch.einsum("kvw,okc->vcwo", a.double(), w[:, :, 0, 0].view(c_out, k, c_in))
                self.register_buffer("dense_weight", m.reshape(v * c_in, v * c_out).to(dtype).contiguous())
                self.register_buffer("dense_bias", bias.t().reshape(1, v * c_out).to(dtype).contiguous())  # (w, o)
            else:
                self.register_buffer("agg", agg.to(dtype).contiguous())
                self.register_buffer("gcn_weight", w.to(dtype).contiguous(memory_format=torch.channels_last))
                self.register_buffer("gcn_bias", bias.to(dtype).unsqueeze(1).unsqueeze(0))  # (1, C, 1, V)
            # torch's Module.to overloads omit the memory_format keyword it accepts
            self.tconv = fold_conv_bn(conv_t, bn2).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            if spectral is None:
                spectral = min(conv_t.in_channels, conv_t.out_channels) >= SPECTRAL_MIN_CHANNELS
            self.spectral = bool(spectral) and spectral_conv.kernel_applicable(
                self.tconv.weight, self.tconv.stride, self.tconv.padding, self.tconv.groups, self.tconv.dilation)
            self.residual: nn.Module | None
            if block.residual is None or isinstance(block.residual, nn.Identity):
                self.residual = block.residual
            else:
                res = cast(nn.Sequential, block.residual)  # conv1x1 -> BN (STGCNBlock.__init__)
                self.residual = fold_conv_bn(cast(nn.Conv2d, res[0]), cast(nn.BatchNorm2d, res[1])).to(
                    memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, x: Tensor, adjacency: Tensor | None = None, joints: Tensor | None = None,
                last: bool = False) -> Tensor:
        """``x`` (N, C_in, T, V) -> (N, C_out, ceil(T / stride), V); ``adjacency`` is ignored,
        and ``last`` (a training-memory hint of :meth:`STGCNBlock.forward`) too.
        A joint subset (``joints``, PSTL's training view) is refused: the graph is baked in."""
        self._check_eval()
        if joints is not None:
            raise ValueError("a folded ST-GCN block convolves its whole graph; use the unfolded encoder for a joint subset")
        x = x.contiguous(memory_format=torch.channels_last)  # a no-op after the first block
        # y and the convolution outputs are fresh tensors of this block: updating them in place
        # is safe. add + ReLU run as one pass where torch has the fused kernel.
        y = self._graph_conv(x)
        # the DFT form on the CPU only (measured there); a trace must not fix the length
        if self.spectral and y.device.type == "cpu" and not _traced():
            y = spectral_conv.conv_forward(y, self.tconv.weight, self.tconv.bias, self.tconv.stride)
        else:
            y = self.tconv(y)
        if self.residual is not None:
            return _add_relu_(y, self.residual(x))
        return y.relu_()

    def _graph_conv(self, x: Tensor) -> Tensor:
        """``relu(BN(gcn(x)))`` for channels-last ``x`` (N, C_in, T, V); channels-last output."""
        n, c, t, v = x.shape
        if self.dense:
            rows = x.permute(0, 2, 3, 1).reshape(n * t, v * c)  # a view: (N*T, V*C_in)
            y = torch.addmm(self.dense_bias, rows, self.dense_weight).relu_()
            return y.view(n, t, v, -1).permute(0, 3, 1, 2)
        z = aggregate(self.agg, x)  # (N, T, V*K, C), contiguous
        z = z.view(n, t, v, self.num_subsets * c).permute(0, 3, 1, 2)  # (N, K*C, T, V) channels-last
        return _add_relu_(F.conv2d(z, self.gcn_weight), self.gcn_bias)


def _fold_stgcn(backbone: STGCNBackbone, spectral: bool) -> None:
    c, v = 3, backbone.layout.num_joints
    backbone.input_norm = JointAffine(backbone.input_norm, c, v)  # type: ignore[assignment]
    backbone.blocks = nn.ModuleList([FoldedSTGCNBlock(cast(STGCNBlock, b), backbone.A, spectral=None if spectral else False)
                                     for b in backbone.blocks])


def _complex_layer(layer: BlockComplexLinear) -> tuple[Tensor, Tensor]:
    """``(weight (C_out, C_in), bias (C_out, 1))``, complex, of a block-diagonal complex layer."""
    with torch.no_grad():
        return layer.complex_weights()


class FoldedAFFBlock(_InferenceOnly):
    """An eval-mode :class:`~ssal.models.aff.AFFBlock` without copies between its transforms.

    ``n = s1 * x + t1`` (``norm1``); the spectrum ``X = rfft2(n)`` over (T, V), laid out
    (N, C, T, F) as the FFT writes it; the frequency mask ``softshrink(W2 relu(W1 X + b1) + b2)``
    with complex weight matrices applied over the channel axis by complex matrix products (the
    module's own eval path, real-stacked 1x1 convolutions, concatenates the real and imaginary
    parts on the channel axis and splits them again); ``x2 = x + n + irfft2(X * mask)`` with
    the inverse as two real matrix products (:func:`~ssal.models.dft.irfft2_by_matmul`);
    ``x2 + mlp(x2)`` with ``norm2`` folded into the MLP's first 1x1 convolution and its GELU as
    that convolution's epilogue (:func:`conv_gelu`). The block's arithmetic, reassociated.

    While ``torch.jit`` traces (TorchScript export) the inverse is ``torch.fft.irfft2``: the
    matrices depend on the length, which the trace must not fix. Off the CPU too, where the
    matrix form was not measured.
    """

    scale1: Tensor  # buffers (register_buffer in __init__)
    shift1: Tensor
    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor

    def __init__(self, block: AFFBlock) -> None:
        super().__init__()
        s, t = bn_affine(block.norm1)
        self.register_buffer("scale1", s.float().view(1, -1, 1, 1))
        self.register_buffer("shift1", t.float().view(1, -1, 1, 1))
        self.lambd = float(block.mixer.sparsity_threshold)
        for i, layer in ((1, block.mixer.fc1), (2, block.mixer.fc2)):
            w, b = _complex_layer(layer)
            self.register_buffer(f"w{i}", w)
            self.register_buffer(f"b{i}", b)
        # block.mlp is conv1x1 -> GELU -> conv1x1 (AFFBlock.__init__)
        self.fc1 = fold_bn_conv1x1(cast(nn.BatchNorm2d, block.norm2), cast(nn.Conv2d, block.mlp[0]))
        self.fc2 = copy.deepcopy(cast(nn.Conv2d, block.mlp[2]))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, C, T, V) -> the same shape."""
        self._check_eval()
        n, c, t, v = x.shape
        normed = torch.addcmul(self.shift1, x, self.scale1)
        spectrum = torch.fft.rfft2(normed, dim=(2, 3), norm="ortho")  # (N, C, T, V//2+1) complex
        flat = spectrum.reshape(n, c, -1)
        hidden = torch.matmul(self.w1, flat).add_(self.b1)
        torch.view_as_real(hidden).relu_()  # ReLU on the real and imaginary parts
        mask = torch.matmul(self.w2, hidden).add_(self.b2)
        mask = torch.view_as_complex(F.softshrink(torch.view_as_real(mask), self.lambd))
        filtered = (flat * mask).view_as(spectrum)
        if _traced() or x.device.type != "cpu":  # measured on the CPU; a trace must not fix the length
            mixed = torch.fft.irfft2(filtered, s=(t, v), dim=(2, 3), norm="ortho")
        else:
            mixed = irfft2_by_matmul(filtered, t, v)
        x2 = mixed.add_(normed).add_(x)
        return self.fc2(conv_gelu(x2, self.fc1)).add_(x2)


class FoldedAFFTrunk(_InferenceOnly):
    """The AFF blocks (:class:`FoldedAFFBlock`) and the final ``norm`` (an affine map) of an
    eval-mode :class:`~ssal.models.aff.AFFBackbone`: ``(N, C, T, V)`` -> the same shape."""

    scale: Tensor  # buffers (register_buffer in __init__)
    shift: Tensor

    def __init__(self, blocks: nn.Sequential, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([FoldedAFFBlock(cast(AFFBlock, b)) for b in blocks])
        s, t = bn_affine(norm)
        self.register_buffer("scale", s.float().view(1, -1, 1, 1))
        self.register_buffer("shift", t.float().view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        self._check_eval()
        for block in self.blocks:
            x = block(x)
        return torch.addcmul(self.shift, x, self.scale)


def _fold_aff(backbone: AFFBackbone) -> None:
    backbone.input_norm = JointAffine(backbone.input_norm, 3, backbone.layout.num_joints)  # type: ignore[assignment]
    stem_conv, stem_bn, relu = backbone.stem
    backbone.stem = nn.Sequential(fold_conv_bn(cast(nn.Conv2d, stem_conv), cast(nn.BatchNorm2d, stem_bn)), relu)
    backbone.blocks = FoldedAFFTrunk(backbone.blocks, backbone.norm)  # type: ignore[assignment]
    backbone.norm = nn.Identity()  # type: ignore[assignment]


M = TypeVar("M", bound=nn.Module)


def fold_batchnorm(encoder: M, spectral: bool = True) -> M:
    """An eval-mode copy of ``encoder`` (ST-GCN or CFFN) with its BatchNorms folded (see the
    module docstring). Same ``feature_maps`` / ``fuse`` / ``forward`` results up to round-off.
    ``spectral=False`` keeps every temporal convolution direct (for comparisons)."""
    folded = copy.deepcopy(encoder).eval()
    for module in list(folded.modules()):
        if isinstance(module, STGCNBackbone):
            _fold_stgcn(module, spectral)
        elif isinstance(module, AFFBackbone):
            _fold_aff(module)
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded.eval()


__all__ = ["DENSE_GRAPH_CONV_MAX_RATIO", "SPECTRAL_MIN_CHANNELS", "FoldedAFFBlock", "FoldedAFFTrunk", "FoldedSTGCNBlock", "JointAffine", "bn_affine",
           "conv_gelu", "fold_batchnorm", "fold_bn_conv1x1", "fold_conv_bn"]
