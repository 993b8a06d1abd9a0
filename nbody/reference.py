"""NumPy reference integrator: the readable specification the Numba kernels must match.

In:  a `Law`, float64 pos, vel [S, n, dim], q, m [S, n], and the integrator settings.
Out: (pos, vel, acc [S, nt, n, dim], n_steps [S] int64, failed [S] bool); acc are the
     accelerations at the stored states.

The same algorithm as `nbody.integrator_core` (Dormand–Prince 5(4), RMS error norm,
step control h * clip(0.9 err^(-1/5), 0.2, 5), each output interval [t_{k-1}, t_k],
t_k = k*dt, split into ceil(remaining / h) equal steps), written with whole-array NumPy
operations and `nbody.laws.accelerations` for the physics. It is slow (a Python loop
over simulations and steps) and meant for tests and speed comparisons only.
"""
from __future__ import annotations

import math

import numpy as np

from .integrator_core import A, E, step_factor
from .laws import Law, accelerations


def integrate_reference(law: Law, pos: np.ndarray, vel: np.ndarray, q: np.ndarray, m: np.ndarray, *,
                        dt: float, nt: int, softening: float, rtol: float, atol: float,
                        max_substeps: int, official_quirks: bool = False):
    """Integrate every system with the reference DOPRI5.

    Args:
        law, pos, vel, q, m: as for `nbody.integrate.integrate`.
        dt, nt: output spacing and number of outputs (t_k = k*dt, k = 0..nt-1).
        softening, rtol, atol, max_substeps, official_quirks: see `nbody.integrate.integrate`.
    Returns:
        (pos, vel, acc [S, nt, n, dim] float64, n_steps [S] int64, failed [S] bool).
    """
    S, n, dim = pos.shape
    out = np.full((S, nt, 3, n, dim), np.nan)       # (pos, vel, acc) per output
    n_steps = np.zeros(S, dtype=np.int64)
    failed = np.zeros(S, dtype=bool)
    for s in range(S):
        def f(y, s=s):
            # y = [2, n, dim] (positions, velocities) -> (velocities, accelerations).
            return np.stack([y[1], accelerations(law, y[0], y[1], q[s], m[s], softening, official_quirks)])

        y = np.stack([pos[s], vel[s]]).astype(np.float64)
        k = [f(y)] + [None] * 6
        out[s, 0] = y[0], y[1], k[0][1]
        t, h = 0.0, dt
        for kout in range(1, nt):
            t_end = kout * dt
            attempts = 0
            while t < t_end and not failed[s]:
                if attempts >= max_substeps:
                    failed[s] = True
                    break
                attempts += 1
                remaining = t_end - t
                n_sub = math.ceil(remaining / h)
                hs = remaining / n_sub
                for stage in range(1, 7):
                    trial = y + hs * sum(a * k[i] for i, a in enumerate(A[stage]))
                    k[stage] = f(trial)
                y_new = trial            # the last stage is evaluated at the 5th-order solution
                err_vec = hs * sum(e * ki for e, ki in zip(E, k))
                scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
                err = math.sqrt(np.mean((err_vec / scale) ** 2))
                if err <= 1.0:
                    n_steps[s] += 1
                    t = t_end if n_sub == 1 else t + hs
                    y, k[0] = y_new, k[6]
                h = hs * step_factor(err)
                failed[s] |= t_end + h == t_end      # underflow (t_end > 0: also at t = 0)
            if failed[s]:
                break
            out[s, kout] = y[0], y[1], k[0][1]
    return out[:, :, 0], out[:, :, 1], out[:, :, 2], n_steps, failed
