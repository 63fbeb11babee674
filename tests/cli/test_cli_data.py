"""``ssal data synth``, ``ssal data info``, ``ssal show`` and the renderer behind it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from ssal.cli.main import main
from ssal.data.preprocess import PreprocessConfig
from ssal.data.synthetic import generate
from ssal.skeleton import EGAIT16
from ssal.visualisation.skeleton import (
    LEFT_COLOUR,
    RIGHT_COLOUR,
    TRUNK_COLOUR,
    bone_colours,
    render_gif,
    view_coordinates,
)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.npz"
    assert main(["data", "synth", "--n", "24", "--seed", "3", "--out", str(path)]) == 0
    return path


def _x(path):
    with np.load(path) as data:
        return data["x"], data["y"]


def test_synth_deterministic_by_seed(tmp_path, small_npz):
    again = tmp_path / "again.npz"
    other = tmp_path / "other.npz"
    assert main(["data", "synth", "--n", "24", "--seed", "3", "--out", str(again)]) == 0
    assert main(["data", "synth", "--n", "24", "--seed", "4", "--out", str(other)]) == 0
    xa, ya = _x(small_npz)
    xb, yb = _x(again)
    xc, _ = _x(other)
    assert xa.shape == (24, 3, 75, EGAIT16.num_joints)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.allclose(xa, xc)


def test_synth_ssal_and_info(tmp_path, capsys):
    out = tmp_path / "corpus.ssal"
    assert main(["data", "synth", "--n", "16", "--seed", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    for emotion in ("happy", "angry", "sad", "neutral"):
        assert f"{emotion:<12}      4" in text  # 16 sequences, balanced
    assert "(N=16, C=3, T=75, V=16)" in text
    assert "egait16" in text and "fps:       30" in text
    lo, hi = re.search(r"lengths:\s+min (\d+) .* max (\d+) frames", text).groups()
    assert 40 <= int(lo) <= int(hi) <= 75  # the generator's original lengths are kept


def test_show_writes_animated_gif(tmp_path, small_npz, capsys):
    gif = tmp_path / "walk.gif"
    assert main(["show", str(small_npz), "--index", "2", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.format == "GIF"
        assert im.n_frames > 1
        assert im.size[0] > im.size[1]  # side and front view next to each other
    png = tmp_path / "frame.png"
    assert main(["show", str(small_npz), "--index", "-1", "--out", str(png), "--frame", "3"]) == 0
    with Image.open(png) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB"))
    # Both limb colours are drawn.
    for colour in (LEFT_COLOUR, RIGHT_COLOUR):
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels.astype(int) - rgb).sum(-1) < 30).sum() > 20


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "info", "{missing}"],
        ["show", "{missing}", "--out", "{tmp}/x.gif"],
        ["data", "info", "{garbage}"],
        ["show", "{small}", "--index", "99", "--out", "{tmp}/x.gif"],
        ["data", "synth", "--n", "4", "--out", "{tmp}/x.txt"],
        ["data", "synth", "--n", "4", "--out", "{tmp}/no/such/dir/x.npz"],
    ],
)
def test_bad_input_exit_code_2_names_the_file(tmp_path, small_npz, capsys, argv):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    fill = {"missing": str(tmp_path / "missing.npz"), "tmp": str(tmp_path), "garbage": str(garbage),
            "small": str(small_npz)}
    args = [a.format(**fill) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    named = [a for a in args if "/" in a]
    assert any(p in err for p in named), err


def test_show_builtin(tmp_path):
    gif = tmp_path / "b.gif"
    assert main(["show", "builtin", "--index", "5", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames > 1


def test_bone_colours_and_view_axes():
    colours = bone_colours(EGAIT16)
    edge = {e: c for e, c in zip(EGAIT16.edges, colours)}
    assert edge[(4, 5)] == LEFT_COLOUR and edge[(13, 14)] == RIGHT_COLOUR and edge[(0, 1)] == TRUNK_COLOUR
    ds = generate(4, seed=0, config=PreprocessConfig(center="first_frame"))  # path kept, walks towards +z
    forward, lateral, up = view_coordinates(ds.x[0], EGAIT16)
    t = int(ds.lengths[0]) - 1
    assert forward[t, 0] - forward[0, 0] > 0.3  # walks forward in the side view
    assert lateral[0, EGAIT16.index("left_hip")] > lateral[0, EGAIT16.index("right_hip")]
    assert up[:, EGAIT16.index("head")].min() > up[:, EGAIT16.index("root")].max()


def test_render_gif_rejects_wrong_shape(tmp_path):
    from ssal.errors import SsalInputError

    with pytest.raises(SsalInputError, match="expected shape"):
        render_gif(np.zeros((3, 10, 15)), EGAIT16, tmp_path / "x.gif")
