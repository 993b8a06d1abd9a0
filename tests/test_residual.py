"""The residual search (`distill.residual`): when it runs, what it finds on a residual, how a
sum found on one axis reaches the composed model, and that a search on a planted run that
falls short leaves a readable, complete distillation and its summary row."""
import numpy as np
import pytest
import sympy as sp

from _distill_helpers import SMALL_SR, distill_planted, spring_data
from analysis.runs import Run
from analysis.summary import summary_rows
from distill import DistillConfig, load_result
from distill.candidate import Candidate, complexity, mae, symbols_for
from distill.fitting import FitResult
from distill.pipeline import RESIDUAL_SCRATCH
from distill.residual import GAIN, best_on_truth, needs_search, residual_forms, with_residuals
from plumbing.errors import InputError

SEARCH = DistillConfig(population_size=200, generations=20, n_threads=2, seed=0)


def test_search_runs_only_where_the_composed_model_falls_short_of_the_network():
    assert not needs_search(0.001, 1.0, 1e-6, 10.0)            # 1000x below the network
    assert needs_search(0.2, 1.0, 1e-6, 10.0)                  # only 5x below
    assert needs_search(None, 1.0, 1e-6, 10.0) and needs_search(float("nan"), 1.0, 1e-6, 10.0)
    assert not needs_search(1e-7, 1e-9, 1e-6, 10.0)            # an exact network: the floor is the bar
    assert not needs_search(5.0, 1.0, 1e-6, 0.0)               # 0 turns it off
    with pytest.raises(InputError, match="residual_gain"):
        DistillConfig(residual_gain=-1.0)


def _fit_of(expr: sp.Expr, X: np.ndarray, y: np.ndarray, names: list[str]) -> FitResult:
    """A FitResult whose front and final equation are `expr` (a search that found only it)."""
    c = Candidate(expr, complexity(expr), mae(expr, X, y, names))
    return FitResult([c], [0.0], 0, c, False, 0.0)


def test_the_term_a_search_missed_is_found_on_its_residual_and_selected():
    rng = np.random.default_rng(0)
    names = ["a", "b"]
    X = rng.uniform(0.5, 2.0, size=(400, 2))
    y = 3.0 * X[:, 0] + 0.3 / X[:, 1] ** 2          # the second term is a tenth of the first
    a = sp.Symbol("a")
    partial = _fit_of(3.0 * a, X, y, names)
    sums = residual_forms(partial, X, y, names, SEARCH)
    best = min(sums, key=lambda c: c.loss)
    assert best.loss < 1e-3 * partial.final.loss, best
    fits, offered, changed = with_residuals([partial], X, y[:, None], names, SEARCH, None)
    assert "b" in {s.name for s in fits[0].final.expr.free_symbols}
    assert fits[0].final.loss < 1e-3 * partial.final.loss
    assert offered[0] == sums and changed == (f"edge 1: {3.0 * a} -> {fits[0].final.expr}",)


def test_a_sum_that_adds_nothing_is_not_selected():
    rng = np.random.default_rng(1)
    names = ["a", "b"]
    X = rng.uniform(0.5, 2.0, size=(400, 2))
    a = sp.Symbol("a")
    y = 3.0 * X[:, 0]
    fits, _, changed = with_residuals([_fit_of(3.0 * a, X, y, names)], X, y[:, None], names, SEARCH, None)
    assert changed == () and fits[0].final.expr == 3.0 * a


def test_a_search_on_a_planted_run_that_falls_short_is_recorded_and_leaves_no_scratch(tmp_path):
    # SMALL_SR's budget does not find the planted law (composed model ~1.7 against an exact
    # network), so the search runs; the planted run of test_distill_pipeline finds it and has none.
    result = distill_planted(SMALL_SR, tmp_path, train_graphs=200, test_graphs=100)
    record = result.residual_search
    assert record is not None and record.network_train < 1e-9 and record.composed_train > 1e-3
    assert record.kept == (record.searched_train < GAIN * record.composed_train)
    assert result.composed.train_after == (record.searched_train if record.kept else record.composed_train)
    assert all(old != new for old, new in (c.split(": ", 1)[1].split(" -> ") for c in record.edge_changes))
    assert not (tmp_path / RESIDUAL_SCRATCH).exists()
    assert load_result(tmp_path) == result
    assert (tmp_path / "rollout.npz").exists() and (tmp_path / "predictions.npz").exists()
    row = summary_rows([Run(tmp_path.parent, "spring", 2, "planted", 0, None, result, {})])[0]
    assert row["residual_search"] == ("kept" if record.kept else "not kept")


def test_a_sum_found_on_one_axis_is_tried_on_every_axis_of_the_composed_model():
    data = spring_data(train_graphs=200, test_graphs=20)
    dx, dy, r, rs, m1, e1, e2 = symbols_for(["dx", "dy", "r", "rs", "m1", "e1", "e2"])
    partial = [-2.0 * dx * rs / r, -2.0 * dy * rs / r]           # spring's force without its + 2·dx/r
    nodes = [e1 / m1, e2 / m1]
    found = -1.9 * dy * rs / r + 2.1 * dy / r                    # the missing term, found on axis y only
    sums = [[], [Candidate(found, complexity(found), 0.0)]]
    edges, choice = best_on_truth(partial, nodes, sums, True, data, SEARCH)
    assert choice is not None and "every axis" in choice, choice
    assert edges[0].has(dx) and not edges[0].has(dy) and edges[1].has(dy) and len(edges[0].args) == 2
    alone, choice_alone = best_on_truth(partial, nodes, sums, False, data, SEARCH)   # unaligned: component 2 only
    assert alone[0] == partial[0] and alone[1] == found and choice_alone is not None
    assert best_on_truth(partial, nodes, [[], []], True, data, SEARCH) == (partial, None)
    same = [[], [Candidate(partial[1], complexity(partial[1]), 0.0)]]         # a "sum" that adds nothing
    assert best_on_truth(partial, nodes, same, True, data, SEARCH) == (partial, None)
