"""The message basis the node model reads: dim linear combinations of message components.

In:  the node callable of a `symbolic.Network`, node features x [N, F] and the aggregated
     messages agg [N, K] they receive, the indices `columns` of the components to combine
     (the dim significant ones, or all K), and whether receivers of different charge get
     their own basis.
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

Per charge. With ±1 charges the network may also pass A(q1)·F, a mixing that depends on the
receiver's charge (the node model sees q1 and undoes it); no single matrix undoes that
(rank-1 share 0.5-0.6 on the cpu preset's charge runs). `by_charge=True` fits one M per
distinct receiver charge; the gain normalisation above then puts every class on the same sign
and scale, so the aligned messages are one function of the pair for all receivers.

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

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nbody import state
from nbody.errors import InputError

REL_STEP = 1e-3    # central-difference step, as a fraction of each component's std
MAX_CLASSES = 4    # distinct receiver charges `by_charge` accepts (the paper's are ±1)


@dataclass(frozen=True)
class Alignment:
    """Attributes:
        matrices: [C, dim, k] M per receiver class; aligned messages m' = M m[columns].
        charges: [C] the receiver charge of each class, or None: one class, every receiver.
        rank1_share: share of the stacked normalised Jacobians' energy that their own class's
            matrix explains (1.0: within each class, the node model reads every message
            through the same matrix up to a scalar).
    """

    matrices: np.ndarray
    charges: tuple[float, ...] | None
    rank1_share: float

    def apply(self, values: np.ndarray, x_recv: np.ndarray, dim: int) -> np.ndarray:
        """Aligned messages [N, dim] from the components `values` [N, k] of messages
        (or of their sums) received by nodes x_recv [N, F]."""
        return np.einsum("nij,nj->ni", self.matrices[self.classes(x_recv, dim)], values)

    def classes(self, x_recv: np.ndarray, dim: int) -> np.ndarray:
        """Class index [N] of each receiver; InputError for a charge no class has."""
        if self.charges is None:
            return np.zeros(len(x_recv), dtype=int)
        q = state.charge(x_recv, dim)
        known = np.asarray(self.charges)
        match = q[:, None] == known[None, :]
        if not match.any(axis=1).all():
            raise InputError(f"receiver charge {q[~match.any(axis=1)][0]:g} has no aligned basis "
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
                   agg: np.ndarray, columns: np.ndarray, dim: int, by_charge: bool = False) -> Alignment:
    """The dim combinations of message components `columns` that the node model reads
    (module docstring).

    Args:
        node: (x [N, F], agg [N, K]) -> [N, dim]; x, agg: nodes and their aggregated messages.
        columns: [k >= dim] indices of the components to combine (the significant ones, or all).
        by_charge: one basis per distinct receiver charge (at most MAX_CLASSES of them).
    Raises:
        InputError: the node model does not depend on those components, reads them
        through a singular map, or `by_charge` with more than MAX_CLASSES distinct charges.
    """
    jac = node_jacobians(node, x, agg, columns)
    flat = jac.reshape(len(jac), -1)
    if not by_charge:
        matrix, top_energy, energy = _class_basis(flat, jac.shape[1:])
        return Alignment(matrix[None], None, top_energy / energy)
    charges = np.unique(state.charge(x, dim))
    if len(charges) > MAX_CLASSES:
        raise InputError(f"align by charge needs at most {MAX_CLASSES} distinct charges, the receivers have "
                         f"{len(charges)}; use align 'node'")
    fits = [_class_basis(flat[state.charge(x, dim) == q], jac.shape[1:]) for q in charges]
    return Alignment(np.stack([f[0] for f in fits]), tuple(float(q) for q in charges),
                     sum(f[1] for f in fits) / sum(f[2] for f in fits))


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
    if gain == 0 or np.linalg.matrix_rank(matrix) < min(shape):
        raise InputError("the node model reads the aligned message components through a singular map")
    return matrix, float(s[0] ** 2), float(np.sum(s ** 2))
