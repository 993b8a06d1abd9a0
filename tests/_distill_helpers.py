"""Shared fixtures-as-functions for the distill and analysis tests: paper-like states, the
true pair force, and a distillation of the planted model (`distill.planted`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from distill import DistillConfig, DistillData, DistillResult, distill_network
from distill.planted import BIAS_2D, MIX_2D, planted_network
from distill.symbolic import ood_states
from nbody import state
from nbody.laws import Law, get_law, pair_force

SPRING = get_law("spring")


def states(law: Law, dim: int, n: int, graphs: int, seed: int, softening: float = 0.01):
    """Paper initial-condition states x [G, n, F] float32 and true accelerations [G, n, dim]."""
    return ood_states(law, dim, n, graphs, softening, np.random.default_rng(seed))


def edge_truth(law: Law, x_recv: np.ndarray, x_send: np.ndarray, dim: int, softening: float = 0.01):
    """True pair force on the receiver [N, dim] (the oracle: `nbody.laws.pair_force`)."""
    return pair_force(law, state.pos(x_recv, dim) - state.pos(x_send, dim), state.charge(x_recv, dim),
                      state.charge(x_send, dim), state.mass(x_recv, dim), state.mass(x_send, dim), softening)


def spring_data(dim: int = 2, n: int = 4, train_graphs: int = 600, test_graphs: int = 300) -> DistillData:
    """Spring states for a distillation: training graphs (seed 10) and test graphs (seed 11)."""
    train_x, train_a = states(SPRING, dim, n, train_graphs, seed=10)
    test_x, test_a = states(SPRING, dim, n, test_graphs, seed=11)
    return DistillData(SPRING, dim, 0.01, train_x, train_a, test_x, test_a)


def distill_planted(cfg: DistillConfig, out: Path, **data) -> DistillResult:
    """Distill the planted 2D spring model (MIX_2D, BIAS_2D) into out; `data` goes to `spring_data`."""
    return distill_network(planted_network(SPRING, 2, MIX_2D, BIAS_2D), spring_data(**data), cfg, out)


# A small SR budget for the planted spring run that the analysis and report tests share.
SMALL_SR = DistillConfig(population_size=60, generations=8, n_threads=2, n_edges=500, n_nodes=300,
                         n_eval_graphs=20, n_ood_graphs=20)


def small_planted_run(out: Path) -> Path:
    """`distill_planted` under SMALL_SR into out (200 training, 100 test graphs); returns out."""
    distill_planted(SMALL_SR, out, train_graphs=200, test_graphs=100)
    return out
