"""Pairwise force laws: the physics, written once and shared by every integrator.

A law is a pair potential U(r, q1, q2, m1, m2) (or its radial force) as a
sympy expression, where "1" is the receiving particle and r is the *softened*
distance r' = |x1 - x2| + eps (paper App. B; the official code's
`bounded_dist`). The force on particle 1 is

    F1 = f(r', q1, q2, m1, m2) * (x1 - x2) / |x1 - x2|,   f = -dU/dr',

so f > 0 is repulsive; the unit vector uses the true distance, as the
official code's autograd does. From that one expression this module derives

    Law.force_expr / potential_expr   sympy, for tables and success judgement
    Law.radial_numpy / potential_numpy vectorised NumPy callables (reference, analysis)
    Law.radial_code                    f as Python source over `math`, which the
                                       generated kernels (`nbody.kernel_build`) compile
                                       for the CPU and as a CUDA device function

plus non-pairwise terms needed by two of the paper's laws: velocity damping
(`damped`) and uniform gravity (`string`). `pair_force`, `accelerations` and
`energy` are the vectorised physics used by the reference integrator, the
tests and the analysis; the fast kernels compile `radial_code`.

Users add laws with `register_law(Law(name=..., potential="..."))` (or
`force=...`); `run.py simulate --law NAME --potential EXPR` does the same. Law text is
untrusted: it is parsed by the whitelist of `nbody.expr` (never evaluated as Python), a
stored law (`law_from_dict`) is checked field by field, and a built-in law cannot be
redefined.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from plumbing.errors import InputError

from .expr import R, SYMBOLS, parse_text, require_finite_expr
from .graph import TOPOLOGIES, edges, scatter_sum

_SYMBOL_NAMES = {s.name: s for s in SYMBOLS}

CHARGE_MODES = ("gaussian", "sign")
INITS = ("gaussian", "string")
# sp.integrate of a force-only law is not attempted above this many operations (it can hang).
INTEGRATE_MAX_OPS = 40


def parse_expression(text: str | sp.Expr | Callable, what: str = "expression") -> sp.Expr:
    """Parse a law written as text, a sympy expression or a callable of (r, q1, q2, m1, m2).

    Text goes through the whitelist parser `nbody.expr.parse_text` (never `eval`), so it
    may come from a user or a file. Raises InputError if it is not allowed, does not
    parse, is not finite or uses other symbols.
    """
    if isinstance(text, str):
        return parse_text(text, what)
    if callable(text) and not isinstance(text, sp.Basic):
        try:
            value = text(*SYMBOLS)
            expr = parse_text(value, what) if isinstance(value, str) else sp.sympify(value, strict=True)
        except InputError:
            raise
        except Exception as exc:  # a user callable may raise anything
            raise InputError(f"{what}: callable must accept sympy symbols (r, q1, q2, m1, m2): {exc}") from None
    elif isinstance(text, sp.Basic):
        expr = text
    else:
        raise InputError(f"{what} must be text, a sympy expression or a callable, got {type(text).__name__}")
    if not isinstance(expr, sp.Expr):
        raise InputError(f"{what} {expr!r} is not an expression")
    # Re-bind any plain symbols with the same names to our real-valued symbols.
    expr = expr.xreplace({s: _SYMBOL_NAMES[s.name] for s in expr.free_symbols if s.name in _SYMBOL_NAMES})
    extra = {s.name for s in expr.free_symbols} - set(_SYMBOL_NAMES)
    if extra:
        raise InputError(f"{what} {expr} uses unknown symbols {sorted(extra)}; allowed: r q1 q2 m1 m2")
    require_finite_expr(expr, what)
    return expr


@dataclass(frozen=True)
class Law:
    """A named pair interaction plus the simulation defaults that go with it.

    Attributes:
        name: registry key (e.g. "spring").
        potential: U(r, q1, q2, m1, m2) as text, r the softened distance; or None if `force` is given.
        force: radial force f(r, ...) = -dU/dr on the receiver along (x1-x2)/|x1-x2|; derived
            from `potential` when None.
        dt: the paper's sampling interval for this law (docs/facts.md §1.4).
        charges: "gaussian" (q ~ N(0,1), unused by most laws) or "sign" (q = ±1).
        topology: "full" (all pairs interact) or "chain" (i with i+1 only).
        damping: coefficient c of the damping term: each interacting pair damps with -c v / n.
        gravity: uniform downward (-y) acceleration g: force -g m per node.
        init: "gaussian" (paper App. B) or "string" (a perturbed line, mass 1).
        default_n: particles when the user gives none.
    """

    name: str
    potential: str | None = None
    force: str | None = None
    dt: float = 1e-2
    charges: str = "gaussian"
    topology: str = "full"
    damping: float = 0.0
    gravity: float = 0.0
    init: str = "gaussian"
    default_n: int = 4

    def __post_init__(self):
        if (not isinstance(self.name, str) or not self.name.isascii() or len(self.name) > 64
                or not self.name.replace("_", "").isalnum()):
            raise InputError(f"law name {self.name!r} must be 1-64 ASCII letters, digits or underscores")
        for value, what in ((self.potential, "potential"), (self.force, "force")):
            if value is not None and not isinstance(value, str):
                raise InputError(f"law {self.name!r}: {what} must be text, got {type(value).__name__}")
        if self.potential is None and self.force is None:
            raise InputError(f"law {self.name!r} needs a potential or a force")
        for value, what in ((self.dt, "dt"), (self.damping, "damping"), (self.gravity, "gravity")):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise InputError(f"law {self.name!r}: {what} must be a finite number, got {value!r}")
        if not self.dt > 0:
            raise InputError(f"law {self.name!r}: dt must be positive, got {self.dt}")
        if isinstance(self.default_n, bool) or not isinstance(self.default_n, int) or self.default_n < 2:
            raise InputError(f"law {self.name!r}: default_n must be an integer >= 2, got {self.default_n!r}")
        for value, allowed, what in ((self.charges, CHARGE_MODES, "charges"),
                                     (self.topology, TOPOLOGIES, "topology"),
                                     (self.init, INITS, "init")):
            if not isinstance(value, str) or value not in allowed:
                raise InputError(f"law {self.name!r}: {what} must be one of {allowed}, got {value!r}")
        # Parse now so that a bad expression fails at registration, not in a kernel.
        if self.potential is not None:
            parse_expression(self.potential, f"potential of {self.name}")
        _check_force(self.name, self.force_expr)

    @functools.cached_property
    def potential_expr(self) -> sp.Expr | None:
        """U(r, q1, q2, m1, m2), or -∫f dr when only the force was given (None if sympy cannot,
        or the force is too large, over INTEGRATE_MAX_OPS operations, to try)."""
        if self.potential is not None:
            return parse_expression(self.potential, f"potential of {self.name}")
        force = parse_expression(self.force, f"force of {self.name}")
        if sp.count_ops(force) > INTEGRATE_MAX_OPS:
            return None
        integral = sp.integrate(-force, R)
        return None if integral.has(sp.Integral) else integral

    @functools.cached_property
    def force_expr(self) -> sp.Expr:
        """Radial force f(r, q1, q2, m1, m2) = -dU/dr on the receiver (positive = repulsive)."""
        if self.force is not None:
            return parse_expression(self.force, f"force of {self.name}")
        # A step in U (Heaviside) exerts no impulse, as sympy's derivative of a Piecewise jump
        # (the discontinuous law) has none: drop its DiracDelta, which no integrator could run.
        force = (-sp.diff(self.potential_expr, R)).replace(sp.DiracDelta, lambda *args: sp.S.Zero)
        # factor_terms, not sp.simplify: it tidies as well on these laws and never takes minutes.
        return sp.factor_terms(sp.piecewise_fold(force))

    @property
    def conservative(self) -> bool:
        """True when total energy is conserved (a potential exists and nothing dissipates)."""
        return self.potential_expr is not None and self.damping == 0.0

    @functools.cached_property
    def radial_numpy(self) -> Callable[..., np.ndarray]:
        """Vectorised f(r, q1, q2, m1, m2) on broadcastable arrays (float64 out)."""
        return _lambdify_numpy(self.force_expr)

    @functools.cached_property
    def potential_numpy(self) -> Callable[..., np.ndarray]:
        """Vectorised U(r, q1, q2, m1, m2); raises InputError if the law has no potential."""
        if self.potential_expr is None:
            raise InputError(f"law {self.name!r} has no closed-form potential")
        return _lambdify_numpy(self.potential_expr)

    @functools.cached_property
    def radial_code(self) -> str:
        """f(r, q1, q2, m1, m2) as one Python expression over `math` (e.g. "2.0 - 2.0*r"),
        printed by sympy from `force_expr` (never from the user's text), for the body of a
        generated kernel's `radial`; the factor 1.0 makes an integer law return a float."""
        return PythonCodePrinter({"fully_qualified_modules": True}).doprint(sp.Float(1.0) * self.force_expr)


def _check_force(name: str, f: sp.Expr) -> None:
    """InputError unless f is real, not identically zero and symmetric under 1 <-> 2.

    Checked by evaluating f at fixed sample points (cheap at any expression size, unlike
    sp.simplify), r spanning 0.01 .. 100 and charges/masses of both signs and scales.
    """
    require_finite_expr(f, f"force of {name}")
    rng = np.random.default_rng(0)
    r = np.geomspace(0.01, 100.0, 64)
    q1, q2 = rng.uniform(-2, 2, (2, 64))
    m1, m2 = rng.uniform(0.1, 3, (2, 64))
    raw = sp.lambdify(SYMBOLS, f, modules="numpy")
    try:
        with np.errstate(all="ignore"):
            value = np.broadcast_to(raw(r, q1, q2, m1, m2), r.shape)
            swapped = np.broadcast_to(raw(r, q2, q1, m2, m1), r.shape)
    except (ArithmeticError, NameError, TypeError, ValueError) as exc:
        raise InputError(f"law {name!r}: the force cannot be evaluated ({type(exc).__name__})") from None
    if np.iscomplexobj(value) and np.any(np.imag(value) != 0):
        raise InputError(f"law {name!r}: the force is not real (e.g. a root of a negative number)")
    value, swapped = np.real(value), np.real(swapped)
    if f == 0 or np.all(value == 0):
        raise InputError(f"law {name!r}: the radial force is identically zero (a constant potential "
                         "exerts no force)")
    if not np.allclose(value, swapped, rtol=1e-9, atol=0.0, equal_nan=True):
        raise InputError(f"law {name!r} is not symmetric under swapping particles 1 and 2; "
                         "a pair law must be (Newton's third law)")


def _lambdify_numpy(expr: sp.Expr) -> Callable[..., np.ndarray]:
    raw = sp.lambdify(SYMBOLS, expr, modules="numpy")

    def fn(r, q1, q2, m1, m2):
        args = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (r, q1, q2, m1, m2)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.broadcast_to(np.asarray(raw(*args), dtype=np.float64), args[0].shape).copy()

    return fn


_REGISTRY: dict[str, Law] = {}
_BUILT_IN: dict[str, Law] = {}


def register_law(law: Law, overwrite: bool = False) -> Law:
    """Make `law` available by name to every stage (`get_law`, run.py, kernels).

    A built-in law is never redefined, even with `overwrite`; another law of an existing
    name needs `overwrite=True`. Both refusals are InputErrors. Registering a law equal to
    the registered one returns the registered object (its compiled functions are kept).
    """
    if _REGISTRY.get(law.name) == law:
        return _REGISTRY[law.name]
    if law.name in _BUILT_IN and _BUILT_IN[law.name] != law:
        raise InputError(f"{law.name!r} is a built-in law and cannot be redefined; give yours another name")
    if law.name in _REGISTRY and not overwrite and _REGISTRY[law.name] != law:
        raise InputError(f"a different law named {law.name!r} is already registered")
    _REGISTRY[law.name] = law
    return law


def get_law(name: str) -> Law:
    """The registered law called `name`; InputError listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown law {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def law_names() -> list[str]:
    """Names of all registered laws, built-in first."""
    return list(_REGISTRY)


def law_from_dict(data: dict) -> Law:
    """Rebuild (and register, if new) a law stored in dataset metadata.

    The dict is untrusted data: unknown or missing keys, wrong types and expressions
    outside the whitelist are InputErrors, and it cannot redefine a built-in law.
    """
    if not isinstance(data, dict):
        raise InputError(f"a stored law must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - {f.name for f in dataclasses.fields(Law)}
    if unknown:
        raise InputError(f"unknown law fields: {', '.join(sorted(map(str, unknown)))}")
    if "name" not in data:
        raise InputError("a stored law has no name")
    return register_law(Law(**data))


# The paper's laws (docs/facts.md §1.3, dt from §1.4).
for _law in (
    Law("spring", potential="(r - 1)**2", dt=1e-2),
    Law("r1", potential="m1*m2*log(r)", dt=5e-3),
    Law("r2", potential="-m1*m2/r", dt=1e-3),
    Law("charge", potential="q1*q2/r", dt=1e-3, charges="sign"),
    Law("superposition", potential="q1*q2/r - m1*m2/r", dt=1e-3, charges="sign"),
    Law("damped", potential="(r - 1)**2", dt=2e-2, damping=1.0),
    Law("discontinuous", potential="Piecewise((0, r < 2), ((r - 1)**2, True))", dt=1e-2),
    Law("string", potential="(r - 1)**2", dt=1e-2, topology="chain", gravity=1.0,
        init="string", default_n=30),
):
    _BUILT_IN[_law.name] = register_law(_law)


# --------------------------------------------------------------------------- #
# Vectorised physics shared by the reference integrator, tests and analysis.   #
# --------------------------------------------------------------------------- #

def pair_list(law: Law, n: int) -> np.ndarray:
    """Interacting pairs (i, j), i < j, as int64 [P, 2]: all pairs, or the chain i–i+1.

    Each pair once: the edges of `nbody.graph.edges(n, law.topology)` whose receiver i comes
    before its sender j, in the template's (receiver-major) order.
    """
    senders, receivers = edges(n, law.topology)
    once = receivers < senders
    return np.stack([receivers[once], senders[once]], axis=1)


def external_weights(law: Law, n: int, official_quirks: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-node weights (damping [n], gravity [n]) of the non-pairwise terms.

    The node force is  -law.damping * wd[i] * v_i  - law.gravity * wg[i] * m_i * y_hat.

    Default (physically consistent): every pair damps both of its particles by v/n, so
    wd[i] = degree(i)/n, and gravity acts on every particle, wg = 1.
    `official_quirks=True` reproduces the official simulate.py, where the term is attached
    only to the first particle of each pair (i < j): wd[i] = #{j > i}/n (node-order
    dependent damping, 0.75/0.5/0.25/0 for n=4) and the last particle of a string feels no
    gravity (docs/facts.md §4 #4 and #5).
    """
    pairs = pair_list(law, n)
    first = np.bincount(pairs[:, 0], minlength=n).astype(np.float64)
    degree = first + np.bincount(pairs[:, 1], minlength=n)
    if official_quirks:
        return first / n, (first > 0).astype(np.float64)
    return degree / n, np.ones(n)


def pair_force(law: Law, dpos: np.ndarray, q1, q2, m1, m2, softening: float) -> np.ndarray:
    """Force on the receiver from one sender, vectorised over leading axes.

    Args:
        dpos: x_receiver - x_sender, [..., dim].
        q1, q2, m1, m2: receiver/sender charge and mass, broadcastable to dpos[..., 0].
        softening: eps added to the distance inside the law (0.01 in the paper).
    Returns:
        [..., dim] force on the receiver (divide by m1 for its acceleration).
    """
    r = np.sqrt(np.sum(dpos * dpos, axis=-1))
    f = law.radial_numpy(r + softening, q1, q2, m1, m2)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(r > 0, f / r, 0.0)
    return scale[..., None] * dpos


def accelerations(law: Law, pos: np.ndarray, vel: np.ndarray, q: np.ndarray, m: np.ndarray,
                  softening: float, official_quirks: bool = False) -> np.ndarray:
    """True accelerations of every particle, vectorised over leading (batch) axes.

    Args:
        pos, vel: [..., n, dim]; q, m: [..., n].
    Returns:
        [..., n, dim] accelerations (pair forces + damping + gravity) / m.
    """
    n, dim = pos.shape[-2:]
    pairs = pair_list(law, n)
    i, j = pairs[:, 0], pairs[:, 1]
    f = pair_force(law, pos[..., i, :] - pos[..., j, :], q[..., i], q[..., j], m[..., i], m[..., j], softening)
    # f acts on i and, by Newton's third law, -f on j.
    force = scatter_sum(np.concatenate([f, -f], axis=-2), np.concatenate([i, j]), n)   # [..., n, dim]
    wd, wg = external_weights(law, n, official_quirks)
    force -= law.damping * wd[:, None] * vel
    if law.gravity:
        force[..., 1] -= law.gravity * wg * m
    return force / m[..., None]


def energy(law: Law, pos: np.ndarray, vel: np.ndarray, q: np.ndarray, m: np.ndarray,
           softening: float, official_quirks: bool = False) -> np.ndarray:
    """Total energy  sum 1/2 m v^2 + sum_pairs U(r')  (+ gravitational m g y), over leading axes.

    Args: pos, vel [..., n, dim]; q, m [..., n].  Returns: [...] energies.
    """
    n = pos.shape[-2]
    pairs = pair_list(law, n)
    i, j = pairs[:, 0], pairs[:, 1]
    r = np.sqrt(np.sum((pos[..., i, :] - pos[..., j, :]) ** 2, axis=-1))
    u = law.potential_numpy(r + softening, q[..., i], q[..., j], m[..., i], m[..., j]).sum(-1)
    kinetic = 0.5 * np.sum(m * np.sum(vel * vel, axis=-1), axis=-1)
    _, wg = external_weights(law, n, official_quirks)
    grav = law.gravity * np.sum(wg * m * pos[..., 1], axis=-1) if law.gravity else 0.0
    return kinetic + u + grav
