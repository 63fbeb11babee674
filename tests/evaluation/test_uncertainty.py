"""Bootstrap intervals over units, paired differences and the verdict words."""

from __future__ import annotations

import numpy as np
import pytest

from ssal.evaluation.metrics import macro_f1
from ssal.evaluation.uncertainty import Interval, bootstrap_ci, bootstrap_statistic, paired_difference, verdict


def test_constant_scores_have_a_point_interval():
    iv = bootstrap_ci([1.0] * 7)
    assert (iv.mean, iv.lo, iv.hi, iv.n) == (1.0, 1.0, 1.0, 7)


def test_interval_matches_the_slow_bootstrap():
    scores = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1], dtype=float)
    iv = bootstrap_ci(scores, n_boot=500, seed=3)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, scores.size, size=(500, scores.size))
    means = sorted(float(np.mean([scores[j] for j in row])) for row in idx)  # one resample at a time
    assert iv.mean == pytest.approx(0.7)
    assert iv.lo == pytest.approx(np.quantile(means, 0.025)) and iv.hi == pytest.approx(np.quantile(means, 0.975))


def test_interval_width_follows_the_binomial_standard_error():
    scores = np.r_[np.ones(300), np.zeros(200)]
    iv = bootstrap_ci(scores)
    se = np.sqrt(0.6 * 0.4 / 500)
    assert iv.hi - iv.lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_paired_difference_cancels_shared_difficulty():
    rng = np.random.default_rng(0)
    base = rng.random(40)
    a, b = base + 0.05, base  # a is better on every unit by 5 points
    d = paired_difference(a, b)
    assert d.mean == pytest.approx(0.05) and d.lo == pytest.approx(0.05) and verdict(d) == "beats"
    assert verdict(paired_difference(b, a)) == "loses"
    unpaired_width = bootstrap_ci(a).hi - bootstrap_ci(a).lo
    assert d.hi - d.lo < unpaired_width


def test_verdict_follows_the_interval_not_the_mean():
    assert verdict(Interval(0.10, -0.01, 0.21, 30)) == "ties"
    assert verdict(Interval(0.02, 0.001, 0.04, 30)) == "beats"
    assert verdict(Interval(-0.02, -0.04, -0.001, 30)) == "loses"


def test_paired_difference_needs_the_same_units():
    with pytest.raises(ValueError, match="same units"):
        paired_difference([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="no units"):
        bootstrap_ci([])


def test_bootstrap_statistic_macro_f1():
    t = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    iv = bootstrap_statistic(t, p, lambda a, b: macro_f1(a, b, 3), n_boot=200)
    # per class F1: 0.5, 0.8, 0.667 -> macro 0.656
    assert iv.mean == pytest.approx((0.5 + 0.8 + 2 / 3) / 3) and iv.lo <= iv.mean <= iv.hi


def test_seed_difference_is_a_paired_t_interval():
    from ssal.evaluation.uncertainty import seed_difference

    d = seed_difference([0.70, 0.72, 0.68], [0.60, 0.61, 0.62])
    diffs = np.array([0.10, 0.11, 0.06])
    half = 4.303 * diffs.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 df)
    assert d.mean == pytest.approx(diffs.mean()) and d.lo == pytest.approx(diffs.mean() - half)
    assert verdict(d) == "beats"
    assert seed_difference([0.7], [0.6]) is None  # one run each: no interval


def test_demo_notes_take_their_words_from_the_interval():
    from ssal.experiments.notes import seed_verdict

    def entry(*top1):
        return {"mean": float(np.mean(top1)), "std": 0.0, "runs": [{"top1": t} for t in top1]}

    # means differ by 4 points, but the seeds disagree: the interval holds 0
    assert seed_verdict(entry(0.70, 0.60, 0.74), entry(0.62, 0.64, 0.66))[0] == "ties with"
    assert seed_verdict(entry(0.70, 0.72, 0.71), entry(0.60, 0.61, 0.62))[0] == "beats"
    assert seed_verdict(entry(0.60, 0.61, 0.62), entry(0.70, 0.72, 0.71))[0] == "loses to"
    assert seed_verdict({"top1": 0.7}, {"top1": 0.6}) == ("vs", "one run each, no interval, so no verdict")
