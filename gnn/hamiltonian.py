"""The flattened Hamiltonian graph network (FlatHGN) of Cranmer et al. 2020 (paper §3, §4.2, App. A.4).

In:  node features x [B, n, F] = (pos, vel, q, m), as every strategy gets them (after the
     translation augmentation); a `ModelConfig` with strategy "hamiltonian".
Out: `HamiltonianOutput(acc [B, n, dim], messages [B, E, 1], mu=None, logvar=None,
     node_energy [B, n], dh_dconst [B, n, F - 2 dim], velocity_residual [B, n, dim])`: the
     fields of `gnn.model.ModelOutput` (so evaluation and the trainer treat both models
     alike) plus what the regulariser and the optional velocity loss need.

    canonical features  z_i = (x_i, p_i = m_i v_i, q_i, m_i)      (momenta after augmentation)
    H = sum_i H_self(z_i) + sum over edges j -> i of H_pair(z_i, z_j)
    a_i = -(dH/dx_i) / m_i        (Hamilton: dp/dt = -dH/dx; a = (dp/dt) / m)
    velocity_residual_i = dH/dp_i - v_i   (Hamilton: dx/dt = dH/dp)

The paper's loss uses the accelerations only, which leave H's dependence on the momenta
free (only -dH/dx enters them); `TrainConfig.velocity_weight` > 0 adds the L1 norm of the
velocity residual, which pins it to the kinetic energy (the official code's comment "if
predicting dq_dt too").

H_pair and H_self are `gnn.model.mlp`s with Softplus activations (smooth: the loss
differentiates the forces again) and one output. The edges are the project's one template
(`gnn.graph.edges`, both directions, so each pair's energy is counted twice, as in the
paper), summed into their receivers by `nbody.graph.scatter_sum`. The "message" of an edge
is its pair energy, which distillation fits against the law's potential U(r').

The gradient is taken with `create_graph` whenever the caller records gradients (training),
so the loss on the accelerations can be back-propagated to the weights; under `no_grad`
(evaluation, distillation) it is taken without and the outputs are detached. The model always
runs in float32, outside any autocast: the accelerations are gradients through every hidden
layer, so bf16 would round the predictions themselves (see README, choices), and
torch.compile is not used for it (double backward).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from nbody import state
from nbody.graph import scatter_sum
from plumbing.errors import InputError

from .config import ModelConfig
from .graph import edges, reverse
from .model import mlp
from .strategies import get_strategy


class HamiltonianOutput(NamedTuple):
    """What `HamiltonianGNN.forward` returns; edges ordered as `gnn.graph.edges(n, topology)`."""

    acc: Tensor            # [B, n, dim] predicted accelerations -(dH/dx) / m
    messages: Tensor       # [B, E, 1] pair energies H_pair(z_receiver, z_sender)
    mu: None               # (ModelOutput's KL fields: always None here)
    logvar: None
    node_energy: Tensor    # [B, n] H_self,i + sum of the pair energies received by i (gnn.strategies.energy_penalty)
    dh_dconst: Tensor      # [B, n, F - 2 dim] dH/d(q_i, m_i): the regulariser's "other" gradient
    velocity_residual: Tensor  # [B, n, dim] dH/dp_i - v_i


def canonical(x: Tensor, dim: int) -> Tensor:
    """Node features with velocity replaced by momentum: (pos, m v, q, m), same shape [..., F]."""
    return torch.cat([state.pos(x, dim), state.vel(x, dim) * state.mass(x, dim)[..., None], x[..., 2 * dim:]], dim=-1)


class HamiltonianGNN(nn.Module):
    """H = sum H_self + sum H_pair, dynamics by autograd; see the module docstring.

    Args:
        cfg: a `ModelConfig` whose strategy's network is "energy", i.e. "hamiltonian" (kept as `self.cfg`).
    """

    amp_safe = False      # the trainer leaves autocast off (module docstring)
    compilable = False    # and does not torch.compile it
    records_messages = False  # no message history: its message is a scalar energy

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if get_strategy(cfg.strategy).network != "energy":
            raise InputError(f"HamiltonianGNN needs a strategy of network 'energy' (hamiltonian), got {cfg.strategy!r}")
        self.cfg = cfg
        self.pair_mlp = mlp(2 * cfg.n_features, 1, cfg.hidden, cfg.n_hidden_layers, nn.Softplus)
        self.self_mlp = mlp(cfg.n_features, 1, cfg.hidden, cfg.n_hidden_layers, nn.Softplus)

    def pair_energy(self, z_recv: Tensor, z_send: Tensor) -> Tensor:
        """H_pair on canonical features: z_recv, z_send [..., F] -> [..., 1] (symmetrised,
        (φ(i, j) + φ(j, i)) / 2, under `ModelConfig.third_law`: H, which sums both directions
        of every pair, is the same; the pair energy read from it has no antisymmetric part)."""
        energy = self.pair_mlp(torch.cat([z_recv, z_send], dim=-1))
        if self.cfg.third_law:
            energy = (energy + self.pair_mlp(torch.cat([z_send, z_recv], dim=-1))) / 2
        return energy

    def self_energy(self, z: Tensor) -> Tensor:
        """H_self on canonical features: z [..., F] -> [..., 1]."""
        return self.self_mlp(z)

    def energies(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(node energies [B, n], pair energies [B, E, 1]) of canonical states z [B, n, F];
        H of graph b is node_energy[b].sum()."""
        n = z.shape[1]
        senders, receivers = edges(n, self.cfg.topology, z.device)
        pair = self.pair_mlp(torch.cat([z[:, receivers], z[:, senders]], dim=-1))      # [B, E, 1]
        if self.cfg.third_law:
            pair = (pair + pair[:, reverse(n, self.cfg.topology, z.device)]) / 2
        node = self.self_energy(z)[..., 0] + scatter_sum(pair, receivers, n)[..., 0]    # [B, n]
        return node, pair

    def hamiltonian(self, z: Tensor) -> Tensor:
        """H [B] of canonical states z [B, n, F]."""
        return self.energies(z)[0].sum(dim=-1)

    def gradient(self, z: Tensor, create_graph: bool) -> tuple[Tensor, Tensor, Tensor]:
        """(dH/dz [B, n, F], node energies [B, n], pair energies [B, E, 1]) at canonical z.

        dH/dz[..., :dim] is dH/dx (= -dp/dt), [dim:2dim] dH/dp (= dx/dt).
        """
        with torch.enable_grad():
            z = z if z.requires_grad else z.detach().requires_grad_(True)
            node, pair = self.energies(z)
            (grad,) = torch.autograd.grad(node.sum(), z, create_graph=create_graph)
        return grad, node, pair

    def forward(self, x: Tensor) -> HamiltonianOutput:
        """Predict accelerations of a batch of same-size graphs.

        Args:
            x: [B, n, F] node features (pos, vel, q, m).
        Returns:
            HamiltonianOutput; detached when called without gradient recording.
        """
        cfg = self.cfg
        if x.dim() != 3 or x.shape[-1] != cfg.n_features:
            raise InputError(f"HamiltonianGNN expects node features [B, n, {cfg.n_features}], got {list(x.shape)}")
        create_graph = torch.is_grad_enabled()
        with torch.autocast(x.device.type, enabled=False):
            z = canonical(x, cfg.dim)
            grad, node, pair = self.gradient(z, create_graph)
            acc = -grad[..., :cfg.dim] / state.mass(z, cfg.dim)[..., None]
            residual = grad[..., cfg.dim:2 * cfg.dim] - state.vel(x, cfg.dim)
            out = HamiltonianOutput(acc, pair, None, None, node, grad[..., 2 * cfg.dim:], residual)
        if create_graph:
            return out
        return HamiltonianOutput(*(t.detach() if isinstance(t, Tensor) else t for t in out))
