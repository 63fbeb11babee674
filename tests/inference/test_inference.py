"""BatchNorm folding for inference (ssal.models.fold) and its use by ``ssal.load``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssal.inference import EmotionModel, fold_for_inference, save_classifier
from ssal.inference import load as load_model
from ssal.models import BackboneFeatures, build_encoder
from ssal.models.fold import FoldedAFFTrunk, FoldedSTGCNBlock, bn_affine, fold_batchnorm, fold_bn_conv1x1, fold_conv_bn
from ssal.models.heads import LinearClassifier
from ssal.skeleton import EGAIT16, H36M17

CONFIGS = {
    "stgcn": {"name": "stgcn", "channels": [8, 16, 16, 32], "strides": [1, 2, 1, 2], "dropout": 0.3},
    "stgcn_fc": {"name": "stgcn", "channels": [8, 16], "out_dim": 12, "edge_importance": False},
    "cffn": {"name": "cffn", "out_dim": 16, "channels": [8, 16, 16], "image_channels": 8, "image_depth": 2,
             "image_blocks": 2, "image_mlp_ratio": 1.5},
}


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affines, and edge importances away from 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g))
                m.running_var.copy_(0.3 + 2 * torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g) * 0.5)
        for name, p in module.named_parameters():
            if "edge_importance" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
    return module


def test_bn_affine_and_conv_folds_by_hand():
    bn = randomise(torch.nn.BatchNorm2d(3)).eval()
    s, t = bn_affine(bn)
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(bn(x), (s.float().view(1, 3, 1, 1) * x + t.float().view(1, 3, 1, 1)))
    conv = torch.nn.Conv2d(3, 4, (3, 1), padding=(1, 0))
    bn4 = randomise(torch.nn.BatchNorm2d(4), 1).eval()
    torch.testing.assert_close(fold_conv_bn(conv, bn4)(x), bn4(conv(x)), rtol=0, atol=1e-5)
    conv1 = torch.nn.Conv2d(3, 4, 1)
    torch.testing.assert_close(fold_bn_conv1x1(bn, conv1)(x), conv1(bn(x)), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="1x1"):
        fold_bn_conv1x1(bn, conv)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("layout", [EGAIT16, H36M17], ids=lambda l: l.name)
def test_folded_encoder_equals_original(name, layout):
    torch.manual_seed(0)
    enc = randomise(build_encoder(CONFIGS[name], layout)).eval()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    folded = fold_batchnorm(enc)
    # every BatchNorm folded or turned into an affine map (the AFF branch's norm1 and final norm)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    if name.startswith("stgcn"):
        assert all(isinstance(b, FoldedSTGCNBlock) for b in folded.backbone.blocks)
    if name.startswith("cffn"):
        assert isinstance(folded.image.blocks, FoldedAFFTrunk)
    x = torch.randn(5, 3, 23, layout.num_joints)
    with torch.inference_mode():
        out, ref = folded(x), enc(x)
        assert out.abs().max() > 0.1
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
        for a, b in zip(folded.feature_maps(x), enc.feature_maps(x)):  # entries reach ~20: relative too
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # The original is untouched and can still train; the folded copy refuses to.
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())
    with pytest.raises(RuntimeError, match="inference only"):
        folded.train()(x)


def test_folded_backbone_view_and_grad_mode_agree():
    enc = randomise(build_encoder(CONFIGS["cffn"], EGAIT16)).eval()
    view = fold_for_inference(BackboneFeatures(enc))
    x = torch.randn(3, 3, 20, 16)
    with torch.no_grad():
        ref = BackboneFeatures(enc)(x)
        torch.testing.assert_close(view(x), ref, rtol=0, atol=1e-5)
    # Outside no_grad / inference mode (the two-pass add + ReLU path) the result is the same.
    torch.testing.assert_close(view(x), ref, rtol=0, atol=1e-5)


def test_load_predicts_with_the_folded_encoder(tmp_path):
    torch.manual_seed(1)
    cfg = CONFIGS["stgcn"]
    enc = randomise(build_encoder(cfg, EGAIT16), 3).eval()
    head = LinearClassifier(enc.out_dim, 3)
    save_classifier(tmp_path / "c.pt", enc, head, encoder_config=cfg, layout=EGAIT16, classes=["a", "b", "c"],
                    preprocess=None, clip_len=None, protocol="linear")
    fast, plain = load_model(tmp_path / "c.pt"), load_model(tmp_path / "c.pt", optimize=False)
    assert isinstance(fast, EmotionModel) and fast.runner is not None and plain.runner is None
    x = np.random.default_rng(0).standard_normal((9, 3, 30, 16)).astype(np.float32)
    p_fast, p_plain = fast.predict(x, batch_size=4), plain.predict(x, batch_size=4)
    assert p_fast.shape == (9, 3) and np.allclose(p_fast.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(p_fast, p_plain, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fast.embed(x), plain.embed(x), rtol=0, atol=1e-5)
    # The checkpoint's encoder stays a plain trainable module.
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.encoder.modules())


@pytest.mark.parametrize("spectral", [False, True])
@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("c_in, c_out, stride", [(3, 8, 1), (8, 16, 2), (16, 16, 1)])
def test_folded_stgcn_block_dense_and_factorised_equal_the_block(dense, spectral, c_in, c_out, stride):
    from ssal.models.stgcn import STGCNBlock

    torch.manual_seed(c_in + c_out)
    enc = build_encoder({"name": "stgcn", "channels": [c_in, c_out], "strides": [1, stride]}, EGAIT16)
    randomise(enc).eval()
    block, adjacency = enc.backbone.blocks[1], enc.backbone.A
    assert isinstance(block, STGCNBlock)
    folded = FoldedSTGCNBlock(block, adjacency, dense=dense, spectral=spectral).eval()
    assert folded.dense is dense and folded.spectral is spectral
    x = torch.randn(3, c_in, 19, 16).relu()
    with torch.inference_mode():
        ref = block(x, adjacency)  # the block applies its edge importance itself
        out = folded(x)
    assert out.abs().max() > 0.1
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_dense_graph_conv_rule_picks_narrow_layers_only():
    from ssal.models.fold import DENSE_GRAPH_CONV_MAX_RATIO

    enc = build_encoder({"name": "stgcn", "channels": [16, 16, 32, 64]}, EGAIT16).eval()
    folded = fold_batchnorm(enc)
    picked = [b.dense for b in folded.backbone.blocks]
    # ratio V*C_out / (K*(V + C_out)) with V = 16, K = 3: 2.7 (16), 3.6 (32), 4.3 (64)
    assert DENSE_GRAPH_CONV_MAX_RATIO == 3.0 and picked == [True, True, False, False]


def test_conv_gelu_fused_equals_two_steps():
    from ssal.models.fold import conv_gelu

    conv = torch.nn.Conv2d(8, 12, 1)
    x = torch.randn(4, 8, 10, 16)
    ref = torch.nn.functional.gelu(conv(x))
    with torch.no_grad():  # the fused oneDNN path where the build has it
        torch.testing.assert_close(conv_gelu(x, conv), ref, rtol=1e-5, atol=1e-6)
        xl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(conv_gelu(xl, conv), ref, rtol=1e-5, atol=1e-6)
    out = conv_gelu(x, conv)  # grad mode: the two-step path, differentiable
    out.sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_folded_encoder_with_spectral_blocks_equals_original(monkeypatch):
    """Every block through the DFT, then only the wide ones after narrow direct ones."""
    import ssal.models.fold as fold

    enc = randomise(build_encoder({"name": "stgcn", "channels": [8, 16, 16, 32], "strides": [1, 2, 1, 2]},
                                  EGAIT16), 5).eval()
    x = torch.randn(4, 3, 27, 16)
    for threshold, expected in ((1, [True] * 4), (16, [False, True, True, True])):
        monkeypatch.setattr(fold, "SPECTRAL_MIN_CHANNELS", threshold)
        folded = fold_batchnorm(enc)
        assert [b.spectral for b in folded.backbone.blocks] == expected
        with torch.inference_mode():
            torch.testing.assert_close(folded(x), enc(x), rtol=1e-5, atol=1e-5)
            (got,), (ref,) = folded.feature_maps(x), enc.feature_maps(x)
            assert got.shape == ref.shape == (4, 32, 7, 16)
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_spectral_rule_picks_wide_layers():
    from ssal.config import resolve_config
    from ssal.models.fold import SPECTRAL_MIN_CHANNELS

    enc = build_encoder(dict(resolve_config("aimclr")["model"]["encoder"]), EGAIT16).eval()
    widths = [b.tconv.out_channels for b in fold_batchnorm(enc).backbone.blocks]
    picked = [b.spectral for b in fold_batchnorm(enc).backbone.blocks]
    assert SPECTRAL_MIN_CHANNELS == 128 and picked == [w >= 128 for w in widths] and any(picked) and not all(picked)


def test_predict_default_batch_is_per_device_and_capped(tmp_path):
    from ssal.config.schema import PREDICT_BATCH_ACCELERATOR, PREDICT_BATCH_CPU

    cfg = CONFIGS["stgcn_fc"]
    enc = build_encoder(cfg, EGAIT16).eval()
    save_classifier(tmp_path / "c.pt", enc, LinearClassifier(enc.out_dim, 2), encoder_config=cfg, layout=EGAIT16,
                    classes=["a", "b"], preprocess=None, clip_len=None, protocol="linear")
    model = load_model(tmp_path / "c.pt")
    model.batch_size = 1000  # the memory bound
    assert model.default_batch_size() == PREDICT_BATCH_CPU == 64
    seen: list[int] = []
    runner = model.runner
    model.runner = torch.nn.Sequential()  # records each batch, then runs the folded encoder
    model.runner.forward = lambda xb: (seen.append(len(xb)), runner(xb))[1]  # type: ignore[method-assign]
    x = np.random.default_rng(0).standard_normal((70, 3, 12, 16)).astype(np.float32)
    assert model.predict(x).shape == (70, 2) and seen == [64, 6]
    seen.clear()
    model.predict(x, batch_size=30)
    assert seen == [30, 30, 10]
    model.batch_size = 20  # a tighter memory bound caps the default and an explicit size alike
    assert model.default_batch_size() == 20
    model.device = torch.device("meta")  # not run: only the device type picks the default
    model.batch_size = 1000
    assert model.default_batch_size() == PREDICT_BATCH_ACCELERATOR == 512
