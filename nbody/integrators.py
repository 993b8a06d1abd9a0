"""The registry of integrators: what `SimConfig.integrator` may name, and what runs each one.

In:  an integrator name (`SimConfig.integrator`, run.py's --integrator).
Out: `integrator_names()`, the accepted names in registration order; `get_integrator(name)`,
     its `Integrator`, whose `run(law, initial, outputs, settings, official_quirks, on_done)`
     integrates S systems from initial = (pos, vel, q, m) (float64 [S, n, dim], [S, n]) and
     writes outputs = (states [S, T, n, 2*dim+2], acc [S, T, n, dim], steps [S] int64,
     failed [S] bool) in place, with settings = (dt, nt, keep_every, softening, rtol, atol,
     max_substeps).
Built in: "cpu" (Numba, blocks of simulations on parallel threads), "cuda" (Numba CUDA, one
thread per simulation; `needs_gpu`), both compiled once per machine and law
(`nbody.kernel_build`), "reference" (NumPy, slow, the specification), all running the same
Dormand–Prince 5(4) (`nbody.integrator_core`), and "auto", which runs nothing itself:
`nbody.integrate.resolve_integrator`, the one place that decides, picks "cuda" or "cpu".
The kernels' modules are imported when their integrator runs (Numba is heavy, and CUDA may be absent).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from plumbing.registry import Registry

from . import state
from .laws import Law, external_weights, pair_list
from .reference import integrate_reference

# (law, initial, outputs, settings, official_quirks, on_done) -> None, outputs filled in place
Runner = Callable[[Law, tuple, tuple, tuple, bool, "Callable[[int], None] | None"], None]


@dataclass(frozen=True)
class Integrator:
    """One integrator (module docstring).

    Attributes:
        name: what `SimConfig.integrator` calls it.
        run: the runner; None for "auto", which `resolve_integrator` maps to another.
        needs_gpu: runs only on a CUDA GPU (or under NUMBA_ENABLE_CUDASIM=1).
    """

    name: str
    run: Runner | None
    needs_gpu: bool = False


def physics_arrays(law: Law, n: int, official_quirks: bool) -> tuple[np.ndarray, ...]:
    """What the kernels read of the law besides its force: (pair_i, pair_j) [P] int64, the
    interacting pairs i < j (`nbody.laws.pair_list`), and the node weights (wd, wg) [n] float64
    already scaled by the law's damping and gravity (`nbody.laws.external_weights`)."""
    pairs = pair_list(law, n)
    wd, wg = external_weights(law, n, official_quirks)
    return (np.ascontiguousarray(pairs[:, 0], dtype=np.int64), np.ascontiguousarray(pairs[:, 1], dtype=np.int64),
            np.ascontiguousarray(law.damping * wd), np.ascontiguousarray(law.gravity * wg))


def _run_reference(law: Law, initial: tuple, outputs: tuple, settings: tuple, official_quirks: bool,
                   on_done: Callable[[int], None] | None) -> None:
    """The NumPy specification, every output step, then every keep_every-th kept."""
    pos, vel, q, m = initial
    states, acc, steps, failed = outputs
    dt, nt, keep_every, softening, rtol, atol, max_substeps = settings
    S, n_kept, n = states.shape[:3]
    ref_pos, ref_vel, ref_acc, steps[:], failed[:] = integrate_reference(
        law, pos, vel, q, m, dt=dt, nt=nt, softening=softening, rtol=rtol, atol=atol, max_substeps=max_substeps,
        official_quirks=official_quirks)
    kept = slice(None, None, keep_every)
    states[:] = state.pack(ref_pos[:, kept], ref_vel[:, kept], np.broadcast_to(q[:, None], (S, n_kept, n)),
                           np.broadcast_to(m[:, None], (S, n_kept, n)))
    acc[:] = ref_acc[:, kept]
    with np.errstate(invalid="ignore"):
        failed |= ~(np.isfinite(states).all(axis=(1, 2, 3)) & np.isfinite(acc).all(axis=(1, 2, 3)))
    if on_done is not None:
        on_done(S)


def _run_kernels(kernels, law: Law, initial: tuple, outputs: tuple, settings: tuple, official_quirks: bool,
                 on_done: Callable[[int], None] | None) -> None:
    """A compiled kernel module's `run` (`nbody.kernels_cpu`, `nbody.kernels_cuda`)."""
    S, n, dim = initial[0].shape
    kernels.run(law, dim, (*initial, *physics_arrays(law, n, official_quirks)), outputs, settings, on_done)


def _run_cpu(*args) -> None:
    from . import kernels_cpu  # deferred: Numba is heavy
    _run_kernels(kernels_cpu, *args)


def _run_cuda(*args) -> None:
    from . import kernels_cuda  # deferred: Numba is heavy, and CUDA may be absent
    _run_kernels(kernels_cuda, *args)


_INTEGRATORS: Registry[Integrator] = Registry("integrator")


def register_integrator(integrator: Integrator) -> Integrator:
    """Make `integrator` selectable under its name (replacing one of that name); returns it."""
    return _INTEGRATORS.register(integrator.name, integrator)


def integrator_names() -> tuple[str, ...]:
    """The registered integrators' names, in registration order."""
    return _INTEGRATORS.names()


def get_integrator(name: str) -> Integrator:
    """The integrator called `name`; InputError listing the registered ones otherwise."""
    return _INTEGRATORS.get(name)


register_integrator(Integrator("auto", None))
register_integrator(Integrator("cpu", _run_cpu))
register_integrator(Integrator("cuda", _run_cuda, needs_gpu=True))
register_integrator(Integrator("reference", _run_reference))
