"""The distillation stage end to end: messages -> SR (edge, node) -> select -> refit -> judge -> compare.

In:  a trained GNN (`gnn.checkpoint.load_model`) and its dataset (`nbody.dataset.load_dataset`),
     or, for tests and planted models, a `symbolic.Network` of callables plus `DistillData`.
Out: the result dict (schema in `distill/__init__.py`), written with everything else to
     out_dir: distill.json, equations.md, pareto_edge_{k}.csv, pareto_node_{axis}.csv,
     messages.npz, distill_config.json.

Data use: messages are analysed on test edges; SR fits use training edges/nodes; the
judgement uses fresh test edges/nodes (never the fit rows); the MAE comparison uses
`n_eval_graphs` test graphs and two out-of-distribution sets.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from nbody import state
from nbody.errors import InputError
from nbody.io import load_json, replace_dir, save_json, temp_dir_beside
from nbody.rundir import dataset_identity, file_sha256
from nbody.laws import R, Law, get_law

from . import report, sr_engines
from .candidate import Candidate, complexity
from .config import DistillConfig
from .judge import edge_target, judge_edge, judge_node
from .messages import (analyse_messages, directed_edges, edge_input_names, edge_inputs,
                       pair_targets, sample_edges, save_messages)
from .refit import refit_constants
from .select import pareto_front, scores, select
from .symbolic import (Network, aggregate, forward, mae_stats, node_input_names, node_inputs,
                       ood_states, symbolic_network)


@dataclass(frozen=True)
class DistillData:
    """Everything the stage needs from a dataset.

    Attributes:
        law: the pair law; dim: 2|3; softening: eps of r' = r + eps.
        train_x, test_x: states [G, n, 2*dim+2]; train_a, test_a: true accelerations [G, n, dim].
    """

    law: Law
    dim: int
    softening: float
    train_x: np.ndarray
    train_a: np.ndarray
    test_x: np.ndarray
    test_a: np.ndarray


@dataclass(frozen=True)
class FitResult:
    """One SR target: its Pareto front, PySR scores, the selected index, and the final
    (refitted) equation."""

    front: list[Candidate]
    scores: list[float]
    index: int
    final: Candidate
    refitted: bool
    seconds: float


def fit_target(X: np.ndarray, y: np.ndarray, names: list[str], cfg: DistillConfig) -> FitResult:
    """SR on one target, Pareto front, selection rule, optional constant refit.

    Args:
        X: [N, d] inputs; y: [N] target; names: column names; cfg: the stage config.
    Returns:
        FitResult (final = the selected equation, refitted when cfg.refit and it helps;
        seconds = wall time of search, selection and refit).
    """
    start = time.perf_counter()
    front = pareto_front(sr_engines.fit(X, y, names, cfg))
    index = select(front, cfg.selection, cfg.best_loss_factor)
    chosen = front[index]
    final = chosen
    if cfg.refit:
        expr, loss = refit_constants(chosen.expr, X, y, names, cfg.precision)
        final = Candidate(expr, complexity(expr), loss)
    return FitResult(front, scores(front), index, final, final.expr != chosen.expr, time.perf_counter() - start)


def _nearest(x: np.ndarray, law: Law, dim: int) -> np.ndarray:
    """Distance of each node to its nearest interacting neighbour, [G, n]."""
    recv, send = directed_edges(law, x.shape[1])
    d = state.pos(x[:, recv], dim).astype(np.float64) - state.pos(x[:, send], dim)
    dist = np.sqrt(np.sum(d * d, axis=-1))
    out = np.full(x.shape[:2], np.inf)
    for e, i in enumerate(recv):
        out[:, i] = np.minimum(out[:, i], dist[:, e])
    return out


def _sample_nodes(net: Network, x: np.ndarray, a: np.ndarray, law: Law, dim: int, top: np.ndarray,
                  cfg: DistillConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Node SR rows: (inputs [N, d], network node outputs or true accelerations [N, dim]) for
    `cfg.n_nodes` nodes with no neighbour closer than min_r."""
    G, n, F = x.shape
    graphs = rng.choice(G, size=min(G, int(np.ceil(2 * cfg.n_nodes / n))), replace=False)
    xs = x[graphs].astype(np.float64)
    keep = (_nearest(xs, law, dim) >= cfg.min_r).reshape(-1)
    if keep.sum() < min(cfg.n_nodes, 10):
        raise InputError(f"too few nodes without a neighbour closer than min_r={cfg.min_r}; lower min_r")
    agg = aggregate(net.edge, xs, law).reshape(len(graphs) * n, -1)[keep][: cfg.n_nodes]
    flat = xs.reshape(-1, F)[keep][: cfg.n_nodes]
    if cfg.node_target == "network":
        target = np.asarray(net.node(flat, agg), dtype=np.float64)
    else:
        target = a[graphs].reshape(-1, dim)[keep][: cfg.n_nodes].astype(np.float64)
    return node_inputs(flat, agg[:, top], dim), target


