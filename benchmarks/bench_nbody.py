"""Simulation throughput of the nbody integrators (pytest-benchmark; not part of CI).

Measures simulation-steps per second (systems x output steps / wall second, recorded in
`extra_info["sim_steps_per_s"]`) for:
  * the Numba CPU kernel, n in {4, 8} x dim in {2, 3}, spring law;
  * the same on the CUDA kernel, skipped without a real GPU (never timed under the
    CUDA simulator, whose timings are meaningless);
  * the NumPy reference on a small case, for the fast/slow speed ratio;
  * the paper-scale sets: 10,000 sims x 1,000 steps, n=4, 2D, spring / r2 / charge.
Every kernel is compiled (called once) before the timed rounds; CUDA runs synchronise
inside `integrate`, before results are copied back.

Run:  .venv/bin/python -m pytest benchmarks/bench_nbody.py --benchmark-only
"""
import dataclasses

import numpy as np
import pytest

from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate, real_gpu_available
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
