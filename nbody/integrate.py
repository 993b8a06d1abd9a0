"""Integrate many N-body systems with one integrator: the single entry point for simulation.

In:  a `SimConfig` (law, dim, n, output spacing dt and count nt, softening eps, integrator
     and its tolerances); float64 initial states pos, vel [S, n, dim], charges q and
     masses m [S, n].
Out: `integrate`: an `IntegrationResult` with pos, vel and the accelerations acc at those
     states [S, nt, n, dim] float64 at t_k = k*dt (k = 0..nt-1), n_steps [S] (accepted
     adaptive steps) and failed [S] (bool). `integrate_into`: the same written as dataset
     rows, every keep_every-th output, into the caller's arrays (float32 memory maps for
     `nbody.dataset`), so nothing is copied or converted afterwards.

Integrators (registered in `nbody.integrators`, whose `integrator_names()` are what
`SimConfig.integrator`, hence the CLI's --integrator, accepts): "cpu" (Numba, blocks of
simulations on parallel threads), "cuda" (Numba CUDA, one thread per simulation), both
compiled once per machine and law (`nbody.kernel_build`), and "reference" (NumPy, slow, the
specification), all three running the same Dormand–Prince 5(4) algorithm
(`nbody.integrator_core`); and "auto", for which `resolve_integrator`, the one place that
decides, picks "cuda" or "cpu".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from plumbing.errors import InputError

from . import state
from .config import SimConfig
from .initial import initial_conditions
from .integrators import get_integrator
from .laws import get_law


@dataclass(frozen=True)
class IntegrationResult:
    """Trajectories of S systems.

    Attributes:
        pos, vel: [S, nt, n, dim] float64 (views into one state array); NaN after the
            failure point of a failed system.
        acc: [S, nt, n, dim] float64 accelerations at (pos, vel), as `nbody.laws.accelerations`
            defines them (the integrator's own right-hand side at the outputs).
        n_steps: [S] int64 accepted integrator steps per system.
        failed: [S] bool, True when a system needed more than `max_substeps` steps in one
            output interval (or its step size underflowed, or a value was not finite).
    """

    pos: np.ndarray
    vel: np.ndarray
    acc: np.ndarray
    n_steps: np.ndarray
    failed: np.ndarray


def _cuda_simulated() -> bool:
    from numba import config  # deferred: Numba is heavy
    return bool(config.ENABLE_CUDASIM)


def real_gpu_available() -> bool:
    """True when a real CUDA GPU is usable (never under NUMBA_ENABLE_CUDASIM=1)."""
    if _cuda_simulated():
        return False
    from numba import cuda  # deferred: Numba is heavy, and CUDA may be absent
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install means "no usable GPU", not a crash
        return False


def resolve_integrator(name: str) -> str:
    """Map an integrator request to a registered integrator that runs ("cpu", "cuda", "reference").

    "auto" picks "cuda" only when a real GPU is usable (never under the CUDA simulator,
    NUMBA_ENABLE_CUDASIM=1), else "cpu". An explicit request of an integrator that needs a GPU
    is honoured on a real GPU or under the simulator (that is how the CUDA kernel is tested on CPU).

    Raises:
        InputError: unknown name, or "cuda" with neither a GPU nor the simulator.
    """
    if get_integrator(name).run is None:
        return "cuda" if real_gpu_available() else "cpu"
    if get_integrator(name).needs_gpu and not (_cuda_simulated() or real_gpu_available()):
        raise InputError(f"integrator {name!r} requested but no CUDA GPU is available "
                         "(use integrator 'cpu' or 'auto')")
    return name


def _check_inputs(cfg: SimConfig, pos, vel, q, m):
    """(pos, vel, q, m) as C-ordered float64 arrays, or an InputError naming what is wrong."""
    pos, vel, q, m = (_real_array(name, a) for name, a in (("pos", pos), ("vel", vel), ("q", q), ("m", m)))
    if pos.ndim != 3 or pos.shape[1:] != (cfg.resolved_n, cfg.dim):
        raise InputError(f"pos must be [S, n={cfg.resolved_n}, dim={cfg.dim}] as the config says, "
                         f"got shape {pos.shape}")
    if vel.shape != pos.shape or q.shape != pos.shape[:2] or m.shape != pos.shape[:2]:
        raise InputError(f"shape mismatch: pos {pos.shape}, vel {vel.shape}, q {q.shape}, m {m.shape}")
    if not all(np.isfinite(a).all() for a in (pos, vel, q, m)):
        raise InputError("initial states contain NaN or inf")
    if not (m > 0).all():
        raise InputError("masses must be positive")
    return pos, vel, q, m


def _real_array(name: str, value) -> np.ndarray:
    """`value` as a C-ordered float64 array; InputError unless it holds real numbers (an integer
    or float dtype: no complex, bool, text or object values, nothing ragged)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{name} is not an array of numbers ({str(exc).splitlines()[0]})") from None
    if array.dtype.kind not in "iuf":
        raise InputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def integrate_into(cfg: SimConfig, pos: np.ndarray, vel: np.ndarray, q: np.ndarray, m: np.ndarray,
                   states: np.ndarray, acc: np.ndarray, *, keep_every: int = 1,
                   on_done: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate S systems straight into the caller's output arrays (the datasets' rows).

    Args:
        cfg: the `SimConfig`, read as by `integrate`.
        pos, vel: [S, n, dim] initial positions and velocities; q, m: [S, n].
        states: [S, T, n, 2*dim+2] C-ordered float32 or float64 array (a memory map is fine),
            T = len(range(0, cfg.nt, keep_every)): row k gets (pos, vel, q, m) at t = k*keep_every*dt
            (`nbody.state` layout); a failed system's rows from its failure on are NaN.
        acc: [S, T, n, dim], same dtype: the accelerations at those states.
        keep_every: store every keep_every-th output.
        on_done: called with a count of systems as they finish (progress).
    Returns:
        (n_steps [S] int64 accepted steps, failed [S] bool: past max_substeps, step size
        underflow, or a stored value not finite in the outputs' dtype).
    Raises:
        InputError: as `integrate`, or output arrays of another shape or dtype.
    """
    pos, vel, q, m = _check_inputs(cfg, pos, vel, q, m)
    S, n, dim = pos.shape
    n_kept = len(range(0, cfg.nt, keep_every))
    for name, array, width in (("states", states, state.n_features(dim)), ("acc", acc, dim)):
        if array.shape != (S, n_kept, n, width) or array.dtype not in (np.float32, np.float64) \
                or not array.flags.c_contiguous or array.dtype != states.dtype:
            raise InputError(f"{name} must be a C-ordered float32 or float64 array [{S}, {n_kept}, {n}, {width}] "
                             f"of the same dtype as states, got {array.dtype} {array.shape}")
    integrator = get_integrator(resolve_integrator(cfg.integrator))
    steps = np.zeros(S, dtype=np.int64)
    failed = np.zeros(S, dtype=np.bool_)
    settings = (float(cfg.resolved_dt), int(cfg.nt), int(keep_every), float(cfg.softening), float(cfg.rtol),
                float(cfg.atol), int(cfg.max_substeps))
    integrator.run(get_law(cfg.law), (pos, vel, q, m), (states, acc, steps, failed), settings, cfg.official_quirks,
                   on_done)
    return steps, failed


def integrate(cfg: SimConfig, pos: np.ndarray, vel: np.ndarray, q: np.ndarray, m: np.ndarray) -> IntegrationResult:
    """Integrate S independent systems of the kind `cfg` describes from their initial states.

    Args:
        cfg: the `SimConfig`. Read here: law (its pair law, damping, gravity), dim and
            resolved_n (the arrays' shape), resolved_dt (outputs at t_k = k*dt exactly,
            k = 0..nt-1, t_0 = the initial state), nt, softening (eps in r' = r + eps),
            rtol and atol (local error tolerances of the adaptive step control),
            max_substeps (attempted steps allowed per output interval before `failed`),
            official_quirks (the official code's damping/gravity node weights) and
            integrator ("auto", "cpu", "cuda" or "reference", see `resolve_integrator`).
            The dataset fields (n_sims, split, seed, ...) are not used.
        pos, vel: [S, n, dim] initial positions and velocities.
        q, m: [S, n] charges and (positive) masses.
    Returns:
        IntegrationResult (pos, vel, acc [S, nt, n, dim] float64, n_steps [S], failed [S]).
    Raises:
        InputError: arrays of another shape than `cfg` says, not real numbers (complex, text,
            object), not finite, or masses <= 0; an integrator that cannot run here.
    """
    pos, vel, q, m = _check_inputs(cfg, pos, vel, q, m)
    S, n, dim = pos.shape
    states = np.empty((S, cfg.nt, n, state.n_features(dim)))
    acc = np.empty((S, cfg.nt, n, dim))
    steps, failed = integrate_into(cfg, pos, vel, q, m, states, acc)
    return IntegrationResult(state.pos(states, dim), state.vel(states, dim), acc, steps, failed)


def warm_kernels(laws: list[str], dims: tuple[int, ...] = (2, 3), integrator: str = "auto") -> list[str]:
    """Compile, or load from the disk cache, the kernel of every (law, dim) in this process.

    In:  registered law names, dims, and the integrator to warm ("auto" resolves as
         `resolve_integrator` does; "reference" has nothing to compile).
    Out: the "law dim" labels warmed, in order. Each one integrates a single system for one
         output step, which is what makes `nbody.kernel_build` compile the kernel and write
         it to the cache; a later process then starts integrating without compiling.
    """
    done = []
    for name in laws:
        law = get_law(name)
        for dim in dims:
            cfg = SimConfig(law=name, dim=dim, n_sims=1, nt=2, integrator=integrator)
            ics = initial_conditions(law, cfg.resolved_n, dim, 1, np.random.default_rng(0))
            integrate(cfg, *ics)
            done.append(f"{name} {dim}D")
    return done