def distill_network(net: Network, data: DistillData, cfg: DistillConfig, out_dir: str | Path,
                    info: dict | None = None) -> dict:
    """Distill a message-passing model given as callables; write every output to out_dir.

    The outputs are written to a temporary sibling folder that replaces out_dir only when
    everything succeeded: a failed or interrupted run leaves no partial folder behind.

    Args:
        net: the model (wrapped GNN or planted callables).
        data: law, dimension, softening and train/test states.
        cfg: stage config.
        out_dir: output folder (replaced as a whole).
        info: extra top-level entries for distill.json (e.g. checkpoint path, inputs).
    Returns:
        the distill.json dict.
    """
    out = Path(out_dir)
    tmp = temp_dir_beside(out)
    try:
        result = _distill_into(tmp, net, data, cfg, info)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _distill_into(out: Path, net: Network, data: DistillData, cfg: DistillConfig, info: dict | None) -> dict:
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    law, dim = data.law, data.dim

    # 1. Messages on test edges: significance, sparsity, R² against force and F/m1.
    rec = sample_edges(data.test_x, law, cfg.n_edges, rng)
    messages = np.asarray(net.edge(rec.x_recv, rec.x_send), dtype=np.float64)
    logvar = None if net.logvar is None else np.asarray(net.logvar(rec.x_recv, rec.x_send), dtype=np.float64)
    msg = analyse_messages(messages, logvar, rec, law, dim, data.softening)
    save_messages(out / "messages.npz", messages, rec, msg, dim, data.softening)
    top = msg.top

    # 2. Edge model: one fit per significant component on training edges, judged on fresh test edges.
    names_e = edge_input_names(dim)
    fit_edges = sample_edges(data.train_x, law, cfg.n_edges, rng, cfg.min_r)
    fresh_edges = sample_edges(data.test_x, law, cfg.n_edges, rng, cfg.min_r)
    X_fit = edge_inputs(fit_edges.x_recv, fit_edges.x_send, dim, data.softening)
    y_fit = np.asarray(net.edge(fit_edges.x_recv, fit_edges.x_send), dtype=np.float64)
    X_fresh = edge_inputs(fresh_edges.x_recv, fresh_edges.x_send, dim, data.softening)
    force = pair_targets(law, fresh_edges.x_recv, fresh_edges.x_send, dim, data.softening)[0]
    y_fresh = np.asarray(net.edge(fresh_edges.x_recv, fresh_edges.x_send), dtype=np.float64)
    edge_entries = []
    for rank, k in enumerate(top):
        fit = fit_target(X_fit, y_fit[:, k], names_e, cfg)
        verdict = judge_edge(fit.final.expr, names_e, X_fresh, force, fit.final.complexity, y_fresh[:, k],
                             cfg.success_r2, cfg.max_complexity, cfg.max_rel_error, cfg.min_cosine)
        report.write_front(out / f"pareto_edge_{int(k)}.csv", fit)
        edge_entries.append(report.equation_entry(fit, cfg, verdict, component=int(k), rank=rank + 1))

    # 3. Node model: one fit per output axis on training nodes, judged on fresh test nodes
    #    against the receiver factor(s) the edge equations matched (the composed model).
    names_n = node_input_names(dim, len(top))
    node_cfg = dataclasses.replace(cfg, selection=cfg.node_selection or cfg.selection)
    X_node, y_node = _sample_nodes(net, data.train_x, data.train_a, law, dim, top, cfg, rng)
    X_node_fresh, y_node_fresh = _sample_nodes(net, data.test_x, data.test_a, law, dim, top, cfg, rng)
    undone = list(dict.fromkeys(edge_target(e["judgement"]) for e in edge_entries))
    node_entries = []
    for j, axis in enumerate("xyz"[:dim]):
        fit = fit_target(X_node, y_node[:, j], names_n, node_cfg)
        verdict = judge_node(fit.final.expr, names_n, X_node_fresh, X_node_fresh[:, :len(top)],
                             fit.final.complexity, y_node_fresh[:, j], undone, cfg.success_r2,
                             cfg.max_complexity, cfg.max_rel_error, cfg.min_cosine)
        report.write_front(out / f"pareto_node_{axis}.csv", fit)
        node_entries.append(report.equation_entry(fit, node_cfg, verdict, output=axis, index=j))

    # 4. Symbolic model vs network, in distribution and out of distribution.
    sym = symbolic_network([e["expr"] for e in edge_entries], [e["expr"] for e in node_entries], dim,
                           data.softening)
    mae = _compare(net, sym, data, cfg, rng)

    result = {
        "strategy": net.strategy, "law": law.name, "dim": dim, "sr_engine": cfg.sr_engine,
        "seconds": time.perf_counter() - start,
        "sparsity": msg.sparsity, "component_std": np.std(messages, axis=0).tolist(),
        "component_score": msg.scores.tolist(), "top_components": [int(k) for k in top],
        "r2_force": msg.r2_force, "r2_force_mean": float(np.mean(msg.r2_force)),
        "r2_accel": msg.r2_accel, "r2_accel_mean": float(np.mean(msg.r2_accel)),
        "r2_affine_force": msg.affine_force.tolist(), "r2_affine_accel": msg.affine_accel.tolist(),
        "edge": [report.public(e) for e in edge_entries],
        "node": [report.public(e) for e in node_entries],
        "edge_success": all(e["judgement"]["success"] for e in edge_entries),
        "node_success": all(e["judgement"]["success"] for e in node_entries),
        "mae": mae,
        "expected_force": str(law.force_expr.xreplace({R: sp.Symbol("r'")})),
        **(info or {}),
    }
    result = report.jsonable(result)
    save_json(out / "distill_config.json", cfg)
    save_json(out / "distill.json", result)
    report.write_equations_md(out / "equations.md", result)
    return result


