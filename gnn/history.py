"""Messages during training: a fixed sample of held-out edges analysed every few steps.

In:  held-out graphs x [G, n, F] (the val split, else test), the dataset's law and
     softening, and at each recorded step the model's messages on the sample's edges
     (mu and log σ² for a KL model), as NumPy arrays.
Out: `MessageHistory`, one row per recorded step, written as OUT/message_history.npz by
     `save_history` (atomically) and read back by `load_history`. Torch-free.

Each row is `gnn.messages.analyse_messages` on the sample: the significance, the
sparsity (variance share of the top `dim` components) and the robust R² against the true
pair force and against F/m1 are the quantities distill.json reports, measured on the same
edges at every step, which shows when and how the messages become the force law (the
official demo's animation of the messages over epochs; paper Fig. 3 is its last frame).
The edges are drawn once from the training seed, so a resumed run records the same ones.

File versions (`MessageHistory.version`):
    1  the first layout.
`load_history` reads versions up to HISTORY_VERSION; a newer version, a missing array or
an unreadable file is a one-line `InputError`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from plumbing.errors import InputError
from plumbing.io import load_npz, save_npz
from nbody.laws import Law
from plumbing.errors import InputError
from plumbing.io import load_npz, save_npz

from .messages import analyse_messages, pair_targets, sample_edges

HISTORY_FILE = "message_history.npz"
HISTORY_VERSION = 1
# Per-row arrays, stacked over the recorded steps R (the others describe the fixed sample).
ROW_FIELDS = ("step", "seconds", "scores", "top", "sparsity", "r2_force", "r2_accel", "affine_force",
              "affine_accel", "values")


@dataclass(frozen=True, kw_only=True, eq=False)
class MessageHistory:
    """Messages on N fixed edges at R recorded steps.

    Attributes:
        version: layout version (module docstring).
        step: [R] optimiser steps done when the row was recorded (0: the untrained model).
        seconds: [R] wall seconds the row took (model call and analysis).
        scores: [R, k] significance of every component (std, or mean KL for "kl").
        top: [R, dim] the most significant components, most significant first.
        sparsity: [R] variance share of the `top` components (`gnn.messages.sparsity`).
        r2_force, r2_accel: [R, dim] robust R² of each top component against an affine map
            of the true pair force / F/m1.
        affine_force, affine_accel: [R, dim, dim + 1] those maps (raw vector -> standardised
            component: a_1..a_dim, b).
        values: [R, N, dim] float32 the top components' raw values on the edges.
        x_recv, x_send: [N, F] receiver and sender features of the edges.
        force, accel: [N, dim] true pair force on the receiver, and F/m1.
    """

    version: int = HISTORY_VERSION
    step: np.ndarray
    seconds: np.ndarray
    scores: np.ndarray
    top: np.ndarray
    sparsity: np.ndarray
    r2_force: np.ndarray
    r2_accel: np.ndarray
    affine_force: np.ndarray
    affine_accel: np.ndarray
    values: np.ndarray
    x_recv: np.ndarray
    x_send: np.ndarray
    force: np.ndarray
    accel: np.ndarray

    def fitted(self, row: int) -> np.ndarray:
        """[N, dim] the affine map of the true force fitted to each top component of `row`, in
        that component's standardised units."""
        return self.force @ self.affine_force[row, :, :-1].T + self.affine_force[row, :, -1]

    def standardised(self, row: int) -> np.ndarray:
        """[N, dim] the top components of `row` standardised (zero mean, unit std)."""
        v = self.values[row].astype(np.float64)
        std = v.std(axis=0)
        return (v - v.mean(axis=0)) / np.where(std > 0, std, 1.0)


def save_history(folder: str | Path, history: MessageHistory) -> Path:
    """Write folder/message_history.npz (one array per field); returns its path."""
    path = Path(folder) / HISTORY_FILE
    save_npz(path, {f.name: np.asarray(getattr(history, f.name)) for f in dataclasses.fields(history)})
    return path


