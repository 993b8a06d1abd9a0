"""The Hamiltonian model (gnn.hamiltonian) and its distillation (distill.energy, judge.judge_energy).

A planted Hamiltonian (the law's own U(r') per pair, p²/(2m) per particle, put in the model's
two energy slots) must give back the simulator's accelerations through the model's own
autograd path; the energy is invariant under permutations (swapping identical particles) and
translations; integrating Hamilton's equations of a random model conserves its own H; training
resumes to the same weights; the energy judge accepts the true forms up to terms in the
particle constants and refuses near misses; `run.py all --strategy hamiltonian` runs end to
end and `run.py analyse` reads the run.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn

from distill.candidate import parse
from distill.config import DistillConfig
from distill.schema import SCHEMA_VERSION
from distill.energy import (_pair_rows, _self_rows, energy_callables, heldout_rows, kinetic, potential,
                            self_input_names, symbolic_accelerations, symmetric)
from distill.judge import judge_energy
from distill.messages import edge_input_names
from distill.data import DistillData
from distill.select import heldout_loss
from gnn.checkpoint import load_model
from gnn.config import ModelConfig, TrainConfig
from gnn.hamiltonian import HamiltonianGNN, canonical
from gnn.train import train
from nbody import state
from nbody.expr import SYMBOLS
from nbody.initial import initial_conditions
from nbody.laws import accelerations, get_law
from pipeline import cli

EPS = 0.01
LAWS = ("spring", "r1", "r2", "charge")


def _states(law, n=4, dim=2, count=16, seed=0) -> np.ndarray:
    pos, vel, q, m = initial_conditions(law, n, dim, count, np.random.default_rng(seed))
    return state.pack(pos, vel, q, m)


class PlantedPair(nn.Module):
    """H_pair = U(r')/2 of the law from cat[z_recv, z_send] (each pair has two directed edges)."""

    def __init__(self, law, dim):
        super().__init__()
        self.dim = dim
        self.u = sp.lambdify(SYMBOLS, law.potential_expr, modules=[{"log": torch.log}, "math"])

    def forward(self, cat):
        f = cat.shape[-1] // 2
        z1, z2 = cat[..., :f], cat[..., f:]
        r = torch.linalg.vector_norm(state.pos(z1, self.dim) - state.pos(z2, self.dim), dim=-1)
        u = self.u(r + EPS, state.charge(z1, self.dim), state.charge(z2, self.dim),
                   state.mass(z1, self.dim), state.mass(z2, self.dim))
        return (0.5 * u)[..., None]


class PlantedSelf(nn.Module):
    """H_self = p²/(2m) from canonical z = (x, p, q, m)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, z):
        return (state.vel(z, self.dim).square().sum(-1) / (2 * state.mass(z, self.dim)))[..., None]


def _model(dim=2, hidden=16, planted_law=None) -> HamiltonianGNN:
    torch.manual_seed(0)
    model = HamiltonianGNN(ModelConfig(strategy="hamiltonian", dim=dim, hidden=hidden, n_hidden_layers=2))
    if planted_law is not None:
        model.pair_mlp, model.self_mlp = PlantedPair(planted_law, dim), PlantedSelf(dim)
    return model.double().eval()


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", LAWS)
def test_a_planted_hamiltonian_gives_the_simulators_accelerations(name, dim):
    law = get_law(name)
    x = _states(law, dim=dim)
    with torch.no_grad():
        out = _model(dim, planted_law=law)(torch.from_numpy(x))
    want = accelerations(law, state.pos(x, dim), state.vel(x, dim), state.charge(x, dim), state.mass(x, dim), EPS)
    np.testing.assert_allclose(out.acc.numpy(), want, rtol=1e-10, atol=1e-10)
    # The residual of dx/dt = dH/dp is zero for the true kinetic energy.
    assert np.abs(out.velocity_residual.numpy()).max() < 1e-12


def test_a_planted_pair_energy_differentiated_symbolically_gives_the_same_accelerations():
    """distill.energy's symbolic model (sympy's derivative of the pair equation) is the
    model's autograd path on the same energy."""
    law = get_law("r1")
    x = _states(law)
    expr = parse("0.5*m1*m2*log(rs) + 3*q1", edge_input_names(2))
    got = symbolic_accelerations(expr, law, 2, EPS)(x)
    want = accelerations(law, state.pos(x, 2), state.vel(x, 2), state.charge(x, 2), state.mass(x, 2), EPS)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_the_symmetrised_pair_energy_drops_a_part_that_cancels_in_h():
    law = get_law("r2")
    x = torch.from_numpy(_states(law))
    model = _model(planted_law=law)
    odd = lambda xr, xs: model.pair_mlp(torch.cat([xr, xs], -1))[..., 0] + 0.3 * (xr[..., 0] - xs[..., 0])  # noqa: E731
    xr, xs = x[:, 0], x[:, 1]
    torch.testing.assert_close(symmetric(odd)(xr, xs), model.pair_mlp(torch.cat([xr, xs], -1))[..., 0])


