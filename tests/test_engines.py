"""SR engines: pyoperon recovers planted edge and node laws on a small budget (and the judge
accepts them); the PySR adapter maps settings and output with a mocked `pysr`, and turns a
missing pysr/Julia into a one-line InputError."""
import dataclasses
import sys
import types
from urllib.error import URLError

import numpy as np
import pandas as pd
import pytest
import sympy as sp

from _distill_helpers import states
from distill import operon, sr_engines, sr_registry
from distill.candidate import lambdify
from distill.config import DistillConfig
from distill.fitting import fit_target
from distill.judge import judge_edge, judge_node
from distill.messages import edge_input_names, edge_inputs
from gnn.messages import pair_targets, sample_edges
from distill.operon import allowed_symbols, front_curve, improved
from distill.symbolic import node_input_names
from nbody.laws import get_law
from plumbing.errors import InputError

SMALL = DistillConfig(population_size=400, generations=40, n_threads=2, seed=0)
SPRING = get_law("spring")


def planted_spring_component(X):
    dx, dy, r = X[:, 0], X[:, 1], X[:, 2]
    rp = r + 0.01
    return 0.7 * dx * (rp - 1) / r - 0.3 * dy * (rp - 1) / r


def spring_edges(seed, count):
    x, _ = states(SPRING, 2, 4, 400, seed=seed)
    s = sample_edges(x, SPRING, count, np.random.default_rng(seed), min_r=0.5)
    return edge_inputs(s.x_recv, s.x_send, 2, 0.01), pair_targets(SPRING, s.x_recv, s.x_send, 2, 0.01)


def test_operon_recovers_planted_spring_component_and_judge_accepts():
    X, _ = spring_edges(0, 1500)
    names = edge_input_names(2)
    fit = fit_target(X, planted_spring_component(X), names, SMALL)
    assert fit.final.loss < 1e-3
    assert fit.final.complexity <= 20
    assert fit.final.expr.free_symbols == set(sp.symbols("dx dy r", real=True))
    X_fresh, (force, _) = spring_edges(1, 3000)
    j = judge_edge(fit.final.expr, names, X_fresh, force, fit.final.complexity, SMALL.judge,
                   fitted=planted_spring_component(X_fresh))
    assert j.success and j.target == "force", j
    assert fit.front[fit.index].complexity <= fit.front[-1].complexity
    assert all(a.loss > b.loss for a, b in zip(fit.front, fit.front[1:]))


def node_rows(seed, count):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(count, 2)) * 2.0
    m = np.exp(rng.normal(size=count))
    X = np.column_stack([e, m, rng.normal(size=(count, 3))])   # e1, e2, m1, q1, vx1, vy1
    return X, e, m, (0.2 * e[:, 0] - 0.5 * e[:, 1] + 0.03) / m


def test_operon_recovers_planted_node_law_and_judge_accepts():
    names = node_input_names(2, 2)
    X, _, _, y = node_rows(0, 1000)
    fit = fit_target(X, y, names, SMALL)
    assert fit.final.expr.free_symbols == set(sp.symbols("e1 e2 m1", real=True))
    Xf, e, m, yf = node_rows(1, 2000)
    j = judge_node(fit.final.expr, names, Xf, e, fit.final.complexity, SMALL.judge, fitted=yf)
    assert j.success and j.target == "force", j
    np.testing.assert_allclose(lambdify(fit.final.expr, names)(Xf), yf, atol=1e-3)


def test_operon_is_deterministic_for_a_seed():
    X, _, _, y = node_rows(2, 300)
    cfg = DistillConfig(population_size=100, generations=10, n_threads=2, seed=3)
    a = sr_engines.fit(X, y, node_input_names(2, 2), cfg)
    b = sr_engines.fit(X, y, node_input_names(2, 2), cfg)
    assert [str(c.expr) for c in a] == [str(c.expr) for c in b]


