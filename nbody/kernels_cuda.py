"""CUDA kernel: the shared integrator (`nbody.integrator_core`), one thread per simulation.

In:  device arrays d_pos0, d_vel0 [S, n, dim], d_q, d_m [S, n] (float64) and the settings.
Out: d_pos, d_vel, d_acc [S, nt, n, dim] float64, d_steps [S] int64, d_failed [S] bool.

Each thread runs `integrate_one` for the simulations of a grid-stride loop, with its
scratch space in `cuda.local.array` of compile-time size. Numba's built-in
`numba.cuda` compiles this (and runs it under NUMBA_ENABLE_CUDASIM=1 for tests); the
optional `numba-cuda` package provides the maintained driver for real GPUs.
Compiled kernels are cached per (law, n, dim, official_quirks).
"""
from __future__ import annotations

import functools

from numba import cuda, float64

from .integrator_core import WORK_ROWS, build_core
from .laws import Law

# Threads per block. Small blocks suit this register- and local-memory-heavy kernel; tests
# patch it smaller so a handful of simulations spans several blocks.
THREADS_PER_BLOCK = 64


@functools.lru_cache(maxsize=None)
def cuda_kernel(law: Law, n: int, dim: int, official_quirks: bool):
    """The compiled CUDA kernel for one (law, n, dim, quirks).

    Returns:
        kernel[blocks, THREADS_PER_BLOCK](d_pos0, d_vel0, d_q, d_m, d_pos, d_vel, d_acc,
                                           d_steps, d_failed, dt, nt, softening, rtol, atol, max_substeps)
    """
    integrate_one = build_core(law, n, dim, official_quirks, functools.partial(cuda.jit, device=True))
    n_y = 2 * n * dim

    @cuda.jit
    def kernel(d_pos0, d_vel0, d_q, d_m, d_pos, d_vel, d_acc, d_steps, d_failed,
               dt, nt, softening, rtol, atol, max_substeps):
        work = cuda.local.array((WORK_ROWS, n_y), float64)
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for s in range(start, d_pos0.shape[0], stride):
            steps, failed = integrate_one(d_pos0[s], d_vel0[s], d_q[s], d_m[s], d_pos[s],
                                          d_vel[s], d_acc[s], work, dt, nt, softening, rtol,
                                          atol, max_substeps)
            d_steps[s] = steps
            d_failed[s] = failed

    return kernel
