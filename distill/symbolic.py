"""Message passing shared by networks and equations; the composed symbolic predictor; MAE; OOD states.

In:  a `Network` of plain callables (a wrapped GNN, a hand-made planted model, or the
     distilled equations), node states x [G, n, F] (layout of `nbody.state`), a `Law`.
Out: accelerations [G, n, dim]; aggregated messages [G, n, k] (sum over incoming edges,
     receiver = "1"); MAE statistics; out-of-distribution state sets with true accelerations.

The node equations read `node_input_names(dim, k)`: e1..ek (the aggregated significant message
components, most significant first), then the receiver's own m1, q1, vx1, vy1, (vz1).
Absolute positions are left out on purpose: the network is trained with random
translations, so its node model must not depend on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from nbody import state
from nbody.graph import edges, scatter_sum
from nbody.initial import initial_conditions
from nbody.laws import Law, accelerations

from .candidate import lambdify
from .messages import edge_input_names, edge_inputs

EdgeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
NodeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Network:
    """A message-passing model as NumPy callables (float64 in and out).

    Attributes:
        edge: (x_recv [N, F], x_send [N, F]) -> messages [N, k] (mu for a KL model).
        node: (x [N, F], aggregated messages [N, k]) -> accelerations [N, dim].
        predict: x [G, n, F] -> accelerations [G, n, dim]; None composes edge and node.
        logvar: (x_recv, x_send) -> log σ² [N, k] for a KL model, else None.
        strategy: training strategy name (reporting only).
    """

    edge: EdgeFn
    node: NodeFn
    predict: Callable[[np.ndarray], np.ndarray] | None = None
    logvar: EdgeFn | None = None
    strategy: str = "planted"


def node_input_names(dim: int, k: int) -> list[str]:
    """SR input columns of the node model: e1..ek, m1, q1, vx1, vy1, (vz1)."""
    return [f"e{i + 1}" for i in range(k)] + ["m1", "q1"] + [f"v{a}1" for a in "xyz"[:dim]]


def node_inputs(x: np.ndarray, agg: np.ndarray, dim: int) -> np.ndarray:
    """Node SR inputs [..., k + 2 + dim] from node features [..., F] and aggregated components [..., k]."""
    own = [state.mass(x, dim)[..., None], state.charge(x, dim)[..., None], state.vel(x, dim)]
    return np.concatenate([agg] + own, axis=-1).astype(np.float64)


def aggregate(edge: EdgeFn, x: np.ndarray, law: Law) -> np.ndarray:
    """Sum of incoming messages per node over the project's one edge template
    (`nbody.graph.edges` and `nbody.graph.scatter_sum`, as the GNN aggregates).

    Args:
        edge: edge callable; x: [G, n, F]; law: its topology defines the edges.
    Returns:
        [G, n, k] float64.
    """
    G, n, F = x.shape
    send, recv = edges(n, law.topology)
    msgs = np.asarray(edge(x[:, recv].reshape(-1, F).astype(np.float64),
                           x[:, send].reshape(-1, F).astype(np.float64)), dtype=np.float64)
    return scatter_sum(msgs.reshape(G, len(recv), -1), recv, n)


def forward(net: Network, x: np.ndarray, law: Law) -> np.ndarray:
    """Accelerations [G, n, dim] predicted by `net` on states x [G, n, F]."""
    if net.predict is not None:
        return np.asarray(net.predict(x), dtype=np.float64)
    G, n, F = x.shape
    agg = aggregate(net.edge, x, law)
    out = net.node(x.reshape(G * n, F).astype(np.float64), agg.reshape(G * n, -1))
    return np.asarray(out, dtype=np.float64).reshape(G, n, -1)


def symbolic_network(edge_exprs: Sequence[sp.Expr], node_exprs: Sequence[sp.Expr], dim: int,
                     softening: float) -> Network:
    """The distilled equations as a `Network`: edge equation i emits message component i
    (inputs `edge_inputs` with the law's softening), node equation j predicts acceleration
    axis j from the summed components."""
    edge_fns = [lambdify(e, edge_input_names(dim)) for e in edge_exprs]
    node_fns = [lambdify(e, node_input_names(dim, len(edge_exprs))) for e in node_exprs]

    def edge(x_recv: np.ndarray, x_send: np.ndarray) -> np.ndarray:
        X = edge_inputs(x_recv, x_send, dim, softening)
        return np.stack([f(X) for f in edge_fns], axis=-1)

    def node(x: np.ndarray, agg: np.ndarray) -> np.ndarray:
        X = node_inputs(x, agg, dim)
        return np.stack([f(X) for f in node_fns], axis=-1)

    return Network(edge=edge, node=node, strategy="symbolic")


def mae_stats(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """Mean and std over graphs of the MAE per node (`gnn.metrics.mae_per_node`, the
    definition of the network's test MAE).

    Args:
        pred, true: [G, n, dim].
    Returns:
        (mean, std); both inf when any prediction is not finite.
    """
    from gnn.metrics import mae_per_node, per_graph_mae  # deferred like `aggregate`'s torch
    per_graph = per_graph_mae(pred, true)
    if not np.all(np.isfinite(per_graph)):
        return float("inf"), float("inf")
    return mae_per_node(per_graph)


def ood_states(law: Law, dim: int, n: int, count: int, softening: float, rng: np.random.Generator,
               spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """States drawn like the paper's initial conditions, positions scaled by `spread`.

    Args:
        law, dim, n, count: physics, dimension, particles, number of graphs.
        softening: eps of the law's r' = r + eps.
        rng: random generator.
        spread: factor on the drawn positions.
    Returns:
        (x [count, n, 2*dim+2] float32, true accelerations [count, n, dim] float64).
    """
    pos, vel, q, m = initial_conditions(law, n, dim, count, rng)
    x = state.pack(pos * spread, vel, q, m).astype(np.float32)
    # Accelerations of the float32 states the models will see, not of the float64 draw.
    x64 = x.astype(np.float64)
    acc = accelerations(law, state.pos(x64, dim), state.vel(x64, dim), state.charge(x64, dim),
                        state.mass(x64, dim), softening)
    return x, acc