def _compare(net: Network, sym: Network, data: DistillData, cfg: DistillConfig,
             rng: np.random.Generator) -> dict:
    """MAE of network and symbolic model on test graphs and on the two OOD sets."""
    G, n = data.test_x.shape[:2]
    idx = rng.choice(G, size=min(G, cfg.n_eval_graphs), replace=False)
    x, a = data.test_x[idx], data.test_a[idx]
    net_mean, net_std = mae_stats(forward(net, x, data.law), a)
    sym_mean, sym_std = mae_stats(forward(sym, x, data.law), a)
    ood = {}
    for name, n_ood, spread in (("spread", n, cfg.ood_spread),
                                ("more_particles", n + cfg.ood_extra_particles, 1.0)):
        xo, ao = ood_states(data.law, data.dim, n_ood, cfg.n_ood_graphs, data.softening, rng, spread)
        ood[name] = {"network": mae_stats(forward(net, xo, data.law), ao)[0],
                     "symbolic": mae_stats(forward(sym, xo, data.law), ao)[0],
                     "n": n_ood, "position_spread": spread}
    return {"network": net_mean, "symbolic": sym_mean, "network_std": net_std, "symbolic_std": sym_std,
            "n_graphs": int(len(idx)), "ood": ood}


def _check_gnn(model) -> None:
    if not all(hasattr(model, a) for a in ("edge", "node", "edge_stats", "cfg")):
        raise InputError(f"checkpoint holds a {type(model).__name__}, not a message-passing GNN")


def network_from_model(model, batch: int = 8192) -> Network:
    """Wrap a `gnn` model (torch, CPU) as NumPy callables.

    Args:
        model: object with .cfg.strategy, .edge, .edge_stats, .node and __call__ -> .acc.
        batch: rows (edges, nodes or graphs) per torch call.
    Returns:
        Network (KL models also expose log σ² for component ranking).
    Raises:
        InputError: the object is not a GNN of the `gnn` package.
    """
    _check_gnn(model)
    import torch

    model.eval()

    def numpy_fn(fn):
        def call(*arrays: np.ndarray) -> np.ndarray:
            outs = []
            with torch.no_grad():
                for s in range(0, len(arrays[0]), batch):
                    args = [torch.as_tensor(np.asarray(a[s:s + batch], dtype=np.float32)) for a in arrays]
                    outs.append(fn(*args).detach().cpu().numpy().astype(np.float64))
            return np.concatenate(outs)
        return call

    strategy = model.cfg.strategy
    return Network(
        edge=numpy_fn(model.edge),
        node=numpy_fn(model.node),
        predict=numpy_fn(lambda x: model(x).acc),
        logvar=numpy_fn(lambda xr, xs: model.edge_stats(xr, xs)[1]) if strategy == "kl" else None,
        strategy=strategy)


