"""A temporal (K x 1) convolution evaluated through a DFT over time: fewer FLOPs for wide layers.

ST-GCN's temporal convolution is ``y[t] = b + sum_d W_d x[t*s + d - p]`` over 9 taps (``p =
(K - 1) / 2``, zero padding, stride ``s``), an ``(C_out x C_in)`` matrix per tap. Through a
real DFT of length ``L = T + p`` (long enough that the circular correlation equals the padded
one at every needed output) it becomes one complex ``(C_in x C_out)`` product per frequency:

    X[f] = sum_t x[t] e^{-2 pi i f t / L}               (f = 0 .. L // 2)
    H[f] = sum_d W_d e^{+2 pi i f (d - p) / L}
    Y[f] = X[f] H[f]
    y[t] = b + (1 / L) sum_f w_f Re(Y[f] e^{+2 pi i f t s / L})  (w: 1 for DC and Nyquist, else 2)

On a (N, C, T, V) map the products cost ``8 (L // 2 + 1) C_in C_out`` FLOPs per (sequence,
joint) against ``2 K T_out C_in C_out`` for the direct convolution: 3.6x fewer for AimCLR's last
layer (T = 19, K = 9). The transforms over T are per-sequence ``(2F, T) @ (T, V*C)`` products
on the channels-last storage, so no full-size layout copy is made; the per-frequency products
run on chunks of sequences whose spectra stay in cache. The backward pass is the same
arithmetic transposed (:func:`conv_backward`, as ``aten.convolution_backward`` returns it). The
result equals the direct convolution up to float round-off (tested to 1e-11 in float64).

Used inside the fused training nodes (:mod:`ssal.models.fused`, :data:`TRAIN_MIN_CHANNELS`) and
by the folded inference copy of ST-GCN (:mod:`ssal.models.fold`).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .dft import hermitian_weights

#: Sequences per chunk are chosen so that a chunk's spectrum holds about this many floats
#: (4 MiB, in cache); measured on AimCLR's last layer at batch 256, chunks of 16-64 sequences
#: were 1.4-1.7x faster than the whole batch at once.
CHUNK_FLOATS = 1 << 20


#: Training steps use the DFT form for temporal convolutions with at least this many input and
#: output channels (CPU, float32, no autocast). Measured forward and backward at batch 128,
#: V = 16 on the 2-core Xeon of benchmarks/RESULTS.md (direct -> DFT, ms): 256 ch, T = 19:
#: 117 -> 59 and 278 -> 117; 256 ch, T = 38, stride 2: 124 -> 109 and 321 -> 239; 128 ch,
#: T = 38: 71 -> 43 and 165 -> 73; 128 ch, T = 75, stride 2: 79 -> 73 and 194 -> 149; 64 ch,
#: T = 75: 43 -> 37 and 87 -> 56; 32 ch, T = 38: 4 -> 4 and 10 -> 8 (a tie: left direct).
TRAIN_MIN_CHANNELS = 64
#: ... and at least this many output frames: at 64 channels, batch 128, T = 6 (direct -> DFT,
#: forward / backward) 2 -> 3 / 4 -> 5 ms, T = 12 with stride 2 2 -> 4 / 5 -> 9 ms, T = 12
#: 4 -> 4 / 10 -> 8 ms, T = 24 9 -> 7 / 22 -> 14 ms. (The demo's reduced plan, whose 64-channel
#: layers see 6 frames, keeps the direct convolution.)
TRAIN_MIN_FRAMES = 12


@functools.lru_cache(maxsize=64)
def _dft_matrices(k: int, t: int, stride: int, dtype: torch.dtype,
                  device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(fwd (2F, T), inv (T_out, 2F), cos (F, K), sin (F, K))`` of a K-tap convolution over T
    frames with this stride. Built in float64 and cast; cached per shape, dtype and device, as
    every layer and step asks for the same few (read-only: never modify them)."""
    p = (k - 1) // 2
    length = t + p
    with torch.inference_mode(False), torch.no_grad():
        f = torch.arange(length // 2 + 1, dtype=torch.float64)
        a_fwd = 2 * math.pi * torch.outer(f, torch.arange(t, dtype=torch.float64)) / length
        fwd = torch.cat([torch.cos(a_fwd), -torch.sin(a_fwd)], dim=0)
        w = hermitian_weights(length)
        a_inv = 2 * math.pi * torch.outer(torch.arange(0, t, stride, dtype=torch.float64), f) / length
        inv = torch.cat([torch.cos(a_inv) * w, -torch.sin(a_inv) * w], dim=1) / length
        a_w = 2 * math.pi * torch.outer(f, torch.arange(k, dtype=torch.float64) - p) / length
        return tuple(m.to(dtype=dtype, device=device).contiguous()  # type: ignore[return-value]
                     for m in (fwd, inv, torch.cos(a_w), torch.sin(a_w)))


def _matrices(weight: Tensor, t: int, stride: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`_dft_matrices` for a (C_out, C_in, K, 1) weight."""
    return _dft_matrices(weight.shape[2], t, stride, weight.dtype, weight.device)


def kernel_applicable(weight: Tensor, stride: tuple[int, int], padding: tuple[int, int],
                      groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> bool:
    """Whether :func:`conv_forward` computes this convolution: an ungrouped (K x 1) kernel with
    odd K, 'same' zero padding on T and stride only on T."""
    k, kw = weight.shape[2], weight.shape[3]
    return (kw == 1 and k % 2 == 1 and tuple(padding) == ((k - 1) // 2, 0) and stride[1] == 1
            and groups == 1 and tuple(dilation) == (1, 1))


def train_applicable(x: Tensor, weight: Tensor, stride: tuple[int, int], padding: tuple[int, int]) -> bool:
    """Whether :func:`conv_forward` / :func:`conv_backward` replace the direct convolution in a
    training step: :func:`kernel_applicable`, CPU float32 without autocast or compilation, at
    least :data:`TRAIN_MIN_CHANNELS` input and output channels and :data:`TRAIN_MIN_FRAMES`
    output frames."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and kernel_applicable(weight, stride, padding)
            and min(weight.shape[0], weight.shape[1]) >= TRAIN_MIN_CHANNELS
            and (x.shape[2] - 1) // stride[0] + 1 >= TRAIN_MIN_FRAMES
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling())


def _kernel_spectrum(weight: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """``(H_real, H_imag)`` ``(F, C_in, C_out)`` of a (C_out, C_in, K, 1) weight."""
    w = weight[:, :, :, 0].permute(2, 1, 0).reshape(weight.shape[2], -1)  # (K, C_in*C_out)
    shape = (cos.shape[0], weight.shape[1], weight.shape[0])
    return (cos @ w).view(shape), (sin @ w).view(shape)


def _frames(x: Tensor) -> Tensor:
    """(N, C, T, V) -> its channels-last storage as (N, T, V*C) (a copy only if not channels-last)."""
    n, c, t, v = x.shape
    return x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).view(n, t, v * c)


def _by_frequency(z: Tensor, v: int) -> Tensor:
    """(n, 2F, V*C) per-sequence spectra -> (2, F, n*V, C), contiguous (a small copy, in cache)."""
    n, two_f, vc = z.shape
    return z.view(n, 2, two_f // 2, v, vc // v).permute(1, 2, 0, 3, 4).reshape(2, two_f // 2, n * v, vc // v)


def _by_sequence(z: Tensor, n: int) -> Tensor:
    """(2, F, n*V, C) -> (n, 2F, V*C), contiguous: the inverse of :func:`_by_frequency`."""
    _, f, rows, c = z.shape
    return z.view(2, f, n, rows // n, c).permute(2, 0, 1, 3, 4).reshape(n, 2 * f, (rows // n) * c)


def _sequences_per_chunk(n: int, freqs: int, v: int, width: int) -> int:
    return max(1, min(n, CHUNK_FLOATS // (2 * freqs * v * width)))


def conv_forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int]) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, ((K-1)/2, 0))`` through a DFT over time, for
    :func:`train_applicable` arguments; ``x`` (N, C_in, T, V), best channels-last. Returns a
    channels-last (N, C_out, T_out, V) tensor. No autograd (called inside autograd nodes).

    Works through chunks of sequences: the transforms over T are per-sequence products on the
    channels-last storage ``(T, V*C)``, so the only full-size tensor made is the output."""
    n, c, t, v = x.shape
    c_out = weight.shape[0]
    fwd, inv, cos, sin = _matrices(weight, t, stride[0])
    h_re, h_im = _kernel_spectrum(weight, cos, sin)
    frames, freqs = _frames(x), fwd.shape[0] // 2
    out = torch.empty(n, c_out, inv.shape[0], v, dtype=x.dtype, memory_format=torch.channels_last)
    out_frames = out.permute(0, 2, 3, 1).view(n, inv.shape[0], v * c_out)
    step = _sequences_per_chunk(n, freqs, v, max(c, c_out))
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        spec = _by_frequency(torch.matmul(fwd, frames[n0:n1]), v)
        prod = torch.empty(2, freqs, (n1 - n0) * v, c_out, dtype=x.dtype)
        torch.bmm(spec[0], h_re, out=prod[0]).baddbmm_(spec[1], h_im, alpha=-1)
        torch.bmm(spec[0], h_im, out=prod[1]).baddbmm_(spec[1], h_re)
        torch.matmul(inv, _by_sequence(prod, n1 - n0), out=out_frames[n0:n1])
    if bias is not None:
        out.add_(bias.view(1, -1, 1, 1))
    return out


def conv_backward(grad_y: Tensor, x: Tensor, weight: Tensor, stride: tuple[int, int], has_bias: bool,
                  needs: tuple[bool, bool, bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv_forward`, as
    ``aten.convolution_backward`` returns them (``None`` where ``needs`` says not wanted);
    chunked like the forward (grad_x channels-last)."""
    n, c, t, v = x.shape
    c_out, k = weight.shape[0], weight.shape[2]
    fwd, inv, cos, sin = _matrices(weight, t, stride[0])
    freqs = fwd.shape[0] // 2
    gy_frames = _frames(grad_y)  # (N, T_out, V*C_out)
    frames = _frames(x) if needs[1] else None
    grad_x = grad_x_frames = None
    if needs[0]:
        h_re, h_im = _kernel_spectrum(weight, cos, sin)
        h_re_t, h_im_t = h_re.transpose(1, 2), h_im.transpose(1, 2)
        grad_x = torch.empty(n, c, t, v, dtype=x.dtype, memory_format=torch.channels_last)
        grad_x_frames = grad_x.permute(0, 2, 3, 1).view(n, t, v * c)
    gh = torch.zeros(2, freqs, c, c_out, dtype=x.dtype) if needs[1] else None
    inv_t, fwd_t = inv.t(), fwd.t()
    step = _sequences_per_chunk(n, freqs, v, max(c, c_out))
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        g = _by_frequency(torch.matmul(inv_t, gy_frames[n0:n1]), v)  # (2, F, rows, C_out)
        if grad_x_frames is not None:
            gx = torch.empty(2, freqs, (n1 - n0) * v, c, dtype=x.dtype)
            torch.bmm(g[0], h_re_t, out=gx[0]).baddbmm_(g[1], h_im_t)
            torch.bmm(g[1], h_re_t, out=gx[1]).baddbmm_(g[0], h_im_t, alpha=-1)
            torch.matmul(fwd_t, _by_sequence(gx, n1 - n0), out=grad_x_frames[n0:n1])
        if gh is not None and frames is not None:
            spec = _by_frequency(torch.matmul(fwd, frames[n0:n1]), v)
            x_re, x_im = spec[0].transpose(1, 2), spec[1].transpose(1, 2)  # (F, C, rows)
            gh[0].baddbmm_(x_re, g[0]).baddbmm_(x_im, g[1])
            gh[1].baddbmm_(x_re, g[1]).baddbmm_(x_im, g[0], alpha=-1)
    grad_w = grad_b = None
    if gh is not None:
        gw = (cos.t() @ gh[0].view(freqs, -1) + sin.t() @ gh[1].view(freqs, -1)).view(k, c, c_out)
        grad_w = gw.permute(2, 1, 0).unsqueeze(-1).contiguous()
    if needs[2] and has_bias:
        grad_b = grad_y.sum(dim=(0, 2, 3))
    return grad_x, grad_w, grad_b

__all__ = ["CHUNK_FLOATS", "TRAIN_MIN_CHANNELS", "TRAIN_MIN_FRAMES", "conv_backward", "conv_forward", "kernel_applicable", "train_applicable"]
