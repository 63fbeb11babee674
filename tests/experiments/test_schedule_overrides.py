"""What a schedule changes in each method: the MoCo settings only for MoCo learners, the ST-GCN
widths only for graph encoders, the SGD rate only for presets without their own recipe, and a
preset's ``cpu_plan`` only on CPU plans."""

from __future__ import annotations

from ssal.config import resolve_config
from ssal.experiments.schedule import SCHEDULES


def test_moco_methods_take_the_schedules_rate_queue_and_widths():
    o = SCHEDULES["default"].overrides("aimclr")
    assert o["model"]["queue_size"] == 1024 and o["model"]["momentum"] == 0.99
    assert o["train"]["lr"] == 0.1 and o["model"]["encoder"]["channels"] == [16, 32, 32, 64, 64]
    assert "image_channels" in SCHEDULES["default"].overrides("ssal")["model"]["encoder"]


def test_pstl_keeps_its_recipe_and_takes_its_cpu_plan():
    o = SCHEDULES["default"].overrides("pstl")
    assert "queue_size" not in o["model"] and "lr" not in o["train"]
    assert o["model"]["encoder"]["channels"] == [16, 32, 32, 64, 64]
    assert o["model"]["pstl"] == {"projector_dim": 1024}
    # the preset's 10 warm-up epochs of 150, scaled to the schedule's epochs
    assert o["train"]["warmup_epochs"] == max(1, round(10 * o["train"]["epochs"] / 150))
    cfg = resolve_config("pstl", overrides=o)
    assert cfg["train"]["optimizer"] == "adam" and cfg["train"]["lr"] == 5e-3


def test_reference_plan_has_no_cpu_plan():
    full = SCHEDULES["full"]
    assert full.pretrain.channels is None
    o = full.overrides("pstl")
    assert "pstl" not in o["model"] and "encoder" not in o["model"]


def test_mamps_window_is_the_schedules_clip_on_the_cpu_plan_only():
    for clip in (24, 32):
        o = SCHEDULES["default"].with_changes(clip_len=clip).overrides("mamp")
        assert o["model"]["encoder"]["num_frames"] == clip
        assert o["model"]["augment"]["general"]["clip_len"] == clip
        assert o["model"]["encoder"]["dim"] == 64  # the rest of the preset's CPU plan
    full = SCHEDULES["full"].overrides("mamp")
    assert "encoder" not in full["model"]
    assert resolve_config("mamp", overrides=full)["model"]["encoder"]["num_frames"] == 120
