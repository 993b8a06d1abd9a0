"""The message basis the node model reads: dim linear combinations of message components.

In:  the node callable of a `symbolic.Network`, node features x [N, F] and the aggregated
     messages agg [N, K] they receive, the indices `columns` of the components to combine
     (the dim significant ones, or all K), and whether receivers of different charge (or
     any receiver property with a few values) get their own basis.
Out: `Alignment`: one dim x k matrix M per receiver class (aligned messages m' = M m[columns]),
     the class of each receiver, and how well one matrix per class describes the node model
     (`rank1_share`).

Why. A bottleneck model is free to pass any invertible linear map A of the pair force as its
messages, m = g(q1, m1)·A·F, because its node model undoes A. Each raw component then mixes
every axis, and SR has to find a sum of dim terms sharing one radial factor (in 3D about 23
nodes, a search the cpu preset's budget often loses; docs/facts.md §3.3). The node model's
Jacobian J(x) = ∂node/∂agg[top] is, for a node model that is Newton's law, s(x)·A⁻¹ (s a scalar
function of the receiver such as 1/m1 or q1/m1), so the dominant direction V of the stacked,
normalised Jacobians gives A⁻¹ up to a scale, with no reference to the true force.

Sign and scale. With σ(x) = <J(x), V> the node model's gain, M = median(σ)·V makes the node
model read the aligned messages as J(x) M⁻¹ = σ(x)/median(σ) · I: unit gain at the median,
positive for most receivers. The aligned component j is then the pair's contribution to the
receiver's acceleration along axis j, times a receiver factor with median 1, and a
single-axis form for SR whose sign is the force's.

Per receiver class. The network may also pass A(c)·F, a mixing that depends on a receiver
property c that takes a few values (the charges ±1 of the charge law; the node model sees c
and undoes it); no single matrix undoes that (rank-1 share 0.5-0.6 on the cpu preset's
charge runs). `by="q1"` (or "m1") fits one M per distinct value of that receiver property;
the gain normalisation above then puts every class on the same sign and scale, so the
aligned messages are one function of the pair for all receivers. `auto_alignment` chooses
from the data alone: one basis per value of a receiver property that takes at most
MAX_CLASSES values, when that raises the rank-1 share by at least AUTO_GAIN over one basis
for all (a property with many values, such as a continuous mass, has no classes).

All components. An L1, KL or standard model after a short training spreads its messages
over many components (the top dim carry 22-69 % of the variance on the cpu preset's L1 runs),
while its node model reads only dim combinations B·Σm of them. The same construction over
all K components (J(x) = ∂node/∂agg, [dim, K]) gives M ∝ B with the same normalisation: the
aligned messages are then what the node model reads, whatever the sparsity.

With the top components only the basis within their span changes: which components count
and the message R² are as before. Either way the symbolic model reads the aligned messages
with its aligned node equations.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nbody import state
from plumbing.errors import InputError

REL_STEP = 1e-3    # central-difference step, as a fraction of each component's std
MAX_CLASSES = 4    # distinct values of a receiver property that classes accept (the paper's charges: ±1)
AUTO_GAIN = 0.05   # rank-1 share a per-class basis must add for `auto_alignment` to choose it
MIN_CONDITION = 1e-6  # a basis whose smallest singular value is below this share of its largest is singular
# Receiver properties a class can be a value of: name -> reader of node features [N, F].
PROPERTIES = {"q1": state.charge, "m1": state.mass}


@dataclass(frozen=True)
class Alignment:
    """Attributes:
        matrices: [C, dim, k] M per receiver class; aligned messages m' = M m[columns].
        values: [C] the value of receiver property `by` of each class, or None: one class,
            every receiver.
        rank1_share: share of the stacked normalised Jacobians' energy that their own class's
            matrix explains (1.0: within each class, the node model reads every message
            through the same matrix up to a scalar).
        by: the receiver property of the classes ("q1" or "m1"), None with one class.
        choice: why this basis (`auto_alignment`: the rank-1 shares it compared), or None.
    """

    matrices: np.ndarray
    values: tuple[float, ...] | None
    rank1_share: float
    by: str | None = None
    choice: str | None = None

    def apply(self, values: np.ndarray, x_recv: np.ndarray, dim: int) -> np.ndarray:
        """Aligned messages [N, dim] from the components `values` [N, k] of messages
        (or of their sums) received by nodes x_recv [N, F]."""
        return np.einsum("nij,nj->ni", self.matrices[self.classes(x_recv, dim)], values)

    def classes(self, x_recv: np.ndarray, dim: int) -> np.ndarray:
        """Class index [N] of each receiver; InputError for a property value no class has."""
        if self.values is None:
            return np.zeros(len(x_recv), dtype=int)
        q = PROPERTIES[self.by](x_recv, dim)
        known = np.asarray(self.values)
        match = q[:, None] == known[None, :]
        if not match.any(axis=1).all():
            raise InputError(f"receiver {self.by} = {q[~match.any(axis=1)][0]:g} has no aligned basis "
                             f"(classes {', '.join(f'{c:g}' for c in known)})")
        return match.argmax(axis=1)


def node_jacobians(node: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                   agg: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """∂node/∂agg[:, columns] by central differences, [N, dim_out, len(columns)]."""
    scale = agg[:, columns].std(axis=0)
    cols = []
    for c, k in enumerate(columns):
        h = REL_STEP * (scale[c] if scale[c] > 0 else 1.0)
        up, down = agg.copy(), agg.copy()
        up[:, k] += h
        down[:, k] -= h
        cols.append((np.asarray(node(x, up)) - np.asarray(node(x, down))) / (2 * h))
    return np.stack(cols, axis=-1)


def node_alignment(node: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                   agg: np.ndarray, columns: np.ndarray, dim: int, by: str | None = None) -> Alignment:
    """The dim combinations of message components `columns` that the node model reads
    (module docstring).

    Args:
        node: (x [N, F], agg [N, K]) -> [N, dim]; x, agg: nodes and their aggregated messages.
        columns: [k >= dim] indices of the components to combine (the significant ones, or all).
        by: None for one basis, or a receiver property ("q1", "m1"): one basis per distinct
            value of it (at most MAX_CLASSES of them).
    Raises:
        InputError: the node model does not depend on those components, reads them
        through a singular map, or `by` has more than MAX_CLASSES distinct values.
    """
    flat, shape = _flat_jacobians(node, x, agg, columns)
    return _alignment(flat, shape, x, dim, by)


def auto_alignment(node: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                   agg: np.ndarray, columns: np.ndarray, dim: int) -> Alignment:
    """`node_alignment` with the classes chosen by the data: one basis for all receivers,
    or one per value of the receiver property with at most MAX_CLASSES distinct values whose
    classes raise the rank-1 share the most, when they raise it by at least AUTO_GAIN (or
    when one basis for all is singular: a mixing A(q1) that differs between the classes can
    average to a singular map). The result's `choice` says what was compared."""
    flat, shape = _flat_jacobians(node, x, agg, columns)
    try:
        single = best = _alignment(flat, shape, x, dim, None)
        shares = [f"one basis {single.rank1_share:.3f}"]
    except InputError as exc:   # one basis for all can be singular where the classes are not
        single = best = None
        shares, refusal = [f"one basis: {exc}"], exc
    for prop, read in PROPERTIES.items():
        count = len(np.unique(read(x, dim)))
        if not 2 <= count <= MAX_CLASSES:
            shares.append(f"{prop}: {count} values, no classes")
            continue
        try:
            classes = _alignment(flat, shape, x, dim, prop)
        except InputError as exc:
            shares.append(f"per {prop}: {exc}")
            continue
        shares.append(f"per {prop} ({count} classes) {classes.rank1_share:.3f}")
        floor = -np.inf if single is None else single.rank1_share + AUTO_GAIN
        if classes.rank1_share >= floor and (best is None or classes.rank1_share > best.rank1_share):
            best = classes
    if best is None:
        raise refusal
    choice = f"{'one basis' if best.by is None else 'per ' + best.by}: rank-1 shares " + "; ".join(shares)
    return dataclasses.replace(best, choice=choice)


