"""The network of a `ModelConfig`: the one place that maps a strategy to its model class.

In:  a `ModelConfig`.
Out: a `gnn.model.GNN` (standard, bottleneck, L1, KL) or a `gnn.hamiltonian.HamiltonianGNN`
     ("hamiltonian"); both return the fields acc, messages, mu and logvar from forward(x [B, n, F]).
"""
from __future__ import annotations

from torch import nn

from .config import ModelConfig
from .hamiltonian import HamiltonianGNN
from .model import GNN


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network of `cfg.strategy` (module docstring)."""
    return HamiltonianGNN(cfg) if cfg.strategy == "hamiltonian" else GNN(cfg)
