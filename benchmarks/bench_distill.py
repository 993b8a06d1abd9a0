"""Benchmark: time to distill one model (edge + node) with the default `DistillConfig` budget.

Target: under 2 minutes on 2 CPU cores while recovering the force law (edge) and Newton's
second law (node) for spring, r1, r2 and charge.

Two groups, both timed once per law (SR runs are deterministic; a repeat would time the same
search):
    planted   models that emit an exact affine map of the true pair force as messages and
              divide the summed messages back by the mass (a perfectly trained bottleneck
              GNN); states drawn like the paper's initial conditions (`nbody.initial`).
              Needs nothing but this repository.
    trained   bottleneck GNNs obtained through the public APIs (`nbody.dataset.generate_dataset`
              + `gnn.train.train`) with a modest CPU budget, cached under
              .benchmarks/distill_models/ so later runs only distill.

Run: `make bench`, or `pytest benchmarks/bench_distill.py -k planted`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from distill import DistillConfig, DistillResult, distill_model, distill_network
from distill.data import DistillData
from distill.planted import BIAS_2D, MIX_2D, planted_network
from distill.symbolic import Network, ood_states
from nbody.laws import get_law

LAWS = ("spring", "r1", "r2", "charge")
CACHE = Path(__file__).resolve().parent.parent / ".benchmarks" / "distill_models"
SOFTENING = 0.01


def planted_case(law_name: str, dim: int = 2, n: int = 4) -> tuple[Network, DistillData]:
    """A planted bottleneck model (`distill.planted`) and paper-like states (train 2000, test 500 graphs)."""
    law = get_law(law_name)
    rng = np.random.default_rng(0)
    train_x, train_a = ood_states(law, dim, n, 2000, SOFTENING, rng)
    test_x, test_a = ood_states(law, dim, n, 500, SOFTENING, rng)
    net = planted_network(law, dim, MIX_2D, BIAS_2D, SOFTENING, n, strategy="planted-bottleneck")
    return net, DistillData(law, dim, SOFTENING, train_x, train_a, test_x, test_a)


def trained_case(law_name: str, dim: int = 2):
    """A bottleneck GNN trained on a modest dataset (cached); returns (model, dataset)."""
    from gnn.checkpoint import load_model
    from gnn.config import ModelConfig, TrainConfig
    from gnn.train import train
    from nbody.config import SimConfig
    from nbody.dataset import generate_dataset, load_dataset

    data_dir = CACHE / f"{law_name}-{dim}d-data"
    model_dir = CACHE / f"{law_name}-{dim}d-bottleneck"
    if not (data_dir / "meta.json").exists():
        generate_dataset(SimConfig(law=law_name, n=4, dim=dim, n_sims=400, nt=500, keep_every=5, seed=0),
                         data_dir, progress=False)
    dataset = load_dataset(data_dir)
    if not (model_dir / "checkpoint.pt").exists():
        train(data_dir, ModelConfig(strategy="bottleneck", dim=dim),
              TrainConfig(epochs=10, steps_per_epoch=1000, device="cpu", seed=0), model_dir, progress=False)
    model, _ = load_model(model_dir)
    return model, dataset


def _record(benchmark, result: DistillResult) -> None:
    benchmark.extra_info.update(
        law=result.law, edge_success=result.edge_success, node_success=result.node_success,
        distill_seconds=result.seconds, edge=[e.equation for e in result.edge],
        node=[e.equation for e in result.node], mae=dataclasses.asdict(result.mae))


@pytest.mark.parametrize("law_name", LAWS)
def test_distill_planted(benchmark, law_name, tmp_path):
    net, data = planted_case(law_name)
    result = benchmark.pedantic(distill_network, args=(net, data, DistillConfig(), tmp_path), rounds=1, iterations=1)
    _record(benchmark, result)
    assert result.edge_success and result.node_success


@pytest.mark.parametrize("law_name", LAWS)
def test_distill_trained_bottleneck(benchmark, law_name, tmp_path):
    model, dataset = trained_case(law_name)
    result = benchmark.pedantic(distill_model, args=(model, dataset, DistillConfig(), tmp_path), rounds=1, iterations=1)
    _record(benchmark, result)
    assert result.edge_success and result.node_success
