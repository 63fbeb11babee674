"""E-Gait HDF5 reader: STEP layout, labels matched by key, label maps, bad inputs."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ssal.data.egait import LABEL_MAPS, read_egait, read_egait_raw, resolve_label_map, write_egait
from ssal.data.io import egait_labels_beside, load_dataset
from ssal.data.preprocess import PreprocessConfig
from ssal.errors import SsalInputError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "step-e-gait-format"
RAW = PreprocessConfig(center="none", scale=False, align_facing=False)


def make_corpus(tmp_path: Path, n: int = 5):
    rng = np.random.default_rng(1)
    lengths = [7, 75, 12, 40, 75][:n]
    seqs = [rng.normal(size=(t, 16, 3)) for t in lengths]
    names = [f"{i:03d}_walk" for i in range(n)]
    labels = [3, 0, 2, 1, 0][:n]
    feats, labs = tmp_path / "features.h5", tmp_path / "labels.h5"
    write_egait(feats, None, seqs, labels, names)
    # label file written in reverse key order: the reader must match by key
    with h5py.File(labs, "w") as f:
        for name, lab in reversed(list(zip(names, labels))):
            f.create_dataset(name, data=np.int32(lab))
    return feats, labs, seqs, names, labels


def test_step_layout_joint_major(tmp_path):
    seq = np.arange(4 * 16 * 3, dtype=float).reshape(4, 16, 3)
    write_egait(tmp_path / "f.h5", tmp_path / "l.h5", [seq], [2], ["a"])
    with h5py.File(tmp_path / "f.h5") as f:
        row = f["a"][0]
    assert row.shape == (48,)
    assert row[3 * 5 + 1] == seq[0, 5, 1]  # col = 3*j + c


def test_roundtrip_exact_arrays_and_labels_by_key(tmp_path):
    feats, labs, seqs, names, labels = make_corpus(tmp_path)
    got, y, got_names, classes, source = read_egait_raw(feats, labs)
    assert source == "file" and classes == list(LABEL_MAPS["egait"])
    by_name = dict(zip(got_names, zip(got, y)))
    for seq, name, lab in zip(seqs, names, labels):
        np.testing.assert_array_equal(by_name[name][0], seq)
        assert by_name[name][1] == lab
    ds = read_egait(feats, labs, preprocess=RAW)
    i = ds.names.index(names[1])
    np.testing.assert_allclose(ds.x[i].transpose(1, 2, 0), seqs[1], atol=1e-6)
    np.testing.assert_array_equal(ds.lengths[ds.names.index(names[0])], 7)
    assert ds.y[ds.names.index(names[2])] == 2


def test_step_label_map_names_classes(tmp_path):
    feats, labs, *_ = make_corpus(tmp_path)
    ds = read_egait(feats, labs, label_map="step")
    assert ds.classes == ["angry", "neutral", "happy", "sad"]
    assert resolve_label_map(["Emo0", "angry"]) == ["emo0", "angry"]
    # The command line and the config give a list as one comma-separated string.
    assert resolve_label_map("Emo0, angry,sad") == ["emo0", "angry", "sad"]
    with pytest.raises(SsalInputError, match="unique"):
        resolve_label_map("sad,sad")
    with pytest.raises(SsalInputError):
        resolve_label_map("stpe")


def test_labels_beside_and_load_dataset(tmp_path):
    feats, labs, *_ = make_corpus(tmp_path)
    assert egait_labels_beside(feats) == labs
    elmd = tmp_path / "features_ELMD.h5"
    elmd.write_bytes(feats.read_bytes())
    (tmp_path / "labels_ELMD.h5").write_bytes(labs.read_bytes())
    assert egait_labels_beside(elmd) == tmp_path / "labels_ELMD.h5"
    ds = load_dataset(elmd)
    assert ds.meta["label_source"] == "file" and (ds.y >= 0).all()


def test_key_suffix_labels(tmp_path):
    rng = np.random.default_rng(2)
    names = ["00001_Happy", "00002_Sad", "00003_Neutral"]
    write_egait(tmp_path / "featuresCVAEGCN_1_2000.h5", None, [rng.normal(size=(18, 16, 3))] * 3, None, names)
    ds = load_dataset(tmp_path / "featuresCVAEGCN_1_2000.h5")
    assert ds.meta["label_source"] == "key suffix"
    assert [ds.classes[i] for i in ds.y] == ["happy", "sad", "neutral"]


def test_missing_label_key(tmp_path):
    feats, labs, seqs, names, labels = make_corpus(tmp_path)
    with h5py.File(labs, "a") as f:
        del f[names[3]]
    with pytest.raises(SsalInputError, match=names[3]) as info:
        read_egait(feats, labs)
    assert "labels.h5" in str(info.value)


@pytest.mark.parametrize(
    "content, match",
    [(b"", "empty"), (b"hello, not hdf5 at all", "not an HDF5"), (None, "not found")],
)
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "broken.h5"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SsalInputError, match=match) as info:
        load_dataset(path)
    assert "broken.h5" in str(info.value)


def test_truncated_hdf5(tmp_path):
    feats, labs, *_ = make_corpus(tmp_path)
    data = feats.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(SsalInputError, match="cut.h5"):
        read_egait(tmp_path / "cut.h5", labs)


def test_wrong_joint_count_nan_and_limit(tmp_path):
    with h5py.File(tmp_path / "j.h5", "w") as f:
        f.create_dataset("a", data=np.zeros((10, 45)))
    with pytest.raises(SsalInputError, match="joint"):
        read_egait(tmp_path / "j.h5")
    bad = np.ones((10, 16, 3))
    bad[3, 2, 0] = np.nan
    write_egait(tmp_path / "n.h5", None, [bad], None, ["nan_seq"])
    with pytest.raises(SsalInputError, match="nan_seq.*NaN"):
        read_egait(tmp_path / "n.h5")
    write_egait(tmp_path / "long.h5", None, [np.ones((50, 16, 3))], None, ["long"])
    with pytest.raises(SsalInputError, match="limit"):
        read_egait(tmp_path / "long.h5", preprocess=PreprocessConfig(max_frames=20))


def test_real_step_cvae_fixture_six_classes():
    feats = SHARED / "features4DCVAEGCN.h5"  # load_dataset finds labels4DCVAEGCN.h5 beside it
    if not feats.is_file():
        pytest.skip("shared STEP fixture not available")
    six = ["emo0", "angry", "neutral", "happy", "emo4", "sad"]
    ds = load_dataset(feats, label_map=six)
    assert len(ds) == 60 and ds.x.shape[1:] == (3, 75, 16)
    assert (ds.lengths == 18).all()
    # the label file agrees with the emotion in every key
    for name, y in zip(ds.names, ds.y):
        assert name.split("_")[1].lower() == six[y]
    with pytest.raises(SsalInputError, match="label 4"):
        load_dataset(feats)  # default 4-class map cannot hold labels 4, 5


def test_real_labels_file_supports_default_map():
    labs = SHARED / "labels.h5"
    if not labs.is_file():
        pytest.skip("shared labels.h5 not available")
    with h5py.File(labs) as f:
        table = {k: int(f[k][()]) for k in f.keys()}
    assert np.bincount(list(table.values())).tolist() == [112, 33, 78, 119]
    words = {"happy": "happy", "angry": "angry", "sad": "sad", "neutral": "neutral",
             "ha": "happy", "an": "angry", "sa": "sad", "nu": "neutral"}
    counts = {e: np.zeros(4, int) for e in LABEL_MAPS["egait"]}
    for key, lab in table.items():
        for token in key.lower().replace(".", "_").split("_"):
            if token in words:
                counts[words[token]][lab] += 1
                break
    # per label value, the most frequent emotion named in the keys is the "egait" map
    table_cols = np.stack([counts[e] for e in LABEL_MAPS["egait"]])  # emotion x label
    assert [LABEL_MAPS["egait"][i] for i in table_cols.argmax(axis=0)] == list(LABEL_MAPS["egait"])


def test_label_map_from_config_and_command_line(tmp_path, capsys):
    """``data.label_map`` reaches the reader, and a label beyond the map names the way out."""
    from ssal.cli.main import main
    from ssal.data.configured import load_configured_dataset

    rng = np.random.default_rng(4)
    seqs = [rng.normal(size=(20, 16, 3)) for _ in range(6)]
    feats, labs = tmp_path / "features.h5", tmp_path / "labels.h5"
    write_egait(feats, labs, seqs, [0, 1, 2, 3, 4, 5], [f"{i:03d}_walk" for i in range(6)])
    six = "emo0,angry,neutral,happy,emo4,sad"
    ds = load_configured_dataset({"source": str(feats), "labels": None, "label_map": six})
    assert ds.classes == six.split(",") and sorted(ds.y.tolist()) == [0, 1, 2, 3, 4, 5]
    assert main(["data", "info", str(feats)]) == 2
    assert "--label-map" in capsys.readouterr().err
    assert main(["data", "info", str(feats), "--label-map", six]) == 0
    assert "emo4" in capsys.readouterr().out
