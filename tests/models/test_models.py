"""Encoders (ST-GCN, AFF image branch, CFFN), heads and build_encoder."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from same_step import assert_same_step  # tests/same_step.py
from ssal.errors import SsalInputError
from ssal.models import (
    CFFN,
    STGCN,
    LinearClassifier,
    MLPHead,
    build_encoder,
    count_parameters,
    encoder_settings,
    simam_drop,
)
from ssal.models.aff import AFFBackbone, AFFBlock, AFFTokenMixer, BlockComplexLinear
from ssal.models.stgcn import GraphConv, MaskDropout, layer_plan
from ssal.skeleton import EGAIT16, H36M17

LAYOUTS = [EGAIT16, H36M17]



TINY_GRAPH = {"channels": [4, 8, 8], "dropout": 0.0}
TINY_IMAGE = {"image_channels": 4, "image_depth": 1, "image_blocks": 2, "image_mlp_ratio": 1.0}


def tiny(name: str, **extra) -> dict:
    cfg = {"name": name, "out_dim": 16, **TINY_GRAPH, **extra}
    if name == "cffn":
        cfg.update(TINY_IMAGE)
    return cfg


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
@pytest.mark.parametrize("t", [9, 16, 25])
def test_stgcn_shapes(layout, t: int) -> None:
    enc = build_encoder(tiny("stgcn"), layout)
    v = layout.num_joints
    x = torch.randn(2, 3, t, v)
    maps = enc.feature_maps(x)
    assert [m.shape for m in maps] == [(2, 8, math.ceil(t / 2), v)]
    assert enc(x).shape == (2, 16)
    assert enc.out_dim == 16


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
@pytest.mark.parametrize("t", [9, 16, 25])
def test_cffn_shapes(layout, t: int) -> None:
    enc = build_encoder(tiny("cffn"), layout)
    v = layout.num_joints
    x = torch.randn(2, 3, t, v)
    graph_map, image_map = enc.feature_maps(x)
    assert graph_map.shape == (2, 8, math.ceil(t / 2), v)
    assert image_map.shape == (2, 4, math.ceil(t / 2), v)
    assert enc(x).shape == (2, 16)
    feats = enc.branch_features(x)
    assert set(feats) == {"graph", "image", "gate"}
    assert all(f.shape == (2, 16) for f in feats.values())
    assert torch.all((feats["gate"] > 0) & (feats["gate"] < 1))


def test_default_stgcn_is_aimclrs_encoder() -> None:
    """AimCLR/CrosSCLR's ST-GCN (hidden_channels 16, hidden_dim 256), written out layer by layer."""
    enc = build_encoder({"name": "stgcn"}, EGAIT16).eval()
    widths = [b.gcn.conv.out_channels for b in enc.backbone.blocks]
    assert widths == [16, 16, 16, 16, 32, 32, 32, 64, 64, 256]
    strides = [b.tcn[2].stride[0] for b in enc.backbone.blocks]
    assert strides == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert all(b.tcn[2].kernel_size == (9, 1) for b in enc.backbone.blocks)
    assert enc.backbone.blocks[0].residual is None  # ST-GCN's first layer has no residual
    assert isinstance(enc.backbone.blocks[9].residual, torch.nn.Sequential)  # 64 -> 256 needs a conv
    assert isinstance(enc.fc, torch.nn.Identity) and enc.out_dim == 256  # the pooled feature
    assert enc.backbone.A.shape == (3, 16, 16)
    (m,) = enc.feature_maps(torch.randn(2, 3, 50, 16))
    assert m.shape == (2, 256, 13, 16)
    assert enc(torch.randn(2, 3, 50, 16)).shape == (2, 256)


def test_stgcn_parameter_count_is_aimclrs() -> None:
    """AimCLR's ``Model`` on 16 joints, with its 256 -> 128 output layer, has 843,152 parameters."""
    with_fc = build_encoder({"name": "stgcn", "out_dim": 128}, EGAIT16)
    assert count_parameters(with_fc) == 843_152
    pooled = build_encoder({"name": "stgcn"}, EGAIT16)
    assert count_parameters(pooled) == 843_152 - (256 * 128 + 128)
    # Per layer: data BN 2*48; gcn K*C_in*C_out + K*C_out bias; tcn 9*C*C + C; two BNs 4*C;
    # edge importance 3*16*16; residual conv + BN where the width changes.
    widths = [3, 16, 16, 16, 16, 32, 32, 32, 64, 64, 256]
    total = 2 * 48
    for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):
        total += 3 * c_in * c_out + 3 * c_out + 9 * c_out * c_out + c_out + 4 * c_out + 3 * 16 * 16
        if i > 0 and c_in != c_out:
            total += c_in * c_out + c_out + 2 * c_out
    assert count_parameters(pooled) == total


