"""How much memory and disk this process may still use, known before anything is allocated.

In:  nothing (memory), a path (disk).
Out: `available_memory()`: bytes this process can still allocate now, the least of the
     machine's, a cgroup's and an address-space limit's (None when nothing says);
     `free_disk(path)`: free bytes on the file system that will hold `path`; `gib(size)`:
     a byte count as "1.5 GiB" for one-line errors. The pre-checks of every stage (a dataset's
     size, a model's, a number of mock halos) compare their estimates with these.
"""
from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

GIB = 1 << 30


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


def gib(size: int) -> str:
    """`size` bytes as GiB with three significant digits (capped: a float cannot hold more)."""
    return f"{min(size, 10 ** 300) / GIB:.3g} GiB"
