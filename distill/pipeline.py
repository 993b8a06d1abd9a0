"""The distillation stage end to end: messages -> SR (edge, node) -> select -> refit -> judge -> compare.

In:  a trained GNN (`gnn.checkpoint.load_model`) and its dataset (`nbody.dataset.load_dataset`),
     or, for tests and planted models, a `symbolic.Network` of callables plus `DistillData`.
Out: the `schema.DistillResult`, written with everything else to out_dir (layout:
     `distill.schema`): distill.json, messages.npz, predictions.npz, pareto_edge_{k}.csv,
     pareto_node_{axis}.csv, plus distill_config.json and equations.md.

With `DistillConfig.align = "node"` or "node_charge" the edge fits and the node fits' e1..ek
use the node model's basis of the significant components (`align`; one per receiver charge
with "node_charge"), computed on training nodes.

Data use: messages are analysed on test edges; SR fits use training edges/nodes; the
"_heldout" selection rules use as many edges/nodes of the other training graphs (drawn with
their own generator, so the other rules' runs are unchanged); the judgement uses fresh test
edges/nodes (never the fit rows); the MAE comparison uses `n_eval_graphs` test graphs and
two out-of-distribution sets.
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
from nbody.rundir import check_ours, dataset_identity, file_sha256
from nbody.laws import R, Law, get_law

from . import align, report, schema, sr_engines
from .align import Alignment
from .candidate import Candidate, complexity, lambdify, symbols_for
from .config import DistillConfig
from .judge import edge_target, judge_edge, judge_node, receiver_factor, receiver_offset
from .messages import (analyse_messages, directed_edges, edge_input_names, edge_inputs, message_arrays,
                       pair_targets, sample_edges)
from .refit import refit_constants
from .schema import DistillResult, EdgeEquation, MAEComparison, NodeEquation, OODError, Predictions
from .select import heldout_loss, needs_heldout, pareto_front, scores, select
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
class Holdout:
    """Held-out rows of one SR target, which its search never sees (for the "_heldout"
    selection rules): inputs X [N, d], target y [N] (or [N, k], one column per target), and
    optionally groups [N], labels of rows that share their particle constants (the held-out
    loss then ignores one offset per group: `select.heldout_loss`)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None = None

    def column(self, j: int) -> "Holdout":
        """The held-out rows of target column j of a [N, k] y."""
        return Holdout(self.X, self.y[:, j], self.groups)


@dataclass(frozen=True)
class FitResult:
    """One SR target: its Pareto front, PySR scores, the selected index, the final
    (refitted) equation, and each front entry's held-out loss (None without held-out rows)."""

    front: list[Candidate]
    scores: list[float]
    index: int
    final: Candidate
    refitted: bool
    seconds: float
    heldout_losses: list[float] | None = None


def heldout_rng(cfg: DistillConfig) -> np.random.Generator:
    """The generator that draws held-out rows: its own stream, so drawing them leaves every
    other sample of a run unchanged."""
    return np.random.default_rng([cfg.seed, 2])


def unused_graphs(n_graphs: int, used: np.ndarray) -> np.ndarray:
    """Indices of the graphs 0..n_graphs-1 not in `used` (those fit rows came from): where
    held-out rows are drawn. InputError when none is left."""
    left = np.setdiff1d(np.arange(n_graphs), used)
    if len(left) == 0:
        raise InputError(f"all {n_graphs} training graphs hold fit rows, none is left for held-out rows; "
                         "use more graphs or a selection rule without held-out rows")
    return left