def test_old_checkpoint_settings_rebuild_the_narrow_encoder() -> None:
    from ssal.inference import upgrade_encoder_config

    cfg = upgrade_encoder_config({"name": "stgcn", "base_channels": 16, "out_dim": 128})
    enc = build_encoder(cfg, EGAIT16)
    assert [b.gcn.conv.out_channels for b in enc.backbone.blocks][-1] == 64 and enc.out_dim == 128
    assert upgrade_encoder_config({"name": "stgcn", "hidden_dim": None}) == {"name": "stgcn", "hidden_dim": None}


def test_default_cffn_image_branch_is_light() -> None:
    stgcn = build_encoder({"name": "stgcn"}, EGAIT16)
    cffn = build_encoder({"name": "cffn"}, EGAIT16)
    extra = count_parameters(cffn) - count_parameters(stgcn)
    assert 0 < extra < 0.5 * count_parameters(stgcn)


def test_image_branch_odd_sizes() -> None:
    branch = AFFBackbone(H36M17, channels=4, depth=2, num_blocks=2, stem_stride=1)
    out = branch(torch.randn(2, 3, 7, 17))
    assert out.shape == (2, 4, 7, 17)


# ------------------------------------------------------------------ graph convolution
def test_graph_conv_equals_reference_loop() -> None:
    torch.manual_seed(0)
    layout = EGAIT16
    v = layout.num_joints
    a = torch.from_numpy(layout.adjacency()) * (0.5 + torch.rand(3, v, v))  # with edge importance
    ci, co, k = 2, 3, 3
    gc = GraphConv(ci, co, k).double()
    x = torch.randn(2, ci, 5, v, dtype=torch.float64)
    a = a.double()
    out = gc(x, a)

    w = gc.subset_weights()  # (K, C_out, C_in)
    b = gc.bias  # (K, C_out)
    ref = torch.zeros(2, co, 5, v, dtype=torch.float64)
    for kk in range(k):
        # ST-GCN: per-subset 1x1 conv (with bias), then multiply by A_k over the joint axis
        conv_k = torch.einsum("oi,nitv->notv", w[kk], x) + b[kk].view(1, co, 1, 1)
        for src in range(v):
            for dst in range(v):
                ref[..., dst] += conv_k[..., src] * a[kk, src, dst]
    assert torch.allclose(out, ref, atol=1e-10)

    # Also ST-GCN's literal form: conv1x1 to K*C channels, then einsum('nkctv,kvw->nctw').
    w_st = w.reshape(k * co, ci)[:, :, None, None]
    y = F.conv2d(x, w_st, b.reshape(k * co)).view(2, k, co, 5, v)
    assert torch.allclose(out, torch.einsum("nkctv,kvw->nctw", y, a), atol=1e-10)


def test_edge_importance_learns_and_can_be_off() -> None:
    enc = build_encoder(tiny("stgcn"), EGAIT16)
    enc(torch.randn(2, 3, 8, 16)).sum().backward()
    imp = enc.backbone.blocks[1].edge_importance
    assert imp.shape == (3, 16, 16) and imp.grad is not None and imp.grad.abs().sum() > 0
    off = build_encoder(tiny("stgcn", edge_importance=False), EGAIT16)
    assert all(b.edge_importance is None for b in off.backbone.blocks)
    assert count_parameters(enc) - count_parameters(off) == 3 * 3 * 16 * 16


def test_mask_dropout() -> None:
    torch.manual_seed(0)
    drop = MaskDropout(0.25)
    x = torch.ones(40000, requires_grad=True)
    y = drop(x)
    assert y.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert abs((y == 0).float().mean().item() - 0.25) < 0.02
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient 1/(1-p) where kept, 0 where dropped
    assert torch.equal(drop.eval()(x), x)


def test_layer_plan() -> None:
    assert layer_plan(8)[4] == (16, 2) and layer_plan(8)[7] == (32, 2) and len(layer_plan(8)) == 10
    assert layer_plan(8)[9] == (256, 1) and layer_plan(8, hidden_dim=32)[9] == (32, 1)
    assert layer_plan(16, num_layers=3) == [(16, 1)] * 3
    assert layer_plan(16, num_layers=3, hidden_dim=24) == [(16, 1), (16, 1), (24, 1)]
    assert layer_plan(channels=[4, 8], hidden_dim=8) == [(4, 1), (8, 2)]
    with pytest.raises(SsalInputError, match="hidden_dim"):
        layer_plan(channels=[4, 8], hidden_dim=16)
    assert layer_plan(channels=[4, 8, 8, 16]) == [(4, 1), (8, 2), (8, 1), (16, 2)]
    assert layer_plan(channels=[4, 8], strides=[1, 1]) == [(4, 1), (8, 1)]