def load_history(folder: str | Path) -> MessageHistory:
    """Read folder/message_history.npz (any version up to HISTORY_VERSION).

    Raises:
        InputError: missing or unreadable file, a newer version, or missing arrays.
    """
    path = Path(folder) / HISTORY_FILE
    data = load_npz(path)
    version = int(data["version"]) if "version" in data and data["version"].shape == () else None
    if version is None or not 1 <= version <= HISTORY_VERSION:
        raise InputError(f"{path} has layout version {version!r}; this code reads versions 1 to {HISTORY_VERSION}")
    names = [f.name for f in dataclasses.fields(MessageHistory) if f.name != "version"]
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"{path} lacks arrays {', '.join(missing)}")
    rows = {len(data[n]) for n in ROW_FIELDS}
    if len(rows) != 1:
        raise InputError(f"{path}: its per-step arrays differ in length")
    return MessageHistory(version=version, **{n: data[n] for n in names})


class HistoryRecorder:
    """Collects `MessageHistory` rows on one fixed edge sample.

    Args:
        x: [G, n, F] held-out node features to draw the edges from.
        law: the dataset's pair law; softening: its eps.
        n_edges: edges in the sample (drawn with replacement).
        seed: seeds the draw.
    """

    def __init__(self, x: np.ndarray, law: Law, softening: float, n_edges: int, seed: int):
        self.law, self.softening = law, softening
        self.dim = (x.shape[-1] - 2) // 2
        self.sample = sample_edges(x, law, n_edges, np.random.default_rng(seed))
        self.force, self.accel = pair_targets(law, self.sample.x_recv, self.sample.x_send, self.dim, softening)
        self.rows: list[dict[str, np.ndarray]] = []

    @property
    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(x_recv [N, F], x_send [N, F]) float32: what the model is evaluated on."""
        return self.sample.x_recv.astype(np.float32), self.sample.x_send.astype(np.float32)

    def record(self, step: int, edge_stats: Callable[[np.ndarray, np.ndarray], tuple]) -> float:
        """Add the row of the model at `step`.

        Args:
            step: optimiser steps done.
            edge_stats: (x_recv [N, F], x_send [N, F]) float32 -> (messages [N, k], log σ² [N, k]
                or None), the model's message function (`gnn.model.GNN.edge_stats`, as NumPy).
        Returns:
            Wall seconds the row took (model call and analysis), also stored in the row.
        """
        start = time.perf_counter()
        messages, logvar = edge_stats(*self.inputs)
        messages = np.asarray(messages, dtype=np.float64)
        logvar = None if logvar is None else np.asarray(logvar, dtype=np.float64)
        report = analyse_messages(messages, logvar, self.sample, self.law, self.dim, self.softening)
        seconds = time.perf_counter() - start
        self.rows.append({
            "step": np.int64(step), "seconds": np.float64(seconds), "scores": report.scores,
            "top": report.top.astype(np.int64), "sparsity": np.float64(report.sparsity),
            "r2_force": np.array(report.r2_force), "r2_accel": np.array(report.r2_accel),
            "affine_force": report.affine_force, "affine_accel": report.affine_accel,
            "values": messages[:, report.top].astype(np.float32)})
        return seconds

    def resume(self, held: MessageHistory, step: int) -> None:
        """Continue `held` (the file of an interrupted run), keeping its rows up to `step`.

        Raises:
            InputError: `held` was recorded on other edges.
        """
        if held.x_recv.shape != self.sample.x_recv.shape or not (
                np.array_equal(held.x_recv, self.sample.x_recv) and np.array_equal(held.x_send, self.sample.x_send)):
            raise InputError("the message history beside the resume point was recorded on other edges; "
                             "delete it or use another out_dir")
        self.rows = [{name: getattr(held, name)[r] for name in ROW_FIELDS}
                     for r in range(len(held.step)) if held.step[r] <= step]

    def history(self) -> MessageHistory:
        """The rows so far as a `MessageHistory`."""
        return MessageHistory(**{name: np.stack([row[name] for row in self.rows]) for name in ROW_FIELDS},
                              x_recv=self.sample.x_recv, x_send=self.sample.x_send, force=self.force,
                              accel=self.accel)
