"""Distil the trained halo GN: its informative message component, its node model, and the
paper's formula table (paper §4.3, Tables 2 and 6; docs/facts.md §7).

In:  a `Catalogue`, its `HaloGraph`, the `Trained` model (standardiser, splits), a
     `HaloConfig`, and for a synthetic catalogue the `SyntheticConfig` it came from.
Out: in out_dir (written into a temporary folder that replaces it when complete):
     halos_distill.json  sparsity, component stds, the edge and node equations, the table,
                         and (synthetic) the judgement against the planted law
     table.md            mean |δ - δ̂| per formula on train / test / OOD beside the paper's
     pareto_edge.csv, pareto_node.csv   the SR fronts (`distill.schema.write_front`)

Steps (all in the network's standardised units, `halos.features`):
1. messages on `sr_edges` training edges (uniform over edges); the component with the
   largest std is the informative one (`gnn.messages.variance_shares`: its share);
2. SR of that component from (r, M1, M2, dv) and of the network's δ̂ from (e, M1, v1), with
   e the component summed over each halo's neighbours, through the shared SR stage
   (`distill.fitting.fit_target`: engine, Pareto front, selection, constant refit);
3. the composed formula δ̂ = node(Σ_j edge(...)) with all constants refit jointly on
   `refit_halos` training halos (least squares), beside the paper's shapes refit the same way
   (`halos.formulas`) and the network, on train, test and OOD (δ > ood_threshold) halos;
4. synthetic only: on a FRESH catalogue (next seed) the distilled ei = Σ_j edge(...) against
   the planted ei (affine R²; the form counts as recovered at R² >= DistillConfig.success_r2,
   0.99), and the edge equation against the planted pair term.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import sympy as sp

from distill.candidate import lambdify, round_floats
from distill.fitting import fit_target
from distill.report import front_rows
from distill.schema import write_front
from gnn.messages import variance_shares
from plumbing.io import atomic_write_text, replace_dir, save_json, temp_dir_beside

from .catalogue import Catalogue
from .config import HaloConfig
from .features import SR_EDGE_NAMES, SR_NODE_NAMES, Standardiser
from .formulas import FORMULAS, LABELS, PAPER, PAPER_POSITION_STD, HaloInputs, mean_abs_error, refit
from .graph import HaloGraph, build_graph, edges_of
from .model import run_halos
from .synthetic import PLANT_CUTOFF, make_catalogue, planted_e, planted_pair
from .train import SETS, Trained, eval_subset

PAPER_OOD = {"network": (0.0634, 0.142), "distilled": (0.0811, 0.0892)}   # (train, OOD), paper §4.3


class Composed:
    """δ̂ = node(e, M1, v1) with e = Σ_j edge(r, M1, M2, dv): two sympy expressions whose float
    constants are the parameters θ (edge constants first)."""

    def __init__(self, edge: sp.Expr, node: sp.Expr):
        self.edge, self.node = edge, node
        self._edge_c = sorted(edge.atoms(sp.Float), key=float)
        self._node_c = sorted(node.atoms(sp.Float), key=float)
        p_edge = sp.symbols(f"_e0:{len(self._edge_c)}")
        p_node = sp.symbols(f"_n0:{len(self._node_c)}")
        self._edge_f = lambdify(edge.xreplace(dict(zip(self._edge_c, p_edge))), [*SR_EDGE_NAMES, *map(str, p_edge)])
        self._node_f = lambdify(node.xreplace(dict(zip(self._node_c, p_node))), [*SR_NODE_NAMES, *map(str, p_node)])
        self.theta = np.array([float(c) for c in self._edge_c + self._node_c])

    def e(self, inp: HaloInputs, theta: np.ndarray | None = None) -> np.ndarray:
        """[n] Σ over each receiver's edges of the edge expression."""
        theta = self.theta if theta is None else theta
        X = np.column_stack([inp.r, inp.mass[inp.recv], inp.m_send, inp.dv])
        return inp.sum_edges(self._edge_f(_with_params(X, theta[:len(self._edge_c)])))

    def __call__(self, theta: np.ndarray, inp: HaloInputs) -> np.ndarray:
        X = np.column_stack([self.e(inp, theta), inp.mass, inp.speed])
        return self._node_f(_with_params(X, theta[len(self._edge_c):]))

    def refit(self, inp: HaloInputs, delta: np.ndarray) -> float:
        """Refit θ on (inp, δ) when that lowers mean |δ - δ̂|; returns that error."""
        before = mean_abs_error(self(self.theta, inp), delta)
        if len(self.theta):
            theta, after = refit(self, inp, delta, self.theta)
            if after < before:
                self.theta, before = theta, after
        return before

    def expressions(self, digits: int = 4) -> tuple[sp.Expr, sp.Expr]:
        """(edge, node) with the current constants."""
        k = len(self._edge_c)
        edge = self.edge.xreplace({c: sp.Float(v) for c, v in zip(self._edge_c, self.theta[:k])})
        node = self.node.xreplace({c: sp.Float(v) for c, v in zip(self._node_c, self.theta[k:])})
        return round_floats(edge, digits), round_floats(node, digits)


