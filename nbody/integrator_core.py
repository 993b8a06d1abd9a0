"""The per-simulation integrator, written once and compiled for every Numba target (CPU, CUDA).

In:  nothing at import; `nbody.kernel_build` copies the source of `CORE_FUNCTIONS` into a
     generated module per (law, dim, target), whose header binds the two free names the
     core uses: `DIM` (2 or 3, a compile-time constant) and `radial(r, q1, q2, m1, m2)`,
     the law's radial force, plus the constants below.
Out: there, `integrate_one`, compiled, which integrates ONE system:

    integrate_one(pos0 [n, DIM], vel0 [n, DIM], q [n], m [n], pair_i, pair_j [P] int64,
                  wd, wg [n], out_states [T, n, 2*DIM+2], out_acc [T, n, DIM],
                  work [WORK_ROWS, 2*n*DIM], dt, nt, keep_every, softening, rtol, atol,
                  max_substeps) -> (n_steps, failed)

The particle count n, the pairs and the node weights are run-time values, so one
compiled kernel serves every n and topology (compile time does not grow with n). The
outputs are the stored dataset rows: out_states[k] = (pos, vel, q, m) per particle
(`nbody.state` layout) and out_acc[k] the accelerations at output k*keep_every, k < T, in
the arrays' own dtype (float32 for datasets, float64 for `nbody.integrate.integrate`).
out_acc receives the accelerations at the stored states for free: with FSAL the first
stage derivative of the next step, f(y(t_k)), is already at hand at every output.

The method: Dormand–Prince 5(4) ("DOPRI5", the scheme behind JAX's odeint the paper
used) with local extrapolation, FSAL, and the standard step-size control
h_new = h * clip(0.9 * err^(-1/5), 0.2, 5) on the RMS error
err = sqrt(mean((e_i / (atol + rtol * max(|y_i|, |y_new_i|)))^2)), all in float64.

Output times are t_k = k * dt exactly, k = 0..nt-1 (the official code's
`linspace(0, dt*nt, nt)` spaces them dt*nt/(nt-1) instead; we keep dt, the step the
paper quotes). Each output interval is split into ceil(remaining / h) equal steps, so
steps land exactly on t_k without sliver steps, and the proposed h carries over between
intervals. A simulation is marked `failed` (and its remaining outputs set to NaN) when
one interval needs more than `max_substeps` attempted steps, the step size underflows
(below float resolution at the interval end t_k, so also in the first interval), or a
stored value is not finite in the output dtype (a float64 beyond float32 range, say);
it is never silently inaccurate as odeint is past `mxstep`.

Why DOPRI5 at rtol = atol = 1e-9 (measured on 2 CPU cores, n=4, 2D, 1,000 steps):
  * speed: at the paper's dt the controller already takes only ~1.1 steps per output
    interval on average (1.95 for discontinuous), so the cost sits near its floor of one
    step per output; the paper-scale sets (10,000 sims x 1,000 steps) take 3.3-3.8 s
    (spring, r2, charge; quiet machine, benchmarks/RESULTS.md), against a 20 s target.
    Loosening to 1e-7 saves only ~10% of the steps (one step per output remains the
    floor), so a cheaper scheme per step could gain at most that little; a higher-order
    pair (DOP853, 12 stages) costs more per step with no steps to save.
  * accuracy: relative energy drift |E(T)-E(0)| / (K(0) + |U(0)|) over 1,000 steps has
    medians 1e-13..1e-9 and maxima <= 4e-7 over 2,000 sims for spring, r1, r2, charge and
    superposition; 2e-6 median (1.3e-5 max) for discontinuous, whose force jump the
    error control must locate. At 1e-7 the discontinuous drift rises to 2e-4 median,
    above the tests' 1e-4 bound. Softened close encounters (accelerations ~1e4) are
    resolved by local step refinement (up to ~40 steps per interval), where a fixed-step
    or symplectic scheme would need that small step everywhere.

The state y [2*n*dim] is (positions, velocities), particle-major; its derivative is
(velocities, accelerations) with accelerations exactly as `nbody.laws.accelerations`
defines them: pair forces f(r')*(x_i - x_j)/r over the law's pairs i < j, applied with
Newton's third law, plus damping -c*wd[i]*v_i and gravity -g*wg[i]*m_i*y_hat, all over m_i.
"""
from __future__ import annotations

