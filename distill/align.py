"""The message basis the node model reads: a linear change of basis of the top components.

In:  the node callable of a `symbolic.Network`, node features x [N, F] and the aggregated
     messages agg [N, k] they receive, and the indices `top` of the dim significant components.
Out: `Alignment`: a dim x dim matrix M (aligned messages m' = M m[top]) and how well one
     matrix describes the node model (`rank1_share`).

Why. A bottleneck model is free to pass any invertible linear map A of the pair force as its
messages, m = g(q1, m1)·A·F, because its node model undoes A. Each raw component then mixes
every axis, and SR has to find a sum of dim terms sharing one radial factor (in 3D about 23
nodes, a search the cpu preset's budget often loses; docs/facts.md §3.3). The node model's
Jacobian J(x) = ∂node/∂agg[top] is, for a node model that is Newton's law, s(x)·A⁻¹ (s a scalar
function of the receiver such as 1/m1 or q1/m1), so the dominant direction of the stacked,
normalised Jacobians gives A⁻¹ up to a scale, with no reference to the true force. The
aligned component j is then the pair's contribution to the acceleration along axis j, up to
the receiver factor, and a single-axis form for SR. Only the basis within the span of the
top components changes: which components count and the message R² are as before, and the
symbolic model reads the aligned messages with its aligned node equations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nbody.errors import InputError

REL_STEP = 1e-3   # central-difference step, as a fraction of each component's std


@dataclass(frozen=True)
class Alignment:
    """Attributes:
        matrix: [dim, dim] M, aligned messages m' = M m[top] (rows of unit norm).
        rank1_share: share of the stacked normalised Jacobians' energy in the one matrix M
            (1.0: the node model reads every message through the same matrix up to a scalar).
    """

    matrix: np.ndarray
    rank1_share: float


def node_jacobians(node: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                   agg: np.ndarray, top: np.ndarray) -> np.ndarray:
    """∂node/∂agg[:, top] by central differences, [N, dim_out, len(top)]."""
    scale = agg[:, top].std(axis=0)
    cols = []
    for c, k in enumerate(top):
        h = REL_STEP * (scale[c] if scale[c] > 0 else 1.0)
        up, down = agg.copy(), agg.copy()
        up[:, k] += h
        down[:, k] -= h
        cols.append((np.asarray(node(x, up)) - np.asarray(node(x, down))) / (2 * h))
    return np.stack(cols, axis=-1)


def node_alignment(node: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                   agg: np.ndarray, top: np.ndarray) -> Alignment:
    """The basis of the top message components that the node model reads (module docstring).

    Args:
        node: (x [N, F], agg [N, k]) -> [N, dim]; x, agg: nodes and their aggregated messages.
        top: [dim] indices of the significant components.
    Returns:
        Alignment (M's sign and scale are fixed so that each aligned component has a
        positive diagonal entry and unit-norm row: only the directions matter to SR).
    Raises:
        InputError: the node model does not depend on the top components at all.
    """
    jac = node_jacobians(node, x, agg, top)
    flat = jac.reshape(len(jac), -1)
    norms = np.linalg.norm(flat, axis=1)
    keep = norms > 0
    if not keep.any():
        raise InputError("the node model does not depend on the significant message components")
    _, s, vt = np.linalg.svd(flat[keep] / norms[keep, None], full_matrices=False)
    matrix = vt[0].reshape(jac.shape[1], jac.shape[2])
    if np.linalg.matrix_rank(matrix) < min(matrix.shape):
        raise InputError("the node model reads the significant message components through a singular map")
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix * np.where(np.diag(matrix) < 0, -1.0, 1.0)[:, None]
    return Alignment(matrix=matrix, rank1_share=float(s[0] ** 2 / np.sum(s ** 2)))
