"""The composed symbolic model, fitted end to end against the true accelerations.

In:  the selected edge equations (over `messages.edge_input_names`) and node equations (over
     `symbolic.node_input_names`: e1..ek, the summed components edge equation k emits, then
     m1, q1, v1), a `pipeline.DistillData`, and the evaluation sets (`eval_sets`).
Out: `refit_composed` -> (`schema.ComposedFit`, edge equations, node equations): the model
     a_i = node(Σ_j edge(i, j), properties of i) with ALL its numeric constants fitted jointly
     (`refit_jointly`) on the true accelerations of REFIT_GRAPHS training graphs, kept only
     when that lowers their MAE, and its MAE on the test graphs and the OOD sets.

Distances: the edge equations read both r and the softened rs = r + eps, which the network's
outputs cannot tell apart (they differ by eps = 0.01) but the true accelerations can: a 1/r³
where the law has 1/(r·rs²) misses every close pair. After the joint fit, `swap_distances`
tries each power of r or rs of the edge equations with some of its factors exchanged for the
other distance (r³ -> r²·rs, r·rs², rs³), in every edge equation at once, refits each variant
jointly, and keeps the best when it at least halves the training MAE (same number of
constants, noise-free truth), until none does; the record lists the swaps kept. The pass runs
before the front pass (`distill.frontpass`), so that a selected form whose only fault is r for
rs is not traded for a longer one from its front that mixes the two better, and again after
it when the front pass changed a form (the fronts' forms have the same ambiguity): well 2D,
seed 1, took dx·(19.7/rs − 19.7)/(r·rs·(r + 0.01)) for dx·(rs − 1)/(r²·rs²) in the other
order, where the distance pass alone writes both its edges dx·(rs − 1)/(r·rs³), the law.

Why: each equation's own refit (`distill.refit`) matches the network's outputs, errors and
all; the composed model was never fitted to the physics, so it could lose to the network it
came from even on noise-free data. The joint fit uses a robust loss (soft L1 with f_scale a
hundredth of the median |a|), so the few close pairs of 1/r² laws do not dominate it.
`EvalSets` holds the test graphs and OOD sets every model of a run is judged on (the
network, the selected equations, the refitted ones, the physical law).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.optimize
import sympy as sp

from nbody.graph import edges, scatter_sum
from nbody.laws import Law

from . import schema
from .candidate import lambdify, linear_in, round_floats, symbols_for
from .config import DistillConfig
from .data import DistillData
from .frontpass import choose_from_fronts
from .messages import edge_input_names, edge_inputs
from .schema import ComposedFit, MAEComparison, OODError, Predictions
from .symbolic import Network, forward, mae_stats, node_input_names, node_inputs, ood_states, symbolic_network

REFIT_GRAPHS = 300     # training graphs of the joint fits: enough for ~10 constants, a few seconds
MAX_EVALUATIONS = 400  # model evaluations one joint fit may spend (finite-difference Jacobian included)
SCREEN_GRAPHS = 60     # training graphs (of the REFIT_GRAPHS) the front pass screens its options on
SCREEN_EVALUATIONS = 100  # model evaluations of one screening fit
SWAP_GAIN = 0.5        # a distance swap is kept when it at least halves the joint fit's training MAE
MAX_SWAPS = 4          # rounds of `swap_distances` (each keeps at most one swap)
F_SCALE = 1e-2         # soft-L1 scale as a fraction of the median |true acceleration component|


@dataclass(frozen=True, eq=False)
class OODSet:
    """One out-of-distribution set: states x [G, n, F], true accelerations a [G, n, dim]."""

    x: np.ndarray
    a: np.ndarray
    n: int
    spread: float


@dataclass(frozen=True, eq=False)
class EvalSets:
    """What every model of a run is judged on: test graphs x [G, n, F], a [G, n, dim], and
    the OOD sets by name ("spread", "more_particles")."""

    test_x: np.ndarray
    test_a: np.ndarray
    ood: dict[str, OODSet]

    def maes(self, predict: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float, dict[str, float]]:
        """(test MAE mean, its std over graphs, {OOD set: MAE}) of predict: x [G, n, F] -> [G, n, dim]."""
        mean, std = mae_stats(predict(self.test_x), self.test_a)
        return mean, std, {name: mae_stats(predict(s.x), s.a)[0] for name, s in self.ood.items()}


def eval_sets(data: DistillData, cfg: DistillConfig, rng: np.random.Generator) -> EvalSets:
    """`cfg.n_eval_graphs` test graphs and the two OOD sets (positions spread by
    `cfg.ood_spread`; `cfg.ood_extra_particles` more particles), drawn from rng in that order."""
    G, n = data.test_x.shape[:2]
    idx = rng.choice(G, size=min(G, cfg.n_eval_graphs), replace=False)
    ood = {}
    for name, n_ood, spread in (("spread", n, cfg.ood_spread), ("more_particles", n + cfg.ood_extra_particles, 1.0)):
        x, a = ood_states(data.law, data.dim, n_ood, cfg.n_ood_graphs, data.softening, rng, spread)
        ood[name] = OODSet(x, a, n_ood, spread)
    return EvalSets(data.test_x[idx], data.test_a[idx], ood)


def refit_graphs(data: DistillData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """REFIT_GRAPHS training graphs (x float64 [G, n, F], a [G, n, dim]) drawn with their own
    generator, so the joint fits leave every other sample of a run unchanged."""
    G = len(data.train_x)
    idx = np.random.default_rng([seed, 3]).choice(G, size=min(G, REFIT_GRAPHS), replace=False)
    return data.train_x[idx].astype(np.float64), data.train_a[idx].astype(np.float64)


def refit_jointly(exprs: Sequence[sp.Expr], names: Sequence[Sequence[str]],
                  predict: Callable[[list[Callable[[np.ndarray], np.ndarray]]], np.ndarray],
                  target: np.ndarray, digits: int,
                  evaluations: int = MAX_EVALUATIONS) -> tuple[list[sp.Expr], float, float]:
    """Fit every float constant of several expressions at once to one target.

    Args:
        exprs: sympy expressions; expression i is over the columns names[i].
        predict: (one evaluator per expression, X [N, len(names[i])] -> [N]) -> predictions
            shaped like target.
        target: the true values, e.g. accelerations [G, n, dim].
        digits: significant digits kept in the fitted constants.
        evaluations: the most model evaluations the fit may spend.
    Returns:
        (expressions, MAE per node before, after): the fitted expressions when they lower the
        MAE (`symbolic.mae_stats`), else the given ones (then after == before); both MAEs
        inf when an expression holds a non-finite number (a variant of the distance or front
        pass that divides by an exact zero, 1/(1/r - 1/r) = zoo), which no fit can use.
    """
    if any(e.has(sp.zoo, sp.oo, -sp.oo, sp.nan) for e in exprs):
        return list(exprs), float("inf"), float("inf")
    templates, params = [], []
    for expr in exprs:
        consts = sorted(expr.atoms(sp.Float), key=float)
        syms = sp.symbols(f"_c{len(params)}:{len(params) + len(consts)}")
        templates.append((expr.xreplace(dict(zip(consts, syms))), syms))
        params += [(s, float(c)) for s, c in zip(syms, consts)]
    raw = [sp.lambdify(symbols_for(cols) + list(syms), t, modules="numpy")
           for (t, syms), cols in zip(templates, names)]
    offsets = np.cumsum([0] + [len(syms) for _, syms in templates])

    def evaluators(theta: np.ndarray) -> list[Callable[[np.ndarray], np.ndarray]]:
        return [_evaluator(fn, theta[offsets[i]:offsets[i + 1]]) for i, fn in enumerate(raw)]

    theta0 = np.array([v for _, v in params])
    before = mae_stats(predict(evaluators(theta0)), target)[0]
    if not params:
        return list(exprs), before, before
    scale = max(F_SCALE * float(np.median(np.abs(target))), 1e-12)

    def residual(theta: np.ndarray) -> np.ndarray:
        res = (predict(evaluators(theta)) - target).ravel()
        return np.where(np.isfinite(res), res, 1e10)

    try:
        fit = scipy.optimize.least_squares(residual, theta0, loss="soft_l1", f_scale=scale, x_scale="jac",
                                           max_nfev=evaluations)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return list(exprs), before, before
    fitted = [round_floats(t.xreplace({s: sp.Float(v) for s, v in zip(syms, fit.x[offsets[i]:offsets[i + 1]])}),
                           digits) for i, (t, syms) in enumerate(templates)]
    after = _mae_of(fitted, names, predict, target)      # of the rounded constants
    return (fitted, before, after) if after < before else (list(exprs), before, before)


def distance_changes(exprs: Sequence[sp.Expr]) -> list[tuple[sp.Expr, sp.Expr]]:
    """Each way to write one power of r or rs (r^p, p a nonzero integer) found in `exprs`
    partly or wholly in the other distance: (r^p, r^(p-j)·rs^j), j = 1..|p| (signs as p).

    Returns:
        [(old, new)], each once, in the expressions' order.
    """
    r, rs = symbols_for(["r", "rs"])
    other = {r: rs, rs: r}
    changes: dict[tuple[sp.Expr, sp.Expr], None] = {}
    for expr in exprs:
        for sub in sp.preorder_traversal(expr):
            base, p = sub.as_base_exp()                  # (r, 1) for r itself
            if base not in other or not p.is_Integer:
                continue
            step = 1 if p > 0 else -1
            for j in range(1, abs(int(p)) + 1):
                changes.setdefault((sub, base ** (p - step * j) * other[base] ** (step * j)), None)
    return list(changes)


def swap_distances(exprs: Sequence[sp.Expr], k: int, names: Sequence[Sequence[str]], predict,
                   target: np.ndarray, digits: int, mae: float) -> tuple[list[sp.Expr], float, tuple[str, ...]]:
    """The distance pass of the module docstring over the first k (edge) of `exprs`: a change
    is made in every edge equation at once (they are the components of one pair force).

    Args:
        exprs, names, predict, target, digits: as `refit_jointly`; mae: the MAE of exprs.
    Returns:
        (expressions, their MAE, the changes kept as "old -> new").
    """
    exprs, kept = list(exprs), []
    for _ in range(MAX_SWAPS):
        best = None
        for old, new in distance_changes(exprs[:k]):
            swapped = [e.xreplace({old: new}) for e in exprs[:k]] + exprs[k:]
            fitted, _, after = refit_jointly(swapped, names, predict, target, digits)
            if best is None or after < best[0]:
                best = (after, fitted, f"{old} -> {new}")
        if best is None or not best[0] <= SWAP_GAIN * mae:
            break
        mae, exprs = best[0], best[1]
        kept.append(best[2])
    return exprs, mae, tuple(kept)


def _evaluator(fn, constants: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """X [N, d] -> [N] float64 of a lambdified fn(column 1, ..., column d, *constants) (the
    free-constant twin of `candidate.lambdify`)."""
    def evaluate(X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = fn(*(X[:, c] for c in range(X.shape[1])), *constants)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (len(X),))
    return evaluate


def _mae_of(exprs: Sequence[sp.Expr], names: Sequence[Sequence[str]], predict, target: np.ndarray) -> float:
    """MAE per node of predict on the evaluators of exprs (no free constants)."""
    return mae_stats(predict([lambdify(e, cols) for e, cols in zip(exprs, names)]), target)[0]


def composed_predictor(x: np.ndarray, law: Law, dim: int, softening: float, k: int):
    """predict(evaluators) -> [G, n, dim] of the composed model on fixed states x [G, n, F]:
    evaluators[:k] the edge equations (component i from edge row inputs), evaluators[k:] the
    node equations (axis j from node inputs); the edge inputs are computed once."""
    G, n, F = x.shape
    send, recv = edges(n, law.topology)
    X_edge = edge_inputs(x[:, recv], x[:, send], dim, softening).reshape(G * len(recv), -1)
    flat = x.reshape(G * n, F)

    def predict(fns):
        msgs = np.stack([f(X_edge) for f in fns[:k]], axis=-1).reshape(G, len(recv), k)
        X_node = node_inputs(flat, scatter_sum(msgs, recv, n).reshape(G * n, k), dim)
        return np.stack([f(X_node) for f in fns[k:]], axis=-1).reshape(G, n, dim)
    return predict


def biases_to_nodes(edge_exprs: Sequence[sp.Expr], node_exprs: Sequence[sp.Expr], n: int, law: Law,
                    dim: int) -> tuple[list[sp.Expr], list[sp.Expr]]:
    """The edge equations without their constant terms b_k, and the node equations reading
    e_k + d·b_k instead of e_k, when every one of the n particles has d incoming edges (else
    the equations as given). On graphs of n particles the model is the same function; on
    others it is the one a pair law implies: a constant vector per pair has no direction to
    point along (a pair force vanishes with its pair), so a network's per-edge bias and the
    node offset that cancels it are one offset per receiver, which is what the data (graphs
    of one size) can tell. Without the move, the composed model adds d·b_k on graphs with
    more neighbours (the `more_particles` OOD set) while its node offset stays."""
    degree = np.bincount(edges(n, law.topology)[1], minlength=n)
    if not np.all(degree == degree[0]):
        return list(edge_exprs), list(node_exprs)
    e = symbols_for(node_input_names(dim, len(edge_exprs))[:len(edge_exprs)])
    d = int(degree[0])
    biases = [expr.as_coeff_Add()[0] for expr in edge_exprs]
    shift = {e_k: e_k + d * b for e_k, b in zip(e, biases) if b != 0}
    if not shift:
        return list(edge_exprs), list(node_exprs)
    rounding = 1e-9 * d * max(abs(float(b)) for b in biases)   # what is left of an exact cancellation
    nodes = [expr.xreplace(shift) for expr in node_exprs]
    nodes = [n.xreplace({c: 0 for c in n.atoms(sp.Float) if abs(c) < rounding}) for n in nodes]
    return [expr - b for expr, b in zip(edge_exprs, biases)], nodes


def refit_composed(edge_exprs: Sequence[sp.Expr], node_exprs: Sequence[sp.Expr], data: DistillData,
                   sets: EvalSets, cfg: DistillConfig,
                   fronts: Sequence[Sequence[sp.Expr]] | None = None) -> tuple[ComposedFit, list[sp.Expr], list[sp.Expr]]:
    """The joint refit of the composed model and its judgement.

    Args:
        edge_exprs: [k] selected edge equations; node_exprs: [dim] node equations.
        data: the run's data (training graphs for the fit, law, dim, softening).
        sets: the evaluation sets (`eval_sets`).
        cfg: `seed` (which training graphs), `precision` (digits kept) and `front_pass`.
        fronts: [k + dim] each equation's Pareto front (edge equations first), offered again
            on the truth when `cfg.front_pass` (`frontpass.choose_from_fronts`).
    Returns:
        (record, edge equations, node equations), the equations refitted (their forms chosen
        again from the fronts, their distances swapped, `swap_distances`) when that helped.
    """
    start = time.perf_counter()
    k, dim = len(edge_exprs), data.dim
    x, a = refit_graphs(data, cfg.seed)
    n = x.shape[1]
    edge_exprs, node_exprs = biases_to_nodes(edge_exprs, node_exprs, n, data.law, dim)
    names = composed_names(dim, k)
    predict = composed_predictor(x, data.law, dim, data.softening, k)
    exprs, before, after = refit_jointly(list(edge_exprs) + list(node_exprs), names, predict, a, cfg.precision)
    exprs, after, swaps = swap_distances(exprs, k, names, predict, a, cfg.precision, after)
    chosen = ()
    if fronts is not None and cfg.front_pass:
        exprs, after, chosen = _front_pass(exprs, after, fronts, k, names, predict, x, a, data, cfg)
        if chosen:
            exprs, after, more = swap_distances(exprs, k, names, predict, a, cfg.precision, after)
            swaps += more
    edge_out, node_out = exprs[:k], exprs[k:]
    sym = symbolic_network(edge_out, node_out, dim, data.softening)
    test, test_std, ood = sets.maes(lambda xs: forward(sym, xs, data.law))
    record = ComposedFit(edge=tuple(map(str, edge_out)), node=tuple(map(str, node_out)), softening=data.softening,
                         refitted=after < before, n_graphs=len(x), train_before=before, train_after=after,
                         test=test, test_std=test_std, ood=ood, seconds=time.perf_counter() - start,
                         distance_swaps=swaps, front_choices=chosen)
    return record, edge_out, node_out


def _front_pass(exprs: list[sp.Expr], mae: float, fronts: Sequence[Sequence[sp.Expr]], k: int,
                names: Sequence[Sequence[str]], predict, x: np.ndarray, a: np.ndarray, data: DistillData,
                cfg: DistillConfig) -> tuple[list[sp.Expr], float, tuple[str, ...]]:
    """`frontpass.choose_from_fronts` over the jointly refitted equations exprs (k edge, then
    node, over `names`; their MAE on x, a is mae), each option screened by a short joint fit on
    the first SCREEN_GRAPHS of the training graphs x, a; a chosen model is refitted on all of
    them by `predict` (`composed_predictor` of x). The floor of the pass: 10^(1 - precision)
    times the median Σ|a| of a node (the MAE's units), what constants of `precision` digits
    leave. Returns (equations, their MAE on x, a, the changes kept)."""
    dim = data.dim
    screen, current = screening(x, a, data, k, cfg.precision)
    labels = [f"edge {i + 1}" for i in range(k)] + [f"node {axis}" for axis in "xyz"[:dim]]
    messages = symbols_for([f"e{i + 1}" for i in range(k)])
    fronts = list(fronts[:k]) + [superposing(e, front, messages) for e, front in zip(exprs[k:], fronts[k:])]
    chosen_exprs, _, chosen = choose_from_fronts(exprs, fronts, screen, current(exprs), labels,
                                                 precision_floor(a[:SCREEN_GRAPHS], cfg.precision))
    if not chosen:
        return exprs, mae, chosen
    edge_exprs, node_exprs = biases_to_nodes(chosen_exprs[:k], chosen_exprs[k:], x.shape[1], data.law, dim)
    exprs, _, after = refit_jointly(list(edge_exprs) + list(node_exprs), names, predict, a, cfg.precision)
    return exprs, after, chosen


def composed_names(dim: int, k: int) -> list[list[str]]:
    """Input columns of the composed model's k edge equations, then its dim node equations."""
    return [edge_input_names(dim)] * k + [node_input_names(dim, k)] * dim


def precision_floor(a: np.ndarray, digits: int) -> float:
    """10^(1 - digits) times the median Σ|a| of a node of accelerations a [G, n, dim] (the MAE's
    units): what constants of `digits` significant digits leave of a composed model's MAE."""
    return 10.0 ** (1 - digits) * float(np.median(np.sum(np.abs(a), axis=-1)))


def screening(x: np.ndarray, a: np.ndarray, data: DistillData, k: int, digits: int):
    """The short joint fit that screens a composed model's options on the first SCREEN_GRAPHS of
    the training graphs x, a: (screen: equations -> (them refitted in at most
    SCREEN_EVALUATIONS evaluations, their MAE), mae: equations -> their MAE as they are)."""
    x_small, a_small = x[:SCREEN_GRAPHS], a[:SCREEN_GRAPHS]
    names = composed_names(data.dim, k)
    small = composed_predictor(x_small, data.law, data.dim, data.softening, k)

    def screen(trial: list[sp.Expr]) -> tuple[list[sp.Expr], float]:
        fitted, _, after = refit_jointly(trial, names, small, a_small, digits, SCREEN_EVALUATIONS)
        return fitted, after
    return screen, lambda exprs: _mae_of(exprs, names, small, a_small)


def superposing(current: sp.Expr, options: Sequence[sp.Expr], messages: Sequence[sp.Symbol]) -> list[sp.Expr]:
    """The node options the front pass may offer in place of `current`: when current is linear
    in the summed messages (forces superpose: a_i reads Σ_j of the pair terms), only options
    linear in them too; else all. Without it, an edge equation still off on the truth was
    answered by a node equation in e1² that fits the training graphs better and is 450×
    worse on graphs with more particles (L1 r2 2D seed 0, session 15)."""
    if not linear_in(current, messages):
        return list(options)
    return [o for o in options if linear_in(o, messages)]


def compare(net: Network, sym: Network, data: DistillData, sets: EvalSets, out: Path) -> MAEComparison:
    """MAE of network and symbolic model on the test graphs (their predictions saved to out)
    and on the OOD sets of `sets`."""
    predictions = Predictions(true=sets.test_a, network=forward(net, sets.test_x, data.law),
                              symbolic=forward(sym, sets.test_x, data.law))
    schema.save_predictions(out, predictions)
    net_mean, net_std = mae_stats(predictions.network, sets.test_a)
    sym_mean, sym_std = mae_stats(predictions.symbolic, sets.test_a)
    ood = {name: OODError(network=mae_stats(forward(net, s.x, data.law), s.a)[0],
                          symbolic=mae_stats(forward(sym, s.x, data.law), s.a)[0], n=s.n, position_spread=s.spread)
           for name, s in sets.ood.items()}
    return MAEComparison(network=net_mean, symbolic=sym_mean, network_std=net_std, symbolic_std=sym_std,
                         n_graphs=int(len(sets.test_x)), ood=ood)
