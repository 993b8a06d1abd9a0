"""The graph network of Cranmer et al. 2020 (paper §2, Eq. 1-3; App. A), one class for all strategies.

In:  node features x [B, n, F] (F = 2*dim + 2: pos, vel, q, m; raw absolute values, positions
     included, as in the official code).
Out: `ModelOutput(acc [B, n, dim], messages [B, E, msg_dim], mu, logvar)`.

    message  e_ij = phi_e(cat[x_i, x_j])          i = receiver, j = sender (gnn.graph)
    sum      E_i  = sum over edges (j -> i) of e_ij  (index_add_, nbody.graph.scatter_sum)
    node     a_i  = phi_v(cat[x_i, E_i])           predicted acceleration

phi_e and phi_v are built by the same `mlp` (Linear-ReLU blocks, `n_hidden_layers` hidden
layers of `hidden` units, then a Linear output). The strategies differ only in the edge
output, which their `gnn.strategies.Strategy` describes:

    standard, l1   phi_e -> 100 message components (the L1 penalty lives in the loss)
    bottleneck     phi_e -> dim components
    kl             (variational) phi_e -> 2*msg_dim = cat[mu, logvar]: mu is the FIRST half, logvar the
                   second (the paper's App. A.2 layout; the official code interleaves them,
                   docs/facts.md §4 #13 - the layout is internal, callers get mu and logvar).
                   logvar is clamped to [-logvar_clamp, logvar_clamp]. In train mode the
                   message is the sample mu + eps * exp(logvar / 2); in eval mode it is mu
                   (the official code also samples at evaluation; the demo analyses mu).

Newton's third law (`ModelConfig.third_law`): the message is made antisymmetric,
e_ij = (phi_e(x_i, x_j) - phi_e(x_j, x_i)) / 2 (for "kl": mu so, logvar the symmetric mean), so
e_ij = -e_ji exactly, as every pair force of `nbody.laws` is. A message may then not carry a
factor of the receiver alone (its mass, its charge) that the node network divides out again:
the messages are a linear map of the pair force and the node network holds 1/m_i. The forward
pass gathers each edge's reverse (`gnn.graph.reverse`), so phi_e still runs once per edge.

Mixed precision: under a bf16 autocast (training on CUDA) the hidden layers run in bf16 but
each MLP's output layer runs in float32, so neither the predicted accelerations nor the
summed messages are rounded to bf16's 8-bit mantissa (~0.4%, as large as the paper's
per-component test error).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from nbody.graph import scatter_sum
from plumbing.errors import InputError

from .config import ModelConfig
from .graph import edges, reverse
from .strategies import get_strategy


class ModelOutput(NamedTuple):
    """What `GNN.forward` returns; edges are ordered as `gnn.graph.edges(n, topology)`."""

    acc: Tensor            # [B, n, dim] predicted accelerations
    messages: Tensor       # [B, E, msg_dim] messages summed by phi_v (a KL sample in train mode)
    mu: Tensor | None      # [B, E, msg_dim] KL message means; None unless variational
    logvar: Tensor | None  # [B, E, msg_dim] KL clamped log-variances; None unless variational


def mlp(in_dim: int, out_dim: int, hidden: int, n_hidden_layers: int,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear(in, hidden)-act, (n_hidden_layers - 1) x [Linear(hidden, hidden)-act], Linear(hidden, out).

    Args:
        in_dim, out_dim: input and output widths.
        hidden: width of each hidden layer.
        n_hidden_layers: number of hidden layers (0 gives a single Linear(in, out)).
        activation: the nonlinearity's class: ReLU for the message-passing GNN, Softplus
            for the Hamiltonian model (`gnn.hamiltonian`), whose forces are its gradients.
    Returns:
        An `nn.Sequential` whose last module is the output `nn.Linear`.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class GNN(nn.Module):
    """Message-passing network predicting accelerations; see the module docstring.

    Args:
        cfg: the model's `ModelConfig` (kept as `self.cfg`).
    """

    amp_safe = True           # the trainer may run it under a bf16 autocast (module docstring)
    compilable = True         # and torch.compile it
    records_messages = True   # its messages feed the message history (gnn.history)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.variational = get_strategy(cfg.strategy).variational
        msg_dim = cfg.resolved_msg_dim
        edge_out = get_strategy(cfg.strategy).edge_outputs(msg_dim)
        self.edge_mlp = mlp(2 * cfg.n_features, edge_out, cfg.hidden, cfg.n_hidden_layers)
        self.node_mlp = mlp(cfg.n_features + msg_dim, cfg.dim, cfg.hidden, cfg.n_hidden_layers)

    def edge_stats(self, x_recv: Tensor, x_send: Tensor) -> tuple[Tensor, Tensor | None]:
        """phi_e on cat[x_recv, x_send] (made antisymmetric under `third_law`, module docstring).

        Args:
            x_recv, x_send: [..., F] receiver and sender features.
        Returns:
            (mu [..., msg_dim], logvar [..., msg_dim] clamped) for a variational strategy ("kl");
            (message [..., msg_dim], None) otherwise.
        Raises:
            InputError: an input that is not a real floating-point tensor of width F, or
                leading shapes that differ.
        """
        F = self.cfg.n_features
        _require_features("GNN.edge", ("receiver", x_recv, F), ("sender", x_send, F))
        raw = self._phi(x_recv, x_send)                                       # [..., edge_out]
        if self.cfg.third_law:
            raw = self._antisymmetric(raw, self._phi(x_send, x_recv))
        return self._split(raw)

    def _phi(self, x_recv: Tensor, x_send: Tensor) -> Tensor:
        """phi_e's raw outputs [..., edge_out] on cat[x_recv, x_send]."""
        return _run_mlp(self.edge_mlp, torch.cat([x_recv, x_send], dim=-1))

    def _antisymmetric(self, raw: Tensor, raw_reverse: Tensor) -> Tensor:
        """phi_e's outputs on (i, j) and on (j, i) -> the third-law outputs of (i, j): the
        message (mu) half their difference, a KL logvar their mean (module docstring)."""
        if not self.variational:
            return (raw - raw_reverse) / 2
        mu, logvar = raw.chunk(2, dim=-1)
        mu_rev, logvar_rev = raw_reverse.chunk(2, dim=-1)
        return torch.cat([(mu - mu_rev) / 2, (logvar + logvar_rev) / 2], dim=-1)

    def _split(self, raw: Tensor) -> tuple[Tensor, Tensor | None]:
        """phi_e's outputs -> (message or mu, clamped logvar or None)."""
        if not self.variational:
            return raw, None
        mu, logvar = raw.chunk(2, dim=-1)                                      # [..., msg_dim] each
        c = self.cfg.logvar_clamp
        return mu, logvar.clamp(-c, c)

    def edge(self, x_recv: Tensor, x_send: Tensor) -> Tensor:
        """The deterministic message phi_e(x_recv, x_send) [..., msg_dim] (mu when variational)."""
        return self.edge_stats(x_recv, x_send)[0]

    def node(self, x: Tensor, agg: Tensor) -> Tensor:
        """phi_v on cat[x, agg]: x [..., F], summed messages agg [..., msg_dim] -> acceleration [..., dim]
        (InputError as `edge_stats` for inputs of another width, dtype or leading shape)."""
        _require_features("GNN.node", ("node features", x, self.cfg.n_features),
                          ("summed messages", agg, self.cfg.resolved_msg_dim))
        return _run_mlp(self.node_mlp, torch.cat([x, agg], dim=-1))

    def forward(self, x: Tensor) -> ModelOutput:
        """Predict accelerations of a batch of same-size graphs.

        Args:
            x: [B, n, F] node features.
        Returns:
            ModelOutput (acc [B, n, dim], messages [B, E, msg_dim], mu, logvar); edge e runs
            from senders[e] to receivers[e] of `gnn.graph.edges(n, cfg.topology)`.
        """
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise InputError(f"GNN expects node features [B, n, {self.cfg.n_features}], got {_describe(x)}")
        _require_features("GNN", ("node features", x, self.cfg.n_features))
        n = x.shape[1]
        senders, receivers = edges(n, self.cfg.topology, x.device)
        raw = self._phi(x[:, receivers], x[:, senders])                    # [B, E, edge_out]
        if self.cfg.third_law:
            raw = self._antisymmetric(raw, raw[:, reverse(n, self.cfg.topology, x.device)])
        mu, logvar = self._split(raw)                                      # [B, E, msg_dim]
        if logvar is not None and self.training:
            messages = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterised sample
        else:
            messages = mu
        agg = scatter_sum(messages, receivers, n)                          # [B, n, msg_dim]
        acc = self.node(x, agg)                                            # [B, n, dim]
        if logvar is None:
            return ModelOutput(acc, messages, None, None)
        return ModelOutput(acc, messages, mu, logvar)