def _flat_jacobians(node, x: np.ndarray, agg: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The node Jacobians [N, dim·k] flattened, and their [dim, k] shape."""
    jac = node_jacobians(node, x, agg, columns)
    return jac.reshape(len(jac), -1), jac.shape[1:]


def _alignment(flat: np.ndarray, shape: tuple[int, int], x: np.ndarray, dim: int, by: str | None) -> Alignment:
    """One basis (by None) or one per value of receiver property `by`, from flat Jacobians."""
    if by is None:
        matrix, top_energy, energy = _class_basis(flat, shape)
        return Alignment(matrix[None], None, top_energy / energy)
    prop = PROPERTIES[by](x, dim)
    values = np.unique(prop)
    if len(values) > MAX_CLASSES:
        raise InputError(f"align by {by} needs at most {MAX_CLASSES} distinct values, the receivers have "
                         f"{len(values)}; use align 'node' or 'auto'")
    fits = [_class_basis(flat[prop == v], shape) for v in values]
    return Alignment(np.stack([f[0] for f in fits]), tuple(float(v) for v in values),
                     sum(f[1] for f in fits) / sum(f[2] for f in fits), by)


def _class_basis(flat: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """(M = median(σ)·V, the energy of the normalised Jacobians along V, their total energy)
    for one class's flattened Jacobians [N, dim·k]; M is [dim, k]."""
    norms = np.linalg.norm(flat, axis=1)
    keep = norms > 0
    if not keep.any():
        raise InputError("the node model does not depend on the aligned message components")
    _, s, vt = np.linalg.svd(flat[keep] / norms[keep, None], full_matrices=False)
    gain = np.median(flat @ vt[0])
    matrix = gain * vt[0].reshape(shape)
    spread = np.linalg.svd(matrix, compute_uv=False)
    if gain == 0 or not spread[-1] > MIN_CONDITION * spread[0]:
        raise InputError("the node model reads the aligned message components through a singular map")
    return matrix, float(s[0] ** 2), float(np.sum(s ** 2))
