"""CUDA kernel: the shared integrator (`nbody.integrator_core`), one thread per simulation.

In:  a `Law`, dim; host arrays as for `nbody.kernels_cpu.run`: inputs (pos0, vel0 [S, n, dim],
     q, m [S, n] float64, pair_i, pair_j [P] int64, wd, wg [n] float64), outputs (states
     [S, T, n, 2*dim+2], acc [S, T, n, dim] float32 or float64, steps [S] int64, failed [S]
     bool) and settings (dt, nt, keep_every, softening, rtol, atol, max_substeps).
Out: the outputs filled in place (copied back from the device chunk by chunk).

`integrate_grid` is the template entry that `nbody.kernel_build` compiles per (law, dim)
and caches on disk. Each thread runs `integrate_one` for the simulations of a grid-stride
loop. n is a run-time value, so the scratch space cannot be a `cuda.local.array` of
compile-time size: it is a global array work [WORK_ROWS, 2*n*dim, threads] with the
thread index last, so that the threads of a warp touch consecutive addresses.
Simulations go to the device in chunks of at most `CHUNK_BYTES` of output. Numba's built-in
`numba.cuda` compiles this (and runs it under NUMBA_ENABLE_CUDASIM=1 for tests); the
optional `numba-cuda` package provides the maintained driver for real GPUs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from plumbing.errors import InputError

from .kernel_build import KernelTarget, compiled_kernel
from .laws import Law

# Threads per block. Small blocks suit this register-heavy kernel; tests patch it smaller so
# a handful of simulations spans several blocks.
THREADS_PER_BLOCK = 64
# Device bytes of states + accelerations per launch (bounds device memory whatever S is).
CHUNK_BYTES = 1 << 30


def integrate_grid(pos0, vel0, q, m, pair_i, pair_j, wd, wg, out_states, out_acc, out_steps, out_failed, work,
                   dt, nt, keep_every, softening, rtol, atol, max_substeps):
    """Integrate the simulations of this thread's grid-stride loop (the template entry;
    `integrate_one`, `cuda` come from the kernel module)."""
    start = cuda.grid(1)
    scratch = work[:, :, start]
    for s in range(start, pos0.shape[0], cuda.gridsize(1)):
        steps, failed = integrate_one(pos0[s], vel0[s], q[s], m[s], pair_i, pair_j, wd, wg, out_states[s],
                                      out_acc[s], scratch, dt, nt, keep_every, softening, rtol, atol, max_substeps)
        out_steps[s] = steps
        out_failed[s] = failed


TARGET = KernelTarget(name="cuda", imports="from numba import cuda",
                      device_jit="cuda.jit(device=True)", entry_jit="cuda.jit(cache=True)",
                      entry=integrate_grid)


def run(law: Law, dim: int, inputs: tuple, outputs: tuple, settings: tuple,
        on_done: Callable[[int], None] | None = None) -> None:
    """Integrate every system on the GPU (arguments as `nbody.kernels_cpu.run`)."""
    from numba import cuda  # deferred: CUDA may be absent

    from .integrator_core import WORK_ROWS  # deferred with numba.cuda (it compiles Numba kernels)
    pos0, vel0, q, m, *physics = inputs
    states, acc, steps, failed = outputs
    n_sims = len(pos0)
    per_sim = states[0].nbytes + acc[0].nbytes
    chunk = max(1, min(n_sims, CHUNK_BYTES // max(per_sim, 1)))
    tpb = THREADS_PER_BLOCK
    blocks = (chunk + tpb - 1) // tpb
    d_physics = [cuda.to_device(a) for a in physics]
    d_work = cuda.device_array((WORK_ROWS, 2 * pos0.shape[1] * dim, blocks * tpb))
    kernel = None
    for lo in range(0, n_sims, chunk):
        hi = min(lo + chunk, n_sims)
        d_in = [cuda.to_device(a[lo:hi]) for a in (pos0, vel0, q, m)]
        d_out = [cuda.device_array_like(a[lo:hi]) for a in outputs]
        args = (*d_in, *d_physics, *d_out, d_work, *settings)
        grid = ((hi - lo + tpb - 1) // tpb, tpb)
        if kernel is None:
            kernel = _compile_and_launch(law, dim, grid, args)
        else:
            kernel[grid](*args)
        cuda.synchronize()
        for device, host in zip(d_out, outputs):
            device.copy_to_host(host[lo:hi])
        if on_done is not None:
            on_done(hi - lo)


def _compile_and_launch(law: Law, dim: int, grid: tuple, args: tuple):
    """The cached kernel for (law, dim), launched once on `args`; a numba-cuda that cannot
    compile under this numpy is an InputError saying so, not a traceback from its internals."""
    try:
        return compiled_kernel(law, dim, TARGET, lambda entry: entry[grid](*args))
    except AttributeError as err:
        if "row_stack" not in str(err):
            raise
        raise InputError(f"this numba-cuda cannot compile kernels under numpy {np.__version__} (it registers "
                         "np.row_stack, which numpy 2.5 removed): install numpy<2.5, or use integrator 'cpu'"
                         ) from err
