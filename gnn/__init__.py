"""gnn: the graph network of Cranmer et al. 2020 that distillation reads messages from.

In:  graphs of one n-body dataset (`nbody.dataset`, or in-memory arrays): node features
     x [G, n, 2*dim+2] = (pos, vel, q, m) float32 and true accelerations a [G, n, dim];
     a `ModelConfig` (strategy standard | bottleneck | l1 | kl | hamiltonian, sizes, topology) and a
     `TrainConfig` (optimiser, schedule, augmentation, device).
Out: a trained `GNN` whose `forward(x [B, n, F])` returns
     `ModelOutput(acc [B, n, dim], messages [B, E, msg_dim], mu, logvar)` with edges
     ordered by `gnn.graph.edges(n, topology)` (receiver-major, senders -> receivers);
     `GNN.edge(x_recv, x_send)` evaluates the message function on any feature pairs.
     Training writes checkpoint.pt (model + configs, `load_model`), last.pt (resume
     point), metrics.json and the two config JSON files into its output folder.

Modules: strategies (the registry of message strategies: edge output, network, loss penalty,
message reading, distillation defaults; torch-free), config (frozen configs, torch-free), graph (the edge template as tensors), model (GNN,
one class for the four message strategies), build (`build_model`: a config's network), hamiltonian (HamiltonianGNN, the
"hamiltonian" strategy: energies, accelerations by autograd), train (loss, loop, evaluation;
`gnn.train.train` trains), checkpoint (atomic files).

`import gnn` (and `gnn.config`) does not import torch: its torch-backed names (`_LAZY`) are
imported on first use.
"""
import importlib

from .config import ModelConfig, TrainConfig
from .strategies import Strategy, get_strategy, kl_divergence, register_strategy, strategy_names

# Torch-backed name -> its submodule, imported when the name is first read.
_LAZY = {"GNN": "model", "ModelOutput": "model", "mlp": "model", "edges": "graph",
         "build_model": "build", "load_model": "checkpoint", "TrainResult": "train", "evaluate": "train"}

__all__ = ["ModelConfig", "Strategy", "TrainConfig", "get_strategy", "kl_divergence", "register_strategy",
           "strategy_names", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
