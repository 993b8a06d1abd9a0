"""pyoperon SR engine: multi-objective GP (r2 + length) with Levenberg-Marquardt constants.

In:  X [N, d], y [N], names, `DistillConfig` (operators, budget, seed, threads, early stop).
Out: Operon's Pareto front as `Candidate`s, scored on all N rows.

Settings follow docs/sr_engines.md §3: objectives ["r2", "length"] (single-objective runs bloat),
constant optimisation switched on (Operon's default is off), max_evaluations raised so the
generation budget is what stops the run, fixed random_state (deterministic for any thread
count). The "r2" objective applies linear scaling, so every model arrives as c0 + c1*(...);
`candidate.clean` folds that away.

Budget: the search sees at most `search_rows` rows (a seeded subsample; the candidates are
scored on all rows). With `stall_generations` = k > 0 it runs in rounds of k generations,
each warm-started from the last round's population (round r uses random_state seed + r*k),
and stops after a round that did not raise the front's R² at any length by more than
`stall_tol` (`front_curve`, `improved`), or at `generations` or `max_time`. pyoperon has no
stopping callback, so rounds are the way to stop it early. k = 0 is one run of `generations`.
After each round `on_round(generations run so far)` is called, if given (the progress bar of
`distill.sr_engines.fit`).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import numpy as np

from plumbing.errors import InputError

from .candidate import Candidate, make_candidate
from .config import DistillConfig

_SYMBOLS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "exp": "exp",
            "log": "log", "sqrt": "sqrt", "square": "square"}


def allowed_symbols(operators: Sequence[str]) -> str:
    """Operon's `allowed_symbols` string for a project operator list."""
    return ",".join([_SYMBOLS[op] for op in operators] + ["constant", "variable"])


def front_curve(lengths: Sequence[int], mse: Sequence[float], var: float, max_length: int) -> np.ndarray:
    """The best R² = 1 - mse/var the front reaches at each length <= L, for L = 0..max_length.

    Args:
        lengths, mse: the front's expression lengths and mean squared errors (same order).
        var: variance of the target (> 0); max_length: the longest length considered.
    Returns:
        [max_length + 1] non-decreasing curve (longer expressions count at max_length), at
        least 0 (a constant's R²).
    """
    curve = np.zeros(max_length + 1)
    for length, err in zip(lengths, mse):
        at = min(length, max_length)  # lengths include Operon's scaling terms, up to 4 over
        curve[at] = max(curve[at], 1.0 - err / var)
    return np.maximum.accumulate(curve)


def improved(best: np.ndarray, new: np.ndarray, tol: float) -> bool:
    """Whether curve `new` beats `best` by more than `tol` of R² at some length."""
    return bool(np.any(new - best > tol))


def search(X: np.ndarray, y: np.ndarray, cfg: DistillConfig, on_round: Callable[[int], None] | None = None):
    """Run pyoperon on (X, y) under `cfg`'s budget (module docstring); `on_round(done)` after
    each round of generations.

    Returns:
        (the fitted `SymbolicRegressor`, generations run).
    Raises:
        InputError: pyoperon missing (no wheel for this platform).
    """
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError as exc:
        raise InputError(f"the operon SR engine needs pyoperon>=0.6.1 ({exc}); try sr_engine='pysr'") from None
    if cfg.search_rows is not None and cfg.search_rows < len(y):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(y), cfg.search_rows, replace=False))
        X, y = X[keep], y[keep]
    round_size = cfg.stall_generations or cfg.generations
    reg = SymbolicRegressor(
        allowed_symbols=allowed_symbols(cfg.operators),
        objectives=["r2", "length"],
        optimizer="lm",
        optimizer_iterations=cfg.optimizer_iterations,
        population_size=cfg.population_size,
        max_evaluations=10**12,
        max_length=cfg.max_length,
        n_threads=cfg.n_threads or os.cpu_count() or 1,
        warm_start=True,
    )
    deadline = time.monotonic() + cfg.max_time
    var = float(np.var(y)) or 1.0
    done, best = 0, None
    while done < cfg.generations:
        left = deadline - time.monotonic()
        reg.set_params(generations=min(round_size, cfg.generations - done), random_state=cfg.seed + done,
                       max_time=max(1, int(np.ceil(left))))
        reg.fit(X, y)
        done += reg.stats_["generations"]   # fewer than asked when max_time cut the round short
        if on_round is not None:
            on_round(done)
        curve = front_curve([m["length"] for m in reg.pareto_front_],
                            [m["mean_squared_error"] for m in reg.pareto_front_], var, cfg.max_length)
        if (best is not None and not improved(best, curve, cfg.stall_tol)) or time.monotonic() >= deadline:
            break
        best = curve if best is None else np.maximum(best, curve)
    return reg, done


def fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], cfg: DistillConfig,
        on_round: Callable[[int], None] | None = None) -> list[Candidate]:
    """Run pyoperon once (`search`) and return its whole Pareto front.

    Args:
        X: [N, d] float64; y: [N]; names: column names; cfg: operators and budget.
        on_round: called with the generations run so far after each round (`search`).
    Returns:
        list of candidates, cleaned and scored on (X, y).
    Raises:
        InputError: pyoperon missing (no wheel for this platform).
    """
    reg, _ = search(X, y, cfg, on_round)
    strings = {reg.get_model_string(m["tree"], precision=8, names=list(names)) for m in reg.pareto_front_}
    return [make_candidate(s, X, y, names, cfg.precision) for s in sorted(strings)]
