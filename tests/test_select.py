"""Candidates, Pareto front, the paper's "score" rule vs PySR's "best", cleaning and refit."""
import math

import numpy as np
import pytest
import sympy as sp

from distill.candidate import Candidate, clean, complexity, mae, parse
from distill.refit import refit_constants
from distill.select import heldout_loss, pareto_front, scores, select

NAMES = ["dx", "dy", "r", "m1", "m2", "q1", "q2"]


def cand(c, loss, text="dx"):
    return Candidate(sp.Symbol(text), c, loss)


# complexity, loss: the "score" jump is at 5 (log 100 / 2); "best" must stay within 1.5x of
# the minimum loss (0.0135), so it takes 7 (largest score among 7, 9, 11).
FRONT = [cand(1, 10.0, "c1"), cand(3, 5.0, "c3"), cand(5, 0.05, "c5"), cand(7, 0.012, "c7"),
         cand(9, 0.0095, "c9"), cand(11, 0.009, "c11")]


def test_pareto_front_drops_dominated_and_keeps_best_per_complexity():
    noisy = FRONT + [cand(5, 0.5, "worse5"), cand(6, 0.06, "dominated"), cand(13, float("inf"), "inf")]
    front = pareto_front(list(reversed(noisy)), np.array([-100.0, 100.0]))   # constant: MAE 100
    assert [c.complexity for c in front] == [1, 3, 5, 7, 9, 11]
    assert front[0].expr == sp.Symbol("c1") and front[2].expr == sp.Symbol("c5")


def test_the_front_starts_at_the_best_constant_so_the_simplest_law_can_win():
    # An SR front like a node fit's: the linear law at 5, a cubic correction at 11.
    sr = [cand(5, 0.0291, "linear"), cand(11, 0.0236, "cubic")]
    y = np.array([-2.0, -1.0, 0.5, 1.0, 3.0])
    front = pareto_front(sr, y)
    assert front[0].complexity == 1 and float(front[0].expr) == 0.5
    assert front[0].loss == pytest.approx(np.mean(np.abs(y - 0.5)))
    assert front[select(front, "score")].expr == sp.Symbol("linear")
    assert sr[select(sr, "score")].expr == sp.Symbol("cubic")        # without the constant


def test_scores_are_minus_dlog_loss_over_dcomplexity():
    s = scores(FRONT)
    assert s[0] == 0.0
    assert s[2] == pytest.approx(-math.log(0.05 / 5.0) / 2)
    assert s[4] == pytest.approx(-math.log(0.0095 / 0.012) / 2)


def test_score_rule_takes_the_largest_relative_drop():
    assert FRONT[select(FRONT, "score")].complexity == 5


def test_best_rule_caps_loss_at_1p5_times_minimum():
    assert FRONT[select(FRONT, "best")].complexity == 7
    assert FRONT[select(FRONT, "best", best_loss_factor=10.0)].complexity == 5


def test_complexity_counts_like_pysr():
    assert complexity(parse("dx", NAMES)) == 1
    assert complexity(parse("0.5*dx", NAMES)) == 3
    assert complexity(parse("dx - dy", NAMES)) == 3
    assert complexity(parse("(dx + 1)/r", NAMES)) == 5
    assert complexity(parse("m2*dx/r**3", NAMES)) == 9
    assert complexity(parse("(0.7*dx - 0.3*dy)*(r - 1)/r", NAMES)) == 13


def test_clean_chops_negligible_intercept_and_keeps_values():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 7))
    raw = parse("1e-9 + 1.0000001*(0.5*dx*(1 + dy) - 0.5*dx)", NAMES)
    y = 0.5 * X[:, 0] * X[:, 1]
    cleaned = clean(raw, X, y, NAMES)
    assert complexity(cleaned) <= 5
    assert mae(cleaned, X, y, NAMES) < 1e-6


def test_refit_recovers_perturbed_constants():
    rng = np.random.default_rng(1)
    X = np.abs(rng.normal(size=(800, 7))) + 0.5
    truth = "(0.7*dx - 0.3*dy)*(r - 1)/r"
    y = np.array([float(v) for v in sp.lambdify(sp.symbols(NAMES, real=True), parse(truth, NAMES))(*X.T)])
    perturbed = parse("(0.6*dx - 0.4*dy)*(r - 1.2)/r", NAMES)
    refitted, loss = refit_constants(perturbed, X, y, NAMES)
    assert loss < 1e-6 < mae(perturbed, X, y, NAMES)
    assert complexity(refitted) == complexity(perturbed)


def test_refit_follows_the_typical_row_where_the_strongest_rows_saturate():
    # A network trained on relative errors gives the law on most pairs and saturates on the few
    # strongest: least squares follows those few (c -> about 0.5 here); the MAE's c is 1.
    rng = np.random.default_rng(2)
    X = np.abs(rng.normal(size=(2000, 7))) + 0.1
    force = X[:, 0] / X[:, 2] ** 2
    strongest = force > np.quantile(force, 0.97)
    y = np.where(strongest, np.quantile(force, 0.97), force)
    refitted, loss = refit_constants(parse("1.3*dx/r**2", NAMES), X, y, NAMES)
    (c,) = refitted.atoms(sp.Float)
    assert abs(float(c) - 1) < 0.01
    assert loss < mae(parse("1.0*dx/r**2", NAMES), X, y, NAMES) * 1.01


