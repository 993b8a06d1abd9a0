"""Symbolic-regression (SR) engines behind one interface, and their registry.

In:  X [N, d] float64, y [N], column names, a `DistillConfig` (its `sr_engine` names the engine).
Out: the SR engine's whole Pareto front as `Candidate`s (sympy expression, PySR-style
     complexity, MAE on (X, y)), so selection, refit and judgement are SR-engine-independent.

An SR engine is a callable `fit(X, y, names, cfg) -> list[Candidate]`. Built-in: "operon"
(pyoperon, embedded) and "pysr" (optional, needs Julia); `register_sr_engine` adds more.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nbody.errors import InputError

from .candidate import Candidate
from .config import DistillConfig

SREngine = Callable[[np.ndarray, np.ndarray, Sequence[str], DistillConfig], list[Candidate]]

_SR_ENGINES: dict[str, SREngine] = {}


def register_sr_engine(name: str, fit: SREngine) -> None:
    """Make `fit` available as SR engine `name`."""
    _SR_ENGINES[name] = fit


def get_sr_engine(name: str) -> SREngine:
    """The SR engine called `name`; InputError listing the known ones otherwise."""
    try:
        return _SR_ENGINES[name]
    except KeyError:
        raise InputError(f"unknown SR engine {name!r}; known: {', '.join(sorted(_SR_ENGINES))}") from None


def fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], cfg: DistillConfig) -> list[Candidate]:
    """Run the configured SR engine on one target.

    Args:
        X: inputs [N, d]; y: target [N]; names: d column names (valid Python identifiers).
        cfg: budget, operators, seed and SR engine name.
    Returns:
        candidate equations (the SR engine's Pareto front / hall of fame).
    Raises:
        InputError: unknown or unavailable SR engine, or non-finite data.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape != (y.shape[0], len(names)):
        raise InputError(f"SR data shapes disagree: X {X.shape}, y {y.shape}, {len(names)} names")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise InputError("SR data contain inf or nan")
    return get_sr_engine(cfg.sr_engine)(X, y, names, cfg)


def _register_builtins() -> None:
    from . import operon, pysr_engine

    register_sr_engine("operon", operon.fit)
    register_sr_engine("pysr", pysr_engine.fit)


_register_builtins()
