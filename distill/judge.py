"""Automatic success judgement of distilled equations against the known physics.

In:  a selected equation, FRESH inputs (rows not used in its fit; their columns named as in
     `messages.edge_input_names` / `symbolic.node_input_names`, so the receiver's q1 and m1
     are read from them), and the truth:
     edge: the true pairwise force F [N, dim] on those edges;
     node: the aggregated significant message components [N, k] and the edge target(s) the
     node model has to undo;
     optionally the values the equation was fitted to (the network's message component or
     node output) on the same rows.
     The thresholds come as one `JudgeConfig` (`DistillConfig.judge`).
Out: an `EdgeJudgement` / `NodeJudgement` (`distill.schema`; the "judgement" of distill.json).

Targets (the receiver-factor family). A message may carry the pair force scaled by any
factor of the receiver's own properties (q1, m1), because the node model, which sees q1 and
m1, can multiply it back; the composed model is then still Newton's law. Tried in order:
    force F;  acceleration F/m1;  field F/q1 (charge: the sender's field; the node multiplies
    by q1/m1);  field/m1 F/(q1 m1);  only when every q1 is ±1: force+field and
    force+field/m1, affine in F and F/q1 together (a bottleneck component may carry the field
    along one axis and the force along another: for charges ±1 any factor of q1 is
    α + β/q1, so this is every q1 factor, and the node, which knows q1, can still undo it;
    for continuous q1 the F/q1 columns would only add freedom);  then, when the equation has one, each of these times
    its own receiver factor g(q1, m1) ("force·g", ...): the factor is read off the equation
    (expr = g(q1, m1)·h(rest) + b after factoring numerator and denominator), so it is
    identified exactly, e.g. 1/(m1 + 0.7). A factor mixing r with m1, like the
    reproduction's failed 1/(r + 0.169 m1), does not separate and is never absorbed.
Receiver offsets. For the same reason a message may carry an additive term b(q1, m1) of the
receiver's own properties: every receiver has the same in-degree, so the node model, which sees
q1 and m1, removes (n - 1)·b like a constant bias. An edge equation's additive terms in q1 and
m1 alone (`receiver_offset`) are read off it and left out of the judgement, as the constant b
of the affine map is; and a node equation, linear in ē, may add any h(q1, m1), its value at
ē = 0 (velocities there are not an offset and stay in). Nothing else is removed: a term in r,
in the sender's properties or in a velocity still has to be affine in the target.
Criteria (docs/facts.md §3.4; the reproduction's Table 5 criterion made numeric):
    edge: the output is an affine function a·(s F) + b of one target with plain
          least-squares R² >= success_r2 on the fresh rows, and complexity <= max_complexity;
          the first target of the family that passes is reported;
    node: for the target s the edges learned, the output is affine in (ē/(s m1), 1/(s m1)),
          i.e. (a·ē + b)/(s m1) + c: it undoes s and divides by the mass (for "force" that
          is (a·ē + b)/m1 + c; for "acceleration" a·ē + b); and the equation is linear in ē
          symbolically (every second derivative in e1..ek is 0): on the fit rows a spurious
          ē³ term can hide under R² 0.998, and it blows up on the close pairs of 1/r² laws;
    both: the median relative deviation |out - (a·V + b)| / (|a| |V|) over the rows must be
          <= max_rel_error. R² alone is dominated by the few close pairs of a 1/r² law: the
          reproduction's "almost correct" 8.43 m2 (0.26 + (dx - dy + 3.52 dz)/r)/r² reaches
          R² 0.99 against F/m1 but is 10-13 % off on a typical edge (correct forms: < 1 %);
    both: when the fitted values are given, the equation's coefficient vector a must point
          the same way as the fitted values' own coefficients on the same basis (cosine >=
          min_cosine). Otherwise "0.7·Fx" would pass for a message that is 0.7·Fx - 0.3·Fy:
          the right physics, but not the network's component. Both directions are fitted
          with each row weighted by 1/(|V| + median |V|), so that the typical row counts as
          much as the strongest: a plain least-squares direction is the few strongest
          pairs', where a network saturates (r2 3D, relative loss, seed 2: the component
          is the y axis to cosine 0.9999 on the weaker half of the pairs and 0.917 by plain
          least squares over all of them).
A near miss (wrong power of r, a missing sender charge or mass, an extra non-directional
term, a factor mixing r with m1) leaves a residual that is not affine in any target and
fails the R² test.

Energies (`judge_energy`, the Hamiltonian model, paper §4.2): an energy equation E passes
when E = a·V + f(constants) with a > 0, V the truth (the pair potential U(r') or the kinetic
energy p²/(2m)) and f any function of the particles' constants (q1, q2, m1, m2 or q, m:
arbitrary offsets of an energy). The fresh rows come in groups that share their constants
and differ in r (or p); within each group E and V are centred, so any f drops out, and one
slope a must explain every group: R² = 1 - Σ(E_c - a V_c)² / Σ E_c² >= success_r2, and the
median |E_c - a V_c| / (a · rms of V_c in its group) <= max_rel_error. A wrong power of r
fails the R² within a group; a wrong mass or charge dependence needs a different slope per
group and fails it across groups.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy as sp

from .candidate import lambdify, linear_in, parse
from .config import JudgeConfig
from .schema import EdgeJudgement, Judgement, NodeJudgement

RECEIVER = ("q1", "m1")


@dataclass(frozen=True)
class Target:
    """One member of the receiver-factor family: the span of the pair force times each
    s = (1/q1 if charge) · (1/m1 if mass) · g(q1, m1), charge in `charges` (g = `factor`, or 1).

    Attributes:
        name: label written to distill.json ("force", "acceleration", "field", "field·g", ...).
        charges: for each part of the span, whether it divides by the receiver charge q1.
        mass: divide by the receiver mass m1.
        factor: g as sympy text over q1 and m1, or None.
    """

    name: str
    charges: tuple[bool, ...] = (False,)
    mass: bool = False
    factor: str | None = None

    def scales(self, q1: np.ndarray, m1: np.ndarray) -> list[np.ndarray]:
        """s(q1, m1) [N] of each part."""
        s = np.ones(len(m1))
        if self.mass:
            s = s / m1
        if self.factor is not None:
            s = s * lambdify(parse(self.factor, RECEIVER), RECEIVER)(np.column_stack([q1, m1]))
        return [s / q1 if charge else s for charge in self.charges]

    def basis(self, force: np.ndarray, q1: np.ndarray, m1: np.ndarray) -> np.ndarray:
        """Edge basis [N, dim · parts]: the force times each part's s."""
        return np.hstack([force * s[:, None] for s in self.scales(q1, m1)])


