"""SimAM energy/attention against hand-computed values, and the energy-based joint/frame drop."""

from __future__ import annotations

import math

import pytest
import torch

from ssal.models.simam import E_LAMBDA, simam_attention, simam_drop, simam_energy



def _energy_loops(x: torch.Tensor, lam: float = E_LAMBDA) -> list:
    """SimAM inverse energy with plain Python loops over a nested list copy of ``x``."""
    data = x.tolist()
    out = []
    for sample in data:
        out_s = []
        for chan in sample:
            values = [val for row in chan for val in row]
            m = len(values)
            mean = sum(values) / m
            var = sum((val - mean) ** 2 for val in values) / (m - 1)
            out_s.append([[(val - mean) ** 2 / (4 * (var + lam)) + 0.5 for val in row] for row in chan])
        out.append(out_s)
    return out


def test_energy_hand_computed_2x2() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])  # (1, 1, T=2, V=2), mean 3
    # d = 4, 1, 0, 9; sum d / (T V - 1) = 14 / 3
    denom = 4 * (14 / 3 + 1e-4)
    expected = [[4 / denom + 0.5, 1 / denom + 0.5], [0.5, 9 / denom + 0.5]]
    e = simam_energy(x)
    assert e.shape == x.shape
    assert torch.allclose(e[0, 0], torch.tensor(expected), atol=1e-6)
    att = simam_attention(x)
    expected_att = [[1 / (1 + math.exp(-v)) for v in row] for row in expected]
    assert torch.allclose(att[0, 0], torch.tensor(expected_att), atol=1e-6)
    # the element at the mean has the lowest attention, sigmoid(0.5)
    assert att[0, 0, 1, 0].item() == pytest.approx(1 / (1 + math.exp(-0.5)), abs=1e-6)


def test_energy_matches_loop_reference_per_channel() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    x[1, 2] = 7.0  # a constant channel: d = 0 everywhere, e = 0.5 exactly
    e = simam_energy(x)
    assert torch.allclose(e, torch.tensor(_energy_loops(x), dtype=torch.float64), atol=1e-12)
    assert torch.all(e[1, 2] == 0.5)


def test_attention_range() -> None:
    x = torch.randn(3, 4, 6, 7) * 5
    att = simam_attention(x)
    assert torch.all(att >= 1 / (1 + math.exp(-0.5)) - 1e-7)
    assert torch.all(att < 1)


def _drop_reference(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per-sample loop version of the joint-then-frame drop."""
    out = x.clone()
    n, _, t, v = x.shape
    for i in range(n):
        s = out[i : i + 1]
        joint_score = simam_attention(s)[0].mean(dim=(0, 1))
        keep_j = [j for j in range(v) if joint_score[j] < threshold]
        s_j = torch.zeros_like(s)
        for j in keep_j:
            s_j[..., j] = s[..., j] * (v / len(keep_j))
        frame_score = simam_attention(s_j)[0].mean(dim=(0, 2))
        keep_t = [f for f in range(t) if frame_score[f] < threshold]
        s_t = torch.zeros_like(s)
        for f in keep_t:
            s_t[:, :, f] = s_j[:, :, f] * (t / len(keep_t))
        out[i] = s_t[0]
    return out


@pytest.mark.parametrize("threshold", [0.66, 0.68, 0.7])
def test_drop_matches_reference(threshold: float) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, 8, 5, generator=g, dtype=torch.float64)
    x[0, :, :, 2] += 6.0  # a salient joint
    x[1, :, 3, :] += 6.0  # a salient frame
    x_before = x.clone()
    out = simam_drop(x, threshold)
    assert torch.equal(x, x_before), "simam_drop must not modify its input"
    assert torch.allclose(out, _drop_reference(x, threshold), atol=1e-12)
    assert 0 < (out == 0).double().mean() < 1  # something, not everything, was dropped


def test_drop_zeroes_salient_joint_and_frame_rescales_rest() -> None:
    g = torch.Generator().manual_seed(2)
    n, c, t, v = 2, 8, 10, 6
    x = torch.randn(n, c, t, v, generator=g) * 0.1
    x[0, :, :, 4] += 5.0  # joint 4 of sample 0 stands out in every frame
    x[1, :, 7, :] += 5.0  # frame 7 of sample 1 stands out at every joint
    out = simam_drop(x, 0.7)
    joint_score0 = simam_attention(x[:1]).mean(dim=(1, 2))[0]
    assert joint_score0[4] >= 0.7 and (joint_score0[torch.arange(v) != 4] < 0.7).all()
    assert torch.all(out[0, :, :, 4] == 0)
    assert torch.all(out[1, :, 7, :] == 0)
    # Sample 0: only joint 4 dropped (frames of the joint-dropped map are then unremarkable).
    kept0 = out[0][:, :, torch.arange(v) != 4]
    assert torch.allclose(kept0, x[0][:, :, torch.arange(v) != 4] * v / (v - 1), atol=1e-5)
    # Sample 1: the joints are alike, so no joint is dropped; only frame 7, rescaled by T/(T-1).
    kept1 = out[1][:, torch.arange(t) != 7]
    assert torch.allclose(kept1, x[1][:, torch.arange(t) != 7] * t / (t - 1), atol=1e-5)


def test_drop_threshold_extremes() -> None:
    x = torch.randn(3, 4, 5, 6)
    assert torch.equal(simam_drop(x, threshold=1.01), x)  # nothing dropped, scale 1
    out = simam_drop(x, threshold=0.5)  # every score >= sigmoid(0.5) > 0.5: all dropped
    assert torch.all(out == 0) and torch.isfinite(out).all()


def test_drop_gradient_only_through_kept_entries() -> None:
    x = (torch.randn(2, 4, 6, 5) * 0.1).requires_grad_()
    with torch.no_grad():
        x[0, :, :, 1] += 4.0
    out = simam_drop(x, 0.7)
    out.sum().backward()
    dropped = out.detach() == 0
    assert torch.all(x.grad[0, :, :, 1] == 0)
    assert torch.all(x.grad[~dropped] > 0)
