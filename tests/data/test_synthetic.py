"""The built-in synthetic emotional-gait corpus: shapes, determinism, physics, emotion cues."""

from __future__ import annotations

import numpy as np
import pytest

from ssal.data import EGAIT_EMOTIONS, GaitDataset
from ssal.data.splits import label_fraction
from ssal.data.synthetic import SyntheticConfig, generate, generate_sequences, load_builtin
from ssal.skeleton import EGAIT16

J = EGAIT16.index
CLEAN = SyntheticConfig(noise=(0.0, 0.0), dropout_prob=0.0)


@pytest.fixture(scope="module")
def raw():
    return generate_sequences(200, seed=11)


@pytest.fixture(scope="module")
def clean():
    return generate_sequences(120, seed=4, config=CLEAN)


@pytest.fixture(scope="module")
def dataset() -> GaitDataset:
    return generate(1200, seed=5)


def test_raw_shapes_labels_and_names(raw):
    seqs, labels, names, subjects = raw
    assert len(seqs) == len(labels) == len(names) == len(subjects) == 200
    for s in seqs:
        assert s.dtype == np.float32
        assert s.ndim == 3 and s.shape[1:] == (EGAIT16.num_joints, 3)
        assert 40 <= s.shape[0] <= 75
        assert np.isfinite(s).all()
        # E-Gait convention: root of frame 0 at the origin, walking path kept.
        np.testing.assert_allclose(s[0, EGAIT16.center], 0.0, atol=1e-6)
    counts = np.bincount(labels, minlength=4)
    assert counts.max() - counts.min() <= 1  # balanced
    assert len({s.shape[0] for s in seqs}) > 10  # variable length
    assert len(set(names)) == 200
    for name, lab in zip(names, labels):
        assert name.endswith(EGAIT_EMOTIONS[lab].capitalize())
    assert 5 <= len(np.unique(subjects)) <= 20  # about 20 sequences per subject


def test_deterministic_by_seed():
    a = generate_sequences(30, seed=7)
    b = generate_sequences(30, seed=7)
    c = generate_sequences(30, seed=8)
    for sa, sb in zip(a[0], b[0]):
        np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert any(sa.shape != sc.shape or not np.allclose(sa, sc) for sa, sc in zip(a[0], c[0]))


def test_upright_skeleton_with_constant_bones(clean):
    seqs, *_ = clean
    for s in seqs:
        y = s[..., 1]
        assert (y[:, J("head")] > y[:, J("neck")]).all()
        assert (y[:, J("neck")] > y[:, J("spine")]).all()
        assert (y[:, J("spine")] > y[:, J("root")]).all()
        for foot in ("left_foot", "right_foot"):
            assert (y[:, J(foot)] < y[:, J(foot.replace("foot", "knee"))]).all()
        for a, b in EGAIT16.edges:
            length = np.linalg.norm(s[:, a] - s[:, b], axis=-1)
            assert length.std() < 0.03 * length.mean() + 1e-6, (a, b)


def test_feet_on_the_ground_and_legs_alternate(clean):
    seqs, *_ = clean
    for s in seqs:
        feet = s[:, [J("left_foot"), J("right_foot")], 1]
        ground = feet.min()
        lower = feet.min(axis=1)
        # The supporting foot stays near the ground (bounce and heel rise only) ...
        assert np.percentile(lower - ground, 90) < 0.08
        # ... while the swinging foot clears it.
        assert feet.max() - ground > 0.05
    # Left and right feet take turns in front (facing direction from the walking path).
    alternating = 0
    for s in seqs:
        path = s[-1, 0, [0, 2]] - s[0, 0, [0, 2]]
        d = path / np.linalg.norm(path)
        ahead = (s[:, J("left_foot"), [0, 2]] - s[:, J("right_foot"), [0, 2]]) @ d
        alternating += np.any(ahead > 0.05) and np.any(ahead < -0.05)
    assert alternating >= 0.95 * len(seqs)


def test_speeds_are_human_and_follow_emotion_cues(clean):
    seqs, labels, *_ = clean
    speed = np.array(
        [np.linalg.norm(s[-1, 0, [0, 2]] - s[0, 0, [0, 2]]) / ((len(s) - 1) / 30.0) for s in seqs]
    )
    assert speed.min() > 0.3 and speed.max() < 2.6
    mean = {e: speed[labels == k].mean() for k, e in enumerate(EGAIT_EMOTIONS)}
    assert mean["sad"] < mean["neutral"] < min(mean["happy"], mean["angry"])
    # Sad walkers bend the head down: head ahead of the neck, relative to trunk height.
    head_fwd = []
    for s in seqs:
        path = s[-1, 0, [0, 2]] - s[0, 0, [0, 2]]
        d = path / np.linalg.norm(path)
        head_fwd.append(((s[:, J("head"), [0, 2]] - s[:, J("root"), [0, 2]]) @ d).mean())
    head_fwd = np.array(head_fwd)
    assert head_fwd[labels == 2].mean() > head_fwd[labels == 0].mean() + 0.03


