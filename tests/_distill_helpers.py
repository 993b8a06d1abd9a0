"""Shared fixtures-as-functions for the distill tests: paper-like states and planted models.

A planted model emits an exact affine map of the true pair force as its messages and
divides the summed messages back by the receiver mass in its node function, i.e. it is
what a perfectly trained bottleneck GNN would be.
"""
from __future__ import annotations

import numpy as np

from distill.symbolic import Network, ood_states
from nbody import state
from nbody.laws import Law, pair_force

MIX_2D = np.array([[0.7, -0.3], [0.2, 0.5]])


def states(law: Law, dim: int, n: int, graphs: int, seed: int, softening: float = 0.01):
    """Paper initial-condition states x [G, n, F] float32 and true accelerations [G, n, dim]."""
    return ood_states(law, dim, n, graphs, softening, np.random.default_rng(seed))


def edge_truth(law: Law, x_recv: np.ndarray, x_send: np.ndarray, dim: int, softening: float = 0.01):
    """True pair force on the receiver [N, dim]."""
    return pair_force(law, state.pos(x_recv, dim) - state.pos(x_send, dim), state.charge(x_recv, dim),
                      state.charge(x_send, dim), state.mass(x_recv, dim), state.mass(x_send, dim), softening)


def planted_network(law: Law, dim: int, mix: np.ndarray, bias: np.ndarray, softening: float = 0.01,
                    n: int = 4) -> Network:
    """Messages = force @ mix.T + bias; node = mix^-1 (Σ messages - (n-1)·bias) / m.

    Exact for n-particle fully connected graphs; like a trained network, its node function
    has the in-degree n - 1 baked in, so it errs on graphs of another size.
    """
    inv = np.linalg.inv(mix)

    def edge(x_recv, x_send):
        return edge_truth(law, x_recv, x_send, dim, softening) @ mix.T + bias

    def node(x, agg):
        return ((agg - (n - 1) * bias) @ inv.T) / state.mass(x, dim)[:, None]

    return Network(edge=edge, node=node, strategy="planted")
