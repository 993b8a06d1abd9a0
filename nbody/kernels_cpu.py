"""CPU kernel: the shared integrator (`nbody.integrator_core`) over many systems, on Numba threads.

In:  a `Law`, dim; float64 pos0, vel0 [S, n, dim], q, m [S, n]; the pair list pair_i, pair_j
     [P] int64 and node weights wd, wg [n] (`nbody.integrators.physics_arrays`); the settings
     (dt, nt, keep_every, softening, rtol, atol, max_substeps).
Out: written in place into the caller's C-ordered arrays: states [S, T, n, 2*dim+2] and
     acc [S, T, n, dim] (float32 or float64; memory maps welcome), steps [S] int64 and
     failed [S] bool.

`integrate_range` is the template entry that `nbody.kernel_build` compiles per (law, dim),
with `nogil`, and caches on disk. `run` shares blocks of simulations among
`numba.config.NUMBA_NUM_THREADS` Python threads, each calling the compiled entry on its block
without the GIL. We use threads rather than `parallel=True`: a parfor kernel takes seconds
longer to compile, and whole blocks per thread need none of its machinery. Nothing here
starts Numba's threading layer (`numba.get_num_threads()` would): its OpenMP layer sets the
process's OpenMP thread count, which torch shares, so a training after a simulation in the
same process (`run.py all`, a sweep worker) ran on every core whatever the caller had set,
and spin-waited 10-30x slower on a loaded machine.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable

import numba
import numpy as np

from .integrator_core import WORK_ROWS
from .kernel_build import KernelTarget, compiled_kernel
from .laws import Law

# Blocks per thread that a job is cut into (dynamic scheduling evens out slow systems),
# and the largest block (so progress is reported often enough).
BLOCKS_PER_THREAD = 16
MAX_BLOCK = 256


def integrate_range(lo, hi, pos0, vel0, q, m, pair_i, pair_j, wd, wg, out_states, out_acc, out_steps, out_failed,
                    dt, nt, keep_every, softening, rtol, atol, max_substeps):
    """Integrate systems lo..hi-1 (the template entry; `integrate_one`, `DIM` come from the kernel module)."""
    work = np.empty((WORK_ROWS, 2 * q.shape[1] * DIM))
    for s in range(lo, hi):
        steps, failed = integrate_one(pos0[s], vel0[s], q[s], m[s], pair_i, pair_j, wd, wg, out_states[s],
                                      out_acc[s], work, dt, nt, keep_every, softening, rtol, atol, max_substeps)
        out_steps[s] = steps
        out_failed[s] = failed


# Compile options of every kernel function. The fast-math flags are LLVM's that keep IEEE
# special values: fused multiply-add ("contract"), reassociated sums, reciprocals ("arcp")
# and no signed zeros. Not "nnan"/"ninf": the kernel's finiteness checks and NaN rows need
# them honoured. About 15 % off the integration (r2, n=4, 2D, 1,000 x 1,000: 0.370 -> 0.316 s;
# benchmarks/RESULTS.md).
JIT_OPTIONS = "error_model='numpy', fastmath={'contract', 'reassoc', 'arcp', 'nsz'}"
TARGET = KernelTarget(name="cpu", imports="import numba\nimport numpy as np",
                      device_jit=f"numba.njit({JIT_OPTIONS})",
                      entry_jit=f"numba.njit(nogil=True, cache=True, {JIT_OPTIONS})",
                      entry=integrate_range)


def run(law: Law, dim: int, inputs: tuple, outputs: tuple, settings: tuple,
        on_done: Callable[[int], None] | None = None) -> None:
    """Integrate every system on all Numba threads.

    Args:
        law, dim: select the compiled kernel.
        inputs: (pos0, vel0, q, m, pair_i, pair_j, wd, wg) as in the module docstring.
        outputs: (states, acc, steps, failed), filled in place.
        settings: (dt, nt, keep_every, softening, rtol, atol, max_substeps).
        on_done: called with the number of systems of each finished block (progress).
    """
    kernel = compiled_kernel(law, dim, TARGET, lambda entry: entry(0, 0, *inputs, *outputs, *settings))
    n_sims = len(inputs[0])
    threads = numba.config.NUMBA_NUM_THREADS
    block = max(1, min(MAX_BLOCK, math.ceil(n_sims / (threads * BLOCKS_PER_THREAD))))
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        futures = {pool.submit(kernel, lo, min(lo + block, n_sims), *inputs, *outputs, *settings):
                   min(block, n_sims - lo) for lo in range(0, n_sims, block)}
        for future in as_completed(futures):
            future.result()
            if on_done is not None:
                on_done(futures[future])
    finally:
        # On an error or Ctrl-C, blocks not started are dropped; running ones end (a block is short).
        pool.shutdown(wait=True, cancel_futures=True)
