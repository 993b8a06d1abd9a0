"""The Numba CPU and CUDA kernels against the NumPy reference integrator.

The CUDA kernel runs under Numba's CUDA simulator (tests/conftest.py), with few
threads per block so a handful of simulations spans several blocks.
"""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from nbody import integrators, kernels_cuda
from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate, integrate_into, resolve_integrator
from nbody.laws import accelerations, get_law
from plumbing.errors import InputError

# (law, n, dim, official_quirks): damping with the official node weights, and the string
# chain whose last node feels no gravity under the quirks, cover the non-pairwise terms.
CASES = [("spring", 4, 2, False), ("damped", 4, 3, True), ("string", 6, 2, True), ("charge", 3, 3, False)]
SETTINGS = dict(softening=0.01, rtol=1e-9, atol=1e-9, max_substeps=10_000)


def _systems(law, n, dim, n_sims, seed=0):
    return initial_conditions(law, n, dim, n_sims, np.random.default_rng(seed))


def _sim(name, n, dim, **kw) -> SimConfig:
    """What `integrate` reads: law `name`, n particles in dim dimensions, SETTINGS unless `kw` says otherwise."""
    return SimConfig(law=name, n=n, dim=dim, **{**SETTINGS, **kw})


@pytest.mark.parametrize("name,n,dim,quirks", CASES)
def test_cpu_kernel_matches_reference(name, n, dim, quirks):
    law = get_law(name)
    ics = _systems(law, n, dim, 3)
    cfg = _sim(name, n, dim, nt=15, official_quirks=quirks)
    cpu = integrate(dataclasses.replace(cfg, integrator="cpu"), *ics)
    ref = integrate(dataclasses.replace(cfg, integrator="reference"), *ics)
    np.testing.assert_array_equal(cpu.n_steps, ref.n_steps)
    np.testing.assert_array_equal(cpu.failed, ref.failed)
    np.testing.assert_allclose(cpu.pos, ref.pos, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(cpu.vel, ref.vel, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(cpu.acc, ref.acc, rtol=1e-9, atol=1e-10)
    assert not np.allclose(cpu.pos[:, -1], cpu.pos[:, 0])   # the systems actually moved
    # The kernel's right-hand side is the NumPy physics, evaluated at its own outputs.
    _, _, q, m = ics
    spec = accelerations(get_law(name), cpu.pos, cpu.vel, q[:, None], m[:, None], SETTINGS["softening"], quirks)
    np.testing.assert_allclose(cpu.acc, spec, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,n,dim,quirks", [CASES[0], CASES[1]])
def test_cuda_kernel_matches_cpu_kernel(name, n, dim, quirks, monkeypatch):
    monkeypatch.setattr(kernels_cuda, "THREADS_PER_BLOCK", 2)
    law = get_law(name)
    ics = _systems(law, n, dim, 5)
    cfg = _sim(name, n, dim, nt=6, official_quirks=quirks)
    cpu = integrate(dataclasses.replace(cfg, integrator="cpu"), *ics)
    gpu = integrate(dataclasses.replace(cfg, integrator="cuda"), *ics)
    np.testing.assert_array_equal(gpu.n_steps, cpu.n_steps)
    np.testing.assert_array_equal(gpu.failed, cpu.failed)
    np.testing.assert_allclose(gpu.pos, cpu.pos, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gpu.vel, cpu.vel, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gpu.acc, cpu.acc, rtol=1e-12, atol=1e-13)


def _into(cfg, ics, keep_every, dtype):
    """integrate_into's rows for the systems `ics`: (states, acc, steps, failed)."""
    S, n, dim = ics[0].shape
    n_kept = len(range(0, cfg.nt, keep_every))
    states = np.full((S, n_kept, n, 2 * dim + 2), -1.0, dtype)
    acc = np.full((S, n_kept, n, dim), -1.0, dtype)
    steps, failed = integrate_into(cfg, *ics, states, acc, keep_every=keep_every)
    return states, acc, steps, failed


@pytest.mark.parametrize("integrator", ["cpu", "reference", "cuda"])
def test_rows_written_in_place_are_the_kept_float32_outputs(integrator, monkeypatch):
    """What datasets store: every 3rd output, (pos, vel, q, m) and acc, cast to float32 once."""
    monkeypatch.setattr(kernels_cuda, "THREADS_PER_BLOCK", 2)
    law = get_law("string")
    ics = _systems(law, 7, 2, 3)
    cfg = _sim("string", 7, 2, nt=10, official_quirks=True, integrator=integrator)
    full = integrate(dataclasses.replace(cfg, integrator="cpu"), *ics)
    states, acc, steps, failed = _into(cfg, ics, 3, np.float32)
    kept = slice(None, None, 3)
    expected = np.concatenate([full.pos[:, kept], full.vel[:, kept],
                               np.broadcast_to(ics[2][:, None, :, None], (3, 4, 7, 1)),
                               np.broadcast_to(ics[3][:, None, :, None], (3, 4, 7, 1))], axis=-1)
    np.testing.assert_array_equal(steps, full.n_steps)
    assert not failed.any()
    if integrator == "reference":
        np.testing.assert_allclose(states, expected.astype(np.float32), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(acc, full.acc[:, kept].astype(np.float32), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(states, expected.astype(np.float32))
        np.testing.assert_array_equal(acc, full.acc[:, kept].astype(np.float32))


@pytest.mark.parametrize("integrator", ["cpu", "cuda"])
def test_many_particles_on_cuda_and_cpu_agree_with_the_reference(integrator, monkeypatch):
    """n = 40 (780 pairs, run-time loops): the kernels against the NumPy reference."""
    monkeypatch.setattr(kernels_cuda, "THREADS_PER_BLOCK", 2)
    law = get_law("r2")
    ics = _systems(law, 40, 3, 3)
    cfg = _sim("r2", 40, 3, nt=3, integrator=integrator)
    fast = integrate(cfg, *ics)
    ref = integrate(dataclasses.replace(cfg, integrator="reference"), *ics)
    np.testing.assert_array_equal(fast.n_steps, ref.n_steps)
    np.testing.assert_allclose(fast.pos, ref.pos, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(fast.acc, ref.acc, rtol=1e-9, atol=1e-10)


def test_a_failure_fills_the_kept_rows_after_it_with_nan():
    cfg = _sim("charge", 2, 2, nt=9, max_substeps=3, integrator="cpu")
    states, acc, _, failed = _into(cfg, _close_and_far_pairs(), 2, np.float32)
    assert failed.tolist() == [True, False]
    assert np.isfinite(states[0, 0]).all() and np.isnan(states[0, 1:, :, :4]).all() and np.isnan(acc[0, 1:]).all()
    np.testing.assert_array_equal(states[0, :, :, 4:], np.broadcast_to(states[0, :1, :, 4:], (5, 2, 2)))
    assert np.isfinite(states[1]).all() and np.isfinite(acc[1]).all()


def test_a_value_beyond_float32_range_marks_the_system_failed():
    """A float64 state that float32 cannot hold would be stored as inf: refused instead."""
    pos = np.array([[[0.0, 0.0], [1e39, 0.0]]])
    cfg = _sim("spring", 2, 2, nt=3, integrator="cpu")
    ics = (pos, np.zeros_like(pos), np.ones((1, 2)), np.ones((1, 2)))
    assert _into(cfg, ics, 1, np.float32)[3].tolist() == [True]
    assert _into(cfg, ics, 1, np.float64)[3].tolist() == [False]


def test_same_seed_gives_identical_bytes():
    law = get_law("spring")
    cfg = _sim("spring", 4, 2, nt=20, integrator="cpu")
    runs = [integrate(cfg, *_systems(law, 4, 2, 16, seed=7)) for _ in range(2)]
    other = integrate(cfg, *_systems(law, 4, 2, 16, seed=8))
    assert runs[0].pos.tobytes() == runs[1].pos.tobytes()
    assert runs[0].vel.tobytes() == runs[1].vel.tobytes()
    assert runs[0].pos.tobytes() != other.pos.tobytes()


def _close_and_far_pairs():
    """Sim 0: light opposite charges 0.05 apart (accelerations ~1e4, a close encounter);
    sim 1: like charges far apart (one step per output interval)."""
    pos = np.array([[[0.0, 0.0], [0.05, 0.0]], [[0.0, 0.0], [5.0, 0.0]]])
    vel = np.zeros_like(pos)
    q = np.array([[1.0, -1.0], [1.0, 1.0]])
    m = np.array([[0.1, 0.1], [1e-3, 1e-3]])
    return pos, vel, q, m


@pytest.mark.parametrize("integrator", ["cpu", "reference"])
def test_failed_flag_when_max_substeps_is_tiny(integrator):
    cfg = _sim("charge", 2, 2, nt=5, integrator=integrator)
    tight = integrate(dataclasses.replace(cfg, max_substeps=3), *_close_and_far_pairs())
    assert tight.failed.tolist() == [True, False]
    assert np.isnan(tight.pos[0, -1]).all() and np.isnan(tight.acc[0, -1]).all()
    assert np.isfinite(tight.pos[1]).all()
    assert np.isfinite(tight.pos[0, 0]).all()                 # the initial state is kept
    loose = integrate(dataclasses.replace(cfg, max_substeps=100_000), *_close_and_far_pairs())
    assert not loose.failed.any()
    assert loose.n_steps[0] > 3 * (cfg.nt - 1)                 # it did need the extra steps


def test_resolve_integrator():
    from numba import config, cuda
    assert resolve_integrator("cpu") == "cpu"
    assert resolve_integrator("reference") == "reference"
    real_gpu = not config.ENABLE_CUDASIM and cuda.is_available()     # the simulator never counts as a GPU
    assert resolve_integrator("auto") == ("cuda" if real_gpu else "cpu")
    assert resolve_integrator("cuda") == "cuda"      # a real GPU, or an explicit request run on the simulator
    with pytest.raises(InputError):
        resolve_integrator("tpu")


def test_every_registered_integrator_is_accepted_and_a_registered_one_runs(monkeypatch):
    monkeypatch.setattr(integrators._INTEGRATORS, "_entries", dict(integrators._INTEGRATORS._entries))
    calls = []

    def via_reference(law, initial, outputs, settings, official_quirks, on_done):
        calls.append(len(initial[0]))
        integrators.get_integrator("reference").run(law, initial, outputs, settings, official_quirks, on_done)
    integrators.register_integrator(integrators.Integrator("mine", via_reference))
    assert integrators.integrator_names() == ("auto", "cpu", "cuda", "reference", "mine")
    for name in integrators.integrator_names():
        assert SimConfig(integrator=name).integrator == name
    cfg = SimConfig(law="spring", n_sims=2, nt=4, integrator="mine")
    ics = initial_conditions(get_law("spring"), cfg.resolved_n, cfg.dim, 2, np.random.default_rng(0))
    mine = integrate(cfg, *ics)
    reference = integrate(dataclasses.replace(cfg, integrator="reference"), *ics)
    assert calls == [2] and np.array_equal(mine.pos, reference.pos)
    with pytest.raises(InputError, match="unknown integrator 'tpu'; choose one of auto, cpu, cuda, reference"):
        SimConfig(integrator="tpu")


def test_bad_inputs_raise_input_error():
    law = get_law("spring")
    pos, vel, q, m = _systems(law, 4, 2, 2)
    cfg = SimConfig(law="spring", n=4, dim=2, dt=0.01, nt=3, integrator="cpu")
    with pytest.raises(InputError):
        integrate(cfg, pos, vel[:, :3], q, m)
    with pytest.raises(InputError):
        integrate(cfg, pos, vel, q, -m)
    with pytest.raises(InputError):
        integrate(dataclasses.replace(cfg, dt=0.0), pos, vel, q, m)
    with pytest.raises(InputError):
        integrate(dataclasses.replace(cfg, n=5), pos, vel, q, m)      # arrays of another size than the config


# The simulator runs the kernel as Python and accepts code the real CUDA target rejects
# (Numba's built-in CUDA target cannot compile min/max of floats, for one). So compile the
# kernel for a real GPU too: NVVM is enough, no device needed. The device-function
# dispatcher asks the current device for its compute capability, so we supply one.
_PTX_SCRIPT = """
import sys, types
import numpy as np
import numba
from numba import cuda
from numba.cuda.cudadrv import nvvm
if not nvvm.is_available():
    sys.exit(77)
import numba.cuda.dispatcher as dispatcher
dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(8, 0))
from nbody import integrators, kernels_cuda
from nbody.integrators import physics_arrays
from nbody.integrator_core import WORK_ROWS
from nbody.kernel_build import load_kernel
from nbody.laws import get_law
for name, n, dim, quirks in [("damped", 4, 3, True), ("string", 6, 2, True)]:
    law = get_law(name)
    kernel = load_kernel(law, dim, kernels_cuda.TARGET)
    arrays = [np.zeros((1, n, dim)), np.zeros((1, n, dim)), np.zeros((1, n)), np.zeros((1, n)),
              *physics_arrays(law, n, quirks), np.zeros((1, 2, n, 2 * dim + 2), np.float32),
              np.zeros((1, 2, n, dim), np.float32), np.zeros(1, np.int64), np.zeros(1, bool),
              np.zeros((WORK_ROWS, 2 * n * dim, 1))]
    sig = tuple(numba.typeof(a) for a in arrays) + (numba.float64, numba.int64, numba.int64, numba.float64,
                                                     numba.float64, numba.float64, numba.int64)
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
    assert ".entry" in ptx
print("compiled")
"""


def test_cuda_kernel_compiles_for_a_real_gpu():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    proc = subprocess.run([sys.executable, "-c", _PTX_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode == 77:
        pytest.skip("NVVM (CUDA compiler library) not available")
    assert proc.returncode == 0 and "compiled" in proc.stdout, proc.stderr[-3000:]


def test_a_numba_cuda_that_cannot_compile_under_this_numpy_is_one_line(monkeypatch):
    """numba-cuda 0.30 registers np.row_stack, which numpy 2.5 removed: seen on a GPU machine."""
    def broken(*args):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    monkeypatch.setattr(kernels_cuda, "compiled_kernel", broken)
    with pytest.raises(InputError, match=r"numpy<2\.5"):
        integrate(_sim("spring", 2, 2, nt=3, integrator="cuda"), *_systems(get_law("spring"), 2, 2, 1))
