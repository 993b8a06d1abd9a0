"""The interaction graph of n particles: its topologies, its edge template and the scatter-sum.

In:  a particle count n and a topology name; per-edge values and their receivers.
Out: `edges(n, topology)` = (senders [E], receivers [E]) int64 NumPy arrays, the one edge
     template of the project; `reverse_edges` (the edge j -> i of each edge i -> j);
     `scatter_sum` of per-edge values into their receiving nodes.

Edge vocabulary: edge e carries a message (or a pair force) from `senders[e]` (j) to
`receivers[e]` (i). Edges are receiver-major: all incoming edges of node 0 (senders
ascending), then node 1, ... So for topology "full" and n = 4 the receivers are
0,0,0,1,1,1,... and the senders 1,2,3,0,2,3,...

Topologies:
    "full"   every ordered pair i != j: E = n (n - 1) directed edges;
    "chain"  i <-> i+1 in both directions (the string law): E = 2 (n - 1).

The physics (`nbody.laws.pair_list`: each pair once, receiver < sender), the graph network
(`gnn.graph.edges`, the same template as torch tensors) and its aggregation all read this
template, so messages, forces and pairs are indexed alike everywhere.
"""
from __future__ import annotations

import numpy as np
from plumbing.errors import InputError


TOPOLOGIES = ("full", "chain")


def edges(n: int, topology: str = "full") -> tuple[np.ndarray, np.ndarray]:
    """The directed edges of one n-node graph.

    Args:
        n: number of nodes (particles), >= 2.
        topology: "full" or "chain".
    Returns:
        (senders [E], receivers [E]) int64, receiver-major (see the module docstring).
    Raises:
        InputError: n < 2 or an unknown topology.
    """
    if n < 2:
        raise InputError(f"a graph needs at least 2 nodes, got n={n}")
    if topology not in TOPOLOGIES:
        raise InputError(f"topology must be one of {TOPOLOGIES}, got {topology!r}")
    recv, send = np.meshgrid(np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64), indexing="ij")
    keep = recv != send if topology == "full" else np.abs(recv - send) == 1
    return send[keep], recv[keep]        # row-major mask over [receiver, sender] -> receiver-major order


def reverse_edges(n: int, topology: str = "full") -> np.ndarray:
    """The reverse of each edge of `edges(n, topology)`: rev [E] int64 with senders[rev[e]] ==
    receivers[e] and receivers[rev[e]] == senders[e] (both topologies hold both directions)."""
    senders, receivers = edges(n, topology)
    index = np.full((n, n), -1, dtype=np.int64)
    index[receivers, senders] = np.arange(len(senders))
    return index[senders, receivers]


def scatter_sum(values, receivers, n_nodes: int):
    """Sum edge values into their receiving nodes (the aggregation of paper Eq. 1).

    The output is sized by `n_nodes`, never by the largest index, so a node without incoming
    edges receives exactly zero. Edges are added in their order, one after another.

    Args:
        values: [..., E, C] per-edge values, a NumPy array or a torch tensor (which keeps
            its device and autograd: `index_add_`).
        receivers: [E] int64 receiving node of each edge, in [0, n_nodes), of the same kind.
        n_nodes: number of nodes per graph.
    Returns:
        [..., n_nodes, C] with out[..., i, :] = sum over e with receivers[e] == i of values[..., e, :].
    """
    shape = (*values.shape[:-2], n_nodes, values.shape[-1])
    if isinstance(values, np.ndarray):
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(np.moveaxis(out, -2, 0), receivers, np.moveaxis(values, -2, 0))
        return out
    return values.new_zeros(shape).index_add_(values.dim() - 2, receivers, values)