def test_the_energy_is_invariant_to_swapping_particles_and_the_planted_one_to_translation():
    law = get_law("charge")
    x = torch.from_numpy(_states(law, n=5))
    model = _model()                                           # random weights
    z = canonical(x, 2)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(model.hamiltonian(z[:, perm]), model.hamiltonian(z), rtol=1e-12, atol=1e-12)
    # Swapping two particles permutes their predicted accelerations with them.
    torch.testing.assert_close(model(x[:, perm]).acc, model(x).acc[:, perm], rtol=1e-10, atol=1e-12)
    planted = _model(planted_law=law)
    shifted = z.clone()
    shifted[..., :2] += torch.tensor([2.5, -1.5], dtype=z.dtype)
    torch.testing.assert_close(planted.hamiltonian(shifted), planted.hamiltonian(z), rtol=1e-10, atol=1e-10)


def test_hamiltons_equations_of_a_random_model_conserve_its_energy():
    """RK4 on dx/dt = dH/dp, dp/dt = -dH/dx of the model's own gradient: H stays constant
    to the integrator's error (and would drift if the gradient were not H's)."""
    model = _model(hidden=32)
    z = canonical(torch.from_numpy(_states(get_law("spring"), count=4)), 2)

    def flow(z):
        grad = model.gradient(z, create_graph=False)[0]
        return torch.cat([grad[..., 2:4], -grad[..., :2], torch.zeros_like(grad[..., 4:])], dim=-1)

    h0, dt = model.hamiltonian(z), 1e-2
    for _ in range(100):
        k1 = flow(z)
        k2 = flow(z + 0.5 * dt * k1)
        k3 = flow(z + 0.5 * dt * k2)
        k4 = flow(z + dt * k3)
        z = z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    moved = (z[..., :4] - canonical(torch.from_numpy(_states(get_law("spring"), count=4)), 2)[..., :4]).abs().max()
    assert moved > 1e-3                                  # the state did evolve
    assert (model.hamiltonian(z) - h0).abs().max() < 1e-8


def _arrays(count=48, seed=0):
    law = get_law("spring")
    x = _states(law, count=count, seed=seed).astype(np.float32)
    a = accelerations(law, state.pos(x, 2), state.vel(x, 2), state.charge(x, 2), state.mass(x, 2), EPS)
    return x, a.astype(np.float32)


def test_training_resumes_to_the_same_weights_and_the_checkpoint_loads(tmp_path):
    data = {"train": _arrays(), "test": _arrays(16, seed=1)}
    model_cfg = ModelConfig(strategy="hamiltonian", dim=2, hidden=8, n_hidden_layers=1)
    cfg = TrainConfig(batch_size=8, epochs=2, device="cpu", checkpoint_every=3, velocity_weight=0.5)
    whole = train(data, model_cfg, cfg, tmp_path / "whole", progress=False)
    part = train(data, model_cfg, cfg, tmp_path / "part", progress=False, stop_at_step=5)
    assert not part.finished
    resumed = train(data, model_cfg, cfg, tmp_path / "part", progress=False)
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    loaded, meta = load_model(tmp_path / "whole")
    assert isinstance(loaded, HamiltonianGNN) and meta["model_config"]["strategy"] == "hamiltonian"
    x = torch.from_numpy(data["test"][0])
    torch.testing.assert_close(loaded(x).acc, whole.model.cpu()(x).acc)
    assert whole.metrics["amp"] is False and np.isfinite(whole.metrics["test"]["mae_per_node"])


