"""Candidate equations: sympy expressions with an SR-engine-independent complexity and loss.

In:  expressions (sympy or infix strings) over named input columns, data X [N, d], y [N].
Out: `Candidate(expr, complexity, loss)`; `complexity` counts operators, constants and
     variables once each (PySR style) on the sympy tree, so Operon and PySR fronts are
     compared on the same scale; loss is the MAE on the fit data (paper App. C).

Cleaning (`clean`) makes SR engine output readable without changing its values: rounding to
a few significant digits, dropping additive terms that contribute nothing on the data,
and choosing the least complex of a few algebraically equal sympy forms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from nbody.expr import parse_text
from plumbing.errors import InputError

# Additive terms whose RMS contribution on the data is below this fraction of std(y) are
# dropped by `clean` (e.g. Operon's linear-scaling intercept 1e-7).
CHOP_FRACTION = 1e-4


@dataclass(frozen=True)
class Candidate:
    """One equation of a Pareto front: sympy expression, complexity, MAE on the fit data."""

    expr: sp.Expr
    complexity: int
    loss: float


def symbols_for(names: Sequence[str]) -> list[sp.Symbol]:
    """Real sympy symbols for the input column names (the same objects everywhere)."""
    return [sp.Symbol(n, real=True) for n in names]


def parse(text: str | sp.Expr, names: Sequence[str]) -> sp.Expr:
    """Parse an SR engine's infix string (or re-bind a sympy expression) onto our symbols.

    Args:
        text: infix string ("0.5*dx/r") or sympy expression.
        names: allowed variable names.
    Returns:
        sympy expression over `symbols_for(names)`.
    Raises:
        InputError: unparsable text or unknown variable names.
    """
    table = {s.name: s for s in symbols_for(names)}
    try:
        expr = sp.sympify(text, locals=dict(table)) if isinstance(text, str) else sp.sympify(text)
    except (sp.SympifyError, SyntaxError, TypeError) as exc:
        raise InputError(f"equation {text!r} does not parse: {exc}") from None
    expr = expr.xreplace({s: table[s.name] for s in expr.free_symbols if s.name in table})
    unknown = {s.name for s in expr.free_symbols} - set(table)
    if unknown:
        raise InputError(f"equation {text!r} uses unknown variables {sorted(unknown)}")
    return expr


def parse_untrusted(text: str, names: Sequence[str]) -> sp.Expr:
    """An equation read from a file (distill.json) onto our symbols, through the whitelist
    parser of law expressions (`nbody.expr.parse_text`: never `eval` or `sympify`).

    Raises:
        InputError: text outside the whitelist or with names other than `names`.
    """
    if not isinstance(text, str):
        raise InputError(f"an equation must be text, got {type(text).__name__}")
    return parse_text(text, "equation", {s.name: s for s in symbols_for(names)})


def linear_in(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> bool:
    """Whether `expr` is linear in `symbols` jointly: every second derivative in them is 0
    (a node equation in the summed messages: forces superpose)."""
    return all(sp.diff(expr, a, b) == 0 for i, a in enumerate(symbols) for b in symbols[i:])


def complexity(expr: sp.Expr) -> int:
    """PySR-style size of an expression built from binary operators.

    Every variable, constant and operator counts 1: `a + b + c` has two additions,
    `x**3` is `x*x*x` (5), `1/x` is a division (3 with the 1), a coefficient -1 is a
    subtraction (free), other functions cost 1 plus their arguments.

    Args:
        expr: sympy expression.
    Returns:
        integer complexity >= 1.
    """
    if expr.is_Symbol or expr.is_Number:
        return 1
    if expr.is_Add:
        return sum(complexity(t) for t in expr.args) + len(expr.args) - 1
    if expr.is_Mul:
        return _mul_complexity(expr)
    if expr.is_Pow:
        base, exp = expr.args
        if exp.is_Integer and exp > 0:
            return complexity(base) * int(exp) + int(exp) - 1
        if exp.is_Integer and exp < 0:
            return 2 + complexity(base ** -exp)
        return complexity(base) + complexity(exp) + 1
    return 1 + sum(complexity(a) for a in expr.args)


def _mul_complexity(expr: sp.Expr) -> int:
    coeff, factors = expr.as_coeff_mul()
    numer = [f for f in factors if not _is_reciprocal(f)]
    denom = [f.base ** -f.exp for f in factors if _is_reciprocal(f)]
    # A coefficient of +-1 is written as nothing or as a subtraction, not as a constant.
    n_numer = len(numer) + (0 if abs(coeff) == 1 else 1)
    cost = sum(complexity(f) for f in numer) + (0 if abs(coeff) == 1 else 1)
    if n_numer == 0:
        cost, n_numer = 1, 1
    cost += n_numer - 1
    if denom:
        cost += sum(complexity(d) for d in denom) + len(denom) - 1 + 1
    return cost


def _is_reciprocal(f: sp.Expr) -> bool:
    return f.is_Pow and f.exp.is_Number and f.exp < 0


def lambdify(expr: sp.Expr, names: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised evaluator of `expr` on X [N, len(names)] -> [N] float64 (inf/nan kept)."""
    syms = symbols_for(names)
    raw = sp.lambdify(syms, expr, modules="numpy")

    def evaluate(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(all="ignore"):
            out = raw(*(X[:, i] for i in range(X.shape[1])))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (X.shape[0],)).copy()

    return evaluate