FIXED_TARGETS = (Target("force"), Target("acceleration", mass=True), Target("field", (True,)),
                 Target("field/m1", (True,), mass=True), Target("force+field", (False, True)),
                 Target("force+field/m1", (False, True), mass=True))


def receiver_factor(expr: sp.Expr) -> sp.Expr | None:
    """g(q1, m1) with expr = g·h + b, h free of q1 and m1 up to factors that mix them with
    other inputs; numeric coefficient dropped. None when there is no such non-constant g."""
    receiver = {s for s in expr.free_symbols if s.name in RECEIVER}
    if not receiver:
        return None
    others = expr.free_symbols - receiver
    rest = expr.as_independent(*expr.free_symbols, as_Add=True)[1]
    num, den = (sp.factor(part) for part in sp.together(rest).as_numer_denom())
    g = num.as_independent(*others, as_Add=False)[0] / den.as_independent(*others, as_Add=False)[0]
    g = g.as_coeff_Mul()[1]
    return g if g.free_symbols else None


def receiver_offset(expr: sp.Expr) -> sp.Expr:
    """expr's additive terms in nothing but the receiver's q1 and m1 (0 when none, or when expr
    has no other input: then it cannot be a pair law at all); constants stay in expr."""
    others = {s for s in expr.free_symbols if s.name not in RECEIVER}
    if not others:
        return sp.Integer(0)
    offset = expr.as_independent(*others, as_Add=True)[0]
    return offset - offset.as_coeff_Add()[0]


def _values(expr: sp.Expr, names: Sequence[str], X: np.ndarray) -> np.ndarray:
    """expr on the rows of X [N]; a constant or symbol-free expression broadcast."""
    return np.broadcast_to(np.asarray(lambdify(expr, names)(X), dtype=float), (len(X),)).copy()


def affine_r2(y: np.ndarray, basis: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares R² of y ≈ basis @ a + b.

    Args:
        y: [N] values; basis: [N, k].
    Returns:
        (R² (0 when y is constant or not finite), coefficients [k + 1] = (a, b)).
    """
    design = np.hstack([basis, np.ones((len(y), 1))])
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(design))):
        return 0.0, np.full(design.shape[1], np.nan)
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0:
        return 0.0, coef
    return float(1.0 - np.sum((design @ coef - y) ** 2) / total), coef


def _direction(y: np.ndarray, basis: np.ndarray, n_dir: int) -> np.ndarray:
    """The coefficients [n_dir] on the leading n_dir basis columns (the vector part) of
    y ≈ basis @ a + b, fitted by least squares with row weights 1/(|V| + median |V|), |V| the
    norm of a row's vector part; nan when something is not finite."""
    size = np.linalg.norm(basis[:, :n_dir], axis=1)
    design = np.hstack([basis, np.ones((len(y), 1))])
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(design))):
        return np.full(n_dir, np.nan)
    w = 1.0 / (size + max(float(np.median(size)), 1e-300))
    return np.linalg.lstsq(design * w[:, None], y * w, rcond=None)[0][:n_dir]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 and np.isfinite(norm) else 0.0


