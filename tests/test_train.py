"""gnn.train / gnn.checkpoint: loss, evaluation, a tiny learning run, resume, bad input.

Data are random spring states labelled with `nbody.laws.accelerations`, so no simulator is
needed. Masses are exp(0.3 N(0, 1)) rather than the paper's exp(N(0, 1)): with the paper's
spread the accelerations F/m are heavy-tailed and a seconds-long CPU run has not learned
the division yet; a narrower spread keeps the test short while still varying mass.
"""
import json
import types

import numpy as np
import pytest
import torch

from gnn.checkpoint import load_model
from gnn.config import ModelConfig, TrainConfig
from gnn.graph import edges
from gnn.history import load_history
from gnn.model import GNN, ModelOutput
from gnn.train import acceleration_scale, augment, batch_loss, evaluate, train
from nbody.laws import accelerations, get_law, pair_force
from nbody.state import pack
from plumbing.errors import InputError

SPRING = get_law("spring")
SOFTENING = 0.01


def spring_graphs(rng, n_graphs, n=4, dim=2, mass_sigma=0.3):
    """Random spring states: x [G, n, 2*dim+2], a [G, n, dim] float32."""
    pos = rng.normal(size=(n_graphs, n, dim))
    vel = rng.normal(size=(n_graphs, n, dim))
    q = rng.normal(size=(n_graphs, n))
    m = np.exp(mass_sigma * rng.normal(size=(n_graphs, n)))
    a = accelerations(SPRING, pos, vel, q, m, SOFTENING)
    x = pack(pos, vel, q, m)
    return x.astype(np.float32), a.astype(np.float32)


def spring_data(n_train, n_test=500, dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"train": spring_graphs(rng, n_train, dim=dim), "val": spring_graphs(rng, n_test, dim=dim),
            "test": spring_graphs(rng, n_test, dim=dim)}


def message_force_r2(model, x):
    """R^2 of an affine fit of each bottleneck message component to the true pair force [msg_dim]."""
    with torch.no_grad():
        msgs = model.eval()(torch.from_numpy(x)).messages.numpy()  # [G, E, msg_dim]
    senders, receivers = (t.numpy() for t in edges(x.shape[1], "full"))
    xr, xs = x[:, receivers], x[:, senders]                         # [G, E, F]
    force = pair_force(SPRING, xr[..., :2] - xs[..., :2], xr[..., 4], xs[..., 4], xr[..., 5], xs[..., 5],
                       SOFTENING).reshape(-1, 2)                    # [G*E, 2]
    design = np.c_[force, np.ones(len(force))]
    msgs = msgs.reshape(len(force), -1)
    r2 = []
    for k in range(msgs.shape[1]):
        coef, *_ = np.linalg.lstsq(design, msgs[:, k], rcond=None)
        r2.append(1 - np.var(msgs[:, k] - design @ coef) / np.var(msgs[:, k]))
    return np.array(r2)


