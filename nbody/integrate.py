"""Integrate many N-body systems with one integrator: the single entry point for simulation.

In:  a `SimConfig` (law, dim, n, output spacing dt and count nt, softening eps, integrator
     and its tolerances); float64 initial states pos, vel [S, n, dim], charges q and
     masses m [S, n].
Out: `IntegrationResult` with pos, vel and the accelerations acc at those states
     [S, nt, n, dim] float64 at t_k = k*dt (k = 0..nt-1), n_steps [S] (accepted adaptive
     steps) and failed [S] (bool).

Integrators (`INTEGRATORS` holds the names `SimConfig.integrator`, hence the CLI's
--integrator, accepts): "cpu" (Numba, parallel over simulations), "cuda" (Numba CUDA, one
thread per simulation) and "reference" (NumPy, slow, the specification), all three running
the same Dormand–Prince 5(4) algorithm (`nbody.integrator_core`); and "auto", for which
`resolve_integrator`, the one place that decides, picks "cuda" or "cpu".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .laws import get_law

if TYPE_CHECKING:                        # nbody.config imports INTEGRATORS from here
    from .config import SimConfig

INTEGRATORS = ("auto", "cpu", "cuda", "reference")


@dataclass(frozen=True)
class IntegrationResult:
    """Trajectories of S systems.

    Attributes:
        pos, vel: [S, nt, n, dim] float64; NaN after the failure point of a failed system.
        acc: [S, nt, n, dim] float64 accelerations at (pos, vel), as `nbody.laws.accelerations`
            defines them (the integrator's own right-hand side at the outputs).
        n_steps: [S] int64 accepted integrator steps per system.
        failed: [S] bool, True when a system needed more than `max_substeps` steps in one
            output interval (or its step size underflowed).
    """

    pos: np.ndarray
    vel: np.ndarray
    acc: np.ndarray
    n_steps: np.ndarray
    failed: np.ndarray


def _cuda_simulated() -> bool:
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def real_gpu_available() -> bool:
    """True when a real CUDA GPU is usable (never under NUMBA_ENABLE_CUDASIM=1)."""
    if _cuda_simulated():
        return False
    from numba import cuda
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install means "no usable GPU", not a crash
        return False


def resolve_integrator(name: str) -> str:
    """Map an integrator request to "cpu", "cuda" or "reference".

    "auto" picks "cuda" only when a real GPU is usable (never under the CUDA simulator,
    NUMBA_ENABLE_CUDASIM=1), else "cpu". An explicit "cuda" is honoured on a real GPU or
    under the simulator (that is how the CUDA kernel is tested on CPU).

    Raises:
        InputError: unknown name, or "cuda" with neither a GPU nor the simulator.
    """
    if name not in INTEGRATORS:
        raise InputError(f"integrator must be one of {INTEGRATORS}, got {name!r}")
    if name == "auto":
        return "cuda" if real_gpu_available() else "cpu"
    if name == "cuda" and not (_cuda_simulated() or real_gpu_available()):
        raise InputError("integrator 'cuda' requested but no CUDA GPU is available "
                         "(use integrator 'cpu' or 'auto')")
    return name


def _check_inputs(cfg: SimConfig, pos, vel, q, m):
    pos, vel, q, m = (np.ascontiguousarray(a, dtype=np.float64) for a in (pos, vel, q, m))
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
        InputError: arrays of another shape than `cfg` says, not finite, or masses <= 0;
            an integrator that cannot run here.
    """
    pos, vel, q, m = _check_inputs(cfg, pos, vel, q, m)
    which = resolve_integrator(cfg.integrator)
    law = get_law(cfg.law)
    S, n, dim = pos.shape
    args = (float(cfg.resolved_dt), int(cfg.nt), float(cfg.softening), float(cfg.rtol), float(cfg.atol),
            int(cfg.max_substeps))
    if which == "reference":
        from .reference import integrate_reference
        return IntegrationResult(*integrate_reference(
            law, pos, vel, q, m, dt=args[0], nt=args[1], softening=args[2], rtol=args[3],
            atol=args[4], max_substeps=args[5], official_quirks=cfg.official_quirks))
    out_pos = np.empty((S, cfg.nt, n, dim))
    out_vel = np.empty_like(out_pos)
    out_acc = np.empty_like(out_pos)
    steps = np.zeros(S, dtype=np.int64)
    failed = np.zeros(S, dtype=np.bool_)
    if which == "cpu":
        from .kernels_cpu import cpu_kernel
        cpu_kernel(law, n, dim, cfg.official_quirks)(pos, vel, q, m, out_pos, out_vel, out_acc, steps, failed,
                                                     *args)
    else:
        from numba import cuda

        from . import kernels_cuda
        kernel = kernels_cuda.cuda_kernel(law, n, dim, cfg.official_quirks)
        d_in = [cuda.to_device(a) for a in (pos, vel, q, m)]
        d_out = [cuda.device_array_like(a) for a in (out_pos, out_vel, out_acc, steps, failed)]
        tpb = kernels_cuda.THREADS_PER_BLOCK
        kernel[(S + tpb - 1) // tpb, tpb](*d_in, *d_out, *args)
        cuda.synchronize()
        out_pos, out_vel, out_acc, steps, failed = (d.copy_to_host() for d in d_out)
    return IntegrationResult(out_pos, out_vel, out_acc, steps, failed)
