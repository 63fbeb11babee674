"""MAMP's pieces pinned to its reference (maoyunyao/MAMP ``model_mamp/transformer.py``,
``feeder/tools.py``), written out the slow way: the tokens, the motion-aware masking for a fixed
motion map and seed, the motion target and its per-token standardisation, the masked loss, the
decoder's input, the view (crop-resize and rotation), and the learner built from its preset."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ssal.config import resolve_config
from ssal.config.presets import method_cpu_plan
from ssal.config.resolve import deep_merge
from ssal.errors import SsalInputError
from ssal.methods.learners import LEARNERS, build_learner
from ssal.methods.mamp import (
    CropResize,
    MAMPLearner,
    RandomRotation,
    build_mamp_learner,
    frame_motion,
    masked_mse,
    masking_noise,
    motion_target,
    patchify,
    rotation_matrices,
    split_tokens,
    token_motion,
    visible_count,
)
from ssal.models import SkeletonTransformer, build_encoder
from ssal.skeleton import EGAIT16

TINY_ENCODER = {"name": "transformer", "dim": 16, "depth": 1, "num_heads": 2, "num_frames": 8, "t_patch_size": 2}


def tiny_learner(**kw) -> MAMPLearner:
    torch.manual_seed(0)
    enc = build_encoder(TINY_ENCODER, EGAIT16)
    assert isinstance(enc, SkeletonTransformer)
    settings = {"decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2, **kw}
    return MAMPLearner(enc, None, **settings)


# ---------------------------------------------------------------------- tokens and masking


def test_patchify_the_slow_way():
    x = torch.randn(2, 3, 6, 4)
    got = patchify(x, 3)
    assert got.shape == (2, 2 * 4, 9)
    for n in range(2):
        for s in range(2):
            for j in range(4):
                expected = [x[n, c, s * 3 + f, j] for f in range(3) for c in range(3)]  # frame-major
                assert torch.equal(got[n, s * 4 + j], torch.stack(expected))
    with pytest.raises(ValueError):
        patchify(torch.randn(1, 3, 5, 4), 3)


def test_token_motion_the_slow_way():
    p = torch.randn(2, 3, 4, 6)  # (N, TP, V, D)
    got = token_motion(p)
    for n in range(2):
        for s in range(3):
            for j in range(4):
                src = max(s, 1)  # the first segment takes the second's motion
                expected = sum(abs(float(p[n, src, j, d] - p[n, src - 1, j, d])) for d in range(6)) / 6
                assert got[n, s * 4 + j].item() == pytest.approx(expected, rel=1e-5)


def _reference_masked_set(motion: torch.Tensor, u: torch.Tensor, ratio: float, tau: float) -> list[set[int]]:
    """``motion_aware_random_masking`` element by element: softmax of the scaled motion, its log
    plus Gumbel noise from ``u``, the ``int(L (1 - ratio))`` smallest stay visible."""
    out = []
    n, length = motion.shape
    keep = int(length * (1 - ratio))
    for i in range(n):
        m = [float(v) for v in motion[i]]
        top = max(m)
        scores = [v / (top * tau + 1e-10) for v in m]
        z = sum(math.exp(s) for s in scores)
        noise = [math.log(math.exp(s) / z) - math.log(-math.log(float(u[i, k]) + 1e-10) + 1e-10)
                 for k, s in enumerate(scores)]
        order = sorted(range(length), key=lambda k: noise[k])
        out.append(set(order[keep:]))
    return out


def test_motion_aware_masked_set_for_a_fixed_seed_and_motion_map():
    motion = torch.tensor([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6,
                            1.7, 1.8, 1.9],
                           [2.0, 0.0, 0.0, 3.0, 0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 4.0, 0.2, 0.0, 0.0, 0.1, 0.0, 0.0,
                            0.0, 0.0, 0.0]])
    u = torch.rand(2, 20, generator=torch.Generator().manual_seed(11))
    noise = masking_noise(motion, 0.8, torch.Generator().manual_seed(11))
    keep, restore, mask = split_tokens(noise, 0.75)
    expected = _reference_masked_set(motion, u, 0.75, 0.8)
    for i in range(2):
        hidden = {k for k in range(20) if mask[i, k] == 1.0}
        assert hidden == expected[i]
        assert set(keep[i].tolist()) == set(range(20)) - hidden and len(hidden) == 15
        # restore puts the visible tokens first, in keep's order
        assert [int(restore[i, k]) for k in keep[i].tolist()] == list(range(5))


def test_moving_tokens_are_masked_more_often_and_tau_zero_is_uniform():
    motion = torch.cat([torch.zeros(400, 10), torch.ones(400, 10)], dim=1)
    g = torch.Generator().manual_seed(0)
    _, _, mask = split_tokens(masking_noise(motion, 0.8, g), 0.5)
    still, moving = mask[:, :10].mean().item(), mask[:, 10:].mean().item()
    assert moving > still + 0.3  # softmax(1 / 0.8) against softmax(0): e^1.25 = 3.5x the weight
    u = torch.rand(3, 20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(masking_noise(torch.rand(3, 20), 0.0, torch.Generator().manual_seed(5)), u)


def test_visible_count_is_the_references_int_within_bounds():
    for length in (20, 64, 128, 750):
        assert visible_count(length, 0.9) == int(length * (1 - 0.9))
    assert visible_count(750, 0.9) == 74  # 750 * 0.0999... truncates, as in the reference
    assert visible_count(5, 0.9) == 1 and visible_count(5, 0.0) == 4


# ---------------------------------------------------------------------- target and loss


def test_motion_target_and_its_normalisation_the_slow_way():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 3, 6, 2, generator=g)
    raw = motion_target(x, 3, normalize=False)
    normed = motion_target(x, 3, normalize=True)
    for s in range(2):
        for j in range(2):
            values = []
            for f in range(3):
                t = s * 3 + f
                for c in range(3):
                    values.append(float(x[0, c, t + 1, j] - x[0, c, t, j]) if t + 1 < 6 else 0.0)
            assert raw[0, s * 2 + j].tolist() == pytest.approx(values, abs=1e-6)
            mean = sum(values) / 9
            var = sum((v - mean) ** 2 for v in values) / 8  # unbiased, torch.var's default
            expected = [(v - mean) / math.sqrt(var + 1e-6) for v in values]
            assert normed[0, s * 2 + j].tolist() == pytest.approx(expected, abs=1e-5)
    # motion stride 2: x[t + 2] - x[t], zero for the last two frames
    m2 = frame_motion(x, 2)
    assert torch.allclose(m2[:, :, :4], x[:, :, 2:] - x[:, :, :4]) and not m2[:, :, 4:].any()


def test_masked_mse_by_hand():
    pred = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]]])
    target = torch.tensor([[[0.0, 2.0], [5.0, 5.0], [1.0, 1.0]]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    # token 0: (1 + 0) / 2; token 2: (4 + 4) / 2; token 1 is visible and does not count
    assert masked_mse(pred, target, mask).item() == pytest.approx((0.5 + 4.0) / 2)


def test_training_step_is_the_masked_motion_error_of_the_decoder():
    learner = tiny_learner()
    x = torch.randn(3, 3, 8, 16)
    out = learner(x, torch.Generator().manual_seed(2))
    keep, restore, mask = learner.mask(x, torch.Generator().manual_seed(2))
    pred = learner.decoder(learner.encoder.encode_visible(x, keep), restore)
    expected = masked_mse(pred, motion_target(x, 2), mask)
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(out["mse"], out["loss"].detach()) and not out["mse"].requires_grad
    assert int(mask.sum()) == 3 * (4 * 16 - visible_count(64, 0.9))


def test_decoder_places_latents_and_mask_tokens_the_slow_way():
    learner = tiny_learner()
    dec = learner.decoder
    latent = torch.randn(2, 6, 16)
    keep, restore, _ = split_tokens(torch.rand(2, 64, generator=torch.Generator().manual_seed(1)), 0.9)
    assert keep.shape == (2, 6)
    seen = {}
    handle = dec.blocks[0].register_forward_pre_hook(lambda m, args: seen.setdefault("h", args[0]))
    dec(latent, restore)
    handle.remove()
    h = seen["h"]
    for n in range(2):
        visible = {int(k): i for i, k in enumerate(keep[n])}
        for token in range(64):
            s, j = divmod(token, 16)
            base = dec.embed(latent[n, visible[token]]) if token in visible else dec.mask_token[0, 0]
            expected = base + dec.pos_embed[0, 0, j] + dec.temp_embed[0, s, 0]
            assert torch.allclose(h[n, token], expected, atol=1e-6)


def test_a_few_steps_lower_the_loss():
    learner = tiny_learner().train()
    x = torch.randn(8, 3, 8, 16, generator=torch.Generator().manual_seed(0)).cumsum(dim=2)
    opt = torch.optim.AdamW(learner.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = learner(x, torch.Generator().manual_seed(1))["loss"]  # the same masks every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_steps_draw_only_from_the_generator():
    learner = build_mamp_learner({"encoder": TINY_ENCODER, "learner": "mamp",
                                  "mamp": {"decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2}}, EGAIT16)
    x = torch.randn(4, 3, 30, 16)
    a = learner(x, torch.Generator().manual_seed(3))["loss"]
    torch.manual_seed(123)  # the global stream is not used
    b = learner(x, torch.Generator().manual_seed(3))["loss"]
    c = learner(x, torch.Generator().manual_seed(4))["loss"]
    assert a.item() == b.item() and a.item() != c.item()


# ---------------------------------------------------------------------- the view


def test_crop_resize_is_valid_crop_resize():
    """The reference's crop ``min(max(floor(L p), 64), L)`` at a uniform start, resized by
    ``F.interpolate(bilinear, align_corners=False)`` (to float rounding of its source positions)."""
    op = CropResize(40, (0.5, 1.0), min_frames=20)
    x = torch.randn(5, 3, 90, 4, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([90, 60, 30, 15, 1])
    x[1, :, 60:] = float("nan")  # beyond the valid frames: never read
    got = op(x, torch.Generator().manual_seed(8), lengths)
    g = torch.Generator().manual_seed(8)
    p = 0.5 + 0.5 * torch.rand(5, generator=g)
    u = torch.rand(5, generator=g)
    for i, length in enumerate(lengths.tolist()):
        crop = min(max(math.floor(length * float(p[i])), 20), length)
        start = min(math.floor(float(u[i]) * (length - crop + 1)), length - crop)
        window = x[i : i + 1, :, start : start + crop]
        ref = F.interpolate(window, size=(40, 4), mode="bilinear", align_corners=False)
        assert torch.allclose(got[i : i + 1], ref, atol=1e-4), (i, crop, start)
    assert got.shape == (5, 3, 40, 4) and torch.isfinite(got).all()


def test_random_rotation_is_random_rot():
    angles = torch.tensor([[0.1, -0.2, 0.3]])
    cx, sx = math.cos(0.1), math.sin(0.1)
    cy, sy = math.cos(-0.2), math.sin(-0.2)
    cz, sz = math.cos(0.3), math.sin(0.3)
    rx = torch.tensor([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = torch.tensor([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = torch.tensor([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    assert torch.allclose(rotation_matrices(angles)[0], rz @ ry @ rx, atol=1e-6)
    op = RandomRotation(0.3)
    x = torch.randn(6, 3, 5, 4)
    out = op(x, torch.Generator().manual_seed(1))
    drawn = -0.3 + 0.6 * torch.rand(6, 3, generator=torch.Generator().manual_seed(1))
    assert drawn.abs().max() <= 0.3
    assert torch.allclose(out, torch.einsum("nij,njtv->nitv", rotation_matrices(drawn), x), atol=1e-6)
    assert torch.allclose(out.norm(dim=1), x.norm(dim=1), atol=1e-5)


# ---------------------------------------------------------------------- the preset


def _preset_model(cpu: bool) -> dict:
    model = resolve_config("mamp")["model"]
    return deep_merge(model, method_cpu_plan("mamp")["model"], strict=False) if cpu else model


def test_preset_builds_the_reference_sizes_on_the_meta_device():
    assert LEARNERS["mamp"] is build_mamp_learner
    with torch.device("meta"):
        learner = build_learner(_preset_model(cpu=False), EGAIT16)
    assert isinstance(learner, MAMPLearner)
    enc = learner.evaluated_encoder
    assert isinstance(enc, SkeletonTransformer)
    assert (enc.dim, len(enc.blocks), enc.num_heads, enc.num_frames, enc.t_patch_size, enc.out_dim) == (256, 8, 8, 120, 4, 256)
    assert (learner.decoder.dim, len(learner.decoder.blocks)) == (256, 3)
    assert (learner.mask_ratio, learner.motion_aware_tau, learner.norm_target) == (0.9, 0.8, True)
    train = resolve_config("mamp")["train"]
    assert (train["optimizer"], train["lr"], train["schedule"], train["min_lr"]) == ("adamw", 1e-3, "cosine", 5e-4)


def test_preset_cpu_plan_builds_and_steps():
    learner = build_learner(_preset_model(cpu=True), EGAIT16)
    enc = learner.evaluated_encoder
    assert (enc.dim, len(enc.blocks), enc.num_frames) == (64, 4, 32)
    out = learner(torch.randn(2, 3, 75, 16), torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert enc.blocks[0].attn.qkv.weight.grad is not None and learner.decoder.mask_token.grad is not None


def test_builder_refuses_other_encoders_and_bad_decoder_heads():
    with pytest.raises(SsalInputError, match="transformer"):
        build_learner({"learner": "mamp", "encoder": {"name": "stgcn"}}, EGAIT16)
    with pytest.raises(SsalInputError, match="decoder_heads"):
        build_learner({"learner": "mamp", "encoder": TINY_ENCODER,
                       "mamp": {"decoder_dim": 10, "decoder_heads": 4}}, EGAIT16)


def test_compiled_learner_computes_the_same_loss_with_the_same_state_keys():
    learner = tiny_learner()
    x = torch.randn(2, 3, 8, 16)
    keys = list(learner.state_dict())
    before = learner(x, torch.Generator().manual_seed(0))["loss"].item()
    learner.compile_encoders("eager")
    assert learner(x, torch.Generator().manual_seed(0))["loss"].item() == pytest.approx(before, rel=1e-6)
    assert list(learner.state_dict()) == keys
