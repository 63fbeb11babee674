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


__all__ = ["CHUNK_FLOATS", "SpectralTemporalConv"]
