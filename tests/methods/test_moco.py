"""Momentum update, the MoCo learner (with tiny stand-in modules) and method presets."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssal.config.schema import ModelConfig
from ssal.errors import SsalInputError
from ssal.methods.losses import info_nce
from ssal.methods.moco import (
    MoCoLearner,
    build_learner,
    has_strong_view,
    learner_settings,
    momentum_update,
)
from ssal.methods.registry import available_methods, load_method_config, method_learner

#: The presets trained by this learner (the others have their own tests).
METHODS = tuple(m for m in available_methods() if method_learner(m) == "moco")

V = 5  # a tiny skeleton for the stand-ins
TRAIN_KEYS = {
    "optimizer", "lr", "weight_decay", "momentum", "nesterov", "batch_size", "epochs",
    "lr_milestones", "lr_gamma", "warmup_epochs", "schedule", "min_lr",
}


# ---------------------------------------------------------------------- stand-ins


class TinyEncoder(nn.Module):
    """Encoder contract: feature_maps -> list of (N, C, T, V), fuse -> (N, out_dim)."""

    def __init__(self, out_dim: int = 8, channels: int = 6) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.conv = nn.Conv2d(3, channels, kernel_size=(3, 1), padding=(1, 0))
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, out_dim)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.relu(self.bn(self.conv(x)))]

    def fuse(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(maps[0].mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.feature_maps(x))


def tiny_head(in_dim: int = 8, out_dim: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, 8), nn.ReLU(), nn.Linear(8, out_dim))


class Jitter(nn.Module):
    """Augmentation contract: aug(x, generator) -> (N, C, T', V); counts its calls."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.calls = 0

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        self.calls += 1
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x + self.scale * noise


class Identity(nn.Module):
    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return x


class CountingDrop:
    """Feature drop stand-in: zero the first joint of each map, count the maps it sees."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        keep = torch.ones(m.shape[-1], dtype=m.dtype)
        keep[0] = 0
        return m * keep


def make_learner(strong: bool = True, drop: bool = True, queue_size: int = 16, **kwargs) -> MoCoLearner:
    torch.manual_seed(0)
    return MoCoLearner(
        TinyEncoder(), tiny_head(), Jitter(0.1), Jitter(0.5) if strong else None,
        CountingDrop() if drop else None, feature_dim=4, queue_size=queue_size, **kwargs,
    )


def batch(n: int = 6, t: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, t, V, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------- momentum update


def test_momentum_update_arithmetic_and_buffers_copied() -> None:
    q = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    k = copy.deepcopy(q)
    with torch.no_grad():
        for p in q.parameters():
            p.fill_(1.0)
        for p in k.parameters():
            p.fill_(3.0)
        q[1].running_mean.fill_(5.0)
        q[1].num_batches_tracked.fill_(7)
    momentum_update(q, k, 0.9)
    for p in k.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.9 * 3.0 + 0.1 * 1.0))
    for p in q.parameters():  # the query side is untouched
        torch.testing.assert_close(p, torch.ones_like(p))
    torch.testing.assert_close(k[1].running_mean, torch.full((2,), 5.0))
    assert int(k[1].num_batches_tracked) == 7


def test_momentum_update_extremes_and_errors() -> None:
    q, k = nn.Linear(3, 1), nn.Linear(3, 1)
    before = k.weight.detach().clone()
    momentum_update(q, k, 1.0)
    torch.testing.assert_close(k.weight, before)
    momentum_update(q, k, 0.0)
    torch.testing.assert_close(k.weight, q.weight)
    with pytest.raises(ValueError):
        momentum_update(q, k, 1.5)
    with pytest.raises(ValueError):
        momentum_update(q, nn.Sequential(nn.Linear(3, 1), nn.Linear(1, 1)), 0.5)


# ---------------------------------------------------------------------- learner


def test_forward_backward_gradients_reach_query_only() -> None:
    learner = make_learner()
    out = learner(batch(), torch.Generator().manual_seed(1))
    assert set(out) == {"loss", "info", "ld", "acc"}
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert 0.0 <= out["acc"].item() <= 1.0
    torch.testing.assert_close(out["loss"].detach(), out["info"] + out["ld"])
    out["loss"].backward()
    for p in learner.trainable_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert learner.encoder_q.conv.weight.grad.abs().sum() > 0
    for p in (*learner.encoder_k.parameters(), *learner.head_k.parameters()):
        assert not p.requires_grad and p.grad is None
    trainable = {id(p) for p in learner.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in learner.trainable_parameters()}


def test_queue_advances_by_batch_size_and_holds_the_keys() -> None:
    learner = make_learner(queue_size=16)
    learner(batch(n=6), torch.Generator().manual_seed(1))
    assert int(learner.queue.ptr) == 6 and int(learner.queue.filled) == 6
    torch.testing.assert_close(learner.queue.features[:6].norm(dim=1), torch.ones(6))
    learner(batch(n=6, seed=1), torch.Generator().manual_seed(2))
    learner(batch(n=6, seed=2), torch.Generator().manual_seed(3))
    assert int(learner.queue.ptr) == 18 % 16 and int(learner.queue.filled) == 16


def test_key_encoder_follows_momentum_update_before_keys() -> None:
    learner = make_learner(momentum=0.9)
    with torch.no_grad():
        for p in learner.encoder_q.parameters():
            p.add_(1.0)
    k_before = [p.detach().clone() for p in learner.encoder_k.parameters()]
    q_now = [p.detach().clone() for p in learner.encoder_q.parameters()]
    learner(batch(), torch.Generator().manual_seed(1))
    for pk, k0, q0 in zip(learner.encoder_k.parameters(), k_before, q_now):
        torch.testing.assert_close(pk, 0.9 * k0 + 0.1 * q0)


def test_info_term_is_info_nce_of_query_and_key() -> None:
    """Identity views + identical key encoder in eval mode: z1 == z2, so L_Info is checkable."""
    torch.manual_seed(0)
    learner = MoCoLearner(TinyEncoder(), tiny_head(), Identity(), feature_dim=4, queue_size=7,
                          temperature=0.2)
    learner.eval()
    x = batch()
    queue_before = learner.queue.features.clone()
    out = learner(x, None)
    with torch.no_grad():
        z = F.normalize(learner.head_q(learner.encoder_q(x)), dim=1)
    assert out["info"].item() == pytest.approx(info_nce(z, z, queue_before, 0.2).item(), rel=1e-5)
    # eval mode changes no state
    torch.testing.assert_close(learner.queue.features, queue_before)
    assert int(learner.queue.ptr) == 0


def test_switching_off_ld_and_drop_removes_terms() -> None:
    full = make_learner(strong=True, drop=True)
    out = full(batch(), torch.Generator().manual_seed(1))
    assert "ld" in out and full.drop.calls == 1  # one feature map, dropped once

    no_drop = make_learner(strong=True, drop=False)
    out_nd = no_drop(batch(), torch.Generator().manual_seed(1))
    assert "ld" in out_nd
    # same weights, views and keys: only z3' is missing, so L_d changes and L_Info does not
    assert out_nd["info"].item() == pytest.approx(out["info"].item(), rel=1e-6)
    assert out_nd["ld"].item() != pytest.approx(out["ld"].item(), rel=1e-6)

    no_ld = make_learner(strong=False, drop=False)
    out_nl = no_ld(batch(), torch.Generator().manual_seed(1))
    assert set(out_nl) == {"loss", "info", "acc"}
    torch.testing.assert_close(out_nl["loss"].detach(), out_nl["info"])
    assert no_ld.general.calls == 2  # s1 and s2 only: no strong view computed


def test_loss_weights_scale_terms() -> None:
    a = make_learner(loss_weights={"info": 1.0, "ld": 1.0})(batch(), torch.Generator().manual_seed(1))
    b = make_learner(loss_weights={"info": 2.0, "ld": 0.5})(batch(), torch.Generator().manual_seed(1))
    expected = 2.0 * a["info"] + 0.5 * a["ld"]
    assert b["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_mining_starts_at_its_epoch() -> None:
    learner = make_learner(mining_topk=3, mining_epoch=2)
    learner.eval()  # keep the queue fixed between the two calls
    x = batch()
    assert not learner.mining_active
    before = learner(x, torch.Generator().manual_seed(1))["info"]
    learner.set_epoch(2)
    assert learner.mining_active
    after = learner(x, torch.Generator().manual_seed(1))["info"]
    assert after.item() != pytest.approx(before.item(), rel=1e-6)
    with pytest.raises(ValueError):
        make_learner(mining_topk=17, queue_size=16)


def test_gather_keys_is_identity_without_distributed() -> None:
    from ssal.methods.collectives import gather_cat  # the learner gathers its keys with it

    keys = torch.randn(3, 4)
    assert gather_cat(keys) is keys


def test_state_dict_carries_key_encoder_and_queue() -> None:
    learner = make_learner()
    learner(batch(), torch.Generator().manual_seed(1))
    state = learner.state_dict()
    assert {"queue.features", "queue.ptr", "queue.filled"} <= set(state)
    assert any(k.startswith("encoder_k.") for k in state)
    fresh = make_learner()
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.queue.features, learner.queue.features)
    assert int(fresh.queue.ptr) == 6


# ---------------------------------------------------------------------- the learner contract


def test_moco_implements_the_learner_contract() -> None:
    from ssal.methods.learner import Learner
    from ssal.methods.learners import LEARNERS

    learner = make_learner()
    assert isinstance(learner, Learner) and "moco" in LEARNERS
    assert learner.evaluated_encoder is learner.encoder_q
    # The optimiser's parameters, in the order of the learner's requires-grad parameters (the
    # order a checkpoint's optimizer state was written in).
    assert [id(p) for p in learner.trainable_parameters()] == [
        id(p) for p in learner.parameters() if p.requires_grad]
    state = learner.state_dict()
    assert learner.replicated_buffers() == ["queue.features", "queue.ptr", "queue.filled"]
    derived = set(learner.derived_state())
    assert derived == {k for k in state if k.startswith(("encoder_k.", "head_k."))}
    assert set(learner.replicated_buffers()) | derived <= set(state)
    learner.set_epoch(3)
    assert learner.epoch == 3
    # forward is the training step
    a = make_learner()(batch(), torch.Generator().manual_seed(1))
    b = make_learner().training_step(batch(), torch.Generator().manual_seed(1))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_distributed_setup_turns_on_shuffle_bn_only_for_shuffle() -> None:
    for mode, expected in (("shuffle", True), ("sync", False), ("local", False)):
        learner = make_learner()
        assert not learner.shuffle_bn
        learner.distributed_setup(mode)
        assert learner.shuffle_bn is expected


def test_compile_encoders_compiles_query_and_key_feature_maps() -> None:
    learner = make_learner().eval()
    x = batch()
    with torch.no_grad():
        ref_q, ref_k = learner.encoder_q(x), learner.encoder_k(x)
        keys = set(learner.state_dict())
        learner.compile_encoders("eager")
        assert "feature_maps" in vars(learner.encoder_q) and "feature_maps" in vars(learner.encoder_k)
        torch.testing.assert_close(learner.encoder_q(x), ref_q)
        torch.testing.assert_close(learner.encoder_k(x), ref_k)
    assert set(learner.state_dict()) == keys


def test_constructor_defaults_are_the_schema_defaults() -> None:
    from dataclasses import asdict

    from ssal.config.schema import LossWeights

    learner = MoCoLearner(TinyEncoder(), tiny_head(out_dim=ModelConfig.feature_dim), Jitter(0.1))
    assert learner.queue.size == ModelConfig.queue_size and learner.queue.dim == ModelConfig.feature_dim
    assert learner.momentum == ModelConfig.momentum and learner.temperature == ModelConfig.temperature
    assert learner.mining_topk == ModelConfig.mining_topk and learner.mining_epoch == ModelConfig.mining_epoch
    assert learner.use_ld == ModelConfig.use_ld and learner.loss_weights == asdict(LossWeights())


def test_registry_dispatches_by_learner_name() -> None:
    from ssal.methods import build_learner as build_any
    from ssal.methods.learners import learner_name

    assert learner_name({}) == learner_name(ModelConfig()) == ModelConfig.learner == "moco"
    assert learner_name({"learner": "other"}) == "other"
    with pytest.raises(SsalInputError, match="model.learner.*unknown learner 'nope'.*moco"):
        build_any({"learner": "nope"}, "egait16", "preset.yaml")


class FlatEncoder(nn.Module):
    """A stand-in that keeps every joint and frame: enough capacity to tell 32 sequences apart."""

    def __init__(self, t: int, v: int, out_dim: int = 16, channels: int = 4) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.conv = nn.Conv2d(3, channels, kernel_size=1)
        self.fc = nn.Linear(channels * t * v, out_dim)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.relu(self.conv(x))]

    def fuse(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(maps[0].flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.feature_maps(x))


def test_training_reduces_the_loss() -> None:
    """Instance discrimination on 32 fixed sequences: 40 steps must lower L_Info well below chance."""
    torch.manual_seed(0)
    learner = MoCoLearner(FlatEncoder(8, V), tiny_head(16, 8), Jitter(0.1), Jitter(0.3),
                          CountingDrop(), feature_dim=8, queue_size=32, momentum=0.9,
                          temperature=0.2)
    data = torch.randn(32, 3, 8, V, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # fill the queue with real keys so the start is not artificially easy
        learner.queue.enqueue(F.normalize(learner.head_k(learner.encoder_k(data)), dim=1))
    opt = torch.optim.SGD(learner.trainable_parameters(), lr=0.05, momentum=0.9)
    losses, accs = [], []
    for _ in range(40):
        rows = torch.randperm(32, generator=gen)[:16]
        out = learner(data[rows], gen)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["info"].item())
        accs.append(out["acc"].item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 1.0, (first, last)
    # chance of the positive winning among 1 + 32 candidates is 1/33
    assert sum(accs[-5:]) / 5 > 0.4


# ---------------------------------------------------------------------- settings and presets


def test_settings_defaults_are_ssal() -> None:
    s = learner_settings({})
    assert s.use_ld and s.use_drop and s.augment.strong_kind == "ssa"
    assert s.momentum == 0.999 and s.temperature == 0.07 and s.drop_threshold == 0.7
    assert (s.loss_weights.info, s.loss_weights.ld) == (1.0, 1.0) and has_strong_view(s)


@pytest.mark.parametrize(
    "cfg, fragment",
    [
        ({"queue_sise": 10}, "unknown setting 'model.queue_sise'"),
        ({"augment": {"strongg": {}}}, "unknown setting 'model.augment.strongg'"),
        ({"loss_weights": {"nce": 1.0}}, "unknown setting 'model.loss_weights.nce'"),
        ({"augment": {"strong_kind": "wild"}}, "strong_kind"),
        ({"queue_size": 0}, "model.queue_size"),
        ({"queue_size": 2.5}, "model.queue_size"),
        ({"momentum": 1.2}, "model.momentum"),
        ({"temperature": 0}, "model.temperature"),
        ({"use_ld": "yes"}, "model.use_ld"),
        ({"encoder": {"name": "resnet"}}, "model.encoder"),
        ({"encoder": {"name": "stgcn", "use_graph": True}}, "model.encoder.use_graph"),  # a CFFN key
        ({"mining_topk": 50, "queue_size": 10}, "mining_topk"),
    ],
)
def test_bad_settings_raise_input_error(cfg: dict, fragment: str) -> None:
    with pytest.raises(SsalInputError) as info:
        learner_settings(cfg, where="run.yaml")
    assert fragment in str(info.value) and str(info.value).startswith("run.yaml: ")
    assert "\n" not in str(info.value)


def test_strong_view_unless_kind_none() -> None:
    # without L_d the strong view still trains, through InfoNCE (AimCLR's ablation w/o D3M)
    assert has_strong_view(learner_settings({"use_ld": False}))
    assert not has_strong_view(learner_settings({"augment": {"strong_kind": "none"}}))


@pytest.mark.parametrize("name", METHODS)
def test_presets_are_complete_and_valid(name: str) -> None:
    from ssal.config import resolve_config

    preset = load_method_config(name)
    assert set(preset) <= {"model", "train"} and set(preset["model"]) <= set(ModelConfig.__dataclass_fields__)
    cfg = resolve_config(name)
    assert set(cfg["train"]) == TRAIN_KEYS
    assert cfg["train"]["optimizer"] == "sgd" and cfg["train"]["lr"] == 0.1
    # the resolved configuration spells out every learner setting, so overrides can reach each one
    assert set(cfg["model"]) == set(ModelConfig.__dataclass_fields__)
    settings = learner_settings(cfg["model"], where=f"{name}.yaml")
    expected = {"ssal": ("cffn", "ssa", True), "aimclr": ("stgcn", "extreme", True),
                "skeletonclr": ("stgcn", "none", False)}[name]
    assert (settings.encoder.name, settings.augment.strong_kind, settings.use_ld) == expected


def test_unknown_method() -> None:
    with pytest.raises(SsalInputError, match="unknown method"):
        load_method_config("simclr")


# ---------------------------------------------------------------------- with the real modules


def test_learner_with_real_augmentations() -> None:
    """The packaged general and SSA/extreme views feed the learner (stand-in encoder)."""
    from ssal.augment import extreme_augment, general_augment, ssa_augment
    from ssal.skeleton import EGAIT16

    torch.manual_seed(0)
    general = general_augment({"clip_len": 12}, EGAIT16)
    for strong in (ssa_augment({"clip_len": 12}, EGAIT16), extreme_augment({"clip_len": 12}, EGAIT16)):
        learner = MoCoLearner(TinyEncoder(), tiny_head(), general, strong, CountingDrop(),
                              feature_dim=4, queue_size=8)
        x = torch.randn(4, 3, 20, EGAIT16.num_joints)
        out = learner(x, torch.Generator().manual_seed(0))
        assert torch.isfinite(out["loss"]) and "ld" in out
        out["loss"].backward()
        assert int(learner.queue.ptr) == 4


def _real_models_or_skip():
    try:
        from ssal.models import build_encoder  # noqa: F401
        from ssal.models.heads import MLPHead  # noqa: F401
        from ssal.models.simam import simam_drop  # noqa: F401
    except ImportError:
        pytest.skip("ssal.models is not available yet")


@pytest.mark.parametrize("name", METHODS)
def test_build_each_method_and_step(name: str) -> None:
    _real_models_or_skip()
    from ssal.config import resolve_config
    from ssal.skeleton import EGAIT16

    cfg = resolve_config(name)["model"]
    cfg["augment"]["general"]["clip_len"] = 12
    cfg["queue_size"] = 16
    cfg["encoder"].update(base_channels=4, num_layers=3)  # tiny, for speed
    if cfg["encoder"]["name"] == "cffn":
        cfg["encoder"].update(image_channels=8, image_depth=1)
    torch.manual_seed(0)
    learner = build_learner(cfg, EGAIT16)
    x = torch.randn(4, 3, 24, EGAIT16.num_joints)
    out = learner(x, torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])
    assert ("ld" in out) == (name != "skeletonclr")
    assert (learner.strong is None) == (name == "skeletonclr")
    assert (learner.drop is None) == (name == "skeletonclr")
    out["loss"].backward()
    grads = [p.grad for p in learner.trainable_parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert int(learner.queue.ptr) == 4
    z = learner.encoder_q(x[:, :, :12])
    assert z.shape == (4, learner.encoder_q.out_dim)


def test_build_rejects_unknown_setting() -> None:
    with pytest.raises(SsalInputError, match="unknown setting 'model.bogus'"):
        build_learner({"bogus": 1}, "egait16")


def test_ablation_switches_reach_the_modules() -> None:
    _real_models_or_skip()
    from ssal.augment import PartMask, TemporalMask, UpperBodyJitter
    from ssal.config import resolve_config
    from ssal.skeleton import EGAIT16

    cfg = resolve_config("ssal", overrides=[
        "model.augment.strong.jitter=false", "model.augment.strong.temporal_mask=false",
        "model.encoder.use_image=false", "model.use_drop=false",
        "model.encoder.base_channels=4", "model.encoder.num_layers=2",
    ])
    learner = build_learner(cfg["model"], EGAIT16)
    kinds = {type(t) for t in learner.strong.transforms}
    assert PartMask in kinds and UpperBodyJitter not in kinds and TemporalMask not in kinds
    assert learner.drop is None and len(learner.encoder_q.feature_maps(torch.randn(2, 3, 12, 16))) == 1
    # general keys reach the strong view too (same T)
    cfg = resolve_config("ssal", overrides=["model.augment.general.clip_len=20",
                                            "model.encoder.base_channels=4"])
    learner = build_learner(cfg["model"], EGAIT16)
    x = torch.randn(2, 3, 30, 16)
    g = torch.Generator().manual_seed(0)
    assert learner.strong(x, g).shape == learner.general(x, g).shape == (2, 3, 20, 16)
    no_ld = build_learner({**cfg["model"], "use_ld": False}, EGAIT16)
    assert no_ld.strong is not None and not no_ld.use_ld
    out = no_ld(torch.randn(4, 3, 30, 16), torch.Generator().manual_seed(0))
    assert "ld" not in out and torch.isfinite(out["loss"]) and torch.equal(out["loss"], out["info"])
    with pytest.raises(SsalInputError, match="model.use_lD"):
        resolve_config("ssal", overrides=["model.use_lD=false"])


def test_lengths_are_handed_to_the_augmentations() -> None:
    from ssal.augment import general_augment
    from ssal.skeleton import EGAIT16

    learner = MoCoLearner(TinyEncoder(), tiny_head(), general_augment({"clip_len": 8}, EGAIT16),
                          feature_dim=4, queue_size=8)
    x = torch.randn(3, 3, 16, EGAIT16.num_joints)
    out = learner(x, torch.Generator().manual_seed(0), torch.tensor([16, 10, 4]))
    assert torch.isfinite(out["loss"])