def test_tiny_bottleneck_run_learns_the_force(tmp_path):
    data = {**spring_data(4000), "law": SPRING}   # with its law, the run records its message history
    model_cfg = ModelConfig(strategy="bottleneck", hidden=64, n_hidden_layers=2)
    train_cfg = TrainConfig(epochs=10, batch_size=32, device="cpu")
    torch.manual_seed(train_cfg.seed)
    r2_untrained = message_force_r2(GNN(model_cfg), data["test"][0])

    result = train(data, model_cfg, train_cfg, tmp_path, progress=False)

    m = result.metrics
    assert result.finished and m["steps"] == 10 * (4000 // 32)
    assert m["test"]["mae_per_node"] < 0.5 * m["baseline_mae_per_node"]
    assert m["history"][-1]["val_mae_per_node"] < m["history"][0]["val_mae_per_node"]
    r2 = message_force_r2(result.model, data["test"][0])
    assert (r2 > 0.6).all(), (r2, r2_untrained)
    assert (r2_untrained < 0.5).all()  # the check has teeth: random messages do not fit the force
    history = load_history(tmp_path)     # the robust R² recorded on held-out edges tells the same story
    assert list(history.step) == [0, 1000, m["steps"]]
    assert (history.r2_force[0] < 0.5).all() and (history.r2_force[-1] > 0.6).all(), history.r2_force

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert set(on_disk["test"]) == {"mae_per_node", "mae_per_node_std", "mae_per_node_sem",
                                    "loss_per_graph", "loss_per_graph_std", "n_graphs"}
    assert on_disk["test"]["n_graphs"] == 500 and on_disk["val"]["n_graphs"] == 500
    for key in ("baseline_mae_per_node", "steps", "epochs", "train_seconds", "graphs_per_second", "device", "amp"):
        assert key in on_disk

    loaded, meta = load_model(tmp_path / "checkpoint.pt")
    assert meta["step"] == m["steps"] and meta["model_config"]["strategy"] == "bottleneck"
    x = torch.from_numpy(data["test"][0][:16])
    torch.testing.assert_close(loaded(x).acc, result.model(x).acc)


@pytest.mark.parametrize("strategy", ["kl", "l1"])
def test_resume_from_last_pt_matches_an_uninterrupted_run(tmp_path, strategy):
    data = spring_data(320, n_test=64)
    model_cfg = ModelConfig(strategy=strategy, hidden=16, n_hidden_layers=1)
    train_cfg = TrainConfig(epochs=3, batch_size=32, device="cpu", checkpoint_every=4)
    whole = train(data, model_cfg, train_cfg, tmp_path / "whole", progress=False)

    first = train(data, model_cfg, train_cfg, tmp_path / "split", progress=False, stop_at_step=13)
    assert not first.finished and not (tmp_path / "split" / "metrics.json").exists()
    resumed = train(data, model_cfg, train_cfg, tmp_path / "split", progress=False)

    assert resumed.finished and resumed.metrics["steps"] == whole.metrics["steps"] == 30
    for p, q in zip(resumed.model.parameters(), whole.model.parameters()):
        torch.testing.assert_close(p, q)
    assert len(resumed.metrics["history"]) == len(whole.metrics["history"]) == 3
    for got, want in zip(resumed.metrics["history"], whole.metrics["history"]):
        assert got == pytest.approx(want)


def test_trains_from_a_dataset_directory(tmp_path):
    from nbody.config import SimConfig
    from nbody.dataset import generate_dataset

    path = generate_dataset(SimConfig(law="spring", n_sims=5, nt=20, integrator="reference"), tmp_path / "data",
                            progress=False)
    result = train(str(path), ModelConfig(hidden=8, n_hidden_layers=1),
                   TrainConfig(epochs=1, batch_size=16, device="cpu"), tmp_path / "run", progress=False)
    assert result.metrics["test"]["n_graphs"] > 0
    _, meta = load_model(tmp_path / "run")
    assert meta["dataset"]["path"] == str(path) and meta["dataset"]["meta"]["config"]["law"] == "spring"
    with pytest.raises(InputError, match="topology"):
        train(path, ModelConfig(topology="chain"), TrainConfig(epochs=1, device="cpu"), tmp_path / "x",
              progress=False)


def test_last_pt_from_other_configs_is_rejected(tmp_path):
    data = spring_data(64, n_test=16)
    model_cfg = ModelConfig(strategy="l1", hidden=8, n_hidden_layers=1)
    train(data, model_cfg, TrainConfig(epochs=1, batch_size=32, device="cpu"), tmp_path, progress=False,
          stop_at_step=1)
    with pytest.raises(InputError, match="different configs"):
        train(data, model_cfg, TrainConfig(epochs=2, batch_size=32, device="cpu"), tmp_path, progress=False)


def test_batch_loss_normalisation():
    b, n, e, msg_dim = 3, 4, 12, 5
    a = torch.full((b, n, 2), 2.0)
    ones = torch.ones(b, e, msg_dim)
    out = ModelOutput(acc=torch.zeros(b, n, 2), messages=ones, mu=ones, logvar=torch.zeros(b, e, msg_dim))
    cfg = TrainConfig(l1_weight=0.1, kl_weight=0.5)
    base = 2.0 * n * 2  # sum |da| per graph
    assert batch_loss(out, a, "standard", cfg).item() == pytest.approx(base)
    assert batch_loss(out, a, "bottleneck", cfg).item() == pytest.approx(base)
    # every graph's edges count: sum over the batch / B = e * msg_dim per graph, divided by n
    assert batch_loss(out, a, "l1", cfg).item() == pytest.approx(base + 0.1 * e * msg_dim / n)
    assert batch_loss(out, a, "kl", cfg).item() == pytest.approx(base + 0.5 * e * msg_dim * 0.5 / n)



def test_relative_loss_weights_each_node_by_its_acceleration():
    # one graph, three nodes: |a| = 5 (at the scale), 50 (a close encounter), 0 (at rest); error 1 each
    a = torch.tensor([[[3.0, 4.0], [30.0, 40.0], [0.0, 0.0]]])
    out = ModelOutput(acc=a + torch.tensor([1.0, 0.0]), messages=None, mu=None, logvar=None)
    plain = batch_loss(out, a, "bottleneck", TrainConfig())
    assert plain.item() == pytest.approx(3.0)
    cfg = TrainConfig(relative_loss_floor=0.5)          # floor 2.5, weights 7.5 / (|a| + 2.5)
    weighted = batch_loss(out, a, "bottleneck", cfg, a_scale=5.0)
    assert weighted.item() == pytest.approx(1.0 + 7.5 / 52.5 + 3.0)
    assert acceleration_scale(a.numpy()) == pytest.approx(5.0)
    with pytest.raises(InputError, match="relative_loss_floor"):
        TrainConfig(relative_loss_floor=0.0)
    with pytest.raises(InputError, match="all zero"):
        acceleration_scale(np.zeros((2, 3, 2)))

def test_augment_translates_each_graph_rigidly():
    torch.manual_seed(0)
    x = torch.randn(50, 4, 6)
    shifted = augment(x, dim=2, sigma=3.0)
    delta = shifted - x                                       # [G, n, F]
    assert torch.equal(delta[..., 2:], torch.zeros_like(delta[..., 2:]))
    torch.testing.assert_close(delta[..., :2], delta[:, :1, :2].expand(-1, 4, -1))  # same within a graph
    assert 2.0 < delta[:, 0, :2].std().item() < 4.0           # independent N(0, 9) across graphs
    assert augment(x, 2, 0.0) is x


def test_evaluate_matches_hand_computed_errors():
    model = GNN(ModelConfig(strategy="standard", hidden=8, n_hidden_layers=1))
    with torch.no_grad():  # a model that predicts zero acceleration
        model.node_mlp[-1].weight.zero_()
        model.node_mlp[-1].bias.zero_()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3, 6)).astype(np.float32)
    a = rng.normal(size=(10, 3, 2)).astype(np.float32)
    metrics = evaluate(model, x, a, batch_size=4)
    per_graph = np.abs(a).sum(axis=(1, 2))
    assert metrics["n_graphs"] == 10
    assert metrics["loss_per_graph"] == pytest.approx(per_graph.mean(), rel=1e-5)
    assert metrics["mae_per_node"] == pytest.approx(per_graph.mean() / 3, rel=1e-5)
    assert metrics["mae_per_node_std"] == pytest.approx((per_graph / 3).std(ddof=1), rel=1e-5)
    assert metrics["mae_per_node_sem"] == pytest.approx((per_graph / 3).std(ddof=1) / np.sqrt(10), rel=1e-5)


