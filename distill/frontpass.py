"""Selection on the data: each equation of the composed model offered its Pareto front again.

In:  the composed model's equations (edge equations, then node equations), one list of
     alternatives per equation (its SR Pareto front), a joint refit (equations -> (refitted
     equations, their MAE on the true accelerations of training graphs)), the current MAE and
     a label per equation.
Out: `choose_from_fronts` -> (equations, their MAE, the changes kept as "label: old -> new").

Rule: for one equation at a time, every alternative (and every deletion of one additive term
of the current equation, `simplify.deletions`) takes its place and the whole model is
refitted jointly. Two MAEs are equal when the larger is within (1 + TOL) of the smaller, or
both lie within (1 + FLOOR_TOL) of a floor (the precision of the stored constants; MAEs below
it count as the floor). The best MAE m* among the options sets the bar: when m* at least
halves the current MAE (GAIN), the least complex option equal to m* is kept; otherwise the
least complex option equal to the current MAE is kept when it is less complex than the
current equation. Sweeps over all equations repeat (at most MAX_ROUNDS) until one changes
nothing. Without the floor, a model already at float precision takes on junk terms that
halve a MAE made of rounding (spring 3D, seed 2: a term 1.1e-6·r inside a force); with a
loose TOL, a model far from the truth, whose MAE is made of what it lacks, loses its terms
one by one (qmlinear 3D, seed 1, without its Coulomb term: every equation became a constant).

Why: the selection rule reads each front against the network's outputs, errors and all: a
network that carries the force with a 3 % error of its own gets an equation that fits that
error (Newton's law as 1.04·e3/m1 - 0.047·e3/m1², a force with a factor (m1 + 0.0999)),
while a simpler candidate on the same front is the law. The true accelerations are noise-free
training data, not the answer: on them the law's form reaches float precision and a form that
chases the network's errors does not, or does so only with its extra terms refitted to zero.
"""
from __future__ import annotations

from typing import Callable, Sequence

import sympy as sp

from .candidate import complexity
from .simplify import deletions

GAIN = 0.5        # an option is better when it at least halves the current MAE
TOL = 0.02        # MAEs within (1 + TOL) of each other are equal (Occam's tolerance, `simplify`)
FLOOR_TOL = 0.5   # ... and so are MAEs within (1 + FLOOR_TOL) of the floor (5-digit constants)
MAX_ROUNDS = 2    # sweeps over all equations
_CONSTANT = sp.Symbol("_c")   # every float constant of an equation, in its form (`_form`)


def choose_from_fronts(exprs: Sequence[sp.Expr], fronts: Sequence[Sequence[sp.Expr]],
                       refit: Callable[[list[sp.Expr]], tuple[list[sp.Expr], float]], mae: float,
                       labels: Sequence[str], floor: float = 0.0) -> tuple[list[sp.Expr], float, tuple[str, ...]]:
    """The pass of the module docstring.

    Args:
        exprs: the model's equations; fronts[i]: the alternatives of exprs[i] (any order,
            one of the current form is skipped); labels[i]: its name in the record.
        refit: equations -> (them with every constant refitted jointly, their MAE).
        mae: the MAE of exprs.
        floor: MAEs below it count as equal to it.
    Returns:
        (equations, MAE, the changes kept, "label: old -> new").
    """
    exprs, kept = list(exprs), []
    mae = mae if mae == mae else float("inf")
    for _ in range(MAX_ROUNDS):
        changed = False
        for i in range(len(exprs)):
            options = []
            current = _form(exprs[i])
            for alternative in dict.fromkeys([*fronts[i], *deletions(exprs[i])]):
                if _form(alternative) == current:
                    continue
                fitted, after = refit(exprs[:i] + [alternative] + exprs[i + 1:])
                options.append((complexity(alternative), after, fitted))
            choice = _choose(options, complexity(exprs[i]), mae, floor)
            if choice is not None:
                kept.append(f"{labels[i]}: {exprs[i]} -> {choice[2][i]}")
                mae, exprs, changed = choice[1], choice[2], True
        if not changed:
            break
    return exprs, mae, tuple(kept)


def _form(expr: sp.Expr) -> sp.Expr:
    """expr with every float constant written as one symbol: equal for equations that differ
    only in their constants' values."""
    return expr.xreplace({c: _CONSTANT for c in expr.atoms(sp.Float)})


def _choose(options: list[tuple[int, float, list[sp.Expr]]], size: int, mae: float, floor: float):
    """The option (complexity, MAE, equations) the rule keeps, or None for the current one."""
    finite = [(o, max(o[1], floor)) for o in options if o[1] == o[1] and o[1] < float("inf")]
    if not finite:
        return None
    mae = max(mae, floor)

    def equal(m: float, ref: float) -> bool:
        return m <= (1 + TOL) * ref or m <= (1 + FLOOR_TOL) * floor
    best = min(m for _, m in finite)
    if best <= GAIN * mae:
        return min((o for o, m in finite if equal(m, best)), key=lambda o: (o[0], o[1]))
    simpler = [o for o, m in finite if equal(m, mae) and o[0] < size]
    return min(simpler, key=lambda o: (o[0], o[1])) if simpler else None
