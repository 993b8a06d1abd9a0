"""Refit the numeric constants of a selected equation on its data (paper §2, §4.3).

In:  expression over named columns, data X [N, d], y [N].
Out: the same expression structure with least-squares constants, and its MAE. The refit is
     kept only when it lowers the MAE, so it can never make an equation worse.

Why: constants found during the search were fitted on the SR engine's own (scaled, float32)
objective; the reproduction that skipped this step lost to the network (its Table 8,
docs/published.md §2.9).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.optimize
import sympy as sp

from .candidate import lambdify, mae, round_floats


def refit_constants(expr: sp.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str],
                    digits: int = 5) -> tuple[sp.Expr, float]:
    """Least-squares refit of every float constant of `expr` (integers and exponents stay).

    Args:
        expr: sympy expression over `names`.
        X, y: data [N, d], [N].
        names: column names of X.
        digits: significant digits kept in the result.
    Returns:
        (expression, MAE on (X, y)) — the refitted one if it is better, else the input.
    """
    before = mae(expr, X, y, names)
    consts = sorted(expr.atoms(sp.Float), key=float)
    if not consts:
        return expr, before
    params = sp.symbols(f"_c0:{len(consts)}")
    template = expr.xreplace(dict(zip(consts, params)))
    param_names = [p.name for p in params]
    f = lambdify(template, list(names) + param_names)
    n = X.shape[0]

    def residual(theta: np.ndarray) -> np.ndarray:
        res = f(np.hstack([X, np.broadcast_to(theta, (n, len(theta)))])) - y
        return np.where(np.isfinite(res), res, 1e10)

    try:
        fit = scipy.optimize.least_squares(residual, np.array([float(c) for c in consts]), method="trf")
    except (ValueError, FloatingPointError):
        return expr, before
    refitted = round_floats(template.xreplace({p: sp.Float(v) for p, v in zip(params, fit.x)}), digits)
    after = mae(refitted, X, y, names)
    return (refitted, after) if after < before else (expr, before)
