"""The real 2-D DFT of small images, forward and inverse, as two real matrix products each.

CFFN's image branch transforms ``(T', V)`` images of a few dozen frames by 16-25 joints. For
transforms this small, ``torch.fft`` on the CPU spends most of its time in layout copies and
per-transform setup rather than arithmetic. On the 2-core Xeon of ``benchmarks/RESULTS.md``, for
a (128, 32, 38, 16) map: ``irfft2`` 6.0 ms against 2.2 ms as the products below, ``rfft2`` 4.0
ms against 2.4 ms; with their backward passes (autograd's complex FFTs against the transposed
products) ``irfft2`` 20.8 against 6.2 ms and ``rfft2`` 24.1 against 5.0 ms.

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

The forward transform ``X[k, f] = sum_{t, v} x[t, v] e^{-2 pi i (k t / T + f v / V)} / sqrt(T V)``
runs the other way round, T first:

* the T step is ``(2T, T) @ (T, V)`` per image with rows ``(k, part)``: ``Re Y[k, v] = sum_t
  cos(2 pi k t / T) x[t, v]``, ``Im Y[k, v] = -sum_t sin(...) x[t, v]``, so each image reads as
  ``(T, 2V)`` rows ``[Re Y[k, :], Im Y[k, :]]`` without a copy;
* the V step is one product ``(rows, 2V) @ (2V, 2F)`` over all images: ``Re X = Re Y cos + Im Y
  sin`` and ``Im X = Im Y cos - Re Y sin`` of ``2 pi f v / V``, written interleaved, which is the
  storage of a complex ``(..., T, F)`` tensor.
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
def irfft2_matrices(t: int, v: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(m_v (2F, 2V), m_t (T, 2T))``: the two real matrices of :func:`irfft2_by_matmul`.

    Built in float64 and cast; cached per size, dtype and device (read-only: never modify)."""
    with torch.inference_mode(False), torch.no_grad():
        f = v // 2 + 1
        weight = hermitian_weights(v).unsqueeze(1)
        a_v = _angles(f, v, v)
        cos_v, sin_v = weight * torch.cos(a_v) / math.sqrt(v), weight * torch.sin(a_v) / math.sqrt(v)
        # rows (f, part of Y), columns (part of Z, v): Re Z = Re Y cos - Im Y sin, Im Z = Re Y sin + Im Y cos
        m_v = torch.stack([torch.stack([cos_v, sin_v], dim=1), torch.stack([-sin_v, cos_v], dim=1)], dim=1)
        a_t = _angles(t, t, t)
        # columns (k, part of Z): Re(e^{ia} Z) = cos a Re Z - sin a Im Z
        m_t = torch.stack([torch.cos(a_t), -torch.sin(a_t)], dim=-1) / math.sqrt(t)
        return (m_v.reshape(2 * f, 2 * v).to(dtype=dtype, device=device).contiguous(),
                m_t.reshape(t, 2 * t).to(dtype=dtype, device=device).contiguous())


def irfft2_by_matmul(spectrum: Tensor, t: int, v: int) -> Tensor:
    """``torch.fft.irfft2(spectrum, s=(t, v), dim=(-2, -1), norm="ortho")`` for a complex
    ``spectrum`` ``(..., t, v // 2 + 1)``, as two real matrix products (module docstring).
    Returns a real, contiguous ``(..., t, v)`` tensor; differentiable (the transposed products)."""
    f = v // 2 + 1
    if tuple(spectrum.shape[-2:]) != (t, f) or not spectrum.is_complex():
        raise ValueError(f"expected a complex spectrum (..., {t}, {f}), got {tuple(spectrum.shape)} {spectrum.dtype}")
    real = torch.view_as_real(spectrum.contiguous())  # (..., t, f, 2)
    m_v, m_t = irfft2_matrices(t, v, real.dtype, real.device)
    z = torch.matmul(real.reshape(-1, 2 * f), m_v).view(-1, 2 * t, v)  # rows (k, part)
    return torch.matmul(m_t, z).view(*spectrum.shape[:-2], t, v)


@functools.lru_cache(maxsize=16)
def rfft2_matrices(t: int, v: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(m_t (2T, T), m_v (2V, 2F))``: the two real matrices of :func:`rfft2_by_matmul`.

    Built in float64 and cast; cached per size, dtype and device (read-only: never modify)."""
    with torch.inference_mode(False), torch.no_grad():
        f = v // 2 + 1
        a_t = _angles(t, t, t)
        # rows (k, part of Y): Re Y[k] = sum_t cos(a) x[t], Im Y[k] = -sum_t sin(a) x[t]
        m_t = torch.stack([torch.cos(a_t), -torch.sin(a_t)], dim=1) / math.sqrt(t)
        a_v = _angles(v, f, v)
        cos_v, sin_v = torch.cos(a_v) / math.sqrt(v), torch.sin(a_v) / math.sqrt(v)
        # rows (part of Y, v), columns (f, part of X): Re X = Re Y cos + Im Y sin, Im X = Im Y cos - Re Y sin
        m_v = torch.cat([torch.stack([cos_v, -sin_v], dim=-1), torch.stack([sin_v, cos_v], dim=-1)])
        return (m_t.reshape(2 * t, t).to(dtype=dtype, device=device).contiguous(),
                m_v.reshape(2 * v, 2 * f).to(dtype=dtype, device=device).contiguous())


def rfft2_by_matmul(x: Tensor) -> Tensor:
    """``torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")`` for a real ``x`` ``(..., T, V)`` as two
    real matrix products (module docstring). Returns a contiguous complex ``(..., T, V // 2 + 1)``
    tensor; differentiable (the transposed products)."""
    if x.is_complex() or x.dim() < 2:
        raise ValueError(f"expected a real tensor (..., T, V), got {tuple(x.shape)} {x.dtype}")
    t, v = x.shape[-2:]
    m_t, m_v = rfft2_matrices(t, v, x.dtype, x.device)
    y = torch.matmul(m_t, x.reshape(-1, t, v))  # (images, 2T, V): rows (k, part), i.e. (T, 2V) per image
    spectrum = torch.matmul(y.view(-1, 2 * v), m_v)  # rows (image, k), columns (f, part)
    return torch.view_as_complex(spectrum.view(*x.shape[:-2], t, v // 2 + 1, 2))


__all__ = ["hermitian_weights", "irfft2_by_matmul", "irfft2_matrices", "rfft2_by_matmul", "rfft2_matrices"]
