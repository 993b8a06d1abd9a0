"""Simulation throughput of the nbody integrators (pytest-benchmark; not part of CI).

Measures simulation-steps per second (systems x output steps / wall second, recorded in
`extra_info["sim_steps_per_s"]`) for:
  * the Numba CPU kernel, n in {4, 8} x dim in {2, 3}, spring law;
  * the CPU kernel against n, from 4 to 1000 (r2, 2D; one compiled kernel for every n);
  * the same on the CUDA kernel (n from 4 to 300), skipped without a real GPU (never timed
    under the CUDA simulator, whose timings are meaningless);
  * the NumPy reference on a small case, for the fast/slow speed ratio;
  * the paper-scale sets: 10,000 sims x 1,000 steps, n=4, 2D, spring / r2 / charge;
  * `generate_dataset` end to end against the kernel writing the same rows, same run;
  * the kernel's start in a fresh process: compiling (empty cache) and loading (warm cache).
Every kernel is compiled (called once) before the timed rounds; CUDA runs synchronise
inside `integrate`, before results are copied back.

Run:  .venv/bin/python -m pytest benchmarks/bench_nbody.py --benchmark-only
"""
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nbody.config import SimConfig
from nbody.dataset import generate_dataset
from nbody.initial import initial_conditions
from nbody.integrate import integrate, integrate_into, real_gpu_available
from nbody.laws import get_law

SETTINGS = dict(softening=0.01, rtol=1e-9, atol=1e-9, max_substeps=100_000)
needs_gpu = pytest.mark.skipif(not real_gpu_available(), reason="no real CUDA GPU (or CUDA simulator on)")


def _bench(benchmark, law_name, n, dim, n_sims, nt, integrator, rounds):
    law = get_law(law_name)
    pos, vel, q, m = initial_conditions(law, n, dim, n_sims, np.random.default_rng(0))
    cfg = SimConfig(law=law_name, n=n, dim=dim, n_sims=n_sims, nt=nt, integrator=integrator, **SETTINGS)
    integrate(dataclasses.replace(cfg, nt=3), pos[:2], vel[:2], q[:2], m[:2])   # compile outside the timing
    result = benchmark.pedantic(integrate, args=(cfg, pos, vel, q, m), rounds=rounds, iterations=1,
                                warmup_rounds=0)
    assert not result.failed.any()
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(law=law_name, n=n, dim=dim, n_sims=n_sims, nt=nt, integrator=integrator,
                                seconds=seconds, sim_steps_per_s=n_sims * nt / seconds,
                                mean_steps_per_output=float(result.n_steps.mean() / (nt - 1)))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("n", [4, 8])
def test_cpu_throughput(benchmark, n, dim):
    _bench(benchmark, "spring", n, dim, n_sims=2000, nt=500, integrator="cpu", rounds=3)


@needs_gpu
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("n", [4, 8])
def test_cuda_throughput(benchmark, n, dim):
    _bench(benchmark, "spring", n, dim, n_sims=20_000, nt=500, integrator="cuda", rounds=3)


def test_reference_throughput(benchmark):
    """Compare with test_cpu_throughput[4-2] (same law, n, dim) for the speed ratio."""
    _bench(benchmark, "spring", 4, 2, n_sims=4, nt=100, integrator="reference", rounds=1)


@pytest.mark.parametrize("integrator", ["cpu", pytest.param("cuda", marks=needs_gpu)])
@pytest.mark.parametrize("law_name", ["spring", "r2", "charge"])
def test_paper_scale(benchmark, law_name, integrator):
    """The paper's dataset size (App. B): 10,000 simulations x 1,000 steps, n=4, 2D."""
    _bench(benchmark, law_name, 4, 2, n_sims=10_000, nt=1000, integrator=integrator, rounds=1)


# (n, sims, steps): sizes that keep each case to seconds on 2 cores (the work grows ~n^3:
# n^2/2 pairs, and more adaptive steps per output as the systems get denser).
N_SCALING = [(4, 2000, 500), (8, 1000, 300), (16, 200, 200), (32, 50, 100), (64, 16, 50), (128, 8, 20),
             (300, 2, 10), (1000, 2, 3)]


@pytest.mark.parametrize("n,n_sims,nt", N_SCALING)
def test_cpu_throughput_vs_n(benchmark, n, n_sims, nt):
    """One compiled r2 kernel (2D) for every n: sim-steps/s and pair forces/s against n."""
    _bench_vs_n(benchmark, n, n_sims, nt, "cpu")


