"""The PSTL learner (``model.learner: pstl``): the ST-GCN sub-graph forward of its spatial-mask
view, one training step written out by hand, its settings, and a short run that learns."""

from __future__ import annotations

import copy

import pytest
import torch

from ssal.augment.pstl import central_spatial_mask_joints, motion_attention_temporal_mask
from ssal.config import resolve_config
from ssal.errors import SsalInputError
from ssal.methods.learners import build_learner
from ssal.methods.losses import barlow_twins_loss
from ssal.methods.pstl import PSTLLearner, mask_counts
from ssal.models import STGCN
from ssal.skeleton import EGAIT16

SMALL = {"channels": [8, 16, 16], "strides": [1, 2, 1], "hidden_dim": None}


def _model(**changes):
    cfg = resolve_config("pstl")["model"]
    cfg["encoder"].update(SMALL)
    cfg["pstl"]["projector_dim"] = 32
    cfg["augment"]["general"]["clip_len"] = 20
    for key, value in changes.items():
        cfg["pstl"][key] = value
    return cfg


def test_joint_subset_forward_is_the_graph_with_the_hidden_joints_cut_out():
    """PSTL's ``ignore_joint``: the remaining joints' maps equal a full forward in which the
    hidden joints' rows and columns of the adjacency are zero (eval mode, so BatchNorm is
    per joint), whatever the hidden joints hold."""
    torch.manual_seed(0)
    enc = STGCN(EGAIT16, channels=[8, 16], strides=[1, 2]).eval()
    for block in enc.backbone.blocks:  # non-trivial learned edge weights
        torch.nn.init.uniform_(block.edge_importance, 0.5, 1.5)
    hidden = [2, 5, 11]
    remain = torch.tensor([j for j in range(16) if j not in hidden])
    cut = copy.deepcopy(enc)
    cut.backbone.A[:, hidden, :] = 0
    cut.backbone.A[:, :, hidden] = 0
    x = torch.randn(3, 3, 12, 16)
    noisy = x.clone()
    noisy[..., hidden] = torch.randn(3, 3, 12, len(hidden)) * 100
    with torch.no_grad():
        sub = enc.joint_subset_maps(x, remain)[0]
        full = cut.feature_maps(noisy)[0]
        assert sub.shape == (3, 16, 6, 13)
        torch.testing.assert_close(sub, full[..., remain], rtol=1e-5, atol=1e-5)
        # every joint kept: the plain forward
        torch.testing.assert_close(enc.joint_subset_maps(x, torch.arange(16))[0], enc.feature_maps(x)[0])


def test_training_step_is_two_barlow_twins_terms_on_the_three_views():
    torch.manual_seed(1)
    learner = build_learner(_model(), EGAIT16)
    assert isinstance(learner, PSTLLearner)
    assert (learner.mask_joint, learner.mask_frame) == (5, 4)  # 0.32 * 16, 0.2 * 20
    x = torch.randn(8, 3, 40, 16)
    learner.train()
    frozen = copy.deepcopy(learner)
    torch.manual_seed(3)  # the encoder's dropout
    out = learner(x, torch.Generator().manual_seed(7))

    # the same draws, in the same order, written out
    g = torch.Generator().manual_seed(7)
    hidden = central_spatial_mask_joints(EGAIT16, 5, g)
    remain = torch.tensor([j for j in range(16) if j not in hidden])
    s1, s2, s3 = (frozen.view(x, g) for _ in range(3))
    s2 = motion_attention_temporal_mask(s2, 4, g)
    assert s1.shape == (8, 3, 20, 16) and s2.shape == (8, 3, 12, 16)
    enc, proj = frozen.encoder, frozen.projector
    torch.manual_seed(3)
    p1, p2 = proj(enc(s1)), proj(enc(s2))
    p3 = proj(enc.fuse(enc.joint_subset_maps(s3, remain)))
    temporal, joint = barlow_twins_loss(p1, p2, 2e-4), barlow_twins_loss(p1, p3, 2e-4)
    torch.testing.assert_close(out["bt_temporal"], temporal.detach())
    torch.testing.assert_close(out["bt_joint"], joint.detach())
    torch.testing.assert_close(out["loss"].detach(), (temporal + joint).detach())


def test_projector_is_three_bias_free_layers():
    learner = build_learner(_model(), EGAIT16)
    linears = [m for m in learner.projector if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 32), (32, 32), (32, 32)]
    assert all(m.bias is None for m in linears)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in learner.projector) == 2
    # the optimiser trains the encoder and the projector
    assert len(list(learner.trainable_parameters())) == len(list(learner.parameters()))


def test_short_run_lowers_the_loss():
    torch.manual_seed(0)
    learner = build_learner(_model(), EGAIT16).train()
    x = torch.randn(32, 3, 30, 16).cumsum(dim=2) * 0.05  # smooth motion
    opt = torch.optim.Adam(learner.parameters(), lr=5e-3)
    losses = []
    for step in range(25):
        loss = learner(x, torch.Generator().manual_seed(step))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_mask_counts_follow_the_rig_and_clip():
    settings = resolve_config("pstl")
    from ssal.config.schema import PSTLConfig

    assert mask_counts(PSTLConfig(), 25, 50) == (8, 10)  # the reference's counts on NTU
    assert mask_counts(PSTLConfig(), 16, 32) == (5, 6)
    assert settings["model"]["pstl"]["projector_dim"] == 6144


def test_bad_settings_are_one_clear_error():
    cfg = _model()
    cfg["encoder"] = {"name": "cffn"}
    with pytest.raises(SsalInputError, match="pstl needs stgcn"):
        build_learner(cfg, EGAIT16)
    with pytest.raises(SsalInputError, match="mask_frame_fraction"):
        cfg = _model(mask_frame_fraction=0.49)
        cfg["augment"]["general"]["clip_len"] = 2
        build_learner(cfg, EGAIT16)