import math

# Dormand & Prince (1980) coefficients. A: stage weights (the stage times are not needed:
# the system is autonomous); the last row is the 5th-order solution B, which makes the last
# stage's derivative the next step's first (FSAL); E = B - B_hat, the embedded 4th-order
# error estimate. Shared with nbody.reference so both use identical numbers.
A = ((),
     (1 / 5,),
     (3 / 40, 9 / 40),
     (44 / 45, -56 / 15, 32 / 9),
     (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
     (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
     (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
ORDER = 5
SAFETY, FAC_MIN, FAC_MAX = 0.9, 0.2, 5.0


def step_factor(err: float) -> float:
    """Next step size over this one: clip(0.9 err^(-1/5), 0.2, 5); 0.2 for a NaN or huge err.

    Plain Python shared by the reference and (compiled) the kernels. Written with
    comparisons, not min/max, which Numba's built-in CUDA target fails to compile.
    """
    if not err < 1e300:
        return FAC_MIN
    if err == 0.0:
        return FAC_MAX
    fac = SAFETY * err ** (-1.0 / ORDER)
    if fac > FAC_MAX:
        return FAC_MAX
    if fac < FAC_MIN:
        return FAC_MIN
    return fac


# Rows of the scratch array: y, trial state, the seven stage derivatives k1..k7, and 1/m.
WORK_ROWS = 10


def deriv(y, q, m, inv_m, softening, pair_i, pair_j, wd, wg, dy):
    """dy = (v, a(x, v)) for the state y = (x, v) [2*n*DIM]."""
    n = q.shape[0]
    nd = n * DIM
    for k in range(nd):
        dy[k] = y[nd + k]
        dy[nd + k] = 0.0
    for p in range(pair_i.shape[0]):
        i = pair_i[p]
        j = pair_j[p]
        r2 = 0.0
        for d in range(DIM):
            dx = y[i * DIM + d] - y[j * DIM + d]
            r2 += dx * dx
        r = math.sqrt(r2)
        if r > 0.0:
            # Force on i along (x_i - x_j)/r; j feels the opposite (third law).
            s = radial(r + softening, q[i], q[j], m[i], m[j]) / r
            si = s * inv_m[i]
            sj = s * inv_m[j]
            for d in range(DIM):
                dx = y[i * DIM + d] - y[j * DIM + d]
                dy[nd + i * DIM + d] += si * dx
                dy[nd + j * DIM + d] -= sj * dx
    # Damping -wd[i] v_i / m_i and gravity -wg[i] along y (weights pre-scaled by the law's
    # coefficients; all zero for a law without them).
    for i in range(n):
        if wd[i] != 0.0:
            for d in range(DIM):
                dy[nd + i * DIM + d] -= wd[i] * y[nd + i * DIM + d] * inv_m[i]
        if wg[i] != 0.0:
            dy[nd + i * DIM + 1] -= wg[i]


def store(y, dy, q, m, out_states, out_acc, k):
    """Row k of the outputs from the state y and its derivative dy; False if a stored value
    is not finite in the outputs' dtype."""
    n = q.shape[0]
    nd = n * DIM
    finite = True
    for i in range(n):
        for d in range(DIM):
            out_states[k, i, d] = y[i * DIM + d]
            out_states[k, i, DIM + d] = y[nd + i * DIM + d]
            out_acc[k, i, d] = dy[nd + i * DIM + d]
            finite = (finite and math.isfinite(out_states[k, i, d]) and math.isfinite(out_states[k, i, DIM + d])
                      and math.isfinite(out_acc[k, i, d]))
        out_states[k, i, 2 * DIM] = q[i]
        out_states[k, i, 2 * DIM + 1] = m[i]
    return finite


def fill_nan(out_states, out_acc, k0):
    """Rows k0.. of the outputs set to NaN (q and m kept): after a failure."""
    nan = math.nan
    for k in range(k0, out_states.shape[0]):
        for i in range(out_states.shape[1]):
            for d in range(DIM):
                out_states[k, i, d] = nan
                out_states[k, i, DIM + d] = nan
                out_acc[k, i, d] = nan
            out_states[k, i, 2 * DIM] = out_states[0, i, 2 * DIM]
            out_states[k, i, 2 * DIM + 1] = out_states[0, i, 2 * DIM + 1]


def integrate_one(pos0, vel0, q, m, pair_i, pair_j, wd, wg, out_states, out_acc, work, dt, nt, keep_every,
                  softening, rtol, atol, max_substeps):
    """Integrate one system, storing every keep_every-th output; returns (accepted steps, failed)."""
    a21 = A[1][0]
    a31, a32 = A[2]
    a41, a42, a43 = A[3]
    a51, a52, a53, a54 = A[4]
    a61, a62, a63, a64, a65 = A[5]
    a71, _, a73, a74, a75, a76 = A[6]
    e1, _, e3, e4, e5, e6, e7 = E
    n = q.shape[0]
    nd = n * DIM
    ny = 2 * nd
    y = work[0]
    yt = work[1]
    k1 = work[2]
    k2 = work[3]
    k3 = work[4]
    k4 = work[5]
    k5 = work[6]
    k6 = work[7]
    k7 = work[8]
    inv_m = work[9]
    for i in range(n):
        inv_m[i] = 1.0 / m[i]
        for d in range(DIM):
            y[i * DIM + d] = pos0[i, d]
            y[nd + i * DIM + d] = vel0[i, d]
    deriv(y, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k1)
    t = 0.0
    h = dt
    n_steps = 0
    failed = False
    kout = 0                        # the output being integrated to (output 0: the initial state)
    while kout < nt and not failed:
        t_end = kout * dt
        attempts = 0
        while t < t_end and not failed:
            if attempts >= max_substeps:
                failed = True
                break
            attempts += 1
            remaining = t_end - t
            n_sub = math.ceil(remaining / h)
            hs = remaining / n_sub
            for c in range(ny):
                yt[c] = y[c] + hs * a21 * k1[c]
            deriv(yt, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k2)
            for c in range(ny):
                yt[c] = y[c] + hs * (a31 * k1[c] + a32 * k2[c])
            deriv(yt, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k3)
            for c in range(ny):
                yt[c] = y[c] + hs * (a41 * k1[c] + a42 * k2[c] + a43 * k3[c])
            deriv(yt, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k4)
            for c in range(ny):
                yt[c] = y[c] + hs * (a51 * k1[c] + a52 * k2[c] + a53 * k3[c] + a54 * k4[c])
            deriv(yt, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k5)
            for c in range(ny):
                yt[c] = y[c] + hs * (a61 * k1[c] + a62 * k2[c] + a63 * k3[c] + a64 * k4[c] + a65 * k5[c])
            deriv(yt, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k6)
            for c in range(ny):
                yt[c] = y[c] + hs * (a71 * k1[c] + a73 * k3[c] + a74 * k4[c] + a75 * k5[c] + a76 * k6[c])
            deriv(yt, q, m, inv_m, softening, pair_i, pair_j, wd, wg, k7)
            acc = 0.0
            for c in range(ny):
                e = hs * (e1 * k1[c] + e3 * k3[c] + e4 * k4[c] + e5 * k5[c] + e6 * k6[c] + e7 * k7[c])
                size = abs(y[c])
                if abs(yt[c]) > size:
                    size = abs(yt[c])
                sc = atol + rtol * size
                acc += (e / sc) * (e / sc)
            err = math.sqrt(acc / ny)
            if err <= 1.0:
                n_steps += 1
                t = t_end if n_sub == 1 else t + hs
                for c in range(ny):
                    y[c] = yt[c]
                    k1[c] = k7[c]
            h = hs * step_factor(err)
            if t_end + h == t_end:
                failed = True       # the step size underflowed: give up, do not stall
        if not failed and kout % keep_every == 0:
            failed = not store(y, k1, q, m, out_states, out_acc, kout // keep_every)
        if not failed:
            kout += 1
    if failed:
        fill_nan(out_states, out_acc, (kout + keep_every - 1) // keep_every)
    return n_steps, failed


# What a generated kernel module holds, in this order (each compiled for its target).
CORE_FUNCTIONS = (step_factor, deriv, store, fill_nan, integrate_one)
# Module constants the core functions read; written into the generated module's header.
CORE_CONSTANTS = ("A", "E", "ORDER", "SAFETY", "FAC_MIN", "FAC_MAX", "WORK_ROWS")
