"""MAMP's skeleton transformer (``ssal.models.transformer``): the encoder contract, the token
embedding written out the slow way, the resampling to ``num_frames``, the visible-token path,
its settings and its ONNX export."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssal.config.schema import TransformerConfig
from ssal.errors import SsalInputError
from ssal.models import ENCODERS, SkeletonTransformer, build_encoder, count_parameters
from ssal.models.base import BackboneFeatures, resize_time
from ssal.models.transformer import Attention
from ssal.skeleton import EGAIT16, H36M17

TINY = {"name": "transformer", "dim": 16, "depth": 2, "num_heads": 4, "num_frames": 12, "t_patch_size": 3}


def tiny(layout=EGAIT16, **extra) -> SkeletonTransformer:
    torch.manual_seed(0)
    enc = build_encoder({**TINY, **extra}, layout)
    assert isinstance(enc, SkeletonTransformer)
    return enc.eval()


@pytest.mark.parametrize("layout", [EGAIT16, H36M17], ids=lambda l: l.name)
@pytest.mark.parametrize("t", [1, 5, 12, 31])
def test_shapes_at_any_length(layout, t: int) -> None:
    enc = tiny(layout)
    v = layout.num_joints
    x = torch.randn(3, 3, t, v)
    (tokens,) = enc.feature_maps(x)
    assert tokens.shape == (3, 16, 12 // 3, v)
    assert enc(x).shape == (3, 16) and enc.out_dim == 16
    assert enc.num_tokens == 4 * v


def test_forward_is_fuse_of_feature_maps_and_fuse_is_the_token_mean() -> None:
    enc = tiny(out_dim=5)
    x = torch.randn(2, 3, 12, 16)
    maps = enc.feature_maps(x)
    before = maps[0].clone()
    out = enc.fuse(maps)
    assert torch.equal(maps[0], before)  # fuse leaves its input alone
    assert torch.allclose(enc(x), out)
    assert out.shape == (2, 5) and enc.out_dim == 5
    # the mean of the normed tokens, then the fc (the reference's linear-probe head input)
    tokens = enc.encode(enc.embed(x))                   # (N, L, dim), after the final norm
    assert torch.allclose(tokens.std(dim=-1, unbiased=False), torch.ones(2, 4 * 16), atol=1e-3)
    assert torch.allclose(out, enc.fc(tokens.mean(dim=1)), atol=1e-6)
    with pytest.raises(ValueError):
        enc.fuse(maps * 2)


def test_token_embedding_the_slow_way() -> None:
    """Token ``s V + j``: the linear map of joint j's frames ``s u .. s u + u - 1`` plus the
    joint's and the segment's position embeddings."""
    enc = tiny()
    x = torch.randn(2, 3, 12, 16)
    got = enc.embed(x)
    w = enc.joints_embed.proj.weight      # (dim, 3, u, 1)
    b = enc.joints_embed.proj.bias
    u, v = 3, 16
    for n in range(2):
        for s in range(4):
            for j in range(v):
                value = b.clone()
                for c in range(3):
                    for f in range(u):
                        value = value + w[:, c, f, 0] * x[n, c, s * u + f, j]
                value = value + enc.pos_embed[0, 0, j] + enc.temp_embed[0, s, 0]
                assert torch.allclose(got[n, s * v + j], value, atol=1e-5)


def test_attention_is_scaled_dot_product_attention_per_head() -> None:
    torch.manual_seed(1)
    attn = Attention(8, 2)
    x = torch.randn(3, 5, 8)
    q, k, v = attn.qkv(x).view(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    expected = attn.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(3, 5, 8))
    assert torch.allclose(attn(x), expected, atol=1e-6)


@pytest.mark.parametrize("t", [1, 2, 7, 12, 40])
def test_inputs_are_resampled_to_num_frames(t: int) -> None:
    enc = tiny()
    x = torch.randn(2, 3, t, 16)
    assert torch.equal(enc.resample(x), resize_time(x, 12))
    assert torch.allclose(enc(x), enc(resize_time(x, 12)), atol=1e-6)
    if t == 12:
        assert torch.equal(enc.resample(x), x)


def test_encode_visible_keeps_the_position_of_every_token() -> None:
    enc = tiny()
    x = torch.randn(2, 3, 12, 16)
    everything = enc.encode(enc.embed(x))
    # every token, in any order: the same outputs, permuted (no order leaks past the embeddings)
    perm = torch.stack([torch.randperm(64, generator=torch.Generator().manual_seed(s)) for s in (0, 1)])
    got = enc.encode_visible(x, perm)
    assert torch.allclose(got, everything.gather(1, perm.unsqueeze(-1).expand(-1, -1, 16)), atol=1e-5)
    # a subset: the blocks see only those tokens, with their own position embeddings
    keep = perm[:, :7]
    sub = enc.encode(enc.embed(x).gather(1, keep.unsqueeze(-1).expand(-1, -1, 16)))
    assert torch.allclose(enc.encode_visible(x, keep), sub, atol=1e-6)
    assert not torch.allclose(sub, everything.gather(1, keep.unsqueeze(-1).expand(-1, -1, 16)), atol=1e-3)


@pytest.mark.parametrize("settings, word", [
    ({"num_frames": 10, "t_patch_size": 3}, "t_patch_size"),
    ({"dim": 18, "num_heads": 4}, "num_heads"),
    ({"dim": 0}, "dim"),
    ({"depth": 0}, "depth"),
    ({"out_dim": 0}, "out_dim"),
    ({"qkv_bias": "yes"}, "qkv_bias"),
])
def test_bad_settings_are_input_errors(settings, word: str) -> None:
    with pytest.raises(SsalInputError, match=word):
        build_encoder({**TINY, **settings}, EGAIT16)


def test_constructor_defaults_are_the_schemas_and_settings_rebuild_it() -> None:
    defaults = {k: p.default for k, p in inspect.signature(SkeletonTransformer.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    schema = TransformerConfig()
    assert defaults == {f.name: getattr(schema, f.name) for f in dataclasses.fields(schema) if f.name != "name"}
    assert ENCODERS["transformer"] is SkeletonTransformer
    enc = tiny(out_dim=7)
    again = build_encoder({"name": "transformer", **enc.settings()}, EGAIT16)
    again.load_state_dict(enc.state_dict())
    x = torch.randn(2, 3, 9, 16)
    assert torch.allclose(again.eval()(x), enc(x))


def test_reference_sizes_and_meta_device() -> None:
    with torch.device("meta"):
        enc = build_encoder({"name": "transformer"}, EGAIT16)
    assert next(enc.parameters()).is_meta
    v, d, depth, u = 16, 256, 8, 4
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)
    expected = (3 * u * d + d) + depth * block + 2 * d + (120 // u) * d + v * d
    assert count_parameters(enc) == expected
    out = enc(torch.zeros(2, 3, 50, v, device="meta"))
    assert out.shape == (2, 256) and out.is_meta
    assert BackboneFeatures(tiny()).out_dim == 16


def test_initialisation_is_the_references() -> None:
    enc = build_encoder({"name": "transformer", "dim": 64, "depth": 2, "num_heads": 4}, EGAIT16)
    fc1 = enc.blocks[0].mlp.fc1
    bound = (6 / (fc1.in_features + fc1.out_features)) ** 0.5   # Xavier-uniform
    assert fc1.weight.abs().max() <= bound and fc1.weight.abs().max() > 0.9 * bound
    assert torch.equal(fc1.bias, torch.zeros_like(fc1.bias))
    assert 0.015 < enc.pos_embed.std().item() < 0.025 and 0.015 < enc.temp_embed.std().item() < 0.025


# ------------------------------------------------------------------ ONNX export
def test_onnx_export_equals_pytorch_at_any_length(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ssal.cli.main import main
    from ssal.data.preprocess import PreprocessConfig
    from ssal.inference import save_classifier
    from ssal.models.heads import LinearClassifier

    cfg = {**TINY, "out_dim": None}
    enc = tiny()
    head = LinearClassifier(enc.out_dim, 4)
    with torch.no_grad():  # spread the logits so the probabilities depend on the input
        head.fc.weight.mul_(20.0)
    classes = ["happy", "angry", "sad", "neutral"]
    save_classifier(tmp_path / "classifier.pt", enc, head, encoder_config=cfg, layout=EGAIT16, classes=classes,
                    preprocess=PreprocessConfig(length=40).to_dict(), clip_len=12, protocol="linear")
    assert main(["export", "--checkpoint", str(tmp_path / "classifier.pt"), "--format", "onnx",
                 "--out", str(tmp_path / "model.onnx")]) == 0
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(2)
    for n, t in ((1, 12), (4, 12), (3, 29), (2, 5)):
        x = torch.randn(n, 3, t, 16, generator=g)
        with torch.no_grad():
            ref = torch.softmax(head(enc(x)), dim=1).numpy()
        got = sess.run(None, {"x": x.numpy()})[0]
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
        assert n == 1 or np.abs(ref - ref.mean(axis=0)).max() > 1e-3
