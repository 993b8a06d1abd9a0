"""One symbolic-regression target end to end, and the helpers every distillation shares.

In:  fit rows X [N, d], a target y [N] and its column names, a `DistillConfig`, optionally
     held-out rows (`Holdout`) for the "_heldout" selection rules.
Out: `fit_target` -> `FitResult`: the SR engine's Pareto front, the selected equation, and
     the final one after Occam's pass (`simplify`) and the constant refit (`refit`);
     `with_forms`: the same with more candidate forms merged into the front, when one is picked;
     `build_replacing` writes a distillation folder atomically; `numpy_callable` wraps a
     torch function for NumPy callers (the GNN and Hamiltonian distillations, halos).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plumbing.errors import InputError
from plumbing.io import replace_dir, temp_dir_beside
from plumbing.rundir import check_ours

from . import sr_engines
from .candidate import Candidate, complexity
from .config import DistillConfig
from .refit import refit_constants
from .select import heldout_loss, pareto_front, scores, select
from .simplify import simplify


@dataclass(frozen=True)
class Holdout:
    """Held-out rows of one SR target, which its search never sees (for the "_heldout"
    selection rules): inputs X [N, d], target y [N] (or [N, k], one column per target), and
    optionally groups [N], labels of rows that share their particle constants (the held-out
    loss then ignores one offset per group: `select.heldout_loss`)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None = None

    def column(self, j: int) -> "Holdout":
        """The held-out rows of target column j of a [N, k] y."""
        return Holdout(self.X, self.y[:, j], self.groups)


@dataclass(frozen=True)
class FitResult:
    """One SR target: its Pareto front, PySR scores, the selected index, the final
    (refitted) equation, and each front entry's held-out loss (None without held-out rows)."""

    front: list[Candidate]
    scores: list[float]
    index: int
    final: Candidate
    refitted: bool
    seconds: float
    heldout_losses: list[float] | None = None


def heldout_rng(cfg: DistillConfig) -> np.random.Generator:
    """The generator that draws held-out rows: its own stream, so drawing them leaves every
    other sample of a run unchanged."""
    return np.random.default_rng([cfg.seed, 2])


def unused_graphs(n_graphs: int, used: np.ndarray) -> np.ndarray:
    """Indices of the graphs 0..n_graphs-1 not in `used` (those fit rows came from): where
    held-out rows are drawn. InputError when none is left."""
    left = np.setdiff1d(np.arange(n_graphs), used)
    if len(left) == 0:
        raise InputError(f"all {n_graphs} training graphs hold fit rows, none is left for held-out rows; "
                         "use more graphs or a selection rule without held-out rows")
    return left


def fit_target(X: np.ndarray, y: np.ndarray, names: list[str], cfg: DistillConfig,
               heldout: Holdout | None = None, label: str | None = None) -> FitResult:
    """SR on one target, Pareto front, selection rule, optional constant refit.

    Args:
        X: [N, d] inputs; y: [N] target; names: column names; cfg: the stage config.
        heldout: rows the search does not see; each front entry's loss on them
            (`select.heldout_loss`) is what a "_heldout" selection rule reads.
        label: what the SR progress bar calls this fit ("edge 1/2"; `sr_engines.progress`).
    Returns:
        FitResult (final = the selected equation, refitted on (X, y) when cfg.refit and it
        helps; seconds = wall time of search, selection and refit).
    """
    start = time.perf_counter()
    with sr_engines.progress(label=label):
        front = pareto_front(sr_engines.fit(X, y, names, cfg), y)
    return _choose(front, X, y, names, cfg, heldout, start)


def with_forms(fit: FitResult, forms: list[Candidate], X: np.ndarray, y: np.ndarray, names: list[str],
               cfg: DistillConfig, heldout: Holdout | None = None) -> FitResult | None:
    """`fit` with more candidates (their losses on (X, y)) merged into its Pareto front and the
    selection rule applied again; when it picks one of `forms`, Occam's pass and the refit follow.

    Returns:
        the new FitResult (seconds: the fit's and this step's), or None when the rule picks
        none of `forms` (`fit` stands as it is; nothing more is computed).
    """
    start = time.perf_counter() - fit.seconds
    front = pareto_front([*fit.front, *forms], y)
    index, losses = _selected(front, names, cfg, heldout)
    if not any(front[index] is form for form in forms):
        return None
    return _finished(front, index, losses, X, y, names, cfg, start)


def _choose(front: list[Candidate], X: np.ndarray, y: np.ndarray, names: list[str], cfg: DistillConfig,
            heldout: Holdout | None, start: float) -> FitResult:
    """Selection rule, Occam's pass and refit on a Pareto front (`fit_target`'s last steps)."""
    return _finished(front, *_selected(front, names, cfg, heldout), X, y, names, cfg, start)


def _selected(front: list[Candidate], names: list[str], cfg: DistillConfig,
              heldout: Holdout | None) -> tuple[int, list[float] | None]:
    """(index of the entry the selection rule picks, each entry's held-out loss or None)."""
    losses = None if heldout is None else [heldout_loss(c.expr, heldout.X, heldout.y, names, heldout.groups)
                                           for c in front]
    return select(front, cfg.selection, cfg.best_loss_factor, losses), losses


def _finished(front: list[Candidate], index: int, losses: list[float] | None, X: np.ndarray, y: np.ndarray,
              names: list[str], cfg: DistillConfig, start: float) -> FitResult:
    """The FitResult of front[index] after Occam's pass and the constant refit."""
    chosen = front[index]
    final = chosen
    if cfg.simplify_tol > 0:
        expr, loss = simplify(chosen.expr, X, y, names, cfg.simplify_tol, cfg.precision)
        final = Candidate(expr, complexity(expr), loss)
    if cfg.refit:
        expr, loss = refit_constants(final.expr, X, y, names, cfg.precision)
        final = Candidate(expr, complexity(expr), loss)
    return FitResult(front, scores(front), index, final, final.expr != chosen.expr, time.perf_counter() - start,
                     losses)


def build_replacing(out_dir: str | Path, build) -> object:
    """`build(tmp)` into a temporary sibling of out_dir that replaces out_dir only when it
    succeeded: a failed or interrupted run leaves no partial folder behind. An existing
    out_dir that this project did not make is refused before anything is built, and only
    the files of an earlier distillation are ever replaced (`plumbing.io.replace_dir`)."""
    out = Path(out_dir)
    check_ours(out)
    tmp = temp_dir_beside(out)
    try:
        result = build(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def numpy_callable(fn, batch: int = 8192):
    """A torch function of float32 tensors as a NumPy one: float32 in (batched by `batch`
    rows along the first axis, no gradient recording), float64 out."""
    import torch  # deferred (heavy): fitting NumPy arrays needs no torch

    def call(*arrays: np.ndarray) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for s in range(0, len(arrays[0]), batch):
                args = [torch.as_tensor(np.asarray(a[s:s + batch], dtype=np.float32)) for a in arrays]
                outs.append(fn(*args).detach().cpu().numpy().astype(np.float64))
        return np.concatenate(outs)
    return call
