"""`ModelConfig` and `TrainConfig`: the frozen configs of the GNN stage.

In:  field values (from run.py flags, a preset, or a saved model_config.json /
     train_config.json via `plumbing.io.config_from_dict`).
Out: validated, frozen dataclasses; both are saved next to every checkpoint.
     `model_for_data` is the one place the model's DATA_FIELDS (dim, n_features, topology)
     are derived from the dataset's `SimConfig`.
Bad values raise `plumbing.errors.InputError` with a one-line message. Imports no torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nbody.config import SimConfig
from nbody.graph import TOPOLOGIES
from nbody.laws import get_law
from nbody.state import n_features as layout_width
from plumbing.errors import InputError, require_finite

from .strategies import get_strategy

DEVICES = ("auto", "cpu", "cuda")
# ModelConfig fields that follow from the data (`model_for_data`), never set by hand.
DATA_FIELDS = ("dim", "n_features", "topology")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the graph network (paper §2, App. A; docs/facts.md §2.1).

    Attributes:
        strategy: a registered strategy (`gnn.strategies`): "standard" (100-dim messages, no
            regulariser), "bottleneck" (messages of size `dim`), "l1" (100-dim messages, L1
            penalty in the loss) or "kl" (100-dim variational messages, KL penalty in the loss)
            or "hamiltonian" (the paper's FlatHGN: a pair energy per edge and a self energy per
            node, accelerations from Hamilton's equations by autograd; `gnn.hamiltonian`).
        dim: spatial dimension, 2 or 3; the node network predicts a [dim] acceleration.
        n_features: width of a node's input vector; None (default) means the n-body layout
            (pos[dim], vel[dim], q, m), i.e. 2*dim + 2, filled in on construction.
        hidden: width of every hidden layer of both MLPs (300 in the paper).
        n_hidden_layers: hidden layers per MLP. 3, as in the official `models.py` and both
            reproductions' code; the paper's App. A.1 text says 2 (docs/facts.md §4 #12). The
            code is what produced the published numbers, so we follow it.
        msg_dim: message width; None means the strategy's (100, or `dim` for the bottleneck);
            a strategy with a fixed width takes only None or that width (the Hamiltonian
            model's "message" is its scalar pair energy: 1).
        topology: "full" (all ordered pairs i != j) or "chain" (i <-> i+1, the string law).
        logvar_clamp: the KL model's log-variance is clamped to [-c, c] so that exp(logvar)
            can neither overflow nor underflow to a NaN-producing value.
        third_law: make each message antisymmetric, e_ij = -e_ji (Newton's third law, which
            every pair law obeys), so that no message carries a factor of the receiver alone
            for the node network to divide out (`gnn.model`); the Hamiltonian model's pair
            energy is made symmetric instead (`gnn.hamiltonian`). False is the paper's network.
    """

    strategy: str = "l1"
    dim: int = 2
    n_features: int | None = None
    hidden: int = 300
    n_hidden_layers: int = 3
    msg_dim: int | None = None
    topology: str = "full"
    logvar_clamp: float = 10.0
    third_law: bool = False

    def __post_init__(self):
        require_finite(self)
        strategy = get_strategy(self.strategy)
        if not _is_int(self.dim) or self.dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {self.dim!r}")
        if self.n_features is None:
            object.__setattr__(self, "n_features", layout_width(self.dim))
        if not _is_int(self.n_features) or self.n_features < self.dim:
            raise InputError(f"n_features must be an integer >= dim, got {self.n_features!r}")
        if not _is_int(self.hidden) or self.hidden < 1:
            raise InputError(f"hidden must be a positive integer, got {self.hidden!r}")
        if not _is_int(self.n_hidden_layers) or self.n_hidden_layers < 0:
            raise InputError(f"n_hidden_layers must be an integer >= 0, got {self.n_hidden_layers!r}")
        if self.msg_dim is not None and (not _is_int(self.msg_dim) or self.msg_dim < 1):
            raise InputError(f"msg_dim must be a positive integer or None, got {self.msg_dim!r}")
        if strategy.msg_dim_fixed and self.msg_dim not in (None, strategy.msg_dim):
            raise InputError(f"the {self.strategy} strategy's message width is fixed: msg_dim must be "
                             f"{strategy.msg_dim}, got {self.msg_dim!r}")
        if self.topology not in TOPOLOGIES:
            raise InputError(f"topology must be one of {TOPOLOGIES}, got {self.topology!r}")
        if not (self.logvar_clamp > 0):
            raise InputError(f"logvar_clamp must be positive, got {self.logvar_clamp!r}")
        if not isinstance(self.third_law, bool):
            raise InputError(f"third_law must be true or false, got {self.third_law!r}")

    @property
    def resolved_msg_dim(self) -> int:
        """Message width actually used: msg_dim, else the strategy's (dim for the bottleneck,
        1 for the Hamiltonian, 100 for the others)."""
        return get_strategy(self.strategy).resolved_msg_dim(self.msg_dim, self.dim)


