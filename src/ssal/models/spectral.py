"""A temporal (K x 1) convolution evaluated through a DFT over time: fewer FLOPs for wide layers.

ST-GCN's temporal convolution is ``y[t] = b + sum_d W_d x[t*s + d - p]`` over 9 taps (``p =
(K - 1) / 2``, zero padding, stride ``s``), an ``(C_out x C_in)`` matrix per tap. Through a
real DFT of length ``L = T + p`` (long enough that the circular correlation equals the padded
one at every needed output) it becomes one complex ``(C_in x C_out)`` product per frequency:

    X[f] = sum_t x[t] e^{-2 pi i f t / L}               (f = 0 .. L // 2)
    H[f] = sum_d W_d e^{+2 pi i f (d - p) / L}
    Y[f] = X[f] H[f] + L b [f == 0]
    y[t] = (1 / L) sum_f w_f Re(Y[f] e^{+2 pi i f t / L})  (w: 1 for DC and Nyquist, else 2)

On a (N, C, T, V) map the products cost ``8 (L // 2 + 1) C_in C_out`` FLOPs per (sequence,
joint) against ``2 K T_out C_in C_out`` for the direct convolution: 3.6x fewer for AimCLR's last
layer (T = 19, K = 9). The transforms themselves are small real matrix products over T, which
is why activations here are laid out **time-outer**, ``(T, N, V, C)`` contiguous: a transform
is then one ``(2F, T) @ (T, N*V*C)`` product and each frequency's rows form an ``(N*V, C)``
matrix without copies. Work runs in chunks of sequences so that a chunk's spectrum stays in
cache. The result equals the direct convolution up to float round-off (tested to 1e-5
relative); the transforms are unitary up to scale, so the error does not grow with ``L``.

Used by the folded inference copy of ST-GCN (:mod:`ssal.models.fold`) for wide layers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Sequences per chunk are chosen so that a chunk's spectrum holds about this many floats
#: (4 MiB); measured on AimCLR's last layer, chunks of 16-64 sequences were 1.4-1.7x faster
#: than the whole batch at once.
CHUNK_FLOATS = 1 << 20


class SpectralTemporalConv(nn.Module):
    """The (K x 1) temporal convolution ``conv`` (zero padding ``(K - 1) / 2``, stride ``(s, 1)``,
    with bias) for time-outer activations (module docstring). Inference only: no gradients."""

    weight: Tensor  # buffers (register_buffer in __init__): (K, C_in, C_out) float64
    bias: Tensor  # (C_out,) float64

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        k = conv.kernel_size[0]
        if conv.kernel_size[1] != 1 or k % 2 == 0 or conv.padding != ((k - 1) // 2, 0) or conv.groups != 1 \
                or conv.stride[1] != 1 or conv.dilation != (1, 1):
            raise ValueError("only an ungrouped (K x 1) convolution with odd K and 'same' padding on T")
        self.kernel, self.stride = k, conv.stride[0]
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        with torch.no_grad():
            self.register_buffer("weight", conv.weight.double()[:, :, :, 0].permute(2, 1, 0).contiguous())
            bias = torch.zeros(conv.out_channels, dtype=torch.float64) if conv.bias is None else conv.bias.double()
            self.register_buffer("bias", bias)
        self._cache: dict[tuple[int, torch.dtype, torch.device], tuple[Tensor, Tensor, Tensor, Tensor]] = {}

    def output_length(self, t: int) -> int:
        """``ceil(T / stride)``, as the direct convolution."""
        return (t - 1) // self.stride + 1

    def matrices(self, t: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(fwd (2F, T), inv (T_out, 2F), h_real (F, C_in, C_out), h_imag (F, C_in, C_out))`` for
        length ``t``: forward rows and inverse columns ordered (part, f); the bias is not in them."""
        key = (t, dtype, device)
        if key not in self._cache:
            with torch.inference_mode(False), torch.no_grad():
                p = (self.kernel - 1) // 2
                length = t + p
                f = torch.arange(length // 2 + 1, dtype=torch.float64)
                a_fwd = 2 * math.pi * torch.outer(f, torch.arange(t, dtype=torch.float64)) / length
                fwd = torch.cat([torch.cos(a_fwd), -torch.sin(a_fwd)], dim=0)
                weight = torch.full_like(f, 2.0)
                weight[0] = 1.0
                if length % 2 == 0:
                    weight[-1] = 1.0
                t_out = torch.arange(0, t, self.stride, dtype=torch.float64)
                a_inv = 2 * math.pi * torch.outer(t_out, f) / length
                inv = torch.cat([torch.cos(a_inv) * weight, -torch.sin(a_inv) * weight], dim=1) / length
                a_w = 2 * math.pi * torch.outer(f, torch.arange(self.kernel, dtype=torch.float64) - p) / length
                h_real = torch.einsum("fk,kco->fco", torch.cos(a_w), self.weight.to("cpu"))
                h_imag = torch.einsum("fk,kco->fco", torch.sin(a_w), self.weight.to("cpu"))
                self._cache[key] = tuple(m.to(dtype=dtype, device=device).contiguous()  # type: ignore[assignment]
                                         for m in (fwd, inv, h_real, h_imag))
        return self._cache[key]

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        """Add ``conv(x)`` (bias included) into ``out`` in place and return it.

        ``x``: time-outer ``(T, N, V, C_in)``, contiguous. ``out``: time-outer
        ``(ceil(T / stride), N, V, C_out)``, contiguous."""
        t, n, v, c = x.shape
        t_out, co = self.output_length(t), self.out_channels
        if c != self.in_channels or tuple(out.shape) != (t_out, n, v, co) or not (x.is_contiguous() and out.is_contiguous()):
            raise ValueError(f"expected contiguous time-outer input (T, N, V, {self.in_channels}) and output "
                             f"({t_out}, N, V, {co}); got {tuple(x.shape)} and {tuple(out.shape)}")
        fwd, inv, h_real, h_imag = self.matrices(t, x.dtype, x.device)
        freqs = h_real.shape[0]
        length = t + (self.kernel - 1) // 2
        dc = (self.bias * length).to(x.dtype)
        x2, out2 = x.view(t, n * v * c), out.view(t_out, n * v * co)
        step = max(1, CHUNK_FLOATS // (2 * freqs * v * max(c, co)))
        for n0 in range(0, n, step):
            n1 = min(n, n0 + step)
            rows = (n1 - n0) * v
            spectrum = torch.matmul(fwd, x2[:, n0 * v * c:n1 * v * c]).view(2, freqs, rows, c)
            re, im = spectrum[0], spectrum[1]
            product = torch.empty(2, freqs, rows, co, dtype=x.dtype, device=x.device)
            torch.bmm(re, h_real, out=product[0]).baddbmm_(im, h_imag, alpha=-1)
            torch.bmm(re, h_imag, out=product[1]).baddbmm_(im, h_real)
            product[0, 0].add_(dc)  # the bias: a constant over t is L b at DC
            out2[:, n0 * v * co:n1 * v * co].addmm_(inv, product.view(2 * freqs, rows * co))
        return out





# ---------------------------------------------------------------- training: forward and backward
#: Training steps use the DFT form for stride-1 temporal convolutions with at least this many
#: input and output channels (CPU, float32, no autocast). Measured forward + backward at batch
#: 128, V = 16 on the 2-core Xeon of benchmarks/RESULTS.md (direct -> DFT, ms): 256 ch, T = 19:
#: 125 -> 85 and 308 -> 155; 128 ch, T = 38: 75 -> 71 and 168 -> 120; slower at 64 channels
#: (47 -> 74, 91 -> 101) and with stride 2 (128 ch, T = 75: 84 -> 115, 192 -> 225), where every
#: frequency of the input is computed for half the outputs.
TRAIN_MIN_CHANNELS = 128


def _train_matrices(weight: Tensor, t: int, stride: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(fwd (2F, T), inv (T_out, 2F), cos (F, K), sin (F, K))`` for a (C_out, C_in, K, 1) weight."""
    k = weight.shape[2]
    p = (k - 1) // 2
    length = t + p
    with torch.no_grad():
        f = torch.arange(length // 2 + 1, dtype=torch.float64)
        a_fwd = 2 * math.pi * torch.outer(f, torch.arange(t, dtype=torch.float64)) / length
        fwd = torch.cat([torch.cos(a_fwd), -torch.sin(a_fwd)], dim=0)
        w = torch.full_like(f, 2.0)
        w[0] = 1.0
        if length % 2 == 0:
            w[-1] = 1.0
        a_inv = 2 * math.pi * torch.outer(torch.arange(0, t, stride, dtype=torch.float64), f) / length
        inv = torch.cat([torch.cos(a_inv) * w, -torch.sin(a_inv) * w], dim=1) / length
        a_w = 2 * math.pi * torch.outer(f, torch.arange(k, dtype=torch.float64) - p) / length
        return tuple(m.to(dtype=weight.dtype, device=weight.device).contiguous()  # type: ignore[return-value]
                     for m in (fwd, inv, torch.cos(a_w), torch.sin(a_w)))


def train_applicable(x: Tensor, weight: Tensor, stride: tuple[int, int], padding: tuple[int, int]) -> bool:
    """Whether :func:`conv_forward` / :func:`conv_backward` replace the direct convolution here."""
    c_out, c_in, k, kw = weight.shape
    return (x.device.type == "cpu" and x.dtype == torch.float32 and kw == 1 and k % 2 == 1
            and tuple(padding) == ((k - 1) // 2, 0) and tuple(stride) == (1, 1) and min(c_in, c_out) >= TRAIN_MIN_CHANNELS
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling())


def _kernel_spectrum(weight: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """``(H_real, H_imag)`` ``(F, C_in, C_out)`` of a (C_out, C_in, K, 1) weight."""
    w = weight[:, :, :, 0].permute(2, 1, 0).reshape(weight.shape[2], -1)  # (K, C_in*C_out)
    shape = (cos.shape[0], weight.shape[1], weight.shape[0])
    return (cos @ w).view(shape), (sin @ w).view(shape)


def _time_outer(x: Tensor) -> Tensor:
    """(N, C, T, V) -> contiguous (T, N*V, C) (a copy unless already laid out so)."""
    n, c, t, v = x.shape
    return x.permute(2, 0, 3, 1).contiguous().view(t, n * v, c)


def _spectrum(fwd: Tensor, xt: Tensor) -> Tensor:
    """``(2, F, rows, C)`` real/imaginary spectrum over T of time-outer ``xt`` ``(T, rows, C)``."""
    t, rows, c = xt.shape
    return torch.matmul(fwd, xt.view(t, rows * c)).view(2, fwd.shape[0] // 2, rows, c)


def _chunks(rows: int, freqs: int, width: int) -> range:
    """Row offsets of chunks whose spectra hold about :data:`CHUNK_FLOATS` floats."""
    return range(0, rows, max(1, CHUNK_FLOATS // (2 * freqs * width)))


def conv_forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int]) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, ((K-1)/2, 0))`` through a DFT over time, for
    :func:`train_applicable` arguments; ``x`` (N, C_in, T, V) of any layout. Returns a
    channels-last (N, C_out, T_out, V) tensor. No autograd (called inside autograd nodes)."""
    n, c, t, v = x.shape
    c_out = weight.shape[0]
    fwd, inv, cos, sin = _train_matrices(weight, t, stride[0])
    h_re, h_im = _kernel_spectrum(weight, cos, sin)
    xt = _time_outer(x)
    rows, freqs = n * v, fwd.shape[0] // 2
    out = torch.empty(inv.shape[0], rows, c_out, dtype=x.dtype)  # (T_out, N*V, C_out)
    if bias is not None:
        out.copy_(bias.expand_as(out))
    else:
        out.zero_()
    step = max(1, CHUNK_FLOATS // (2 * freqs * max(c, c_out)))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        spec = torch.matmul(fwd, xt[:, r0:r1].reshape(t, -1)).view(2, freqs, r1 - r0, c)
        prod = torch.empty(2, freqs, r1 - r0, c_out, dtype=x.dtype)
        torch.bmm(spec[0], h_re, out=prod[0]).baddbmm_(spec[1], h_im, alpha=-1)
        torch.bmm(spec[0], h_im, out=prod[1]).baddbmm_(spec[1], h_re)
        out[:, r0:r1].view(inv.shape[0], -1).addmm_(inv, prod.view(2 * freqs, -1))
    return out.view(-1, n, v, c_out).permute(1, 3, 0, 2).contiguous(memory_format=torch.channels_last)


def conv_backward(grad_y: Tensor, x: Tensor, weight: Tensor, stride: tuple[int, int], has_bias: bool,
                  needs: tuple[bool, bool, bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv_forward`, as
    ``aten.convolution_backward`` returns them (``None`` where ``needs`` says not wanted)."""
    n, c, t, v = x.shape
    c_out, k = weight.shape[0], weight.shape[2]
    fwd, inv, cos, sin = _train_matrices(weight, t, stride[0])
    rows, freqs = n * v, fwd.shape[0] // 2
    gy = _time_outer(grad_y)  # (T_out, rows, C_out)
    xt = _time_outer(x) if needs[1] else None
    grad_xt = torch.empty(t, rows, c, dtype=x.dtype) if needs[0] else None
    if needs[0]:
        h_re, h_im = _kernel_spectrum(weight, cos, sin)
        h_re_t, h_im_t = h_re.transpose(1, 2), h_im.transpose(1, 2)
    gh = torch.zeros(2, freqs, c, c_out, dtype=x.dtype) if needs[1] else None
    inv_t = inv.t()
    step = max(1, CHUNK_FLOATS // (2 * freqs * max(c, c_out)))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        g = torch.matmul(inv_t, gy[:, r0:r1].reshape(gy.shape[0], -1)).view(2, freqs, r1 - r0, c_out)
        if grad_xt is not None:
            gx = torch.empty(2, freqs, r1 - r0, c, dtype=x.dtype)
            torch.bmm(g[0], h_re_t, out=gx[0]).baddbmm_(g[1], h_im_t)
            torch.bmm(g[1], h_re_t, out=gx[1]).baddbmm_(g[0], h_im_t, alpha=-1)
            torch.matmul(fwd.t(), gx.view(2 * freqs, -1), out=grad_xt[:, r0:r1].view(t, -1))
        if gh is not None and xt is not None:
            spec = torch.matmul(fwd, xt[:, r0:r1].reshape(t, -1)).view(2, freqs, r1 - r0, c)
            x_re, x_im = spec[0].transpose(1, 2), spec[1].transpose(1, 2)  # (F, C, rows)
            gh[0].baddbmm_(x_re, g[0]).baddbmm_(x_im, g[1])
            gh[1].baddbmm_(x_re, g[1]).baddbmm_(x_im, g[0], alpha=-1)
    grad_x = grad_w = grad_b = None
    if grad_xt is not None:
        grad_x = grad_xt.view(t, n, v, c).permute(1, 3, 0, 2).contiguous(memory_format=torch.channels_last)
    if gh is not None:
        gw = (cos.t() @ gh[0].view(freqs, -1) + sin.t() @ gh[1].view(freqs, -1)).view(k, c, c_out)
        grad_w = gw.permute(2, 1, 0).unsqueeze(-1).contiguous()
    if needs[2] and has_bias:
        grad_b = grad_y.sum(dim=(0, 2, 3))
    return grad_x, grad_w, grad_b

__all__ = ["CHUNK_FLOATS", "TRAIN_MIN_CHANNELS", "SpectralTemporalConv", "conv_backward", "conv_forward", "train_applicable"]
