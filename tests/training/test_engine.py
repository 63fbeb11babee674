"""Pretraining engine: resume equivalence, run-directory safety, config strictness."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssal.checkpoint import load_checkpoint
from ssal.config import resolve_config
from ssal.errors import SsalInputError
from ssal.methods.learner import Learner
from ssal.training.engine import pretrain
from ssal.training.run_files import read_metrics


def tiny_config(method: str = "ssal", **run) -> dict:
    """A few-second configuration: tiny encoders, tiny corpus, two short epochs."""
    overrides = {
        "data": {"builtin_n": 96, "builtin_seed": 3},
        "train": {"batch_size": 16, "epochs": 2, "lr": 0.05},
        "run": {"knn_every": 1, "knn_k": 5, "progress": False, "device": "cpu", **run},
    }
    cfg = resolve_config(method, overrides=overrides)
    model = cfg["model"]
    model["queue_size"] = 40
    enc = model["encoder"]
    enc["channels"] = [8, 8, 16]
    enc["strides"] = [1, 2, 1]
    if enc["name"] == "cffn":
        enc["image_channels"] = 8
        enc["image_depth"] = 1
    model["augment"]["general"]["clip_len"] = 20
    return cfg


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoint.pt")["model"]


@pytest.mark.parametrize("method", ["ssal", "skeletonclr", "aimclr"])
def test_pretrain_runs_and_writes_run_directory(tmp_path, method):
    res = pretrain(tiny_config(method), tmp_path / "run")
    run = res.run_dir
    for name in ("config.yaml", "split.json", "metrics.jsonl", "checkpoint.pt", "encoder.pt"):
        assert (run / name).is_file(), name
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert 0.0 <= records[-1]["knn_val_top1"] <= 1.0
    enc = load_checkpoint(run / "encoder.pt")
    assert enc["layout"] == "egait16" and enc["config"]["method"] == method


def test_resume_mid_epoch_matches_uninterrupted_run(tmp_path):
    pretrain(tiny_config("ssal"), tmp_path / "full")
    # Stop after 3 optimisation steps (mid-epoch 1), then resume to the end.
    cut = tiny_config("ssal", max_steps=3)
    pretrain(cut, tmp_path / "cut")
    ck = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert ck["epoch"] == 0 and ck["step_in_epoch"] == 3
    pretrain(tiny_config("ssal"), tmp_path / "cut", resume=True)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for key in a:
        # Same operations in the same order on the same CPU: equal to float32 round-off.
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    ma, mb = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    assert [r["epoch"] for r in mb] == [1, 2]
    assert ma[-1]["knn_val_top1"] == mb[-1]["knn_val_top1"]


def test_resume_from_checkpoint_with_old_cffn_keys(tmp_path):
    """A checkpoint.pt written before CFFN's ``graph`` became ``graph_branch`` resumes."""
    from ssal.checkpoint import save_checkpoint

    pretrain(tiny_config("ssal", max_steps=1), tmp_path / "run")
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    new = ck["model"]
    ck["model"] = {k.replace(".graph_branch.", ".graph."): v for k, v in new.items()}
    assert any(".graph.blocks." in k for k in ck["model"]) and ck["model"].keys() != new.keys()
    save_checkpoint(ck, tmp_path / "run" / "checkpoint.pt")
    pretrain(tiny_config("ssal", max_steps=2), tmp_path / "run", resume=True)
    after = _weights(tmp_path / "run")
    assert after.keys() == new.keys()
    # One more step was taken from the loaded weights (they changed, and stayed finite).
    key = next(k for k in new if "graph_branch.blocks.0.gcn.conv.weight" in k)
    assert not torch.equal(after[key], new[key]) and torch.isfinite(after[key]).all()


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a = pretrain(tiny_config("skeletonclr", max_steps=2), tmp_path / "a")
    b = pretrain(tiny_config("skeletonclr", max_steps=2), tmp_path / "b")
    wa, wb = _weights(a.run_dir), _weights(b.run_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    cfg = tiny_config("skeletonclr", max_steps=2)
    cfg["seed"] = 1
    c = pretrain(cfg, tmp_path / "c")
    wc = _weights(c.run_dir)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa if wa[k].is_floating_point())


