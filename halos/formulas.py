"""The paper's formula shapes for a halo's overdensity δ (paper §4.3, Table 2; docs/facts.md §7),
evaluated on a graph's edges, and their constants refit by least squares.

In:  `HaloInputs`: per edge (receiver index, distance r, sender mass Mj, relative speed
     |vi - vj|) and per receiver (mass Mi, speed |vi|), in whatever units the caller chose
     (the pipeline uses the network's standardised units, `halos.features`); constants θ.
Out: δ̂ [n] per receiver; `refit` -> (θ, mean |δ - δ̂|).

    constant         δ̂ = C1
    simple           δ̂ = C1 + (C2 + Mi C3) ei,          ei = Σ_{r < radius} Mj   (hand-designed)
    best_no_mass     δ̂ = C1 + ei / (C2 + C3 ei |vi|),    ei = Σ (C4 + |vi - vj|) / (C5 + |C6 r|^C7)
    best_with_mass   δ̂ = C1 + ei / (C2 + C3 Mi),         ei = Σ (C4 + Mj) / (C5 + |C6 r|^C7)

The paper's constants (PAPER) are in its standardised units: r in units of the position std
of the 1000 Mpc/h box (1000/√12), so C6 = 15.5, C7 = 20.3 put the step of the pair term at
~20 Mpc/h, the top-hat radius δ was smoothed with. The synthetic catalogue plants
best_with_mass with these constants (`halos.synthetic`); this module is its one definition.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.optimize

from plumbing.errors import InputError

PAPER_POSITION_STD = 1000.0 / np.sqrt(12.0)   # std of a uniform position in the 1000 Mpc/h box
HAND_RADIUS = 20.0                           # Mpc/h, the hand-designed formula's sum radius

# Published constants (README images/dark_matter.png; docs/facts.md §7) and mean |δ - δ̂|.
PAPER = {
    "constant": ((0.415,), 0.421),
    "simple": ((-0.0376, 0.0529, 0.000927), 0.121),
    "best_no_mass": ((-0.199, 1.31, 0.027, 1.54, 50.165, 18.94, 13.21), 0.120),
    "best_with_mass": ((-0.156, 3.80, 0.0809, 0.438, 7.06, 15.5, 20.3), 0.0882),
}
LABELS = {
    "constant": "C1",
    "simple": "C1 + (C2 + Mi C3) ei, ei = Σ_{r<20} Mj",
    "best_no_mass": "C1 + ei/(C2 + C3 ei |vi|), ei = Σ (C4 + |vi-vj|)/(C5 + (C6 r)^C7)",
    "best_with_mass": "C1 + ei/(C2 + C3 Mi), ei = Σ (C4 + Mj)/(C5 + (C6 r)^C7)",
}


@dataclass(frozen=True, eq=False)
class HaloInputs:
    """What the formulas read. Edges [E]: recv (index into the n receivers), r, m_send, dv;
    receivers [n]: mass, speed; hand_radius: the simple formula's radius in the units of r."""

    recv: np.ndarray
    r: np.ndarray
    m_send: np.ndarray
    dv: np.ndarray
    mass: np.ndarray
    speed: np.ndarray
    hand_radius: float

    @property
    def n(self) -> int:
        return len(self.mass)

    def sum_edges(self, values: np.ndarray) -> np.ndarray:
        """Σ over each receiver's edges of per-edge `values` [E] -> [n]."""
        return np.bincount(self.recv, weights=values, minlength=self.n)


def pair_term(c4: float, c5: float, c6: float, c7: float, r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C4 + x) / (C5 + |C6 r|^C7): the pair term of the best formulas (x = Mj or |vi - vj|)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return (c4 + x) / (c5 + np.abs(c6 * r) ** c7)


def constant(theta, inp: HaloInputs) -> np.ndarray:
    return np.full(inp.n, theta[0], dtype=np.float64)


def simple(theta, inp: HaloInputs) -> np.ndarray:
    e = inp.sum_edges(np.where(inp.r < inp.hand_radius, inp.m_send, 0.0))
    return theta[0] + (theta[1] + inp.mass * theta[2]) * e


def best_no_mass(theta, inp: HaloInputs) -> np.ndarray:
    e = inp.sum_edges(pair_term(*theta[3:7], inp.r, inp.dv))
    with np.errstate(divide="ignore", invalid="ignore"):
        return theta[0] + e / (theta[1] + theta[2] * e * inp.speed)


def best_with_mass(theta, inp: HaloInputs) -> np.ndarray:
    e = inp.sum_edges(pair_term(*theta[3:7], inp.r, inp.m_send))
    with np.errstate(divide="ignore", invalid="ignore"):
        return theta[0] + e / (theta[1] + theta[2] * inp.mass)


FORMULAS: dict[str, Callable[[np.ndarray, HaloInputs], np.ndarray]] = {
    "constant": constant, "simple": simple, "best_no_mass": best_no_mass, "best_with_mass": best_with_mass}


def refit(fn: Callable[[np.ndarray, HaloInputs], np.ndarray], inp: HaloInputs, delta: np.ndarray,
          start) -> tuple[np.ndarray, float]:
    """Least-squares constants of `fn` on (inp, δ) from `start`; returns (θ, mean |δ - δ̂|).

    Non-finite predictions count as a residual of 1e6, so the search stays where the
    formula is defined.
    """
    def residual(theta):
        res = fn(theta, inp) - delta
        return np.where(np.isfinite(res), res, 1e6)

    try:
        theta = scipy.optimize.least_squares(residual, np.asarray(start, dtype=np.float64), method="trf",
                                             x_scale="jac", max_nfev=400).x
    except ValueError as exc:
        raise InputError(f"formula refit failed: {exc}") from None
    return theta, mean_abs_error(fn(theta, inp), delta)


def mean_abs_error(pred: np.ndarray, delta: np.ndarray) -> float:
    """mean |δ - δ̂| (inf when a prediction is not finite)."""
    err = np.abs(pred - delta)
    return float(err.mean()) if np.all(np.isfinite(err)) else float("inf")