def model_for_data(model: ModelConfig, sim: SimConfig) -> ModelConfig:
    """`model` fitted to the dataset `sim` makes: its DATA_FIELDS set to the dataset's dim,
    the width of the n-body node layout (pos, vel, q, m) and the law's topology."""
    return dataclasses.replace(model, dim=sim.dim, n_features=layout_width(sim.dim),
                               topology=get_law(sim.law).topology)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (paper App. A; the official demo, docs/facts.md §2.2 and §2.3).

    Attributes:
        batch_size: graphs per step (demo: 64 for n=4, 16 for n=8).
        epochs: number of epochs (demo cell: 30; "200 for the full version").
        steps_per_epoch: optimiser steps per epoch; None means one pass over the training
            graphs (floor(n_train / batch_size)). The demo uses 5000 at batch 64, i.e. an
            "epoch" of 320k graphs whatever the dataset size.
        lr: Adam learning rate and OneCycleLR max_lr.
        weight_decay: Adam weight decay, standing in for the paper's alpha_2 sum |w|^2.
        final_div_factor: OneCycleLR final_div_factor (demo: 1e5).
        l1_weight: alpha_1 of the L1 message penalty (strategy "l1").
        kl_weight: weight of the KL message penalty (strategy "kl"; beta-VAE with beta=1).
        energy_weight: weight of the Hamiltonian model's regulariser (strategy "hamiltonian";
            paper App. A.4 and the official HGN: 1e-6): energy_weight * (sum over nodes of
            (H_self,i + sum of its incoming H_pair)^2 + sum over nodes of the squared
            gradient of H with respect to their charge and mass), per graph.
        velocity_weight: weight of an extra loss term for strategy "hamiltonian":
            velocity_weight * sum over nodes and dims |dH/dp - v| per graph (Hamilton's
            dx/dt = dH/dp). 0 (default) is the paper's loss on accelerations only, under
            which H's momentum dependence is not trained (gnn.hamiltonian).
        relative_loss_floor: None is the paper's loss (every node's sum over dims |da| counts
            alike). A number f > 0 weights node i's error by (1 + f)·s / (|a_i| + f·s), s the
            median |a| over the training nodes: a node at the median weighs 1, a node in a
            close encounter (|a| >> s) ~(1 + f)·s/|a|, a node at rest at most (1 + f)/f. The
            raw 1/r^2 accelerations span ~1e-2 to 1e3 after pruning, and the plain L1 loss is
            dominated by the few nodes in close encounters (train.py docstring).
        augment_sigma: std of the random translation added to each graph's positions.
        seed: seeds parameters, batch order, augmentation and KL sampling.
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        amp: bf16 autocast of the hidden layers on CUDA (ignored on CPU, see cpu_amp; and by
            the hamiltonian strategy, whose accelerations are gradients through every hidden
            layer: it always runs in float32).
        compile: torch.compile the model for training on CUDA (ignored on CPU, see
            cpu_compile; and by the hamiltonian strategy: its loss needs a double backward).
        cpu_amp: bf16 autocast of the hidden layers when training on CPU.
        cpu_compile: torch.compile the model for training on CPU (needs a C++ compiler).
        eval_batch_size: graphs per forward pass during evaluation.
        max_train_graphs: train on a random subset of N training graphs, fixed by `seed` (None: all).
        checkpoint_every: steps between resume points (last.pt); also written every epoch.
        log_every: steps between progress-bar loss updates (each one syncs the device).
        message_history_every: steps between records of the messages on a fixed sample of
            held-out edges (R² against force and F/m1, sparsity, the top components' values;
            train/message_history.npz, `gnn.history`), plus one before the first step and one
            at the last; 0 disables. Needs the data's law (a dataset, or arrays with "law").
            A record takes ~0.05 s on a CPU (four robust R² fits), about 2% of the tiny
            preset's training time at the default (benchmarks/RESULTS.md); metrics.json
            reports each run's own cost (message_history_seconds).
        message_history_edges: edges in that sample.
    """

    batch_size: int = 64
    epochs: int = 30
    steps_per_epoch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-8
    final_div_factor: float = 1e5
    l1_weight: float = 1e-2
    kl_weight: float = 1.0
    energy_weight: float = 1e-6
    velocity_weight: float = 0.0
    relative_loss_floor: float | None = None
    augment_sigma: float = 3.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    cpu_amp: bool = False
    cpu_compile: bool = False
    eval_batch_size: int = 1024
    max_train_graphs: int | None = None
    checkpoint_every: int = 1000
    log_every: int = 50
    message_history_every: int = 1000
    message_history_edges: int = 1000

    def __post_init__(self):
        require_finite(self)
        for name in ("batch_size", "epochs", "eval_batch_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        for name in ("steps_per_epoch", "max_train_graphs"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise InputError(f"{name} must be a positive integer or None, got {value!r}")
        if not _is_int(self.message_history_every) or self.message_history_every < 0:
            raise InputError("message_history_every must be an integer >= 0 (0: off), "
                             f"got {self.message_history_every!r}")
        if not _is_int(self.message_history_edges) or self.message_history_edges < 10:
            raise InputError(f"message_history_edges must be an integer >= 10, got {self.message_history_edges!r}")
        if not (self.lr > 0) or not (self.final_div_factor > 0):
            raise InputError("lr and final_div_factor must be positive")
        for name in ("weight_decay", "l1_weight", "kl_weight", "energy_weight", "velocity_weight", "augment_sigma"):
            if not (getattr(self, name) >= 0):
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.relative_loss_floor is not None and not (self.relative_loss_floor > 0):
            raise InputError(f"relative_loss_floor must be > 0 or None, got {self.relative_loss_floor!r}")
        if not _is_int(self.seed):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise InputError(f"device must be one of {DEVICES} or 'cuda:N', got {self.device!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
