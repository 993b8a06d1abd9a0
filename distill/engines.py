"""Symbolic-regression (SR) engines behind one interface, and their registry.

In:  X [N, d] float64, y [N], column names, a `DistillConfig`.
Out: the engine's whole Pareto front as `Candidate`s (sympy expression, PySR-style
     complexity, MAE on (X, y)), so selection, refit and judgement are engine-independent.

An SR engine is a callable `fit(X, y, names, cfg) -> list[Candidate]`. Built-in: "operon"
(pyoperon, embedded) and "pysr" (optional, needs Julia); `register_engine` adds more.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nbody.errors import InputError

from .candidate import Candidate
from .config import DistillConfig

Engine = Callable[[np.ndarray, np.ndarray, Sequence[str], DistillConfig], list[Candidate]]

_ENGINES: dict[str, Engine] = {}


def register_engine(name: str, fit: Engine) -> None:
    """Make `fit` available as SR engine `name`."""
    _ENGINES[name] = fit


def get_engine(name: str) -> Engine:
    """The SR engine called `name`; InputError listing the known ones otherwise."""
    try:
        return _ENGINES[name]
    except KeyError:
        raise InputError(f"unknown SR engine {name!r}; known: {', '.join(sorted(_ENGINES))}") from None


def fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], cfg: DistillConfig) -> list[Candidate]:
    """Run the configured SR engine on one target.

    Args:
        X: inputs [N, d]; y: target [N]; names: d column names (valid Python identifiers).
        cfg: budget, operators, seed and SR engine name.
    Returns:
        candidate equations (the engine's Pareto front / hall of fame).
    Raises:
        InputError: unknown SR engine, engine unavailable, or non-finite data.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape != (y.shape[0], len(names)):
        raise InputError(f"SR data shapes disagree: X {X.shape}, y {y.shape}, {len(names)} names")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise InputError("SR data contain inf or nan")
    return get_engine(cfg.sr_engine)(X, y, names, cfg)


def _register_builtins() -> None:
    from . import operon, pysr_engine

    register_engine("operon", operon.fit)
    register_engine("pysr", pysr_engine.fit)


_register_builtins()
