"""End to end: a planted model (exact affine force messages, sum/m node) is distilled, judged a
success and written out in the `distill.schema` layout; a real (untrained) GNN goes through the
torch wrapper; bad inputs are one-line InputErrors."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _distill_helpers import SPRING, distill_planted, spring_data, states
from distill import DistillConfig, distill_checkpoint, distill_model, load_result, summary_lines
from distill.candidate import Candidate, parse
from distill.messages import edge_input_names
from distill.pipeline import network_from_model
from distill.select import select
from distill.symbolic import forward, node_input_names
from distill.schema import SCHEMA_VERSION, load_messages, load_predictions, read_front
from gnn.config import ModelConfig
from gnn.model import GNN
from nbody.errors import InputError
from nbody.io import config_from_dict

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