def test_refit_never_worsens_and_leaves_constant_free_expressions():
    X = np.ones((10, 7))
    expr = parse("dx*dy", NAMES)
    assert refit_constants(expr, X, np.zeros(10), NAMES)[0] == expr


def test_select_rejects_empty_front():
    from plumbing.errors import InputError
    with pytest.raises(InputError):
        select([], "score")


def test_clean_makes_sum_factors_monic_and_keeps_values():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 7))
    X[:, 2] = np.hypot(X[:, 0], X[:, 1])
    raw = parse("-0.057112 + 2816.8*(-0.053477*dx + 0.037882*dy)*(0.010352*r - 0.010248)/r", NAMES)
    y = sp.lambdify(sp.symbols(NAMES), raw)(*X.T)
    cleaned = clean(raw, X, y, NAMES)
    assert "r - 0.98995" in str(cleaned)          # the spring's (r - 1) shows as such
    assert complexity(cleaned) < complexity(raw)
    assert mae(cleaned, X, y, NAMES) < 1e-3


def _overfit_front(rng):
    """A noisy law y = 2 log(x) + noise on 40 fit rows, and a front of the constant, the
    law (its constants fitted) and a degree-15 polynomial fitted to the same 40 rows: the
    polynomial has the smallest fit loss; it wiggles between the rows."""
    names = ["x"]
    X = rng.uniform(1, 4, size=(40, 1))
    y = 2 * np.log(X[:, 0]) + 0.05 * rng.normal(size=40)
    slope, icpt = np.polyfit(np.log(X[:, 0]), y, 1)
    x = sp.Symbol("x", real=True)
    law = slope * sp.log(x) + icpt
    coeffs = np.polynomial.polynomial.polyfit(X[:, 0] - 2.5, y, 15)
    poly = sum(float(c) * (x - 2.5) ** k for k, c in enumerate(coeffs))
    cands = [Candidate(e, complexity(e), mae(e, X, y, names)) for e in (law, poly)]
    return pareto_front(cands, y), names, law, poly


def test_held_out_rules_take_the_true_form_where_fit_losses_take_an_overfitting_one():
    rng = np.random.default_rng(3)
    front, names, law, poly = _overfit_front(rng)
    assert [c.expr for c in front[1:]] == [law, poly]          # the polynomial is on the front
    X_held = rng.uniform(1, 4, size=(2000, 1))                  # new rows of the same noisy target
    y_held = 2 * np.log(X_held[:, 0]) + 0.05 * rng.normal(size=2000)
    held = [heldout_loss(c.expr, X_held, y_held, names) for c in front]
    assert held[2] > held[1]                                   # the polynomial loses on new rows
    assert front[select(front, "best", best_loss_factor=1.0)].expr == poly
    assert front[select(front, "best_heldout", best_loss_factor=1.0, heldout=held)].expr == law
    assert front[select(front, "score_heldout", heldout=held)].expr == law


def test_the_grouped_held_out_loss_ignores_one_offset_per_group():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 4, size=(300, 2))
    groups = np.repeat(np.arange(6), 50)
    x, m = sp.symbols("x m", real=True)
    y = np.log(X[:, 0]) * X[:, 1] + np.sin(groups) + 0.01 * rng.normal(size=300)
    true = sp.log(x) * m
    plain = heldout_loss(true, X, y, ["x", "m"])
    grouped = heldout_loss(true, X, y, ["x", "m"], groups)
    assert grouped < 0.02 < 0.3 < plain
    assert heldout_loss(true + 5 * m, X, y, ["x", "m"], None) > plain    # plain MAE sees the offset
    assert heldout_loss(true + 0 * m + 7, X, y, ["x", "m"], groups) == pytest.approx(grouped)
    assert heldout_loss(sp.log(x - 3), X, y, ["x", "m"], groups) == float("inf")    # nan on rows x < 3


def test_a_held_out_rule_reads_only_entries_that_beat_every_simpler_one_there():
    held = [10.0, 4.0, 6.0, 0.04, 0.03]     # FRONT[2] is worse than FRONT[1] held out: dropped
    front = FRONT[:5]
    assert front[select(front, "score_heldout", heldout=held)].complexity == 7
    with pytest.raises(Exception, match="held-out loss per front entry"):
        select(front, "best_heldout")
    with pytest.raises(Exception, match="held-out loss per front entry"):
        select(front, "best_heldout", heldout=held[:3])
    with pytest.raises(Exception, match="finite on the held-out rows"):
        select(front, "best_heldout", heldout=[float("inf")] * 5)


def test_held_out_rows_come_from_graphs_without_fit_rows_or_fail_in_one_line():
    from distill.fitting import unused_graphs
    from plumbing.errors import InputError
    assert list(unused_graphs(6, np.array([4, 0, 4, 2]))) == [1, 3, 5]
    with pytest.raises(InputError, match="none is left for held-out rows"):
        unused_graphs(3, np.array([0, 1, 2, 1]))
