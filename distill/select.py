"""Pareto front and model selection over candidate equations.

In:  candidates (any order, duplicates allowed) with complexity and loss.
Out: the Pareto front sorted by complexity (the best loss per complexity, kept only when it
     beats every simpler one), PySR's score per front entry, and the selected equation.

The front always starts at the best constant (complexity 1: the median, whose MAE is the
loss of knowing nothing), as PySR's hall of fame does. Without it the simplest equation an
SR engine returns has score 0 and the "score" rule can never select it: a node fit whose
simplest entry is the linear law c·e1 then picks the next, nonlinear, one.

Rules:
    "score" (paper §4.1, App. C; PySR model_selection="score"): maximise
        score_i = -log(loss_i / loss_{i-1}) / (c_i - c_{i-1}) over the front (score_0 = 0).
    "best" (PySR's default since v0.10): the max score among entries with
        loss <= factor * min loss (factor 1.5).
    "score_heldout", "best_heldout": the same rules on each front entry's loss on held-out
        rows, rows the SR search never saw (`heldout_loss`), over the entries that beat
        every simpler one there. A long form that fits the search rows' quirks, or a
        stand-in that only imitates the true shape where the search rows lie, loses its
        lead on new rows; the true form keeps it. Nothing but the fitted target is used.
        With groups of rows that share the particle constants (an energy, defined only up
        to a function of those constants), the held-out loss ignores one offset per group.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import sympy as sp

from plumbing.errors import InputError

from .candidate import Candidate, lambdify

# Losses are floored at this fraction of the simplest front entry's loss, so that two
# float-noise-exact fits (1e-15 vs 1e-16) do not produce a spurious huge score.
LOSS_FLOOR = 1e-10
# A rule name ending in this applies its base rule ("score", "best") to held-out losses.
HELDOUT = "_heldout"


def constant_candidate(y: np.ndarray) -> Candidate:
    """The best constant under the MAE loss: the median of y, complexity 1."""
    median = float(np.median(y))
    return Candidate(sp.Float(median), 1, float(np.mean(np.abs(y - median))))


def pareto_front(candidates: Sequence[Candidate], y: np.ndarray) -> list[Candidate]:
    """Non-dominated candidates and the best constant for target y, sorted by complexity,
    each strictly better than all simpler ones.

    Args:
        candidates: candidates; those with non-finite loss are ignored.
        y: [N] the target they were fitted to (for the constant entry).
    Returns:
        the front, sorted by increasing complexity and strictly decreasing loss.
    """
    best: dict[int, Candidate] = {}
    for c in [constant_candidate(y), *candidates]:
        if np.isfinite(c.loss) and (c.complexity not in best or c.loss < best[c.complexity].loss):
            best[c.complexity] = c
    front, current = [], float("inf")
    for cx in sorted(best):
        if best[cx].loss < current:
            front.append(best[cx])
            current = best[cx].loss
    return front


def scores(front: Sequence[Candidate]) -> list[float]:
    """PySR score -dlog(loss)/dcomplexity of each front entry against the previous one (first: 0)."""
    if not front:
        return []
    floor = LOSS_FLOOR * max(front[0].loss, np.finfo(float).tiny)
    losses = [max(c.loss, floor) for c in front]
    out = [0.0]
    for prev, cur, lp, lc in zip(front[:-1], front[1:], losses[:-1], losses[1:]):
        out.append(float(-np.log(lc / lp) / (cur.complexity - prev.complexity)))
    return out


def needs_heldout(rule: str) -> bool:
    """Whether selection rule `rule` reads held-out losses (a "_heldout" rule)."""
    return rule.endswith(HELDOUT)


def heldout_loss(expr: sp.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str],
                 groups: np.ndarray | None = None) -> float:
    """Loss of an equation on held-out rows: the MAE, or with `groups` the MAE left after
    one offset per group (each group's median residual, the offset that minimises it).

    Args:
        expr: equation over `names`; X: [N, d] held-out rows; y: [N] the target there.
        groups: [N] group label per row, or None.
    Returns:
        the loss; inf when the equation is not finite on some row.
    """
    residual = lambdify(expr, names)(X) - y
    if not np.all(np.isfinite(residual)):
        return float("inf")
    if groups is not None:
        _, inverse = np.unique(groups, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        medians = np.array([np.median(part) for part in np.split(residual[order], bounds)])
        residual = residual - medians[inverse]
    return float(np.mean(np.abs(residual)))


def select(front: Sequence[Candidate], rule: str = "score", best_loss_factor: float = 1.5,
           heldout: Sequence[float] | None = None) -> int:
    """Index of the selected entry of a Pareto front.

    Args:
        front: output of `pareto_front` (sorted by complexity).
        rule: "score" (paper), "best" (PySR default), or either + "_heldout".
        best_loss_factor: loss cap factor of the "best" rule.
        heldout: the held-out loss of each front entry (`heldout_loss`); needed by the
            "_heldout" rules, which apply their base rule to the entries whose held-out
            loss is below that of every simpler entry.
    Returns:
        index into `front`.
    Raises:
        InputError: empty front, unknown rule, or a held-out rule without one held-out loss
        per entry.
    """
    if not front:
        raise InputError("symbolic regression returned no finite equation")
    if needs_heldout(rule):
        if heldout is None or len(heldout) != len(front):
            raise InputError(f"selection {rule!r} needs one held-out loss per front entry")
        keep, current = [], float("inf")
        for i, loss in enumerate(heldout):
            if loss < current:
                keep.append(i)
                current = loss
        if not keep:
            raise InputError("no equation of the Pareto front is finite on the held-out rows")
        sub = [Candidate(front[i].expr, front[i].complexity, heldout[i]) for i in keep]
        return keep[select(sub, rule.removesuffix(HELDOUT), best_loss_factor)]
    s = scores(front)
    if rule == "score":
        allowed = range(len(front))
    elif rule == "best":
        cap = best_loss_factor * min(c.loss for c in front)
        allowed = [i for i, c in enumerate(front) if c.loss <= cap]
    else:
        raise InputError(f"unknown selection rule {rule!r}; choose score, best, score{HELDOUT} or best{HELDOUT}")
    return max(allowed, key=lambda i: s[i])
