"""What a dataset will cost, known before anything is allocated.

In:  a `SimConfig` and the output folder it will be written to.
Out: `estimate(cfg)`: bytes on disk of the stored dataset (plus the temporary copies made
     when failed simulations are dropped and, for split="time", the full-length arrays the
     time windows are cut from) and peak working memory of generation (initial conditions of
     every simulation, the pair list, the pruning percentiles, and for the NumPy reference
     integrator one float64 chunk; the compiled kernels write straight into the
     memory-mapped files); `check_resources` refuses
     (InputError, one line stating the estimate) a dataset that cannot fit in the memory
     available now (`available_memory`: the machine's, a cgroup's and an address-space
     limit's) or on the free disk at the output. `chunk_sims` is the chunk size that
     `nbody.dataset` integrates at once.

Pure integer arithmetic: an absurd size (n=100000, n_sims=10**9) is priced, not tried.
"""
from __future__ import annotations

import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import SimConfig
from .errors import InputError
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


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate now, or None when nothing says.

    The least of: MemAvailable (/proc/meminfo); the cgroup's limit less its usage (v2
    memory.max / memory.current, v1 memory.limit_in_bytes / memory.usage_in_bytes); and the
    address-space limit (RLIMIT_AS, `ulimit -v`) less the address space already mapped
    (VmSize), since under such a limit an allocation fails long before memory runs out.
    """
    found = []
    meminfo = _proc_field("/proc/meminfo", "MemAvailable:")
    if meminfo is not None:
        found.append(meminfo)
    else:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    for limit, usage in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes",
                                                             "memory/memory.usage_in_bytes")):
        try:
            limit_text = Path("/sys/fs/cgroup", limit).read_text().strip()
            used_text = Path("/sys/fs/cgroup", usage).read_text().strip()
        except OSError:
            continue
        if limit_text.isdigit() and used_text.isdigit() and int(limit_text) < 1 << 60:   # v1: "no limit" is ~2**63
            found.append(int(limit_text) - int(used_text))
    address_space = resource.getrlimit(resource.RLIMIT_AS)[0]
    mapped = _proc_field("/proc/self/status", "VmSize:")
    if address_space != resource.RLIM_INFINITY:
        found.append(address_space - (mapped or 0))
    return max(0, min(found)) if found else None


def _proc_field(path: str, name: str) -> int | None:
    """A `NAME: value kB` line of a /proc file, in bytes (None when absent or unreadable)."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith(name):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_disk(path: Path) -> int:
    """Free bytes on the file system that will hold `path` (its nearest existing ancestor)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_resources(cfg: SimConfig, out_dir: Path) -> Estimate:
    """Refuse (InputError) a dataset whose estimate exceeds available memory or free disk."""
    est = estimate(cfg)
    memory = available_memory()
    if memory is not None and est.memory > memory:
        biggest = ", ".join(f"{name} {_gib(size)}" for name, size in
                            sorted(est.parts.items(), key=lambda item: -item[1])[:2])
        raise InputError(f"this dataset needs about {_gib(est.memory)} of memory ({biggest}) but only "
                         f"{_gib(memory)} is available; lower n, n_sims or nt")
    disk = free_disk(out_dir)
    if est.disk > disk:
        raise InputError(f"this dataset needs about {_gib(est.disk)} of disk but only {_gib(disk)} is free "
                         f"at {Path(out_dir).absolute().parent}; lower n_sims, nt or raise keep_every")
    return est


def _gib(size: int) -> str:
    return f"{min(size, 10 ** 300) / GIB:.3g} GiB"          # capped: a float cannot hold more
