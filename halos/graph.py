"""The radius graph of a halo catalogue in a periodic box, built in chunks, and the face mask.

In:  positions [N, 3] in [0, box), the box side, the cutoff radius (50 Mpc/h in the paper).
Out: `HaloGraph`: receiver-major CSR, `indptr` [N+1] int64 and `senders` [E] int32 (for
     receiver i, its neighbours are senders[indptr[i]:indptr[i+1]], ascending): every j != i
     whose minimum-image distance is <= cutoff. Edges run both ways (E is twice the pairs).

Building: scipy's `cKDTree(boxsize=box)` queried for `chunk_size` receivers at a time; each
chunk's neighbour lists become int32 at once, so the peak memory is the final arrays plus one
chunk (215,854 halos with ~71 neighbours: 30M edges = 122 MB of int32 senders), never the
Python lists of all 30M neighbours. `brute_force_graph` is the O(N²) NumPy specification the
tests compare it with. Batches of receivers read their edges with `edges_of`.

Face mask (docs/facts.md §7): halos closer than `cutoff` to a face of the box are left out of
the loss. The graph here is periodic, so their neighbourhoods are complete; the mask is kept
as the paper did (`HaloConfig.face_mask`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from plumbing.errors import InputError


@dataclass(frozen=True, eq=False)
class HaloGraph:
    """Receiver-major CSR radius graph (module docstring)."""

    indptr: np.ndarray
    senders: np.ndarray
    box: float
    cutoff: float

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        return int(self.indptr[-1])

    def degree(self) -> np.ndarray:
        """[N] neighbours of each halo."""
        return np.diff(self.indptr)


def build_graph(pos: np.ndarray, box: float, cutoff: float, chunk_size: int = 10_000, workers: int = 1) -> HaloGraph:
    """Periodic radius graph of `pos`, streamed `chunk_size` receivers at a time.

    Args:
        pos: [N, 3] positions in [0, box).
        box: periodic box side; cutoff: radius (< box / 2, so that one image per pair is meant).
        chunk_size: receivers per tree query.
        workers: threads of each cKDTree query.
    Raises:
        InputError: a cutoff that is not in (0, box / 2) or a bad chunk size.
    """
    if not (0 < cutoff < box / 2):
        raise InputError(f"cutoff must lie in (0, box/2) = (0, {box / 2:g}), got {cutoff!r}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size!r}")
    pos = np.asarray(pos, dtype=np.float64)
    tree = cKDTree(pos, boxsize=box)
    n = len(pos)
    counts = np.zeros(n, dtype=np.int64)
    pieces = []
    for start in range(0, n, chunk_size):
        lists = tree.query_ball_point(pos[start:start + chunk_size], cutoff, return_sorted=True, workers=workers)
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int32, count=int(lengths.sum()))
        receivers = np.repeat(np.arange(start, start + len(lists), dtype=np.int32), lengths)
        keep = flat != receivers                     # a halo is not its own neighbour
        pieces.append(flat[keep])
        counts[start:start + len(lists)] = lengths - 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    senders = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return HaloGraph(indptr, senders, float(box), float(cutoff))


def brute_force_graph(pos: np.ndarray, box: float, cutoff: float) -> HaloGraph:
    """The same graph from all N² minimum-image distances (the specification; small N only)."""
    d = displacement(pos[:, None, :], pos[None, :, :], box)          # [N, N, 3]
    near = np.sqrt(np.sum(d * d, axis=-1)) <= cutoff
    np.fill_diagonal(near, False)
    recv, send = np.nonzero(near)                                      # row-major: receiver-major
    indptr = np.zeros(len(pos) + 1, dtype=np.int64)
    np.cumsum(np.bincount(recv, minlength=len(pos)), out=indptr[1:])
    return HaloGraph(indptr, send.astype(np.int32), float(box), float(cutoff))


def displacement(pos_recv: np.ndarray, pos_send: np.ndarray, box: float) -> np.ndarray:
    """Minimum-image vector from receiver to sender, pos_send - pos_recv wrapped into [-box/2, box/2]."""
    d = pos_send - pos_recv
    return d - box * np.round(d / box)


def edges_of(graph: HaloGraph, receivers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The edges into `receivers` [B]: (local receiver index [e] into `receivers`, sender [e] int64)."""
    receivers = np.asarray(receivers, dtype=np.int64)
    starts = graph.indptr[receivers]
    counts = graph.indptr[receivers + 1] - starts
    local = np.repeat(np.arange(len(receivers), dtype=np.int64), counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return local, graph.senders[np.repeat(starts, counts) + offsets].astype(np.int64)


def interior(pos: np.ndarray, box: float, cutoff: float) -> np.ndarray:
    """[N] True for halos at least `cutoff` from every face of the box (the paper's loss mask)."""
    return np.all((pos >= cutoff) & (pos <= box - cutoff), axis=1)
