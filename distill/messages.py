"""SR input columns of the edges, and the messages.npz content of a distillation.

In:  receiver and sender features [..., F] (F = 2*dim + 2, layout of `nbody.state`); messages
     [N, msg_dim] recorded on an `gnn.messages.EdgeSample` and their `MessageReport`.
Out: SR inputs [N, dim + 6] with columns `edge_input_names(dim)`:
     dx, dy, (dz), r, rs, m1, m2, q1, q2, where "1" is the RECEIVER and "2" the SENDER,
     dx = x_receiver - x_sender (the official demo's sign; paper App. C writes x2 - x1),
     r = |dx| and rs = r + softening, the law's distance r' (paper App. B). The exact pair
     force f(r')·dx/r needs both: an equation in r alone errs by orders of magnitude on
     the close pairs the test MAE includes (r1: 1/r against 1/r' = 1/(r + 0.01)), and the
     SR fit rows (r >= min_r) cannot reveal the 0.01 for it to be fitted as a constant.
     `message_arrays`: the messages.npz content (`schema.MessageArrays`).
The messages themselves are read (significance, sparsity, robust R² against the force) by
`gnn.messages`, which the message history of training shares.
"""
from __future__ import annotations

import numpy as np

from gnn.messages import EdgeSample, MessageReport
from nbody import state
from nbody.laws import Law, pair_force, pair_list
from plumbing.errors import InputError

from .schema import MessageArrays


def edge_input_names(dim: int) -> list[str]:
    """SR input columns of the edge model: dx, dy, (dz), r, rs, m1, m2, q1, q2."""
    return [f"d{a}" for a in "xyz"[:dim]] + ["r", "rs", "m1", "m2", "q1", "q2"]


def edge_inputs(x_recv: np.ndarray, x_send: np.ndarray, dim: int, softening: float) -> np.ndarray:
    """SR inputs of edges from receiver and sender features.

    Args:
        x_recv, x_send: [..., F] node features of receiver ("1") and sender ("2").
        dim: spatial dimension.
        softening: eps of the law's distance rs = r + eps.
    Returns:
        [..., dim + 6] float64 in the order of `edge_input_names(dim)`.
    """
    d = state.pos(x_recv, dim).astype(np.float64) - state.pos(x_send, dim)
    r = np.sqrt(np.sum(d * d, axis=-1, keepdims=True))
    cols = [state.mass(x_recv, dim), state.mass(x_send, dim), state.charge(x_recv, dim), state.charge(x_send, dim)]
    return np.concatenate([d, r, r + softening] + [c[..., None].astype(np.float64) for c in cols], axis=-1)


def message_arrays(messages: np.ndarray, sample: EdgeSample, report: MessageReport, dim: int,
                   softening: float) -> MessageArrays:
    """The messages.npz content (`schema.MessageArrays`) of messages recorded on `sample`."""
    cols = edge_inputs(sample.x_recv, sample.x_send, dim, softening)
    top = messages[:, report.top]
    return MessageArrays(
        inputs={name: cols[:, i] for i, name in enumerate(edge_input_names(dim))},
        messages=messages, scores=report.scores, top=report.top,
        messages_top_std=(top - top.mean(0)) / np.where(top.std(0) > 0, top.std(0), 1.0),
        fitted_force=report.fitted_force, fitted_accel=report.fitted_accel,
        force=report.force, accel=report.accel,
        r2_force=np.array(report.r2_force), r2_accel=np.array(report.r2_accel),
        affine_force=report.affine_force, affine_accel=report.affine_accel)
