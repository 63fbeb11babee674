"""The inverse real 2-D DFT and the forward one's adjoint as matrix products (ssal.models.dft)
against torch.fft."""

from __future__ import annotations

import pytest
import torch

from ssal.models.dft import irfft2_by_matmul, irfft2_matrices, rfft2_adjoint, rfft2_matmul_backward


@pytest.mark.parametrize("t, v", [(38, 16), (7, 5), (13, 17), (4, 25), (2, 2), (1, 1)])
@pytest.mark.parametrize("dtype, atol", [(torch.complex64, 1e-5), (torch.complex128, 1e-12)])
def test_irfft2_by_matmul_equals_torch_fft(t, v, dtype, atol):
    g = torch.Generator().manual_seed(t * 100 + v)
    spectrum = torch.randn(3, 2, t, v // 2 + 1, dtype=dtype, generator=g)  # not Hermitian at DC/Nyquist
    ref = torch.fft.irfft2(spectrum, s=(t, v), dim=(-2, -1), norm="ortho")
    out = irfft2_by_matmul(spectrum, t, v)
    assert out.shape == (3, 2, t, v) and out.dtype == ref.dtype and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)


def test_irfft2_by_matmul_inverts_rfft2_and_checks_its_input():
    x = torch.randn(4, 3, 11, 16, dtype=torch.float64)
    spectrum = torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")
    torch.testing.assert_close(irfft2_by_matmul(spectrum, 11, 16), x, rtol=0, atol=1e-12)
    # a non-contiguous spectrum (a transposed view) gives the same numbers
    swapped = spectrum.transpose(0, 1).contiguous().transpose(0, 1)
    torch.testing.assert_close(irfft2_by_matmul(swapped, 11, 16), x, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="complex spectrum"):
        irfft2_by_matmul(spectrum, 11, 15)  # 15 // 2 + 1 == 8 != 9
    with pytest.raises(ValueError, match="complex spectrum"):
        irfft2_by_matmul(x, 11, 16)


def test_irfft2_matrices_by_hand_for_two_by_two():
    # T = V = 2: F = 2 columns (DC and Nyquist, both weight 1); x[t, v] = sum_k,f Re Y[k, f] (-1)^(kt + fv) / 2
    m_v, m_t = irfft2_matrices(2, 2, torch.float64, torch.device("cpu"))
    s = 2 ** -0.5
    # rows (f, part of Y), columns (part of Z, v): Re Z[v] = sum_f Re Y[f] (-1)^(f v) / sqrt 2, Im Z likewise
    expected_v = torch.tensor([[s, s, 0, 0], [0, 0, s, s], [s, -s, 0, 0], [0, 0, s, -s]], dtype=torch.float64)
    torch.testing.assert_close(m_v, expected_v)
    # columns (k, part of Z): Re(e^{i pi k t} Z[k]) = (-1)^(k t) Re Z[k]
    expected_t = torch.tensor([[s, 0, s, 0], [s, 0, -s, 0]], dtype=torch.float64)
    torch.testing.assert_close(m_t, expected_t, rtol=0, atol=1e-15)


@pytest.mark.parametrize("t, v", [(38, 16), (7, 5), (4, 25), (2, 2), (1, 1)])
def test_rfft2_matmul_backward_equals_autograds_fft_gradient(t, v):
    g = torch.Generator().manual_seed(t * 10 + v)
    x = torch.randn(3, 2, t, v, dtype=torch.float64, generator=g, requires_grad=True)
    spectrum = rfft2_matmul_backward(x)
    ref = torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")
    torch.testing.assert_close(spectrum, ref, rtol=0, atol=0)  # the forward is torch.fft's own
    grad = torch.randn(ref.shape, dtype=ref.dtype, generator=g)  # any gradient, DC/Nyquist included
    (want,) = torch.autograd.grad(ref, x, grad)
    (got,) = torch.autograd.grad(spectrum, x, grad)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(rfft2_matmul_backward, (x.detach()[:1, :1].clone().requires_grad_(),))


def test_rfft2_adjoint_by_hand_for_two_by_two():
    # T = V = 2: X[k, f] = sum_t,v x[t, v] (-1)^(kt + fv) / 2, all real; the adjoint of a real
    # symmetric map is the map itself on the real parts, and imaginary gradients contribute nothing
    # (sin(pi k t) = 0 everywhere)
    grad = torch.tensor([[1 + 5j, 2 - 1j], [3 + 2j, 4 + 0j]], dtype=torch.complex128)
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    expected = h @ grad.real @ h / 2
    torch.testing.assert_close(rfft2_adjoint(grad, 2, 2), expected)