def fit_target(X: np.ndarray, y: np.ndarray, names: list[str], cfg: DistillConfig,
               heldout: Holdout | None = None, label: str | None = None) -> FitResult:
    """SR on one target, Pareto front, selection rule, optional constant refit.

    Args:
        X: [N, d] inputs; y: [N] target; names: column names; cfg: the stage config.
        heldout: rows the search does not see; each front entry's loss on them
            (`select.heldout_loss`) is what a "_heldout" selection rule reads.
        label: what the SR progress bar calls this fit ("edge 1/2"; `sr_engines.progress`).
    Returns:
        FitResult (final = the selected equation, refitted on (X, y) when cfg.refit and it
        helps; seconds = wall time of search, selection and refit).
    """
    start = time.perf_counter()
    with sr_engines.progress(label=label):
        front = pareto_front(sr_engines.fit(X, y, names, cfg), y)
    losses = None if heldout is None else [heldout_loss(c.expr, heldout.X, heldout.y, names, heldout.groups)
                                           for c in front]
    index = select(front, cfg.selection, cfg.best_loss_factor, losses)
    chosen = front[index]
    final = chosen
    if cfg.refit:
        expr, loss = refit_constants(chosen.expr, X, y, names, cfg.precision)
        final = Candidate(expr, complexity(expr), loss)
    return FitResult(front, scores(front), index, final, final.expr != chosen.expr, time.perf_counter() - start,
                     losses)


