"""End to end: a planted model (exact affine force messages, sum/m node) is distilled, judged a
success and written out in the `distill.schema` layout; a real (untrained) GNN goes through the
torch wrapper; bad inputs are one-line InputErrors."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp
import torch

from _distill_helpers import SPRING, distill_planted, spring_data, states
from distill import DistillConfig, distill_checkpoint, distill_model, load_result, summary_lines
from distill.candidate import Candidate, lambdify, parse
from distill.messages import edge_input_names
from distill.pipeline import network_from_model
from distill.schema import SCHEMA_VERSION, load_messages, load_predictions, read_front
from distill.select import select
from distill.symbolic import forward, node_input_names
from gnn.config import ModelConfig
from gnn.model import GNN
from plumbing.errors import InputError
from plumbing.io import config_from_dict

FAST = dict(population_size=300, generations=30, n_threads=2, n_edges=1500, n_nodes=1000,
            n_eval_graphs=200, n_ood_graphs=100)
PLANTED = DistillConfig(**FAST, selection="best", node_selection="score")


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted")
    return distill_planted(PLANTED, out), out


def test_planted_spring_is_rediscovered(planted_run):
    result, _ = planted_run
    assert result.edge_success and result.node_success, result.edge + result.node
    assert all(e.judgement.target == "force" for e in result.edge)
    assert {e.selected_by for e in result.edge} == {"best"}
    assert {e.selected_by for e in result.node} == {"score"}
    assert all(e.judgement.target == "force" for e in result.node)
    assert min(result.r2_force) > 0.999
    assert result.sparsity == pytest.approx(1.0)
    mae = result.mae
    assert mae.network < 1e-9                      # the planted network is exact
    assert mae.symbolic < 0.01 * mae.ood["spread"].symbolic + 0.01
    assert mae.ood["more_particles"].n == 8
    assert result.residual_search is None          # the composed model is at the floor: no search


def test_distill_folder_is_what_the_schema_reads(planted_run):
    result, out = planted_run
    assert load_result(out) == result
    assert result.version == SCHEMA_VERSION
    assert result.strategy == "planted" and result.law == "spring" and result.sr_engine == "operon"
    assert len(result.top_components) == len(result.r2_force) == len(result.edge) == 2
    assert all(len(e.judgement.affine) == 3 for e in result.edge)
    assert set(result.mae.ood) == {"spread", "more_particles"}
    for e in result.edge + result.node:
        rows = read_front(out / e.front_file)
        assert sum(r.selected for r in rows) == 1
        assert next(r for r in rows if r.selected).equation == e.selected_equation
    assert {p.name for p in out.glob("pareto_*.csv")} == {e.front_file for e in result.edge + result.node}
    msgs = load_messages(out)
    assert set(msgs.inputs) == {"dx", "dy", "r", "rs", "m1", "m2", "q1", "q2"}
    assert msgs.messages.shape == (1500, 2) and list(msgs.top) == list(result.top_components)
    predictions = load_predictions(out)
    assert predictions.true.shape == predictions.symbolic.shape == (200, 4, 2)
    cfg = config_from_dict(DistillConfig, json.loads((out / "distill_config.json").read_text()))
    assert cfg == PLANTED
    md = (out / "equations.md").read_text()
    assert "$$\\phi_{1}" in md and "Newton" in md
    lines = summary_lines(result)
    assert any("FOUND" in line for line in lines) and len(lines) <= 8


def test_version_1_files_are_read_and_newer_or_drifted_ones_refused(planted_run, tmp_path):
    _, out = planted_run
    stored = json.loads((out / "distill.json").read_text())

    def write(obj):
        (tmp_path / "distill.json").write_text(json.dumps(obj))

    write({k: v for k, v in stored.items() if k != "version"})
    assert load_result(tmp_path).version == 1
    assert load_result(tmp_path) == dataclasses.replace(load_result(out), version=1)
    assert load_predictions(tmp_path) is None        # version 1 wrote no predictions.npz
    for bad, reason in (({**stored, "version": SCHEMA_VERSION + 1}, "version"),
                        ({**stored, "sparsity_ratio": 1.0}, "sparsity_ratio"),
                        ({k: v for k, v in stored.items() if k != "mae"}, "mae"),
                        ({**stored, "edge": [{**stored["edge"][0], "rank": "first"}]}, "rank")):
        write(bad)
        with pytest.raises(InputError, match=reason) as info:
            load_result(tmp_path)
        assert "\n" not in str(info.value)


def test_network_wrapper_matches_the_torch_forward_pass():
    torch.manual_seed(0)
    model = GNN(ModelConfig(strategy="kl", dim=2, hidden=16, n_hidden_layers=1))
    net = network_from_model(model)
    x, _ = states(SPRING, 2, 4, 5, seed=3)
    composed = forward(SimpleNamespace(**{**net.__dict__, "predict": None}), x, SPRING)
    np.testing.assert_allclose(composed, net.predict(x), rtol=1e-4, atol=1e-5)
    assert net.logvar is not None and net.strategy == "kl"


def test_distill_model_runs_on_an_untrained_gnn(tmp_path):
    torch.manual_seed(0)
    model = GNN(ModelConfig(strategy="l1", dim=2, hidden=16, n_hidden_layers=1))
    data = spring_data()
    split = {"train": (data.train_x, data.train_a), "test": (data.test_x, data.test_a)}
    dataset = SimpleNamespace(law=SPRING, config=SimpleNamespace(dim=2, softening=0.01),
                              split=lambda name: SimpleNamespace(graphs=lambda: split[name]))
    cfg = DistillConfig(**{**FAST, "population_size": 50, "generations": 5, "n_edges": 500, "n_nodes": 300})
    result = distill_model(model, dataset, cfg, tmp_path)
    assert result.strategy == "l1" and len(result.component_std) == 100
    assert 0 < result.sparsity <= 1
    assert (tmp_path / "distill.json").is_file()


def test_bad_inputs_are_one_line_input_errors(tmp_path):
    cfg = DistillConfig(**FAST)
    with pytest.raises(InputError, match="missing checkpoint"):
        distill_checkpoint(tmp_path / "missing.pt", cfg, tmp_path / "out")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError) as info:
        distill_checkpoint(junk, cfg, tmp_path / "out")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not a message-passing GNN"):
        network_from_model(torch.nn.Linear(2, 2))


def test_held_out_rules_read_new_training_rows_and_leave_the_rest_of_the_run_unchanged(planted_run, tmp_path):
    result, out = planted_run
    cfg = dataclasses.replace(PLANTED, selection="best_heldout", node_selection="score_heldout")
    held = distill_planted(cfg, tmp_path / "held")
    assert held.edge_success and held.node_success, held.edge + held.node
    for before, after in zip(result.edge + result.node, held.edge + held.node):
        rows, rows_held = read_front(out / before.front_file), read_front(tmp_path / "held" / after.front_file)
        assert [(r.complexity, r.loss, r.equation) for r in rows] == [(r.complexity, r.loss, r.equation)
                                                                      for r in rows_held]   # same search
        assert all(r.heldout_loss is None for r in rows)
        losses = [r.heldout_loss for r in rows_held]
        assert all(np.isfinite(losses)) and losses != [r.loss for r in rows_held]
        names = edge_input_names(2) if after in held.edge else node_input_names(2, 2)
        front = [Candidate(parse(r.equation, names), r.complexity, r.loss) for r in rows_held]
        picked = select(front, after.selected_by, cfg.best_loss_factor, losses)
        assert [r.selected for r in rows_held] == [i == picked for i in range(len(rows_held))]
    assert np.array_equal(load_predictions(out).true, load_predictions(tmp_path / "held").true)
    assert np.array_equal(load_messages(out).messages, load_messages(tmp_path / "held").messages)


def _receiver_rows(n: int, seed: int = 0) -> np.ndarray:
    """Node inputs (e1, e2, m1, q1, vx1, vy1) with ±1 charges and log-normal masses; e random."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(size=(n, 2)), np.exp(rng.normal(size=n)), rng.choice([-1.0, 1.0], n),
                            rng.normal(size=(n, 2))])


