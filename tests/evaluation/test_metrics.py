"""Metrics against hand-computed confusion matrices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssal.evaluation.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    f1_per_class,
    macro_f1,
    mean_std,
    per_class_accuracy,
    summarize_runs,
)

# 4 classes; class 3 occurs in neither truth nor prediction.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 1, 0, 1, 0, 2, 2, 0, 2]
CM = [[2, 1, 0, 0], [1, 1, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]]


def test_confusion_matrix_hand_computed() -> None:
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert cm.dtype == np.int64
    assert cm.tolist() == CM


def test_accuracy_and_per_class_hand_computed() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 9)
    pca = per_class_accuracy(Y_TRUE, Y_PRED, 4)
    assert pca[:3] == pytest.approx([2 / 3, 1 / 2, 3 / 4])
    assert math.isnan(pca[3])  # no true sample: undefined


def test_macro_f1_excludes_class_absent_from_truth_and_prediction() -> None:
    # F1: class 0 = 2*2/(2*2+2+1) = 4/7, class 1 = 2/(2+1+1) = 1/2, class 2 = 6/(6+0+1) = 6/7.
    f1 = f1_per_class(np.asarray(CM))
    assert f1[:3] == pytest.approx([4 / 7, 1 / 2, 6 / 7])
    assert math.isnan(f1[3])
    assert macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx((4 / 7 + 1 / 2 + 6 / 7) / 3)


def test_class_never_predicted_counts_as_zero_f1() -> None:
    y_true, y_pred = [0, 1, 2, 2], [0, 0, 2, 2]
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 2]]
    # class 0: 2/(2+1+0) = 2/3, class 1 never predicted: 0, class 2: 1.
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert per_class_accuracy(y_true, y_pred, 3).tolist() == pytest.approx([1.0, 0.0, 1.0])


def test_classification_report_is_json_ready() -> None:
    classes = ["happy", "angry", "sad", "neutral"]
    rep = classification_report(np.asarray(Y_TRUE), np.asarray(Y_PRED), classes)
    assert rep["n"] == 9
    assert rep["top1"] == pytest.approx(6 / 9)
    assert rep["confusion"] == CM
    assert rep["per_class"]["sad"] == pytest.approx(0.75)
    assert rep["per_class"]["neutral"] is None
    assert rep["support"] == {"happy": 3, "angry": 2, "sad": 4, "neutral": 0}
    json.dumps(rep, allow_nan=False)  # strict JSON: no NaN anywhere


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError):
        confusion_matrix([0.5], [0], 2)


def test_empty_input_is_undefined() -> None:
    assert math.isnan(accuracy([], []))
    rep = classification_report(np.zeros(0, np.int64), np.zeros(0, np.int64), ["a", "b"])
    assert rep["top1"] is None and rep["macro_f1"] is None and rep["n"] == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30))
def test_confusion_matrix_matches_double_loop(pairs: list[tuple[int, int]]) -> None:
    t, p = (np.asarray(a) for a in zip(*pairs))
    slow = np.zeros((4, 4), dtype=np.int64)
    for a, b in pairs:
        slow[a, b] += 1
    cm = confusion_matrix(t, p, 4)
    assert np.array_equal(cm, slow)
    assert accuracy(t, p) == pytest.approx(np.trace(slow) / len(pairs))


def test_summarize_runs_mean_and_sample_std() -> None:
    runs = [{"report": {"top1": 0.5, "macro_f1": 0.4}}, {"report": {"top1": 0.7, "macro_f1": 0.6}},
            {"report": {"top1": 0.9, "macro_f1": None}}]
    s = summarize_runs(runs)
    assert s["mean"] == pytest.approx(0.7)
    assert s["std"] == pytest.approx(0.2)  # sample std of 0.5, 0.7, 0.9
    assert s["macro_f1_mean"] == pytest.approx(0.5)
    assert len(s["runs"]) == 3
    assert mean_std([0.3]) == (0.3, 0.0)
    assert mean_std([]) == (None, None)
