"""NumPy datasets (both axis orders, 5-D person axis) and pose-estimator output."""

from __future__ import annotations

import numpy as np
import pytest

from ssal.data.io import load_dataset, save_dataset
from ssal.data.npz import detect_order, read_npz, to_ntvc, write_npz
from ssal.data.pose import is_y_down, read_pose
from ssal.data.preprocess import PreprocessConfig
from ssal.errors import SsalInputError
from ssal.skeleton import EGAIT16, H36M17, H36M17_TO_EGAIT16

RAW = PreprocessConfig(center="none", scale=False, align_facing=False, length=20)


def data(n=4, t=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, t, 16, 3)), np.array([0, 3, -1, 2])


@pytest.mark.parametrize("order", ["NCTV", "NTVC"])
def test_npz_both_orders_autodetected(tmp_path, order):
    ntvc, y = data()
    x = ntvc.transpose(0, 3, 1, 2) if order == "NCTV" else ntvc
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    ds = load_dataset(path, preprocess=RAW)
    np.testing.assert_allclose(ds.x, ntvc.transpose(0, 3, 1, 2), atol=1e-6)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.names[0] == "d_000000"


def test_npz_ambiguous_needs_order(tmp_path):
    # with 3 joints a (N, 3, 3, 3) array fits both orders
    assert detect_order((2, 3, 3, 3), 3) == ["NCTV", "NTVC"]
    assert detect_order((2, 3, 20, 16), 16) == ["NCTV"]
    path = tmp_path / "amb.npz"
    np.savez(path, x=np.zeros((2, 5, 7, 9)))
    with pytest.raises(SsalInputError, match="order=") as info:
        read_npz(path)
    assert "amb.npz" in str(info.value)
    ntvc, _ = data(2)
    np.savez(path, x=ntvc)
    ds = read_npz(path, order="NTVC", preprocess=RAW)
    np.testing.assert_allclose(ds.x, ntvc.transpose(0, 3, 1, 2), atol=1e-6)
    with pytest.raises(SsalInputError, match="coordinates"):
        read_npz(path, order="NCTV", preprocess=RAW)


def test_npz_person_axis_takes_person_zero(tmp_path):
    ntvc, y = data()
    two = np.stack([ntvc, ntvc + 100.0], axis=1)  # (N, M, T, V, C), pyskl style
    np.savez(tmp_path / "m.npz", x=two, y=y)
    ds = read_npz(tmp_path / "m.npz", preprocess=RAW)
    np.testing.assert_allclose(ds.x, ntvc.transpose(0, 3, 1, 2), atol=1e-6)
    nctvm = ntvc.transpose(0, 3, 1, 2)[..., None]
    np.testing.assert_array_equal(to_ntvc(nctvm, "NCTVM"), ntvc)


def test_npz_writer_roundtrip_with_lengths_and_classes(tmp_path):
    ntvc, y = data()
    ntvc[1, 10:] = 0.0  # padding
    write_npz(tmp_path / "w.npz", ntvc, y, names=list("abcd"), lengths=[20, 10, 20, 20],
              classes=["h", "a", "s", "n"], order="NTVC")
    ds = read_npz(tmp_path / "w.npz", preprocess=RAW)
    assert ds.names == list("abcd") and ds.classes == ["h", "a", "s", "n"]
    assert ds.lengths.tolist() == [20, 10, 20, 20]
    # the padded sequence was looped from its 10 real frames
    np.testing.assert_allclose(ds.x[1, :, 10:], ds.x[1, :, :10], atol=1e-6)
    save_dataset(ds, tmp_path / "again.npz")
    back = load_dataset(tmp_path / "again.npz", preprocess=RAW)
    np.testing.assert_allclose(back.x, ds.x, atol=1e-6)
    np.testing.assert_array_equal(back.y, ds.y)


def test_npz_bad_inputs(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SsalInputError, match="junk.npz"):
        load_dataset(tmp_path / "junk.npz")
    np.savez(tmp_path / "lab.npz", x=np.zeros((2, 3, 20, 16)), y=np.array([0, 9]))
    with pytest.raises(SsalInputError, match="label 9"):
        read_npz(tmp_path / "lab.npz")
    np.savez(tmp_path / "joints.npz", x=np.zeros((2, 3, 20, 15)), order=np.asarray("NCTV"))
    with pytest.raises(SsalInputError, match="joints"):
        read_npz(tmp_path / "joints.npz")
    with pytest.raises(SsalInputError, match="unknown dataset type"):
        (tmp_path / "x.csv").write_text("1,2")
        load_dataset(tmp_path / "x.csv")


def h36m_walk(t=30, y_down=False):
    eg = np.zeros((t, 16, 3))
    eg[:, :, 1] = np.array([1.0, 1.25, 1.5, 1.65, 1.5, 1.2, 0.95, 1.5, 1.2, 0.95, 0.95, 0.5, 0.08, 0.95, 0.5, 0.08])
    eg[:, :, 0] = np.array([0, 0, 0, 0, 0.2, 0.2, 0.2, -0.2, -0.2, -0.2, 0.1, 0.1, 0.1, -0.1, -0.1, -0.1])
    eg[:, :, 2] += np.linspace(0, 1, t)[:, None]
    h = np.zeros((t, 17, 3))
    h[:, list(H36M17_TO_EGAIT16)] = eg
    h[:, H36M17.index("neck_nose")] = [0, 1.58, 0.05]
    if y_down:  # camera convention: y down, z forward -> rotate 180 deg about x
        h = h * np.array([1, -1, -1])
    return h, eg


def test_pose_npy_and_y_down_flip(tmp_path):
    h, eg = h36m_walk()
    np.save(tmp_path / "up.npy", h)
    ds = load_dataset(tmp_path / "up.npy", preprocess=PreprocessConfig(center="none", scale=False, align_facing=False))
    np.testing.assert_allclose(ds.x[0, :, :30].transpose(1, 2, 0), eg, atol=1e-6)
    assert ds.meta["flipped_y_down"] == 0
    down, _ = h36m_walk(y_down=True)
    assert is_y_down(down[:, list(H36M17_TO_EGAIT16)], EGAIT16)
    np.savez(tmp_path / "many.npz", clip_a=down, clip_b=h)
    ds2 = load_dataset(tmp_path / "many.npz", preprocess=PreprocessConfig(center="none", scale=False, align_facing=False))
    assert ds2.names == ["clip_a", "clip_b"] and ds2.meta["flipped_y_down"] == 1
    # upright again, left still on +x (a rotation, not a mirror)
    np.testing.assert_allclose(ds2.x[0], ds2.x[1], atol=1e-6)


def test_pose_bad_shape(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((30, 16, 3)))
    with pytest.raises(SsalInputError, match="bad.npy"):
        read_pose(tmp_path / "bad.npy")
