"""The temporal convolution through a DFT over time (ssal.models.spectral) against conv2d."""

from __future__ import annotations

import pytest
import torch

import ssal.models.spectral as spectral
from ssal.models.spectral import SpectralTemporalConv


def _direct_and_spectral(conv: torch.nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sp = SpectralTemporalConv(conv)
    n, _, t, v = x.shape
    out = torch.zeros(sp.output_length(t), n, v, conv.out_channels)
    with torch.no_grad():
        ref = conv(x)
        got = sp(x.permute(2, 0, 3, 1).contiguous(), out)
    assert got is out
    return ref, got.permute(1, 3, 0, 2)


@pytest.mark.parametrize("c, c_out, t, stride, kernel", [
    (8, 12, 19, 1, 9), (16, 16, 20, 2, 9), (6, 5, 1, 1, 9), (6, 5, 2, 2, 9), (4, 4, 3, 1, 9), (5, 7, 11, 3, 5),
    (32, 24, 75, 1, 9)])
def test_spectral_temporal_conv_equals_conv2d(c, c_out, t, stride, kernel):
    torch.manual_seed(c * t)
    conv = torch.nn.Conv2d(c, c_out, (kernel, 1), padding=((kernel - 1) // 2, 0), stride=(stride, 1))
    x = torch.randn(3, c, t, 16)
    ref, got = _direct_and_spectral(conv, x)
    assert got.shape == ref.shape == (3, c_out, (t - 1) // stride + 1, 16)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_spectral_conv_adds_into_out_without_bias_and_in_chunks(monkeypatch):
    conv = torch.nn.Conv2d(6, 4, (9, 1), padding=(4, 0), bias=False)
    x = torch.randn(7, 6, 13, 5)
    monkeypatch.setattr(spectral, "CHUNK_FLOATS", 1)  # one sequence per chunk
    sp = SpectralTemporalConv(conv)
    base = torch.randn(13, 7, 5, 4)
    out = base.clone()
    with torch.no_grad():
        sp(x.permute(2, 0, 3, 1).contiguous(), out)
        ref = conv(x).permute(2, 0, 3, 1)
    torch.testing.assert_close(out, base + ref, rtol=1e-5, atol=1e-5)


def test_spectral_conv_by_hand_single_tap():
    # A (3 x 1) kernel with only the centre tap w: y[t] = w x[t] + b, exactly a per-time scaling.
    conv = torch.nn.Conv2d(1, 1, (3, 1), padding=(1, 0))
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 0] = 2.0
        conv.bias.fill_(0.5)
    x = torch.arange(5.0).view(1, 1, 5, 1)
    _, got = _direct_and_spectral(conv, x)
    torch.testing.assert_close(got.flatten(), 2 * torch.arange(5.0) + 0.5, rtol=0, atol=1e-5)


def test_spectral_conv_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="padding"):
        SpectralTemporalConv(torch.nn.Conv2d(2, 2, (9, 1), padding=(0, 0)))
    with pytest.raises(ValueError, match="padding"):
        SpectralTemporalConv(torch.nn.Conv2d(2, 2, (4, 1), padding=(2, 0)))
    sp = SpectralTemporalConv(torch.nn.Conv2d(2, 3, (9, 1), padding=(4, 0)))
    with pytest.raises(ValueError, match="time-outer"):
        sp(torch.randn(5, 1, 4, 2), torch.zeros(5, 1, 4, 2))  # out has 2 channels, not 3


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


def test_training_form_applies_to_wide_stride_one_float32_only():
    x = torch.randn(2, 128, 10, 4)
    w = torch.randn(128, 128, 9, 1)
    assert spectral.TRAIN_MIN_CHANNELS == 128 and spectral.train_applicable(x, w, (1, 1), (4, 0))
    assert not spectral.train_applicable(x, w, (2, 1), (4, 0))  # stride 2: slower (measured)
    assert not spectral.train_applicable(x.double(), w.double(), (1, 1), (4, 0))
    assert not spectral.train_applicable(x[:, :64], w[:64, :64], (1, 1), (4, 0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not spectral.train_applicable(x, w, (1, 1), (4, 0))