def _assess(out: np.ndarray, basis: np.ndarray, fitted: np.ndarray | None, n_dir: int, complexity: int,
            cfg: JudgeConfig) -> dict:
    """R², coefficients, relative error, direction agreement and verdict of out ≈ basis @ a + b.

    n_dir: how many leading basis columns form the direction (the vector part a).
    """
    r2, coef = affine_r2(out, basis)
    design = np.hstack([basis, np.ones((len(out), 1))])
    scale = np.linalg.norm(coef[:n_dir]) * np.linalg.norm(basis[:, :n_dir], axis=1)
    with np.errstate(all="ignore"):
        rel = float(np.median(np.abs(out - design @ coef) / scale))
    rel = rel if np.isfinite(rel) else float("inf")
    cosine = None
    if fitted is not None:
        cosine = _cosine(_direction(out, basis, n_dir), _direction(fitted, basis, n_dir))
    success = (r2 >= cfg.success_r2 and complexity <= cfg.max_complexity and rel <= cfg.max_rel_error
               and (cosine is None or cosine >= cfg.min_cosine))
    return {"success": bool(success), "r2": r2, "affine": tuple(float(c) for c in coef), "rel_error": rel,
            "cosine": cosine, "complexity_ok": complexity <= cfg.max_complexity}


def _judge(out: np.ndarray, bases: dict[Target, tuple[np.ndarray, int]], fitted: np.ndarray | None,
           complexity: int, cfg: JudgeConfig) -> dict:
    """The first target (in the order of `bases`: target -> (basis, n_dir)) whose basis
    passes, else the best-R² one.

    Returns:
        the fields of `schema.Judgement`: the `_assess` dict of that target plus "target"
        (its name when successful, else None), "best" (its name either way),
        "receiver_factor" (its g, or None) and "r2_targets" {name: R²}.
    """
    assessed = {t: _assess(out, basis, fitted, n_dir, complexity, cfg) for t, (basis, n_dir) in bases.items()}
    passed = [t for t, a in assessed.items() if a["success"]]
    chosen = passed[0] if passed else max(assessed, key=lambda t: assessed[t]["r2"])
    j = assessed[chosen]
    return {**j, "target": chosen.name if j["success"] else None, "best": chosen.name,
            "receiver_factor": chosen.factor, "r2_targets": {t.name: a["r2"] for t, a in assessed.items()}}


def _column(X: np.ndarray, names: Sequence[str], name: str) -> np.ndarray:
    return X[:, list(names).index(name)]


def judge_edge(expr: sp.Expr, names: Sequence[str], X: np.ndarray, force: np.ndarray, complexity: int,
               cfg: JudgeConfig, fitted: np.ndarray | None = None) -> EdgeJudgement:
    """Is an edge equation a reconstruction of the pair force up to a receiver factor?

    Args:
        expr: equation over `names` (edge_input_names: the receiver's m1 and q1 are read from X).
        X: fresh edge inputs [N, d]; force: true pair force on the receiver [N, dim].
        complexity: the equation's complexity.
        cfg: the thresholds.
        fitted: the message component the equation was fitted to, on the same rows, or None.
    Returns:
        the verdict: target = the first passing member of the family or None, best = that
        member, or the best-R² one when none passes; r2_force / r2_accel = R² against the
        "force" / "acceleration" members.
    """
    offset = _values(receiver_offset(expr), names, X)
    out = lambdify(expr, names)(X) - offset
    fitted = None if fitted is None else fitted - offset
    q1, m1 = _column(X, names, "q1"), _column(X, names, "m1")
    g = receiver_factor(expr - receiver_offset(expr))
    signs = bool(np.all(np.abs(q1) == 1))
    family = [t for t in FIXED_TARGETS if len(t.charges) == 1 or signs]
    targets = family + ([] if g is None else [Target(f"{t.name}·g", t.charges, t.mass, str(g)) for t in family])
    bases = {t: (basis, basis.shape[1]) for t in targets for basis in [t.basis(force, q1, m1)]}
    j = _judge(out, bases, fitted, complexity, cfg)
    return EdgeJudgement(**j, r2_force=j["r2_targets"]["force"], r2_accel=j["r2_targets"]["acceleration"])


def edge_target(judgement: EdgeJudgement) -> Target:
    """The `Target` an edge judgement matched (its best one when it failed)."""
    base = next(t for t in FIXED_TARGETS if judgement.best in (t.name, f"{t.name}·g"))
    return Target(judgement.best, base.charges, base.mass, judgement.receiver_factor)