def _require_features(where: str, *inputs: tuple[str, Tensor, int]) -> None:
    """InputError unless each (name, tensor, width) is a real floating-point tensor [..., width]
    and all share their leading shape: shape and dtype only, no pass over the values."""
    for name, tensor, width in inputs:
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point() or tensor.dim() < 1 \
                or tensor.shape[-1] != width:
            raise InputError(f"{where}: {name} must be a real floating-point tensor [..., {width}], "
                             f"got {_describe(tensor)}")
    leading = [tuple(tensor.shape[:-1]) for _, tensor, _ in inputs]
    if any(lead != leading[0] for lead in leading[1:]):
        raise InputError(f"{where}: {' and '.join(name for name, _, _ in inputs)} must share their leading "
                         f"shape, got {' and '.join(str(list(lead)) for lead in leading)}")


def _describe(value) -> str:
    """`value` as an error message shows it: a tensor's dtype and shape, else its type."""
    if isinstance(value, Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {list(value.shape)}"
    return type(value).__name__


def _run_mlp(net: nn.Sequential, inp: Tensor) -> Tensor:
    """Apply `net`, with its output layer in float32 when an autocast is active."""
    if not torch.is_autocast_enabled(inp.device.type):
        return net(inp)
    hidden = net[:-1](inp)
    with torch.autocast(inp.device.type, enabled=False):
        return net[-1](hidden.float())
