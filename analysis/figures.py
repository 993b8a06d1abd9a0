"""Figures of one run: PNG files, each written atomically by `nbody.io.save_figure`.

In:  a `Run` (see `analysis.runs`); each plot function also takes plain arrays, so a notebook
     can call it directly. Read (the distill files through `distill.schema`):
       distill.json            top_components, r2_force, r2_accel, component_std, edge[], node[]
       messages.npz            messages [E, k], fitted_force and fitted_accel [E, dim]
       predictions.npz         true, network, symbolic [G, n, dim] (layout version 2 on)
       pareto_*.csv            each selected equation's front (its `front_file`)
       data/{split}_states.npy [S, T, n, 2*dim+2] (pos, vel, q, m)
Out: message_fit.png (paper Fig. 3: each significant message component vs the linear
     combination of true forces, and of accelerations, fitted to it), sparsity.png (sorted
     message stds), trajectories.png (`nbody.plot.plot_trajectories`), predictions.png
     (network and symbolic vs truth), and pareto_edge_{k}.png / pareto_node_{axis}.png (loss
     vs complexity, log y). The plots made here use matplotlib's object API (no pyplot).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from distill.schema import FrontRow, read_front
from nbody.config import SPLIT_NAMES
from nbody.errors import InputError
from nbody.io import save_figure

from .runs import Run

MAX_POINTS = 5000  # scatter plots subsample to this many points (deterministically)


def _subsample(n: int) -> np.ndarray:
    """Evenly spaced indices, at most MAX_POINTS of range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(int)) if n else np.zeros(0, int)


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std()
    return (x - x.mean()) / (std if std > 0 else 1.0)


def plot_message_fit(messages: np.ndarray, top_components: np.ndarray, fits: dict[str, np.ndarray],
                     path: str | os.PathLike, r2: dict[str, list] | None = None) -> Path:
    """Scatter each significant message component against its fitted combination of true forces.

    One row per target (e.g. "force" and "acceleration", as the reproduction's Fig. 7), one
    column per significant component (the paper's Fig. 3 grid).

    Args:
        messages: [E, msg_dim] recorded edge messages.
        top_components: [d] indices of the most significant components.
        fits: {target name: [E, d] affine combination of that target fitted to each top
            component, in standardised message units}.
        path: output PNG.
        r2: optional {target name: [d] R² per component}, shown in the panel titles.
    Returns:
        The written path.
    """
    top = np.asarray(top_components, dtype=int).ravel()
    if top.size == 0 or not fits:
        raise InputError("no significant message components or fits to plot")
    idx = _subsample(len(messages))
    fig = Figure(figsize=(3.2 * len(top), 3.2 * len(fits)))
    for row, (target, fitted) in enumerate(fits.items()):
        fitted = np.asarray(fitted, dtype=float).reshape(len(fitted), -1)  # [E, d]
        target_r2 = (r2 or {}).get(target) or []
        for k, comp in enumerate(top):
            ax = fig.add_subplot(len(fits), len(top), row * len(top) + k + 1)
            y = _standardise(np.asarray(messages[:, comp], dtype=float))[idx]
            x = fitted[idx, k]
            ax.scatter(x, y, s=2, alpha=0.3, color="tab:blue", rasterized=True)
            lo, hi = np.nanpercentile(np.concatenate([x, y]), [1, 99]) if len(x) else (-1.0, 1.0)
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            title = f"message {comp}"
            if k < len(target_r2) and target_r2[k] is not None:
                title += f", R² = {float(target_r2[k]):.3f}"
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(f"linear combination of true {target}", fontsize=8)
            if k == 0:
                ax.set_ylabel("message (standardised)", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_sparsity(component_std: np.ndarray, path: str | os.PathLike, d: int | None = None,
                  n_show: int = 15) -> Path:
    """Sorted message standard deviations as bars (log scale) over the demo's grey strip.

    Args:
        component_std: [msg_dim] std of each message component over the recorded edges.
        path: output PNG.
        d: number of significant components to highlight (the problem's dimension).
        n_show: how many of the largest stds to show.
    Returns:
        The written path.
    """
    raw = np.abs(np.asarray(component_std, dtype=float).ravel())
    order = np.argsort(raw)[::-1]
    std = raw[order]
    shown = std[:n_show]
    share = std[:d].sum() / std.sum() if d and std.sum() > 0 else None
    fig = Figure(figsize=(6, 3.6))
    ax, strip = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4, 1]})
    colors = ["tab:red" if d and i < d else "tab:gray" for i in range(len(shown))]
    ax.bar(np.arange(len(shown)), np.maximum(shown, 1e-12), color=colors)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(shown)), [str(i) for i in order[:len(shown)]], fontsize=7)
    ax.set_xlabel("message component", fontsize=8)
    ax.set_ylabel("message std")
    title = f"top {len(shown)} of {len(std)} message components"
    if share is not None:
        title += f"; top {d} hold {share:.1%} of the total std"
    ax.set_title(title, fontsize=9)
    strip.pcolormesh(shown[None, :] / (shown.max() if shown.size and shown.max() > 0 else 1.0),
                     cmap="gray_r", vmin=0, vmax=1)
    strip.set_yticks([])
    strip.set_xticks([])
    return save_figure(fig, path)


