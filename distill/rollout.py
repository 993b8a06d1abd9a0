"""Rollouts: the true law, the discovered law and the network integrated far past the training data.

In:  the true `Law`, the discovered one (`physical.discovered_law`, or None), the network's
     accelerations as a callable x [G, n, F] -> a [G, n, dim] (or None), dim, n, softening,
     the training trajectories' length `train_horizon` and their sampling interval dt.
Out: `rollout` -> (`schema.Rollout`, `schema.RolloutCurves`): from ROLLOUT_SIMS initial
     conditions drawn as the test set's are (`nbody.initial`), over HORIZON_FACTOR x the
     training horizon, recorded at POINTS + 1 times:
       (a)  the true law and (b) the discovered law by the project's integrator
            (`nbody.integrate`, "auto": the compiled kernels, adaptive Dormand-Prince);
       (c)  the network's accelerations stepped by velocity Verlet at step dt, and
       (a') the true law stepped the same way.
     Position error: median over simulations and particles of |x - x_true|, x_true being (a)
     for (b) and (a'), and (a') for (c): the network is judged against the true law under
     the same stepper, so that the stepper's own error (that of (a') against (a), reported
     beside it) is not blamed on the network. Energy drift:
     the median over simulations of |E(t) - E(0)| / |E(0)|, E the true law's total energy
     (`nbody.laws.energy`), where the law has a potential. A trajectory that blows up has
     error and drift inf.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from nbody import state
from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate, resolve_integrator
from nbody.laws import Law, accelerations, energy

from .schema import Rollout, RolloutCurves

ROLLOUT_SIMS = 20
HORIZON_FACTOR = 10
POINTS = 100
MAX_SUBSTEPS = 20_000   # adaptive steps per recorded interval before a trajectory counts as failed

Accel = Callable[[np.ndarray], np.ndarray]


def verlet(accel: Accel, pos: np.ndarray, vel: np.ndarray, q: np.ndarray, m: np.ndarray, dt: float,
           steps: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Velocity Verlet (kick-drift-kick; a velocity-dependent force reads the half-step velocity).

    Args:
        accel: states x [S, n, F] -> accelerations [S, n, dim].
        pos, vel: [S, n, dim]; q, m: [S, n]; dt: step; steps: how many.
        every: record every `every` steps (the start included).
    Returns:
        (pos, vel) [S, steps // every + 1, n, dim].
    """
    a = accel(state.pack(pos, vel, q, m))
    out_pos, out_vel = [pos], [vel]
    with np.errstate(all="ignore"):
        for step in range(1, steps + 1):
            half = vel + 0.5 * dt * a
            pos = pos + dt * half
            a = np.asarray(accel(state.pack(pos, half, q, m)), dtype=np.float64)
            vel = half + 0.5 * dt * a
            if step % every == 0:
                out_pos.append(pos)
                out_vel.append(vel)
    return np.stack(out_pos, axis=1), np.stack(out_vel, axis=1)


def _integrated(law: Law, pos, vel, q, m, softening: float, interval: float, integrator: str):
    """(pos, vel) [S, POINTS + 1, n, dim] of `law` by `nbody.integrate` (NaN after a failure)."""
    S, n, dim = pos.shape
    cfg = SimConfig(law=law.name, n=n, dim=dim, n_sims=S, nt=POINTS + 1, dt=interval, softening=softening,
                    integrator=integrator, max_substeps=MAX_SUBSTEPS)
    result = integrate(cfg, pos, vel, q, m)
    return result.pos, result.vel


def _error(pos: np.ndarray | None, truth: np.ndarray) -> np.ndarray:
    """Median over simulations and particles of |x - x_true|, [T]; inf where not finite; NaN without pos."""
    if pos is None:
        return np.full(truth.shape[1], np.nan)
    dist = np.sqrt(np.sum((pos - truth) ** 2, axis=-1))                # [S, T, n]
    dist = np.where(np.isfinite(dist), dist, np.inf)
    return np.median(dist.transpose(1, 0, 2).reshape(truth.shape[1], -1), axis=1)


def _drift(law: Law, traj, q, m, softening: float, T: int) -> np.ndarray:
    """Median over simulations of |E(t) - E(0)| / |E(0)|, [T]; NaN without a potential or trajectory."""
    if traj is None or not law.conservative:
        return np.full(T, np.nan)
    pos, vel = traj
    with np.errstate(all="ignore"):
        e = energy(law, pos, vel, q[:, None], m[:, None], softening)    # [S, T]
        rel = np.abs(e - e[:, :1]) / np.abs(e[:, :1])
    return np.median(np.where(np.isfinite(rel), rel, np.inf), axis=0)


def _final(curve: np.ndarray) -> float | None:
    return None if np.isnan(curve[-1]) else float(curve[-1])


def _largest(curve: np.ndarray) -> float | None:
    return None if np.all(np.isnan(curve)) else float(np.nanmax(curve))


def rollout(law: Law, found: Law | None, network: Accel | None, dim: int, n: int, softening: float,
            train_horizon: float, dt: float, rng: np.random.Generator,
            integrator: str = "auto") -> tuple[Rollout, RolloutCurves]:
    """Integrate the truth, the discovered law and the network from the same initial conditions.

    Args:
        law: the true law; found: the discovered law (registered), None to skip (b).
        network: accelerations of the network, None to skip (c).
        dim, n, softening: the physics of the training data.
        train_horizon: length in time of the training trajectories; dt: their sampling interval.
        rng: draws the initial conditions.
        integrator: `SimConfig.integrator` of (a) and (b).
    Returns:
        (record, curves).
    """
    pos, vel, q, m = initial_conditions(law, n, dim, ROLLOUT_SIMS, rng)
    every = max(1, int(round(HORIZON_FACTOR * train_horizon / dt / POINTS)))
    interval = every * dt
    truth = _integrated(law, pos, vel, q, m, softening, interval, integrator)
    symbolic = None if found is None else _integrated(found, pos, vel, q, m, softening, interval, integrator)

    def true_accel(x: np.ndarray) -> np.ndarray:
        return accelerations(law, state.pos(x, dim), state.vel(x, dim), state.charge(x, dim), state.mass(x, dim),
                             softening)
    stepper = verlet(true_accel, pos, vel, q, m, dt, every * POINTS, every)
    net = None if network is None else verlet(network, pos, vel, q, m, dt, every * POINTS, every)
    T = POINTS + 1
    curves = RolloutCurves(
        t=np.arange(T) * interval,
        err_symbolic=_error(None if symbolic is None else symbolic[0], truth[0]),
        err_network=_error(None if net is None else net[0], stepper[0]),
        err_stepper=_error(stepper[0], truth[0]),
        energy_true=_drift(law, truth, q, m, softening, T), energy_symbolic=_drift(law, symbolic, q, m, softening, T),
        energy_network=_drift(law, net, q, m, softening, T), energy_stepper=_drift(law, stepper, q, m, softening, T))
    record = Rollout(n_sims=ROLLOUT_SIMS, horizon=float(curves.t[-1]), train_horizon=float(train_horizon),
                     dt=float(dt), integrator=resolve_integrator(integrator),
                     err_symbolic=_final(curves.err_symbolic), err_network=_final(curves.err_network),
                     err_stepper=_final(curves.err_stepper), drift_true=_largest(curves.energy_true),
                     drift_symbolic=_largest(curves.energy_symbolic), drift_network=_largest(curves.energy_network),
                     drift_stepper=_largest(curves.energy_stepper))
    return record, curves
