"""Seeded stratified splits, label fractions, k-fold and the split JSON file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssal.data.splits import kfold, label_fraction, load_split, save_split, stratified_split
from ssal.errors import SsalInputError


def _labels(sizes: dict[int, int], seed: int = 0) -> np.ndarray:
    y = np.concatenate([np.full(n, c) for c, n in sizes.items()])
    return np.random.default_rng(seed).permutation(y)


def test_stratified_split_hand_counts():
    y = _labels({0: 10, 1: 20, 2: 3, 3: 2, 4: 1, -1: 30})
    sp = stratified_split(y, val=0.1, test=0.1, seed=0)
    counts = {part: {c: int(np.sum(y[idx] == c)) for c in (0, 1, 2, 3, 4, -1)} for part, idx in sp.items()}
    assert counts["val"] == {0: 1, 1: 2, 2: 1, 3: 1, 4: 0, -1: 3}
    assert counts["test"] == {0: 1, 1: 2, 2: 1, 3: 0, 4: 0, -1: 3}
    assert counts["train"] == {0: 8, 1: 16, 2: 1, 3: 1, 4: 1, -1: 24}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-1, 4), min_size=1, max_size=200),
    st.floats(0.0, 0.45),
    st.floats(0.0, 0.45),
    st.integers(0, 10_000),
)
def test_stratified_split_is_a_partition(y, val, test, seed):
    y = np.asarray(y)
    sp = stratified_split(y, val=val, test=test, seed=seed)
    allidx = np.concatenate([sp["train"], sp["val"], sp["test"]])
    assert sorted(allidx.tolist()) == list(range(len(y)))
    for c in np.unique(y):
        assert np.sum(y[sp["train"]] == c) >= 1  # every class keeps training members
    for idx in sp.values():
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)


def test_stratified_split_seeded():
    y = _labels({0: 50, 1: 50, 2: 50})
    a, b, c = (stratified_split(y, seed=s) for s in (1, 1, 2))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["test"], c["test"])


@pytest.mark.parametrize("val,test", [(-0.1, 0.1), (0.1, 1.0), (0.6, 0.5)])
def test_stratified_split_rejects_bad_fractions(val, test):
    with pytest.raises(SsalInputError):
        stratified_split(np.zeros(10, int), val=val, test=test)


def test_label_fraction_counts_nested_and_ignores_unlabelled():
    y = _labels({0: 200, 1: 60, 2: 5, -1: 100})
    one = label_fraction(y, 0.01, seed=3)
    counts = np.bincount(y[one], minlength=3)
    assert counts.tolist() == [2, 1, 1]  # round(2.0), max(1, round(0.6)), max(1, round(0.05))
    assert (y[one] >= 0).all()
    ten = label_fraction(y, 0.1, seed=3)
    assert np.bincount(y[ten], minlength=3).tolist() == [20, 6, 1]
    assert set(one) <= set(ten)  # nested for one seed
    assert np.array_equal(label_fraction(y, 1.0, seed=0), np.flatnonzero(y >= 0))
    assert np.bincount(y[label_fraction(y, 0.01, seed=0, min_per_class=10)]).tolist() == [10, 10, 5]
    assert not np.array_equal(label_fraction(y, 0.1, seed=3), label_fraction(y, 0.1, seed=4))
    with pytest.raises(SsalInputError):
        label_fraction(y, 0.0)


def test_kfold_stratified_partition():
    y = _labels({0: 23, 1: 17, 2: 9, -1: 11})
    folds = kfold(y, k=5, seed=0)
    assert len(folds) == 5
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == np.flatnonzero(y >= 0).tolist()
    sizes = [len(te) for _, te in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert not set(train) & set(test)
        assert len(train) + len(test) == 49
        for c, n in ((0, 23), (1, 17), (2, 9)):
            assert np.sum(y[test] == c) in (n // 5, n // 5 + 1)
    with pytest.raises(SsalInputError):
        kfold(y, k=1)
    with pytest.raises(SsalInputError):
        kfold(np.array([0, 1, -1]), k=3)


def test_split_file_roundtrip_atomic(tmp_path):
    sp = stratified_split(_labels({0: 20, 1: 20}), seed=0)
    path = save_split(sp, tmp_path / "split.json", meta={"seed": 0})
    assert os.listdir(tmp_path) == ["split.json"]  # no temp file left behind
    back = load_split(path, n=40)
    assert set(back) == {"train", "val", "test"}
    for k in sp:
        np.testing.assert_array_equal(back[k], sp[k])
    assert json.loads(path.read_text())["meta"] == {"seed": 0}


@pytest.mark.parametrize(
    "content,problem",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"parts": {}}), "not an ssal split file"),
        (json.dumps({"format": "ssal-split", "parts": {"train": [0, 1], "test": [1]}}), "repeats"),
        (json.dumps({"format": "ssal-split", "parts": {"train": [0, "a"]}}), "integer"),
        (json.dumps({"format": "ssal-split", "parts": {"train": [0, 99]}}), "index 99"),
    ],
)
def test_load_split_errors_name_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SsalInputError) as err:
        load_split(path, n=10)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert "\n" not in str(err.value)


def test_load_split_missing_file(tmp_path):
    with pytest.raises(SsalInputError, match="not found"):
        load_split(tmp_path / "nope.json")