def test_bad_input_raises_input_error(tmp_path):
    cfg = ModelConfig(strategy="l1", hidden=8, n_hidden_layers=1)
    tcfg = TrainConfig(epochs=1, device="cpu")
    with pytest.raises(InputError, match="not found"):
        train(tmp_path / "no_such_dataset", cfg, tcfg, tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="dim"):
        train(spring_data(64, 16, dim=3), cfg, tcfg, tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="'test'"):
        train({"train": spring_data(64)["train"]}, cfg, tcfg, tmp_path / "out", progress=False)
    fake_dataset = types.SimpleNamespace(config=types.SimpleNamespace(dim=3), law=SPRING, meta={},
                                         split=lambda name: None)
    with pytest.raises(InputError, match="dim=3"):
        train(fake_dataset, cfg, tcfg, tmp_path / "out", progress=False)
    with pytest.raises(InputError):
        ModelConfig(strategy="sparse")


def test_bad_checkpoints_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_model(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match="corrupt"):
        load_model(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(InputError, match="not a"):
        load_model(foreign)
    data = spring_data(64, n_test=16)
    train(data, ModelConfig(hidden=8, n_hidden_layers=1), TrainConfig(epochs=1, batch_size=32, device="cpu"),
          tmp_path / "run", progress=False, stop_at_step=1)
    with pytest.raises(InputError, match="not a"):
        load_model(tmp_path / "run" / "last.pt")  # a resume point is not a model checkpoint


def test_a_last_pt_from_before_the_cpu_fields_resumes(tmp_path):
    """A resume point written before TrainConfig had cpu_amp/cpu_compile reads them as their
    defaults (eager float32 on CPU, what that run used) and resumes."""
    from gnn.checkpoint import RESUME_KIND, load_torch, save_torch
    data = spring_data(64, n_test=16)
    model_cfg = ModelConfig(strategy="bottleneck", hidden=8, n_hidden_layers=1)
    cfg = TrainConfig(epochs=2, batch_size=32, device="cpu")
    assert (cfg.cpu_amp, cfg.cpu_compile) == (False, False)
    train(data, model_cfg, cfg, tmp_path, progress=False, stop_at_step=1)
    state = load_torch(tmp_path / "last.pt", RESUME_KIND)
    for name in ("cpu_amp", "cpu_compile"):
        del state["train_config"][name]
    save_torch(tmp_path / "last.pt", RESUME_KIND, state)
    result = train(data, model_cfg, cfg, tmp_path, progress=False)
    assert result.finished and result.metrics["steps"] == 4
    assert (result.metrics["amp"], result.metrics["compiled"]) == (False, False)


def test_cpu_amp_trains_in_bf16_on_cpu(tmp_path):
    data = spring_data(128, n_test=32)
    model_cfg = ModelConfig(strategy="bottleneck", hidden=16, n_hidden_layers=1)
    runs = {amp: train(data, model_cfg, TrainConfig(epochs=2, batch_size=32, device="cpu", cpu_amp=amp),
                       tmp_path / str(amp), progress=False) for amp in (False, True)}
    assert runs[True].metrics["amp"] and not runs[False].metrics["amp"]
    losses = {amp: r.metrics["history"][-1]["train_loss"] for amp, r in runs.items()}
    assert np.isfinite(losses[True]) and losses[True] != losses[False]   # bf16 rounding: not the fp32 path
    assert losses[True] == pytest.approx(losses[False], rel=0.05)
