"""PSTL's pieces pinned to its reference (YujieOuO/PSTL ``model.py``), written out the slow way:
the Barlow Twins loss of ``BTwins.forward`` (after the projector), the motion-attention temporal
mask ``motion_att_temp_mask`` and the degree-weighted draw of ``central_spacial_mask``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ssal.augment.pstl import central_spatial_mask_joints, joint_degrees, motion_attention_temporal_mask
from ssal.methods.losses import barlow_twins_loss
from ssal.skeleton import EGAIT16


def _reference_btwins(feat1: torch.Tensor, feat2: torch.Tensor, lambd: float) -> torch.Tensor:
    """``BTwins.forward`` of the reference without its projector, as written there."""
    bn = nn.BatchNorm1d(feat1.shape[1], affine=False)
    f1, f2 = bn(feat1), bn(feat2)
    n, d = f1.shape
    c = (f1.T @ f2).div_(n)
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    flat = c.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()  # the reference's off_diagonal
    return on_diag + lambd * flat.pow_(2).sum()


def test_barlow_twins_loss_by_hand():
    z1 = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [2.0, 5.0]])
    z2 = np.array([[0.5, 1.0], [2.0, 2.0], [1.0, 0.0], [3.0, 4.0]])

    def standardise(z):
        return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)  # biased variance, as BatchNorm1d in training

    c = standardise(z1).T @ standardise(z2) / 4
    expected = ((np.diag(c) - 1) ** 2).sum() + 0.01 * (c[0, 1] ** 2 + c[1, 0] ** 2)
    got = barlow_twins_loss(torch.tensor(z1), torch.tensor(z2), 0.01)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_barlow_twins_loss_is_the_references():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    assert torch.allclose(barlow_twins_loss(z1, z2, 2e-4), _reference_btwins(z1, z2, 2e-4), atol=1e-6)
    # identical, decorrelated views: the loss is near 0; a view against its negative: 4 per dimension
    eye = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(eye, eye, 1.0).item() == pytest.approx(0.0, abs=1e-4)
    assert barlow_twins_loss(eye, -eye, 0.0).item() == pytest.approx(8.0, abs=1e-3)


def test_motion_attention_temporal_mask_the_slow_way():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 12, 5, generator=g)
    mask_frame = 3
    out = motion_attention_temporal_mask(x, mask_frame, torch.Generator().manual_seed(7))
    assert out.shape == (2, 3, 12 - 2 * mask_frame, 5)
    # the random frames: the same draw as the function's
    remain = 12 - mask_frame
    chosen = sorted(torch.randperm(remain, generator=torch.Generator().manual_seed(7))[: remain - mask_frame].tolist())
    for i in range(2):
        att = []
        for t in range(12):
            if t == 11:
                att.append(0.0)  # the last frame has no motion (the reference pads it with zeros)
            else:
                att.append(-float(((x[i, :, t + 1] - x[i, :, t]) ** 2).mean()))
        kept = sorted(sorted(range(12), key=lambda t: -att[t])[:remain])
        expected = x[i][:, [kept[k] for k in chosen]]
        assert torch.equal(out[i], expected)
    with pytest.raises(ValueError):
        motion_attention_temporal_mask(x, 6)


def test_central_spatial_mask_draws_joints_by_degree():
    degrees = joint_degrees(EGAIT16)
    by_hand = [0] * 16
    for a, b in EGAIT16.edges:
        by_hand[a] += 1
        by_hand[b] += 1
    assert degrees == by_hand and sum(degrees) == 2 * len(EGAIT16.edges)
    g = torch.Generator().manual_seed(0)
    counts = np.zeros(16)
    draws = 6000
    for _ in range(draws):
        (j,) = central_spatial_mask_joints(EGAIT16, 1, g)
        counts[j] += 1
    expected = np.array(degrees) / sum(degrees)
    assert np.abs(counts / draws - expected).max() < 0.02  # central joints are hidden more often
    many = central_spatial_mask_joints(EGAIT16, 8, g)
    assert many == sorted(set(many)) and 1 <= len(many) <= 8 and all(0 <= j < 16 for j in many)
    assert central_spatial_mask_joints(EGAIT16, 0, g) == []
