"""PySR SR engine (optional): SymbolicRegression.jl through PySR, which needs a Julia runtime.

In:  X [N, d], y [N], names, `DistillConfig`.
Out: PySR's hall of fame as `Candidate`s, re-scored with the project's complexity and MAE
     so fronts from both SR engines compare.

`pysr` is imported inside `fit`: importing it at module level would start juliacall (and a
Julia download) for every user. Without Julia the import fails within a second with a
URLError or "could not find Julia" (docs/sr_engines.md §2); that becomes a one-line InputError.
"""
from __future__ import annotations

from typing import Sequence
from urllib.error import URLError

import numpy as np

from plumbing.errors import InputError

from .candidate import Candidate, make_candidate
from .config import DistillConfig
from .select import HELDOUT

_BINARY = ("+", "-", "*", "/", "^")
_HINT = "PySR engine unavailable ({}); it needs Julia (pip install pysr, then run `python -c 'import pysr'` once with internet) - or use sr_engine='operon'"


def _julia_missing(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (ImportError, URLError, OSError)) or "julia" in text


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()


def fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], cfg: DistillConfig) -> list[Candidate]:
    """Run PySR once and return its hall of fame.

    Args:
        X: [N, d]; y: [N]; names: column names; cfg: operators and budget
            (generations -> niterations, max_length -> maxsize, MAE loss as in the paper).
    Returns:
        candidates re-scored on (X, y).
    Raises:
        InputError: pysr not installed or Julia not obtainable.
    """
    try:
        from pysr import PySRRegressor
        reg = PySRRegressor(
            binary_operators=[op for op in cfg.operators if op in _BINARY],
            unary_operators=[op for op in cfg.operators if op not in _BINARY],
            niterations=cfg.generations,
            population_size=cfg.population_size,
            maxsize=cfg.max_length,
            elementwise_loss="L1DistLoss()",
            model_selection=cfg.selection.removesuffix(HELDOUT),  # its own pick is unused
            timeout_in_seconds=cfg.max_time,
            parallelism="serial",  # PySR is deterministic only when serial
            deterministic=True,
            random_state=cfg.seed,
            progress=False,
            verbosity=0,
        )
        reg.fit(X, y, variable_names=list(names))
    except Exception as exc:  # juliacall raises plain Exception / URLError / JuliaError
        if _julia_missing(exc):
            raise InputError(_HINT.format(_one_line(exc))) from None
        raise
    table = reg.equations_
    column = "sympy_format" if "sympy_format" in table.columns else "equation"
    exprs = [e if column == "sympy_format" else str(e) for e in table[column]]
    return [make_candidate(e, X, y, names, cfg.precision) for e in exprs]
