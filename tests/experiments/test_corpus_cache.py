"""The benchmark's corpus cache (ssal.experiments.corpus_cache) on the synthetic BVH tree of the
runner tests: a second read comes from the cache, array for array the same; a touched or
resized source file, or a changed spec field, misses it; a damaged entry is rebuilt; the data
root is never written; ``$SSAL_CACHE_DIR``, ``--cache`` and ``--no-cache`` are honoured."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from test_benchmark_runner import data_root  # noqa: F401 - the synthetic BVH tree and its spec (a fixture)

from ssal.cli.main import main
from ssal.errors import SsalInputError
from ssal.experiments import corpus, run_benchmark
from ssal.experiments.corpus import read_evaluation, read_pretraining
from ssal.experiments.corpus_cache import CorpusCache, default_cache_dir, open_cache
from ssal.experiments.spec import load_spec


class Reads:
    """Counts the BVH folder reads of :mod:`ssal.experiments.corpus`; ``refuse`` makes them fail."""

    def __init__(self, monkeypatch):
        self.count = 0
        self.refuse = False
        real = corpus.read_bvh_folder

        def counted(*args, **kwargs):
            if self.refuse:
                raise AssertionError("read the BVH files although the cache holds them")
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(corpus, "read_bvh_folder", counted)


def _same(a, b) -> None:
    """Two datasets equal field for field, arrays bit for bit."""
    for name in ("x", "y", "lengths"):
        va, vb = getattr(a, name), getattr(b, name)
        assert va.dtype == vb.dtype and va.shape == vb.shape, name
        assert np.array_equal(va.view(np.uint8), vb.view(np.uint8)), name
    assert type(a.x) is np.ndarray and a.x.flags.writeable  # in memory, as the BVH reader gives it
    assert (a.names, a.groups, a.classes, a.layout, a.fps) == (b.names, b.groups, b.classes, b.layout, b.fps)
    assert a.meta == b.meta


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _reads(root, spec, cache):
    ev = read_evaluation(root, spec.evaluation, cache)
    held = sorted(set(ev.clip_recordings))[:2]
    pre, used = read_pretraining(root, spec.pretraining, held, None, cache)
    return ev, held, pre, used


def test_second_read_hits_the_cache_and_gives_the_same_arrays(data_root, tmp_path, monkeypatch):  # noqa: F811
    root, spec_path = data_root
    spec = load_spec(str(spec_path))
    reads = Reads(monkeypatch)
    plain_ev, held, plain_pre, plain_used = _reads(root, spec, None)
    logs: list[str] = []
    cache = CorpusCache(tmp_path / "cache", logs.append)
    _reads(root, spec, cache)
    assert reads.count == 2 * 3  # evaluation + 2 pretraining sources, without then with the cache
    assert sum("wrote the" in m for m in logs) == 3 and len(list((tmp_path / "cache").glob("*.ssal"))) == 3
    logs.clear()
    reads.refuse = True
    ev = read_evaluation(root, spec.evaluation, cache)
    pre, used = read_pretraining(root, spec.pretraining, held, None, cache)
    assert sum("read the cached" in m for m in logs) == 3 and not any("wrote" in m for m in logs)
    _same(ev.dataset, plain_ev.dataset)
    _same(pre, plain_pre)
    assert ev.recordings == plain_ev.recordings and used == plain_used
    assert np.array_equal(ev.field_of_clips("session"), plain_ev.field_of_clips("session"))
    assert (pre.y == -1).all() and set(pre.recording_ids).isdisjoint(held)


def test_a_changed_source_file_or_spec_field_misses_the_cache(data_root, tmp_path, monkeypatch):  # noqa: F811
    root, spec_path = data_root
    spec = load_spec(str(spec_path))
    reads = Reads(monkeypatch)
    cache = CorpusCache(tmp_path / "cache", lambda m: None)
    read_evaluation(root, spec.evaluation, cache)
    read_evaluation(root, spec.evaluation, cache)
    assert reads.count == 1
    # a touched file (same bytes, new modification time)
    f = root / "eval" / "x_walk_calm_000.bvh"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    read_evaluation(root, spec.evaluation, cache)
    assert reads.count == 2
    # a resized file (its modification time put back)
    st = f.stat()
    with open(f, "a") as fh:
        fh.write("\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    read_evaluation(root, spec.evaluation, cache)
    assert reads.count == 3
    read_evaluation(root, spec.evaluation, cache)
    assert reads.count == 3
    # spec fields: the clip cutting, the labels, a filter that selects other files
    for changed in (dataclasses.replace(spec.evaluation, window=30),
                    dataclasses.replace(spec.evaluation, stride=15),
                    dataclasses.replace(spec.evaluation, rename={"calm": "quiet"}),
                    dataclasses.replace(spec.evaluation, where={**spec.evaluation.where, "content": ("walk", "run")})):
        before = reads.count
        ev = read_evaluation(root, changed, cache)
        assert reads.count == before + 1, changed
    assert ev.dataset.num_frames == 40 and set(ev.field_of_clips("content")) == {"walk", "run"}
    # the pretraining corpus: other held-out recordings, a file limit
    read_pretraining(root, spec.pretraining, [], None, cache)
    before = reads.count
    read_pretraining(root, spec.pretraining, [], None, cache)
    assert reads.count == before
    read_pretraining(root, spec.pretraining, ["p_walk_s0_000.bvh"], None, cache)
    assert reads.count == before + 1  # the 'pre' source changed, the other did not
    read_pretraining(root, spec.pretraining, [], 2, cache)
    assert reads.count == before + 3


@pytest.mark.parametrize("damage", ["truncate x", "drop meta", "garbage meta", "other key"])
def test_a_damaged_entry_is_rebuilt_with_one_line(data_root, tmp_path, monkeypatch, damage):  # noqa: F811
    root, spec_path = data_root
    spec = load_spec(str(spec_path))
    reads = Reads(monkeypatch)
    logs: list[str] = []
    cache = CorpusCache(tmp_path / "cache", logs.append)
    first = read_evaluation(root, spec.evaluation, cache)
    (entry,) = (tmp_path / "cache").glob("*.ssal")
    if damage == "truncate x":
        data = (entry / "x.npy").read_bytes()
        (entry / "x.npy").write_bytes(data[: len(data) // 2])
    elif damage == "drop meta":
        (entry / "meta.json").unlink()
    elif damage == "garbage meta":
        (entry / "meta.json").write_text("{not json")
    else:  # another entry's contents under this name
        text = (entry / "meta.json").read_text()
        (entry / "meta.json").write_text(text.replace('"key": "', '"key": "0'))
    logs.clear()
    again = read_evaluation(root, spec.evaluation, cache)
    assert reads.count == 2
    bad = [m for m in logs if "unreadable entry" in m]
    assert len(bad) == 1 and "\n" not in bad[0] and "rebuilding" in bad[0]
    assert any("wrote the" in m for m in logs)
    _same(again.dataset, first.dataset)
    reads.refuse = True
    _same(read_evaluation(root, spec.evaluation, cache).dataset, first.dataset)  # the rebuilt entry is read


def test_an_entry_published_first_by_another_process_is_kept(data_root, tmp_path, monkeypatch):  # noqa: F811
    root, spec_path = data_root
    spec = load_spec(str(spec_path))
    logs: list[str] = []
    cache = CorpusCache(tmp_path / "cache", logs.append)
    ev = read_evaluation(root, spec.evaluation, cache)
    (entry,) = (tmp_path / "cache").glob("*.ssal")
    stamp = (entry / "x.npy").stat().st_mtime_ns
    key = (entry / "meta.json").read_text().split('"key": "')[1][:64]
    logs.clear()
    cache.store(key, "eval-evaluation", "evaluation clips", ev.dataset)  # a second writer of the same entry
    assert (entry / "x.npy").stat().st_mtime_ns == stamp and logs == []
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [entry.name]  # no temporary folder left


def test_an_unwritable_cache_is_one_line_and_the_read_goes_on(data_root, tmp_path):  # noqa: F811
    root, spec_path = data_root
    spec = load_spec(str(spec_path))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    logs: list[str] = []
    ev = read_evaluation(root, spec.evaluation, CorpusCache(blocker / "cache", logs.append))
    assert len(ev.dataset) > 0
    assert len([m for m in logs if "cannot write" in m]) == 1


def test_runs_with_and_without_the_cache_agree_and_the_data_root_is_never_written(
        data_root, tmp_path, monkeypatch):  # noqa: F811
    root, spec_path = data_root
    before = _tree(root)
    plain = run_benchmark(str(spec_path), root, tmp_path / "plain", schedule="tiny", progress=False,
                          log=lambda m: None, cache=False)
    env_cache = tmp_path / "env-cache"
    monkeypatch.setenv("SSAL_CACHE_DIR", str(env_cache))
    assert not env_cache.exists()
    logs: list[str] = []
    run_benchmark(str(spec_path), root, tmp_path / "first", schedule="tiny", progress=False, pretrain_only=True,
                  log=logs.append)
    assert len(list(env_cache.glob("*.ssal"))) == 3 and sum("wrote the" in m for m in logs) == 3
    reads = Reads(monkeypatch)
    reads.refuse = True
    logs.clear()
    cached = run_benchmark(str(spec_path), root, tmp_path / "cached", schedule="tiny", progress=False,
                           log=logs.append)
    assert sum("read the cached" in m for m in logs) == 3
    # the cache lines come before training starts
    first_training = next(i for i, m in enumerate(logs) if "pretraining skeletonclr" in m)
    assert max(i for i, m in enumerate(logs) if "read the cached" in m) < first_training
    for key in ("data", "representations", "curves", "few_labels"):
        assert cached[key] == plain[key], key
    assert _tree(root) == before  # nothing written, touched or left in the data root


def test_default_cache_folder(monkeypatch):
    monkeypatch.delenv("SSAL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert default_cache_dir() == Path("/somewhere/cache/ssal/corpora")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as the XDG spec says
    assert default_cache_dir() == Path.home() / ".cache" / "ssal" / "corpora"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert default_cache_dir() == Path("/home/someone/.cache/ssal/corpora")
    monkeypatch.setenv("SSAL_CACHE_DIR", "/tmp/mine")
    assert default_cache_dir() == Path("/tmp/mine")


def test_a_cache_in_the_data_root_is_refused(data_root, tmp_path, capsys):  # noqa: F811
    root, spec_path = data_root
    for inside in (root / "cache", root, root.parent):
        with pytest.raises(SsalInputError, match="corpus cache"):
            open_cache(inside, root)
    before = _tree(root)
    out = tmp_path / "out"
    assert main(["benchmark", str(spec_path), "--data", str(root), "--schedule", "tiny", "--out", str(out),
                 "--cache", str(root / "eval" / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "corpus cache" in err and "inside the input folder" in err
    assert _tree(root) == before


def test_the_cli_cache_flags(data_root, tmp_path, capsys, monkeypatch):  # noqa: F811
    root, spec_path = data_root
    mine = tmp_path / "mine"
    args = ["benchmark", str(spec_path), "--data", str(root), "--schedule", "tiny", "--pretrain-only",
            "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--cache", str(mine)]) == 0
    assert len(list(mine.glob("*.ssal"))) == 3
    assert "corpus cache: wrote the" in capsys.readouterr().err
    env_cache = Path(os.environ["SSAL_CACHE_DIR"])
    assert main([*args, "--out", str(tmp_path / "b"), "--no-cache"]) == 0
    assert "corpus cache" not in capsys.readouterr().err and not env_cache.exists()
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "c"), "--no-cache", "--cache", str(mine)])


def _read_into(args) -> list[str]:
    root, spec_path, folder, out = args
    ev = read_evaluation(Path(root), load_spec(spec_path).evaluation, CorpusCache(Path(folder), lambda m: None))
    np.save(out, ev.dataset.x)
    return ev.dataset.names


def test_two_processes_filling_one_entry_leave_one_whole_entry(data_root, tmp_path):  # noqa: F811
    import multiprocessing

    root, spec_path = data_root
    folder = tmp_path / "cache"
    jobs = [(str(root), str(spec_path), str(folder), str(tmp_path / f"x{i}.npy")) for i in range(2)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        names = pool.map(_read_into, jobs)
    assert names[0] == names[1]
    assert np.array_equal(np.load(tmp_path / "x0.npy"), np.load(tmp_path / "x1.npy"))
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".ssal")] == []  # no temporary folder left
    (entry,) = folder.glob("*.ssal")
    logs: list[str] = []
    spec = load_spec(str(spec_path))
    cached = read_evaluation(root, spec.evaluation, CorpusCache(folder, logs.append))
    assert any("read the cached" in m for m in logs) and np.array_equal(cached.dataset.x, np.load(tmp_path / "x0.npy"))
