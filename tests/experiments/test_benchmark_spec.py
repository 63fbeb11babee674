"""Benchmark specs as data: reading and refusing specs, folds by recording, seeded few-label draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssal.data.dataset import GaitDataset
from ssal.errors import SsalInputError
from ssal.experiments.corpus import EvalData, Recording
from ssal.experiments.folds import few_label_draw, make_folds
from ssal.experiments.spec import SplitSpec, load_spec, shipped_specs
from ssal.skeleton import EGAIT16


def test_shipped_specs_load():
    assert {"bandai-affect", "bandai-style"} <= set(shipped_specs())
    spec = load_spec("bandai-affect")
    assert spec.evaluation.where["session"] == ("d1s0",) and spec.split.by == "content"
    assert set(spec.split.validation) == {"bye", "walk-right", "dash"}
    assert {"quick", "default", "full"} <= set(spec.schedules)
    assert spec.pretraining.sources[1].where_not == {"session": ("d1s0",)}
    style = load_spec("bandai-style")
    assert style.split.within == "session" and style.split.test == {"content": ("run",)}


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return str(p)


def test_extends_overrides_methods_and_keeps_the_data(tmp_path):
    spec = load_spec(_write(tmp_path, "extends: bandai-affect\nname: mine\nmethods:\n  - skeletonclr\n"
                                      "  - {name: a, method: skeletonclr, set: {model: {temperature: 0.2}}}\n"
                                      "schedules: {s: {pretrain_epochs: 2}}\n"))
    assert spec.name == "mine" and spec.evaluation.where["session"] == ("d1s0",)
    assert [m.name for m in spec.methods] == ["skeletonclr", "a"] and spec.methods[1].set == {"model": {"temperature": 0.2}}
    assert spec.schedule("s").pretrain_epochs == 2 and spec.schedule("quick").pretrain_epochs == 1


def test_a_schedule_is_read_over_the_default_one(tmp_path):
    spec = load_spec(_write(tmp_path, "extends: bandai-affect\nschedules: {s: {pretrain_epochs: 2}}\n"))
    default, s = spec.schedule("default"), spec.schedule("s")
    assert s.pretrain_epochs == 2 and (s.clip_len, s.plan, s.scratch_draws) == (default.clip_len, default.plan,
                                                                                default.scratch_draws)
    import ssal.experiments

    shipped = Path(ssal.experiments.__file__).parent / "specs" / "bandai-affect.yaml"
    text = shipped.read_text().replace("  default:", "  other:")
    with pytest.raises(SsalInputError, match="schedules.default: required"):
        load_spec(_write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ("extends: bandai-affect\nsplitt: {}\n", "unknown key(s) splitt"),
    ("extends: bandai-affect\nsplit: {sheme: fixed}\n", "split: unknown key(s) sheme"),
    ("extends: bandai-affect\nsplit: {scheme: random}\n", "split.scheme: 'random'"),
    ("extends: bandai-affect\nschedules: {quick: {pretrain_epochs: -1}}\n", "schedules.quick.pretrain_epochs"),
    ("extends: bandai-affect\nschedules: {q: {methods: [nope]}}\n", "'nope' is not one of the spec's methods"),
    ("a: &x [1, 2]\nb: *x\n", "aliases are not allowed"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_bad_specs_are_one_line_errors_naming_the_key(tmp_path, text, message):
    with pytest.raises(SsalInputError) as err:
        load_spec(_write(tmp_path, text))
    assert message in str(err.value) and "\n" not in str(err.value)


def _data(actions=("walk", "run", "bow"), classes=("a", "b"), takes=2, clips=3) -> EvalData:
    names, groups, y, recs = [], [], [], {}
    for act in actions:
        for k, c in enumerate(classes):
            for t in range(takes):
                rec = f"{act}_{c}_{t}.bvh"
                recs[rec] = Recording(Path(rec), {"content": act, "style": c, "file": rec[:-4], "session": f"s{t % 2}"})
                for j in range(clips):
                    names.append(f"{rec}@{j}")
                    groups.append(rec)
                    y.append(k)
    n = len(names)
    ds = GaitDataset(x=np.zeros((n, 3, 4, EGAIT16.num_joints), np.float32), y=np.array(y), names=names,
                     lengths=np.full(n, 4), classes=list(classes), layout=EGAIT16, fps=30.0, meta={}, groups=groups)
    return EvalData(ds, recs)


def test_leave_one_out_folds_keep_recordings_on_one_side():
    data = _data()
    folds = make_folds(data, SplitSpec(scheme="leave-one-out", by="content", validation=("bow",)))
    assert [(f.name, f.part) for f in folds] == [("all/bow", "val"), ("all/run", "test"), ("all/walk", "test")]
    groups = np.asarray(data.dataset.recording_ids)
    seen = []
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.test])
        assert {data.recordings[g].fields["content"] for g in groups[f.test]} == {f.name.split("/")[1]}
        seen += list(f.test)
    assert sorted(seen) == list(range(len(data.dataset)))  # every clip tested exactly once
    assert [f.name for f in make_folds(data, SplitSpec(validation=("bow",)), keep_test=("run",))] == ["all/bow", "all/run"]


def test_within_blocks_and_fixed_split():
    data = _data(actions=("walk", "run"))
    folds = make_folds(data, SplitSpec(scheme="fixed", train={"content": ("walk",)}, test={"content": ("run",)},
                                       within="session"))
    assert [f.name for f in folds] == ["s0/fixed", "s1/fixed"]
    for f in folds:
        sess = {data.recordings[g].fields["session"] for g in np.asarray(data.dataset.recording_ids)[np.r_[f.train, f.test]]}
        assert sess == {f.name.split("/")[0]} and f.classes == (0, 1)


def test_unknown_split_field_is_refused():
    with pytest.raises(SsalInputError, match="unknown field"):
        make_folds(_data(), SplitSpec(by="actor"))


def test_few_label_draws_are_seeded_and_per_class():
    data = _data(takes=4)
    fold = make_folds(data, SplitSpec(by="content"))[0]
    groups = np.asarray(data.dataset.recording_ids)
    for n in (1, 2):
        idx = few_label_draw(data, fold, 0, n, draw=5)
        assert np.array_equal(idx, few_label_draw(data, fold, 0, n, draw=5))  # same draw for every representation
        assert set(idx) <= set(fold.train)
        for c in (0, 1):
            assert len(set(groups[idx][data.dataset.y[idx] == c])) == n
    draws = {tuple(few_label_draw(data, fold, 0, 1, d)) for d in range(10)}
    assert len(draws) > 1


def test_extends_a_path_relative_to_the_spec(tmp_path):
    (tmp_path / "base.yaml").write_text("extends: bandai-affect\nname: base\nfew_labels: {per_class: [3], draws: 4}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "child.yaml").write_text("extends: ../base.yaml\nname: child\nfew_labels: {draws: 7}\n")
    spec = load_spec(str(sub / "child.yaml"))
    assert spec.name == "child" and spec.few_labels.per_class == (3,) and spec.few_labels.draws == 7
    assert spec.evaluation.where["session"] == ("d1s0",)
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\nname: loop\n")
    with pytest.raises(SsalInputError, match="at most 4 levels"):
        load_spec(str(tmp_path / "loop.yaml"))
