"""Occam's pass (`distill.simplify`): the law in disguise comes out as the law; a term that
carries signal stays."""
from __future__ import annotations

import numpy as np
import sympy as sp

from distill.candidate import complexity, parse
from distill.config import DistillConfig
from distill.judge import judge_node
from distill.simplify import deletions, simplify

NAMES = ["e1", "e2", "m1", "q1", "vx1", "vy1"]


def _node_rows(seed: int, n: int = 4000):
    rng = np.random.default_rng(seed)
    e1, e2 = 3 * rng.normal(size=(2, n))
    m1 = np.exp(rng.normal(size=n))
    X = np.stack([e1, e2, m1, rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)], axis=1)
    y = 0.9 * (e1 - 0.6 * e2 + 0.149) / m1 + 0.01 * rng.normal(size=n)     # a network's output: not exact
    return X, y


def test_newtons_law_in_disguise_becomes_newtons_law():
    """The node equation seen on an AVX512 machine (issue 28): 1732·m1 dwarfs e2 in the
    denominator, so the equation is not linear in ē and the judge refuses it."""
    X, y = _node_rows(0)
    disguised = parse("0.0003091 - 1563.3*(e1 - 0.60279*e2 + 0.14904)/(e2 - 1732.2*m1)", NAMES)
    agg = X[:, :2]
    judge = DistillConfig().judge
    assert not judge_node(disguised, NAMES, X, agg, complexity(disguised), judge, y).success
    out, loss = simplify(disguised, X, y, NAMES)
    m1, e1, e2 = sp.Symbol("m1", real=True), sp.Symbol("e1", real=True), sp.Symbol("e2", real=True)
    assert sp.simplify(sp.diff(out * m1, m1)) == 0, out          # (linear in ē) / m1
    assert complexity(out) < complexity(disguised)
    coeffs = sp.Poly(sp.expand(out * m1), e1, e2)
    assert abs(float(coeffs.coeff_monomial(e1)) - 0.9) < 0.01
    assert abs(float(coeffs.coeff_monomial(e2)) / float(coeffs.coeff_monomial(e1)) + 0.6) < 0.01
    assert judge_node(out, NAMES, X, agg, complexity(out), judge, y).success


def test_a_term_that_carries_signal_is_kept():
    X, y = _node_rows(1)
    right = parse("0.9*(e1 - 0.6*e2 + 0.149)/m1", NAMES)
    out, _ = simplify(right, X, y, NAMES)
    assert {s.name for s in out.free_symbols} == {"e1", "e2", "m1"}, out
    assert complexity(out) == complexity(right)


def test_deletions_remove_one_term_of_any_sum():
    expr = parse("(e1 + e2)/(m1 + 2*q1)", NAMES)
    got = {str(e) for e in deletions(expr)}
    assert got == {str(parse(t, NAMES)) for t in ("e2/(m1 + 2*q1)", "e1/(m1 + 2*q1)", "(e1 + e2)/m1",
                                                   "(e1 + e2)/(2*q1)")}