# ------------------------------------------------------------------ AFF
def test_block_complex_linear_is_block_diagonal_complex_matmul() -> None:
    torch.manual_seed(0)
    groups, bi, bo = 3, 2, 4
    layer = BlockComplexLinear(groups, bi, bo, scale=1.0).double()
    xc = torch.randn(2, groups * bi, 3, 5, dtype=torch.complex128)
    out = layer(torch.cat([xc.real, xc.imag], dim=1))
    w = torch.complex(layer.weight_real, layer.weight_imag)  # (G, bo, bi)
    bias = torch.complex(layer.bias_real, layer.bias_imag)
    ref = torch.einsum("goi,ngihw->ngohw", w, xc.view(2, groups, bi, 3, 5)).reshape(2, groups * bo, 3, 5)
    ref = ref + bias.view(1, -1, 1, 1)
    assert torch.allclose(out[:, : groups * bo], ref.real, atol=1e-10)
    assert torch.allclose(out[:, groups * bo :], ref.imag, atol=1e-10)
    # no coupling between groups: input group 0 does not reach output group 1
    assert torch.all(layer.real_weight()[bo : 2 * bo, :bi] == 0)


@pytest.mark.parametrize("t, v", [(6, 16), (7, 17), (5, 5)])
def test_aff_mixer_filter_identity_and_zero(t: int, v: int) -> None:
    mixer = AFFTokenMixer(4, num_blocks=2).double()
    x = torch.randn(2, 4, t, v, dtype=torch.float64)
    with torch.no_grad():
        for p in mixer.fc2.parameters():
            p.zero_()
    # mask = softshrink(0) = 0: the filtered part vanishes, only the inner residual remains
    assert torch.allclose(mixer(x), x, atol=1e-12)
    with torch.no_grad():
        mixer.fc2.bias_real.fill_(1.0 + mixer.sparsity_threshold)  # mask = 1 after softshrink
    # all-pass filter: irfft2(rfft2(x), s=(T, V)) == x, also for odd V
    assert torch.allclose(mixer(x), 2 * x, atol=1e-10)


@pytest.mark.parametrize("t, v", [(19, 16), (6, 25), (50, 16)])
def test_aff_mixer_matmul_form_equals_the_fft_form(t: int, v: int, monkeypatch) -> None:
    """In training on the CPU the mixer runs complex matrix products and matmul transforms
    (torch.fft beyond MATMUL_MAX_FRAMES, T = 50): same values and gradients (inputs and
    parameters) as the torch.fft form."""
    import ssal.models.aff as aff_module

    torch.manual_seed(3)
    mixer = AFFTokenMixer(8, num_blocks=2).train()
    with torch.no_grad():  # masks well above the softshrink threshold, so both branches are used
        for p in mixer.parameters():
            p.mul_(20)
    x = torch.randn(4, 8, t, v, requires_grad=True)
    assert aff_module.matmul_form_applicable(mixer, x)
    y_mm = mixer(x)
    g = torch.randn_like(y_mm)
    grads_mm = torch.autograd.grad(y_mm, [x, *mixer.parameters()], g)
    monkeypatch.setattr(aff_module, "matmul_form_applicable", lambda mixer, x: False)
    y_fft = mixer(x)
    grads_fft = torch.autograd.grad(y_fft, [x, *mixer.parameters()], g)
    torch.testing.assert_close(y_mm, y_fft, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_mm, grads_fft):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert not aff_module.matmul_form_applicable(mixer.eval(), x)  # evaluation keeps torch.fft


def test_aff_block_matmul_form_equals_the_modules(monkeypatch) -> None:
    """The whole block in training (channel MLP by batched products, mixer by matmul transforms):
    values, gradients and BatchNorm running statistics equal the modules' FFT form."""
    import ssal.models.aff as aff_module

    torch.manual_seed(4)
    block = AFFBlock(8, num_blocks=2).train()
    ref = copy.deepcopy(block)
    x = torch.randn(3, 8, 11, 16) * 2 + 0.5
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    assert aff_module.matmul_form_applicable(block, xa)
    ya = block(xa, recompute=False)
    monkeypatch.setattr(aff_module, "matmul_form_applicable", lambda module, x: False)
    yb = ref(xb, recompute=False)
    assert_same_step(block, ref, xa, xb, ya, yb)


