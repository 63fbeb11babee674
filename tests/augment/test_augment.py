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
    TimeFlip,
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
        Flip(layout, p=1.0, mirror=True),
        Rotate(30.0, p=1.0),
        Rotate(30.0, p=1.0, symmetric=True),
        TimeFlip(p=1.0),
        GaussianNoise(0.01, p=1.0),
        GaussianBlur(15, (0.1, 2.0), p=1.0),
        GaussianBlur(15, (0.1, 2.0), p=1.0, normalize=True),
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
        if not isinstance(t, (Flip, TimeFlip)):  # deterministic when always applied
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


def _aimclr_temporal_crop_windows(seq: np.ndarray, ratio: int = 6) -> list[np.ndarray]:
    """Every output AimCLR's ``temperal_crop`` can give for ``seq`` (C, T, V): pad T // ratio
    frames at each end by ``data[:, :P][:, ::-1]`` / ``data[:, -P:][:, ::-1]``, then one window
    of T frames per start ``0 .. 2P``."""
    t = seq.shape[1]
    p = t // ratio
    padded = np.concatenate((seq[:, :p][:, ::-1], seq, seq[:, -p:][:, ::-1]), axis=1)
    return [padded[:, start:start + t] for start in range(2 * p + 1)]


@pytest.mark.parametrize("t", [20, 48, 75])
def test_temporal_crop_is_aimclrs_symmetric_pad_and_shift(t):
    """The default crop gives exactly AimCLR's windows: T//6 frames padded with the edge frame
    repeated (numpy "symmetric"), a full-length window at a uniform start in 0..2P, no resize."""
    n = 64
    x = batch(EGAIT16, n=n, t=t, dtype=torch.float64)
    crop = TemporalCropResize(clip_len=t)  # defaults: pad_ratio 1/6, crop_ratio (1, 1)
    out = crop(x, gen(0))
    p = t // 6
    starts = []
    for i in range(n):
        windows = _aimclr_temporal_crop_windows(x[i].numpy())
        hits = [s for s, w in enumerate(windows) if np.array_equal(out[i].numpy(), w)]
        assert hits, f"sample {i} is not one of AimCLR's windows"
        starts.append(hits[0])
    assert min(starts) >= 0 and max(starts) <= 2 * p
    assert len(set(starts)) > min(2 * p, 6)  # the start is random over the range
    # The padded frames are the symmetric ones: frame -1 is frame 0, frame T is frame T-1.
    padded = np.pad(x[0].numpy(), ((0, 0), (p, p), (0, 0)), mode="symmetric")
    windows = _aimclr_temporal_crop_windows(x[0].numpy())
    assert all(np.array_equal(w, padded[:, s:s + t]) for s, w in enumerate(windows))


def test_temporal_crop_resizes_the_full_window_to_clip_len():
    # L = 30, clip 20: the shifted 30-frame window, resized keeping its end frames.
    x = torch.arange(30, dtype=torch.float64).view(1, 1, 30, 1).expand(1, 3, 30, 16).contiguous()
    out = TemporalCropResize(clip_len=20, pad_ratio=0.0)(x, gen(0))
    torch.testing.assert_close(out[0, 0, :, 0], torch.linspace(0, 29, 20, dtype=torch.float64))


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
def test_flip_swaps_mirror_pairs_only(layout):
    """AimCLR's flip: ``seq[:, :, transform_order]``, a permutation of joints, nothing negated."""
    x = batch(layout)
    flip = Flip(layout, p=1.0)
    out = flip(x, gen(0))
    assert torch.equal(flip(out, gen(1)), x)
    perm = layout.mirror_permutation()
    for j in range(layout.num_joints):
        assert torch.equal(out[:, :, :, j], x[:, :, :, perm[j]])
    left, right = (layout.index(n) for n in HANDS[layout.name])
    assert torch.equal(out[:, :, :, right], x[:, :, :, left])
    assert torch.equal(out[:, :, :, layout.center], x[:, :, :, layout.center])


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_mirror_flip_also_negates_x(layout):
    x = batch(layout)
    flip = Flip(layout, p=1.0, mirror=True)
    out = flip(x, gen(0))
    assert torch.equal(flip(out, gen(1)), x)
    left, right = (layout.index(n) for n in HANDS[layout.name])
    assert torch.equal(out[:, 0, :, right], -x[:, 0, :, left])
    assert torch.equal(out[:, 1:, :, right], x[:, 1:, :, left])
    with pytest.raises(SsalInputError):
        Flip(layout, lateral_axis=layout.up_axis)


