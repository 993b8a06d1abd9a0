"""Trajectory figure for a dataset: a quick visual check that the physics looks right.

In:  states [S, T, n, 2*dim+2] (any float dtype; layout from `nbody.state`), a title.
Out: a `Figure` (`trajectories_figure`) with one panel per system showing each particle's x-y
     path (start marked), or that figure as a PNG written atomically (`plot_trajectories`,
     the dataset's quick look: no tick labels and no layout pass, which are most of the cost
     of drawing it, ~0.1 s instead of ~0.5 s on 2 cores).
Uses matplotlib's object API (no pyplot), so it needs no display and never changes the
backend of the program that imports it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from plumbing.io import save_figure

from . import state


def trajectories_figure(states: np.ndarray, dim: int, title: str = "", max_systems: int = 4,
                        ticks: bool = True) -> Figure:
    """The x-y paths of the first `max_systems` systems.

    Args:
        states: [S, T, n, 2*dim+2] node features over time.
        dim: spatial dimension (only x and y are drawn in 3D).
        title: figure title (e.g. the law name).
        max_systems: number of panels.
        ticks: axis ticks, labels and a tight layout; without them the figure draws ~4x faster.
    """
    shown = max(1, min(max_systems, states.shape[0]))
    fig = Figure(figsize=(3.2 * shown, 3.2))
    axes = fig.subplots(1, shown, squeeze=False)
    for ax, system in zip(axes[0], states[:shown]):
        xy = np.asarray(state.pos(system, dim), dtype=np.float64)[..., :2]   # [T, n, 2]
        for i in range(xy.shape[1]):
            line, = ax.plot(xy[:, i, 0], xy[:, i, 1], lw=0.8)
            ax.plot(xy[0, i, 0], xy[0, i, 1], "o", ms=3, color=line.get_color())
        ax.set_aspect("equal", adjustable="datalim")
        if ticks:
            ax.set_xlabel("x")
            ax.set_ylabel("y")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    if ticks:
        fig.tight_layout()
    return fig


def plot_trajectories(states: np.ndarray, dim: int, path: str | Path, title: str = "",
                      max_systems: int = 4) -> Path:
    """`trajectories_figure` without ticks written to the PNG `path`; returns the path."""
    return save_figure(trajectories_figure(states, dim, title, max_systems, ticks=False), path, dpi=90, tight=False)
