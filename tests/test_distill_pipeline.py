"""End to end: a planted model (exact affine force messages, sum/m node) is distilled, judged a
success and written out with the distill.json schema; a real (untrained) GNN goes through the
torch wrapper; bad inputs are one-line InputErrors."""
import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _distill_helpers import MIX_2D, planted_network, states
from distill import DistillConfig, distill_checkpoint, distill_model, distill_network, summary_lines
from distill.pipeline import DistillData, network_from_model
from distill.symbolic import forward
from gnn.config import ModelConfig
from gnn.model import GNN
from nbody.errors import InputError
from nbody.io import config_from_dict
from nbody.laws import get_law

SPRING = get_law("spring")
FAST = dict(population_size=300, generations=30, n_threads=2, n_edges=1500, n_nodes=1000,
            n_eval_graphs=200, n_ood_graphs=100)
PLANTED = DistillConfig(**FAST, selection="best", node_selection="score")
TOP_KEYS = {"strategy", "law", "dim", "sr_engine", "seconds", "sparsity", "component_std", "top_components",
            "r2_force", "r2_force_mean", "r2_accel", "r2_accel_mean", "edge", "node", "edge_success",
            "node_success", "mae"}


def spring_data(dim=2, n=4):
    train_x, train_a = states(SPRING, dim, n, 600, seed=10)
    test_x, test_a = states(SPRING, dim, n, 300, seed=11)
    return DistillData(SPRING, dim, 0.01, train_x, train_a, test_x, test_a)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted")
    net = planted_network(SPRING, 2, MIX_2D, np.array([0.05, -0.02]))
    result = distill_network(net, spring_data(), PLANTED, out)
    return result, out


def test_planted_spring_is_rediscovered(planted_run):
    result, _ = planted_run
    assert result["edge_success"] and result["node_success"], json.dumps(result["edge"] + result["node"], indent=1)
    assert all(e["judgement"]["target"] == "force" for e in result["edge"])
    assert {e["selected_by"] for e in result["edge"]} == {"best"}
    assert {e["selected_by"] for e in result["node"]} == {"score"}
    assert all(e["judgement"]["target"] == "force" for e in result["node"])
    assert min(result["r2_force"]) > 0.999
    assert result["sparsity"] == pytest.approx(1.0)
    mae = result["mae"]
    assert mae["network"] < 1e-9                      # the planted network is exact
    assert mae["symbolic"] < 0.01 * mae["ood"]["spread"]["symbolic"] + 0.01
    assert mae["ood"]["more_particles"]["n"] == 8


def test_distill_json_schema_and_files(planted_run):
    result, out = planted_run
    stored = json.loads((out / "distill.json").read_text())
    assert TOP_KEYS <= set(stored)
    assert stored["strategy"] == "planted" and stored["law"] == "spring" and stored["sr_engine"] == "operon"
    assert len(stored["top_components"]) == len(stored["r2_force"]) == len(stored["edge"]) == 2
    for e in stored["edge"]:
        assert {"component", "equation", "latex", "complexity", "loss", "selected_by", "judgement"} <= set(e)
        assert {"success", "target", "r2", "affine"} <= set(e["judgement"])
        assert len(e["judgement"]["affine"]) == 3
    for e in stored["node"]:
        assert {"output", "equation", "latex", "complexity", "loss", "judgement"} <= set(e)
        assert {"success", "target", "r2"} <= set(e["judgement"])
    assert {"network", "symbolic", "network_std", "symbolic_std", "ood"} <= set(stored["mae"])
    assert set(stored["mae"]["ood"]) == {"spread", "more_particles"}
    for k in stored["top_components"]:
        rows = list(csv.DictReader((out / f"pareto_edge_{k}.csv").open()))
        assert sum(int(r["selected"]) for r in rows) == 1
    for axis in "xy":
        assert (out / f"pareto_node_{axis}.csv").is_file()
    with np.load(out / "messages.npz") as npz:
        assert {"dx", "dy", "r", "m1", "m2", "q1", "q2", "messages", "fitted_force", "messages_top_std"} <= set(npz)
        assert npz["messages"].shape == (1500, 2)
    cfg = config_from_dict(DistillConfig, json.loads((out / "distill_config.json").read_text()))
    assert cfg == PLANTED
    md = (out / "equations.md").read_text()
    assert "$$\\phi_{1}" in md and "Newton" in md
    lines = summary_lines(stored)
    assert any("FOUND" in line for line in lines) and len(lines) <= 8


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
    assert result["strategy"] == "l1" and len(result["component_std"]) == 100
    assert 0 < result["sparsity"] <= 1
    assert (tmp_path / "distill.json").is_file()


def test_bad_inputs_are_one_line_input_errors(tmp_path):
    cfg = DistillConfig(**FAST)
    with pytest.raises(InputError, match="no checkpoint"):
        distill_checkpoint(tmp_path / "missing.pt", cfg, tmp_path / "out")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError) as info:
        distill_checkpoint(junk, cfg, tmp_path / "out")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not a message-passing GNN"):
        network_from_model(torch.nn.Linear(2, 2))
