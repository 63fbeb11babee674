"""The whole job's progress line (ssal.experiments.progress) on a made-up clock: stage k of n,
the time left from the rates of finished stages, reused stages done at once."""

from __future__ import annotations

import re

import pytest

from ssal.experiments.progress import JobProgress, Stage, format_duration, parse_duration

LINE = re.compile(r"^\[(\w+)\] stage (\d+) of (\d+): (.+?)( \(reused\))? \(elapsed (\d+:\d\d:\d\d), "
                  r"(?:time left ~(\d+:\d\d:\d\d)|time left unknown \(no stage timed yet\))\)$")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plan() -> list[Stage]:
    return [Stage("p:a:0", "pretrain a, seed 0", 10, "pretrain", "a"),
            Stage("p:a:1", "pretrain a, seed 1", 10, "pretrain", "a"),
            Stage("p:b:0", "pretrain b, seed 0", 20, "pretrain", "b"),
            Stage("e:a", "evaluate a", 5, "evaluate", "a"),
            Stage("e:b", "evaluate b", 5, "evaluate", "b"),
            Stage("r:x", "references of x", 4, "references", "a")]


def _parsed(lines):
    out = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        out.append((int(m[2]), int(m[3]), m[5] is not None, None if m[7] is None else parse_duration(m[7])))
    return out


def test_time_left_comes_from_the_finished_stages_by_kind_and_family():
    clock, logs = Clock(), []
    job = JobProgress(_plan(), logs.append, job="demo", clock=clock)
    job.start("p:a:0")
    clock.now += 20  # a pretrains at 2 s per unit
    job.start("p:a:1")
    clock.now += 30  # now 50 s for 20 units: 2.5 s per unit for a's pretraining
    job.start("p:b:0")
    clock.now += 20  # b: 1 s per unit
    job.start("e:a")
    clock.now += 5
    job.start("e:b")
    clock.now += 5
    job.start("r:x")
    clock.now += 1
    job.finish()
    lines = _parsed(logs[:-1])
    assert [k for k, *_ in lines] == [1, 2, 3, 4, 5, 6] and {n for _, n, *_ in lines} == {6}
    left = [t for *_, t in lines]
    assert left[0] is None  # nothing timed yet
    # stage 2: one rate known (a's pretraining, 2 s/unit): every pending stage falls back to it
    assert left[1] == pytest.approx(2 * (10 + 20 + 5 + 5 + 4), abs=0.5)
    # stage 3: a's pretraining at 2.5 s/unit; b's pretraining: same kind -> 2.5; evaluate a: family a -> 2.5;
    # evaluate b: nothing of b yet, same kind none -> all timed stages (2.5); references (family a) -> 2.5
    assert left[2] == pytest.approx(2.5 * (20 + 5 + 5 + 4), abs=0.5)
    # stage 4: evaluate a -> family a (2.5); evaluate b -> family b (1.0); references -> family a (2.5)
    assert left[3] == pytest.approx(2.5 * 5 + 1.0 * 5 + 2.5 * 4, abs=0.5)
    # stage 6: references, family a: kind references not timed -> family a: (20 + 30 + 5) s / (10 + 10 + 5) units
    assert left[5] == pytest.approx(4 * 55 / 25, abs=0.5)
    assert logs[-1] == "[demo] 6 of 6 stages done in 0:01:21"
    assert all(t is None or t >= 0 for t in left)


def test_reused_stages_count_as_done_at_once():
    clock, logs = Clock(), []
    job = JobProgress(_plan(), logs.append, job="demo", clock=clock)
    job.start("p:a:0", reused=True)
    job.start("p:a:1", reused=True)
    clock.now += 0.2
    job.start("p:b:0", partial=True)  # resumed part-way: runs, but is not timed
    clock.now += 7
    job.start("e:a")
    clock.now += 10  # the first timed stage: 2 s per unit
    job.start("e:b")
    lines = _parsed(logs)
    assert [r for _, _, r, _ in lines] == [True, True, False, False, False]
    assert [k for k, *_ in lines] == [1, 2, 3, 4, 5]
    assert [t for *_, t in lines][:4] == [None] * 4
    assert lines[4][3] == pytest.approx(2 * (5 + 4))  # evaluate b and the references; nothing reused counted


def test_a_stage_outside_the_plan_is_counted_and_keys_are_unique():
    logs = []
    job = JobProgress(_plan()[:1], logs.append, clock=Clock())
    job.start("p:a:0")
    job.start("extra")
    assert _parsed(logs)[1][:2] == (2, 2)
    with pytest.raises(ValueError, match="share a key"):
        JobProgress(_plan()[:1] * 2, logs.append)


@pytest.mark.parametrize("seconds, text", [(0, "0:00:00"), (59.6, "0:01:00"), (3725, "1:02:05"),
                                           (100 * 3600, "100:00:00"), (-3, "0:00:00")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == max(0, round(seconds))


def test_concurrent_stages_end_at_done_and_share_the_time_left():
    clock, logs = Clock(), []
    job = JobProgress(_plan(), logs.append, job="demo", clock=clock, workers=2)
    job.start("p:a:0")
    job.start("p:a:1")  # both run at once: starting the second does not end the first
    clock.now += 20
    job.done("p:a:0")  # 20 s for 10 units: 2 s per unit
    job.start("p:b:0")
    clock.now += 10
    job.done("p:a:1")  # 30 s for 10 units: now (20 + 30) / 20 = 2.5 s per unit of pretraining
    job.start("e:a")
    lines = _parsed(logs)
    assert [k for k, *_ in lines] == [1, 2, 3, 4]
    # stage 3 (b's pretraining, 20 units) and 4 later: at 2 s per unit, what is left is shared
    # by the two workers: (20 + 5 + 5 + 4) units x 2 s / 2 = 34 s
    assert lines[2][3] == pytest.approx(34, abs=1)
    # stage 4: e:a, e:b, r:x left at 2.5 s per unit of pretraining (nothing else timed yet):
    # (5 + 5 + 4) x 2.5 / 2 = 17.5 s
    assert lines[3][3] == pytest.approx(17.5, abs=1)
    clock.now += 5
    job.finish()
    assert logs[-1] == "[demo] 4 of 6 stages done in 0:00:35"
