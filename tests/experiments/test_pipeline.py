"""End-to-end experiments with a tiny schedule: the demo (and its resume), reproduction with
k-fold cross-validation on a user file through the CLI; the schedule presets and the protocol
registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import ssal
from ssal.checkpoint import load_checkpoint
from ssal.cli.main import main
from ssal.data.io import save_dataset
from ssal.data.splits import load_split
from ssal.data.synthetic import generate
from ssal.errors import SsalInputError
from ssal.experiments import pretraining, schedule
from ssal.experiments.jobs import run_demo
from ssal.experiments.notes import compare
from ssal.experiments.schedule import Schedule

TINY = Schedule.of("test", corpus_size=64, pretrain_epochs=1, batch_size=16, queue_size=40, knn_every=1,
                channels=(8, 16), strides=(1, 2), image_channels=8, image_depth=1, clip_len=20,
                linear_epochs=3, finetune_epochs=1, semi_epochs=1, semi_steps=None, fractions=(0.1,), seeds=(0, 1),
                pretrain_seeds=(0, 1))
SSL = ("ssal", "aimclr", "mamp", "pstl", "skeletonclr")
#: The stages in this process (the worker processes have their own test, below).
ONE_PROCESS = {"run": {"workers": 1}}
PRETRAIN_FILES = ("encoder.pt", "checkpoint.pt", "metrics.jsonl", "config.yaml")


def _mtimes(out: Path) -> dict[str, int]:
    return {f"{m}/{f}": (out / m / f).stat().st_mtime_ns for m in SSL for f in PRETRAIN_FILES}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "demo"
    logs: list[str] = []
    results = run_demo(out, TINY, progress=False, command="ssal demo --test", log=logs.append,
                       config_overrides=ONE_PROCESS)
    return {"out": out, "results": results, "logs": logs, "mtimes": _mtimes(out),
            "saved": json.loads((out / "results.json").read_text())}


def test_demo_results_cover_every_method_and_protocol(demo):
    methods = demo["saved"]["methods"]
    assert set(methods) == {*SSL, "ssal (branch maps)", "supervised-cffn", "random-cffn", "supervised-stgcn",
                            "random-stgcn", "supervised-transformer", "random-transformer"}
    # Which representation each protocol read: SSAL's fused vector, the baselines' pooled maps.
    assert methods["ssal"]["feature"] == "fused 128-d"
    assert methods["ssal (branch maps)"]["feature"].startswith("branch maps pooled")
    assert set(methods["ssal (branch maps)"]) >= {"knn", "linear", "linear_std"}
    assert "finetune" not in methods["ssal (branch maps)"]
    for m in ("aimclr", "skeletonclr", "pstl", "mamp"):
        assert methods[m]["feature"].startswith("pooled"), m
    # The saved linear classifiers read those features: fused 128-d for SSAL, the pooled last
    # ST-GCN map (channels[-1] = 16 here) for the baselines, both branches' maps (16 + 8).
    out = demo["out"]
    head_in = {name: load_checkpoint(out / path / "classifier.pt")["head"]["fc.weight"].shape[1]
               for name, path in (("ssal", "ssal"), ("aimclr", "aimclr"), ("skeletonclr", "skeletonclr"),
                                  ("pstl", "pstl"), ("ssal (branch maps)", "ssal/backbone"))}
    assert head_in == {"ssal": 128, "aimclr": 16, "skeletonclr": 16, "pstl": 16, "ssal (branch maps)": 24}
    assert load_checkpoint(out / "ssal" / "classifier.pt")["feature"] == "output"
    assert load_checkpoint(out / "ssal" / "backbone" / "classifier.pt")["feature"] == "backbone"
    n_test = demo["saved"]["dataset"]["split_sizes"]["test"]
    assert demo["saved"]["dataset"]["sequences"] == 64
    for m in SSL:
        entry = methods[m]["finetune"]  # finetune and semi: the first pretraining seed's encoder
        assert 0.0 <= entry["top1"] <= 1.0 and entry["n"] == n_test, m
        assert methods[m]["pretrain_seeds"] == [0, 1]
        for proto in ("knn", "linear", "linear_std"):  # mean +- std over the two pretraining seeds
            summary = methods[m][proto]
            assert len(summary["runs"]) == 2 and 0.0 <= summary["mean"] <= 1.0, (m, proto)
            assert all(run["n"] == n_test for run in summary["runs"])
        semi = methods[m]["semi"]["0.1"]
        assert len(semi["runs"]) == 2 and 0.0 <= semi["mean"] <= 1.0
        assert methods[m]["pretrain"]["epochs"] == 1
    for arch in ("cffn", "stgcn"):
        assert 0.0 <= methods[f"supervised-{arch}"]["supervised"]["top1"] <= 1.0
        assert "0.1" in methods[f"supervised-{arch}"]["semi"]
        assert set(methods[f"random-{arch}"]) == {"knn", "linear", "linear_std", "feature", "init_seeds"}
    # The claims checked in plain language (random-init and supervised comparisons).
    assert any("random" in n for n in demo["saved"]["notes"])
    assert demo["saved"]["schedule"]["name"] == "test"


def test_demo_says_how_far_the_whole_job_is(demo):
    from ssal.experiments.progress import parse_duration

    line = re.compile(r"^\[demo\] stage (\d+) of (\d+): .+ \(elapsed (\d+:\d\d:\d\d), "
                      r"time left (~(\d+:\d\d:\d\d)|unknown \(no stage timed yet\))\)$")
    found = [line.match(m) for m in demo["logs"] if m.startswith("[demo] stage ")]
    assert found and all(found), [m for m in demo["logs"] if m.startswith("[demo] stage ")]
    seeds = len(TINY.pretrain.pretrain_seeds)
    n = len(SSL) * seeds + len(SSL) + 3  # pretraining per method and seed, protocols per method, 3 architectures
    assert [int(m[1]) for m in found] == list(range(1, n + 1))
    assert {int(m[2]) for m in found} == {n}
    assert found[0][5] is None  # nothing timed before the first stage
    left = [parse_duration(m[5]) for m in found[1:]]
    assert len(left) == n - 1 and all(t >= 0 for t in left)
    assert sum(m.startswith(f"[demo] {n} of {n} stages done in ") for m in demo["logs"]) == 1


def test_demo_writes_report_and_plots(demo):
    out = demo["out"]
    report = (out / "report.md").read_text()
    assert "ssal demo --test" in report
    for m in (*SSL, "supervised-cffn", "random-stgcn"):
        assert m in report
    plots = out / "plots"
    for name in ("pretrain_loss.png", "pretrain_knn.png", "label_fraction.png", "embedding_ssal.png",
                 "confusion_ssal_finetune.png", "confusion_supervised-cffn_supervised.png"):
        data = (plots / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, name
        assert f"plots/{name}" in report, name


def test_demo_classifiers_load_and_predict(demo):
    out = demo["out"]
    test = load_split(out / "split.json")["test"]
    ds = generate(64, seed=0).subset(test[:5])
    for m in SSL:
        linear = ssal.load(out / m / "classifier.pt")
        assert linear.meta["protocol"] == "linear" and linear.meta["method"] == m
        probs = linear.predict(ds)
        assert probs.shape == (5, 4)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        finetuned = ssal.load(out / m / "classifier_finetune.pt")
        assert finetuned.meta["protocol"] == "finetune"
    assert ssal.load(out / "supervised-cffn" / "classifier_supervised.pt").meta["protocol"] == "supervised"


def test_demo_resume_reuses_pretrained_encoders(demo, monkeypatch):
    out = demo["out"]

    def no_pretraining(*args, **kwargs):
        raise AssertionError("resume pretrained again")

    monkeypatch.setattr(pretraining, "pretrain", no_pretraining)
    logs: list[str] = []
    # (Without the semi-supervised runs, to keep the test short; pretraining is what is checked.)
    results = run_demo(out, TINY.with_changes(fractions=()), resume=True, progress=False, log=logs.append,
                       config_overrides=ONE_PROCESS)
    assert _mtimes(out) == demo["mtimes"]
    assert sum("pretrained encoder found" in line for line in logs) == len(SSL) * len(TINY.pretrain.pretrain_seeds)
    # the progress line counts them as done at once
    assert sum(line.startswith("[demo] stage ") and "(reused)" in line for line in logs) == len(SSL) * len(
        TINY.pretrain.pretrain_seeds)
    assert set(results["methods"]) == set(demo["saved"]["methods"])
    # Same split, same encoders, same seeds: the kNN numbers are reproduced exactly.
    for m in SSL:
        assert results["methods"][m]["knn"]["mean"] == demo["saved"]["methods"][m]["knn"]["mean"]
    assert json.loads((out / "results.json").read_text())["methods"].keys() == results["methods"].keys()


def test_resume_with_another_pretraining_schedule_is_refused(demo):
    out = demo["out"]
    before = _mtimes(out)
    longer = TINY.with_changes(name="longer", pretrain_epochs=TINY.pretrain.pretrain_epochs + 1)
    with pytest.raises(SsalInputError, match="pretrain_epochs"):
        run_demo(out, longer, resume=True, progress=False, log=lambda s: None, config_overrides=ONE_PROCESS)
    assert _mtimes(out) == before
    assert json.loads((out / "schedule.json").read_text())["pretrain_epochs"] == TINY.pretrain.pretrain_epochs


def test_reproduce_with_kfold_through_the_cli(tmp_path, monkeypatch, capsys):
    data = tmp_path / "mine.npz"
    ds = generate(64, seed=7)
    save_dataset(ds, data)
    monkeypatch.setitem(schedule.SCHEDULES, "quick", TINY)
    out = tmp_path / "repro"
    rc = main(["reproduce", "--data", str(data), "--folds", "2", "--methods", "skeletonclr", "--quick",
               "--out", str(out), "--no-progress", "--set", "train.lr=0.05", "--set", "eval.linear.epochs=2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # --set reaches every pretraining (over the schedule's lr) and the protocols' schedule
    import yaml

    assert yaml.safe_load((out / "skeletonclr" / "config.yaml").read_text())["train"]["lr"] == 0.05
    assert json.loads((out / "schedule.json").read_text())["linear_epochs"] == 2
    assert json.loads((out / "settings.json").read_text()) == {"train": {"lr": 0.05}}
    rc = main(["reproduce", "--data", str(data), "--methods", "skeletonclr", "--quick", "--out", str(out),
               "--no-progress", "--resume", "--set", "train.lr=0.2"])
    assert rc == 2 and "was started with other train settings" in capsys.readouterr().err
    assert "2-fold skeletonclr: linear" in captured.out
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"skeletonclr", "supervised-stgcn", "random-stgcn"}
    assert results["dataset"]["sequences"] == 64 and (out / "report.md").is_file()

    kf = out / "kfold"
    summary = json.loads((kf / "kfold.json").read_text())
    assert set(summary) == {"skeletonclr"} and set(summary["skeletonclr"]) == {"linear", "finetune"}
    for proto in ("linear", "finetune"):
        s = summary["skeletonclr"][proto]
        assert len(s["runs"]) == 2 and 0.0 <= s["mean"] <= 1.0
    # The folds' test parts cover the data once, and pretraining never saw a fold's test part.
    tested = 0
    for f in range(2):
        res = json.loads((kf / f"fold{f}" / "skeletonclr" / "split.json").read_text())
        parts = res["parts"]
        seen = set(parts["train"]) | set(parts["val"])  # what pretraining and its monitor read
        clf = ssal.load(kf / f"fold{f}" / "skeletonclr" / "classifier.pt")
        n_test = clf.meta["report"]["n"]
        assert len(parts["test"]) == n_test and not seen & set(parts["test"])
        assert len(seen) == 64 - n_test
        tested += n_test
    assert tested == 64


def test_compare_states_each_claim_and_explains_a_one_class_probe():
    def entry(top1, per_class=None):
        return {"top1": top1, "per_class": per_class or {"a": top1, "b": top1}}

    results = {"methods": {
        "skeletonclr": {"linear": entry(0.6), "linear_std": entry(0.5),
                        "semi": {"0.01": {"mean": 0.4, "std": 0.1}}},
        "random-stgcn": {"linear": entry(0.5, {"a": 1.0, "b": 0.0}), "linear_std": entry(0.55)},
        "supervised-stgcn": {"semi": {"0.01": {"mean": 0.45, "std": 0.05}}},
    }}
    notes = compare(results)
    # single runs: no interval, so the note names no winner whatever the means say
    assert ("skeletonclr: linear 60.0% vs a random stgcn encoder (50.0%): one run each, no interval, so no "
            "verdict.") in notes
    assert any(n.startswith("skeletonclr: linear on standardised features 50.0% vs a random") for n in notes)
    assert any(n.startswith("skeletonclr: finetune at 1% labels 40.0 ± 10.0% vs supervised") for n in notes)
    assert sum(n.startswith("random-stgcn: the linear probe predicts one class") for n in notes) == 1
    results["methods"]["random-stgcn"]["linear"] = entry(0.5)
    assert not any(n.startswith("random-stgcn") for n in compare(results))


def test_schedule_has_a_pretraining_and_an_evaluation_part():
    s = Schedule.of("x", pretrain_epochs=2, linear_epochs=7, knn_every=3)
    assert (s.pretrain.pretrain_epochs, s.pretrain.knn_every, s.evaluation.linear_epochs) == (2, 3, 7)
    record = s.to_dict()
    assert list(record)[:3] == ["name", "corpus_size", "pretrain_epochs"] and record["linear_epochs"] == 7
    assert s.with_changes(fractions=(0.5,)).pretrain == s.pretrain
    with pytest.raises(SsalInputError, match="bogus"):
        s.with_changes(bogus=1)


def test_split_fractions_and_knn_settings_come_from_the_configuration(tmp_path):
    from ssal.experiments.experiment import knn_settings, prepare_experiment, split_fractions

    assert split_fractions() == (0.1, 0.1)
    assert (knn_settings().k, knn_settings().temperature) == (20, 0.1)
    assert (knn_settings({"run": {"knn_k": 5}}).k, knn_settings({"run": {"knn_k": 5}}).temperature) == (5, 0.1)
    exp = prepare_experiment(tmp_path / "run", schedule=TINY, progress=False, log=lambda s: None,
                             config_overrides={"data": {"val_fraction": 0.25, "test_fraction": 0.2}})
    sizes = {k: len(v) for k, v in exp.split.items()}
    assert sizes["val"] == pytest.approx(0.25 * len(exp.dataset), abs=3)
    assert sizes["test"] == pytest.approx(0.2 * len(exp.dataset), abs=3)


# ---------------------------------------------------------------- schedule presets


def _preset_file(name: str) -> dict:
    from importlib import resources

    import yaml

    return yaml.safe_load((resources.files("ssal.experiments") / "schedules" / f"{name}.yaml").read_text())


def test_default_preset_writes_every_field_and_the_others_only_what_differs():
    from dataclasses import asdict, fields

    from ssal.experiments.schedule import SCHEDULES, EvalSchedule, PretrainSchedule

    assert set(SCHEDULES) == {"quick", "default", "full"}
    default = _preset_file("default")
    assert list(default["pretrain"]) == [f.name for f in fields(PretrainSchedule)]
    assert list(default["evaluation"]) == [f.name for f in fields(EvalSchedule)]
    base = SCHEDULES["default"]
    for name in ("quick", "full"):
        raw = _preset_file(name)
        assert raw["extends"] == "default" and set(raw) == {"extends", "pretrain", "evaluation"}
        sched = SCHEDULES[name]
        for part in ("pretrain", "evaluation"):
            mine, theirs = asdict(getattr(sched, part)), asdict(getattr(base, part))
            assert {k for k in mine if mine[k] != theirs[k]} == set(raw[part]), (name, part)
    assert Schedule.of("x") == base.with_changes(name="x")
    # The flat record written to schedule.json and results.json (tuples as JSON lists).
    assert json.dumps(SCHEDULES["quick"].to_dict()) == (
        '{"name": "quick", "corpus_size": 600, "pretrain_epochs": 4, "batch_size": 64, "lr": 0.1, '
        '"lr_milestones": [], "clip_len": 24, "queue_size": 256, "momentum": 0.99, "knn_every": 2, '
        '"pretrain_seeds": [0], "channels": [16, 32, 32, 64, 64], "strides": [1, 2, 1, 2, 1], "image_channels": 16, '
        '"image_depth": 1, "linear_epochs": 50, "linear_lr": 3.0, "linear_std_lr": 0.3, "finetune_epochs": 5, '
        '"finetune_lr": 0.05, "semi_epochs": 3, "semi_steps": 20, "fractions": [0.05, 0.1], "seeds": [0, 1], '
        '"semi_validations": 5}')
    assert SCHEDULES["full"].pretrain.channels is None and SCHEDULES["full"].evaluation.semi_steps is None
    assert SCHEDULES["full"].evaluation.semi_validations is None


def test_a_schedule_file_extends_a_preset_and_is_named_by_the_file(tmp_path):
    from ssal.experiments.schedule import SCHEDULES, load_schedule

    path = tmp_path / "mine.yaml"
    path.write_text("extends: quick\npretrain: {pretrain_epochs: 2}\nevaluation: {fractions: [0.5]}\n")
    mine = load_schedule(path)
    assert mine == SCHEDULES["quick"].with_changes(name="mine", pretrain_epochs=2, fractions=(0.5,))


@pytest.mark.parametrize("text, message", [
    ("extends: default\npretrain: {lrr: 0.1}\n", "pretrain: unknown key(s) lrr"),
    ("extends: default\npretrainn: {}\n", "unknown key(s) pretrainn"),
    ("extends: default\nevaluation: {fractions: [a]}\n", "evaluation.fractions: expected a list of positive numbers"),
    ("extends: default\npretrain: {pretrain_epochs: ten}\n", "pretrain.pretrain_epochs: expected a whole number"),
    ("extends: default\nevaluation: {semi_steps: 1.5}\n", "evaluation.semi_steps"),
    ("pretrain: {lr: 0.1}\n", "pretrain: missing key(s) corpus_size"),
    ("extends: nothing\n", "unknown schedule 'nothing'"),
    ("extends: default\npretrain: [1]\n", "pretrain: expected a mapping"),
])
def test_a_bad_schedule_file_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    from ssal.experiments.schedule import load_schedule

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SsalInputError) as err:
        load_schedule(path)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    if "unknown schedule" not in message:
        assert "bad.yaml" in str(err.value)


def test_demo_refuses_an_unknown_schedule_name_in_one_line(tmp_path):
    with pytest.raises(SsalInputError, match="unknown schedule 'nope'; shipped: default, full, quick"):
        run_demo(tmp_path / "demo", "nope", progress=False, log=lambda s: None)
    assert not (tmp_path / "demo").exists()


def test_report_says_what_each_method_was_trained_as(demo):
    trained = demo["saved"]["trained"]
    assert set(trained) == set(SSL)
    assert trained["pstl"].startswith("ST-GCN 8-16; Barlow Twins on 3 views, projector 1024; adam lr 0.005")
    assert trained["mamp"].startswith("transformer dim 64, depth 4, 4 heads, 20 frames in 4-frame tokens; masked motion")
    assert trained["aimclr"].startswith("ST-GCN 8-16; MoCo, queue 40") and "strong view extreme" in trained["aimclr"]
    assert "AFF 8 channels x 1" in trained["ssal"]
    assert all(line.endswith("(CPU plan)") for line in trained.values())
    report = (demo["out"] / "report.md").read_text()
    assert "## Methods as trained" in report and f"- pstl: {trained['pstl']}" in report


def test_worker_processes_give_the_one_process_results(tmp_path):
    """Two worker processes of one thread each against one process of one thread: the same
    stages, the same numbers (every stage seeds itself), and the progress lines of each stage."""
    import torch

    small = TINY.with_changes(fractions=())
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for workers in (1, 2):
            logs: list[str] = []
            runs[workers] = (run_demo(tmp_path / f"w{workers}", small, methods=("skeletonclr", "ssal"),
                                      progress=False, log=logs.append,
                                      config_overrides={"run": {"workers": workers}}), logs)
    finally:
        torch.set_num_threads(before)
    (one, _), (two, logs) = runs[1], runs[2]
    assert two["workers"] == {"processes": 2, "threads": 1}
    assert set(one["methods"]) == set(two["methods"])
    for m, res in one["methods"].items():
        for proto in ("knn", "linear", "linear_std"):
            if proto in res:
                assert two["methods"][m][proto]["mean"] == pytest.approx(res[proto]["mean"], abs=1e-9), (m, proto)
    stage_lines = [line for line in logs if line.startswith("[demo] stage ")]
    n = 2 * len(small.pretrain.pretrain_seeds) + 2 + 2  # pretraining, protocols, 2 architectures
    assert [int(line.split()[2]) for line in stage_lines] == list(range(1, n + 1))
    # the worker's own lines came back to the job's log
    assert any(line.startswith("[skeletonclr] pretraining took") for line in logs)
    assert logs[0].startswith("[demo] 2 worker processes, 1 thread(s) each")


def test_stage_pool_orders_waits_and_refuses_cycles(tmp_path):
    from ssal.experiments.experiment import prepare_experiment
    from ssal.experiments.stage_pool import Task, WorkerPlan, run_tasks

    exp = prepare_experiment(tmp_path / "e", schedule=TINY, progress=False, log=lambda s: None)
    # getattr(exp, name) is a module-level (picklable) function of the experiment
    tasks = [Task("b", getattr, ("device",), after=("a",)), Task("a", getattr, ("seed",))]
    for plan in (WorkerPlan(1, None), WorkerPlan(2, 1)):
        order: list[str] = []
        out = run_tasks(exp, tasks, plan, on_start=lambda t, seen=order: seen.append(t.key))
        assert out == {"a": 0, "b": "cpu"} and order == ["a", "b"], plan
    with pytest.raises(ValueError, match="wait for each other"):
        run_tasks(exp, [Task("a", getattr, ("seed",), after=("b",)), Task("b", getattr, ("seed",), after=("a",))],
                  WorkerPlan(1, None))
    with pytest.raises(ValueError, match="unknown keys"):
        run_tasks(exp, [Task("a", getattr, ("seed",), after=("z",))], WorkerPlan(1, None))
    assert WorkerPlan.resolve(None, "cpu", cores=2) == WorkerPlan(2, 1)
    assert WorkerPlan.resolve(None, "cpu", cores=16) == WorkerPlan(4, 4)
    assert WorkerPlan.resolve(None, "cuda", cores=16) == WorkerPlan(1, None)
    assert WorkerPlan.resolve(None, "cpu", cores=1) == WorkerPlan(1, None)
    assert WorkerPlan.resolve(3, "cpu", cores=2) == WorkerPlan(3, 1)
