"""Tests of the batched augmentations (ssal.augment), on the E-Gait-16 and H36M-17 layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssal.augment import (
    DEFAULT_EXTREME,
    DEFAULT_GENERAL,
    DEFAULT_SSA,
    AxisMask,
    Compose,
    Flip,
    GaussianBlur,
    GaussianNoise,
    PartMask,
    Rotate,
    Shear,
    TemporalCropResize,
    TemporalMask,
    TemporalResize,
    UpperBodyJitter,
    extreme_augment,
    general_augment,
    jitter_joints,
    ssa_augment,
)
from ssal.errors import SsalInputError
from ssal.skeleton import EGAIT16, H36M17

LAYOUTS = [EGAIT16, H36M17]
HANDS = {"egait16": ("left_hand", "right_hand"), "h36m17": ("left_wrist", "right_wrist")}
DTYPES = [torch.float32, torch.float64]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(layout, n: int = 6, t: int = 30, dtype=torch.float32, seed: int = 1) -> torch.Tensor:
    """Random skeletons with no exact zeros (so zeroed entries are recognisable)."""
    x = torch.randn(n, 3, t, layout.num_joints, generator=gen(seed), dtype=torch.float64)
    return (x + torch.sign(x) * 0.1).to(dtype)


def all_transforms(layout) -> list[torch.nn.Module]:
    """Every transform, forced on (p = 1) and keeping T."""
    return [
        TemporalCropResize(clip_len=30),
        TemporalResize(clip_len=30),
        Shear(0.5),
        UpperBodyJitter(layout, 0.1, 0.01, include_trunk=True),
        PartMask(layout),
        TemporalMask(0.2),
        Flip(layout, p=1.0),
        Rotate(30.0, p=1.0),
        GaussianNoise(0.01, p=1.0),
        GaussianBlur(15, (0.1, 2.0), p=1.0),
        AxisMask(p=1.0),
    ]


# --------------------------------------------------------------------------------------------
# Properties every transform must have
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_transform_keeps_shape_dtype_and_is_seeded(layout, dtype):
    x = batch(layout, dtype=dtype)
    for t in all_transforms(layout):
        a = t(x, gen(3))
        assert a.shape == x.shape, t
        assert a.dtype == dtype, t
        assert torch.isfinite(a).all(), t
        assert torch.equal(a, t(x, gen(3))), f"{t} not reproducible"
        if isinstance(t, TemporalResize):  # resizing T frames to T frames is the identity
            assert torch.equal(a, x)
            continue
        assert not torch.equal(a, x), f"{t} did nothing"
        if not isinstance(t, Flip):  # deterministic when always applied
            assert not torch.equal(a, t(x, gen(4))), f"{t} ignores the generator"


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_float32_and_float64_draw_the_same_parameters(layout):
    x = batch(layout, dtype=torch.float64)
    for t in all_transforms(layout):
        a64 = t(x, gen(7))
        a32 = t(x.float(), gen(7))
        torch.testing.assert_close(a32.double(), a64, rtol=1e-4, atol=1e-4, msg=str(t))


def test_probability_keeps_unchosen_samples_bit_identical():
    x = batch(EGAIT16, n=64)
    out = GaussianNoise(0.5, p=0.5)(x, gen(0))
    same = (out == x).flatten(1).all(1)
    changed = (out != x).flatten(1).all(1)
    assert bool((same | changed).all())  # per sample: all or nothing
    assert 16 < int(same.sum()) < 48  # about half of 64
    assert torch.equal(GaussianNoise(0.5, p=0.0)(x, gen(0)), x)


# --------------------------------------------------------------------------------------------
# General set
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_temporal_crop_full_window_same_length_is_identity(dtype):
    x = batch(EGAIT16, t=40, dtype=dtype)
    t = TemporalCropResize(clip_len=40, pad_ratio=0.0, crop_ratio=(1.0, 1.0))
    torch.testing.assert_close(t(x, gen(0)), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(TemporalResize(40)(x, gen(0)), x, rtol=0, atol=1e-12)


def test_temporal_resize_interpolates_linearly():
    # a ramp x[t] = t over 11 frames resized to 21 frames is 0, 0.5, ..., 10
    x = torch.arange(11, dtype=torch.float64).view(1, 1, 11, 1).expand(2, 3, 11, 16)
    out = TemporalResize(21)(x, gen(0))
    expect = torch.linspace(0, 10, 21, dtype=torch.float64)
    torch.testing.assert_close(out[0, 0, :, 0], expect)
    # downsampling a ramp keeps its end points
    out = TemporalResize(4)(x, gen(0))
    expect = torch.tensor([0.0, 10 / 3, 20 / 3, 10.0], dtype=torch.float64)
    torch.testing.assert_close(out[1, 2, :, 5], expect)


def test_temporal_crop_pads_by_reflection():
    # L = 20, pad 5 reflected frames each end, full-length window: a shift of 0..10 frames of
    # the reflect-padded sequence, copied exactly.
    n, t = 32, 20
    x = batch(EGAIT16, n=n, t=t, dtype=torch.float64)
    out = TemporalCropResize(clip_len=t, pad_ratio=0.25, crop_ratio=(1.0, 1.0))(x, gen(0))
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (5, 5), (0, 0)), mode="reflect")
    starts = []
    for i in range(n):
        hits = [s for s in range(11) if np.array_equal(out[i].numpy(), padded[i, :, s : s + t])]
        assert hits, f"sample {i} is not a window of the reflect-padded sequence"
        starts.append(hits[0])
    assert len(set(starts)) > 4  # the shift is random
    assert min(starts) >= 0 and max(starts) <= 10


def test_temporal_crop_window_is_a_contiguous_crop():
    # pad 0, window ratio 0.5 of 20 frames, clip_len 10: an exact contiguous crop of 10 frames
    x = batch(H36M17, n=16, t=20, dtype=torch.float64)
    out = TemporalCropResize(clip_len=10, pad_ratio=0.0, crop_ratio=(0.5, 0.5))(x, gen(2))
    for i in range(16):
        assert any(torch.equal(out[i], x[i, :, s : s + 10]) for s in range(11))


def test_temporal_crop_respects_valid_lengths():
    # frames past each sequence's length are zero padding and must never be sampled
    x = batch(EGAIT16, n=8, t=40, dtype=torch.float64)
    lengths = torch.tensor([40, 30, 20, 12, 7, 3, 2, 1])
    for i, length in enumerate(lengths.tolist()):
        x[i, :, length:] = 0.0
    cases = [(general_augment({"shear": False}, EGAIT16), 50), (Compose([TemporalResize(25)]), 25)]
    for aug, clip in cases:
        out = aug(x, gen(0), lengths)
        assert out.shape == (8, 3, clip, 16)
        assert bool((out.abs().amax(dim=(1, 3)) > 0.05).all())  # no frame from the zero padding
    # a one-frame sequence is repeated
    out = TemporalResize(5)(x, gen(0), lengths)
    assert torch.equal(out[7], x[7, :, :1].expand(3, 5, 16))


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_shear_amplitude_zero_is_identity_and_is_a_unit_diagonal_linear_map(layout):
    x = batch(layout, n=4, dtype=torch.float64)
    torch.testing.assert_close(Shear(0.0)(x, gen(0)), x, rtol=0, atol=0)
    out = Shear(0.3)(x, gen(0))
    for i in range(4):
        pts = x[i].reshape(3, -1).T  # (T*V, 3)
        m = torch.linalg.lstsq(pts, out[i].reshape(3, -1).T).solution.T
        torch.testing.assert_close(torch.diagonal(m), torch.ones(3, dtype=torch.float64))
        off = m[~torch.eye(3, dtype=torch.bool)]
        assert bool((off.abs() <= 0.3 + 1e-9).all()) and bool((off != 0).all())


# --------------------------------------------------------------------------------------------
# SSA
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
@pytest.mark.parametrize("trunk", [False, True])
def test_jitter_moves_upper_body_only(layout, trunk):
    x = batch(layout)
    out = UpperBodyJitter(layout, 0.1, 0.01, include_trunk=trunk)(x, gen(0))
    moved = list(jitter_joints(layout, trunk))
    still = [j for j in range(layout.num_joints) if j not in moved]
    assert set(layout.upper_body) <= set(moved)
    assert (set(moved) - set(layout.upper_body)) == (
        set(layout.parts["trunk"]) - {layout.center} if trunk else set()
    )
    assert torch.equal(out[..., still], x[..., still])  # bit-identical lower body
    assert bool((out[..., moved] != x[..., moved]).all())
    # the per-sequence offset dominates: mean displacement ~ N(0, 0.1^2) per joint and axis
    shift = (out - x)[..., moved].mean(dim=2)
    assert 0.05 < float(shift.std()) < 0.2


def test_jitter_without_frame_noise_is_a_constant_offset():
    x = batch(EGAIT16)
    d = UpperBodyJitter(EGAIT16, 0.1, 0.0)(x, gen(0)) - x
    torch.testing.assert_close(d, d[:, :, :1].expand_as(d))


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_part_mask_zeroes_one_or_two_whole_parts(layout):
    x = batch(layout, n=48)
    out = PartMask(layout, 1, 2)(x, gen(0))
    counts = []
    for i in range(48):
        zeroed = 0
        for joints in layout.parts.values():
            j = list(joints)
            if bool((out[i][..., j] == 0).all()):
                zeroed += 1
            else:
                assert torch.equal(out[i][..., j], x[i][..., j])
        counts.append(zeroed)
    assert set(counts) == {1, 2}
    # exactly k parts when min == max
    out = PartMask(layout, 2, 2)(x, gen(1))
    zero_joints = (out == 0).all(dim=1).all(dim=1).sum(dim=1)
    sizes = sorted(len(p) for p in layout.parts.values())
    assert bool((zero_joints >= sizes[0] + sizes[1]).all())


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_temporal_mask_zeroes_whole_frames(layout):
    x = batch(layout, n=10, t=40)
    out = TemporalMask(ratio=0.15)(x, gen(0))
    zero = (out == 0).all(dim=1).all(dim=2)  # (N, T) frames fully zero
    assert bool((zero.sum(dim=1) == 6).all())  # round(0.15 * 40)
    keep = ~zero
    assert torch.equal(out.permute(0, 2, 1, 3)[keep], x.permute(0, 2, 1, 3)[keep])
    assert len({tuple(z.nonzero().flatten().tolist()) for z in zero}) > 1  # random per sample
    out = TemporalMask(num_frames=3)(x, gen(0))
    assert bool(((out == 0).all(dim=1).all(dim=2).sum(dim=1) == 3).all())


# --------------------------------------------------------------------------------------------
# AimCLR's extreme set
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_flip_swaps_mirror_pairs_and_negates_x(layout):
    x = batch(layout)
    flip = Flip(layout, p=1.0)
    out = flip(x, gen(0))
    assert torch.equal(flip(out, gen(1)), x)
    left, right = (layout.index(n) for n in HANDS[layout.name])
    assert torch.equal(out[:, 0, :, right], -x[:, 0, :, left])
    assert torch.equal(out[:, 1:, :, right], x[:, 1:, :, left])
    assert torch.equal(out[:, 0, :, layout.center], -x[:, 0, :, layout.center])
    with pytest.raises(SsalInputError):
        Flip(layout, lateral_axis=layout.up_axis)


def test_rotate_is_a_proper_rotation_within_bounds():
    x = batch(EGAIT16, n=8, dtype=torch.float64)
    out = Rotate(30.0, 1.0, p=1.0)(x, gen(0))
    for i in range(8):
        pts = x[i].reshape(3, -1).T
        r = torch.linalg.lstsq(pts, out[i].reshape(3, -1).T).solution.T
        torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
        assert abs(float(torch.linalg.det(r)) - 1.0) < 1e-9
        angle = torch.rad2deg(torch.arccos(((torch.trace(r) - 1) / 2).clamp(-1, 1)))
        assert float(angle) <= 30.0 * 1.01 + 2.0


def test_gaussian_noise_has_the_requested_std():
    x = batch(EGAIT16, n=8, t=50, dtype=torch.float64)
    d = GaussianNoise(0.01, p=1.0)(x, gen(0)) - x
    assert abs(float(d.std()) - 0.01) < 0.0005 and abs(float(d.mean())) < 0.0005


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_blur_keeps_constants_and_matches_reference(dtype):
    blur = GaussianBlur(15, (0.1, 2.0), p=1.0)
    const = torch.full((4, 3, 20, 16), 0.7, dtype=dtype)
    torch.testing.assert_close(blur(const, gen(0)), const)
    x = batch(H36M17, n=3, t=20, dtype=torch.float64).to(dtype)
    out = blur(x, gen(5))
    w = blur.kernels(3, gen(5), x).double().numpy()  # the same first draw
    xp = np.pad(x.double().numpy(), ((0, 0), (0, 0), (7, 7), (0, 0)), mode="edge")
    for i in range(3):
        ref = sum(w[i, k] * xp[i, :, k : k + 20] for k in range(15))
        np.testing.assert_allclose(out[i].double().numpy(), ref, rtol=1e-5, atol=1e-5)
    # wide kernels damp a frame-to-frame alternation
    alt = (torch.arange(20) % 2 * 2 - 1).to(dtype).view(1, 1, 20, 1).expand(2, 3, 20, 16)
    smooth = GaussianBlur(15, (1.5, 2.0), p=1.0)(alt, gen(0))
    assert float(smooth[:, :, 7:13].abs().max()) < 0.05


def test_axis_mask_zeroes_exactly_one_axis():
    x = batch(EGAIT16, n=30)
    out = AxisMask(p=1.0)(x, gen(0))
    zero = (out == 0).flatten(2).all(dim=2)  # (N, 3)
    assert bool((zero.sum(dim=1) == 1).all())
    keep = ~zero.view(30, 3, 1, 1).expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert set(zero.float().argmax(dim=1).tolist()) == {0, 1, 2}


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
@pytest.mark.parametrize("build", [general_augment, ssa_augment, extreme_augment])
def test_builders_make_clip_len_views_reproducibly(layout, build):
    x = batch(layout, n=5, t=75)
    aug = build({}, layout)
    out = aug(x, gen(0))
    assert out.shape == (5, 3, DEFAULT_GENERAL["clip_len"], layout.num_joints)
    assert torch.equal(out, aug(x, gen(0)))
    assert not torch.equal(out, aug(x, gen(1)))
    assert build({"clip_len": 32}, layout.name)(x, gen(0)).shape[2] == 32


def test_defaults_share_the_general_keys():
    assert DEFAULT_GENERAL.items() <= DEFAULT_SSA.items()
    assert DEFAULT_GENERAL.items() <= DEFAULT_EXTREME.items()


def _types(aug: Compose) -> list[type]:
    return [type(t) for t in aug]


def test_every_component_switches_off_alone():
    full_ssa = [TemporalCropResize, Shear, UpperBodyJitter, PartMask, TemporalMask]
    assert _types(ssa_augment({}, EGAIT16)) == full_ssa
    for key, gone in [("jitter", UpperBodyJitter), ("spatial_mask", PartMask),
                      ("temporal_mask", TemporalMask), ("shear", Shear)]:
        assert _types(ssa_augment({key: False}, EGAIT16)) == [t for t in full_ssa if t is not gone]
    assert _types(general_augment({"temporal_crop": False}, EGAIT16)) == [TemporalResize, Shear]
    full_ext = [TemporalCropResize, Shear, Flip, Rotate, GaussianNoise, GaussianBlur, AxisMask]
    assert _types(extreme_augment({}, H36M17)) == full_ext
    for key, gone in [("flip", Flip), ("rotate", Rotate), ("noise", GaussianNoise),
                      ("blur", GaussianBlur), ("axis_mask", AxisMask)]:
        expect = [t for t in full_ext if t is not gone]
        assert _types(extreme_augment({key: False}, H36M17)) == expect


def test_ssa_view_with_only_masks_masks_parts_and_frames():
    x = batch(EGAIT16, n=8, t=50)
    aug = ssa_augment({"temporal_crop": False, "shear": False, "jitter": False}, EGAIT16)
    out = aug(x, gen(0))
    assert bool(((out == 0).all(dim=1).all(dim=2).sum(dim=1) == round(0.15 * 50)).all())
    assert bool(((out == 0).all(dim=1).all(dim=1).sum(dim=1) >= 3).all())  # >= one whole part


def test_builders_reject_bad_settings():
    with pytest.raises(SsalInputError, match="unknown augmentation setting 'jiter'"):
        ssa_augment({"jiter": True}, EGAIT16)
    with pytest.raises(SsalInputError, match="unknown augmentation setting"):
        extreme_augment({"jitter": True}, EGAIT16)  # an SSA key is not an extreme setting
    with pytest.raises(SsalInputError, match="unknown augmentation setting"):
        general_augment({"shaer": True}, EGAIT16)
    # the general builder accepts (and ignores) strong-set keys, so one dict serves all views
    shared = general_augment({"jitter": False, "flip_p": 0.2}, EGAIT16)
    assert _types(shared) == [TemporalCropResize, Shear]
    for bad in [{"jitter_p": 1.5}, {"jitter_offset_std": -1.0}, {"crop_ratio": (0.9, 0.5)},
                {"clip_len": 0}, {"spatial_mask_max_parts": 6}, {"jitter": "yes"},
                {"temporal_mask_ratio": 2.0}]:
        with pytest.raises(SsalInputError):
            ssa_augment(bad, EGAIT16)
    with pytest.raises(SsalInputError, match="blur_kernel"):
        extreme_augment({"blur_kernel": 4}, EGAIT16)
    with pytest.raises(SsalInputError, match="unknown skeleton layout"):
        ssa_augment({}, "nope")


def test_yaml_style_lists_are_accepted():
    aug = extreme_augment({"crop_ratio": [0.8, 1.0], "blur_sigma": [0.5, 1.0]}, EGAIT16)
    assert aug(batch(EGAIT16, t=60), gen(0)).shape == (6, 3, 50, 16)


def test_wrong_joint_count_is_refused():
    with pytest.raises(ValueError, match="joints"):
        PartMask(EGAIT16)(batch(H36M17), gen(0))
