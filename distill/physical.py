"""The discovered law in physical form: a radial pair force f(r', ...) and what is left over.

In:  the composed model's edge equations [k] (over `messages.edge_input_names`) and node
     equations [dim] (over `symbolic.node_input_names`), as `compose.refit_composed` leaves
     them, a `pipeline.DistillData` and the run's `compose.EvalSets`.
Out: `physical_law` -> `schema.PhysicalLaw`:
         a_i = (1/m_i) Σ_j f(r'_ij, q_i, q_j, m_i, m_j) r̂_ij  +  receiver part,
     f's constants (and the receiver part's) refitted on the true accelerations with one f
     for every axis, compared term by term with the law's `force_expr`, as text and LaTeX;
     `discovered_law` -> the `nbody.laws.Law` a simulator runs (its force text through the
     same whitelist parser as `run.py simulate --force`).

How: the node equations must be linear in the summed messages e_k, a_j = Σ_k c_jk e_k + d_j
(c, d over m1, q1, v1), so each pair adds P_j = Σ_k c_jk edge_k to the receiver's a_j.
With r and rs held independent, h_j = ∂P_j/∂d_j (d_j = dx, dy, dz) is the radial part when
it depends on r, rs and the particle constants only and agrees across axes, and then
f = m1·r·h (rs -> r', r -> r' - eps). What P_j - h_j d_j leaves that depends on neither the
pair's geometry nor the sender is a term per neighbour and joins d_j in the receiver part
(times n_i, the receiver's number of neighbours: the network's in-degree baked into a bias);
the rest is the non-radial remainder, measured on training edges and left out of f. The
receiver part is kept only when it at least halves the law's training MAE: on graphs of one
size a bias per neighbour and a bias per receiver cannot be told apart, and the physics is
what the data can tell.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import sympy as sp

from nbody import state
from nbody.expr import M1, M2, Q1, Q2, R, SYMBOLS
from nbody.graph import edges, scatter_sum
from nbody.laws import Law, register_law
from plumbing.errors import InputError

from .candidate import complexity, lambdify, linear_in, round_floats, symbols_for
from .compose import EvalSets, refit_graphs, refit_jointly
from .config import DistillConfig
from .data import DistillData
from .fitting import fit_target
from .messages import edge_input_names, edge_inputs
from .schema import ConstantMatch, PhysicalLaw
from .simplify import prune
from .symbolic import forward, node_input_names, symbolic_network

RADIAL_TOL = 1e-2      # largest relative disagreement of h across axes, and non-radial share, of a radial law
RECEIVER_GAIN = 0.5    # the receiver part is kept when it at least halves the law's training MAE
MATCH_TOL = 1e-2       # a discovered constant within 1 % of the law's matches it
NUMERIC_RADIAL_TOL = 0.25  # the composed model's pair terms, read numerically, may be this far from radial;
                           # the radial law read off them must then fit the truth at least as well as the model
SIMPLE = 7             # an f this complex or less is read as it is (-2*r' + 2 is 5)
FORM_TOL = 1e-3        # an SR form replaces f when its RMS deviation from f is below this share of f's RMS
NEGLIGIBLE = 1e-4      # a term of f whose RMS on the training pairs is below this share of f's is dropped;
                       # a receiver part is not tried when f alone is within this share of the mean |a|
R_PRIME = sp.Symbol("r'")
FORCE_NAMES = [s.name for s in SYMBOLS]      # r q1 q2 m1 m2, r = r' (the law's own symbols)


def receiver_names(dim: int) -> list[str]:
    """Columns of the receiver part: m1, q1, vx1, vy1, (vz1), n_i (interacting neighbours)."""
    return ["m1", "q1"] + [f"v{a}1" for a in "xyz"[:dim]] + ["n_i"]


def physical_law(edge_exprs: Sequence[sp.Expr], node_exprs: Sequence[sp.Expr], data: DistillData,
                 sets: EvalSets, cfg: DistillConfig) -> PhysicalLaw:
    """The composed model's law in physical form, refitted on the truth and compared with it.

    Args:
        edge_exprs, node_exprs: the composed model's equations.
        data: law, dim, softening and the training graphs of the refit (`compose.refit_graphs`).
        sets: test graphs and OOD sets of the judgement.
        cfg: `seed` and `precision` (significant digits kept).
    Returns:
        the record; radial False (with the reason) when the pair term is not a radial force.
    """
    dim, eps = data.dim, data.softening
    x, a = refit_graphs(data, cfg.seed)
    split = _split(edge_exprs, node_exprs, dim)
    reason = split if isinstance(split, str) else None
    if reason is None:
        h, per_pair, nonradial, own = split
        reason, share = _radial_check(h, nonradial, x, data)
    if reason is None:
        E = dict(zip(edge_input_names(dim), symbols_for(edge_input_names(dim))))
        m1, n_i = E["m1"], symbols_for(["n_i"])[0]
        force = sp.expand(m1 * E["r"] * h[0]).xreplace({E["r"]: R - sp.Float(eps), E["rs"]: R})
        force = _simplest_form(force, x, data, cfg)
        receiver = [sp.expand(d + n_i * p) for d, p in zip(own, per_pair)]
    else:
        read = _pair_force_values(edge_exprs, node_exprs, x, data, cfg)
        if isinstance(read, str):
            return _not_radial(f"{reason}; {read}")
        X, values, share = read
        force, receiver = _values_form(X, values, cfg), []
    fitted, names, train = _refit(force, None, x, a, data, cfg.precision)
    fitted[0] = _chop(fitted[0], x, data)
    fitted[0], train = _fewer_terms(fitted[0], train, x, a, data, cfg)
    fitted[0] = on_support(fitted[0], x, data.dim)
    if any(r != 0 for r in receiver) and train > NEGLIGIBLE * float(np.mean(np.abs(a))):
        with_receiver = _refit(force, receiver, x, a, data, cfg.precision)
        if with_receiver[2] < RECEIVER_GAIN * train:
            fitted, names, train = with_receiver
    if reason is not None:
        composed = symbolic_network(edge_exprs, node_exprs, dim, eps)
        model_mae = float(np.mean(np.abs(forward(composed, x, data.law) - a)))
        if not train <= model_mae:
            return _not_radial(f"{reason}; the radial law read off its pair terms fits the truth worse than the "
                               f"composed model (training MAE {train:.3g} against {model_mae:.3g})")
    has_receiver = len(fitted) > 1
    force, receiver = fitted[0], (fitted[1:] if has_receiver else None)
    test, _, ood = sets.maes(lambda xs: law_predictor(xs, data.law, dim, eps, has_receiver)(_evaluators(fitted, names)))
    constants = compare_constants(force, data.law.force_expr)
    matched = [c.rel_error for c in constants if c.rel_error is not None]
    text, latex = _written(force, receiver, cfg.precision)
    return PhysicalLaw(radial=True, reason=None, force=str(force), text=text, latex=latex,
                       receiver=None if receiver is None else tuple(map(str, receiver)), nonradial_share=share,
                       constants=constants, max_rel_error=max(matched) if matched else None,
                       matches_truth=all(c.rel_error is not None and c.rel_error <= MATCH_TOL for c in constants),
                       train=train, test=test, ood=ood)


def _refit(force: sp.Expr, receiver: list[sp.Expr] | None, x: np.ndarray, a: np.ndarray, data: DistillData,
           digits: int) -> tuple[list[sp.Expr], list[list[str]], float]:
    """(f and the receiver part's axes refitted on (x, a), their columns, training MAE)."""
    exprs = [force] + (receiver or [])
    names = [FORCE_NAMES] + [receiver_names(data.dim)] * len(receiver or [])
    fitted, _, mae = refit_jointly(exprs, names, law_predictor(x, data.law, data.dim, data.softening,
                                                               receiver is not None), a, digits)
    return fitted, names, mae


def _not_radial(reason: str) -> PhysicalLaw:
    return PhysicalLaw(radial=False, reason=reason, force=None, text=f"no radial force law: {reason}", latex="",
                       receiver=None, nonradial_share=None, constants=(), max_rel_error=None, matches_truth=False,
                       train=None, test=None, ood={})


def _split(edge_exprs, node_exprs, dim: int):
    """(h [dim], per-pair receiver terms [dim], non-radial remainder [dim], receiver terms d
    [dim]) of the composed model, or the reason (text) why its pair term is not radial."""
    k = len(edge_exprs)
    e = symbols_for(node_input_names(dim, k))[:k]
    E = dict(zip(edge_input_names(dim), symbols_for(edge_input_names(dim))))
    axes = [E[f"d{c}"] for c in "xyz"[:dim]]
    geometry = set(axes) | {E["r"], E["rs"], E["m2"], E["q2"]}
    radial_inputs = {E["r"], E["rs"], E["m1"], E["m2"], E["q1"], E["q2"]}
    h, per_pair, nonradial, own = [], [], [], []
    for j, node in enumerate(node_exprs):
        if not linear_in(node, e):
            return f"the node equation of a_{'xyz'[j]} is not linear in the summed messages"
        coeffs = [sp.diff(node, ek) for ek in e]
        pair = sp.expand(sum((c * edge for c, edge in zip(coeffs, edge_exprs)), sp.Integer(0)))
        hj = sp.diff(pair, axes[j])
        if not hj.free_symbols <= radial_inputs:
            return (f"the pair term of a_{'xyz'[j]} is not radial: its factor of d{'xyz'[j]} depends on "
                    f"{', '.join(sorted(s.name for s in hj.free_symbols - radial_inputs))}")
        rest = sp.Add.make_args(sp.expand(pair - hj * axes[j]))
        per_pair.append(sp.Add(*(t for t in rest if not t.free_symbols & geometry)))
        nonradial.append(sp.Add(*(t for t in rest if t.free_symbols & geometry)))
        h.append(hj)
        own.append(node.xreplace({ek: 0 for ek in e}))
    return h, per_pair, nonradial, own


def _radial_check(h, nonradial, x: np.ndarray, data: DistillData) -> tuple[str | None, float]:
    """(reason or None, non-radial share): h must agree across axes and the non-radial
    remainder stay below RADIAL_TOL of the radial part, on the training edges of x."""
    dim = data.dim
    send, recv = edges(x.shape[1], data.law.topology)
    xr, xs = x[:, recv].reshape(-1, x.shape[2]), x[:, send].reshape(-1, x.shape[2])
    names = edge_input_names(dim) + [f"v{a}1" for a in "xyz"[:dim]]
    X = np.concatenate([edge_inputs(xr, xs, dim, data.softening), state.vel(xr, dim)], axis=-1)
    hv = [lambdify(hj, names)(X) for hj in h]
    radial = hv[0][:, None] * X[:, :dim]
    scale = float(np.sqrt(np.mean(radial ** 2)))
    if not np.isfinite(scale) or scale == 0:
        return "the pair term vanishes or is not finite on the training edges", float("nan")
    spread = max((float(np.sqrt(np.mean((v - hv[0]) ** 2)) / np.sqrt(np.mean(hv[0] ** 2))) for v in hv[1:]),
                 default=0.0)
    if not spread <= RADIAL_TOL:
        return f"the pair term's radial factor differs across axes by {spread:.3g} (RMS, relative)", float("nan")
    rest = np.stack([lambdify(t, names)(X) for t in nonradial], axis=-1)
    share = float(np.sqrt(np.mean(np.sum(rest ** 2, axis=-1)))) / scale
    if not share <= RADIAL_TOL:
        return f"the pair term has a non-radial part {share:.3g} the size of its radial part", share
    return None, share


def _simplest_form(force: sp.Expr, x: np.ndarray, data: DistillData, cfg: DistillConfig) -> sp.Expr:
    """f as it comes out of the composed model, or, when that is longer than SIMPLE, the form
    SR finds for f's own values on the pairs of x at r >= cfg.min_r (`_values_form`) when it
    is less complex and within FORM_TOL of f there. A network free to carry a receiver factor
    g(m1) leaves f as g(m1)·(...)/g'(m1) with g ≈ g' (not equal after the refit, so sympy
    cannot cancel them); f's values are noise-free, so SR on them finds the law's short form."""
    if complexity(force) <= SIMPLE:
        return force
    X = _force_columns(x, data.law, data.dim, data.softening)[0]
    X = X[X[:, 0] - data.softening >= cfg.min_r]
    y = lambdify(force, FORCE_NAMES)(X)
    if len(y) < 10 or not np.all(np.isfinite(y)):
        return force
    form = _values_form(X, y, cfg)
    scale = float(np.sqrt(np.mean(y ** 2)))
    error = float(np.sqrt(np.mean((lambdify(form, FORCE_NAMES)(X) - y) ** 2)))
    return form if complexity(form) < complexity(force) and error < FORM_TOL * scale else force


def _values_form(X: np.ndarray, y: np.ndarray, cfg: DistillConfig) -> sp.Expr:
    """The equation SR selects ("best") for values y of f on rows X over FORCE_NAMES, with a
    small budget (at most 50 generations, stopped after 10 without change, 2,000 rows)."""
    budget = dataclasses.replace(cfg, selection="best", stall_generations=10, search_rows=2000,
                                 generations=min(cfg.generations, 50))
    return fit_target(X, y, FORCE_NAMES, budget, label="law f").final.expr


def _pair_force_values(edge_exprs, node_exprs, x: np.ndarray, data: DistillData, cfg: DistillConfig):
    """(f's inputs [E, 5], f's values [E], non-radial share) of the composed model read
    numerically, or the reason (text) it has no radial pair force: each pair's contribution
    to its receiver's acceleration, P = node(x_i, ē_i) - node(x_i, ē_i - edge(i, j)) (exact for
    a node equation linear in ē), projected on r̂: f = m_i (P·r̂), on the pairs at r >= min_r.
    Used when the composed equations do not show a radial factor symbolically (their axes'
    forms differ by more than RADIAL_TOL), though their sum may still be a radial force."""
    dim, eps = data.dim, data.softening
    G, n, F = x.shape
    sym = symbolic_network(edge_exprs, node_exprs, dim, eps)
    send, recv = edges(n, data.law.topology)
    xr, xs = x[:, recv].reshape(-1, F), x[:, send].reshape(-1, F)
    messages = sym.edge(xr, xs)
    agg = scatter_sum(messages.reshape(G, len(recv), -1), recv, n)[:, recv].reshape(len(xr), -1)
    P = sym.node(xr, agg) - sym.node(xr, agg - messages)
    X, unit, _ = _force_columns(x, data.law, dim, eps)
    keep = (X[:, 0] - eps >= cfg.min_r) & np.all(np.isfinite(P), axis=1)
    if keep.sum() < 10:
        return "too few finite pair terms to read a force from"
    P, unit, X = P[keep], unit[keep], X[keep]
    along = np.sum(P * unit, axis=1)
    size = float(np.mean(along ** 2))
    if not size > 0:
        return "its pair terms have no radial part"
    share = float(np.sqrt(np.mean(np.sum((P - along[:, None] * unit) ** 2, axis=1)) / size))
    if not share <= NUMERIC_RADIAL_TOL:
        return f"its pair terms have a non-radial part {share:.3g} the size of their radial part"
    return X, state.mass(xr[keep], dim) * along, share


def _fewer_terms(force: sp.Expr, train: float, x: np.ndarray, a: np.ndarray, data: DistillData,
                 cfg: DistillConfig) -> tuple[sp.Expr, float]:
    """Occam's pass on the truth (`simplify.prune` over the expanded f, each candidate refitted
    on (x, a)): a term goes when f without it fits the true accelerations within
    (1 + cfg.simplify_tol) of the training MAE `train` (a product form (m1 - 6841)·(r' - 1)
    cannot refit its m1 away; expanded, the m1 terms go). Returns (f, its training MAE)."""
    if not cfg.simplify_tol > 0:
        return force, train
    def fit(candidate: sp.Expr) -> tuple[sp.Expr, float]:
        fitted, _, mae = _refit(candidate, None, x, a, data, cfg.precision)
        return fitted[0], mae
    expanded = sp.expand(force)
    pruned, loss = prune(expanded, train, fit, cfg.simplify_tol)
    return (pruned, loss) if pruned != expanded else (force, train)


def _chop(force: sp.Expr, x: np.ndarray, data: DistillData) -> sp.Expr:
    """f without the additive terms whose RMS on the pairs of x is below NEGLIGIBLE of f's
    (a refit's 1e-8·m1·r' beside -2·r'); unchanged when nothing is that small."""
    X = _force_columns(x, data.law, data.dim, data.softening)[0]
    terms = sp.Add.make_args(sp.expand(force))
    sizes = [float(np.sqrt(np.mean(lambdify(t, FORCE_NAMES)(X) ** 2))) for t in terms]
    scale = float(np.sqrt(np.mean(lambdify(force, FORCE_NAMES)(X) ** 2)))
    kept = [t for t, size in zip(terms, sizes) if not size < NEGLIGIBLE * scale]
    return sp.Add(*kept) if len(kept) < len(terms) and kept else force


def on_support(force: sp.Expr, x: np.ndarray, dim: int) -> sp.Expr:
    """f with every integer power q^k of a particle constant whose values in x (graphs [..., F])
    are all ±1 written q^(k mod 2): equal on the data, and the form a physicist writes (charges
    of ±1 make q2/q1 and q1·q2 one law, and only the second is symmetric in the pair)."""
    unit = [pair for pair, column in (((Q1, Q2), state.charge), ((M1, M2), state.mass))
            if np.all(np.abs(column(x, dim)) == 1)]
    if not unit:
        return force
    symbols = set(sum(unit, ()))
    return sp.expand(force).replace(lambda e: e.is_Pow and e.base in symbols and e.exp.is_Integer,
                                    lambda e: e.base ** (int(e.exp) % 2))


def _force_columns(x: np.ndarray, law: Law, dim: int, softening: float):
    """(f's inputs [E, 5] over FORCE_NAMES, unit vectors [E, dim], receivers [E]) of every
    directed edge of the graphs x [G, n, F], graph-major."""
    G, n, F = x.shape
    send, recv = edges(n, law.topology)
    xr, xs = x[:, recv].reshape(-1, F), x[:, send].reshape(-1, F)
    d = state.pos(xr, dim) - state.pos(xs, dim)
    r = np.sqrt(np.sum(d * d, axis=-1))
    X_force = np.stack([r + softening, state.charge(xr, dim), state.charge(xs, dim), state.mass(xr, dim),
                        state.mass(xs, dim)], axis=-1)
    unit = np.divide(d, r[:, None], out=np.zeros_like(d), where=r[:, None] > 0)
    return X_force, unit, recv


def _evaluators(exprs: Sequence[sp.Expr], names: Sequence[Sequence[str]]):
    return [lambdify(e, cols) for e, cols in zip(exprs, names)]


def law_predictor(x: np.ndarray, law: Law, dim: int, softening: float, receiver: bool):
    """predict(evaluators) -> [G, n, dim] of a_i = (1/m_i) Σ_j f r̂_ij (+ receiver part) on
    fixed states x [G, n, F]: evaluators[0] is f over (r', q1, q2, m1, m2), evaluators[1:]
    (when `receiver`) the receiver part's axes over `receiver_names(dim)`."""
    G, n, F = x.shape
    X_force, unit, recv = _force_columns(x, law, dim, softening)
    unit = unit.reshape(G, len(recv), dim)
    flat = x.reshape(G * n, F)
    mass = state.mass(flat, dim).reshape(G, n, 1)
    degree = np.tile(np.bincount(recv, minlength=n).astype(np.float64), G)
    X_own = np.concatenate([state.mass(flat, dim)[:, None], state.charge(flat, dim)[:, None], state.vel(flat, dim),
                            degree[:, None]], axis=-1)

    def predict(fns):
        f = fns[0](X_force).reshape(G, len(recv), 1)
        acc = scatter_sum(f * unit, recv, n) / mass
        if receiver:
            acc = acc + np.stack([fn(X_own) for fn in fns[1:]], axis=-1).reshape(G, n, dim)
        return acc
    return predict


def _terms(expr: sp.Expr) -> dict[sp.Expr, float]:
    """{monomial: coefficient} of the expanded expression."""
    out: dict[sp.Expr, float] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, monomial = term.as_coeff_Mul()
        out[monomial] = out.get(monomial, 0.0) + float(coeff)
    return out


def compare_constants(found: sp.Expr, true: sp.Expr) -> tuple[ConstantMatch, ...]:
    """Every term of the expanded true and discovered forces, matched by monomial: the
    law's terms first (found None: not discovered), then the discovered terms the law lacks."""
    got, want = _terms(found), _terms(true)
    rows = [ConstantMatch(term=_show(m), true=c, found=got.get(m),
                          rel_error=None if m not in got else abs(got[m] - c) / abs(c) if c else None)
            for m, c in want.items()]
    return tuple(rows + [ConstantMatch(term=_show(m), true=None, found=c, rel_error=None)
                         for m, c in got.items() if m not in want])


def _show(expr: sp.Expr) -> str:
    return str(expr.xreplace({R: R_PRIME}))


def display_form(force: sp.Expr, digits: int) -> sp.Expr:
    """f for people: a·r' + b as a·(r' + b/a), constants to `digits` digits, r' for r; a
    constant factor (other than ±1) of a product is multiplied into the product's sum
    (0.090394·(22.125/r' - 22.125)/r'² is (2/r' - 2)/r'²)."""
    coefficient, rest = force.as_coeff_Mul()
    sums = [factor for factor in rest.args if factor.is_Add] if rest.is_Mul else []
    if abs(coefficient) != 1 and sums:
        force = rest.xreplace({sums[0]: sp.expand(coefficient * sums[0])})
    if force.is_polynomial(R):
        poly = sp.Poly(force, R)
        if poly.degree() == 1 and all(c.is_number for c in poly.all_coeffs()):
            slope, offset = (float(c) for c in poly.all_coeffs())
            if slope != 0 and offset != 0:
                return sp.Mul(round_floats(sp.Float(slope), digits),
                              R_PRIME + round_floats(sp.Float(offset / slope), digits), evaluate=False)
    return round_floats(force, digits).xreplace({R: R_PRIME})


def _written(force: sp.Expr, receiver: Sequence[sp.Expr] | None, digits: int) -> tuple[str, str]:
    """The law as (text, LaTeX)."""
    shown = display_form(force, digits)
    text = f"a_i = (1/m_i) Σ_j f(r'_ij) r̂_ij,  f = {shown}"
    latex = rf"a_i = \frac{{1}}{{m_i}}\sum_j f\,\hat{{r}}_{{ij}},\quad f = {sp.latex(shown)}"
    if receiver is not None:
        parts = [round_floats(p, digits) for p in receiver]
        text += "  +  receiver part (" + ", ".join(map(str, parts)) + ")"
        latex += r" + \left(" + ", ".join(sp.latex(p) for p in parts) + r"\right)"
    return text, latex


def discovered_law(record: PhysicalLaw, like: Law) -> Law:
    """The discovered radial law as a registered `Law` named "discovered_<law>", with the
    simulation settings (dt, charges, topology, init, default_n) of the law it was found in;
    its force text goes through `nbody.expr`'s whitelist parser. The receiver part is not
    simulated (no damping, no gravity).

    Raises:
        InputError: no radial law was found, or the force is not a valid pair law (e.g. not
        symmetric under swapping the particles).
    """
    if not record.radial or record.force is None:
        raise InputError(f"no radial force law was discovered ({record.reason}); nothing to simulate")
    name = f"discovered_{like.name}"[:64]
    law = Law(name=name, force=record.force, dt=like.dt, charges=like.charges, topology=like.topology,
              init=like.init, default_n=like.default_n)
    return register_law(law, overwrite=True)