def _bench_vs_n(benchmark, n, n_sims, nt, integrator):
    _bench(benchmark, "r2", n, 2, n_sims=n_sims, nt=nt, integrator=integrator, rounds=1)
    info = benchmark.extra_info
    # Accepted steps x 6 new stages (FSAL) x pairs; rejected steps not counted.
    info["pair_forces_per_s"] = (info["mean_steps_per_output"] * (nt - 1) * n_sims * 6 * n * (n - 1) / 2
                                 / info["seconds"])


# (n, sims, steps) for the CUDA kernel, one thread per simulation: enough systems to fill the
# GPU's 132 multiprocessors where n is small, and steps that keep a case to seconds.
N_SCALING_CUDA = [(4, 20_000, 500), (16, 10_000, 100), (64, 4000, 20), (128, 2000, 10), (300, 1000, 3)]


@needs_gpu
@pytest.mark.parametrize("n,n_sims,nt", N_SCALING_CUDA)
def test_cuda_throughput_vs_n(benchmark, n, n_sims, nt):
    """test_cpu_throughput_vs_n on the CUDA kernel (r2, 2D)."""
    _bench_vs_n(benchmark, n, n_sims, nt, "cuda")


def test_dataset_end_to_end(benchmark):
    """`generate_dataset` (r2, n=4, 2D, 1,000 + 250 sims x 1,000 steps: .npy, meta, plot) against
    the kernel writing the same float32 rows into memory, alternating in one run."""
    cfg = SimConfig(law="r2", n=4, dim=2, n_sims=1000, nt=1000, integrator="cpu", **SETTINGS)
    total = cfg.n_sims + cfg.resolved_n_test_sims
    ics = initial_conditions(get_law("r2"), 4, 2, total, np.random.default_rng(0))
    states = np.empty((total, cfg.nt, 4, 6), np.float32)
    acc = np.empty((total, cfg.nt, 4, 2), np.float32)
    integrate_into(cfg, *(a[:2] for a in ics), states[:2], acc[:2])          # compile outside the timing
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"symdistill-bench-{os.getpid()}"
    kernel, dataset = [], []
    try:
        for r in range(3):
            start = time.perf_counter()
            integrate_into(cfg, *ics, states, acc)
            kernel.append(time.perf_counter() - start)
            start = time.perf_counter()
            generate_dataset(cfg, out / str(r), progress=False)
            dataset.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    benchmark.pedantic(lambda: None, rounds=1)
    k, d = statistics.median(kernel), statistics.median(dataset)
    benchmark.extra_info.update(kernel_sim_steps_per_s=total * cfg.nt / k, dataset_sim_steps_per_s=total * cfg.nt / d,
                                dataset_over_kernel=k / d, kernel_seconds=kernel, dataset_seconds=dataset,
                                load_average=os.getloadavg())


_START = """
import json, sys, time
import numpy as np
import nbody.kernels_cpu as kernels_cpu
from nbody.config import SimConfig
from nbody.dataset import generate_dataset
compiled_kernel, ready = kernels_cpu.compiled_kernel, []
def timed(*args):
    kernel = compiled_kernel(*args)
    ready.append(time.perf_counter())
    return kernel
kernels_cpu.compiled_kernel = timed
cfg = SimConfig(law="r2", n=4, dim=2, n_sims=20, nt=50, integrator="cpu")
start = time.perf_counter()
generate_dataset(cfg, sys.argv[1], progress=False)
print(json.dumps({"ready": ready[0] - start, "seconds": time.perf_counter() - start}))
"""


def test_kernel_start_in_a_new_process(benchmark, tmp_path):
    """A small `generate_dataset` (r2, 20 + 5 sims x 50 steps: integration takes ~1 ms) in fresh
    processes: the first on an empty kernel cache compiles, the next ones load it. `ready` is
    the time from the call to the kernel ready to integrate (Numba's first-use initialisation
    and the kernel compiled or loaded), `seconds` the whole call (plot and files included);
    imports (numpy, numba, nbody) are outside both."""
    env = {**os.environ, "SYMDISTILL_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    runs = []
    for k in range(4):
        proc = subprocess.run([sys.executable, "-c", _START, str(tmp_path / f"d{k}")], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    benchmark.pedantic(lambda: None, rounds=1)
    benchmark.extra_info.update(cold_ready=runs[0]["ready"], cold_seconds=runs[0]["seconds"],
                                warm_ready=statistics.median(r["ready"] for r in runs[1:]),
                                warm_seconds=statistics.median(r["seconds"] for r in runs[1:]),
                                runs=runs, load_average=os.getloadavg())
