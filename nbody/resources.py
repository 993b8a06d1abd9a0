"""What a dataset will cost, known before anything is allocated.

In:  a `SimConfig` and the output folder it will be written to.
Out: `estimate(cfg)`: bytes on disk of the stored dataset (plus the temporary copies made
     when failed simulations are dropped and, for split="time", the full-length arrays the
     time windows are cut from) and peak working memory of generation (initial conditions of
     every simulation, the pair list, the pruning percentiles, and for the NumPy reference
     integrator one float64 chunk; the compiled kernels write straight into the
     memory-mapped files); `check_resources` refuses
     (InputError, one line stating the estimate) a dataset that cannot fit in the memory
     available now (`plumbing.resources.available_memory`: the machine's, a cgroup's and an address-space
     limit's) or on the free disk at the output. `chunk_sims` is the chunk size that
     `nbody.dataset` integrates at once.

Pure integer arithmetic: an absurd size (n=100000, n_sims=10**9) is priced, not tried.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plumbing.errors import InputError
from plumbing.resources import available_memory, free_disk, gib

from .config import SimConfig
from .laws import get_law

# float64 bytes of reference-integrator output per chunk (bounds its peak memory whatever
# n_sims is); the kernels integrate the same chunks (progress, cancellation points).
CHUNK_BYTES = 1 << 28
GIB = 1 << 30


@dataclass(frozen=True)
class Estimate:
    """Bytes a dataset needs.

    Attributes:
        disk: the stored dataset (states, accelerations, masks), plus the copy made when
            failed simulations shrink the largest file.
        memory: peak working memory of generation, the sum of `parts`.
        parts: memory by use ("initial conditions", "integrator chunk", "pair list", ...).
    """

    disk: int
    memory: int
    parts: dict


def chunk_sims(n: int, dim: int, nt: int) -> int:
    """Simulations integrated at once: their float64 pos, vel, acc fill about CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (24 * nt * n * dim))


def estimate(cfg: SimConfig) -> Estimate:
    """Disk and peak memory of generating `cfg` (see the module docstring)."""
    n, dim, nt = cfg.resolved_n, cfg.dim, cfg.nt
    n_kept = len(range(0, nt, cfg.keep_every))
    features = 2 * dim + 2
    sims = cfg.n_sims + (cfg.resolved_n_test_sims if cfg.split == "seed" else 0)
    per_graph = n * (features + dim) * 4                       # float32 states + accel
    largest_file = cfg.n_sims * n_kept * n * features * 4
    disk = sims * n_kept * (per_graph + (1 if cfg.prunes else 0)) + largest_file
    if cfg.split == "time":
        disk += cfg.n_sims * n_kept * per_graph               # the full-length arrays, cut into windows
    chunk = min(chunk_sims(n, dim, nt), max(cfg.n_sims, 1))
    pairs = n - 1 if get_law(cfg.law).topology == "chain" else n * (n - 1) // 2
    parts = {
        "initial conditions": sims * n * features * 8,
        "pair list": pairs * 2 * 8 * 3,                        # triu_indices, stack, astype
    }
    if cfg.integrator == "reference":
        parts["integrator chunk"] = chunk * nt * n * dim * 24 + chunk * n_kept * n * features * 16
        parts["pair forces"] = chunk * pairs * dim * 8 * 8     # NumPy temporaries per pair
    if cfg.prunes:
        parts["pruning"] = cfg.n_sims * n_kept * n * dim * 8 * 2
    return Estimate(disk=disk, memory=sum(parts.values()), parts=parts)


def check_resources(cfg: SimConfig, out_dir: Path) -> Estimate:
    """Refuse (InputError) a dataset whose estimate exceeds available memory or free disk."""
    est = estimate(cfg)
    memory = available_memory()
    if memory is not None and est.memory > memory:
        biggest = ", ".join(f"{name} {gib(size)}" for name, size in
                            sorted(est.parts.items(), key=lambda item: -item[1])[:2])
        raise InputError(f"this dataset needs about {gib(est.memory)} of memory ({biggest}) but only "
                         f"{gib(memory)} is available; lower n, n_sims or nt")
    disk = free_disk(out_dir)
    if est.disk > disk:
        raise InputError(f"this dataset needs about {gib(est.disk)} of disk but only {gib(disk)} is free "
                         f"at {Path(out_dir).absolute().parent}; lower n_sims, nt or raise keep_every")
    return est
