"""Run ``ssal data info`` and ``ssal show`` on every BVH file of the given folders.

Usage::

    python scripts/check_bvh_folders.py ../shared/data/bandai-namco/dataset-1/data \\
        ../shared/data/bandai-namco/dataset-2/data ../shared/data/bvh/cmu_01_01.bvh [--gif-every 50]

Every file goes through both commands in this process (``ssal.cli.main.main``): ``data info``
must exit 0 and print 16 joints, ``show`` must write a PNG (and, for every ``--gif-every``-th
file, an animated GIF). Files whose joint mapping differs from the first file's are listed.
Exit code 1 if any file fails. The Bandai-Namco files are CC BY-NC: nothing is copied, the
images go to a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from ssal.cli.main import main
from ssal.data.bvh import read_bvh_with_info


def files_of(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob("*.bvh")) if p.is_dir() else [p])
    return out


def run(argv: list[str]) -> tuple[int, str, str]:
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        code = main(argv)
    return code, o.getvalue(), e.getvalue()


def main_(args: argparse.Namespace) -> int:
    files = files_of(args.paths)
    failures: list[str] = []
    mappings: dict[tuple, list[str]] = {}
    units: dict[str, int] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, f in enumerate(files):
            code, out, err = run(["data", "info", str(f)])
            if code != 0 or "V=16" not in out:
                failures.append(f"info {f.name}: exit {code} {err.strip()}")
                continue
            ext = ".gif" if args.gif_every and k % args.gif_every == 0 else ".png"
            target = Path(tmp) / f"{k}{ext}"
            code, out, err = run(["show", str(f), "--out", str(target)])
            if code != 0 or not target.is_file() or target.stat().st_size == 0:
                failures.append(f"show {f.name}: exit {code} {err.strip()}")
                continue
            _, info = read_bvh_with_info(f)
            mappings.setdefault(tuple(info.joints.items()), []).append(f.name)
            units[info.units] = units.get(info.units, 0) + 1
    print(f"{len(files)} files, {len(failures)} failures, {time.perf_counter() - t0:.0f} s")
    print(f"units: {units}")
    for mapping, names in mappings.items():
        print(f"{len(names)} files map {dict(mapping)}")
    for line in failures:
        print("FAIL", line)
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="BVH folders or files")
    parser.add_argument("--gif-every", type=int, default=50, help="also render a GIF for every N-th file (0: never)")
    sys.exit(main_(parser.parse_args()))
