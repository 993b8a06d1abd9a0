"""The message strategies of the graph network: one registered `Strategy` each (paper §2, §4.2; App. A).

In:  a strategy name (`ModelConfig.strategy`, run.py's --strategy).
Out: its `Strategy`, which says everything that depends on the strategy:
     the edge output    message width (`msg_dim`, or the spatial dimension for the bottleneck)
                        and whether φᵉ emits a mean and a log-variance (`variational`);
     the network        "message" (`gnn.model.GNN`) or "energy" (`gnn.hamiltonian.HamiltonianGNN`),
                        picked by `gnn.build.build_model`;
     the loss           `penalise(loss, out, cfg, n)`: the summed acceleration error of a batch
                        with the strategy's penalty added (`gnn.train.batch_loss`);
     the reading        how distillation and the message history read the messages: the top
                        `dim` components by std (standard, l1; for the bottleneck those are all
                        of them), or by mean KL, reading the means (kl; `gnn.messages.significance`);
                        an "energy" network is distilled through its pair energy (`distill.energy`);
     the defaults      `recipe`: the `DistillConfig` fields the cpu preset's recipe sets for it
                        (plain data; `runconfig.preset`), `title` and `published` for the tables.
`strategy_names()` lists them in registration order (the CLI's choices, `ModelConfig`'s check);
adding a strategy is one `register_strategy(Strategy(...))`, here or in the caller's code.
Torch-free at import: the penalties use only tensor methods.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from plumbing.errors import InputError
from plumbing.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor

# Message width of every strategy except the bottleneck and the Hamiltonian (paper App. A;
# official models.py).
WIDE_MSG_DIM = 100
NETWORKS = ("message", "energy")

# (loss, model output, `gnn.config.TrainConfig`, particles per graph) -> loss with the penalty
# added; the config is typed Any because gnn.config reads this registry.
Penalty = Callable[["Tensor", Any, Any, int], "Tensor"]


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per component: 0.5 (mu^2 + exp(logvar) - logvar - 1).

    The -1 makes it zero at the prior (the official demo drops it; a constant, so gradients
    are the same). Finite for any finite mu and any logvar the model can emit (clamped).

    Args:
        mu, logvar: [..., msg_dim].
    Returns:
        [..., msg_dim] non-negative divergences.
    """
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0)


def energy_penalty(out) -> Tensor:
    """The Hamiltonian model's regulariser without its weight, summed over a batch of
    `gnn.hamiltonian.HamiltonianOutput`: sum over nodes of the squared node energy plus the
    squared gradient of H with respect to each node's charge and mass (App. A.4; the official
    code slices that gradient by rows, `dH[2*ndim:]`, which for n=4 in 2D is empty: here it is
    the q and m columns, as the paper describes)."""
    return out.node_energy.float().square().sum() + out.dh_dconst.float().square().sum()


def _no_penalty(loss: Tensor, out, cfg, n: int) -> Tensor:
    return loss


def _l1_penalty(loss: Tensor, out, cfg, n: int) -> Tensor:
    """+ l1_weight * sum over the batch's edges of ||m||_1 / n."""
    return loss + cfg.l1_weight * out.messages.float().abs().sum() / n


def _kl_penalty(loss: Tensor, out, cfg, n: int) -> Tensor:
    """+ kl_weight * sum over the batch's edges and components of KL / n."""
    return loss + cfg.kl_weight * kl_divergence(out.mu.float(), out.logvar.float()).sum() / n


def _energy_penalty(loss: Tensor, out, cfg, n: int) -> Tensor:
    """+ energy_weight * `energy_penalty`, + velocity_weight * sum |dH/dp - v| when that weight is set."""
    loss = loss + cfg.energy_weight * energy_penalty(out)
    if cfg.velocity_weight:
        loss = loss + cfg.velocity_weight * out.velocity_residual.abs().sum()
    return loss