def plot_predictions(true: np.ndarray, path: str | os.PathLike, network: np.ndarray | None = None,
                     symbolic: np.ndarray | None = None) -> Path:
    """Predicted vs true acceleration per axis, for the network and the symbolic model.

    Args:
        true: [G, n, dim] true accelerations.
        path: output PNG.
        network: [G, n, dim] network predictions, or None.
        symbolic: [G, n, dim] symbolic-model predictions, or None.
    Returns:
        The written path.
    """
    true = np.asarray(true, dtype=float)
    dim = true.shape[-1]
    flat = true.reshape(-1, dim)
    idx = _subsample(len(flat))
    fig = Figure(figsize=(3.4 * dim, 3.4))
    for a in range(dim):
        ax = fig.add_subplot(1, dim, a + 1)
        for label, pred, color in (("network", network, "tab:blue"), ("symbolic", symbolic, "tab:orange")):
            if pred is not None:
                p = np.asarray(pred, dtype=float).reshape(-1, dim)
                ax.scatter(flat[idx, a], p[idx, a], s=2, alpha=0.4, color=color, label=label, rasterized=True)
        lo, hi = np.nanpercentile(flat[idx, a], [1, 99]) if len(idx) else (-1.0, 1.0)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"true a_{'xyz'[a]}")
        if a == 0:
            ax.set_ylabel("predicted")
            ax.legend(fontsize=8, markerscale=4)
    return save_figure(fig, path)


def plot_pareto(rows: list[FrontRow], path: str | os.PathLike, title: str = "") -> Path:
    """Loss vs complexity of one distillation's Pareto front, log y, selected point marked.

    Args:
        rows: `distill.schema.read_front` rows.
        path: output PNG.
        title: panel title.
    Returns:
        The written path.
    """
    c = np.array([r.complexity for r in rows], dtype=float)
    loss = np.array([r.loss for r in rows], dtype=float)
    fig = Figure(figsize=(5, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.step(c, np.maximum(loss, 1e-30), where="post", color="tab:gray", lw=0.8)
    ax.scatter(c, np.maximum(loss, 1e-30), s=14, color="tab:blue")
    chosen = [r for r in rows if r.selected]
    if chosen:
        ax.scatter([chosen[0].complexity], [max(chosen[0].loss, 1e-30)], s=120, marker="*", color="tab:red",
                   zorder=3, label=f"selected: {chosen[0].equation}"[:80])
        ax.legend(fontsize=7, loc="best")
    ax.set_yscale("log")
    ax.set_xlabel("complexity")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def make_figures(run: Run, out_dir: str | os.PathLike) -> list[Path]:
    """Make every figure the run's files allow; stages not run yet are skipped.

    Args:
        run: a loaded run.
        out_dir: destination folder (created if needed).
    Returns:
        Paths of the PNGs written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    split = next((s for s in reversed(SPLIT_NAMES) if (run.data_dir / f"{s}_states.npy").is_file()), None)
    if split is not None:
        from nbody.plot import plot_trajectories
        states = np.load(run.data_dir / f"{split}_states.npy", mmap_mode="r")
        made.append(plot_trajectories(states, run.dim, out_dir / "trajectories.png", title=f"{run.name}: {split}"))
    result = run.distill
    if result is None:
        return made
    msgs = run.messages
    fits = {"force": msgs.fitted_force, "acceleration": msgs.fitted_accel}
    made.append(plot_message_fit(msgs.messages, np.array(result.top_components), fits, out_dir / "message_fit.png",
                                 r2={"force": result.r2_force, "acceleration": result.r2_accel}))
    made.append(plot_sparsity(np.array(result.component_std, dtype=float), out_dir / "sparsity.png", d=run.dim))
    preds = run.predictions
    if preds is not None:
        made.append(plot_predictions(preds.true, out_dir / "predictions.png", network=preds.network,
                                     symbolic=preds.symbolic))
    for entry in result.edge + result.node:
        stem = Path(entry.front_file).stem
        made.append(plot_pareto(read_front(run.distill_dir / entry.front_file), out_dir / f"{stem}.png",
                                title=f"{run.name}: {stem}"))
    return made
