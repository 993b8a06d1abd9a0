"""CPU kernel: the shared integrator (`nbody.integrator_core`) over many systems with Numba.

In:  float64 pos0, vel0 [S, n, dim], q, m [S, n] and the integrator settings.
Out: pos, vel, acc [S, nt, n, dim] float64, n_steps [S] int64, failed [S] bool, written into
     caller-provided arrays.

One `numba.prange` iteration per simulation (parallel=True, so Numba's thread pool
shares the simulations among the cores); each iteration owns its scratch array.
Compiled kernels are cached per (law, n, dim, official_quirks).
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from .integrator_core import WORK_ROWS, build_core
from .laws import Law


@functools.lru_cache(maxsize=None)
def cpu_kernel(law: Law, n: int, dim: int, official_quirks: bool):
    """The compiled parallel kernel for one (law, n, dim, quirks).

    Returns:
        kernel(pos0, vel0, q, m, out_pos, out_vel, out_acc, out_steps, out_failed,
               dt, nt, softening, rtol, atol, max_substeps) -> None.
    """
    integrate_one = build_core(law, n, dim, official_quirks, numba.njit)
    n_y = 2 * n * dim

    @numba.njit(parallel=True)
    def kernel(pos0, vel0, q, m, out_pos, out_vel, out_acc, out_steps, out_failed,
               dt, nt, softening, rtol, atol, max_substeps):
        for s in numba.prange(pos0.shape[0]):
            work = np.empty((WORK_ROWS, n_y))
            steps, failed = integrate_one(pos0[s], vel0[s], q[s], m[s], out_pos[s], out_vel[s],
                                          out_acc[s], work, dt, nt, softening, rtol, atol, max_substeps)
            out_steps[s] = steps
            out_failed[s] = failed

    return kernel
