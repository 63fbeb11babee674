"""The one budgeted YAML reader (``ssal.config.yaml_safe``): billion-laughs documents, recursive
aliases, deep nesting, long numbers and oversized files are one error line, in bounded time,
whichever reader meets them (config files, ``--set``, specs, joint maps)."""

from __future__ import annotations

import io
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssal.cli.main import main
from ssal.config import parse_overrides, read_yaml, yaml_safe
from ssal.config.resolve import MAX_CONFIG_BYTES
from ssal.errors import SsalInputError
from ssal.jointmatch import load_joint_map
from ssal.skeleton import EGAIT16


def bomb(levels: int, width: int = 9, key: str = "a") -> str:
    """A billion-laughs document: level i is a list of ``width`` aliases of level i - 1."""
    lines = [f"{key}0: &{key}0 [lol]"]
    for i in range(1, levels + 1):
        lines.append(f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def assert_one_line(code: int, err: str, says: str = "") -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, repr(err)
    assert says in err, err


def test_a_ten_level_billion_laughs_is_refused_in_well_under_a_second():
    t0 = time.perf_counter()
    with pytest.raises(yaml_safe.YamlRefused, match="refused"):
        yaml_safe.load_text(bomb(10), "bomb.yaml", what="config file")
    assert time.perf_counter() - t0 < 0.5


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels=st.integers(1, 14), width=st.integers(2, 12))
def test_more_aliases_than_the_budget_are_refused_in_bounded_time(levels, width):
    text = bomb(levels, width)
    aliases = levels * width
    t0 = time.perf_counter()
    try:
        value = yaml_safe.load_text(text, "gen.yaml")
    except yaml_safe.YamlRefused as exc:
        assert "gen.yaml" in str(exc) and "\n" not in str(exc)
        refused = True
    else:
        refused = False
    assert time.perf_counter() - t0 < 2.0
    sizes = [2]  # values of each level with its aliases expanded: [lol] is a list and a text
    for _ in range(levels):
        sizes.append(1 + width * sizes[-1])
    expanded = 1 + sum(1 + s for s in sizes)  # the top mapping, its keys and its values
    assert refused == (aliases > yaml_safe.MAX_ALIASES or expanded > yaml_safe.MAX_NODES)
    if not refused:  # within every budget: the document safe_load reads
        assert value == yaml.safe_load(text)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 300), flow=st.booleans())
def test_nesting_is_refused_past_the_depth_budget(depth, flow):
    text = ("[" * depth + "]" * depth) if flow else "".join(f"{'  ' * i}k:\n" for i in range(depth)) + "  " * depth + "v"
    if depth <= yaml_safe.MAX_DEPTH - 1:
        yaml_safe.load_text(text, "deep.yaml")
    elif depth > yaml_safe.MAX_DEPTH:
        with pytest.raises(yaml_safe.YamlRefused, match="nested more than"):
            yaml_safe.load_text(text, "deep.yaml")


@pytest.mark.parametrize("text, says", [
    ("a: &a [*a]\n", "recursive"),
    ("a: &a {b: *a}\n", "recursive"),
    ("x: 1" + ":1" * 50_000 + "\n", "number of more than"),
    ("x: " + "9" * 5000 + "\n", "number of more than"),
    # an alias of a deep node placed deep: the depth with aliases expanded counts
    ("a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n", "with aliases expanded"),
])
def test_hostile_documents_are_refused(text, says):
    t0 = time.perf_counter()
    with pytest.raises(yaml_safe.YamlRefused, match=says):
        yaml_safe.load_text(text, "f.yaml")
    assert time.perf_counter() - t0 < 1.0


def test_a_few_anchors_are_still_fine():
    text = "base: &b {lr: 0.1, epochs: 2}\nother: {<<: *b, epochs: 3}\nsame: *b\n"
    assert yaml_safe.load_text(text, "f.yaml") == yaml.safe_load(text)


def test_specs_allow_no_alias():
    with pytest.raises(yaml_safe.YamlRefused, match="aliases are not allowed in a spec"):
        yaml_safe.load_text("a: &x [1]\nb: *x\n", "s.yaml", aliases=0, what="spec")


def test_config_files_are_capped_by_size_before_reading(tmp_path):
    p = tmp_path / "huge.yaml"
    with open(p, "wb") as fh:
        fh.truncate(3 * 2**30)  # sparse: nothing to read, refused from its size
    t0 = time.perf_counter()
    with pytest.raises(SsalInputError, match="larger than the limit") as err:
        read_yaml(p)
    assert str(p) in str(err.value) and time.perf_counter() - t0 < 0.5
    assert MAX_CONFIG_BYTES == yaml_safe.MAX_YAML_BYTES


def test_read_yaml_names_the_file(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(bomb(10))
    with pytest.raises(SsalInputError) as err:
        read_yaml(p)
    assert str(p) in str(err.value) and "refused" in str(err.value)


def test_set_values_are_budgeted_and_name_the_key():
    nested = "{a: &a [x], b: [" + ",".join(["*a"] * 70) + "]}"
    with pytest.raises(SsalInputError, match="--set model: .*aliases"):
        parse_overrides([f"model={nested}"])
    # text that is not YAML is still taken as text
    assert parse_overrides(["data.labels_from_name={actor}_{emotion}"]) == {
        "data": {"labels_from_name": "{actor}_{emotion}"}}


def test_joint_maps_are_budgeted_and_name_the_map(tmp_path):
    deep = tmp_path / "deep_map.yaml"
    deep.write_text("root: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SsalInputError, match="nested more than") as err:
        load_joint_map(deep, EGAIT16.joints)
    assert "deep_map.yaml" in str(err.value)
    huge = tmp_path / "huge_map.yaml"
    with open(huge, "wb") as fh:
        fh.truncate(3 * 2**30)
    with pytest.raises(SsalInputError, match="joint map of 3221225472 bytes is larger") as err:
        load_joint_map(huge, EGAIT16.joints)
    assert "huge_map.yaml" in str(err.value)
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text(bomb(10, key="j"))
    with pytest.raises(SsalInputError, match="refused"):
        load_joint_map(laughs, EGAIT16.joints)


def test_benchmark_specs_refuse_a_bomb(tmp_path):
    from ssal.experiments.spec import load_spec

    p = tmp_path / "spec.yaml"
    p.write_text(bomb(10))
    t0 = time.perf_counter()
    with pytest.raises(SsalInputError, match="aliases are not allowed"):
        load_spec(str(p))
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("under", ["known", "unknown"])
def test_cli_config_bomb_is_one_line(tmp_path, under):
    p = tmp_path / "bomb.yaml"
    text = bomb(10)
    if under == "known":  # the bomb under a known section
        text = "model:\n" + "".join(f"  {line}\n" for line in text.splitlines())
    p.write_text(text)
    t0 = time.perf_counter()
    code, err = run(["pretrain", "--out", str(tmp_path / "run"), "--config", str(p)])
    assert time.perf_counter() - t0 < 5.0
    assert_one_line(code, err, "bomb.yaml")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_cli_set_bomb_is_one_line(tmp_path):
    value = "{a: &a [x], b: [" + ",".join(["*a"] * 9) + "], " + ", ".join(
        f"c{i}: &c{i} [" + ",".join([f"*{'a' if i == 0 else f'c{i - 1}'}"] * 9) + "]" for i in range(9)) + "}"
    t0 = time.perf_counter()
    code, err = run(["pretrain", "--out", str(tmp_path / "run"), "--set", f"model={value}"])
    assert time.perf_counter() - t0 < 5.0
    assert_one_line(code, err, "--set model")