def test_front_curve_is_the_best_r2_up_to_each_length_and_improvement_needs_more_than_tol():
    curve = front_curve([3, 7, 5, 40], [0.5, 0.01, 0.2, 0.001], var=1.0, max_length=10)
    np.testing.assert_allclose(curve, [0, 0, 0, 0.5, 0.5, 0.8, 0.8, 0.99, 0.99, 0.99, 0.999])
    assert not improved(curve, curve, 1e-4)
    assert not improved(curve, front_curve([3, 7, 5, 40], [0.5, 0.00995, 0.2, 0.001], 1.0, 10), 1e-4)
    assert improved(curve, front_curve([4], [0.3], 1.0, 10), 1e-4)   # better at length 4 only
    assert improved(curve, front_curve([40], [0.0005], 1.0, 10), 1e-4)  # longer than max_length: counted there


def test_operon_early_stop_ends_a_stalled_search_deterministically():
    X, _, _, y = node_rows(3, 400)
    cfg = DistillConfig(population_size=60, generations=60, n_threads=2, seed=1, stall_generations=3)
    (reg_a, ran_a), (_, ran_b) = operon.search(X, y, cfg), operon.search(X, y, cfg)
    assert ran_a == ran_b and ran_a % 3 == 0 and 6 <= ran_a < 60    # an easy law stalls long before 60
    _, ran_all = operon.search(X, y, dataclasses.replace(cfg, stall_generations=0, generations=7))
    assert ran_all == 7
    _, ran_no_gain = operon.search(X, y, dataclasses.replace(cfg, generations=10**6, stall_tol=1.0))
    assert ran_no_gain == 6           # stall_tol 1 never sees an improvement: stops after round 2
    _, ran_timed = operon.search(X, y, dataclasses.replace(cfg, generations=10**6, stall_generations=10**5,
                                                           max_time=1.0))
    assert 1 <= ran_timed < 10**5     # max_time cuts the one long round short
    best = min(m["mean_squared_error"] for m in reg_a.pareto_front_)
    assert best < 1e-6 * np.var(y)


def test_operon_searches_a_row_subsample_but_scores_on_all_rows(monkeypatch):
    from pyoperon.sklearn import SymbolicRegressor
    X, _, _, y = node_rows(4, 600)
    names = node_input_names(2, 2)
    cfg = DistillConfig(population_size=40, generations=4, n_threads=2, seed=0, search_rows=50)
    seen, real_fit = [], SymbolicRegressor.fit

    def spy(self, X_, y_):
        seen.append(len(y_))
        return real_fit(self, X_, y_)

    monkeypatch.setattr(SymbolicRegressor, "fit", spy)
    candidates = sr_engines.fit(X, y, names, cfg)
    assert seen == [50]
    for c in candidates:
        assert c.loss == pytest.approx(np.mean(np.abs(lambdify(c.expr, names)(X) - y)), rel=1e-6)


def test_allowed_symbols_follow_the_operator_config():
    assert allowed_symbols(("+", "-", "*", "/")) == "add,sub,mul,div,constant,variable"
    assert allowed_symbols(("+", "*", "exp")) == "add,mul,exp,constant,variable"


def test_every_registered_engine_is_accepted_by_the_config(monkeypatch):
    monkeypatch.setattr(sr_registry._SR_ENGINES, "_entries", dict(sr_registry._SR_ENGINES._entries))
    sr_registry.register_sr_engine("planted", lambda X, y, names, cfg: [])
    sr_registry._register_module("absent", "distill.no_such_engine")
    assert sr_registry.sr_engine_names()[:2] == ("operon", "pysr") and DistillConfig().sr_engine == "operon"
    for name in sr_registry.sr_engine_names():
        assert DistillConfig(sr_engine=name).sr_engine == name
    assert sr_engines.fit(np.ones((3, 1)), np.ones(3), ["a"], DistillConfig(sr_engine="planted")) == []
    with pytest.raises(InputError, match="SR engine 'absent' is unavailable: ModuleNotFoundError") as info:
        sr_engines.fit(np.ones((3, 1)), np.ones(3), ["a"], DistillConfig(sr_engine="absent"))
    assert "\n" not in str(info.value)


