"""Quick looks at skeleton sequences: an animated GIF and a single-frame PNG.

Both draw two orthographic views side by side, a **side view** (forward vs. up) and a
**front view** (left-right vs. up), with the bones of ``layout.edges``; bones of the left
limbs are blue, of the right limbs red, of the trunk grey. The forward axis is the walker's
facing direction estimated from the hips and shoulders, so raw sequences with any heading
look the same as facing-aligned ones. Rendering uses matplotlib's Agg backend (no display)
and Pillow for the GIF.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import SsalInputError
from ..skeleton import SkeletonLayout

LEFT_COLOUR = "#1f5fd0"
RIGHT_COLOUR = "#d03020"
TRUNK_COLOUR = "#555555"


def _check_sequence(sequence: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    seq = np.asarray(sequence, dtype=np.float64)
    if seq.ndim != 3 or seq.shape[0] != 3 or seq.shape[2] != layout.num_joints:
        raise SsalInputError(
            "sequence", f"expected shape (3, T, {layout.num_joints}) for layout {layout.name}, got {seq.shape}"
        )
    if seq.shape[1] < 1:
        raise SsalInputError("sequence", "has no frames")
    if not np.isfinite(seq).all():
        raise SsalInputError("sequence", "holds NaN or inf values")
    return seq


def bone_colours(layout: SkeletonLayout) -> list[str]:
    """Colour of each bone of ``layout.edges``: left limbs blue, right limbs red, else grey."""
    left = set(layout.parts["left_arm"]) | set(layout.parts["left_leg"])
    right = set(layout.parts["right_arm"]) | set(layout.parts["right_leg"])
    colours = []
    for a, b in layout.edges:
        if a in left or b in left:
            colours.append(LEFT_COLOUR)
        elif a in right or b in right:
            colours.append(RIGHT_COLOUR)
        else:
            colours.append(TRUNK_COLOUR)
    return colours


def view_coordinates(sequence: np.ndarray, layout: SkeletonLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(forward, lateral, up)`` coordinates, each ``(T, V)``, of a ``(3, T, V)`` sequence.

    The lateral axis is the mean horizontal left-minus-right vector of hips and shoulders;
    forward is ``lateral x up`` (the walker's facing direction for a right-handed, y-up frame).
    """
    seq = _check_sequence(sequence, layout)
    pos = seq.transpose(1, 2, 0)  # (T, V, 3)
    up = layout.up_axis
    a, b = (up + 2) % 3, (up + 1) % 3
    lh, rh = layout.parts["left_leg"][0], layout.parts["right_leg"][0]
    ls, rs = layout.parts["left_arm"][0], layout.parts["right_arm"][0]
    across = (pos[:, lh] - pos[:, rh] + pos[:, ls] - pos[:, rs]).mean(axis=0)
    lat = np.array([across[a], across[b]])
    norm = np.linalg.norm(lat)
    lat = lat / norm if norm > 1e-9 else np.array([1.0, 0.0])
    # Horizontal plane coordinates (a, b); up = a x b direction, so forward = lateral rotated by +90 deg.
    fwd = np.array([-lat[1], lat[0]])
    ha, hb = pos[..., a], pos[..., b]
    forward = ha * fwd[0] + hb * fwd[1]
    lateral = ha * lat[0] + hb * lat[1]
    return forward, lateral, pos[..., up]


class _Renderer:
    """A figure with the two views whose bone lines are updated frame by frame."""

    def __init__(self, sequence: np.ndarray, layout: SkeletonLayout, title: str, size: float) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.forward, self.lateral, self.up = view_coordinates(sequence, layout)
        self.edges = layout.edges
        self.fig = Figure(figsize=(2 * size, size), dpi=80)
        self.canvas = FigureCanvasAgg(self.fig)
        self.fig.suptitle(title, fontsize=11)
        ground = float(self.up.min())
        top = float(self.up.max())
        colours = bone_colours(layout)
        self.axes = []
        self.lines: list[list] = []
        for k, (horizontal, label) in enumerate(((self.forward, "side (forward →)"), (self.lateral, "front (left →)"))):
            ax = self.fig.add_subplot(1, 2, k + 1)
            ax.set_title(label, fontsize=9)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axhline(ground, color="#999999", lw=0.8)
            lines = [ax.plot([], [], color=c, lw=2.5, solid_capstyle="round")[0] for c in colours]
            self.axes.append((ax, horizontal))
            self.lines.append(lines)
        half = 0.6 * (top - ground) + 1e-6
        self.half = half
        self.ylim = (ground - 0.05 * half, top + 0.1 * half)

    def draw(self, frame: int) -> np.ndarray:
        """Render frame ``frame``; returns an ``(H, W, 3)`` uint8 image."""
        for (ax, horizontal), lines in zip(self.axes, self.lines):
            h = horizontal[frame]
            u = self.up[frame]
            for line, (a, b) in zip(lines, self.edges):
                line.set_data([h[a], h[b]], [u[a], u[b]])
            centre = float(np.median(h))
            ax.set_xlim(centre - self.half, centre + self.half)
            ax.set_ylim(*self.ylim)
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


def _prepare_out(out_path: str | os.PathLike[str]) -> Path:
    path = Path(out_path)
    if path.parent and not path.parent.exists():
        raise SsalInputError(path, "the output folder does not exist")
    return path


def render_gif(
    sequence: np.ndarray,
    layout: SkeletonLayout,
    out_path: str | os.PathLike[str],
    title: str = "",
    fps: float = 30.0,
    size: float = 3.0,
) -> Path:
    """Write an animated GIF of a ``(3, T, V)`` sequence (side and front view) to ``out_path``.

    Args:
        sequence: joint positions, ``(3, T, V)``.
        layout: skeleton layout of the V axis (bones, left/right parts, up axis).
        out_path: the GIF file to write.
        title: text above the views (e.g. the emotion label).
        fps: playback rate.
        size: height of one view in inches (80 dpi).

    Returns:
        The path written.
    """
    from PIL import Image

    path = _prepare_out(out_path)
    renderer = _Renderer(sequence, layout, title, size)
    frames = [Image.fromarray(renderer.draw(t)) for t in range(renderer.up.shape[0])]
    duration = max(int(round(1000.0 / max(fps, 1e-3))), 20)
    paletted = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=32) for f in frames]
    paletted[0].save(path, save_all=True, append_images=paletted[1:], duration=duration, loop=0, optimize=False)
    return path


def plot_skeleton_frame(
    sequence: np.ndarray,
    layout: SkeletonLayout,
    out_path: str | os.PathLike[str],
    frame: int = 0,
    title: str = "",
    size: float = 3.0,
) -> Path:
    """Write one frame of a ``(3, T, V)`` sequence (side and front view) as a PNG."""
    from PIL import Image

    path = _prepare_out(out_path)
    seq = _check_sequence(sequence, layout)
    if not -seq.shape[1] <= frame < seq.shape[1]:
        raise SsalInputError("frame", f"frame {frame} out of range 0..{seq.shape[1] - 1}")
    renderer = _Renderer(seq, layout, title, size)
    Image.fromarray(renderer.draw(frame % seq.shape[1])).save(path)
    return path
