"""The inverse real 2-D DFT and the forward one's adjoint as matrix products (ssal.models.dft)
against torch.fft."""

from __future__ import annotations

import pytest
import torch

from ssal.models.dft import irfft2_by_matmul, irfft2_matrices, rfft2_by_matmul, rfft2_matrices


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


@pytest.mark.parametrize("t, v", [(38, 16), (7, 5), (13, 17), (4, 25), (2, 2), (1, 1)])
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
def test_rfft2_by_matmul_equals_torch_fft_values_and_gradients(t, v, dtype, atol):
    g = torch.Generator().manual_seed(t * 10 + v)
    x = torch.randn(3, 2, t, v, dtype=dtype, generator=g)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = rfft2_by_matmul(xa)
    ref = torch.fft.rfft2(xb, dim=(-2, -1), norm="ortho")
    assert out.shape == ref.shape and out.dtype == ref.dtype and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)
    grad = torch.randn(ref.shape, dtype=ref.dtype, generator=g)  # any gradient, DC/Nyquist included
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=atol)


def test_rfft2_by_matmul_round_trip_and_checks_its_input():
    x = torch.randn(4, 3, 11, 15, dtype=torch.float64)
    torch.testing.assert_close(irfft2_by_matmul(rfft2_by_matmul(x), 11, 15), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(rfft2_by_matmul(x.transpose(0, 1)), torch.fft.rfft2(x.transpose(0, 1), norm="ortho"),
                               rtol=0, atol=1e-12)  # a non-contiguous input
    with pytest.raises(ValueError, match="real tensor"):
        rfft2_by_matmul(torch.fft.rfft2(x))
    with pytest.raises(ValueError, match="real tensor"):
        rfft2_by_matmul(torch.ones(5))


def test_rfft2_matrices_by_hand_for_two_by_two():
    # T = V = 2, F = 2: X[k, f] = sum_t,v x[t, v] (-1)^(kt + fv) / 2, all real
    m_t, m_v = rfft2_matrices(2, 2, torch.float64, torch.device("cpu"))
    s = 2 ** -0.5
    # rows (k, part of Y): Re Y[k] = sum_t (-1)^(kt) x[t] / sqrt 2, Im Y = 0
    torch.testing.assert_close(m_t, torch.tensor([[s, s], [0, 0], [s, -s], [0, 0]], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    # rows (part of Y, v), columns (f, part of X): Re X[f] = sum_v Re Y[v] (-1)^(fv) / sqrt 2, Im X[f] likewise
    expected_v = torch.tensor([[s, 0, s, 0], [s, 0, -s, 0], [0, s, 0, s], [0, s, 0, -s]], dtype=torch.float64)
    torch.testing.assert_close(m_v, expected_v, rtol=0, atol=1e-15)