def test_dropouts_freeze_joints():
    cfg = SyntheticConfig(noise=(0.005, 0.005), dropout_prob=1.0, dropout_frames=(4, 4))
    seqs, *_ = generate_sequences(20, seed=1, config=cfg)
    frozen = 0
    for s in seqs:
        same = np.all(s[1:] == s[:-1], axis=-1)  # (T-1, V): joint did not move at all
        frozen += same.any()
        assert same.sum() <= 2 * 4  # at most two dropouts of 4 frozen frames each
    assert frozen == 20


def test_generate_dataset(dataset):
    ds = dataset
    assert ds.x.shape == (1200, 3, 75, EGAIT16.num_joints)
    assert ds.x.dtype == np.float32
    assert ds.classes == list(EGAIT_EMOTIONS)
    assert ds.meta["source"] == "builtin" and ds.meta["seed"] == 5
    assert len(ds.meta["subjects"]) == 1200
    assert ((ds.lengths >= 40) & (ds.lengths <= 75)).all()
    assert ds.layout is EGAIT16 and ds.fps == 30.0


def _features(x: np.ndarray) -> np.ndarray:
    """Simple per-joint statistics of root-relative positions and velocities."""
    x = x.astype(np.float64)
    rel = x - x[..., :1]
    vel = np.diff(x, axis=2)
    stats = [rel.mean(2), rel.std(2), vel.mean(2), np.abs(vel).mean(2)]
    f = np.concatenate([s.reshape(len(x), -1) for s in stats], axis=1)
    return f


def _ridge_accuracy(f, y, train, test, lam=30.0):
    mu, sd = f[train].mean(0), f[train].std(0) + 1e-9
    g = np.c_[(f - mu) / sd, np.ones(len(f))]
    onehot = np.eye(y.max() + 1)[y]
    w = np.linalg.solve(g[train].T @ g[train] + lam * np.eye(g.shape[1]), g[train].T @ onehot[train])
    return float((np.argmax(g[test] @ w, 1) == y[test]).mean())


def test_emotions_learnable_but_overlapping(dataset):
    """A linear classifier on simple features: well above chance with all labels, clearly
    worse with 1% of the labels, and far from perfect (emotions overlap)."""
    f = _features(dataset.x)
    y = dataset.y
    train, test = np.arange(800), np.arange(800, 1200)
    full = _ridge_accuracy(f, y, train, test)
    assert 0.5 < full < 0.92
    few = np.mean([_ridge_accuracy(f, y, train[label_fraction(y[train], 0.01, seed=s)], test) for s in range(3)])
    assert few < full - 0.1


def test_load_builtin_caches_and_is_read_only():
    a = load_builtin(n=40, seed=2)
    b = load_builtin(n=40, seed=2)
    assert a is not b
    assert a.x is b.x
    assert not a.x.flags.writeable
    a.y[0] = -1  # labels are the caller's own copy
    assert b.y[0] != -1


def test_builtin_centring_follows_the_config():
    """``data.center`` reaches the built-in corpus: per-frame (default) puts the root at the
    origin in every frame; first-frame keeps the walking path (the walker moves forward)."""
    from ssal.data.configured import load_configured_dataset

    base = {"source": "builtin", "builtin_n": 8, "builtin_seed": 3}
    per = load_configured_dataset(base)
    path = load_configured_dataset({**base, "center": "first_frame"})
    root = EGAIT16.center
    assert per.meta["preprocess"]["center"] == "per_frame"
    assert path.meta["preprocess"]["center"] == "first_frame"
    np.testing.assert_allclose(per.x[:, :, :, root], 0.0, atol=1e-6)
    np.testing.assert_allclose(path.x[:, :, 0, root], 0.0, atol=1e-6)
    travelled = np.linalg.norm(path.x[:, [0, 2], 30, root] - path.x[:, [0, 2], 0, root], axis=1)
    assert (travelled > 0.5).all()  # about a second of walking
    # Limb positions relative to the root are the same under both modes.
    np.testing.assert_allclose(per.x - per.x[..., root:root + 1], path.x - path.x[..., root:root + 1], atol=1e-5)
