"""gnn.strategies: the registry is the one place a strategy is defined.

A fifth strategy registered with one `register_strategy` call (here: an L2 penalty on the
messages) is accepted by the configs, gets its network, trains, is read by distillation and
picks up its distillation defaults in the cpu preset, with no other file touched.
"""
import numpy as np
import pytest
import torch

from distill.pipeline import network_from_model
from gnn import strategies
from gnn.build import build_model
from gnn.config import ModelConfig, TrainConfig
from gnn.model import GNN
from gnn.strategies import Strategy, get_strategy, register_strategy, strategy_names
from gnn.train import batch_loss, train
from nbody.laws import accelerations, get_law
from nbody.state import pack
from pipeline import presets
from plumbing.errors import InputError


def _l2_penalty(loss, out, cfg, n):
    return loss + cfg.l1_weight * out.messages.float().square().sum() / n


@pytest.fixture
def l2(monkeypatch):
    """The registry with a fifth strategy "l2" added (removed again after the test)."""
    monkeypatch.setattr(strategies._STRATEGIES, "_entries", dict(strategies._STRATEGIES._entries))
    return register_strategy(Strategy("l2", "L2", _l2_penalty, msg_dim=7, recipe={"align_components": "all"}))


def _spring_arrays(n_graphs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos, vel = rng.normal(size=(2, n_graphs, 4, 2))
    q, m = rng.normal(size=(n_graphs, 4)), np.exp(0.3 * rng.normal(size=(n_graphs, 4)))
    a = accelerations(get_law("spring"), pos, vel, q, m, 0.01)
    return pack(pos, vel, q, m).astype(np.float32), a.astype(np.float32)


def test_the_built_in_strategies_in_order():
    assert strategy_names() == ("standard", "bottleneck", "l1", "kl", "hamiltonian")
    for name in strategy_names():
        assert ModelConfig(strategy=name).strategy == name
    with pytest.raises(InputError, match="unknown strategy 'dropout'; choose one of standard, bottleneck"):
        get_strategy("dropout")
    with pytest.raises(InputError, match="msg_dim must be 1"):
        ModelConfig(strategy="hamiltonian", msg_dim=3)


def test_a_fifth_strategy_registered_in_one_place_is_selectable_and_trains(l2, tmp_path):
    assert "l2" in strategy_names()
    cfg = ModelConfig(strategy="l2", hidden=16, n_hidden_layers=1)
    assert cfg.resolved_msg_dim == 7
    model = build_model(cfg)
    assert isinstance(model, GNN) and model.edge_mlp[-1].out_features == 7

    x, a = _spring_arrays(8)
    out = model(torch.from_numpy(x))
    plain = batch_loss(out, torch.from_numpy(a), "standard", TrainConfig())
    penalised = batch_loss(out, torch.from_numpy(a), "l2", TrainConfig())
    assert penalised.item() == pytest.approx(plain.item() + 1e-2 * out.messages.square().sum().item() / 4 / 8,
                                             rel=1e-5)

    result = train({"train": (x, a), "test": (x, a)}, cfg,
                   TrainConfig(epochs=1, batch_size=8, message_history_every=0, device="cpu", seed=0),
                   tmp_path, progress=False)
    assert result.finished and result.metrics["steps"] == 1
    assert np.isfinite(result.metrics["test"]["mae_per_node"])
    assert network_from_model(result.model.cpu()).logvar is None

    run_cfg = presets.preset("cpu", strategy="l2")
    assert run_cfg.distill.align_components == "all"
