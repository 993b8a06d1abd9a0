"""pyoperon SR engine: multi-objective GP (r2 + length) with Levenberg-Marquardt constants.

In:  X [N, d], y [N], names, `DistillConfig` (operators, budget, seed, threads).
Out: Operon's Pareto front as `Candidate`s.

Settings follow docs/sr_engines.md §3: objectives ["r2", "length"] (single-objective runs bloat),
constant optimisation switched on (Operon's default is off), max_evaluations raised so the
generation budget is what stops the run, fixed random_state (deterministic for any thread
count). The "r2" objective applies linear scaling, so every model arrives as c0 + c1*(...);
`candidate.clean` folds that away.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from nbody.errors import InputError

from .candidate import Candidate, make_candidate
from .config import DistillConfig

_SYMBOLS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "exp": "exp",
            "log": "log", "sqrt": "sqrt", "square": "square"}


def allowed_symbols(operators: Sequence[str]) -> str:
    """Operon's `allowed_symbols` string for a project operator list."""
    return ",".join([_SYMBOLS[op] for op in operators] + ["constant", "variable"])


def fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], cfg: DistillConfig) -> list[Candidate]:
    """Run pyoperon once and return its whole Pareto front.

    Args:
        X: [N, d] float64; y: [N]; names: column names; cfg: operators and budget.
    Returns:
        list of candidates, cleaned and scored on (X, y).
    Raises:
        InputError: pyoperon missing (no wheel for this platform).
    """
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError as exc:
        raise InputError(f"the operon SR engine needs pyoperon>=0.6.1 ({exc}); try sr_engine='pysr'") from None
    reg = SymbolicRegressor(
        allowed_symbols=allowed_symbols(cfg.operators),
        objectives=["r2", "length"],
        optimizer="lm",
        optimizer_iterations=cfg.optimizer_iterations,
        population_size=cfg.population_size,
        generations=cfg.generations,
        max_evaluations=10**12,
        max_length=cfg.max_length,
        max_time=int(np.ceil(cfg.max_time)),
        n_threads=cfg.n_threads or os.cpu_count() or 1,
        random_state=cfg.seed,
    )
    reg.fit(X, y)
    strings = {reg.get_model_string(m["tree"], precision=8, names=list(names)) for m in reg.pareto_front_}
    return [make_candidate(s, X, y, names, cfg.precision) for s in sorted(strings)]