def test_aff_mixer_is_global_in_time_and_joints() -> None:
    torch.manual_seed(0)
    mixer = AFFTokenMixer(4, num_blocks=2)
    x = torch.zeros(1, 4, 8, 16, requires_grad=True)
    x0 = torch.randn(1, 4, 8, 16)
    y = mixer(x + x0)
    y[0, :, 0, 0].sum().backward()
    # one output token depends on input tokens far away in T and V (a global mixer)
    assert x.grad[0, :, 5, 11].abs().sum() > 0


# ------------------------------------------------------------------ CFFN
def test_gradients_reach_both_cffn_branches() -> None:
    enc = build_encoder(tiny("cffn"), EGAIT16)
    x = torch.randn(2, 3, 12, 16)
    maps = enc.feature_maps(x)
    loss = enc.fuse(maps).pow(2).sum() + enc.fuse([simam_drop(m) for m in maps]).pow(2).sum()
    loss.backward()
    graph_grad = enc.graph_branch.blocks[0].gcn.conv.weight.grad
    image_grad = enc.image.stem[0].weight.grad
    mixer_grad = enc.image.blocks[0].mixer.fc2.bias_real.grad
    for g in (graph_grad, image_grad, mixer_grad):
        assert g is not None and g.abs().sum() > 0


def test_fuse_does_not_modify_maps() -> None:
    enc = build_encoder(tiny("cffn"), EGAIT16)
    maps = enc.feature_maps(torch.randn(2, 3, 8, 16))
    copies = [m.clone() for m in maps]
    enc.fuse(maps)
    assert all(torch.equal(a, b) for a, b in zip(maps, copies))


@pytest.mark.parametrize("off, keep", [("use_graph", "image"), ("use_image", "graph")])
def test_cffn_single_branch(off: str, keep: str) -> None:
    enc = build_encoder(tiny("cffn", **{off: False}), EGAIT16)
    assert isinstance(enc, CFFN) and enc.branch_names == (keep,)
    x = torch.randn(2, 3, 10, 16)
    maps = enc.feature_maps(x)
    assert len(maps) == 1
    assert maps[0].shape[1] == (4 if keep == "image" else 8)
    assert enc(x).shape == (2, 16)
    assert set(enc.branch_features(x)) == {keep}
    with pytest.raises(ValueError):
        enc.fuse(maps + maps)


def test_cffn_concat_fusion_and_no_branch() -> None:
    enc = build_encoder(tiny("cffn", fusion="concat"), EGAIT16)
    assert enc.gate is None and enc.fc.in_features == 32
    assert enc(torch.randn(2, 3, 8, 16)).shape == (2, 16)
    with pytest.raises(SsalInputError, match="at least one branch"):
        build_encoder(tiny("cffn", use_graph=False, use_image=False), EGAIT16)


def _swing_data(seed: int, n: int = 64, t: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes that differ only in how fast the arms swing (random phase and noise)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    freq = torch.where(y == 1, 1.2, 0.3).view(n, 1)
    phase = torch.rand(n, 1, generator=g) * 6.28
    swing = torch.sin(freq * torch.arange(t, dtype=torch.float32) + phase)  # (n, t)
    x = 0.05 * torch.randn(n, 3, t, EGAIT16.num_joints, generator=g)
    for j in EGAIT16.upper_body:
        x[:, 2, :, j] += 0.5 * swing
    return x, y


@pytest.mark.parametrize("name", ["stgcn", "cffn"])
def test_short_training_beats_chance(name: str) -> None:
    torch.manual_seed(0)
    x, y = _swing_data(0)
    enc = build_encoder(tiny(name), EGAIT16)
    clf = LinearClassifier(enc.out_dim, 2)
    opt = torch.optim.Adam([*enc.parameters(), *clf.parameters()], lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(clf(enc(x)), y).backward()
        opt.step()
    # BatchNorm running statistics lag behind after 40 fast steps: recompute them exactly.
    for m in enc.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        enc(x)
    enc.eval()
    x_test, y_test = _swing_data(1)
    with torch.no_grad():
        acc = (clf(enc(x_test)).argmax(1) == y_test).float().mean().item()
    assert acc >= 0.9  # chance is 0.5


# ------------------------------------------------------------------ build_encoder and input checks
def test_build_encoder_types_and_settings_roundtrip() -> None:
    enc = build_encoder(tiny("cffn"), EGAIT16)
    assert isinstance(enc, CFFN)
    again = build_encoder({"name": "cffn", **enc.settings()}, EGAIT16)
    assert count_parameters(again) == count_parameters(enc)
    assert isinstance(build_encoder(tiny("stgcn"), H36M17), STGCN)
    assert "image_channels" in encoder_settings("cffn") and "layout" not in encoder_settings("cffn")


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"name": "stgcn", "hidden": 3}, "unknown setting.*hidden"),
        ({"name": "cffn", "image_width": 3}, "unknown setting.*image_width"),
        ({"name": "resnet"}, "unknown encoder"),
        ({"out_dim": 3}, "name"),
        ({"name": "stgcn", "dropout": 1.5}, "dropout"),
        ({"name": "stgcn", "channels": "16,32"}, "channels"),
        ({"name": "stgcn", "temporal_kernel": 4}, "odd"),
        ({"name": "stgcn", "num_layers": 12}, "num_layers"),
        ({"name": "cffn", "image_channels": 6, "image_blocks": 4}, "divisible"),
        ({"name": "cffn", "fusion": "sum"}, "fusion"),
    ],
)
def test_build_encoder_rejects_bad_config(cfg: dict, match: str) -> None:
    with pytest.raises(SsalInputError, match=match):
        build_encoder(cfg, EGAIT16)


