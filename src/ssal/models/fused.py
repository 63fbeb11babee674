"""Memory-lean training ops: parts of an ST-GCN layer as single autograd nodes.

* :func:`bn_relu_conv`: ``conv(relu(bn(x)))``. Run as three modules, autograd keeps two
  activations of the layer's full size until the backward pass: the BatchNorm input (for BN's
  backward) and the ReLU output (for ReLU's backward and as the convolution's input). The node
  keeps only the BatchNorm input and its batch statistics; the backward pass recomputes
  ``relu(bn(x))`` from them (one element-wise pass, no convolution is recomputed) and then
  calls the same ATen backward kernels autograd would call (``convolution_backward``,
  ``threshold_backward``, ``native_batch_norm_backward``).
* :func:`bn_dropout_add_relu`: the layer's tail ``relu(dropout(bn(y)) + residual)``, with the
  dropout mask kept as random bits and the element-wise work done in place.
* :func:`conv_bn`: the residual branch ``bn(conv1x1(x))``, recomputing the convolution in the
  backward pass instead of keeping its output.
* :func:`batch_norm_in_place`: training-mode BatchNorm written over a fresh tensor (the
  convolutions' outputs in :func:`conv_bn` and in ST-GCN's graph node).

Values and gradients equal the modules' up to floating-point reassociation (tests). The nodes
are used only where they are exactly the modules' semantics: training-mode BatchNorm with batch
statistics, float32, no autocast (under bf16 autocast the modules' own path runs, as it also
does inside ``torch.compile``). Without grad (MoCo's key encoder) they run their forward only.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import spectral


def fused_applicable(x: Tensor, bn: nn.BatchNorm2d) -> bool:
    """Whether the nodes of this module may replace the modules around ``bn`` for this call:
    training-mode ``bn`` with batch statistics, float32 ``x``, no autocast, not compiling.

    Grad may be off (MoCo's key encoder: training-mode BatchNorm, no backward pass): the nodes
    then run their forward only, which holds fewer full-size temporaries than the modules."""
    if not (bn.training and bn.track_running_stats and bn.affine and bn.running_mean is not None):
        return False
    if torch.is_autocast_enabled(x.device.type):
        return False
    if torch.compiler.is_compiling():
        return False
    return x.dtype == torch.float32


def _bn_scale_shift(mean: Tensor, invstd: Tensor, weight: Tensor, bias: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """``(scale, shift)`` of training-mode BatchNorm as ``x * scale + shift``, shaped to
    broadcast over a ``dim``-D map (one expression for the forward passes and the recomputing
    backward passes, so both round alike)."""
    shape = (1, -1) + (1,) * (dim - 2)
    return (invstd * weight).view(shape), (bias - mean * invstd * weight).view(shape)


def batch_norm_in_place(x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                        momentum: float, eps: float) -> tuple[Tensor, Tensor]:
    """Training-mode BatchNorm of ``x`` written over ``x``; returns ``(mean, invstd)``, the batch
    statistics ``native_batch_norm_backward`` takes. The running statistics are updated as
    ``torch.native_batch_norm`` updates them (the same kernel, bitwise).

    For a fresh tensor that nothing keeps (a convolution's output): no second full-size tensor,
    so one map less at the step's peak and one pass less. On the 256-channel map of AimCLR's last
    layer (40 MB; under ``run.allocator: bounded`` every new one is page-faulted) a new output
    cost about as much as the normalisation itself."""
    mean, var = torch.batch_norm_update_stats(x, running_mean, running_var, momentum)
    invstd = torch.rsqrt(var + eps)
    scale, shift = _bn_scale_shift(mean, invstd, weight, bias, x.dim())
    torch.addcmul(shift, x, scale, out=x)
    return mean, invstd


class _BNReLUConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, bn_weight: Tensor, bn_bias: Tensor, conv_weight: Tensor,
                conv_bias: Tensor | None, running_mean: Tensor, running_var: Tensor,
                momentum: float, eps: float, stride: tuple[int, int], padding: tuple[int, int]) -> Tensor:
        out, mean, invstd = torch.native_batch_norm(x, bn_weight, bn_bias, running_mean, running_var,
                                                    True, momentum, eps)
        y = temporal_conv(out.relu_(), conv_weight, conv_bias, stride, padding)
        ctx.save_for_backward(x, bn_weight, bn_bias, conv_weight, running_mean, running_var, mean, invstd)
        ctx.has_conv_bias = conv_bias is not None
        ctx.eps, ctx.stride, ctx.padding = eps, stride, padding
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, bn_weight, bn_bias, conv_weight, running_mean, running_var, mean, invstd = ctx.saved_tensors
        grads = bn_relu_conv_backward(grad_y, x, bn_weight, bn_bias, conv_weight, running_mean, running_var,
                                      mean, invstd, ctx.eps, ctx.stride, ctx.padding, ctx.has_conv_bias,
                                      ctx.needs_input_grad[:5])
        return (*grads, None, None, None, None, None, None)


def bn_relu_conv_backward(grad_y: Tensor, x: Tensor, bn_weight: Tensor, bn_bias: Tensor, conv_weight: Tensor,
                          running_mean: Tensor, running_var: Tensor, mean: Tensor, invstd: Tensor, eps: float,
                          stride: tuple[int, int], padding: tuple[int, int], has_conv_bias: bool,
                          needs: tuple[bool, ...]) -> tuple[Tensor | None, ...]:
    """The backward pass of ``conv(relu(bn(x)))`` from the BN input ``x`` and its batch
    statistics: ``(grad_x, grad_bn_weight, grad_bn_bias, grad_conv_weight, grad_conv_bias)``,
    each ``None`` where ``needs`` (the five flags, in that order) says it is not wanted."""
    scale, shift = _bn_scale_shift(mean, invstd, bn_weight, bn_bias, x.dim())
    r = torch.addcmul(shift, x, scale).relu_()
    wanted = (needs[0] or needs[1] or needs[2], needs[3], has_conv_bias and needs[4])
    if spectral.train_applicable(r, conv_weight, stride, padding):
        grad_r, grad_cw, grad_cb = spectral.conv_backward(grad_y, r, conv_weight, stride, has_conv_bias, wanted)
    else:
        grad_r, grad_cw, grad_cb = torch.ops.aten.convolution_backward(
            grad_y, r, conv_weight, [conv_weight.shape[0]] if has_conv_bias else None,
            list(stride), list(padding), [1, 1], False, [0, 0], 1, list(wanted))
    if grad_r is None:
        return None, None, None, grad_cw, grad_cb
    # the ReLU's backward in place: grad_r is this function's own fresh tensor
    grad_bn_out = torch.ops.aten.threshold_backward.grad_input(grad_r, r, 0, grad_input=grad_r)
    del r
    grad_x, grad_bw, grad_bb = torch.ops.aten.native_batch_norm_backward(
        grad_bn_out, x, bn_weight, running_mean, running_var, mean, invstd, True, eps,
        [needs[0], needs[1], needs[2]])
    return grad_x, grad_bw, grad_bb, grad_cw, grad_cb


def temporal_conv(r: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                  padding: tuple[int, int]) -> Tensor:
    """``F.conv2d(r, weight, bias, stride, padding)`` inside a fused node: through a DFT over time
    (:func:`ssal.models.spectral.conv_forward`) where :func:`~ssal.models.spectral.train_applicable`
    says it is faster, else the direct convolution. With or without grad: MoCo's key encoder runs
    its forward here too (chunked, the DFT form makes no full-size buffer beyond its output)."""
    if spectral.train_applicable(r, weight, stride, padding):
        return spectral.conv_forward(r, weight, bias, stride)
    return F.conv2d(r, weight, bias, stride, padding)


#: Elements per chunk where :func:`bn_dropout_add_relu` applies its dropout mask: the chunk's
#: float mask is 4 MiB, a heap block reused from chunk to chunk (below the ``bounded``
#: allocator's mmap threshold, :mod:`ssal.training.allocator`) instead of a full-size map whose
#: pages are faulted in afresh. A multiple of 8 (one random byte holds 8 mask entries).
DROP_CHUNK = 1 << 20

_HALF_TABLES: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def _half_table(dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(256, 8)``: row ``b`` holds ``2 * bit j of b`` for j = 0..7 (dropout 0.5's kept scale)."""
    key = (dtype, device)
    if key not in _HALF_TABLES:
        shifts = torch.arange(8, dtype=torch.uint8)
        bits = (torch.arange(256, dtype=torch.int32).to(torch.uint8).unsqueeze(1) >> shifts) & 1
        _HALF_TABLES[key] = (bits.to(dtype) * 2).to(device)
    return _HALF_TABLES[key]


def half_keep_bits(numel: int, device: torch.device) -> Tensor:
    """``ceil(numel / 8)`` uniform random bytes: bit ``j`` of byte ``i`` keeps entry ``8 i + j``
    (memory order) under dropout 0.5, the draw :func:`ssal.models.stgcn.MaskDropout` makes."""
    return torch.empty((numel + 7) // 8, dtype=torch.uint8, device=device).random_()


def memory_flat(t: Tensor) -> Tensor | None:
    """A 1-D view of ``t`` in memory order (contiguous or channels-last 4-D), else ``None``."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)
    return None


def mul_half_mask(src: Tensor, bits: Tensor, out: Tensor) -> None:
    """``out = src * 2 * bit`` over 1-D ``src`` and ``out`` (may be the same tensor), bit ``j`` of
    byte ``i`` of ``bits`` for entry ``8 i + j``, in chunks of :data:`DROP_CHUNK`."""
    table = _half_table(src.dtype, src.device)
    n = src.numel()
    for start in range(0, n, DROP_CHUNK):
        stop = min(n, start + DROP_CHUNK)
        mask = F.embedding(bits[start // 8:(stop + 7) // 8].to(torch.int32), table).view(-1)[:stop - start]
        torch.mul(src[start:stop], mask, out=out[start:stop])


class _BNDropAddReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: Tensor, bn_weight: Tensor, bn_bias: Tensor, running_mean: Tensor, running_var: Tensor,
                momentum: float, eps: float, residual: Tensor | None, bits: Tensor | None,
                keep_output: bool) -> Tensor:
        out, mean, invstd = torch.native_batch_norm(y, bn_weight, bn_bias, running_mean, running_var,
                                                    True, momentum, eps)
        if bits is not None:
            flat = cast(Tensor, memory_flat(out))
            mul_half_mask(flat, bits, flat)
        if residual is not None:
            torch.ops.aten._add_relu_(out, residual)
        else:
            out.relu_()
        # The ReLU's backward needs only where the output is positive: the output itself where
        # another node keeps it anyway, else one byte per entry.
        ctx.save_for_backward(y, bn_weight, running_mean, running_var, mean, invstd, bits,
                              out if keep_output else (out > 0).view(torch.uint8))
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        y, bn_weight, running_mean, running_var, mean, invstd, bits, out = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if out.dtype == torch.uint8:  # 1 where the output is positive, else 0
            grad_sum = torch.empty_like(y)  # y's layout: an incoming gradient of another layout
            torch.mul(grad_out, out, out=grad_sum)  # would make every backward kernel below slow
        else:
            grad_sum = torch.ops.aten.threshold_backward(grad_out, out, 0)
        grad_bn = grad_sum
        if bits is not None and any(needs[:3]):
            grad_bn = torch.empty_like(grad_sum)
            src, dst = memory_flat(grad_sum), memory_flat(grad_bn)
            if src is None or dst is None:  # an odd gradient layout: make it dense first
                grad_sum = grad_sum.contiguous()
                grad_bn = torch.empty_like(grad_sum)
                src, dst = grad_sum.view(-1), grad_bn.view(-1)
            mul_half_mask(src, bits, dst)
        grad_y = grad_w = grad_b = None
        if any(needs[:3]):
            grad_y, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
                grad_bn, y, bn_weight, running_mean, running_var, mean, invstd, True, ctx.eps, list(needs[:3]))
        grad_res = grad_sum if needs[7] else None
        return grad_y, grad_w, grad_b, None, None, None, None, grad_res, None, None


def bn_dropout_add_relu(y: Tensor, bn: nn.BatchNorm2d, p: float, residual: Tensor | None,
                        keep_output: bool = True) -> Tensor | None:
    """``relu(dropout_p(bn(y)) + residual)`` (``residual`` ``None``: no sum) as one node for a
    training-mode ``bn`` and ``p`` 0 or 0.5; ``None`` where it does not apply (call the modules).

    The ST-GCN layer's tail. It keeps ``y`` (BatchNorm's input), the dropout mask as random
    bits (one byte per 8 entries, not a bool per entry) and the output (the next layer's input,
    kept there anyway), and makes one full-size tensor in the forward pass where the modules
    make three: the mask, the sum and the ReLU run in place on the BatchNorm output. The mask
    is the one :class:`ssal.models.stgcn.MaskDropout` draws from the same generator state.
    ``keep_output=False`` (the last layer, whose output nothing else keeps for the backward
    pass): it keeps one byte per entry for the ReLU instead of the output.
    """
    if p not in (0.0, 0.5) or not fused_applicable(y, bn) or memory_flat(y) is None:
        return None
    if residual is not None and (residual.shape != y.shape or residual.dtype != y.dtype):
        return None
    momentum = bn_momentum(bn)
    bits = half_keep_bits(y.numel(), y.device) if p == 0.5 else None
    # (without grad nothing is kept: skip computing the byte mask)
    return _BNDropAddReLU.apply(y, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum, bn.eps,
                                residual, bits, keep_output or not torch.is_grad_enabled())


class _ConvBN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, conv_weight: Tensor, conv_bias: Tensor | None, stride: tuple[int, int],
                bn_weight: Tensor, bn_bias: Tensor, running_mean: Tensor, running_var: Tensor, momentum: float,
                eps: float) -> Tensor:
        out = F.conv2d(x, conv_weight, conv_bias, stride)
        mean, invstd = batch_norm_in_place(out, bn_weight, bn_bias, running_mean, running_var, momentum, eps)
        ctx.save_for_backward(x, conv_weight, conv_bias, bn_weight, running_mean, running_var, mean, invstd)
        ctx.has_conv_bias, ctx.stride, ctx.eps = conv_bias is not None, stride, eps
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, conv_weight, conv_bias, bn_weight, running_mean, running_var, mean, invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        r = F.conv2d(x, conv_weight, conv_bias, ctx.stride)  # recomputed: the same operation on the same inputs
        want_r = needs[0] or needs[1] or needs[2]
        grad_r, grad_bw, grad_bb = torch.ops.aten.native_batch_norm_backward(
            grad_out, r, bn_weight, running_mean, running_var, mean, invstd, True, ctx.eps,
            [want_r, needs[4], needs[5]])
        del r
        grad_x = grad_cw = grad_cb = None
        if want_r:
            grad_x, grad_cw, grad_cb = torch.ops.aten.convolution_backward(
                grad_r, x, conv_weight, [conv_weight.shape[0]] if ctx.has_conv_bias else None, list(ctx.stride),
                [0, 0], [1, 1], False, [0, 0], 1, [needs[0], needs[1], ctx.has_conv_bias and needs[2]])
        return grad_x, grad_cw, grad_cb, None, grad_bw, grad_bb, None, None, None, None


def conv_bn(x: Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> Tensor:
    """``bn(conv(x))`` for a 1x1 ``conv`` (any stride) and a training-mode ``bn``, keeping only
    ``x`` for the backward pass (the ST-GCN residual branch).

    The modules keep the convolution's output for BatchNorm's backward pass, a full-size map;
    here the backward pass computes it again from ``x`` (which the layer keeps anyway), one 1x1
    convolution. Falls back to the modules where :func:`fused_applicable` says no.
    """
    if (not fused_applicable(x, bn) or conv.kernel_size != (1, 1) or conv.padding != (0, 0)
            or not conv_fusable(conv)):
        return bn(conv(x))
    return _ConvBN.apply(x, conv.weight, conv.bias, tuple(conv.stride), bn.weight, bn.bias, bn.running_mean,
                         bn.running_var, bn_momentum(bn), bn.eps)


def bn_momentum(bn: nn.BatchNorm2d) -> float:
    """Count one more batch in ``bn`` and return the momentum of this update (as ``bn(x)`` does)."""
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    # fused_applicable checked track_running_stats, so the batch counter exists
    return bn.momentum if bn.momentum is not None else 1.0 / float(cast(Tensor, bn.num_batches_tracked))


def conv_fusable(conv: nn.Conv2d) -> bool:
    """Whether the fused backward handles ``conv`` (no groups, no dilation, zero padding)."""
    return conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"


def bn_relu_conv(x: Tensor, bn: nn.BatchNorm2d, conv: nn.Conv2d) -> Tensor:
    """``conv(relu(bn(x)))`` for a training-mode ``bn``, saving only ``x`` for the backward pass.

    Updates ``bn``'s running statistics and ``num_batches_tracked`` exactly as ``bn(x)`` does.
    Falls back to the modules themselves where :func:`fused_applicable` says no.
    """
    if not fused_applicable(x, bn) or not conv_fusable(conv):
        return conv(F.relu(bn(x)))
    momentum = bn_momentum(bn)
    return _BNReLUConv.apply(x, bn.weight, bn.bias, conv.weight, conv.bias, bn.running_mean,
                             bn.running_var, momentum, bn.eps, tuple(conv.stride), tuple(conv.padding))


__all__ = ["DROP_CHUNK", "batch_norm_in_place", "bn_dropout_add_relu", "conv_bn", "bn_momentum", "bn_relu_conv", "bn_relu_conv_backward", "conv_fusable", "fused_applicable", "half_keep_bits",
           "memory_flat", "mul_half_mask", "temporal_conv"]
