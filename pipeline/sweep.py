"""The sweep: every law x dim x strategy x seed as an independent run, executed in parallel.

In:  a preset name and flag values (as for one run), the grid's lists, an output folder.
Out: `sweep_jobs` -> [(run_dir, RunConfig, data_dir)], runs OUT/{law}-{dim}d-{strategy}-s{seed}
     sharing one dataset OUT/data/{law}-{dim}d-s{seed} per law x dim x seed, which the
     first job to take its `dataset_lock` creates (`sweep_job`); `run_sweep` runs them all in
     a local pool of spawned processes (`execute`, each with `--threads` torch threads) and
     then the tables, or submits the ones not done to a cluster (`pipeline.cluster`) and
     returns at once. A run a stage refused leaves RUN/failed.json for the tables.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import functools
import multiprocessing
import traceback
from pathlib import Path
from typing import Callable, Iterator

import torch

from analysis.runs import FAILED_FILE
from distill import sr_engines
from plumbing import rundir
from plumbing.errors import InputError
from plumbing.io import mark, save_json

from . import cluster, stages
from .config import DEFAULT_THREADS, Job
from .flags import grid_list
from .presets import config_from_values
from .runfolder import RUN_LAYOUT



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


def run_sweep(out: Path, args: argparse.Namespace) -> None:
    """The sweep's runs into `out` (`sweep_jobs`). Locally: all of them in a process pool
    (`execute`), then the tables. With submitit: submit the runs not yet done, queued or
    running (`cluster.submit`) and return at once."""
    laws, dims = grid_list("--laws", args.laws), grid_list("--dims", args.dims, int)
    strategies, seeds = grid_list("--strategies", args.strategies), grid_list("--seeds", args.seeds, int)
    if args.executor == "submitit":
        res = cluster.resources(args.preset, vars(args))
        out = out.resolve()          # the jobs may start in another working directory
        jobs = sweep_jobs(args.preset, vars(args), laws, dims, strategies, seeds, out)
        where = args.cluster or "slurm"
        submitted, before = cluster.submit(functools.partial(with_threads, sweep_job, res.cpus_per_task),
                                           jobs, out, res, where)
        left = [s.state for s in before if s.name not in submitted]
        print(f"[sweep] {len(jobs)} runs: {len(submitted)} submitted to {where}"
              + (f" (jobs {', '.join(submitted.values())})" if submitted else "")
              + "".join(f", {left.count(state)} {state}" for state in cluster.STATES if state in left))
        print(f"[sweep] job ids and resources: {out / cluster.FOLDER / cluster.RECORD}; "
              f"follow with: run.py sweep --status --out {out}")
        return
    given = cluster.given_flags(vars(args))
    if given:
        raise InputError(f"{', '.join(given)}: for --executor submitit only")
    jobs = sweep_jobs(args.preset, vars(args), laws, dims, strategies, seeds, out)
    print(f"[sweep] {len(jobs)} jobs in a local pool, {args.workers} at a time")
    refused = []
    for job, done in zip(jobs, execute(local_sweep_job, jobs, workers=args.workers, threads=args.threads)):
        print(f"[sweep] done {done}")
        if done != str(job[0]):
            refused.append(done)
    if len(refused) < len(jobs):
        stages.stage_analyse(out)
        for table in ("test_mae", "edge_reconstruction", "node_reconstruction"):
            print("\n" + (out / "analysis" / f"{table}.md").read_text())
    if refused:
        print(f"\n[sweep] {len(refused)} of {len(jobs)} jobs refused or failed:")
        for line in refused:
            print(f"  {line}")
        raise InputError(f"{len(refused)} of {len(jobs)} sweep jobs were refused or failed (listed on stdout); "
                         "the others finished")


def sweep_job(job: Job) -> str:
    """One run of a sweep, in a pool worker or a cluster job: its shared dataset first (the
    first job of that dataset to take its lock simulates it, the others wait and reuse it),
    then every stage. A stage that refuses the run (an InputError, e.g. a model whose
    messages cannot be aligned) or fails (a file system error, or a bug: then with its
    traceback) leaves RUN/failed.json for the tables, which count the run as found nothing,
    and the error is raised again (a cluster job fails); a later sweep tries the run again.
    Returns the run directory."""
    run_dir, cfg, data_dir = job
    with rundir.locked(dataset_lock(data_dir), wait=True):
        stages.stage_simulate(data_dir, cfg.sim, progress=False)
    failed = run_dir / FAILED_FILE
    try:
        with sr_engines.progress(enabled=False):
            stages.run(cfg, run_dir, data_dir, progress=False)
    except Exception as err:
        if run_dir.is_dir() and _ours(run_dir):            # never into a folder that is not ours
            expected = isinstance(err, (InputError, OSError))
            save_json(failed, {"error": str(err) if expected else f"{type(err).__name__}: {err}"}
                      | ({} if expected else {"traceback": traceback.format_exc()}))
        raise
    failed.unlink(missing_ok=True)
    return str(run_dir)


def local_sweep_job(job: Job) -> str:
    """`sweep_job` in the local pool: a refused or failed run (bad input, a file system
    error, out of memory, a bug in one run's stages) is reported and the other runs go on,
    their tables made (a bug raised in a pool worker would otherwise wait for every other
    run and then end the sweep in a traceback, with no tables). Returns the run directory,
    or for a refused or failed run its directory and the reason."""
    try:
        return sweep_job(job)
    except InputError as err:
        return f"{job[0]} (refused: {err})"
    except Exception as err:                              # RUN/failed.json holds a bug's traceback
        return f"{job[0]} (failed: {type(err).__name__}: {err})"


def _ours(run_dir: Path) -> bool:
    """Whether the sweep may record a failure in `run_dir` (`rundir.check_ours`); marks it."""
    try:
        rundir.check_ours(run_dir, RUN_LAYOUT)
    except InputError:
        return False
    mark(run_dir)
    return True


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
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(functools.partial(with_threads, fn, threads), jobs)


def with_threads(fn: Callable[[Job], str], threads: int | None, job: Job) -> str:
    """fn(job) with torch limited to `threads` CPU threads (run in a pool worker or a cluster job)."""
    set_threads(threads)
    return fn(job)


def set_threads(threads: int | None) -> None:
    """Limit torch in this process to `threads` CPU threads (None: `pipeline.config.DEFAULT_THREADS`,
    where that default comes from)."""
    torch.set_num_threads(threads or DEFAULT_THREADS)