def test_encoder_rejects_wrong_input_shape() -> None:
    enc = build_encoder(tiny("stgcn"), EGAIT16)
    with pytest.raises(SsalInputError, match="16"):
        enc(torch.randn(2, 3, 8, 17))
    with pytest.raises(SsalInputError):
        enc(torch.randn(2, 8, 16))


# ------------------------------------------------------------------ heads
def test_heads() -> None:
    head = MLPHead(16, 32, 8)
    layers = [m for m in head.modules() if isinstance(m, (torch.nn.Linear, torch.nn.ReLU))]
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Linear"]
    assert layers[0].weight.shape == (32, 16) and layers[2].weight.shape == (8, 32)
    assert head(torch.randn(5, 16)).shape == (5, 8)
    clf = LinearClassifier(16, 4)
    assert clf(torch.randn(5, 16)).shape == (5, 4)
    with pytest.raises(SsalInputError):
        LinearClassifier(16, 0)


@pytest.mark.parametrize("name", ["stgcn", "cffn"])
def test_backbone_features_pool_the_last_maps(name):
    from ssal.models import BackboneFeatures

    cfg = {"name": name, "channels": [4, 8], "strides": [1, 2]}
    if name == "cffn":
        cfg.update(image_channels=4, image_depth=1)
    enc = build_encoder(cfg, EGAIT16).eval()
    view = BackboneFeatures(enc)
    x = torch.randn(3, 3, 12, 16)
    feats = view(x)
    maps = enc.feature_maps(x)
    assert view.out_dim == sum(m.shape[1] for m in maps) == feats.shape[1]
    torch.testing.assert_close(feats, torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1))
    assert not enc.training  # probing the width left the encoder's mode alone


# ------------------------------------------------------------------ renamed graph branch
def _old_keys(state: dict) -> dict:
    """A state dict as written before CFFN's ``graph`` submodule became ``graph_branch``."""
    return {k.replace("graph_branch.", "graph."): v for k, v in state.items()}


def test_old_cffn_state_dict_keys_load(tmp_path) -> None:
    from ssal.checkpoint import save_checkpoint
    from ssal.inference import load_encoder
    from ssal.models import upgrade_state_dict

    torch.manual_seed(0)
    enc = build_encoder(tiny("cffn"), EGAIT16).eval()
    old = _old_keys(enc.state_dict())
    assert any(k.startswith("graph.blocks.") for k in old) and "proj.graph.weight" in old
    # The renaming maps exactly the branch's keys back and leaves proj.graph (a ModuleDict key).
    assert upgrade_state_dict(old, enc.state_dict()).keys() == enc.state_dict().keys()
    with pytest.raises(RuntimeError):
        build_encoder(tiny("cffn"), EGAIT16).load_state_dict(old)
    save_checkpoint({"encoder_config": tiny("cffn"), "layout": EGAIT16.name, "encoder": old,
                     "classes": ["a", "b"]}, tmp_path / "old.pt")
    loaded, _ = load_encoder(tmp_path / "old.pt")
    x = torch.randn(3, 3, 12, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), enc(x), rtol=0, atol=0)