def mae(expr: sp.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str],
        scale: np.ndarray | float = 1.0) -> float:
    """Mean absolute error of `scale` x `expr` against y on (X, y), scale a number or one per
    row (default 1); inf when it is not finite somewhere."""
    err = np.abs(scale * lambdify(expr, names)(X) - y)
    return float(err.mean()) if np.all(np.isfinite(err)) else float("inf")


def round_floats(expr: sp.Expr, digits: int) -> sp.Expr:
    """Round every float constant to `digits` significant digits; whole numbers become integers."""
    table = {}
    for c in expr.atoms(sp.Float):
        value = float(f"{float(c):.{digits}g}")
        table[c] = sp.Integer(int(value)) if value == int(value) and abs(value) < 1e6 else sp.Float(value, digits)
    return expr.xreplace(table)


def _monic_product(term: sp.Expr) -> sp.Expr:
    """c * (a x + b y) * (d r - e) / r  ->  (c d a x + c d b y) * (r - e/d) / r.

    Each sum factor is scaled so its first variable term has coefficient 1, and the
    collected scale goes into a sum factor without a constant term (a linear combination
    of variables) when there is one. Same value, fewer and more telling constants.
    """
    coeff, factors = term.as_coeff_mul()
    new = []
    for factor in factors:
        base, power = factor.as_base_exp()
        if base.is_Add and power.is_Integer:
            lead = next((t.as_coeff_Mul()[0] for t in base.as_ordered_terms() if not t.is_Number), None)
            if lead is not None and lead != 0:
                base = sp.expand(base / lead)
                coeff *= lead ** power
        new.append((base, power))
    target = next((i for i, (b, p) in enumerate(new) if p == 1 and b.is_Add
                   and not any(t.is_Number for t in b.args)), None)
    if target is not None:
        new[target] = (sp.expand(coeff * new[target][0]), 1)
        coeff = sp.Integer(1)
    return coeff * sp.Mul(*(b ** p for b, p in new))


def monic_factors(expr: sp.Expr) -> sp.Expr:
    """`_monic_product` applied to a product or to each product of a sum."""
    if expr.is_Add:
        return sp.Add(*(_monic_product(t) if t.is_Mul else t for t in expr.args))
    return _monic_product(expr) if expr.is_Mul else expr


def clean(expr: sp.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str], digits: int = 5) -> sp.Expr:
    """Readable, value-preserving form of an SR engine's expression.

    Rounds constants to `digits` significant digits, drops top-level additive terms whose
    RMS contribution on X is below CHOP_FRACTION * std(y), and returns the least complex
    of the raw, cancelled, factored, together-ed and monic-factor forms (only the raw and
    monic-factor forms when a power has a non-integer exponent).

    Args:
        expr: expression over `names`.
        X, y: the fit data [N, d], [N] (scales the chop).
        names: column names of X.
        digits: significant digits kept.
    Returns:
        cleaned sympy expression.
    """
    expr = round_floats(sp.sympify(expr), digits)
    scale = float(np.std(y)) or 1.0
    if expr.is_Add:
        kept = [t for t in expr.args
                if np.sqrt(np.mean(lambdify(t, names)(X) ** 2)) >= CHOP_FRACTION * scale]
        expr = sp.Add(*kept) if kept else sp.Integer(0)
    forms = [expr]
    # cancel / factor / together are polynomial algorithms: on powers with symbolic or float
    # exponents (the "^" operator, e.g. 0.13^((4.8 r)^6.2)) sympy's factor can run for hours.
    rational = all(p.exp.is_Integer for p in expr.atoms(sp.Pow))
    for transform in (sp.cancel, sp.factor, sp.together, monic_factors) if rational else (monic_factors,):
        try:
            forms.append(round_floats(transform(expr), digits))
        except (sp.PolynomialError, TypeError, ValueError):
            continue  # sympy cannot put some float expressions into that form
    return min(forms, key=complexity)


def make_candidate(expr: sp.Expr | str, X: np.ndarray, y: np.ndarray, names: Sequence[str],
                   digits: int = 5) -> Candidate:
    """Parse, clean and score one expression on its fit data.

    Args:
        expr: sympy expression or infix string over `names`.
        X, y: fit data [N, d], [N].
        names: column names of X.
        digits: significant digits kept.
    Returns:
        Candidate with PySR-style complexity and MAE loss.
    """
    cleaned = clean(parse(expr, names), X, y, names, digits)
    return Candidate(cleaned, complexity(cleaned), mae(cleaned, X, y, names))
