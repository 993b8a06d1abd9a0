"""Distillation of a Hamiltonian model (`gnn.hamiltonian`, strategy "hamiltonian"; paper §4.2).

In:  a trained `HamiltonianGNN` (CPU), the `data.DistillData` of its dataset, a
     `DistillConfig` and an output folder (`pipeline.distill_model` dispatches here).
Out: in out_dir (replaced as a whole, like `pipeline.distill_network`): distill.json (a
     `schema.DistillResult` whose `energy` holds the pair and self energy equations, with
     r2_potential; its edge / node lists are empty and it has no messages.npz),
     predictions.npz, pareto_pair_energy.csv, pareto_self_energy.csv, distill_config.json,
     equations.md.

The pair energy is distilled symmetrised, ½(H_pair(i, j) + H_pair(j, i)) (`symmetric`): each
pair enters H through both directed edges, so the antisymmetric part cancels in H and is
invisible to the dynamics (a trained network carries terms like 0.3·dx there).

Steps:
 1. the network's pair energy against the law's pair potential U(r'): on fresh test rows
    grouped by their particle constants, one slope a for H_pair ≈ a·U + f(constants)
    (`judge.grouped_slope_fit`, the criterion the equations are judged by; an affine fit to
    U alone, like the messages' R², would count the allowed offsets f as error);
 2. SR of H_pair on training edges (inputs `messages.edge_input_names`, r >= min_r) and of
    H_self on training nodes (inputs `self_input_names`: the momentum p = m v, m, q); a
    "_heldout" selection rule reads each front entry's loss on fresh rows built from the
    training states like the judgement's (grouped by particle constants, so the loss
    ignores the offsets f(constants), which no dynamics can see), drawn with their own
    generator (`pipeline.heldout_rng`);
 3. the verdicts on fresh rows drawn in groups of shared particle constants
    (`judge.judge_energy`): H_pair ≈ a·U + f(q1, q2, m1, m2), H_self ≈ a·p²/(2m) + g(q, m);
 4. the symbolic model: accelerations -(dH_pair/dx)/m of the distilled pair energy
    (differentiated by sympy, summed over both directions of every edge) against the
    network's, in distribution and out of distribution (`compose.compare`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import sympy as sp

from gnn.messages import sample_edges
from nbody import state
from nbody.graph import edges, scatter_sum
from nbody.laws import R, Law
from plumbing.io import save_json

from . import report, schema
from .candidate import lambdify, symbols_for
from .config import DistillConfig
from .judge import grouped_slope_fit, judge_energy
from .messages import edge_input_names, edge_inputs
from .compose import compare, eval_sets
from .data import DistillData
from .fitting import Holdout, build_replacing, fit_target, heldout_rng, numpy_callable
from .schema import DistillResult, EnergyEquation
from .select import needs_heldout
from .symbolic import Network

# Fresh judgement rows come in groups of this many rows sharing their particle constants.
GROUP_SIZE = 50


def self_input_names(dim: int) -> list[str]:
    """SR input columns of the self energy: px, py, (pz), m, q (p = m v)."""
    return [f"p{a}" for a in "xyz"[:dim]] + ["m", "q"]


def self_inputs(x: np.ndarray, dim: int) -> np.ndarray:
    """Self-energy SR inputs [..., dim + 2] from node features x [..., F]."""
    m = state.mass(x, dim).astype(np.float64)
    return np.concatenate([state.vel(x, dim) * m[..., None], m[..., None],
                           state.charge(x, dim)[..., None].astype(np.float64)], axis=-1)


def potential(law: Law, X: np.ndarray, dim: int) -> np.ndarray:
    """U(r', q1, q2, m1, m2) [N] on edge inputs X (columns `edge_input_names`)."""
    cols = {name: X[:, i] for i, name in enumerate(edge_input_names(dim))}
    return law.potential_numpy(cols["rs"], cols["q1"], cols["q2"], cols["m1"], cols["m2"])


def kinetic(X: np.ndarray, dim: int) -> np.ndarray:
    """p²/(2m) [N] on self inputs X (columns `self_input_names`)."""
    return np.sum(X[:, :dim] ** 2, axis=1) / (2 * X[:, dim])


def symmetric(pair):
    """(x_recv, x_send) -> ½(pair(x_recv, x_send) + pair(x_send, x_recv)): the part of a pair
    energy that H sees when both directions of every pair are summed."""
    return lambda x_recv, x_send: 0.5 * (pair(x_recv, x_send) + pair(x_send, x_recv))


def _pair_rows(x: np.ndarray, law: Law, dim: int, softening: float, n_rows: int, min_r: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fresh pair rows (edge inputs [N, d], group [N], receiver and sender features [N, F]):
    each group keeps the constants and velocities of one test edge, its sender at the
    origin, and takes GROUP_SIZE distances of other test edges (r >= min_r) in random
    directions."""
    groups = max(2, n_rows // GROUP_SIZE)
    owners = sample_edges(x, law, groups, rng)
    dist = sample_edges(x, law, groups * GROUP_SIZE, rng, min_r)
    r = np.linalg.norm(state.pos(dist.x_recv, dim) - state.pos(dist.x_send, dim), axis=-1)
    direction = rng.normal(size=(len(r), dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    group = np.repeat(np.arange(groups), GROUP_SIZE)
    x_recv, x_send = owners.x_recv[group].copy(), owners.x_send[group].copy()
    x_recv[:, :dim] = direction * r[:, None]
    x_send[:, :dim] = 0.0
    return edge_inputs(x_recv, x_send, dim, softening), group, x_recv, x_send


def _self_rows(x: np.ndarray, dim: int, n_rows: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh self rows (self inputs [N, dim + 2], group [N], node features [N, F]): each
    group keeps the (q, m) of one node of x and takes the velocities of GROUP_SIZE others."""
    nodes = x.reshape(-1, x.shape[-1]).astype(np.float64)
    groups = max(2, n_rows // GROUP_SIZE)
    group = np.repeat(np.arange(groups), GROUP_SIZE)
    rows = nodes[rng.integers(len(nodes), size=groups)][group]
    rows[:, dim:2 * dim] = state.vel(nodes[rng.integers(len(nodes), size=len(group))], dim)
    return self_inputs(rows, dim), group, rows


def symbolic_accelerations(pair_expr: sp.Expr, law: Law, dim: int, softening: float):
    """x [G, n, F] -> accelerations [G, n, dim] of H = Σ_edges pair_expr (every directed
    edge of the law's template): a_i = -(dH/dx_i)/m_i, with r = |dx| and rs = r + softening
    substituted before sympy differentiates in dx, dy, (dz)."""
    names = edge_input_names(dim)
    syms = dict(zip(names, symbols_for(names)))
    d = [syms[f"d{a}"] for a in "xyz"[:dim]]
    r = sp.sqrt(sum(c * c for c in d))
    energy = pair_expr.xreplace({syms["r"]: r, syms["rs"]: r + softening})
    grads = [lambdify(sp.diff(energy, c), names) for c in d]

    def predict(x: np.ndarray) -> np.ndarray:
        G, n, F = x.shape
        send, recv = edges(n, law.topology)
        X = edge_inputs(x[:, recv].reshape(-1, F), x[:, send].reshape(-1, F), dim, softening)
        g = np.stack([f(X) for f in grads], axis=-1).reshape(G, len(recv), dim)   # dE_e/d(dx_e)
        dh_dx = scatter_sum(g, recv, n) - scatter_sum(g, send, n)                 # dx_e = x_recv - x_send
        return -dh_dx / state.mass(x, dim).astype(np.float64)[..., None]

    return predict


def energy_callables(model, dim: int):
    """A `HamiltonianGNN`'s energies as NumPy functions of node features: (the symmetrised
    pair energy (x_recv [N, F], x_send [N, F]) -> [N], the self energy x [N, F] -> [N])."""
    from gnn.hamiltonian import canonical  # deferred: reading outputs should not load torch

    model.eval()
    pair = symmetric(numpy_callable(lambda xr, xs: model.pair_energy(canonical(xr, dim), canonical(xs, dim))[..., 0]))
    return pair, numpy_callable(lambda x: model.self_energy(canonical(x, dim))[..., 0])


def heldout_rows(data: DistillData, pair, self_energy, cfg: DistillConfig) -> dict[str, Holdout]:
    """Held-out rows of the pair and self energies for the "_heldout" selection rules: rows
    built from the training states like the judgement's fresh rows (`_pair_rows`,
    `_self_rows`), in groups of shared particle constants, with the network's energies."""
    rng = heldout_rng(cfg)
    X_pair, pair_groups, x_recv, x_send = _pair_rows(data.train_x, data.law, data.dim, data.softening,
                                                     cfg.n_edges, cfg.min_r, rng)
    X_self, self_groups, nodes = _self_rows(data.train_x, data.dim, cfg.n_nodes, rng)
    return {"pair": Holdout(X_pair, pair(x_recv, x_send), pair_groups),
            "self": Holdout(X_self, self_energy(nodes), self_groups)}


def distill_hamiltonian(model, data: DistillData, cfg: DistillConfig, out_dir: str | Path,
                        info: dict | None = None) -> DistillResult:
    """Distill a `HamiltonianGNN`'s pair and self energies; write every output to out_dir
    (a temporary sibling replaces it only when everything succeeded).

    Returns:
        the result as `schema.load_result` reads it back.
    """
    return build_replacing(out_dir, lambda tmp: _distill_into(tmp, model, data, cfg, info))


def _distill_into(out: Path, model, data: DistillData, cfg: DistillConfig, info: dict | None) -> DistillResult:
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    law, dim, eps = data.law, data.dim, data.softening
    pair, self_energy = energy_callables(model, dim)

    # 1. The network's pair energy against the potential, on fresh grouped test rows.
    X_pair_fresh, pair_groups, x_recv, x_send = _pair_rows(data.test_x, law, dim, eps, cfg.n_edges, cfg.min_r, rng)
    energies = pair(x_recv, x_send)
    slope, r2, _ = grouped_slope_fit(energies, potential(law, X_pair_fresh, dim), pair_groups)

    # 2-3. SR on training rows, verdicts on fresh grouped test rows.
    names_e, names_s = edge_input_names(dim), self_input_names(dim)
    fit_edges = sample_edges(data.train_x, law, cfg.n_edges, rng, cfg.min_r)
    X_pair = edge_inputs(fit_edges.x_recv, fit_edges.x_send, dim, eps)
    nodes = data.train_x.reshape(-1, data.train_x.shape[-1])
    fit_nodes = nodes[rng.choice(len(nodes), size=min(len(nodes), cfg.n_nodes), replace=False)].astype(np.float64)
    X_self_fresh, self_groups, _ = _self_rows(data.test_x, dim, cfg.n_nodes, rng)
    held = heldout_rows(data, pair, self_energy, cfg) if needs_heldout(cfg.selection) else {}
    parts = (("pair", names_e, X_pair, pair(fit_edges.x_recv, fit_edges.x_send),
              X_pair_fresh, potential(law, X_pair_fresh, dim), pair_groups, "potential"),
             ("self", names_s, self_inputs(fit_nodes, dim), self_energy(fit_nodes),
              X_self_fresh, kinetic(X_self_fresh, dim), self_groups, "kinetic"))
    equations, fits = [], {}
    for part, names, X, y, X_fresh, truth, groups, target in parts:
        fit = fit_target(X, y, names, cfg, held.get(part))
        verdict = judge_energy(fit.final.expr, names, X_fresh, truth, groups, fit.final.complexity, cfg.judge, target)
        equation = EnergyEquation(part=part, judgement=verdict, **report.equation_fields(fit, cfg.selection))
        schema.write_front(out / equation.front_file, report.front_rows(fit))
        equations.append(equation)
        fits[part] = fit

    # 4. Symbolic model (the distilled pair energy's forces) vs network.
    net = Network(edge=pair, node=None, predict=numpy_callable(lambda x: model(x).acc),
                  strategy=model.cfg.strategy)
    sym = Network(edge=None, node=None, predict=symbolic_accelerations(fits["pair"].final.expr, law, dim, eps),
                  strategy="symbolic")
    mae = compare(net, sym, data, eval_sets(data, cfg, rng), out)

    std = float(np.std(energies))
    result = DistillResult(
        strategy=model.cfg.strategy, law=law.name, dim=dim, sr_engine=cfg.sr_engine,
        seconds=time.perf_counter() - start, sparsity=None, component_std=(std,), component_score=(std,),
        top_components=(0,), r2_force=(), r2_force_mean=None, r2_accel=(), r2_accel_mean=None,
        r2_affine_force=(), r2_affine_accel=(), edge=(), node=(),
        edge_success=equations[0].judgement.success, node_success=equations[1].judgement.success,
        mae=mae, expected_force=str(law.force_expr.xreplace({R: sp.Symbol("r'")})),
        energy=tuple(equations), r2_potential=r2, r2_affine_potential=(slope,),
        expected_potential=str(law.potential_expr.xreplace({R: sp.Symbol("r'")})), **(info or {}))
    save_json(out / "distill_config.json", cfg)
    schema.save_result(out, result)
    result = schema.load_result(out)
    report.write_equations_md(out / "equations.md", result)
    return result