@pytest.mark.parametrize("name, truth, near_misses", [
    ("spring", "0.5*(rs - 1)**2 + 0.2*m1*m2 - 3", ["0.5*(rs - 1)**3", "0.5*rs**2"]),
    ("r1", "0.5*m1*m2*log(rs) - 0.4*q1", ["0.5*m1*log(rs)", "0.5*m1*m2/rs", "-0.5*m1*m2*log(rs)"]),
    ("r2", "-0.5*m1*m2/rs + m2", ["-0.5*m1*m2/rs**2", "-0.5*m1/rs"]),
    ("charge", "0.5*q1*q2/rs - 0.0112 - 0.00143*q1", ["0.5*q1/rs", "0.5*q1*q2/rs**2"]),
])
def test_the_pair_energy_judge_takes_the_potential_up_to_constants_and_refuses_near_misses(name, truth,
                                                                                            near_misses):
    law = get_law(name)
    rng = np.random.default_rng(0)
    X, groups, _, _ = _pair_rows(_states(law, count=200), law, 2, EPS, 2000, 0.5, rng)
    names, u = edge_input_names(2), potential(law, X, 2)
    cfg = DistillConfig().judge
    verdict = judge_energy(parse(truth, names), names, X, u, groups, 9, cfg, "potential")
    assert verdict.success and verdict.target == "potential" and verdict.affine[0] == pytest.approx(0.5)
    for miss in near_misses:
        assert not judge_energy(parse(miss, names), names, X, u, groups, 9, cfg, "potential").success, miss


def test_the_self_energy_judge_takes_the_kinetic_energy_up_to_constants_and_refuses_near_misses():
    rng = np.random.default_rng(0)
    X, groups, _ = _self_rows(_states(get_law("r1"), count=200), 2, 2000, rng)
    names, ke = self_input_names(2), kinetic(X, 2)
    cfg = DistillConfig().judge
    assert judge_energy(parse("(px**2 + py**2)/m + 3*q + log(m)", names), names, X, ke, groups, 9, cfg,
                        "kinetic").success
    for miss in ("(px**2 + py**2)/2", "(px**2 + py**2)/m**2", "(px**2 + py)/m", "q*(px**2 + py**2)/m"):
        assert not judge_energy(parse(miss, names), names, X, ke, groups, 9, cfg, "kinetic").success, miss


def test_run_all_with_the_hamiltonian_strategy_runs_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = ["all", "--preset", "tiny", "--strategy", "hamiltonian", "--n-sims", "12", "--nt", "40",
            "--integrator", "reference", "--epochs", "1", "--batch-size", "16", "--hidden", "8",
            "--n-hidden-layers", "1", "--generations", "2", "--population-size", "16", "--n-edges", "200",
            "--n-nodes", "200", "--n-eval-graphs", "10", "--n-ood-graphs", "10", "--max-time", "5",
            "--n-threads", "1", "--quiet", "--out", str(out)]
    assert cli.main(args) == 0
    result = json.loads((out / "distill" / "distill.json").read_text())
    assert result["strategy"] == "hamiltonian" and [e["part"] for e in result["energy"]] == ["pair", "self"]
    assert result["version"] == SCHEMA_VERSION and result["r2_potential"] is not None
    assert (out / "distill" / "pareto_pair_energy.csv").is_file()
    assert cli.main(["analyse", "--run", str(out)]) == 0
    tables = (out / "analysis" / "test_mae.md").read_text()
    assert "Hamiltonian (FlatHGN)" in tables and "paper 0.016" in tables      # Table 3, Spring-2 FlatHGN
    assert "H_pair" in (out / "analysis" / "report.html").read_text()


def test_held_out_energy_rows_are_grouped_by_constants_and_their_loss_ignores_the_energys_offsets():
    law = get_law("r1")
    data = DistillData(law, 2, EPS, _states(law, count=300), None, _states(law, count=50, seed=1), None)
    pair, self_energy = energy_callables(_model(planted_law=law).float(), 2)
    cfg = DistillConfig(n_edges=1000, n_nodes=1000, selection="best_heldout")
    held = heldout_rows(data, pair, self_energy, cfg)
    names_e, names_s = edge_input_names(2), self_input_names(2)
    X, groups = held["pair"].X, held["pair"].groups
    for col in ("m1", "m2", "q1", "q2"):
        column = X[:, names_e.index(col)]
        assert all(np.ptp(column[groups == g]) == 0 for g in np.unique(groups)), col
    assert np.ptp(X[:, names_e.index("r")]) > 1 and X[:, names_e.index("r")].min() >= cfg.min_r
    shifted = parse("0.5*m1*m2*log(rs) + 0.3*m1 - 2*m1*m2", names_e)     # U/2 plus terms in the constants
    grouped = heldout_loss(shifted, X, held["pair"].y, names_e, groups)
    assert grouped < 1e-4 < 0.1 < heldout_loss(shifted, X, held["pair"].y, names_e)
    assert heldout_loss(parse("-0.5*m1*m2/rs", names_e), X, held["pair"].y, names_e, groups) > 100 * grouped
    kinetic_shifted = parse("(px**2 + py**2)/(2*m) + log(m) - q", names_s)
    assert heldout_loss(kinetic_shifted, held["self"].X, held["self"].y, names_s, held["self"].groups) < 1e-4