def judge_node(expr: sp.Expr, names: Sequence[str], X: np.ndarray, agg: np.ndarray, complexity: int,
               cfg: JudgeConfig, fitted: np.ndarray | None = None,
               targets: Sequence[Target] = FIXED_TARGETS[:2]) -> NodeJudgement:
    """Is a node equation Newton's second law on the aggregated messages?

    Args:
        expr: equation over `names` (node_input_names: the receiver's m1 and q1 are read from X).
        X: fresh node inputs [N, d]; agg: the significant aggregated components [N, k].
        complexity: the equation's complexity.
        cfg: the thresholds.
        fitted: the node target the equation was fitted to, on the same rows, or None.
        targets: what the edges may have learned (`edge_target` of their judgements); the
            node must undo one of them. Default: force or acceleration.
    Returns:
        the verdict: target = the edge target it undoes or None; affine = coefficients of
        (ē/(s m1), 1/(s m1), 1); linear_in_messages = no second derivative in e1..ek
        (required for success).
    """
    messages = [s for s in expr.free_symbols if s.name in names[:agg.shape[1]]]
    linear = linear_in(expr, messages)
    at_zero = expr.subs({a: 0 for a in messages}) if linear else sp.Integer(0)
    receiver_only = at_zero.free_symbols and {s.name for s in at_zero.free_symbols} <= set(RECEIVER)
    offset = _values(at_zero - at_zero.as_coeff_Add()[0], names, X) if receiver_only else np.zeros(len(X))
    out = lambdify(expr, names)(X) - offset
    fitted = None if fitted is None else fitted - offset
    q1, m1 = _column(X, names, "q1"), _column(X, names, "m1")
    undo = {t: [(1.0 / (s * m1))[:, None] for s in t.scales(q1, m1)] for t in targets}
    bases = {t: (np.hstack([agg * u for u in us] + us), agg.shape[1] * len(us)) for t, us in undo.items()}
    j = _judge(out, bases, fitted, complexity, cfg)
    success = j["success"] and linear
    return NodeJudgement(**{**j, "success": success, "target": j["target"] if success else None},
                         linear_in_messages=linear)


def grouped_slope_fit(out: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> tuple[float, float, float]:
    """One slope a for out ≈ a·truth + f(group): both centred within each group.

    Args:
        out, truth: [N] values; groups: [N] group label of each row.
    Returns:
        (a, R² = 1 - Σ(out_c - a·truth_c)² / Σ out_c² (0 when out is constant within groups
        or not finite), median |out_c - a·truth_c| / (|a| · rms of truth_c in its group)).
    """
    if not (np.all(np.isfinite(out)) and np.all(np.isfinite(truth))):
        return float("nan"), 0.0, float("inf")
    _, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse)

    def centred(v: np.ndarray) -> np.ndarray:
        return v - (np.bincount(inverse, weights=v) / counts)[inverse]

    e_c, v_c = centred(out), centred(truth)
    vv, ee = float(v_c @ v_c), float(e_c @ e_c)
    if vv <= 0 or ee <= 0:
        return float("nan"), 0.0, float("inf")
    a = float(e_c @ v_c / vv)
    r2 = 1.0 - float(np.sum((e_c - a * v_c) ** 2)) / ee
    scale = np.sqrt(np.bincount(inverse, weights=v_c * v_c) / counts)[inverse]
    with np.errstate(all="ignore"):
        rel = float(np.median(np.abs(e_c - a * v_c) / (abs(a) * scale)))
    return a, r2, rel if np.isfinite(rel) else float("inf")


def judge_energy(expr: sp.Expr, names: Sequence[str], X: np.ndarray, truth: np.ndarray, groups: np.ndarray,
                 complexity: int, cfg: JudgeConfig, target: str) -> Judgement:
    """Is an energy equation a·truth + f(constants), a > 0 (module docstring)?

    Args:
        expr: equation over `names`.
        X: fresh rows [N, d]; truth: the true energy on them [N]; groups: [N] group label of
            each row (rows of one group share every particle constant).
        complexity: the equation's complexity.
        cfg: the thresholds.
        target: the name reported when it passes ("potential", "kinetic").
    Returns:
        the verdict: affine = (a,), r2 and rel_error of the common-slope fit
        (`grouped_slope_fit`); r2_targets {target: r2}.
    """
    out = np.broadcast_to(lambdify(expr, names)(X), truth.shape).astype(np.float64)
    a, r2, rel = grouped_slope_fit(out, truth, groups)
    success = (a > 0 and r2 >= cfg.success_r2 and rel <= cfg.max_rel_error
               and complexity <= cfg.max_complexity)
    return Judgement(success=bool(success), target=target if success else None, best=target,
                     receiver_factor=None, r2=r2, affine=(a,), rel_error=rel, cosine=None,
                     complexity_ok=complexity <= cfg.max_complexity, r2_targets={target: r2})
