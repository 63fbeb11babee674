"""The inverse real 2-D DFT of small images as two real matrix products.

CFFN's image branch transforms ``(T', V)`` images of a few dozen frames by 16-25 joints. For
transforms this small, ``torch.fft.irfft2`` on the CPU spends most of its time in layout
copies and per-transform setup rather than arithmetic: on the 2-core Xeon of
``benchmarks/RESULTS.md`` a (256, 32, 38, 9) half spectrum takes about 17 ms with ``irfft2``
and about 8 ms as the two products below. The forward transform stays ``torch.fft.rfft2``:
as matrix products (either order, real or complex) it measured 1.5x slower there, and so did a
split real/imaginary layout for the whole AFF block.

For a half spectrum ``Y`` ``(..., T, F)``, ``F = V // 2 + 1`` (what ``rfft2`` returns), the
orthonormal inverse is, V first:

    Z[k, v] = sum_f w_f Y[k, f] e^{+2 pi i f v / V} / sqrt(V)
    x[t, v] = Re sum_k e^{+2 pi i k t / T} Z[k, v] / sqrt(T)

with ``w_0 = 1``, ``w_{V/2} = 1`` for even V and ``w_f = 2`` otherwise (the Hermitian half
that ``irfft`` leaves implicit). In real arithmetic on ``Y``'s interleaved (real, imaginary)
storage:

* the V step is one product ``(rows, 2F) @ (2F, 2V)`` over all images, whose output row holds
  ``[Re Z[k, :], Im Z[k, :]]``, so each image reads as ``(2T, V)`` without a copy;
* the T step is ``(T, 2T) @ (2T, V)`` per image with the cosine and minus sine of ``k t``
  interleaved, which keeps only the real part.

Like ``irfft``, the imaginary parts of the DC and (even V) Nyquist columns do not contribute:
their sine rows are zero.

The same two products with every weight ``w_f = 1`` are the adjoint of the orthonormal forward
transform ``X = rfft2(x)`` over a real ``x``: for a gradient ``G`` on ``X`` (PyTorch's convention,
``dL/dRe X + i dL/dIm X``)

    dL/dx[t, v] = Re sum_{k, f} G[k, f] e^{+2 pi i (k t / T + f v / V)} / sqrt(T V)

with each stored half-spectrum entry counted once. :func:`rfft2_matmul_backward` is ``rfft2``
with this backward pass: on the 2-core Xeon a (128, 32, 38, 16) map's ``rfft2`` forward and
backward took 19.7 ms through autograd's FFTs and 4 + 2 ms this way, and ``irfft2`` 18.2 ms
against 6.4 ms for :func:`irfft2_by_matmul` (whose backward is the transposed products).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor


def hermitian_weights(size: int) -> Tensor:
    """Float64 weights ``(size // 2 + 1,)`` of a real inverse DFT over the half spectrum: 1 for
    the DC term and (even ``size``) the Nyquist term, 2 for the others, whose conjugate twins
    ``irfft`` leaves implicit."""
    weight = torch.full((size // 2 + 1,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if size % 2 == 0:
        weight[-1] = 1.0
    return weight


def _angles(n: int, m: int, size: int) -> Tensor:
    """``2 pi a b / size`` for a < n, b < m: float64 (n, m)."""
    return 2 * math.pi * torch.outer(torch.arange(n, dtype=torch.float64), torch.arange(m, dtype=torch.float64)) / size


@functools.lru_cache(maxsize=16)
def irfft2_matrices(t: int, v: int, dtype: torch.dtype, device: torch.device,
                    hermitian: bool = True) -> tuple[Tensor, Tensor]:
    """``(m_v (2F, 2V), m_t (T, 2T))``: the two real matrices of :func:`irfft2_by_matmul`
    (``hermitian=False``: every weight 1, the adjoint of ``rfft2``; module docstring).

    Built in float64 and cast; cached per size, dtype and device (read-only: never modify)."""
    with torch.inference_mode(False), torch.no_grad():
        f = v // 2 + 1
        weight = (hermitian_weights(v) if hermitian else torch.ones(f, dtype=torch.float64)).unsqueeze(1)
        a_v = _angles(f, v, v)
        cos_v, sin_v = weight * torch.cos(a_v) / math.sqrt(v), weight * torch.sin(a_v) / math.sqrt(v)
        # rows (f, part of Y), columns (part of Z, v): Re Z = Re Y cos - Im Y sin, Im Z = Re Y sin + Im Y cos
        m_v = torch.stack([torch.stack([cos_v, sin_v], dim=1), torch.stack([-sin_v, cos_v], dim=1)], dim=1)
        a_t = _angles(t, t, t)
        # columns (k, part of Z): Re(e^{ia} Z) = cos a Re Z - sin a Im Z
        m_t = torch.stack([torch.cos(a_t), -torch.sin(a_t)], dim=-1) / math.sqrt(t)
        return (m_v.reshape(2 * f, 2 * v).to(dtype=dtype, device=device).contiguous(),
                m_t.reshape(t, 2 * t).to(dtype=dtype, device=device).contiguous())


def _inverse_products(spectrum: Tensor, t: int, v: int, hermitian: bool) -> Tensor:
    f = v // 2 + 1
    if tuple(spectrum.shape[-2:]) != (t, f) or not spectrum.is_complex():
        raise ValueError(f"expected a complex spectrum (..., {t}, {f}), got {tuple(spectrum.shape)} {spectrum.dtype}")
    real = torch.view_as_real(spectrum.contiguous())  # (..., t, f, 2)
    m_v, m_t = irfft2_matrices(t, v, real.dtype, real.device, hermitian)
    z = torch.matmul(real.reshape(-1, 2 * f), m_v).view(-1, 2 * t, v)  # rows (k, part)
    return torch.matmul(m_t, z).view(*spectrum.shape[:-2], t, v)


def irfft2_by_matmul(spectrum: Tensor, t: int, v: int) -> Tensor:
    """``torch.fft.irfft2(spectrum, s=(t, v), dim=(-2, -1), norm="ortho")`` for a complex
    ``spectrum`` ``(..., t, v // 2 + 1)``, as two real matrix products (module docstring).
    Returns a real, contiguous ``(..., t, v)`` tensor; differentiable (the transposed products)."""
    return _inverse_products(spectrum, t, v, hermitian=True)


def rfft2_adjoint(grad: Tensor, t: int, v: int) -> Tensor:
    """The gradient on a real ``x`` ``(..., t, v)`` of ``X = torch.fft.rfft2(x, norm="ortho")``
    given the gradient ``grad`` on ``X`` ``(..., t, v // 2 + 1)`` (module docstring)."""
    return _inverse_products(grad, t, v, hermitian=False)


class _Rfft2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.size = tuple(x.shape[-2:])
        return torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return rfft2_adjoint(grad, *ctx.size)


def rfft2_matmul_backward(x: Tensor) -> Tensor:
    """``torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")`` of a real ``x`` whose backward pass is
    :func:`rfft2_adjoint` (two real matrix products) instead of autograd's complex FFTs."""
    return _Rfft2.apply(x)


__all__ = ["hermitian_weights", "irfft2_by_matmul", "irfft2_matrices", "rfft2_adjoint", "rfft2_matmul_backward"]
