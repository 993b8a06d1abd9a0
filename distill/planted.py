"""Planted models: what a perfectly trained bottleneck GNN would be, for tests and benchmarks.

In:  a law, the dimension, an invertible mixing matrix and a bias.
Out: a `symbolic.Network` whose messages are an exact affine map of the true pair force on
     the receiver (force @ mix.T + bias) and whose node function sums them, undoes the map
     and divides by the receiver mass, i.e. Newton's second law.
"""
from __future__ import annotations

import numpy as np

from gnn.messages import pair_targets
from nbody import state
from nbody.laws import Law

from .symbolic import Network

MIX_2D = np.array([[0.7, -0.3], [0.2, 0.5]])   # a rotated, scaled basis of the 2D force
BIAS_2D = np.array([0.05, -0.02])


def planted_network(law: Law, dim: int, mix: np.ndarray, bias: np.ndarray, softening: float = 0.01,
                    n: int = 4, strategy: str = "planted") -> Network:
    """Messages = force @ mix.T + bias; node = mix^-1 (Σ messages - (n-1)·bias) / m.

    Exact for n-particle fully connected graphs; like a trained network, its node function
    has the in-degree n - 1 baked in, so it errs on graphs of another size.

    Args:
        law, dim, softening: the physics of the messages.
        mix: [dim, dim] invertible; bias: [dim].
        n: particles per graph the node function is exact for.
        strategy: the name the result reports.
    """
    inv = np.linalg.inv(mix)

    def edge(x_recv, x_send):
        return pair_targets(law, x_recv, x_send, dim, softening)[0] @ mix.T + bias

    def node(x, agg):
        return ((agg - (n - 1) * bias) @ inv.T) / state.mass(x, dim)[:, None]

    return Network(edge=edge, node=node, strategy=strategy)