def _with_params(X: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.broadcast_to(theta, (len(X), len(theta)))])


def sample_edges(graph: HaloGraph, receivers: np.ndarray, n: int, rng: np.random.Generator):
    """n edges drawn uniformly from the edges into `receivers`: (recv [n], send [n]) global."""
    deg = graph.degree()[receivers].astype(np.float64)
    recv = rng.choice(receivers, size=n, p=deg / deg.sum())
    k = np.floor(rng.random(n) * graph.degree()[recv]).astype(np.int64)
    return recv, graph.senders[graph.indptr[recv] + k].astype(np.int64)


def affine_r2(y: np.ndarray, x: np.ndarray) -> float:
    """Plain least-squares R² of the best affine map a·x + b to y."""
    A = np.column_stack([x, np.ones_like(x)])
    res = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    return float(1.0 - np.var(res) / np.var(y)) if np.var(y) > 0 else 0.0


def distill_halos(cat: Catalogue, graph: HaloGraph, trained: Trained, cfg: HaloConfig, out_dir: str | Path,
                  synthetic=None) -> dict:
    """Steps 1-4 of the module docstring; returns the contents of halos_distill.json."""
    out = Path(out_dir)
    tmp = temp_dir_beside(out)
    try:
        result = _distill_into(tmp, cat, graph, trained, cfg, synthetic)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _distill_into(out: Path, cat, graph, trained: Trained, cfg: HaloConfig, synthetic) -> dict:
    import torch  # deferred (heavy): writing tables from a distillation needs no torch
    rng = np.random.default_rng([cfg.seed, 3])
    std, model, splits, dcfg = trained.std, trained.model, trained.splits, cfg.distill_config()
    nodes = std.node_features(cat)

    # 1. The informative message component.
    recv, send = sample_edges(graph, splits["train"], cfg.sr_edges, rng)
    with torch.no_grad():
        messages = model.edge_mlp(torch.from_numpy(std.edge_features(cat, nodes, recv, send))).double().numpy()
    component_std = messages.std(axis=0)
    top = int(np.argmax(component_std))
    share = float(variance_shares(component_std)[top])

    # 2. SR of the message component and of the node model.
    edge_fit = fit_target(std.sr_edge_inputs(cat, recv, send), messages[:, top], list(SR_EDGE_NAMES), dcfg,
                          label="edge 1/2")
    halos = np.sort(rng.choice(splits["train"], min(cfg.sr_nodes, len(splits["train"])), replace=False))
    net_delta, agg = run_halos(model, cat, std, graph, halos)
    X_node = np.column_stack([agg[:, top], cat.mass[halos] / std.mass_std,
                              np.linalg.norm(cat.vel[halos], axis=1) / std.vel_std])
    node_fit = fit_target(X_node, net_delta, list(SR_NODE_NAMES), dcfg, label="node 2/2")
    write_front(out / "pareto_edge.csv", front_rows(edge_fit))
    write_front(out / "pareto_node.csv", front_rows(node_fit))

    # 3. Refit every formula on training halos; errors on train / test / OOD.
    fit_idx = np.sort(rng.choice(splits["train"], min(cfg.refit_halos, len(splits["train"])), replace=False))
    fit_inp = std.formula_inputs(cat, graph, fit_idx)
    composed = Composed(edge_fit.final.expr, node_fit.final.expr)
    sr_edge = Composed(edge_fit.final.expr, node_fit.final.expr)          # kept unrefit for the judgement
    composed.refit(fit_inp, cat.delta[fit_idx])
    sets = {name: eval_subset(splits[name], cfg) for name in SETS if len(splits[name])}
    inputs = {name: std.formula_inputs(cat, graph, idx) for name, idx in sets.items()}
    rows = []
    for name, fn in FORMULAS.items():
        theta, _ = refit(fn, fit_inp, cat.delta[fit_idx], _start(name, std))
        rows.append(_row(name, LABELS[name], PAPER[name][1], theta,
                         {s: mean_abs_error(fn(theta, inp), cat.delta[sets[s]]) for s, inp in inputs.items()}))
    edge_expr, node_expr = composed.expressions()
    rows.append(_row("distilled", f"δ̂ = {node_expr}, e = Σ {edge_expr}", None, composed.theta,
                     {s: mean_abs_error(composed(composed.theta, inp), cat.delta[sets[s]]) for s, inp in inputs.items()}))
    rows.append(_row("network", "the graph network", None, (),
                     {s: mean_abs_error(run_halos(model, cat, std, graph, idx)[0], cat.delta[idx])
                      for s, idx in sets.items()}))

    result = {
        "synthetic": cat.synthetic, "n_halos": len(cat), "n_edges": graph.n_edges,
        "sets": {s: int(len(idx)) for s, idx in sets.items()}, "refit_halos": int(len(fit_idx)),
        "top_component": top, "top_share": share, "component_std": component_std.tolist(),
        "edge": {"equation": str(edge_fit.final.expr), "complexity": edge_fit.final.complexity,
                 "loss": edge_fit.final.loss, "inputs": list(SR_EDGE_NAMES), "seconds": edge_fit.seconds},
        "node": {"equation": str(node_fit.final.expr), "complexity": node_fit.final.complexity,
                 "loss": node_fit.final.loss, "inputs": list(SR_NODE_NAMES), "seconds": node_fit.seconds},
        "distilled_refit": {"edge": str(edge_expr), "node": str(node_expr)},
        "table": rows, "paper_ood": PAPER_OOD,
    }
    if synthetic is not None:
        result["planted"] = judge_planted(sr_edge, composed, std, cfg, synthetic)
        result["success"] = {"form_recovered": result["planted"]["e_r2_distilled"] >= dcfg.success_r2,
                             "beats_network_ood": (rows[-2]["mae"].get("ood", np.inf)
                                                   < rows[-1]["mae"].get("ood", -np.inf))}
    save_json(out / "halos_distill.json", result)
    save_json(out / "halo_config.json", cfg)
    atomic_write_text(out / "table.md", table_markdown(result))
    return result


