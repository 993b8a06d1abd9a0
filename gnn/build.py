"""The network of a `ModelConfig`: the one place that maps a strategy's network to its class.

In:  a `ModelConfig`.
Out: a `gnn.model.GNN` (a strategy whose `Strategy.network` is "message": standard, bottleneck,
     L1, KL) or a `gnn.hamiltonian.HamiltonianGNN` ("energy": hamiltonian); both return the
     fields acc, messages, mu and logvar from forward(x [B, n, F]).
"""
from __future__ import annotations

from torch import nn

from .config import ModelConfig
from .hamiltonian import HamiltonianGNN
from .model import GNN
from .strategies import get_strategy

NETWORK_CLASSES: dict[str, type[nn.Module]] = {"message": GNN, "energy": HamiltonianGNN}


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network of `cfg.strategy` (module docstring)."""
    return NETWORK_CLASSES[get_strategy(cfg.strategy).network](cfg)
