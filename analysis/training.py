"""Figures of the messages recorded during training (`gnn.history.MessageHistory`).

In:  a `MessageHistory` (RUN/train/message_history.npz) and a title naming the run.
Out: `history_figure`: R² of each top component against the true force and against F/m1,
     and the sparsity, against the optimiser step (linear axes, at most 6 step ticks, 40000
     written 40k);
     `evolution_gif`: an animated GIF, one frame per recorded step (at most MAX_FRAMES,
     evenly spaced, first and last kept), of the top two components against the best linear
     combination of the true force: the paper's Fig. 3 as training goes (the official demo's
     animation). Frames come from matplotlib's PillowWriter (Pillow is a dependency of
     matplotlib); the file is written atomically.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from gnn.history import MessageHistory
from plumbing.io import atomic_write_bytes

MAX_FRAMES = 40
FRAMES_PER_SECOND = 4
DPI = 100
RANKS = ("1st", "2nd", "3rd")


def history_figure(history: MessageHistory, title: str = "") -> Figure:
    """R² (force solid, F/m1 dashed) of the top components and the sparsity, against step.

    Args:
        history: the recorded rows.
        title: figure title (the run).
    """
    step = np.asarray(history.step)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_r2, ax_sp = fig.subplots(1, 2)
    for k in range(history.r2_force.shape[1]):
        line, = ax_r2.plot(step, history.r2_force[:, k], marker=".", label=f"{RANKS[k]} component vs force")
        ax_r2.plot(step, history.r2_accel[:, k], ls="--", color=line.get_color(),
                   label=f"{RANKS[k]} component vs F/m1")
    low = float(np.nanmin(np.concatenate([history.r2_force.ravel(), history.r2_accel.ravel(), [0.0]])))
    ax_r2.set_ylim(low - 0.05, 1.05)
    ax_r2.set_xlabel("optimiser step")
    ax_r2.set_ylabel("R² (robust, affine fit)")
    ax_r2.set_title("message R² during training", fontsize=9)
    ax_sp.plot(step, history.sparsity, marker=".", color="tab:red", label="sparsity (variance share of the top)")
    ax_sp.set_ylim(0, 1.05)
    ax_sp.set_xlabel("optimiser step")
    ax_sp.set_ylabel("sparsity")
    ax_sp.set_title("sparsity during training", fontsize=9)
    for ax in (ax_r2, ax_sp):   # few ticks, 40000 as "40k": labels that never run into each other
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    fig.legend(loc="outside lower center", ncols=3, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def frame_rows(n_rows: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Rows shown as frames: all of them, or `max_frames` evenly spaced with the first and last."""
    return np.unique(np.linspace(0, n_rows - 1, min(n_rows, max_frames)).round().astype(int))


def evolution_gif(history: MessageHistory, path: str | os.PathLike, title: str = "",
                  max_frames: int = MAX_FRAMES) -> Path:
    """Animate the top two components against the linear combination of the true force
    fitted to each, one frame per recorded step.

    Args:
        history: the recorded rows.
        path: output .gif.
        title: figure title (the run); each frame adds its step.
        max_frames: most frames drawn.
    Returns:
        The written path.
    """
    rows = frame_rows(len(history.step), max_frames)
    shown = min(2, history.top.shape[1])
    last = rows[-1]
    span = np.concatenate([history.standardised(last)[:, :shown].ravel(), history.fitted(last)[:, :shown].ravel()])
    lim = float(np.nanpercentile(np.abs(span), 99)) * 1.15          # the final frame's extent, for every frame
    lim = lim if np.isfinite(lim) and lim > 0 else 1.0
    fig = Figure(figsize=(3.6 * shown, 4.0), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, shown, squeeze=False)[0]
    points = []
    for k, ax in enumerate(axes):
        ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
        points.append(ax.scatter(np.zeros(0), np.zeros(0), s=3, alpha=0.4, color="tab:blue"))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("linear combination of true force", fontsize=8)
        if k == 0:
            ax.set_ylabel("message (standardised)", fontsize=8)

    def show(row: int) -> None:
        x, y = history.fitted(row), history.standardised(row)
        for k, ax in enumerate(axes):
            points[k].set_offsets(np.column_stack([x[:, k], y[:, k]]))
            ax.set_title(f"message {history.top[row, k]}, R² = {history.r2_force[row, k]:.3f}", fontsize=9)
        fig.suptitle(f"{title}\nstep {history.step[row]}" if title else f"step {history.step[row]}", fontsize=9)

    show(last)                      # lay out once, on the final frame's labels, then keep that layout
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frames.gif"
        writer = PillowWriter(fps=FRAMES_PER_SECOND)
        with writer.saving(fig, str(out), dpi=DPI):
            for row in rows:
                show(row)
                writer.grab_frame()
        atomic_write_bytes(path, out.read_bytes())
    return Path(path)
