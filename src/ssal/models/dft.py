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
    Returns a real, contiguous ``(..., t, v)`` tensor."""
    f = v // 2 + 1
    if tuple(spectrum.shape[-2:]) != (t, f) or not spectrum.is_complex():
        raise ValueError(f"expected a complex spectrum (..., {t}, {f}), got {tuple(spectrum.shape)} {spectrum.dtype}")
    real = torch.view_as_real(spectrum.contiguous())  # (..., t, f, 2)
    m_v, m_t = irfft2_matrices(t, v, real.dtype, real.device)
    z = torch.matmul(real.reshape(-1, 2 * f), m_v).view(-1, 2 * t, v)  # rows (k, part)
    return torch.matmul(m_t, z).view(*spectrum.shape[:-2], t, v)


__all__ = ["hermitian_weights", "irfft2_by_matmul", "irfft2_matrices"]
