"""Figures of one run: matplotlib `Figure`s, and the files `make_figures` writes from them.

In:  a `Run` (see `analysis.runs`); each `*_figure` function also takes plain arrays, so a
     notebook can call it directly. Read (distill's files through `distill.schema`, the
     message history through `gnn.history`):
       distill.json             top_components, component_std, sparsity, r2_force, r2_accel,
                                edge[], node[]
       messages.npz             messages [E, k], fitted_force and fitted_accel [E, dim]
       predictions.npz          true, network, symbolic [G, n, dim] (layout version 2 on)
       pareto_*.csv             each selected equation's front (its `front_file`)
       train/message_history.npz  the messages recorded during training (`analysis.training`)
       data/{split}_states.npy  [S, T, n, 2*dim+2] (pos, vel, q, m)
Out: `run_figures(run)` -> {file name: Figure}; `make_figures` writes them as PNGs at DPI
     (each atomically, `plumbing.io.save_figure`) plus message_evolution.gif:
       message_fit.png     paper Fig. 3: each significant message component against the
                           linear combination of true forces, and of accelerations, fitted to it
       sparsity.png        each component's share of the message variance; the top `dim`
                           shares sum to distill.json's `sparsity` (the one definition,
                           `gnn.messages.variance_shares`)
       trajectories.png    `nbody.plot.trajectories_figure`
       predictions.png     network and symbolic model against the truth
       pareto_edge_{k}.png / pareto_node_{axis}.png   loss against complexity, log y, the
                           selected equation and the final (refitted) one written out
       rollout.png         the rollouts' median position error and energy drift over time
                           (distill's rollout.npz, layout version 6 on)
       message_history.png, message_evolution.gif   training (`analysis.training`)
     Every figure's title names the run (`Run.label`: law, dim, strategy, seed); legends sit
     outside the axes, so they cover no data and no label. Object API only (no pyplot).
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from distill.report import component_label
from distill.schema import FrontRow, RolloutCurves, load_rollout, read_front
from gnn.messages import variance_shares
from nbody.config import SPLIT_NAMES
from nbody.plot import trajectories_figure
from plumbing.errors import InputError
from plumbing.io import save_figure

from .notation import write
from .runs import Run
from .training import evolution_gif, history_figure

MAX_POINTS = 5000  # scatter plots subsample to this many points (deterministically)
LOG_RANGE = 100.0  # a bar axis turns logarithmic when the shown values span more than this factor
DPI = 150         # the report shows each figure at full page width; sharp at 1100 px


def _subsample(n: int) -> np.ndarray:
    """Evenly spaced indices, at most MAX_POINTS of range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(int)) if n else np.zeros(0, int)


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std()
    return (x - x.mean()) / (std if std > 0 else 1.0)


