"""Read run directories (and sweeps of them) written by `pipeline` (run.py or `pipeline.run`)
into `Run` records.

In:  RUN/ with config.json (the run's frozen configs: {"preset", "sim": {"law", "dim", ...},
     "model": {"strategy", ...}, "train": {"seed", ...}, "distill": {...}}) and any of
       timings.json            {stage: {seconds, peak_rss_mb}} (`plumbing.rundir.Timings`)
       data/{split}_states.npy [S, T, n, 2*dim+2] (pos, vel, q, m); a sweep keeps its
                               datasets outside the run directories, so sweep runs have none
       train/metrics.json      `gnn.train.train`'s metrics
       train/message_history.npz  messages recorded during training (`gnn.history`)
       distill/                the distill stage's files, read only through `distill.schema`
       failed.json             {"error": message}: a sweep job's stage refused the run (e.g. a
                               model whose messages cannot be aligned); written by `pipeline.sweep`
     A sweep directory holds one such run directory per job (any depth up to 2).
Out: `Run` (frozen): the run's identity from config.json, the train metrics, the
     `DistillResult` and lazily loaded message arrays, predictions and message history. A path that is not a
     run (or sweep) directory, or a stage file that does not read, raises `InputError`; a
     stage that has not run yet never does.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from distill.schema import (RESULT_FILE, DistillResult, MessageArrays, Predictions, load_messages,
                            load_predictions, load_result)
from gnn.history import HISTORY_FILE, MessageHistory, load_history
from plumbing.errors import InputError
from plumbing.io import load_json
from plumbing.rundir import stage_seconds

from .published import sim_key

CONFIG_FILE = "config.json"   # its presence marks a run directory
FAILED_FILE = "failed.json"   # a sweep job's refused stage: {"error": message}


@dataclass(frozen=True, eq=False)  # identity equality: the dict fields are unhashable
class Run:
    """One run directory: identity, stage results and lazily loaded arrays.

    Attributes:
        path: the run directory.
        law, dim, strategy, seed: identity (config.json sim.law, sim.dim, model.strategy,
            train.seed).
        metrics: train/metrics.json, None before training has finished.
        distill: distill/distill.json, None before distillation has finished.
        timings: timings.json, wall seconds per stage run ({} if absent).
        failure: failed.json's message when a stage refused the run and it has no distill
            result; None otherwise.
    """

    path: Path
    law: str
    dim: int
    strategy: str
    seed: int
    metrics: dict | None
    distill: DistillResult | None
    timings: dict
    failure: str | None = None

    @property
    def name(self) -> str:
        """The run directory's name (e.g. "spring-2d-l1-s0")."""
        return self.path.name

    @property
    def label(self) -> str:
        """What figure titles call the run: law, dimension, strategy and seed ("spring 2D, l1, seed 0")."""
        return f"{self.law} {self.dim}D, {self.strategy}, seed {self.seed}"

    @property
    def sim(self) -> str:
        """Row key "{law}-{dim}" (e.g. "spring-2")."""
        return sim_key(self.law, self.dim)

    @property
    def data_dir(self) -> Path:
        """The dataset directory RUN/data."""
        return self.path / "data"

    @property
    def distill_dir(self) -> Path:
        """The distillation directory RUN/distill."""
        return self.path / "distill"

    @functools.cached_property
    def messages(self) -> MessageArrays:
        """distill/messages.npz (loaded on first use; InputError when missing)."""
        return load_messages(self.distill_dir)

    @functools.cached_property
    def history(self) -> MessageHistory | None:
        """train/message_history.npz (loaded on first use), None if the run recorded none."""
        folder = self.path / "train"
        return load_history(folder) if (folder / HISTORY_FILE).is_file() else None

    @functools.cached_property
    def predictions(self) -> Predictions | None:
        """distill/predictions.npz (loaded on first use), None if absent (layout version 1)."""
        return load_predictions(self.distill_dir)


def is_run_dir(path: str | os.PathLike) -> bool:
    """True if `path` is a directory holding a config.json."""
    return (Path(path) / CONFIG_FILE).is_file()


def load_run(path: str | os.PathLike) -> Run:
    """Read one run directory.

    Args:
        path: RUN directory (see module docstring for its layout).
    Returns:
        A `Run`; metrics and distill are None for stages that have not finished.
    Raises:
        InputError: `path` is not a run directory, or a file in it does not read.
    """
    path = Path(path)
    if not is_run_dir(path):
        raise InputError(f"not a run directory (no {CONFIG_FILE}): {path}")
    config = load_json(path / CONFIG_FILE)
    try:
        law, dim = config["sim"]["law"], int(config["sim"]["dim"])
        strategy, seed = config["model"]["strategy"], int(config["train"]["seed"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path / CONFIG_FILE} is not a run config (sim.law, sim.dim, model.strategy, "
                         "train.seed)") from None
    metrics, failed = path / "train" / "metrics.json", path / FAILED_FILE
    distill = load_result(path / "distill") if (path / "distill" / RESULT_FILE).is_file() else None
    return Run(path=path, law=law, dim=dim, strategy=strategy, seed=seed,
               metrics=load_json(metrics) if metrics.is_file() else None, distill=distill,
               timings=stage_seconds(path),
               failure=str(load_json(failed).get("error")) if failed.is_file() and distill is None else None)


def find_runs(sweep_dir: str | os.PathLike) -> list[Run]:
    """Every run directory in a sweep: its children, or grandchildren under a group folder.

    Args:
        sweep_dir: a sweep directory (e.g. SWEEP/ with SWEEP/spring-2d-l1-s0/ ...); a
            single run directory with no runs below it gives a list of that one run.
    Returns:
        Runs sorted by path; subdirectories that are not runs are skipped.
    Raises:
        InputError: `sweep_dir` is not a directory.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise InputError(f"not a sweep directory: {sweep_dir}")
    found = []
    for child in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        if is_run_dir(child):
            found.append(child)
        else:
            found.extend(sorted(g for g in child.iterdir() if is_run_dir(g)))
    if not found and is_run_dir(sweep_dir):
        found = [sweep_dir]
    return [load_run(p) for p in found]