def test_node_divisors_are_the_usable_edges_receiver_factors():
    """An edge equation is usable when it reproduces its message component (R² >= 0.99 on
    fresh rows; the true force plays no part); a usable edge's receiver factor divides its
    summed component unless it vanishes on some receiver."""
    from distill.pipeline import describes, node_divisors
    names_e, names_n = edge_input_names(2), node_input_names(2, 2)
    rows = _receiver_rows(300)
    rows[0, 2] = 1.0                                    # a receiver where (m1 - 1) vanishes
    passed, failed = True, False
    field_g = parse("0.7*dx*q1*q2*(m1 + 0.4)/(m1*rs**3) + 0.1*q1 + 0.2", names_e)   # offset 0.1 q1 left out
    vanishing = parse("0.7*dx*q2*(m1 - 1)/rs**3", names_e)
    m1, q1 = rows[:, 2], rows[:, 3]
    for edges, exprs, expected in (([passed, passed], [field_g, field_g], q1 * (m1 + 0.4) / m1),
                                   ([passed, failed], [field_g, field_g], None),
                                   ([passed, passed], [vanishing, vanishing], None)):
        divisors = node_divisors(exprs, edges, 2, names_n, [rows])
        divided = divisors.divide(rows, names_n)
        ratio = rows[:, 0] / divided[:, 0]
        if expected is None:
            assert divisors.labels[-1] == "1" and np.allclose(divided[:, 1], rows[:, 1])
        else:
            assert np.allclose(ratio / expected, (ratio / expected)[0])   # g up to its dropped coefficient
        np.testing.assert_array_equal(divided[:, 2:], rows[:, 2:])
    X = np.random.default_rng(5).normal(size=(200, len(names_e)))
    y = lambdify(field_g, names_e)(X)
    assert describes(field_g, names_e, X, y, 0.99) and describes(field_g, names_e, X, y * 1.01, 0.99)
    assert not describes(field_g, names_e, X, y[::-1].copy(), 0.99)       # another message