def test_non_empty_run_dir_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(SsalInputError, match="not empty"):
        pretrain(tiny_config("skeletonclr"), out)
    assert (out / "precious.txt").read_text() == "keep me"
    with pytest.raises(SsalInputError, match="nothing to resume"):
        pretrain(tiny_config("skeletonclr"), tmp_path / "empty", resume=True)


def test_unknown_setting_is_an_error():
    with pytest.raises(SsalInputError, match="unknown setting 'train.epoch'"):
        resolve_config("ssal", overrides=["train.epoch=3"])
    with pytest.raises(SsalInputError, match="unknown setting"):
        resolve_config("ssal", overrides=["model.no_such_key=1"])


def test_resolved_config_written(tmp_path):
    res = pretrain(tiny_config("skeletonclr", max_steps=1), tmp_path / "r")
    text = (res.run_dir / "config.yaml").read_text()
    assert "method: skeletonclr" in text and "queue_size: 40" in text
    split = json.loads((res.run_dir / "split.json").read_text())
    assert set(split["parts"]) >= {"train", "val", "test"}


def test_amp_modes_and_bf16_autocast_on_cpu():
    from ssal.training.engine import amp_mode, autocast_factory

    assert [amp_mode(v) for v in (True, False, "auto", "bf16", "off")] == ["auto", "off", "auto", "bf16", "off"]
    with pytest.raises(SsalInputError, match="run.amp"):
        amp_mode("fp16")
    conv = torch.nn.Conv2d(3, 4, 1)
    x = torch.randn(1, 3, 2, 2)
    cpu = torch.device("cpu")
    with autocast_factory(cpu, "bf16")():
        assert conv(x).dtype == torch.bfloat16
    for mode in ("auto", "off"):  # "auto" is fp32 on the CPU
        with autocast_factory(cpu, mode)():
            assert conv(x).dtype == torch.float32


@pytest.mark.parametrize("method", ["ssal", "aimclr"])
def test_bf16_pretraining_steps_on_cpu(tmp_path, method):
    res = pretrain(tiny_config(method, max_steps=2, amp="bf16", knn_every=0), tmp_path / "run")
    ck = load_checkpoint(res.run_dir / "checkpoint.pt")
    assert res.steps_done == 2 and ck["config"]["run"]["amp"] == "bf16"
    # Weights stay fp32 (autocast casts per op) and finite after the bf16 steps.
    assert all(v.dtype != torch.bfloat16 and torch.isfinite(v).all() for v in ck["model"].values()
               if v.is_floating_point())


def test_compiled_run_trains_with_the_losses_of_an_eager_run(tmp_path):
    from ssal.training.engine import PretrainCallbacks

    def losses_of(compile_run: bool, out) -> list[float]:
        losses: list[float] = []

        def record(_ctx, learner):
            learner.register_forward_hook(lambda _m, _i, out: losses.append(float(out["loss"].detach())))

        cfg = tiny_config("skeletonclr", max_steps=2, compile=compile_run, compile_backend="eager", knn_every=0)
        # Compiled dropout draws its mask as floats (stgcn._half_keep_mask), eager as bits: the
        # same distribution from other random numbers, so dropout is off for an exact comparison.
        cfg["model"]["encoder"]["dropout"] = 0.0
        assert pretrain(cfg, out, callbacks=PretrainCallbacks(on_learner_built=record)).steps_done == 2
        return losses

    compiled = losses_of(True, tmp_path / "compiled")
    eager = losses_of(False, tmp_path / "eager")
    assert len(compiled) == len(eager) == 2
    assert all(np.isfinite(compiled))
    np.testing.assert_allclose(compiled, eager, rtol=0, atol=1e-5)


def test_compiled_encoders_train_and_keep_state_dict_keys(tmp_path):
    from ssal.methods import build_learner
    from ssal.skeleton import EGAIT16
    from ssal.training.engine import compile_encoders

    cfg = tiny_config("skeletonclr", max_steps=2, compile=True, compile_backend="eager", knn_every=0)
    res = pretrain(cfg, tmp_path / "run")
    assert res.steps_done == 2
    eager = build_learner(cfg["model"], EGAIT16)
    assert load_checkpoint(res.run_dir / "checkpoint.pt")["model"].keys() == eager.state_dict().keys()
    # Compiled feature maps equal the eager ones.
    learner = build_learner(cfg["model"], EGAIT16).eval()
    x = torch.randn(4, 3, 20, 16)
    with torch.no_grad():
        ref = learner.evaluated_encoder(x)
        compile_encoders(learner, "eager")
        torch.testing.assert_close(learner.evaluated_encoder(x), ref)


