"""The distillation stage end to end: messages -> SR (edge, node) -> select -> refit -> judge -> compare.

In:  a trained GNN (`gnn.checkpoint.load_model`) and its dataset (`nbody.dataset.load_dataset`),
     or, for tests and planted models, a `symbolic.Network` of callables plus `DistillData`.
Out: the `schema.DistillResult`, written with everything else to out_dir (layout:
     `distill.schema`): distill.json, messages.npz, predictions.npz, pareto_edge_{k}.csv,
     pareto_node_{axis}.csv, plus distill_config.json and equations.md.

With `DistillConfig.align` "node", "node_charge" or "auto" the edge fits and the node fits'
e1..ek use the node model's basis of the significant components (`align`; one per receiver
charge with "node_charge", one per value of a receiver property when the data choose it with
"auto"), computed on training nodes; each aligned edge fit is then offered the others' forms
with the axes swapped (`shared_forms`).

When the composed model, refitted on the true accelerations, is not `DistillConfig.residual_gain`
times below the network's MAE on those training graphs, the edge fits are offered sums with
searches on their residuals (`distill.residual`) and judged and composed again (its arrays in
the scratch folder RESIDUAL_SCRATCH meanwhile); that outcome stands when it at least halves the
composed training MAE, and `DistillResult.residual_search` records both.

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

from gnn.messages import analyse_messages, directed_edges, pair_targets, sample_edges
from gnn.strategies import find_strategy, get_strategy
from nbody import state
from nbody.laws import R, Law
from plumbing.errors import InputError
from plumbing.io import load_json, save_json
from plumbing.rundir import dataset_identity, file_sha256

from . import align, report, residual, schema
from .align import Alignment
from .candidate import Candidate, complexity, lambdify, symbols_for
from .compose import compare, eval_sets
from .config import DistillConfig
from .data import DistillData, distill_data
from .discovered import discover
from .energy import distill_hamiltonian
from .fitting import (FitResult, Holdout, build_replacing, fit_target, heldout_rng, numpy_callable, unused_graphs,
                      with_forms)
from .judge import edge_target, judge_edge, judge_node, receiver_factor, receiver_offset
from .messages import edge_input_names, edge_inputs, message_arrays
from .refit import refit_constants
from .schema import DistillResult, EdgeEquation, NodeEquation
from .select import needs_heldout
from .symbolic import Network, aggregate, node_input_names, node_inputs, symbolic_network

RESIDUAL_SCRATCH = "residual-search"   # sub-folder of the searched outcome's arrays until one is kept


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


def node_divisors(edge_exprs: list[sp.Expr], usable: list[bool], k: int, names: list[str],
                  rows: list[np.ndarray]) -> NodeDivisors:
    """g_k for the node inputs e_1..e_k: the receiver factor of edge equation k
    (`judge.receiver_factor`, its receiver offset left out) when usable[k] (the equation
    describes its message component: `describes`) and g_k is finite and at least 1e-3 of its
    median size on every row of `rows` (node inputs over `names`); otherwise 1."""
    exprs = []
    for j in range(k):
        g = None
        if j < len(usable) and usable[j]:
            expr = edge_exprs[j]
            g = receiver_factor(expr - receiver_offset(expr))
        if g is not None:
            values = np.concatenate([lambdify(g, names)(X) for X in rows])
            if not (np.all(np.isfinite(values)) and np.min(np.abs(values)) >= 1e-3 * np.median(np.abs(values))):
                g = None
        exprs.append(sp.Integer(1) if g is None else g)
    return NodeDivisors(tuple(exprs))


def describes(expr: sp.Expr, names: list[str], X: np.ndarray, y: np.ndarray, r2_min: float) -> bool:
    """Does expr reproduce the message component y on the rows X (R² >= r2_min)? What the
    node divisors read: the network's messages, never the true force (the judge's)."""
    with np.errstate(all="ignore"):
        residual = lambdify(expr, names)(X) - y
    total = float(np.sum((y - np.mean(y)) ** 2))
    return bool(np.all(np.isfinite(residual)) and total > 0 and 1 - float(np.sum(residual ** 2)) / total >= r2_min)


def shared_forms(fits: list[FitResult], X: np.ndarray, y: np.ndarray, names: list[str], cfg: DistillConfig,
                 held: Holdout | None) -> tuple[list[FitResult], tuple[str, ...]]:
    """The aligned edge fits, each offered the others' final forms with the axes swapped.

    In the node model's basis component a is the pair force's axis a, and the axes of one
    vector force share their form (dx <-> dy <-> dz): an SR search that found the whole law on
    one axis and part of it on another is given the whole form there, its constants refitted
    on that component's own fit rows, on its Pareto front under the same selection rule.

    Args:
        fits: [dim] edge fits, component a on the fit rows y[:, a]; X, names, cfg, held as
            `fit_target` took them.
    Returns:
        (the fits, "edge a: the form of edge b" for each whose final equation came from another's).
    """
    axes = symbols_for(["dx", "dy", "dz"][:len(fits)])
    out, taken = [], []
    for a, fit in enumerate(fits):
        offered = {}
        for b, other in enumerate(fits):
            if b != a:
                form = other.final.expr.xreplace({axes[a]: axes[b], axes[b]: axes[a]})
                expr, loss = refit_constants(form, X, y[:, a], names, cfg.precision)
                offered[b] = Candidate(expr, complexity(expr), loss)
        new = with_forms(fit, list(offered.values()), X, y[:, a], names, cfg, None if held is None else held.column(a))
        out.append(fit if new is None else new)
        if new is not None:
            source = next(b for b, c in offered.items() if c is new.front[new.index])
            taken.append(f"edge {a + 1}: the form of edge {source + 1}")
    return out, tuple(taken)


def _judged_edges(fits: list[FitResult], components, names: list[str], X_fresh: np.ndarray, force: np.ndarray,
                  y_fresh: np.ndarray, cfg: DistillConfig) -> list[EdgeEquation]:
    """Each edge fit's final equation judged on fresh test edges against the true force (and
    its own message component y_fresh[:, rank]), as the result's `EdgeEquation`."""
    return [EdgeEquation(component=int(k), rank=rank + 1, **report.equation_fields(fit, cfg.selection),
                         judgement=judge_edge(fit.final.expr, names, X_fresh, force, fit.final.complexity, cfg.judge,
                                              y_fresh[:, rank]))
            for rank, (k, fit) in enumerate(zip(components, fits))]


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
    or the aligned combinations of `columns` (the top components or all of them). `why`:
    what the data chose and why (align "auto"; the alignment's own `choice` when aligned)."""

    columns: np.ndarray
    alignment: Alignment | None
    dim: int
    why: str | None = None

    def __call__(self, values: np.ndarray, x_recv: np.ndarray) -> np.ndarray:
        picked = values[:, self.columns]
        return picked if self.alignment is None else self.alignment.apply(picked, x_recv, self.dim)


def _message_basis(net: Network, data: DistillData, top: np.ndarray, msg_dim: int, cfg: DistillConfig) -> MessageBasis:
    """The top components as they are (align "none"), or the node model's basis of the
    components `cfg.align_components` names. Under align "auto" a node model that reads no
    basis (it does not depend on the components, or reads them through a singular map: seen
    on the KL charge networks, which carry the force in fewer than dim combinations) gets the
    top components as they are, the paper's reading, and `why` says so; an explicit
    "node" or "node_charge" stays an InputError."""
    if cfg.align == "none":
        return MessageBasis(top, None, data.dim)
    columns = top if cfg.align_components == "top" else np.arange(msg_dim)
    try:
        alignment = _training_alignment(net, data, columns, cfg)
    except InputError as exc:
        if cfg.align != "auto":
            raise
        return MessageBasis(top, None, data.dim, f"no basis ({exc}): the top {data.dim} components as they are")
    return MessageBasis(columns, alignment, data.dim, alignment.choice)


def _training_alignment(net: Network, data: DistillData, top: np.ndarray, cfg: DistillConfig) -> Alignment:
    """`align.node_alignment` on the nodes of `cfg.n_nodes` / n training graphs (drawn with
    their own generator, so that turning alignment on leaves every other sample unchanged)."""
    rng = np.random.default_rng([cfg.seed, 1])
    G, n, F = data.train_x.shape
    graphs = rng.choice(G, size=min(G, int(np.ceil(cfg.n_nodes / n))), replace=False)
    xs = data.train_x[graphs].astype(np.float64)
    agg = aggregate(net.edge, xs, data.law)
    args = (net.node, xs.reshape(-1, F), agg.reshape(len(graphs) * n, -1), top, data.dim)
    if cfg.align == "auto":
        return align.auto_alignment(*args)
    return align.node_alignment(*args, by="q1" if cfg.align == "node_charge" else None)


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
    edge_held = held
    edge_fits = [fit_target(X_fit, y_fit[:, rank], names_e, cfg, None if held is None else held.column(rank),
                            label=f"edge {rank + 1}/{len(components)}") for rank in range(len(components))]
    shared = None
    if alignment is not None:
        edge_fits, shared = shared_forms(edge_fits, X_fit, y_fit, names_e, cfg, held)
    edges = _judged_edges(edge_fits, components, names_e, X_fresh, force, y_fresh, cfg)

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
    divisors, X_search, held_search = None, X_node, held   # what the node searches read
    if cfg.node_units == "edge":
        usable = [describes(f.final.expr, names_e, X_fresh, y_fresh[:, rank], cfg.success_r2)
                  for rank, f in enumerate(edge_fits)]
        divisors = node_divisors([f.final.expr for f in edge_fits], usable, len(top), names_n,
                                 [X_node, X_node_fresh] + ([] if held is None else [held.X]))
        X_search = divisors.divide(X_node, names_n)
        if held is not None:
            held_search = Holdout(divisors.divide(held.X, names_n), held.y, held.groups)
    node_fits = []
    for j, axis in enumerate("xyz"[:dim]):
        fit = fit_target(X_search, y_node[:, j], names_n, node_cfg,
                         None if held_search is None else held_search.column(j), label=f"node {axis} {j + 1}/{dim}")
        node_fits.append(fit if divisors is None else divisors.written_back(fit, names_n))

    def verdicts_and_physics(edges: list[EdgeEquation], edge_fits: list[FitResult], edge_fronts: list[list[sp.Expr]],
                             folder: Path, composed_edges: list[sp.Expr] | None = None) -> tuple[list[NodeEquation], object, dict]:
        """The node verdicts (against the receiver factors `edges` matched); 4. symbolic model
        vs network, in distribution and out of distribution; 5. the distilled law as physics
        (`distill.discovered`): the composed model (of `composed_edges`, default the fits'
        equations) refitted on the true accelerations, the law in physical form, rollouts of
        it and the network (their arrays into folder)."""
        undone = list(dict.fromkeys(edge_target(e.judgement) for e in edges))
        nodes = [NodeEquation(output=axis, index=j, **report.equation_fields(fit, node_cfg.selection),
                              judgement=judge_node(fit.final.expr, names_n, X_node_fresh, X_node_fresh[:, :len(top)],
                                                   fit.final.complexity, cfg.judge, y_node_fresh[:, j], undone))
                 for j, (axis, fit) in enumerate(zip("xyz"[:dim], node_fits))]
        for node, fit in zip(nodes, node_fits):
            schema.write_front(out / node.front_file, report.front_rows(fit))
        edge_exprs, node_exprs = [f.final.expr for f in edge_fits], [f.final.expr for f in node_fits]
        mae = compare(net, symbolic_network(edge_exprs, node_exprs, dim, data.softening), data, sets, folder)
        physics = discover(net, composed_edges or edge_exprs, node_exprs, data, cfg, sets, folder, info,
                           edge_fronts + [[c.expr for c in f.front] for f in node_fits])
        return nodes, mae, physics

    sets = eval_sets(data, cfg, rng)
    nodes, mae, physics = verdicts_and_physics(edges, edge_fits, [[c.expr for c in f.front] for f in edge_fits], out)

    # 6. Residual search (`distill.residual`): a composed model that does not beat the
    #    network on the truth by `cfg.residual_gain` lacks a term; each edge equation is
    #    offered sums with the front of a search on what it leaves, and the run is judged and
    #    composed again; the searched outcome stands when it at least halves the composed
    #    training MAE (`residual.GAIN`).
    searched = None
    network_train, floor = residual.reference(net, data, cfg) if cfg.residual_gain > 0 else (None, None)
    if network_train is not None and residual.needs_search(physics["composed"].train_after, network_train, floor,
                                                           cfg.residual_gain):
        begun = time.perf_counter()
        new_fits, sums, changed = residual.with_residuals(edge_fits, X_fit, y_fit, names_e, cfg, edge_held)
        new_shared = shared
        if alignment is not None:
            new_fits, new_shared = shared_forms(new_fits, X_fit, y_fit, names_e, cfg, edge_held)
        new_edges = _judged_edges(new_fits, components, names_e, X_fresh, force, y_fresh, cfg)
        fronts = [[c.expr for c in f.front] + [c.expr for c in extra] for f, extra in zip(new_fits, sums)]
        composed_edges, choice = residual.best_on_truth([f.final.expr for f in new_fits], [f.final.expr for f in node_fits],
                                                        sums, alignment is not None, data, cfg)
        scratch = out / RESIDUAL_SCRATCH
        scratch.mkdir()
        new_nodes, new_mae, new_physics = verdicts_and_physics(new_edges, new_fits, fronts, scratch, composed_edges)
        before, after = physics["composed"].train_after, new_physics["composed"].train_after
        kept = after is not None and (before is None or not np.isfinite(before) or after < residual.GAIN * before)
        searched = schema.ResidualSearch(network_train=network_train, composed_train=before, searched_train=after,
                                         kept=kept, edge_changes=changed, composed_choice=choice,
                                         seconds=time.perf_counter() - begun)
        if kept:
            edge_fits, shared, edges, nodes, mae, physics = new_fits, new_shared, new_edges, new_nodes, new_mae, new_physics
            for path in scratch.iterdir():
                path.replace(out / path.name)
        shutil.rmtree(scratch)
    for edge, fit in zip(edges, edge_fits):
        schema.write_front(out / edge.front_file, report.front_rows(fit))

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
        alignment_charges=None if alignment is None else alignment.values,
        alignment_property=None if alignment is None else alignment.by,
        alignment_choice=basis.why,
        alignment_rank1=None if alignment is None else alignment.rank1_share,
        node_divisors=None if divisors is None else divisors.labels, shared_forms=shared, residual_search=searched,
        **physics, **(info or {}))
    save_json(out / "distill_config.json", cfg)
    schema.save_result(out, result)
    result = schema.load_result(out)   # what every reader sees: non-finite floats are None
    report.write_equations_md(out / "equations.md", result)
    return result


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
    strategy = get_strategy(model.cfg.strategy)
    return Network(
        edge=numpy_callable(model.edge, batch),
        node=numpy_callable(model.node, batch),
        predict=numpy_callable(lambda x: model(x).acc, batch),
        logvar=numpy_callable(lambda xr, xs: model.edge_stats(xr, xs)[1], batch) if strategy.variational else None,
        strategy=strategy.name)


def distill_model(model, dataset, cfg: DistillConfig, out_dir: str | Path,
                  info: dict | None = None) -> DistillResult:
    """Distill a trained GNN on its dataset (a model whose strategy's network is "energy", the
    Hamiltonian: `energy.distill_hamiltonian`).

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
    strategy = find_strategy(getattr(getattr(model, "cfg", None), "strategy", None))
    hamiltonian = strategy is not None and strategy.network == "energy"
    net = None if hamiltonian else network_from_model(model)
    data = distill_data(dataset)
    if int(model.cfg.dim) != data.dim:
        raise InputError(f"model is {model.cfg.dim}D but the dataset is {data.dim}D")
    if hamiltonian:
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
    from gnn.checkpoint import load_model  # deferred (torch, Numba): reading a distillation's outputs needs neither
    from nbody.dataset import load_dataset  # deferred with the checkpoint

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
