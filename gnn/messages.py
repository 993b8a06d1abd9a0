"""Reading the messages of a trained network: edge samples, component significance, sparsity,
and the robust R² of the messages against the true pair force (paper §4.1, docs/facts.md §3.2).

In:  node states x [G, n, F] (F = 2*dim + 2, layout of `nbody.state`), the law's interacting
     pairs, message arrays [N, msg_dim] recorded on sampled edges (plus log-variances for a
     variational strategy, `gnn.strategies.Strategy.variational`).
Out: `EdgeSample`s (receiver "1", sender "2"); the true pair force and F/m1 on them; per
     component significance (std, or mean KL when log-variances are given) and the `dim` most
     significant components; sparsity (variance share of those); `MessageReport` of
     `analyse_messages`. Both the message history of training (`gnn.history`) and the
     distillation stage (`distill.messages`, `distill.pipeline`) read messages this way.

R² procedure (the demo's `linear_transformation_2d` + `percentile_sum`): each significant
component is standardised; an affine map of the true pairwise vector (force, or
acceleration F/m1) is fitted with scipy's Powell minimiser on the squared residuals kept up
to their 90th percentile. R² = 1 - trimmed_mse(fit) / trimmed_mse(best constant), where
trimmed_mse is the mean of the kept squared residuals; the same trimmed statistic in the
denominator makes pure noise score ~0 and an exact affine map 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from nbody import state
from plumbing.errors import InputError
from nbody.laws import Law, pair_force, pair_list

from .strategies import kl_divergence

KEEP_PERCENTILE = 90.0


def directed_edges(law: Law, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed message edges of an n-particle system: both directions of every law pair.

    Returns:
        (receivers [E], senders [E]) int64.
    """
    pairs = pair_list(law, n)
    return (np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]]))


@dataclass(frozen=True)
class EdgeSample:
    """Sampled directed edges: receiver and sender features [N, F] and where they came from."""

    x_recv: np.ndarray
    x_send: np.ndarray
    graph: np.ndarray
    receiver: np.ndarray
    sender: np.ndarray


def sample_edges(x: np.ndarray, law: Law, count: int, rng: np.random.Generator,
                 min_r: float = 0.0) -> EdgeSample:
    """Draw `count` directed edges uniformly (with replacement) from graphs x.

    Args:
        x: node states [G, n, F].
        law: the pair law (its topology defines the edges).
        count: edges wanted.
        rng: random generator.
        min_r: keep only edges whose true distance is >= min_r.
    Returns:
        EdgeSample with N = count edges.
    Raises:
        InputError: fewer than `count` such edges can be found.
    """
    G, n, F = x.shape
    dim = (F - 2) // 2
    recv, send = directed_edges(law, n)
    chosen: list[tuple[np.ndarray, np.ndarray]] = []
    have = 0
    for _ in range(50):
        g = rng.integers(G, size=2 * count)
        e = rng.integers(len(recv), size=2 * count)
        d = state.pos(x[g, recv[e]], dim) - state.pos(x[g, send[e]], dim)
        ok = np.sqrt(np.sum(d.astype(np.float64) ** 2, axis=-1)) >= min_r
        chosen.append((g[ok], e[ok]))
        have += int(ok.sum())
        if have >= count:
            break
    else:
        raise InputError(f"found only {have} edges with r >= min_r={min_r}; lower min_r")
    g = np.concatenate([c[0] for c in chosen])[:count]
    e = np.concatenate([c[1] for c in chosen])[:count]
    return EdgeSample(x[g, recv[e]].astype(np.float64), x[g, send[e]].astype(np.float64), g, recv[e], send[e])


def pair_targets(law: Law, x_recv: np.ndarray, x_send: np.ndarray, dim: int,
                 softening: float) -> tuple[np.ndarray, np.ndarray]:
    """True pairwise force on the receiver and the pairwise acceleration F/m1.

    Returns:
        (force [N, dim], acceleration [N, dim]) float64.
    """
    dpos = state.pos(x_recv, dim).astype(np.float64) - state.pos(x_send, dim)
    m1 = state.mass(x_recv, dim).astype(np.float64)
    force = pair_force(law, dpos, state.charge(x_recv, dim), state.charge(x_send, dim), m1,
                       state.mass(x_send, dim), softening)
    return force, force / m1[:, None]


def significance(messages: np.ndarray, logvar: np.ndarray | None = None) -> np.ndarray:
    """Per-component significance: std over edges, or, when logvar is given, the mean over
    edges of the KL divergence the model was trained with (`gnn.strategies.kl_divergence`).

    Args:
        messages: [N, k] messages (mu for a KL model).
        logvar: [N, k] log σ² of a KL model, else None.
    Returns:
        [k] float64 scores (larger = more significant).
    """
    if logvar is None:
        return np.std(messages, axis=0)
    import torch  # deferred (heavy): std-ranked messages, and reading the outputs, need no torch

    kl = kl_divergence(torch.as_tensor(messages, dtype=torch.float64), torch.as_tensor(logvar, dtype=torch.float64))
    return kl.mean(dim=0).numpy()