def message_fit_figure(messages: np.ndarray, top_components: np.ndarray, fits: dict[str, np.ndarray],
                       r2: dict[str, list] | None = None, title: str = "") -> Figure:
    """Scatter each significant message component against its fitted combination of true forces.

    One row per target (e.g. "force" and "acceleration", as the reproduction's Fig. 7), one
    column per significant component (the paper's Fig. 3 grid).

    Args:
        messages: [E, msg_dim] recorded edge messages.
        top_components: [d] indices of the most significant components.
        fits: {target name: [E, d] affine combination of that target fitted to each top
            component, in standardised message units}.
        r2: optional {target name: [d] R² per component}, shown in the panel titles.
        title: figure title (the run).
    """
    top = np.asarray(top_components, dtype=int).ravel()
    if top.size == 0 or not fits:
        raise InputError("no significant message components or fits to plot")
    idx = _subsample(len(messages))
    fig = Figure(figsize=(3.2 * len(top), 3.2 * len(fits) + 0.4), layout="constrained")
    for row, (target, fitted) in enumerate(fits.items()):
        fitted = np.asarray(fitted, dtype=float).reshape(len(fitted), -1)  # [E, d]
        target_r2 = (r2 or {}).get(target) or []
        for k, comp in enumerate(top):
            ax = fig.add_subplot(len(fits), len(top), row * len(top) + k + 1)
            y = _standardise(np.asarray(messages[:, comp], dtype=float))[idx]
            x = fitted[idx, k]
            ax.scatter(x, y, s=2, alpha=0.3, color="tab:blue", rasterized=True)
            lo, hi = np.nanpercentile(np.concatenate([x, y]), [1, 99]) if len(x) else (-1.0, 1.0)
            if not hi > lo:   # a constant message and fit (a dead component): a unit window around it
                lo, hi = lo - 1.0, lo + 1.0
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            panel = f"message {comp}"
            if k < len(target_r2) and target_r2[k] is not None:
                panel += f", R² = {float(target_r2[k]):.3f}"
            ax.set_title(panel, fontsize=9)
            ax.set_xlabel(f"linear combination of true {target}", fontsize=8)
            if k == 0:
                ax.set_ylabel("message (standardised)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def sparsity_figure(component_std: np.ndarray, top_components: np.ndarray, title: str = "",
                    n_show: int = 15) -> Figure:
    """Each message component's share of the total message variance, largest first.

    The shares of the top components (red) sum to the run's sparsity, as distill.json
    reports it. The axis is linear unless the shown shares span more than LOG_RANGE; with
    more components than bars, a strip below shows all of them (the demo's picture).

    Args:
        component_std: [k] std of each message component over the recorded edges.
        top_components: [d] the significant components (distill.json `top_components`).
        title: figure title (the run).
        n_show: how many of the largest shares to draw as bars.
    """
    shares = variance_shares(np.abs(np.asarray(component_std, dtype=float).ravel()))
    top = {int(k) for k in np.asarray(top_components).ravel()}
    order = np.argsort(-shares, kind="stable")
    shown = shares[order[:n_show]]
    strip = len(shares) > n_show
    fig = Figure(figsize=(6, 3.8 if strip else 3.2), layout="constrained")
    if strip:
        ax, ax_strip = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4, 1]})
    else:
        ax = fig.add_subplot(1, 1, 1)
    colors = ["tab:red" if k in top else "tab:gray" for k in order[:n_show]]
    ax.bar(np.arange(len(shown)), shown, color=colors)
    positive = shown[shown > 0]
    if positive.size and positive.max() / positive.min() > LOG_RANGE:
        ax.set_yscale("log")
        ax.set_ylim(bottom=positive.min() / 2)
    else:
        ax.set_ylim(0, max(float(shown.max(initial=0.0)), 1e-12) * 1.1)
    ax.set_xticks(np.arange(len(shown)), [str(k) for k in order[:n_show]], fontsize=7)
    ax.set_xlabel("message component", fontsize=8)
    ax.set_ylabel("share of message variance", fontsize=8)
    heading = (f"top {len(top)} of {len(shares)} components hold {shares[sorted(top)].sum():.1%} "
               "of the message variance (sparsity)")
    ax.set_title(heading, fontsize=9)
    if strip:
        ax_strip.pcolormesh(shares[order][None, :] / max(float(shares.max()), 1e-300), cmap="gray_r", vmin=0, vmax=1)
        ax_strip.set_yticks([])
        ax_strip.set_xticks([])
        ax_strip.set_xlabel(f"all {len(shares)} components, same order (darker: larger share)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def predictions_figure(true: np.ndarray, network: np.ndarray | None = None, symbolic: np.ndarray | None = None,
                       title: str = "") -> Figure:
    """Predicted against true acceleration per axis, for the network and the symbolic model.

    Args:
        true: [G, n, dim] true accelerations.
        network: [G, n, dim] network predictions, or None.
        symbolic: [G, n, dim] symbolic-model predictions, or None.
        title: figure title (the run).
    """
    true = np.asarray(true, dtype=float)
    dim = true.shape[-1]
    flat = true.reshape(-1, dim)
    idx = _subsample(len(flat))
    fig = Figure(figsize=(3.4 * dim, 3.9), layout="constrained")
    for a in range(dim):
        ax = fig.add_subplot(1, dim, a + 1)
        for label, pred, color in (("network", network, "tab:blue"), ("symbolic", symbolic, "tab:orange")):
            if pred is not None:
                p = np.asarray(pred, dtype=float).reshape(-1, dim)
                ax.scatter(flat[idx, a], p[idx, a], s=2, alpha=0.4, color=color, label=label if a == 0 else None,
                           rasterized=True)
        lo, hi = np.nanpercentile(flat[idx, a], [1, 99]) if len(idx) else (-1.0, 1.0)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"true a_{'xyz'[a]}")
        if a == 0:
            ax.set_ylabel("predicted")
    if network is not None or symbolic is not None:
        fig.legend(loc="outside lower center", ncols=2, fontsize=8, markerscale=4)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def pareto_figure(rows: list[FrontRow], title: str = "", final: str | None = None) -> Figure:
    """Loss against complexity of one distillation's Pareto front, log y, selected point marked,
    its equation (and the final one, when the refit changed it) below, as a person writes them.

    Args:
        rows: `distill.schema.read_front` rows.
        title: figure title (the run and the fit).
        final: the final equation as sympy text (`Equation.equation`: constants refitted).
    """
    c = np.array([r.complexity for r in rows], dtype=float)
    loss = np.array([r.loss for r in rows], dtype=float)
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.step(c, np.maximum(loss, 1e-30), where="post", color="tab:gray", lw=0.8)
    ax.scatter(c, np.maximum(loss, 1e-30), s=14, color="tab:blue")
    chosen = [r for r in rows if r.selected]
    if chosen:
        shown = write(chosen[0].equation).text
        text = f"selected: {shown}" if final is None or write(final).text == shown else \
            f"selected: {shown}; final, constants refitted: {write(final).text}"
        label = "\n".join(textwrap.wrap(text, 110, max_lines=4, placeholder=" …"))
        ax.scatter([chosen[0].complexity], [max(chosen[0].loss, 1e-30)], s=120, marker="*", color="tab:red",
                   zorder=3, label=label)
        fig.legend(loc="outside lower center", fontsize=7, frameon=False)
    ax.set_yscale("log")
    ax.set_xlabel("complexity")
    ax.set_ylabel("loss (MAE)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


ROLLOUT_LINES = (("symbolic", "discovered law", "tab:red"), ("network", "network (Verlet)", "tab:blue"),
                 ("stepper", "true law (Verlet)", "tab:gray"))


def rollout_figure(curves: RolloutCurves, train_horizon: float | None = None, title: str = "") -> Figure:
    """The rollouts against the true law: median position error over time, and (where the law
    has a potential) the median relative change of its energy, log y.

    Args:
        curves: `distill.schema.RolloutCurves`.
        train_horizon: length of the training trajectories, marked on the time axis.
        title: figure title (the run).
    """
    energy = not np.all(np.isnan(curves.energy_true))
    fig = Figure(figsize=(9 if energy else 5, 3.6), layout="constrained")
    panels = [("err", "median |x - x_true|")] + ([("energy", "median |E(t) - E(0)| / |E(0)|")] if energy else [])
    for i, (kind, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        lines = ROLLOUT_LINES + ((("true", "true law (integrator)", "black"),) if kind == "energy" else ())
        for name, text, color in lines:
            y = getattr(curves, f"{kind}_{name}")
            if not np.all(np.isnan(y)):
                ax.plot(curves.t[1:], np.clip(y[1:], 1e-16, 1e16), color=color, lw=1.2, label=text)
        if train_horizon:
            ax.axvline(train_horizon, color="k", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("time")
        ax.set_ylabel(label)
    handles, names = fig.axes[-1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=4, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _trajectory_split(run: Run) -> str | None:
    """The last split of SPLIT_NAMES whose states the run's data folder holds."""
    return next((s for s in reversed(SPLIT_NAMES) if (run.data_dir / f"{s}_states.npy").is_file()), None)


def run_figures(run: Run) -> dict[str, Figure]:
    """Every PNG figure the run's files allow, by file name; stages not run yet are skipped.

    Args:
        run: a loaded run.
    Returns:
        {"trajectories.png": Figure, "message_history.png": ..., "message_fit.png": ...,
        "sparsity.png", "predictions.png", "pareto_*.png"}, each titled with `run.label`.
    """
    figures: dict[str, Figure] = {}
    split = _trajectory_split(run)
    if split is not None:
        states = np.load(run.data_dir / f"{split}_states.npy", mmap_mode="r")
        figures["trajectories.png"] = trajectories_figure(states, run.dim, title=f"{run.label}: {split} trajectories")
    if run.history is not None:
        figures["message_history.png"] = history_figure(run.history, title=run.label)
    result = run.distill
    if result is None:
        return figures
    if not result.energy:  # a Hamiltonian run has no message vectors (messages.npz)
        msgs = run.messages
        fits = {"force": msgs.fitted_force, "acceleration": msgs.fitted_accel}
        figures["message_fit.png"] = message_fit_figure(
            msgs.messages, np.array(result.top_components), fits,
            r2={"force": result.r2_force, "acceleration": result.r2_accel}, title=run.label)
        figures["sparsity.png"] = sparsity_figure(np.array(result.component_std, dtype=float),
                                                  np.array(result.top_components), title=run.label)
    preds = run.predictions
    if preds is not None:
        figures["predictions.png"] = predictions_figure(preds.true, network=preds.network, symbolic=preds.symbolic,
                                                        title=run.label)
    curves = load_rollout(run.distill_dir)
    if curves is not None:
        figures["rollout.png"] = rollout_figure(curves, result.rollout.train_horizon if result.rollout else None,
                                                title=f"{run.label}: rollouts against the true law")
    for entry in result.edge + result.node + result.energy:
        fit = (f"edge φ{entry.rank} ({component_label(result, entry)})" if entry in result.edge
               else f"H_{entry.part}" if entry in result.energy else f"node a_{entry.output}")
        figures[f"{Path(entry.front_file).stem}.png"] = pareto_figure(
            read_front(run.distill_dir / entry.front_file), title=f"{run.label}: Pareto front of {fit}",
            final=entry.equation)
    return figures


def make_figures(run: Run, out_dir: str | os.PathLike) -> list[Path]:
    """Write every figure of `run_figures` as a PNG, and message_evolution.gif when the run
    has a message history.

    Args:
        run: a loaded run.
        out_dir: destination folder (created if needed).
    Returns:
        Paths of the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = [save_figure(fig, out_dir / name, dpi=DPI) for name, fig in run_figures(run).items()]
    if run.history is not None:
        made.append(evolution_gif(run.history, out_dir / "message_evolution.gif", title=run.label))
    return made