def test_node_fit_in_the_edges_units_is_written_back_in_the_summed_messages(monkeypatch):
    """The edges sent field·g with g = q1 (m1 + 0.4)/m1; the node model undoes it. Fitted on
    e/g, Newton's law is e q1/m1 (an engine offering it and a wrong form picks it), and written
    back it is the node equation over e itself, e/(m1 + 0.4)."""
    from distill import pipeline, sr_engines
    from distill.candidate import make_candidate
    names_n = node_input_names(2, 2)
    rows = _receiver_rows(400, seed=1)
    m1, q1 = rows[:, 2], rows[:, 3]
    g = q1 * (m1 + 0.4) / m1
    X = rows.copy()
    X[:, 0] *= g                                          # e1 = g · (summed pair field)
    y = rows[:, 0] * q1 / m1                              # a_x = q1 · field / m1
    seen = []

    def engine(X_fit, y_fit, names, cfg):
        seen.append(X_fit)
        return [make_candidate(text, X_fit, y_fit, names) for text in ("e1", "e1*q1/m1")]
    monkeypatch.setattr(sr_engines, "fit", engine)
    cfg = DistillConfig(selection="best", refit=False)
    divisors = pipeline.NodeDivisors((parse("q1*(m1 + 0.4)/m1", names_n), parse("1", names_n)))
    fit = divisors.written_back(pipeline.fit_target(divisors.divide(X, names_n), y, names_n, cfg), names_n)
    np.testing.assert_allclose(seen[0][:, 0], rows[:, 0])   # SR saw e1 / g1
    e1, m1_ = parse("e1", names_n), parse("m1", names_n)
    assert fit.final.loss < 1e-12 and sp.simplify(fit.final.expr - e1 / (m1_ + 0.4)) == 0
    assert all(c.expr.free_symbols <= set(parse("e1 + m1 + q1", names_n).free_symbols) for c in fit.front)
    np.testing.assert_allclose(pipeline.lambdify(fit.final.expr, names_n)(X), y, rtol=1e-9, atol=1e-12)


def test_node_units_edge_without_receiver_factors_changes_nothing_but_the_record(planted_run, tmp_path):
    """The planted spring's edges send the plain force (no g): every divisor is 1, so the node
    searches are the same as without division, and distill.json and equations.md say so."""
    result, out = planted_run
    assert result.node_divisors is None
    divided = distill_planted(dataclasses.replace(PLANTED, node_units="edge"), tmp_path / "edge")
    assert divided.node_divisors == ("1", "1") and divided.edge_success and divided.node_success
    for before, after in zip(result.node, divided.node):
        assert ([(r.complexity, r.loss, r.equation) for r in read_front(out / before.front_file)] ==
                [(r.complexity, r.loss, r.equation) for r in read_front(tmp_path / "edge" / after.front_file)])
    assert "g1 = 1, g2 = 1" in (tmp_path / "edge" / "equations.md").read_text()
