"""The halo graph network: the L1 GN of the paper's dark-matter experiment (docs/facts.md §7).

In:  node features [B, 4] = (v, M) of B receiver halos, edge features [e, 11] of all their
     incoming edges (`halos.features.Standardiser.edge_features`), and each edge's local
     receiver index [e] in [0, B).
Out: (δ̂ [B], messages [e, msg_dim]).

    message  m_ij = φᵉ([Δpos, (v, M)_i, (v, M)_j])     11 -> msg_dim (100)
    sum      E_i  = Σ_j m_ij                            nbody.graph.scatter_sum (index_add_)
    node     δ̂_i  = φᵛ([(v, M)_i, E_i])                 4 + msg_dim -> 1

φᵉ and φᵛ are `gnn.model.mlp` (Linear-ReLU blocks, Linear output), as in the n-body GNN;
the L1 penalty on the messages lives in the loss (`halos.train`). `run_halos` evaluates a
trained model on any set of halos in chunks of receivers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gnn.model import mlp
from nbody.graph import scatter_sum

from .catalogue import Catalogue
from .config import HaloConfig
from .features import Standardiser
from .graph import HaloGraph, edges_of

NODE_FEATURES, EDGE_FEATURES = 4, 11


class HaloGN(nn.Module):
    """φᵉ, sum, φᵛ (module docstring); `cfg` gives hidden, n_hidden_layers and msg_dim."""

    def __init__(self, cfg: HaloConfig):
        super().__init__()
        self.edge_mlp = mlp(EDGE_FEATURES, cfg.msg_dim, cfg.hidden, cfg.n_hidden_layers)
        self.node_mlp = mlp(NODE_FEATURES + cfg.msg_dim, 1, cfg.hidden, cfg.n_hidden_layers)

    def node(self, node_x: Tensor, agg: Tensor) -> Tensor:
        """φᵛ: [B, 4], [B, msg_dim] -> δ̂ [B]."""
        return self.node_mlp(torch.cat([node_x, agg], dim=-1)).squeeze(-1)

    def forward(self, node_x: Tensor, edge_x: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        messages = self.edge_mlp(edge_x)                              # [e, msg_dim]
        agg = scatter_sum(messages, local, node_x.shape[0])           # [B, msg_dim]
        return self.node(node_x, agg), messages


@dataclass(frozen=True)
class Batch:
    """Tensors of a batch of receivers with all their edges (`make_batch`)."""

    node_x: Tensor
    edge_x: Tensor
    local: Tensor


def make_batch(cat: Catalogue, std: Standardiser, nodes: np.ndarray, graph: HaloGraph,
               receivers: np.ndarray, device: torch.device | str = "cpu") -> Batch:
    """The network inputs of `receivers` (global indices); `nodes` = std.node_features(cat)."""
    local, send = edges_of(graph, receivers)
    edge_x = std.edge_features(cat, nodes, np.asarray(receivers)[local], send)
    return Batch(torch.from_numpy(nodes[receivers]).to(device), torch.from_numpy(edge_x).to(device),
                 torch.from_numpy(local).to(device))


@torch.no_grad()
def run_halos(model: HaloGN, cat: Catalogue, std: Standardiser, graph: HaloGraph, receivers: np.ndarray,
              chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The trained model on `receivers`, `chunk` halos at a time.

    Returns:
        (δ̂ [n] float64, summed messages [n, msg_dim] float64).
    """
    model.eval()
    device = next(model.parameters()).device
    nodes = std.node_features(cat)
    preds, aggs = [], []
    for start in range(0, len(receivers), chunk):
        b = make_batch(cat, std, nodes, graph, receivers[start:start + chunk], device)
        messages = model.edge_mlp(b.edge_x)
        agg = scatter_sum(messages, b.local, b.node_x.shape[0])
        preds.append(model.node(b.node_x, agg).double().cpu().numpy())
        aggs.append(agg.double().cpu().numpy())
    return np.concatenate(preds), np.concatenate(aggs)