@dataclass(frozen=True, eq=False)
class Strategy:
    """One message strategy (module docstring).

    Attributes:
        name: what `ModelConfig.strategy` and --strategy call it.
        title: its column title in the tables.
        penalise: (loss [], model output, TrainConfig, n) -> loss with the penalty added.
        msg_dim: default message width; None means the spatial dimension (the bottleneck).
        msg_dim_fixed: the width cannot be set (`ModelConfig.msg_dim` must be None or `msg_dim`).
        variational: φᵉ emits 2·msg_dim outputs, cat[mu, logvar]; the message is a sample in
            training, mu otherwise, and components are ranked by their mean KL.
        network: "message" or "energy" (module docstring).
        sparse: the strategy makes the messages sparse; a dense one's failed run is told to
            try a sparse one (`analysis.verdict`).
        published: its key in the published tables (`analysis.published`); None: `name`.
        recipe: {DistillConfig field: value} the cpu preset sets for it on top of the recipe.
    """

    name: str
    title: str
    penalise: Penalty = _no_penalty
    msg_dim: int | None = WIDE_MSG_DIM
    msg_dim_fixed: bool = False
    variational: bool = False
    network: str = "message"
    sparse: bool = True
    published: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.network not in NETWORKS:
            raise InputError(f"strategy {self.name!r}: network must be one of {NETWORKS}, got {self.network!r}")

    @property
    def published_key(self) -> str:
        """The strategy's column in the published tables."""
        return self.published or self.name

    def resolved_msg_dim(self, msg_dim: int | None, dim: int) -> int:
        """The message width of a model with `ModelConfig.msg_dim` = msg_dim in `dim` dimensions."""
        if msg_dim is not None:
            return msg_dim
        return dim if self.msg_dim is None else self.msg_dim

    def edge_outputs(self, msg_dim: int) -> int:
        """Width of φᵉ's output for messages of width msg_dim (twice it when variational)."""
        return 2 * msg_dim if self.variational else msg_dim


_STRATEGIES: Registry[Strategy] = Registry("strategy")


def register_strategy(strategy: Strategy) -> Strategy:
    """Make `strategy` selectable under its name (replacing one of that name); returns it."""
    return _STRATEGIES.register(strategy.name, strategy)


def strategy_names() -> tuple[str, ...]:
    """The registered strategies' names, in registration order."""
    return _STRATEGIES.names()


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`; InputError listing the registered ones otherwise."""
    return _STRATEGIES.get(name)


def find_strategy(name: str) -> Strategy | None:
    """The strategy called `name`, None for a name that is no strategy (a planted or
    symbolic model's results, an unregistered strategy's run)."""
    return _STRATEGIES.find(name)


# Messages that are not sparse after the cpu preset's training: the aligned basis combines all
# components (runconfig.preset's docstring, benchmarks/RESULTS.md "L1: the node model's reading").
_ALL_COMPONENTS = {"align_components": "all"}

register_strategy(Strategy("standard", "Standard", sparse=False, recipe=dict(_ALL_COMPONENTS)))
register_strategy(Strategy("bottleneck", "Bottleneck", msg_dim=None))
register_strategy(Strategy("l1", "L1", _l1_penalty, recipe=dict(_ALL_COMPONENTS)))
register_strategy(Strategy("kl", "KL", _kl_penalty, variational=True, recipe=dict(_ALL_COMPONENTS)))
# The pair energy is the potential itself, and r1's (m1 m2 log r') needs log; an energy is
# defined only up to terms in the particle constants, which "best_heldout" allows for
# (runconfig.preset's docstring, benchmarks/RESULTS.md "Hamiltonian model").
register_strategy(Strategy("hamiltonian", "Hamiltonian (FlatHGN)", _energy_penalty, msg_dim=1, msg_dim_fixed=True,
                           network="energy", sparse=False, published="flathgn",
                           recipe={"operators": ("+", "-", "*", "/", "log"), "selection": "best_heldout"}))