def top_components(scores: np.ndarray, d: int) -> np.ndarray:
    """Indices of the d most significant components, most significant first."""
    return np.argsort(-np.asarray(scores), kind="stable")[:d]


def variance_shares(component_std: np.ndarray) -> np.ndarray:
    """Each message component's share of the total message variance, std_k² / Σ_j std_j².

    Args:
        component_std: [k] std of each component over the recorded edges (ddof 0).
    Returns:
        [k] float64 shares summing to 1 (all zeros when every component is constant).
    """
    var = np.square(np.asarray(component_std, dtype=np.float64))
    total = float(var.sum())
    return var / total if total > 0 else np.zeros_like(var)


def sparsity(messages: np.ndarray, top: np.ndarray) -> float:
    """The project's one sparsity: the share of the total message variance carried by the
    components `top` (the sum of their `variance_shares`; distill.json and sparsity.png)."""
    return float(variance_shares(np.std(messages, axis=0))[top].sum())


def _trimmed_mse(residual: np.ndarray) -> float:
    sq = residual * residual
    return float(np.mean(sq[sq <= np.percentile(sq, KEEP_PERCENTILE)]))


def robust_affine_r2(y: np.ndarray, vectors: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Robust R² of the best affine map from `vectors` to the standardised `y`.

    Args:
        y: [N] one message component (standardised here).
        vectors: [N, dim] true pairwise force or acceleration.
    Returns:
        (R², coefficients [dim + 1] (a_1..a_dim, b) mapping raw `vectors` to standardised y,
        fitted standardised values [N]).
    """
    ok = np.all(np.isfinite(vectors), axis=1) & np.isfinite(y)
    std = float(np.std(y[ok]))
    z = (y - np.mean(y[ok])) / (std if std > 0 else 1.0)
    mu, sd = vectors[ok].mean(0), vectors[ok].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    design = np.hstack([(vectors - mu) / sd, np.ones((len(y), 1))])
    A, t = design[ok], z[ok]

    def objective(theta: np.ndarray) -> float:
        return _trimmed_mse(A @ theta - t)

    # Start Powell from least squares rather than the demo's ones: heavy-tailed 1/r² forces
    # make the all-ones start many orders of magnitude off.
    start = np.linalg.lstsq(A, t, rcond=None)[0]
    theta = scipy.optimize.minimize(objective, start, method="Powell").x
    base = scipy.optimize.minimize(lambda b: _trimmed_mse(t - b[0]), [0.0], method="Powell").fun
    r2 = 1.0 - objective(theta) / base if base > 0 else 0.0
    coef = np.append(theta[:-1] / sd, theta[-1] - np.sum(theta[:-1] * mu / sd))
    return float(r2), coef, design @ theta


@dataclass(frozen=True)
class MessageReport:
    """Result of `analyse_messages`; arrays are per edge [N, ...] or per component [k]."""

    scores: np.ndarray
    top: np.ndarray
    sparsity: float
    r2_force: list[float]
    r2_accel: list[float]
    affine_force: np.ndarray
    affine_accel: np.ndarray
    fitted_force: np.ndarray
    fitted_accel: np.ndarray
    force: np.ndarray
    accel: np.ndarray


def analyse_messages(messages: np.ndarray, logvar: np.ndarray | None, sample: EdgeSample, law: Law,
                     dim: int, softening: float) -> MessageReport:
    """Significance, sparsity and robust R² (force and F/m1) of recorded messages.

    Args:
        messages: [N, k] messages (mu for KL) on the edges of `sample`.
        logvar: [N, k] or None.
        sample: the edges the messages were recorded on.
        law, dim, softening: the physics of the dataset.
    Returns:
        MessageReport (top = the `dim` most significant components, most significant first).
    """
    scores = significance(messages, logvar)
    top = top_components(scores, dim)
    force, accel = pair_targets(law, sample.x_recv, sample.x_send, dim, softening)
    fits_f = [robust_affine_r2(messages[:, k], force) for k in top]
    fits_a = [robust_affine_r2(messages[:, k], accel) for k in top]
    return MessageReport(
        scores=scores, top=top, sparsity=sparsity(messages, top),
        r2_force=[f[0] for f in fits_f], r2_accel=[f[0] for f in fits_a],
        affine_force=np.stack([f[1] for f in fits_f]), affine_accel=np.stack([f[1] for f in fits_a]),
        fitted_force=np.stack([f[2] for f in fits_f], 1), fitted_accel=np.stack([f[2] for f in fits_a], 1),
        force=force, accel=accel)
