"""Linear, finetune, supervised and semi-supervised protocols on a tiny, easy toy problem."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from ssal.data import GaitDataset
from ssal.errors import SsalInputError
from ssal.evaluation.classifier import (
    Classifier,
    ClassifierSettings,
    FinetuneConfig,
    LinearConfig,
    evaluate,
    train_classifier,
)
from ssal.evaluation.features import extract_features
from ssal.evaluation.semi import SemiSettings, semi_supervised
from ssal.models.base import resize_time
from ssal.skeleton import EGAIT16

CLASSES = ["happy", "angry", "sad"]
T = 10



class TinyEncoder(nn.Module):
    """Stand-in encoder with BatchNorm and dropout: 1x1 conv, BN, ReLU, global pooling, linear."""

    def __init__(self, out_dim: int = 8) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.conv = nn.Conv2d(3, 16, 1)
        self.bn = nn.BatchNorm2d(16)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc(self.drop(h))


def toy_ds(n_per_class: int, seed: int, t: int = T) -> GaitDataset:
    """Class c shifts coordinate channel c by +1.5: easy, but only from the data."""
    rng = np.random.default_rng(seed)
    v = EGAIT16.num_joints
    y = np.repeat(np.arange(len(CLASSES)), n_per_class)
    x = rng.standard_normal((len(y), 3, t, v)).astype(np.float32)
    x[np.arange(len(y)), y] += 1.5
    return GaitDataset(x=x, y=y, names=[f"s{i}" for i in range(len(y))], lengths=np.full(len(y), t),
                       classes=CLASSES, layout=EGAIT16)


def make_encoder(seed: int = 0) -> TinyEncoder:
    torch.manual_seed(seed)
    enc = TinyEncoder()
    enc.train()
    with torch.no_grad():  # non-default BN statistics, so that a BN update would show
        enc(torch.randn(32, 3, T, EGAIT16.num_joints) * 2 + 1)
    return enc


@pytest.fixture(scope="module")
def splits() -> tuple[GaitDataset, GaitDataset, GaitDataset]:
    return toy_ds(20, 0), toy_ds(8, 1), toy_ds(12, 2)


# ---------------------------------------------------------------- features / resizing


def test_resize_time_keeps_joints_and_endpoints() -> None:
    n, v = 2, EGAIT16.num_joints
    ramp = torch.arange(6, dtype=torch.float32).view(1, 1, 6, 1)
    offset = torch.arange(3 * v, dtype=torch.float32).view(1, 3, 1, v)
    x = (ramp + 100 * offset).expand(n, 3, 6, v).contiguous()
    y = resize_time(x, 12)
    assert y.shape == (n, 3, 12, v)
    assert torch.allclose(y[:, :, 0], x[:, :, 0]) and torch.allclose(y[:, :, -1], x[:, :, -1])
    d = y - 100 * offset  # each (channel, joint) carries the same resampled ramp
    assert torch.allclose(d, d[:, :1, :, :1].expand_as(d), atol=1e-3)  # float32 at offsets ~4700
    # The convention of pretraining and preprocessing: output frame i at i (T - 1) / (L - 1).
    torch.testing.assert_close(d[0, 0, :, 0], torch.linspace(0, 5, 12), atol=1e-3, rtol=0)
    assert (d[0, 0, 1:, 0] - d[0, 0, :-1, 0] >= 0).all()
    assert resize_time(x, 6) is x and resize_time(x, None) is x
    assert resize_time(x, 3).shape == (n, 3, 3, v)


def test_extract_features_order_batches_and_mode(splits) -> None:
    train, _, _ = splits
    enc = make_encoder()
    enc.train()
    f = extract_features(enc, train, batch_size=7)
    assert f.shape == (len(train), enc.out_dim) and f.dtype == np.float32
    assert enc.training  # previous mode restored
    enc.eval()
    with torch.no_grad():
        ref = enc(torch.from_numpy(train.x)).numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-6)
    f2 = extract_features(enc, train.x, batch_size=100, clip_len=6)
    assert f2.shape == f.shape and not np.allclose(f2, f)
    with pytest.raises(SsalInputError):
        extract_features(enc, np.zeros((2, 4, T, 16), np.float32))


# ---------------------------------------------------------------- linear


def test_linear_trains_only_the_head_and_beats_chance(splits) -> None:
    train, val, test = splits
    enc = make_encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    model, hist = train_classifier(enc, None, train, val, ClassifierSettings.for_mode(
        "linear", epochs=30, lr=0.5, milestones=(20,), batch_size=16, seed=0))
    after = enc.state_dict()
    assert set(after) == set(before)
    for k in before:  # weights and BN buffers (running stats, batch counter) bit-identical
        assert torch.equal(before[k], after[k]), k
    assert all(not p.requires_grad for p in enc.parameters())
    model.train()
    assert not model.encoder.training and model.head.training  # BN stays frozen
    rep = evaluate(model, test)
    assert rep["n"] == len(test)
    assert rep["top1"] > 0.7  # chance is 1/3
    # the selected state is the best validation epoch, and it is what the model holds
    best = max(r["val_top1"] for r in hist["epochs"])
    assert hist["best_val_top1"] == best
    assert evaluate(model, val)["top1"] == pytest.approx(best)
    assert [r["lr"] for r in hist["epochs"]][19:21] == pytest.approx([0.5, 0.05])
    assert hist["config"]["lr"] == 0.5 and hist["config"]["weight_decay"] == 0.0  # override + default


def tiny_scale_encoder() -> TinyEncoder:
    """make_encoder() with its output shrunk 10,000-fold (like a random encoder's near-constant
    features in eval mode)."""
    enc = make_encoder()
    with torch.no_grad():
        enc.fc.weight.mul_(1e-4)
        enc.fc.bias.mul_(1e-4)
    return enc


def test_linear_standardize_rescues_tiny_features_and_folds_into_the_head(splits) -> None:
    train, val, test = splits
    kw = ClassifierSettings.for_mode("linear", epochs=30, lr=0.5, milestones=(20,), batch_size=16, seed=0)
    raw, _ = train_classifier(tiny_scale_encoder(), None, train, val, kw)
    std, _ = train_classifier(tiny_scale_encoder(), None, train, val, kw.replace(standardize=True))
    # Raw features of scale 1e-4 barely move the weights at lr 0.5; standardised ones separate
    # the classes. The standardised head was folded: evaluate() feeds it raw features.
    assert evaluate(raw, test)["top1"] < 0.6
    assert evaluate(std, test)["top1"] > 0.7
    assert not hasattr(std, "feature_stats") and not hasattr(raw, "feature_stats")
    with pytest.raises(SsalInputError, match="linear protocol only"):
        train_classifier(make_encoder(), None, train, val,
                         ClassifierSettings.for_mode("finetune", epochs=1, standardize=True))


def test_linear_feature_cache_encodes_once_and_changes_nothing(splits) -> None:
    train, val, _ = splits
    calls = {"n": 0}
    enc = make_encoder()
    enc.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    kw = ClassifierSettings.for_mode("linear", epochs=5, lr=0.5, batch_size=16, seed=0)
    cache: dict = {}
    first, _ = train_classifier(enc, None, train, val, kw, feature_cache=cache)
    assert set(cache) == {"train", "val"} and cache["train"].shape == (len(train), enc.out_dim)
    after_first = calls["n"]
    second, _ = train_classifier(enc, None, train, val, kw, feature_cache=cache)
    assert calls["n"] == after_first  # the second run never ran the encoder
    plain, _ = train_classifier(make_encoder(), None, train, val, kw)
    for a, b in ((first, second), (first, plain)):
        assert torch.equal(a.head.fc.weight, b.head.fc.weight)


def test_linear_is_deterministic_and_last_selection(splits) -> None:
    train, val, _ = splits
    heads = []
    for _ in range(2):
        model, hist = train_classifier(make_encoder(), None, train, None, ClassifierSettings.for_mode(
            "linear", epochs=4, lr=0.5, batch_size=16, seed=3, select="last"))
        heads.append(torch.cat([q.detach().flatten() for q in model.head.parameters()]))
        assert hist["best_epoch"] == 4 and hist["epochs"][0]["val_top1"] is None
    assert torch.equal(heads[0], heads[1])


def test_protocol_defaults_follow_spec() -> None:
    lin = LinearConfig()
    assert (lin.lr, lin.weight_decay, lin.epochs, lin.milestones) == (3.0, 0.0, 100, (80,))
    assert FinetuneConfig().epochs > 0


def test_classifier_settings_take_per_mode_defaults_and_changes() -> None:
    lin = ClassifierSettings.for_mode("linear")
    assert (lin.lr, lin.weight_decay, lin.batch_size) == (3.0, 0.0, 128)
    assert lin == ClassifierSettings()
    ft = ClassifierSettings.for_mode("supervised", lr=0.2, milestones=[3], epochs=None)
    assert (ft.mode, ft.lr, ft.weight_decay, ft.epochs, ft.milestones) == ("supervised", 0.2, 1e-4, 100, (3,))
    assert ft.schedule_config() == FinetuneConfig(lr=0.2, milestones=(3,))
    with pytest.raises(SsalInputError):
        ClassifierSettings.for_mode("linear", learning_rate=1.0)


def test_bad_settings_raise_input_errors(splits) -> None:
    train, val, _ = splits
    with pytest.raises(SsalInputError):
        train_classifier(make_encoder(), None, train, None,
                         ClassifierSettings.for_mode("linear", epochs=1))  # select=val
    with pytest.raises(SsalInputError):
        train_classifier(make_encoder(), None, train, val, ClassifierSettings.for_mode("linear", epochs=1),
                         augment=lambda x, g: x)
    with pytest.raises(SsalInputError):
        train_classifier(make_encoder(), None, train, val,
                         ClassifierSettings.for_mode("bogus", epochs=1))  # type: ignore[arg-type]
    with pytest.raises(SsalInputError):
        train_classifier(make_encoder(), None, train, val,
                         ClassifierSettings(mode="bogus"))  # type: ignore[arg-type]
    unlabelled = train.subset(range(5))
    unlabelled.y[:] = -1
    with pytest.raises(SsalInputError):
        train_classifier(make_encoder(), None, unlabelled, val, ClassifierSettings.for_mode("finetune", epochs=1))


# ---------------------------------------------------------------- finetune / supervised


def test_finetune_changes_encoder_and_learns(splits) -> None:
    train, val, test = splits
    enc = make_encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    calls = []

    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        calls.append(x.shape[0])
        return x + 0.05 * torch.randn(x.shape, generator=gen)

    model, hist = train_classifier(enc, None, train, val, ClassifierSettings.for_mode(
        "finetune", epochs=12, lr=0.05, batch_size=16, seed=0), augment=augment)
    assert not torch.equal(before["conv.weight"], enc.conv.weight.detach())
    assert not torch.equal(before["bn.running_mean"], enc.bn.running_mean)
    assert sum(calls) == 12 * len(train)  # every training sample, every epoch
    assert evaluate(model, test)["top1"] > 0.6
    assert 1 <= hist["best_epoch"] <= 12


def test_supervised_from_scratch_and_predict_proba(splits) -> None:
    train, val, test = splits
    torch.manual_seed(1)
    model, _ = train_classifier(TinyEncoder(), None, train, val, ClassifierSettings.for_mode(
        "supervised", epochs=12, lr=0.05, batch_size=16, seed=1, clip_len=8))
    assert isinstance(model, Classifier) and model.clip_len == 8
    model.train()
    p = model.predict_proba(torch.from_numpy(test.x[:5]))
    assert model.training  # mode restored
    assert p.shape == (5, len(CLASSES))
    assert torch.allclose(p.sum(1), torch.ones(5))
    assert evaluate(model, test)["top1"] > 0.6


# ---------------------------------------------------------------- semi-supervised


def balanced_sampler(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Stand-in for ssal.data.splits.label_fraction: round(fraction * n_c), at least 1 per class."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        out.append(rng.choice(idx, max(1, round(fraction * len(idx))), replace=False))
    return np.sort(np.concatenate(out))


def test_semi_supervised_subsets_and_summary(splits) -> None:
    train, val, test = splits
    train = train.subset(np.arange(len(train)))
    train.y[::7] = -1  # unlabelled sequences are never drawn
    made = []

    def fresh() -> TinyEncoder:
        made.append(1)
        return make_encoder(len(made))

    res = semi_supervised(fresh, train, val, test, SemiSettings(
        fractions=(0.1, 0.5), seeds=(0, 1),
        classifier=ClassifierSettings.for_mode("finetune", epochs=2, lr=0.05, batch_size=8)),
        sampler=balanced_sampler)
    assert len(made) == 4  # a fresh encoder per run
    assert set(res) == {"0.1", "0.5"}
    lab_counts = Counter(train.y[train.y >= 0].tolist())
    for key, frac in (("0.1", 0.1), ("0.5", 0.5)):
        summary = res[key]
        assert len(summary["runs"]) == 2
        for run in summary["runs"]:
            expect = {CLASSES[c]: max(1, round(frac * n)) for c, n in lab_counts.items()}
            assert run["class_counts"] == expect
            assert run["n_labels"] == sum(expect.values())
            assert run["report"]["n"] == len(test)
        accs = [r["report"]["top1"] for r in summary["runs"]]
        assert summary["mean"] == pytest.approx(np.mean(accs))
        assert summary["std"] == pytest.approx(np.std(accs, ddof=1))


def test_semi_supervised_with_project_label_fraction(splits) -> None:
    splits_mod = pytest.importorskip("ssal.data.splits")
    train, val, test = splits
    res = semi_supervised(make_encoder, train, None, test, SemiSettings(
        fractions=(0.25,), seeds=(0,), classifier=ClassifierSettings.for_mode("finetune", epochs=1, batch_size=8)))
    run = res["0.25"]["runs"][0]
    per_class = len(train) // len(CLASSES)
    for c in CLASSES:  # class-balanced: each class gets about a quarter of its sequences
        assert abs(run["class_counts"][c] - 0.25 * per_class) <= 1
    assert run["best_epoch"] == 1  # no validation set: last epoch
    assert callable(splits_mod.label_fraction)


def test_one_resize_convention_for_evaluation_pretraining_and_preprocessing() -> None:
    """Evaluation's resize, pretraining's deterministic resize and preprocessing's resample all
    keep the end frames and place frame i at i (T - 1) / (L - 1)."""
    from ssal.augment import TemporalResize
    from ssal.data.preprocess import resample_to_length

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 37, EGAIT16.num_joints, generator=g, dtype=torch.float64)
    for length in (12, 50, 75):
        ev = resize_time(x, length)
        pre = TemporalResize(length)(x, g)
        prep = np.stack([resample_to_length(s.permute(1, 2, 0).numpy(), length) for s in x])  # (N, L, V, C)
        torch.testing.assert_close(ev, pre, atol=1e-4, rtol=0)  # the crop computes positions in float32
        torch.testing.assert_close(ev, torch.from_numpy(prep).permute(0, 3, 1, 2), atol=1e-12, rtol=0)


# ---------------------------------------------------------------- the protocol registry


def _experiment(tmp_path):
    from ssal.experiments.experiment import Experiment
    from ssal.experiments.schedule import Schedule

    ds = toy_ds(10, 3)
    idx = np.arange(len(ds))
    split = {"train": idx[idx % 3 == 0], "val": idx[idx % 3 == 1], "test": idx[idx % 3 == 2]}
    return Experiment(dataset=ds, split=split, schedule=Schedule.of("t", linear_epochs=2, linear_lr=0.25),
                      out=tmp_path, progress=False, log=lambda m: None)


def test_every_protocol_is_registered_and_named_by_the_protocol_tuples() -> None:
    from ssal.experiments.protocols import (
        DEFAULT_PROTOCOLS,
        PROTOCOLS,
        SCRATCH_PROTOCOLS,
        SEED_PROTOCOLS,
        Protocol,
    )

    assert list(PROTOCOLS) == ["knn", "linear_std", "linear", "finetune", "supervised", "semi"]  # the run order
    assert all(isinstance(p, Protocol) and p.name == name for name, p in PROTOCOLS.items())
    assert set(DEFAULT_PROTOCOLS) | set(SCRATCH_PROTOCOLS) == set(PROTOCOLS)
    assert set(SEED_PROTOCOLS) <= set(DEFAULT_PROTOCOLS)


def test_evaluate_encoder_dispatches_through_the_registry(tmp_path, monkeypatch) -> None:
    from ssal.experiments import protocols as reg

    seen = []

    class Fake(reg.Protocol):
        def run(self, ctx):
            seen.append(self.name)
            ctx.encoder(ctx.exp.seed)
            return {"top1": 1.0, "lr": ctx.schedule.linear_lr}

    monkeypatch.setitem(reg.PROTOCOLS, "fake", Fake("fake"))
    exp = _experiment(tmp_path)
    res = reg.evaluate_encoder(exp, "run", make_encoder, clip_len=None, encoder_config={"name": "stgcn", "out_dim": 8},
                               pretrained=True, protocols=("fake", "knn"))
    assert seen == ["fake"] and list(res) == ["feature", "knn", "fake"]  # registry order, not the request's
    assert res["fake"] == {"top1": 1.0, "lr": 0.25} and res["feature"] == "fc 8-d"
    assert 0.0 <= res["knn"]["top1"] <= 1.0
    res = reg.evaluate_encoder(exp, "run", make_encoder, clip_len=None, encoder_config={"name": "stgcn"},
                               pretrained=True, protocols=("linear",), classifier_files={"linear": ""})
    assert res["linear"]["best_epoch"] >= 0 and not (tmp_path / "run" / "classifier.pt").exists()


@pytest.mark.parametrize("names, pretrained, message", [
    (("knn", "lineer"), True, "unknown protocol(s) lineer; known: knn, linear_std, linear, finetune, supervised, semi"),
    (("finetune",), False, "protocol 'finetune' is for a pretrained encoder"),
    (("supervised",), True, "protocol 'supervised' is for an encoder trained from scratch"),
])
def test_unknown_or_mismatched_protocols_are_one_line_errors(tmp_path, names, pretrained, message) -> None:
    from ssal.experiments.protocols import evaluate_encoder

    with pytest.raises(SsalInputError) as err:
        evaluate_encoder(_experiment(tmp_path), "run", make_encoder, clip_len=None, encoder_config={},
                         pretrained=pretrained, protocols=names)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()  # refused before any work


def test_val_every_scores_validation_on_its_epochs_and_the_last(splits) -> None:
    train, val, _ = splits
    calls = {"n": 0}
    enc = make_encoder()
    forward = enc.forward

    def counting(x):
        calls["n"] += 1
        return forward(x)

    enc.forward = counting  # type: ignore[method-assign]
    _, hist = train_classifier(enc, None, train, val, ClassifierSettings.for_mode(
        "finetune", epochs=7, lr=0.05, batch_size=16, seed=1, val_every=3, eval_batch_size=10**6))
    scored = [e["epoch"] for e in hist["epochs"] if e["val_top1"] is not None]
    assert scored == [3, 6, 7]
    assert hist["best_epoch"] in scored and hist["best_val_top1"] is not None
    steps = 7 * -(-len(train.labelled) // 16)
    assert calls["n"] == steps + len(scored)  # one validation batch per scored epoch, nothing more
    with pytest.raises(SsalInputError, match="val_every"):
        train_classifier(make_encoder(), None, train, val, ClassifierSettings.for_mode("finetune", val_every=0))


def test_semi_val_every_spaces_the_schedules_validations() -> None:
    from ssal.experiments.protocols import semi_val_every
    from ssal.experiments.schedule import SCHEDULES

    sched = SCHEDULES["default"].with_changes(semi_validations=5)
    # a 1% run of 40 one-step epochs: every 8th epoch, 5 passes; short runs: every epoch
    assert [semi_val_every(sched, e) for e in (40, 14, 5, 3)] == [8, 3, 1, 1]
    assert -(-14 // 3) == 5
    assert semi_val_every(sched.with_changes(semi_validations=None), 40) == 1
