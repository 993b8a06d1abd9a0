"""The node-feature layout used everywhere: x = (pos[dim], vel[dim], q, m).

In:  arrays [..., n, 2*dim + 2] (NumPy or torch).
Out: named views, so no module reads mass as `x[..., -1]` by magic index, and `pack`,
     the one place the layout is assembled.
"""
from __future__ import annotations

import numpy as np


def n_features(dim: int) -> int:
    """Width of a node's feature vector: 2*dim + 2."""
    return 2 * dim + 2


def feature_names(dim: int) -> list[str]:
    """Column names of a node feature vector, e.g. ['x', 'y', 'vx', 'vy', 'q', 'm']."""
    axes = "xyz"[:dim]
    return [*axes, *(f"v{a}" for a in axes), "q", "m"]


def pack(pos, vel, q, m):
    """Node features [..., n, 2*dim+2] (NumPy) from pos, vel [..., n, dim] and q, m [..., n]."""
    return np.concatenate([pos, vel, np.asarray(q)[..., None], np.asarray(m)[..., None]], axis=-1)


def pos(x, dim: int):
    """Positions [..., n, dim]."""
    return x[..., :dim]


def vel(x, dim: int):
    """Velocities [..., n, dim]."""
    return x[..., dim:2 * dim]


def charge(x, dim: int):
    """Charges [..., n]."""
    return x[..., 2 * dim]


def mass(x, dim: int):
    """Masses [..., n]."""
    return x[..., 2 * dim + 1]