def test_unknown_engine_and_operator_are_input_errors():
    with pytest.raises(InputError, match="unknown SR engine"):
        DistillConfig(sr_engine="eureqa")
    with pytest.raises(InputError, match="unknown SR engine"):
        sr_registry.get_sr_engine("eureqa")
    with pytest.raises(InputError, match="operators"):
        DistillConfig(operators=("+", "IF"))


def test_nonfinite_data_are_rejected():
    X = np.ones((5, 2))
    with pytest.raises(InputError):
        sr_engines.fit(X, np.array([1, 2, np.nan, 4, 5.0]), ["a", "b"], SMALL)


class FakePySR:
    """Stands in for pysr.PySRRegressor: records its settings, returns a fixed hall of fame."""

    last = None

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        FakePySR.last = self

    def fit(self, X, y, variable_names=None):
        self.variable_names = variable_names
        self.equations_ = pd.DataFrame({
            "complexity": [1, 3, 5],
            "loss": [1.0, 0.5, 0.0],
            "equation": ["e1", "0.2*e1", "(0.2*e1 - 0.5*e2 + 0.03)/m1"],
        })
        return self


@pytest.fixture
def fake_pysr(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysr", types.SimpleNamespace(PySRRegressor=FakePySR))


def test_pysr_adapter_maps_settings_and_parses_hall_of_fame(fake_pysr):
    cfg = DistillConfig(sr_engine="pysr", operators=("+", "-", "*", "/", "exp"), generations=7,
                        population_size=33, max_length=21, selection="best", seed=4)
    names = node_input_names(2, 2)
    X, _, _, y = node_rows(3, 200)
    cands = sr_engines.fit(X, y, names, cfg)
    kw = FakePySR.last.kwargs
    assert kw["binary_operators"] == ["+", "-", "*", "/"] and kw["unary_operators"] == ["exp"]
    assert (kw["niterations"], kw["population_size"], kw["maxsize"]) == (7, 33, 21)
    assert kw["model_selection"] == "best" and kw["random_state"] == 4 and kw["deterministic"]
    assert "L1" in kw["elementwise_loss"]
    assert FakePySR.last.variable_names == names
    best = min(cands, key=lambda c: c.loss)
    assert best.loss < 1e-9
    assert best.expr.free_symbols == set(sp.symbols("e1 e2 m1", real=True))


@pytest.mark.parametrize("error", [
    URLError("[Errno -2] Name or service not known"),
    Exception("could not find Julia 1.10.3 - 1.11"),
])
def test_pysr_without_julia_is_a_one_line_input_error(monkeypatch, error):
    class Broken(FakePySR):
        def fit(self, *args, **kwargs):
            raise error

    monkeypatch.setitem(sys.modules, "pysr", types.SimpleNamespace(PySRRegressor=Broken))
    with pytest.raises(InputError, match="Julia") as info:
        sr_engines.fit(np.ones((3, 1)), np.ones(3), ["a"], DistillConfig(sr_engine="pysr"))
    assert "\n" not in str(info.value)


def test_pysr_not_installed_is_a_one_line_input_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysr", None)   # makes `import pysr` raise ImportError
    with pytest.raises(InputError, match="PySR engine unavailable") as info:
        sr_engines.fit(np.ones((3, 1)), np.ones(3), ["a"], DistillConfig(sr_engine="pysr"))
    assert "\n" not in str(info.value)


def test_pysr_unrelated_errors_are_not_hidden(monkeypatch):
    class Broken(FakePySR):
        def fit(self, *args, **kwargs):
            raise ZeroDivisionError("bug")

    monkeypatch.setitem(sys.modules, "pysr", types.SimpleNamespace(PySRRegressor=Broken))
    with pytest.raises(ZeroDivisionError):
        sr_engines.fit(np.ones((3, 1)), np.ones(3), ["a"], DistillConfig(sr_engine="pysr"))
