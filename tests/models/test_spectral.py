"""The temporal convolution through a DFT over time (ssal.models.spectral) against conv2d."""

from __future__ import annotations

import pytest
import torch

import ssal.models.spectral as spectral


@pytest.mark.parametrize("c, c_out, t, stride, kernel", [
    (8, 12, 19, 1, 9), (16, 16, 20, 2, 9), (6, 5, 1, 1, 9), (6, 5, 2, 2, 9), (4, 4, 3, 1, 9), (5, 7, 11, 3, 5),
    (32, 24, 75, 1, 9)])
def test_conv_forward_equals_conv2d_in_float32(c, c_out, t, stride, kernel):
    torch.manual_seed(c * t)
    conv = torch.nn.Conv2d(c, c_out, (kernel, 1), padding=((kernel - 1) // 2, 0), stride=(stride, 1))
    x = torch.randn(3, c, t, 16)  # not channels-last: converted inside
    with torch.no_grad():
        ref = conv(x)
        got = spectral.conv_forward(x, conv.weight, conv.bias, conv.stride)
    assert got.shape == ref.shape == (3, c_out, (t - 1) // stride + 1, 16)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_conv_forward_by_hand_single_tap():
    # A (3 x 1) kernel with only the centre tap w: y[t] = w x[t] + b, exactly a per-time scaling.
    weight = torch.zeros(1, 1, 3, 1)
    weight[0, 0, 1, 0] = 2.0
    x = torch.arange(5.0).view(1, 1, 5, 1)
    got = spectral.conv_forward(x, weight, torch.tensor([0.5]), (1, 1))
    torch.testing.assert_close(got.flatten(), 2 * torch.arange(5.0) + 0.5, rtol=0, atol=1e-5)


def test_kernel_applicable_refuses_what_the_dft_form_cannot_compute():
    w = torch.randn(2, 2, 9, 1)
    assert spectral.kernel_applicable(w, (1, 1), (4, 0)) and spectral.kernel_applicable(w, (2, 1), (4, 0))
    assert not spectral.kernel_applicable(w, (1, 1), (0, 0))  # not 'same' padding
    assert not spectral.kernel_applicable(torch.randn(2, 2, 4, 1), (1, 1), (2, 0))  # even K
    assert not spectral.kernel_applicable(torch.randn(2, 2, 9, 3), (1, 1), (4, 1))  # not (K x 1)
    assert not spectral.kernel_applicable(w, (1, 2), (4, 0))  # stride on V
    assert not spectral.kernel_applicable(w, (1, 1), (4, 0), groups=2)
    assert not spectral.kernel_applicable(w, (1, 1), (4, 0), dilation=(2, 1))


@pytest.mark.parametrize("n, c, c_out, t, stride", [(3, 8, 12, 19, 1), (4, 16, 16, 20, 2), (2, 5, 7, 1, 1), (3, 6, 6, 2, 2)])
def test_training_conv_forward_and_backward_equal_atens(n, c, c_out, t, stride, monkeypatch):
    """The training-step forms (no autograd: called inside fused nodes) against conv2d and
    aten.convolution_backward, in float64 and in several chunks of rows."""
    import torch.nn.functional as F

    monkeypatch.setattr(spectral, "CHUNK_FLOATS", 500)
    torch.manual_seed(n * c + t)
    x = torch.randn(n, c, t, 16, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(c_out, c, 9, 1, dtype=torch.float64), torch.randn(c_out, dtype=torch.float64)
    ref = F.conv2d(x, w, b, (stride, 1), (4, 0))
    out = spectral.conv_forward(x, w, b, (stride, 1))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-11)
    grad_y = torch.randn_like(ref)
    expected = torch.ops.aten.convolution_backward(grad_y, x, w, [c_out], [stride, 1], [4, 0], [1, 1], False, [0, 0],
                                                   1, [True, True, True])
    got = spectral.conv_backward(grad_y, x, w, (stride, 1), True, (True, True, True))
    for a, e in zip(got, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-11)
    assert spectral.conv_backward(grad_y, x, w, (stride, 1), True, (False, True, False))[0::2] == (None, None)


def test_training_form_applies_to_wide_float32_only():
    x = torch.randn(2, 64, 24, 4)
    w = torch.randn(64, 64, 9, 1)
    assert spectral.TRAIN_MIN_CHANNELS == 64 and spectral.train_applicable(x, w, (1, 1), (4, 0))
    assert spectral.train_applicable(x, w, (2, 1), (4, 0))
    assert not spectral.train_applicable(x, w, (1, 2), (4, 0))
    assert not spectral.train_applicable(x, w, (1, 1), (3, 0))
    assert not spectral.train_applicable(x.double(), w.double(), (1, 1), (4, 0))
    assert not spectral.train_applicable(x[:, :32], w[:32, :32], (1, 1), (4, 0))
    assert spectral.TRAIN_MIN_FRAMES == 12
    assert spectral.train_applicable(torch.randn(2, 64, 23, 4), w, (2, 1), (4, 0))  # 12 output frames
    assert not spectral.train_applicable(torch.randn(2, 64, 22, 4), w, (2, 1), (4, 0))  # 11
    assert not spectral.train_applicable(torch.randn(2, 64, 6, 4), w, (1, 1), (4, 0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not spectral.train_applicable(x, w, (1, 1), (4, 0))