def test_tensorboard_writes_the_step_loss(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config("skeletonclr", max_steps=3, tensorboard=True, knn_every=0)
    res = pretrain(cfg, tmp_path / "run")
    assert res.steps_done == 3
    events = sorted((res.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no event file under <run_dir>/tensorboard"
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "loss" in tags
    assert [e.step for e in acc.Scalars("loss")] == [1, 2, 3]
    assert all(np.isfinite(e.value) for e in acc.Scalars("loss"))


def test_tensorboard_epoch_scalars_and_missing_package(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    import builtins

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config("skeletonclr", tensorboard=True, knn_every=1)
    cfg["train"]["epochs"] = 1
    res = pretrain(cfg, tmp_path / "run")
    acc = EventAccumulator(str(res.run_dir / "tensorboard"))
    acc.Reload()
    assert {"loss", "lr", "seq_per_s", "knn_val_top1"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("knn_val_top1")[0].value == pytest.approx(res.history[0]["knn_val_top1"])

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(SsalInputError, match="needs the tensorboard package"):
        pretrain(cfg, tmp_path / "other")
    assert not (tmp_path / "other").exists()  # refused before the run directory was made


def test_pretraining_sets_the_allocator_policy(tmp_path, monkeypatch):
    import ssal.training.allocator
    from ssal.config.schema import RunConfig

    seen: list[str] = []
    monkeypatch.setattr(ssal.training.allocator, "set_allocator_policy", lambda policy: seen.append(policy) or True)
    cfg = tiny_config("skeletonclr", max_steps=1, knn_every=0)
    pretrain(cfg, tmp_path / "default")
    cfg["run"]["allocator"] = "system"
    pretrain(cfg, tmp_path / "system")
    assert seen == [RunConfig.allocator, "system"] and RunConfig.allocator == "reuse"
    cfg["run"]["allocator"] = "huge"
    with pytest.raises(SsalInputError, match="run.allocator"):
        pretrain(cfg, tmp_path / "bad")


def test_snapshots_hold_the_initialisation_and_each_epoch(tmp_path):
    cfg = tiny_config("skeletonclr", snapshot_every=1, knn_every=0)
    cfg["train"]["epochs"] = 3
    pretrain(cfg, tmp_path / "run")
    snaps = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snaps == [f"encoder-e{e:04d}.pt" for e in range(4)]
    final = load_checkpoint(tmp_path / "run" / "encoder.pt")["encoder"]
    last = load_checkpoint(tmp_path / "run" / "snapshots" / "encoder-e0003.pt")["encoder"]
    first = load_checkpoint(tmp_path / "run" / "snapshots" / "encoder-e0000.pt")["encoder"]
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert any(not torch.equal(first[k], final[k]) for k in final)  # epoch 0 is the untrained init
    # the same seed builds the same initialisation: epoch 0 of a second run is identical
    pretrain(cfg, tmp_path / "run2")
    again = load_checkpoint(tmp_path / "run2" / "snapshots" / "encoder-e0000.pt")["encoder"]
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_snapshot_every_two_keeps_the_last_epoch(tmp_path):
    cfg = tiny_config("skeletonclr", snapshot_every=2, knn_every=0)
    cfg["train"]["epochs"] = 3
    pretrain(cfg, tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir()) == [
        "encoder-e0000.pt", "encoder-e0002.pt", "encoder-e0003.pt"]


# ---------------------------------------------------------------------- the learner contract


class ToyLearner(Learner):
    """A learner that is no MoCo variant: one encoder and a linear decoder that predicts each
    sequence's mean pose from a noisy copy of it (MSE). No key encoder, no memory bank: every
    hook but the step and the evaluated encoder keeps the contract's default."""

    NOISE = 0.05

    def __init__(self, encoder: nn.Module, num_joints: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = nn.Linear(encoder.out_dim, 3 * num_joints)
        self.epochs_seen: list[int] = []

    @property
    def evaluated_encoder(self) -> nn.Module:
        return self.encoder

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.epochs_seen.append(epoch)

    def training_step(self, x, generator=None, lengths=None):
        noisy = x + self.NOISE * torch.randn(x.shape, generator=generator, device=x.device)
        mse = F.mse_loss(self.decoder(self.encoder(noisy)).float(), x.mean(dim=2).flatten(1).float())
        return {"loss": mse, "mse": mse.detach(), "noise": self.NOISE, "ignored": "not a number"}


def build_toy(cfg, layout, where=None) -> ToyLearner:
    from ssal.methods.moco import learner_settings
    from ssal.models import build_encoder
    from ssal.skeleton import get_layout

    layout = get_layout(layout)
    return ToyLearner(build_encoder(learner_settings(cfg, where).encoder, layout), layout.num_joints)


def toy_config(**run) -> dict:
    cfg = tiny_config("skeletonclr", **run)
    cfg["model"]["learner"] = "toy"
    return cfg


@pytest.fixture
def toy_registered(monkeypatch):
    from ssal.methods.learners import LEARNERS

    built: list[ToyLearner] = []

    def build(*args, **kwargs) -> ToyLearner:
        built.append(build_toy(*args, **kwargs))
        return built[-1]

    monkeypatch.setitem(LEARNERS, "toy", build)
    return built


def test_a_learner_that_is_not_moco_trains_through_the_engine(tmp_path, toy_registered):
    from ssal.training.engine import PretrainCallbacks

    seen = []
    res = pretrain(toy_config(), tmp_path / "run",
                   callbacks=PretrainCallbacks(on_learner_built=lambda _ctx, learner: seen.append(learner)))
    learner = seen[0]
    assert isinstance(learner, ToyLearner) and learner is toy_registered[-1]  # [0]: the size check's
    assert learner.epochs_seen == [0, 1] and res.steps_done == 10
    records = read_metrics(res.run_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["loss"] == pytest.approx(r["mse"]) for r in records)
    assert all(r["noise"] == ToyLearner.NOISE and "ignored" not in r for r in records)
    assert 0.0 <= records[-1]["knn_val_top1"] <= 1.0
    # checkpoint.pt holds the learner's state; encoder.pt its evaluated encoder
    ck = load_checkpoint(res.run_dir / "checkpoint.pt")
    assert ck["model"].keys() == learner.state_dict().keys()
    assert {k.split(".")[0] for k in ck["model"]} == {"encoder", "decoder"}
    enc = load_checkpoint(res.run_dir / "encoder.pt")["encoder"]
    assert enc.keys() == learner.encoder.state_dict().keys()
    assert all(torch.equal(enc[k], ck["model"][f"encoder.{k}"]) for k in enc)
    # the defaults of the contract: no distributed state, the evaluated encoder compiled
    assert learner.replicated_buffers() == [] and learner.derived_state() == []
    learner.compile_encoders("eager")
    assert "feature_maps" in vars(learner.encoder)


def test_a_learner_that_is_not_moco_resumes_to_the_same_weights(tmp_path, toy_registered):
    pretrain(toy_config(), tmp_path / "full")
    pretrain(toy_config(max_steps=3), tmp_path / "cut")
    ck = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert ck["epoch"] == 0 and ck["step_in_epoch"] == 3
    pretrain(toy_config(), tmp_path / "cut", resume=True)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    ma, mb = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    assert ma[-1]["knn_val_top1"] == mb[-1]["knn_val_top1"]


def test_an_unknown_learner_is_an_input_error(tmp_path):
    with pytest.raises(SsalInputError, match="unknown learner 'toy'"):
        pretrain(toy_config(), tmp_path / "run")


def test_compiled_cffn_step_compiles_once_without_graph_breaks():
    """``run.compile`` on SSAL's learner: after the first steps nothing is compiled again (a
    graph break in the ST-GCN layer used to make dynamo recompile at every step)."""
    from torch._dynamo.utils import counters

    from ssal.methods import build_learner
    from ssal.skeleton import EGAIT16

    torch._dynamo.reset()
    cfg = tiny_config("ssal")["model"]
    learner = build_learner(cfg, EGAIT16)
    learner.compile_encoders("eager")
    x = torch.randn(8, 3, 30, 16)
    graphs = []
    for step in range(4):
        learner(x, torch.Generator().manual_seed(step))["loss"].backward()
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[1] == graphs[2] == graphs[3] > 0
    assert not counters["graph_break"]
    torch._dynamo.reset()
