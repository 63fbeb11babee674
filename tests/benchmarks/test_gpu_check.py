"""``benchmarks/gpu_check.sh``: its CPU dry run passes and prints every section (the benchmark
stage skipped, with a line, where the shared data are absent); a failing stage makes the exit
status non-zero; without a GPU and without ``--dry-run`` it stops with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def shared_data(*parts: str) -> Path:
    """As ``tests/conftest.py``'s: ``$SSAL_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("SSAL_SHARED_DATA", REPO.parent / "shared" / "data")).joinpath(*parts)

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
HEADERS = ("1. tests that need CUDA",
           "2. training step: ssal vs the AimCLR reference (fp32, bf16 autocast, compile)",
           "3. DDP on the devices present",
           "4. predict throughput",
           "5. real-data benchmark: bandai-affect")


def _check(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    data = shared_data("bandai-namco")
    full_env = {**os.environ, "PYTHON": sys.executable,
                "SSAL_DATA": str(data if (data / "dataset-2" / "data").is_dir() else tmp_path / "no-data"), **env}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_dry_run_passes_and_prints_every_section(tmp_path):
    out = tmp_path / "figures.txt"
    r = _check(tmp_path, "--dry-run", "--out", str(out))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    text = r.stdout
    for header in HEADERS:
        assert f"\n## {header}\n" in text, header
    assert out.read_text() == text  # the same figures, in the file
    assert not list(tmp_path.glob(".figures.txt.*"))  # no temporary file left beside it
    assert text.rstrip().splitlines()[-1].endswith(": OK")
    assert "FAILED" not in text
    assert text.count(" OK") >= 6 and "ddp steps 4" in text and "of limit" in text
    if (shared_data("bandai-namco") / "dataset-2" / "data").is_dir():
        assert "encoder.pt written" in text
    else:
        assert "skipped: no data at" in text


def test_a_failing_stage_makes_the_exit_status_non_zero(tmp_path):
    # every command gets one second: the stages time out, and the check says which
    r = _check(tmp_path, "--dry-run", TIMEOUT="1", SSAL_DATA=str(tmp_path / "no-data"))
    assert r.returncode == 1, r.stdout[-4000:]
    last = r.stdout.rstrip().splitlines()[-1]
    assert "FAILURES in section(s)" in last and "2. training step" in last
    for header in HEADERS:
        assert f"\n## {header}\n" in r.stdout, header


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_without_a_gpu_it_stops_with_one_line(tmp_path):
    r = _check(tmp_path)
    assert r.returncode == 2
    assert "no CUDA GPU visible" in r.stdout and "--dry-run" in r.stdout and "##" not in r.stdout


@pytest.mark.parametrize("args", [["--bogus"], ["--out"], ["--dry-run", "--out", "/nonexistent/folder/x.txt"]])
def test_bad_arguments(tmp_path, args):
    r = _check(tmp_path, *args)
    assert r.returncode == 2 and "gpu_check:" in r.stderr and "##" not in r.stdout
