"""Initial conditions of the paper's simulations (paper App. B; official `simulate.py`).

In:  a `Law` (its `init` and `charges` modes), n particles, dim 2|3, S simulations and a
     `numpy.random.Generator`.
Out: float64 arrays pos [S, n, dim], vel [S, n, dim], q [S, n], m [S, n].

Draws happen in one fixed order (one standard-normal block [S, n, 2*dim+2] laid out as
the node features pos, vel, q, m), so the same generator state gives byte-identical
arrays on every machine and integrator.
"""
from __future__ import annotations

import numpy as np

from plumbing.errors import InputError

from .laws import Law


def initial_conditions(law: Law, n: int, dim: int, n_sims: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random starting states for `n_sims` independent systems.

    Gaussian laws: every component i.i.d. N(0, 1); mass m = exp(N(0, 1)) (log-normal);
    charge q = sign(N(0, 1)) when `law.charges == "sign"`, else q stays N(0, 1) (an input
    the network sees but no potential uses). String laws (the original 2020 code, which
    docs/facts.md §1.1 shows is the working one): mass 1, x = arange(n) + 0.5 N(0, 1),
    vx = 0, every other component N(0, 1).

    Args:
        law: the pair law; `law.init` and `law.charges` select the distribution.
        n: particles per system (>= 2).
        dim: spatial dimension (2 or 3).
        n_sims: number of systems S (>= 1).
        rng: source of randomness; consumed in a fixed order.
    Returns:
        (pos [S, n, dim], vel [S, n, dim], q [S, n], m [S, n]), float64, dimensionless
        units with G = 1.
    """
    if n < 2 or dim not in (2, 3) or n_sims < 1:
        raise InputError(f"initial_conditions needs n >= 2, dim in (2, 3), n_sims >= 1; "
                         f"got n={n}, dim={dim}, n_sims={n_sims}")
    z = rng.standard_normal((n_sims, n, 2 * dim + 2))
    pos = z[..., :dim].copy()
    vel = z[..., dim:2 * dim].copy()
    q = z[..., 2 * dim].copy()
    m = np.exp(z[..., 2 * dim + 1])
    if law.charges == "sign":
        # np.sign(0) = 0 has probability zero for a continuous draw; map it to +1 anyway
        # so every particle is charged.
        q = np.where(q < 0, -1.0, 1.0)
    if law.init == "string":
        m = np.ones_like(m)
        pos[..., 0] = np.arange(n) + 0.5 * pos[..., 0]
        vel[..., 0] = 0.0
    return pos, vel, q, m