def _start(name: str, std: Standardiser) -> np.ndarray:
    """The paper's constants with C6 rescaled to these position units (same step radius)."""
    theta = np.array(PAPER[name][0], dtype=np.float64)
    if len(theta) == 7:
        theta[5] *= std.pos_std / PAPER_POSITION_STD
    return theta


def _row(name: str, label: str, paper, theta, mae: dict) -> dict:
    return {"formula": name, "label": label, "paper_mae": paper, "constants": [float(t) for t in theta], "mae": mae}


def judge_planted(sr: Composed, refit_: Composed, std: Standardiser, cfg: HaloConfig, synthetic) -> dict:
    """The distilled ei and edge equation against the planted law on a fresh synthetic catalogue."""
    fresh_cfg = dataclasses.replace(synthetic, catalogue_seed=synthetic.catalogue_seed + 1)
    fresh = make_catalogue(fresh_cfg)
    graph = build_graph(fresh.pos, fresh.box, cfg.cutoff, cfg.chunk_size)
    plant_graph = graph if cfg.cutoff == PLANT_CUTOFF else build_graph(fresh.pos, fresh.box, PLANT_CUTOFF)
    idx = eval_subset(np.arange(len(fresh)), cfg)
    inp = std.formula_inputs(fresh, graph, idx)
    truth = planted_e(fresh, plant_graph, idx)
    local, send = edges_of(graph, idx[: max(1, cfg.sr_edges // 100)])
    recv = idx[local]
    X = std.sr_edge_inputs(fresh, recv, send)
    pair = planted_pair(X[:, 0] * std.pos_std / PAPER_POSITION_STD, fresh.mass[send])
    edge_values = sr._edge_f(_with_params(X, sr.theta[:len(sr._edge_c)]))
    return {"fresh_catalogue_seed": fresh_cfg.catalogue_seed, "fresh_halos": int(len(idx)),
            "fresh_edges": int(len(send)),
            "e_r2_distilled": affine_r2(truth, sr.e(inp)), "e_r2_refit": affine_r2(truth, refit_.e(inp)),
            "edge_r2_distilled": affine_r2(pair, edge_values)}


def table_markdown(result: dict) -> str:
    """The paper-style table of mean |δ - δ̂| (halos_distill.json's "table")."""
    tag = "SYNTHETIC catalogue (planted law; not a cosmology result)" if result["synthetic"] else "catalogue"
    sets = [s for s in SETS if s in result["sets"]]
    lines = [f"# Halo overdensity: mean |δ - δ̂| ({tag})", "",
             "Constants refit on %d training halos; halos per set: %s." % (
                 result["refit_halos"], ", ".join(f"{s} {result['sets'][s]}" for s in sets)), "",
             "| formula | paper | " + " | ".join(sets) + " | form |",
             "|---|---|" + "---|" * len(sets) + "---|"]
    for row in result["table"]:
        paper = "" if row["paper_mae"] is None else f"{row['paper_mae']:.4g}"
        cells = " | ".join(f"{row['mae'][s]:.4g}" if s in row["mae"] else "" for s in sets)
        label = row["label"].replace("|", "\\|")
        lines.append(f"| {row['formula']} | {paper} | {cells} | {label} |")
    p = result["paper_ood"]
    lines += ["", f"Paper, trained without δ > 1 (train / OOD): network {p['network'][0]} / {p['network'][1]}, "
                  f"formula {p['distilled'][0]} / {p['distilled'][1]}.",
              f"Informative message component {result['top_component']}: {result['top_share']:.3f} of the "
              "message variance."]
    if "planted" in result:
        j = result["planted"]
        lines.append(f"Planted law, fresh catalogue (seed {j['fresh_catalogue_seed']}): R² of distilled ei vs "
                     f"planted ei {j['e_r2_distilled']:.4f} (after refit {j['e_r2_refit']:.4f}); edge equation vs "
                     f"planted pair term {j['edge_r2_distilled']:.4f}. Form recovered: "
                     f"{'yes' if result['success']['form_recovered'] else 'no'}; beats the network out of "
                     f"distribution: {'yes' if result['success']['beats_network_ood'] else 'no'}.")
    return "\n".join(lines) + "\n"