@dataclass(frozen=True)
class NodeDivisors:
    """The receiver factors g_k(q1, m1) the node fits divide the summed components e_k by
    (`DistillConfig.node_units` "edge"): `exprs` [k] sympy over q1, m1 (1 where none is used),
    `labels` their text."""

    exprs: tuple[sp.Expr, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(g) for g in self.exprs)

    def divide(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        """Node inputs [N, d] with column e_k divided by g_k on each row."""
        out = X.copy()
        for k, g in enumerate(self.exprs):
            out[:, k] /= lambdify(g, names)(X)
        return out

    def written_back(self, fit: FitResult, names: list[str]) -> FitResult:
        """A fit made on `divide`d inputs with its equations written back in e_k (e_k -> e_k/g_k)."""
        e = symbols_for(names)
        back = {e[k]: e[k] / g for k, g in enumerate(self.exprs)}

        def undivided(c: Candidate) -> Candidate:
            expr = c.expr.xreplace(back)
            return Candidate(expr, complexity(expr), c.loss)
        return dataclasses.replace(fit, front=[undivided(c) for c in fit.front], final=undivided(fit.final))


def node_divisors(edge_exprs: list[sp.Expr], edges: list[EdgeEquation], k: int, names: list[str],
                  rows: list[np.ndarray]) -> NodeDivisors:
    """g_k for the node inputs e_1..e_k: the receiver factor of edge equation k
    (`judge.receiver_factor`, its receiver offset left out) when that edge passed and g_k is
    finite and at least 1e-3 of its median size on every row of `rows` (node inputs over
    `names`); otherwise 1."""
    exprs = []
    for j in range(k):
        g = None
        if j < len(edges) and edges[j].judgement.success:
            expr = edge_exprs[j]
            g = receiver_factor(expr - receiver_offset(expr))
        if g is not None:
            values = np.concatenate([lambdify(g, names)(X) for X in rows])
            if not (np.all(np.isfinite(values)) and np.min(np.abs(values)) >= 1e-3 * np.median(np.abs(values))):
                g = None
        exprs.append(sp.Integer(1) if g is None else g)
    return NodeDivisors(tuple(exprs))


def _nearest(x: np.ndarray, law: Law, dim: int) -> np.ndarray:
    """Distance of each node to its nearest interacting neighbour, [G, n]."""
    recv, send = directed_edges(law, x.shape[1])
    d = state.pos(x[:, recv], dim).astype(np.float64) - state.pos(x[:, send], dim)
    dist = np.sqrt(np.sum(d * d, axis=-1))
    out = np.full(x.shape[:2], np.inf)
    for e, i in enumerate(recv):
        out[:, i] = np.minimum(out[:, i], dist[:, e])
    return out


def _sample_nodes(net: Network, x: np.ndarray, a: np.ndarray, law: Law, dim: int, basis: "MessageBasis",
                  cfg: DistillConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node SR rows: (inputs [N, d], network node outputs or true accelerations [N, dim], the
    graphs drawn) for `cfg.n_nodes` nodes with no neighbour closer than min_r; the
    aggregated messages enter in the basis SR fits them in."""
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
    return node_inputs(flat, basis(agg, flat), dim), target, graphs


@dataclass(frozen=True)
class MessageBasis:
    """The map from full messages (or their sums) [N, msg_dim], received by nodes x_recv
    [N, F], to the components SR fits [N, dim]: the top components, most significant first,
    or the aligned combinations of `columns` (the top components or all of them)."""

    columns: np.ndarray
    alignment: Alignment | None
    dim: int

    def __call__(self, values: np.ndarray, x_recv: np.ndarray) -> np.ndarray:
        picked = values[:, self.columns]
        return picked if self.alignment is None else self.alignment.apply(picked, x_recv, self.dim)


def _message_basis(net: Network, data: DistillData, top: np.ndarray, msg_dim: int, cfg: DistillConfig) -> MessageBasis:
    """The top components as they are (align "none"), or the node model's basis of the
    components `cfg.align_components` names."""
    if cfg.align == "none":
        return MessageBasis(top, None, data.dim)
    columns = top if cfg.align_components == "top" else np.arange(msg_dim)
    return MessageBasis(columns, _training_alignment(net, data, columns, cfg), data.dim)


def _training_alignment(net: Network, data: DistillData, top: np.ndarray, cfg: DistillConfig) -> Alignment:
    """`align.node_alignment` on the nodes of `cfg.n_nodes` / n training graphs (drawn with
    their own generator, so that turning alignment on leaves every other sample unchanged)."""
    rng = np.random.default_rng([cfg.seed, 1])
    G, n, F = data.train_x.shape
    graphs = rng.choice(G, size=min(G, int(np.ceil(cfg.n_nodes / n))), replace=False)
    xs = data.train_x[graphs].astype(np.float64)
    agg = aggregate(net.edge, xs, data.law)
    return align.node_alignment(net.node, xs.reshape(-1, F), agg.reshape(len(graphs) * n, -1), top,
                                data.dim, by_charge=cfg.align == "node_charge")


def distill_network(net: Network, data: DistillData, cfg: DistillConfig, out_dir: str | Path,
                    info: dict | None = None) -> DistillResult:
    """Distill a message-passing model given as callables; write every output to out_dir.

    The outputs are written to a temporary sibling folder that replaces out_dir only when
    everything succeeded: a failed or interrupted run leaves no partial folder behind.

    Args:
        net: the model (wrapped GNN or planted callables).
        data: law, dimension, softening and train/test states.
        cfg: stage config.
        out_dir: output folder (replaced as a whole).
        info: the result's "checkpoint", "dataset" and "inputs" fields, if any.
    Returns:
        the result as `schema.load_result` reads it back from out_dir.
    """
    return build_replacing(out_dir, lambda tmp: _distill_into(tmp, net, data, cfg, info))


def build_replacing(out_dir: str | Path, build) -> DistillResult:
    """`build(tmp)` into a temporary sibling of out_dir that replaces out_dir only when it
    succeeded: a failed or interrupted run leaves no partial folder behind. An existing
    out_dir that this project did not make is refused before anything is built, and only
    the files of an earlier distillation are ever replaced (`nbody.io.replace_dir`)."""
    out = Path(out_dir)
    check_ours(out)
    tmp = temp_dir_beside(out)
    try:
        result = build(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _distill_into(out: Path, net: Network, data: DistillData, cfg: DistillConfig, info: dict | None) -> DistillResult:
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    law, dim = data.law, data.dim

    # 1. Messages on test edges: significance, sparsity, R² against force and F/m1.
    rec = sample_edges(data.test_x, law, cfg.n_edges, rng)
    messages = np.asarray(net.edge(rec.x_recv, rec.x_send), dtype=np.float64)
    logvar = None if net.logvar is None else np.asarray(net.logvar(rec.x_recv, rec.x_send), dtype=np.float64)
    msg = analyse_messages(messages, logvar, rec, law, dim, data.softening)
    schema.save_messages(out, message_arrays(messages, rec, msg, dim, data.softening))
    top = msg.top
    basis = _message_basis(net, data, top, messages.shape[1], cfg)
    alignment = basis.alignment

    # 2. Edge model: one fit per significant component on training edges, judged on fresh test edges.
    names_e = edge_input_names(dim)
    fit_edges = sample_edges(data.train_x, law, cfg.n_edges, rng, cfg.min_r)
    fresh_edges = sample_edges(data.test_x, law, cfg.n_edges, rng, cfg.min_r)
    X_fit = edge_inputs(fit_edges.x_recv, fit_edges.x_send, dim, data.softening)
    y_fit = basis(np.asarray(net.edge(fit_edges.x_recv, fit_edges.x_send), dtype=np.float64), fit_edges.x_recv)
    X_fresh = edge_inputs(fresh_edges.x_recv, fresh_edges.x_send, dim, data.softening)
    force = pair_targets(law, fresh_edges.x_recv, fresh_edges.x_send, dim, data.softening)[0]
    y_fresh = basis(np.asarray(net.edge(fresh_edges.x_recv, fresh_edges.x_send), dtype=np.float64),
                    fresh_edges.x_recv)
    held = None
    if needs_heldout(cfg.selection):
        rows = sample_edges(data.train_x[unused_graphs(len(data.train_x), fit_edges.graph)], law, cfg.n_edges,
                            heldout_rng(cfg), cfg.min_r)
        held = Holdout(edge_inputs(rows.x_recv, rows.x_send, dim, data.softening),
                       basis(np.asarray(net.edge(rows.x_recv, rows.x_send), dtype=np.float64), rows.x_recv))
    components = top if alignment is None else range(dim)
    edge_fits, edges = [], []
    for rank, k in enumerate(components):
        fit = fit_target(X_fit, y_fit[:, rank], names_e, cfg, None if held is None else held.column(rank),
                         label=f"edge {rank + 1}/{len(components)}")
        verdict = judge_edge(fit.final.expr, names_e, X_fresh, force, fit.final.complexity, cfg.judge, y_fresh[:, rank])
        edge = EdgeEquation(component=int(k), rank=rank + 1, judgement=verdict,
                            **report.equation_fields(fit, cfg.selection))
        schema.write_front(out / edge.front_file, report.front_rows(fit))
        edge_fits.append(fit)
        edges.append(edge)

    # 3. Node model: one fit per output axis on training nodes, judged on fresh test nodes
    #    against the receiver factor(s) the edge equations matched (the composed model).
    names_n = node_input_names(dim, len(top))
    node_cfg = dataclasses.replace(cfg, selection=cfg.node_selection or cfg.selection)
    X_node, y_node, node_graphs = _sample_nodes(net, data.train_x, data.train_a, law, dim, basis, cfg, rng)
    X_node_fresh, y_node_fresh, _ = _sample_nodes(net, data.test_x, data.test_a, law, dim, basis, cfg, rng)
    held = None
    if needs_heldout(node_cfg.selection):
        left = unused_graphs(len(data.train_x), node_graphs)
        held = Holdout(*_sample_nodes(net, data.train_x[left], data.train_a[left], law, dim, basis, cfg,
                                      heldout_rng(cfg))[:2])
    undone = list(dict.fromkeys(edge_target(e.judgement) for e in edges))
    divisors, X_search, held_search = None, X_node, held   # what the node searches read
    if cfg.node_units == "edge":
        divisors = node_divisors([f.final.expr for f in edge_fits], edges, len(top), names_n,
                                 [X_node, X_node_fresh] + ([] if held is None else [held.X]))
        X_search = divisors.divide(X_node, names_n)
        if held is not None:
            held_search = Holdout(divisors.divide(held.X, names_n), held.y, held.groups)
    node_fits, nodes = [], []
    for j, axis in enumerate("xyz"[:dim]):
        fit = fit_target(X_search, y_node[:, j], names_n, node_cfg,
                         None if held_search is None else held_search.column(j), label=f"node {axis} {j + 1}/{dim}")
        if divisors is not None:
            fit = divisors.written_back(fit, names_n)
        verdict = judge_node(fit.final.expr, names_n, X_node_fresh, X_node_fresh[:, :len(top)],
                             fit.final.complexity, cfg.judge, y_node_fresh[:, j], undone)
        node = NodeEquation(output=axis, index=j, judgement=verdict,
                            **report.equation_fields(fit, node_cfg.selection))
        schema.write_front(out / node.front_file, report.front_rows(fit))
        node_fits.append(fit)
        nodes.append(node)

    # 4. Symbolic model vs network, in distribution and out of distribution.
    sym = symbolic_network([f.final.expr for f in edge_fits], [f.final.expr for f in node_fits], dim,
                           data.softening)
    mae = _compare(net, sym, data, cfg, rng, out)

    result = DistillResult(
        strategy=net.strategy, law=law.name, dim=dim, sr_engine=cfg.sr_engine,
        seconds=time.perf_counter() - start,
        sparsity=msg.sparsity, component_std=tuple(np.std(messages, axis=0).tolist()),
        component_score=tuple(msg.scores.tolist()), top_components=tuple(int(k) for k in top),
        r2_force=tuple(msg.r2_force), r2_force_mean=float(np.mean(msg.r2_force)),
        r2_accel=tuple(msg.r2_accel), r2_accel_mean=float(np.mean(msg.r2_accel)),
        r2_affine_force=tuple(map(tuple, msg.affine_force.tolist())),
        r2_affine_accel=tuple(map(tuple, msg.affine_accel.tolist())),
        edge=tuple(edges), node=tuple(nodes),
        edge_success=all(e.judgement.success for e in edges),
        node_success=all(e.judgement.success for e in nodes),
        mae=mae, expected_force=str(law.force_expr.xreplace({R: sp.Symbol("r'")})),
        alignment=None if alignment is None else tuple(tuple(map(tuple, m)) for m in alignment.matrices.tolist()),
        alignment_charges=None if alignment is None else alignment.charges,
        alignment_rank1=None if alignment is None else alignment.rank1_share,
        node_divisors=None if divisors is None else divisors.labels, **(info or {}))
    save_json(out / "distill_config.json", cfg)
    schema.save_result(out, result)
    result = schema.load_result(out)   # what every reader sees: non-finite floats are None
    report.write_equations_md(out / "equations.md", result)
    return result


def _compare(net: Network, sym: Network, data: DistillData, cfg: DistillConfig,
             rng: np.random.Generator, out: Path) -> MAEComparison:
    """MAE of network and symbolic model on test graphs (their predictions saved to out)
    and on the two OOD sets."""
    G, n = data.test_x.shape[:2]
    idx = rng.choice(G, size=min(G, cfg.n_eval_graphs), replace=False)
    x, a = data.test_x[idx], data.test_a[idx]
    predictions = Predictions(true=a, network=forward(net, x, data.law), symbolic=forward(sym, x, data.law))
    schema.save_predictions(out, predictions)
    net_mean, net_std = mae_stats(predictions.network, a)
    sym_mean, sym_std = mae_stats(predictions.symbolic, a)
    ood = {}
    for name, n_ood, spread in (("spread", n, cfg.ood_spread),
                                ("more_particles", n + cfg.ood_extra_particles, 1.0)):
        xo, ao = ood_states(data.law, data.dim, n_ood, cfg.n_ood_graphs, data.softening, rng, spread)
        ood[name] = OODError(network=mae_stats(forward(net, xo, data.law), ao)[0],
                             symbolic=mae_stats(forward(sym, xo, data.law), ao)[0],
                             n=n_ood, position_spread=spread)
    return MAEComparison(network=net_mean, symbolic=sym_mean, network_std=net_std, symbolic_std=sym_std,
                         n_graphs=int(len(idx)), ood=ood)


def numpy_callable(fn, batch: int = 8192):
    """A torch function of float32 tensors as a NumPy one: float32 in (batched by `batch`
    rows along the first axis, no gradient recording), float64 out."""
    import torch

    def call(*arrays: np.ndarray) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for s in range(0, len(arrays[0]), batch):
                args = [torch.as_tensor(np.asarray(a[s:s + batch], dtype=np.float32)) for a in arrays]
                outs.append(fn(*args).detach().cpu().numpy().astype(np.float64))
        return np.concatenate(outs)
    return call


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
    if not all(hasattr(model, a) for a in ("edge", "node", "edge_stats", "cfg")):
        raise InputError(f"{type(model).__name__} is not a message-passing GNN")
    model.eval()
    strategy = model.cfg.strategy
    return Network(
        edge=numpy_callable(model.edge, batch),
        node=numpy_callable(model.node, batch),
        predict=numpy_callable(lambda x: model(x).acc, batch),
        logvar=numpy_callable(lambda xr, xs: model.edge_stats(xr, xs)[1], batch) if strategy == "kl" else None,
        strategy=strategy)


def distill_data(dataset) -> DistillData:
    """The `DistillData` of an `nbody.dataset.Dataset`: its law, dim, softening, and the
    train and test splits' states and accelerations."""
    law = dataset.law if isinstance(dataset.law, Law) else get_law(str(dataset.law))
    train_x, train_a = dataset.split("train").graphs()
    test_x, test_a = dataset.split("test").graphs()
    return DistillData(law, int(dataset.config.dim), float(dataset.config.softening), train_x, train_a,
                       test_x, test_a)


def distill_model(model, dataset, cfg: DistillConfig, out_dir: str | Path,
                  info: dict | None = None) -> DistillResult:
    """Distill a trained GNN on its dataset (a Hamiltonian model: `energy.distill_hamiltonian`).

    Args:
        model: a `gnn` model (see `network_from_model`).
        dataset: `nbody.dataset.Dataset` (.config, .law, .split(name).graphs()).
        cfg: stage config.
        out_dir: output folder.
        info: the result's "checkpoint", "dataset" and "inputs" fields, if any.
    Returns:
        the result (`distill_network`).
    Raises:
        InputError: not a GNN, or model and dataset dimensions disagree.
    """
    hamiltonian = getattr(getattr(model, "cfg", None), "strategy", None) == "hamiltonian"
    net = None if hamiltonian else network_from_model(model)
    data = distill_data(dataset)
    if int(model.cfg.dim) != data.dim:
        raise InputError(f"model is {model.cfg.dim}D but the dataset is {data.dim}D")
    if hamiltonian:
        from .energy import distill_hamiltonian  # it builds on this module
        return distill_hamiltonian(model, data, cfg, out_dir, info)
    return distill_network(net, data, cfg, out_dir, info)


def distill_checkpoint(path: str | Path, cfg: DistillConfig, out_dir: str | Path,
                       dataset_path: str | Path | None = None) -> DistillResult:
    """Load a GNN checkpoint and its dataset, then `distill_model`.

    Args:
        path: checkpoint written by the gnn trainer.
        cfg: stage config.
        out_dir: output folder.
        dataset_path: dataset folder; default: the one recorded in the checkpoint.
    Returns:
        the result, with its checkpoint, dataset and inputs fields set.
    Raises:
        InputError: missing or foreign checkpoint (`gnn.checkpoint.load_model`), no dataset,
        or a dataset of another law, dimension or topology than the one the model was
        trained on.
    """
    from gnn.checkpoint import load_model
    from nbody.dataset import load_dataset

    model, meta = load_model(path, device="cpu")
    recorded = meta["dataset"]          # {"path": str | None, "meta": dict} (`gnn.train.load_splits`)
    dataset_path = dataset_path or recorded["path"]
    if not dataset_path:
        raise InputError(f"checkpoint {path} names no dataset; pass dataset_path")
    dataset = load_dataset(dataset_path)
    _check_same_physics(recorded["meta"], dataset)
    info = {"checkpoint": str(path), "dataset": str(dataset_path),
            "inputs": distill_inputs(Path(path), Path(dataset_path))}
    return distill_model(model, dataset, cfg, out_dir, info)


def distill_inputs(checkpoint: Path, dataset_path: Path) -> dict:
    """Identities of a distillation's inputs: the checkpoint's hash and the dataset's identity."""
    return {"checkpoint_sha256": file_sha256(checkpoint),
            "dataset": dataset_identity(load_json(Path(dataset_path) / "meta.json"))}


def _check_same_physics(trained_on: dict, dataset) -> None:
    """InputError when the dataset's law or dimension differ from the training data's.

    `trained_on` is the training dataset's meta.json as the checkpoint recorded it (empty for
    a model trained on in-memory arrays: nothing to compare).
    """
    if not trained_on:
        return
    law = trained_on["law"]
    if trained_on["dim"] != dataset.config.dim or law != dataclasses.asdict(dataset.law):
        raise InputError(f"the model was trained on law {law['name']!r} ({trained_on['dim']}D, {law['topology']} "
                         f"topology) but the dataset holds law {dataset.law.name!r} ({dataset.config.dim}D, "
                         f"{dataset.law.topology} topology); distill on matching data")