def distill_model(model, dataset, cfg: DistillConfig, out_dir: str | Path, info: dict | None = None) -> dict:
    """Distill a trained GNN on its dataset.

    Args:
        model: a `gnn` model (see `network_from_model`).
        dataset: `nbody.dataset.Dataset` (.config, .law, .split(name).graphs()).
        cfg: stage config.
        out_dir: output folder.
        info: extra top-level entries for distill.json.
    Returns:
        the distill.json dict.
    Raises:
        InputError: not a GNN, or model and dataset dimensions disagree.
    """
    net = network_from_model(model)
    law = dataset.law if isinstance(dataset.law, Law) else get_law(str(dataset.law))
    dim = int(dataset.config.dim)
    if int(model.cfg.dim) != dim:
        raise InputError(f"model is {model.cfg.dim}D but the dataset is {dim}D")
    train_x, train_a = dataset.split("train").graphs()
    test_x, test_a = dataset.split("test").graphs()
    data = DistillData(law, dim, float(dataset.config.softening), train_x, train_a, test_x, test_a)
    return distill_network(net, data, cfg, out_dir, info)


def distill_checkpoint(path: str | Path, cfg: DistillConfig, out_dir: str | Path,
                       dataset_path: str | Path | None = None) -> dict:
    """Load a GNN checkpoint and its dataset, then `distill_model`.

    Args:
        path: checkpoint written by the gnn trainer.
        cfg: stage config.
        out_dir: output folder.
        dataset_path: dataset folder; default: the one recorded in the checkpoint.
    Returns:
        the distill.json dict (plus "checkpoint", "dataset" and "inputs" entries).
    Raises:
        InputError: missing checkpoint, not a GNN checkpoint, no dataset, or a dataset of
        another law, dimension or topology than the one the model was trained on.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no checkpoint at {path}")
    from gnn.checkpoint import load_model
    from nbody.dataset import load_dataset

    try:
        model, meta = load_model(path, device="cpu")
    except InputError:
        raise
    except Exception as exc:  # torch.load / unpickling raise many types for a foreign file
        raise InputError(f"{path} is not a GNN checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    _check_gnn(model)  # fail on a foreign model before loading any data
    recorded = (meta or {}).get("dataset")
    dataset_path = dataset_path or (recorded.get("path") if isinstance(recorded, dict) else recorded)
    if not dataset_path:
        raise InputError(f"checkpoint {path} names no dataset; pass dataset_path")
    dataset = load_dataset(dataset_path)
    _check_same_physics(recorded.get("meta") if isinstance(recorded, dict) else None, dataset)
    info = {"checkpoint": str(path), "dataset": str(dataset_path),
            "inputs": distill_inputs(path, Path(dataset_path))}
    return distill_model(model, dataset, cfg, out_dir, info)


def distill_inputs(checkpoint: Path, dataset_path: Path) -> dict:
    """Identities of a distillation's inputs: the checkpoint's hash and the dataset's identity."""
    return {"checkpoint_sha256": file_sha256(checkpoint),
            "dataset": dataset_identity(load_json(Path(dataset_path) / "meta.json"))}


def _check_same_physics(trained_on: dict | None, dataset) -> None:
    """InputError when the dataset's law, dimension or topology differ from the training data's.

    `trained_on` is the training dataset's meta.json as the checkpoint recorded it (None or
    empty for a model trained on in-memory arrays: nothing to compare).
    """
    if not trained_on:
        return
    law = trained_on.get("law") or {}
    theirs = (law.get("name"), trained_on.get("dim"), law.get("topology"))
    ours = (dataset.law.name, dataset.config.dim, dataset.law.topology)
    if theirs != ours or law != dataclasses.asdict(dataset.law):
        raise InputError(f"the model was trained on law {theirs[0]!r} ({theirs[1]}D, {theirs[2]} topology) but the "
                         f"dataset holds law {ours[0]!r} ({ours[1]}D, {ours[2]} topology); distill on matching data")
