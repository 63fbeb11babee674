"""Helpers shared by the benchmark scripts: machine description, child-process runs, medians.

Peak memory is the resident-set high-water mark (``ru_maxrss``) of a *fresh* child process that
runs one configuration, so one configuration's allocations never inflate another's figure
(tracemalloc does not see torch's allocator).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, torch version and threads, load average, date."""
    import torch

    model = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(ram, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def peak_rss_gib() -> float:
    """This process's resident-set high-water mark in GiB.

    Read from ``VmHWM`` in ``/proc/self/status`` where available: ``getrusage``'s ``ru_maxrss``
    survives ``fork`` + ``exec`` on Linux, so a child started by a parent that held a large
    resident set (e.g. the one that just wrote a corpus) would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def timed(fn: Callable[[], Any], warmup: int, reps: int) -> list[float]:
    """Wall-clock seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run_child(script: str, args: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python script --child args...`` in a fresh process; it prints one JSON line last."""
    cmd = [sys.executable, str(HERE / script), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def emit(result: dict[str, Any]) -> None:
    """The child's last stdout line: its result as JSON."""
    print(json.dumps(result), flush=True)


def header(title: str) -> None:
    info = machine()
    print(f"# {title}")
    print("# " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)


def matmul_gflops(device: Any = "cpu", size: int = 2048, reps: int = 5) -> float:
    """Sustained fp32 matmul rate in GFLOP/s on ``device``: median of ``reps`` ``size``^3
    products (8192^3 on a GPU, where 2048^3 is too short to time). Benchmarks time it in the
    same run as what they measure, so that a loaded machine lowers both."""
    import torch

    device = torch.device(device)
    size = 8192 if device.type == "cuda" else size

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    with torch.inference_mode():
        a @ b
        times = []
        for _ in range(reps):
            sync()
            t0 = time.perf_counter()
            a @ b
            sync()
            times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9
