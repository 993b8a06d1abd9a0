"""The sweep: every law x dim x strategy x seed as an independent run, executed in parallel.

In:  a preset name and flag values (as for one run), the grid's lists, an output folder;
     a job function that is importable (so it can be sent to another process).
Out: `sweep_jobs` -> [(run_dir, RunConfig, data_dir)], runs OUT/{law}-{dim}d-{strategy}-s{seed}
     sharing one dataset OUT/data/{law}-{dim}d-s{seed} per law x dim x seed, which the
     first job to take its `dataset_lock` creates; `execute` calls the job function on every
     job in a local pool of spawned processes (each with `--threads` torch threads) and
     yields the results in job order. A cluster runs the same jobs: cluster.py.
Imports no torch (a pool worker sets its torch thread count itself).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Iterator

from plumbing.errors import InputError
from runconfig import DEFAULT_THREADS, RunConfig, config_from_values

EXECUTORS = ("local", "submitit")

Job = tuple[Path, RunConfig, Path]


def grid_list(flag: str, text: str, kind: type = str) -> list:
    """The value `text` of grid flag `flag` as a list of `kind` ("2,3" -> [2, 3]); empty items are skipped."""
    try:
        return [kind(v) for v in text.split(",") if v]
    except ValueError:
        raise InputError(f"{flag} takes a comma-separated list of {kind.__name__}, got {text!r}") from None


def sweep_jobs(preset_name: str, values: dict, laws, dims, strategies, seeds, out: Path) -> list[Job]:
    """(run_dir, RunConfig, data_dir) for every law x dim x strategy x seed.

    Each job's config is built like a single run's: the preset with its per-law settings,
    then `values` (the flags), then the job's law, dim, strategy and seed (every stage).
    Every config is built, hence validated, here: a bad value fails before any job starts.
    """
    jobs = []
    for law in laws:
        for dim in dims:
            for seed in seeds:
                data_dir = out / "data" / f"{law}-{dim}d-s{seed}"
                for strategy in strategies:
                    job = {**values, "law": law, "dim": dim, "strategy": strategy,
                           **{key: seed for key in ("seed", "sim:seed", "train:seed", "distill:seed")}}
                    jobs.append((out / f"{law}-{dim}d-{strategy}-s{seed}", config_from_values(preset_name, job),
                                 data_dir))
    return jobs


def dataset_lock(data_dir: Path) -> Path:
    """The folder a job locks while it creates, or checks, the dataset `data_dir` that it
    shares with the sweep's other strategies (OUT/data/.{name}.lock; it stays, empty)."""
    return data_dir.with_name(f".{data_dir.name}.lock")


def execute(fn: Callable[[Job], str], jobs: list[Job], workers: int = 1,
            threads: int | None = None) -> Iterator[str]:
    """fn(job) for every job, `workers` at a time in a local pool of spawned processes, each
    with `threads` torch threads; yields the results in job order.

    Args:
        fn: a module-level function (pickled by name into the workers).
        jobs: from `sweep_jobs`.
        workers: jobs at a time.
        threads: torch threads per worker (`set_threads`; None: DEFAULT_THREADS, as one run's).
    """
    import concurrent.futures as cf
    import multiprocessing as mp
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        yield from pool.map(functools.partial(with_threads, fn, threads), jobs)


def with_threads(fn: Callable[[Job], str], threads: int | None, job: Job) -> str:
    """fn(job) with torch limited to `threads` CPU threads (run in a pool worker or a cluster job)."""
    set_threads(threads)
    return fn(job)


def set_threads(threads: int | None) -> None:
    """Limit torch in this process to `threads` CPU threads (None: runconfig.DEFAULT_THREADS,
    where that default comes from)."""
    import torch
    torch.set_num_threads(threads or DEFAULT_THREADS)
