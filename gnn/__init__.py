"""gnn: the graph network of Cranmer et al. 2020 that distillation reads messages from.

In:  graphs of one n-body dataset (`nbody.dataset`, or in-memory arrays): node features
     x [G, n, 2*dim+2] = (pos, vel, q, m) float32 and true accelerations a [G, n, dim];
     a `ModelConfig` (strategy standard | bottleneck | l1 | kl, sizes, topology) and a
     `TrainConfig` (optimiser, schedule, augmentation, device).
Out: a trained `GNN` whose `forward(x [B, n, F])` returns
     `ModelOutput(acc [B, n, dim], messages [B, E, msg_dim], mu, logvar)` with edges
     ordered by `gnn.graph.edges(n, topology)` (receiver-major, senders -> receivers);
     `GNN.edge(x_recv, x_send)` evaluates the message function on any feature pairs.
     Training writes checkpoint.pt (model + configs, `load_model`), last.pt (resume
     point), metrics.json and the two config JSON files into its output folder.

Modules: config (frozen configs), graph (edge vocabulary, scatter-add), model (GNN, one
class for every strategy), train (loss, loop, evaluation), checkpoint (atomic files).
"""
from .checkpoint import load_model
from .config import STRATEGIES, ModelConfig, TrainConfig
from .graph import edges, scatter_sum
from .model import GNN, ModelOutput, kl_divergence, mlp
from .train import TrainResult, completed_metrics, evaluate, train

__all__ = ["GNN", "STRATEGIES", "ModelConfig", "ModelOutput", "TrainConfig", "TrainResult",
           "completed_metrics", "edges", "evaluate", "kl_divergence", "load_model", "mlp",
           "scatter_sum", "train"]
