"""The edge template of the graph network, as torch tensors, and how a batch shares it.

In:  a node count n, a topology name and a device.
Out: `edges(n, topology, device)` = (senders [E], receivers [E]) int64 tensors: the template
     `nbody.graph.edges` (receiver-major, senders -> receivers; its docstring defines the
     vocabulary and the topologies), cached per device; `reverse(n, topology, device)` = the
     index [E] of each edge's reverse (`nbody.graph.reverse_edges`). The aggregation is
     `nbody.graph.scatter_sum`, which takes torch tensors as well as NumPy arrays.

The edge network sees cat[x_i, x_j], receiver first (the official code's x_i, x_j, flow
source -> target).

Batching: every graph of a batch has the same n and topology, so a batch is a dense
[B, n, F] tensor sharing ONE edge template [E]: sender features are gathered as
x[:, senders] -> [B, E, F] and messages are summed into their receivers with
`index_add_` along the node axis. This is the disjoint-union graph without the per-graph
index offsets; on CPU it trained at the same speed as the flattened [B*n] graph with offset
edges and as a reshape-sum (all three within timing noise, the MLPs dominate), and it keeps
messages addressable as [B, E, msg_dim].
"""
from __future__ import annotations

import functools

import torch

from nbody import graph


def edges(n: int, topology: str = "full", device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The directed edges of one n-node graph (`nbody.graph.edges`) on `device`.

    Args:
        n: number of nodes (particles), >= 2.
        topology: "full" or "chain".
        device: where the index tensors live.
    Returns:
        (senders [E], receivers [E]) int64, receiver-major.
        Cached per (n, topology, device): do not modify them in place.
    """
    return _edges(int(n), topology, torch.device(device))


@functools.lru_cache(maxsize=64)
def _edges(n: int, topology: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    senders, receivers = graph.edges(n, topology)
    return torch.from_numpy(senders).to(device), torch.from_numpy(receivers).to(device)


def reverse(n: int, topology: str = "full", device: torch.device | str = "cpu") -> torch.Tensor:
    """[E] int64: the index of edge j -> i for each edge i -> j of `edges(n, topology)` (cached)."""
    return _reverse(int(n), topology, torch.device(device))


@functools.lru_cache(maxsize=64)
def _reverse(n: int, topology: str, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(graph.reverse_edges(n, topology)).to(device)
