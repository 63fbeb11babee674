"""The settings stream of the fuzz run, a short draw in the test suite: mutated configs and
joint maps (alias bombs included), mutated ONNX metadata and output paths in every relation to
an input each load, or are refused with one line, in bounded time; an output path that would
overwrite an input is never accepted (``scripts/fuzz_settings.py``)."""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fuzz_settings", ROOT / "scripts" / "fuzz_settings.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fuzz_settings", fuzz)
_spec.loader.exec_module(fuzz)


def test_a_draw_of_the_settings_stream(tmp_path):
    seeds = fuzz.write_settings_seeds(tmp_path / "seeds")
    for path in seeds.values():
        assert fuzz.try_setting(path) is None, path  # the seeds themselves load
    work = tmp_path / "work"
    work.mkdir()
    stream = fuzz.settings_inputs(random.Random(5), work, seeds)
    kinds = set()
    for _ in range(150):
        path, what = next(stream)
        t0 = time.perf_counter()
        problem = fuzz.try_setting(path)  # anything but SsalInputError propagates and fails here
        assert problem is None, f"{what}: {problem}"
        assert time.perf_counter() - t0 < 10, what
        kinds.add(path.name)
    assert {"config.yaml", "jointmap.yaml", "outputs.json"} <= kinds


def test_an_alias_bomb_is_refused_fast(tmp_path):
    seeds = fuzz.write_settings_seeds(tmp_path / "seeds")
    assert fuzz.try_setting(seeds["config"]) is None  # imports done before the clock starts
    rng = random.Random(0)
    for i in range(20):
        p = tmp_path / f"b{i}" / "config.yaml"
        p.parent.mkdir()
        p.write_text(fuzz.alias_bomb(rng))
        t0 = time.perf_counter()
        assert fuzz.try_setting(p) is None
        assert time.perf_counter() - t0 < 1.0
