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