def _aimclr_rotation(angles_deg: np.ndarray) -> np.ndarray:
    """AimCLR's ``random_rotate`` matrix for angles (x, y, z) in degrees, as its code builds it:
    ``seq @ R.T`` per axis in the order x, y, z (so a point p goes to R_z R_y R_x p)."""
    total = np.eye(3)
    for axis, deg in enumerate(angles_deg):
        a = np.radians(deg)
        c, s = np.cos(a), np.sin(a)
        if axis == 0:
            r = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
        elif axis == 1:
            r = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
        else:
            r = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
        total = r @ total
    return total


def test_rotate_is_aimclrs_rotation_always_applied():
    x = batch(EGAIT16, n=200, t=4, dtype=torch.float64)
    rot = Rotate()  # defaults: 30 / 1 degrees, p = 1, angles in [0, max)
    assert rot.p == 1.0
    out = rot(x, gen(0))
    angles = rot.angles(200, gen(0), x).numpy()  # the same draws (p = 1 draws no mask first)
    main = angles.argmax(axis=1)
    assert (angles >= 0).all()
    assert (angles[np.arange(200), main] < 30.0).all() and np.partition(angles, 1, axis=1)[:, :2].max() < 1.0
    assert set(main.tolist()) == {0, 1, 2}
    assert angles.max(axis=1).min() < 10 and angles.max(axis=1).max() > 20  # spread over U(0, 30)
    for i in range(200):
        expected = np.einsum("ij,jtv->itv", _aimclr_rotation(angles[i]), x[i].numpy())
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-12)
    # every sample moved (p = 1)
    assert bool(((out - x).abs().flatten(1).amax(dim=1) > 0).all())


def test_symmetric_rotate_draws_both_signs():
    rot = Rotate(30.0, 1.0, p=1.0, symmetric=True)
    angles = rot.angles(500, gen(3), torch.zeros(1, dtype=torch.float64)).numpy()
    assert angles.min() < -20 and angles.max() > 20 and np.abs(angles).max() < 30


def test_time_flip_reverses_frames():
    x = batch(EGAIT16, n=4, t=9)
    out = TimeFlip(p=1.0)(x, gen(0))
    assert torch.equal(out, x[:, :, torch.arange(8, -1, -1)])


def test_gaussian_noise_has_the_requested_std():
    x = batch(EGAIT16, n=8, t=50, dtype=torch.float64)
    d = GaussianNoise(0.01, p=1.0)(x, gen(0)) - x
    assert abs(float(d.std()) - 0.01) < 0.0005 and abs(float(d.mean())) < 0.0005


def test_blur_is_aimclrs_unnormalised_zero_padded_kernel():
    """AimCLR's GaussianBlurConv: taps exp(-k^2 / (2 sigma^2)), k = -7..7, not normalised,
    conv2d with zero padding along T."""
    blur = GaussianBlur(15, (0.1, 2.0), p=1.0)
    x = batch(H36M17, n=3, t=20, dtype=torch.float64)
    out = blur(x, gen(5))
    w = blur.kernels(3, gen(5), x).numpy()  # the same first draw
    sigma = np.sqrt(-1.0 / (2.0 * np.log(w[:, 8])))  # from the tap at k = 1
    assert ((sigma > 0.1 - 1e-9) & (sigma < 2.0 + 1e-9)).all()
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (7, 7), (0, 0)), mode="constant")
    for i in range(3):
        taps = np.exp(-np.arange(-7, 8) ** 2 / (2.0 * sigma[i] ** 2))
        np.testing.assert_allclose(w[i], taps, rtol=1e-9)
        assert w[i, 7] == 1.0  # the centre tap: not normalised
        ref = sum(taps[k] * xp[i, :, k : k + 20] for k in range(15))
        np.testing.assert_allclose(out[i].numpy(), ref, rtol=1e-10, atol=1e-10)
    # An unnormalised kernel scales a constant by the sum of its taps: ~5x at sigma = 2.
    wide = GaussianBlur(15, (2.0, 2.0), p=1.0)(torch.ones(1, 3, 40, 16, dtype=torch.float64), gen(0))
    assert float(wide[0, 0, 20, 0]) == pytest.approx(np.exp(-np.arange(-7, 8) ** 2 / 8.0).sum(), rel=1e-9)
    assert 4.9 < float(wide[0, 0, 20, 0]) < 5.1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_normalised_blur_keeps_constants_and_matches_reference(dtype):
    blur = GaussianBlur(15, (0.1, 2.0), p=1.0, normalize=True)
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
    smooth = GaussianBlur(15, (1.5, 2.0), p=1.0, normalize=True)(alt, gen(0))
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
    # AimCLR's order: crop, shear, flip, rotate, time flip, noise, blur, axis mask.
    full_ext = [TemporalCropResize, Shear, Flip, Rotate, TimeFlip, GaussianNoise, GaussianBlur, AxisMask]
    assert _types(extreme_augment({}, H36M17)) == full_ext
    for key, gone in [("flip", Flip), ("rotate", Rotate), ("time_flip", TimeFlip), ("noise", GaussianNoise),
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
