"""Read run directories (and sweeps of them) written by run.py into `Run` records.

In:  RUN/ with any subset of
       config.json            {"sim": {"law", "dim", "seed", ...}, "model": {"strategy", ...},
                               "train": {"seed", ...}, "distill": {...}, "preset"}
       versions.json, timings.json {stage: wall seconds}
       data/meta.json         {"config": {"law", "dim", "n", ...}, "law": {"name", ...}}
       data/{split}_states.npy [S, T, n, 2*dim+2] float32 (pos, vel, q, m)
       data/{split}_accel.npy  [S, T, n, dim]
       train/metrics.json, train/model_config.json {"strategy", "dim", ...}
       distill/distill.json, distill/messages.npz, distill/predictions.npz,
       distill/pareto_edge_{k}.csv, distill/pareto_node_{axis}.csv (complexity, loss, score,
       optional selected, equation)
     A sweep directory holds one such run directory per job (any depth up to 2).
Out: `Run` (frozen): the JSON files as dicts ({} when a stage has not run), the run's
     identity (law, dim, strategy, seed, resolved with fallbacks so that small schema
     drift does not lose it) and lazily loaded arrays. A path that is not a run (or sweep)
     directory raises `InputError`; missing stages never do.
"""
from __future__ import annotations

import csv
import functools
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nbody.errors import InputError
from nbody.io import load_json

from .published import sim_key

# Files whose presence marks a directory as a run directory.
RUN_MARKERS = ("config.json", "data/meta.json", "train/metrics.json", "distill/distill.json")


def dig(obj: Any, *keys: str | int, default: Any = None) -> Any:
    """Follow keys/indices into nested JSON, returning `default` at the first miss.

    Args:
        obj: nested dicts/lists.
        keys: path, e.g. dig(d, "mae", "ood", "spread", "network").
        default: returned when any step is missing or of the wrong type.
    Returns:
        The value at the path, or `default`.
    """
    for key in keys:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _optional_json(path: Path) -> dict:
    """A stage's JSON as a dict, {} if the stage has not written it yet."""
    if not path.is_file():
        return {}
    data = load_json(path)
    return data if isinstance(data, dict) else {}


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"unreadable array file {path}: {exc}") from None


@dataclass(frozen=True, eq=False)  # identity equality: the dict fields are unhashable
class Run:
    """One run directory: its JSON records, identity and lazily loaded arrays.

    Attributes:
        path: the run directory.
        config: config.json ({} if absent).
        meta: data/meta.json ({} if absent).
        metrics: train/metrics.json ({} if absent).
        model_config: train/model_config.json ({} if absent).
        distill: distill/distill.json ({} if absent).
        versions: versions.json ({} if absent).
        timings: timings.json, wall seconds per stage run ({} if absent).
        law, dim, strategy, seed: identity, None where no file states it.
    """

    path: Path
    config: dict
    meta: dict
    metrics: dict
    model_config: dict
    distill: dict
    versions: dict
    timings: dict
    law: str | None
    dim: int | None
    strategy: str | None
    seed: int | None

    @property
    def name(self) -> str:
        """The run directory's name (e.g. "spring-2d-l1-s0")."""
        return self.path.name

    @property
    def sim(self) -> str | None:
        """Row key "{law}-{dim}" (e.g. "spring-2"), or None if law or dim is unknown."""
        return sim_key(self.law, self.dim) if self.law is not None and self.dim is not None else None

    @property
    def data_dir(self) -> Path:
        """The dataset directory RUN/data."""
        return self.path / "data"

    @property
    def distill_dir(self) -> Path:
        """The distillation directory RUN/distill."""
        return self.path / "distill"

    @functools.cached_property
    def messages(self) -> dict[str, np.ndarray] | None:
        """distill/messages.npz as {name: array} (loaded on first use), None if absent.

        Keys read by analysis: "messages" [E, msg_dim]; "top_components" or "top" [d];
        "fitted" or "fitted_force", and "fitted_accel" [E, d]; "component_std" [msg_dim].
        Also written: "dx", "dy", ("dz"), "r", "rs", "m1", "m2", "q1", "q2" [E], "force" [E, dim].
        """
        return _load_npz(self.distill_dir / "messages.npz")

    @functools.cached_property
    def predictions(self) -> dict[str, np.ndarray] | None:
        """distill/predictions.npz: "true", "network", "symbolic" [G, n, dim]; None if absent."""
        return _load_npz(self.distill_dir / "predictions.npz")

    def dataset(self, split: str = "test") -> tuple[np.ndarray, np.ndarray] | None:
        """Memory-mapped (states [S, T, n, 2*dim+2], accel [S, T, n, dim]) of one split.

        Args:
            split: "train", "val" or "test".
        Returns:
            The two arrays, or None if the split has not been written.
        """
        states, accel = self.data_dir / f"{split}_states.npy", self.data_dir / f"{split}_accel.npy"
        if not (states.is_file() and accel.is_file()):
            return None
        return np.load(states, mmap_mode="r"), np.load(accel, mmap_mode="r")

    def pareto_files(self) -> dict[str, Path]:
        """Pareto-front CSVs by stem, e.g. {"pareto_edge_0": Path, "pareto_node_x": Path}."""
        if not self.distill_dir.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.distill_dir.glob("pareto_*.csv"))}


def read_pareto(path: str | os.PathLike) -> list[dict]:
    """Rows of a Pareto CSV (complexity, loss, score, optional selected, equation), by complexity.

    Args:
        path: a distill/pareto_*.csv file.
    Returns:
        [{"complexity": int, "loss": float, "score": float | None, "selected": bool,
        "equation": str}]; rows whose complexity or loss does not parse are skipped.
    """
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                complexity, loss = int(float(row["complexity"])), float(row["loss"])
            except (KeyError, TypeError, ValueError):
                continue
            try:
                score = float(row.get("score") or "nan")
            except ValueError:
                score = float("nan")
            rows.append({"complexity": complexity, "loss": loss,
                         "score": None if np.isnan(score) else score,
                         "selected": (row.get("selected") or "").strip().lower() in ("1", "true"),
                         "equation": row.get("equation", "")})
    return sorted(rows, key=lambda r: r["complexity"])


def is_run_dir(path: str | os.PathLike) -> bool:
    """True if `path` is a directory holding at least one of the run marker files."""
    path = Path(path)
    return path.is_dir() and any((path / m).is_file() for m in RUN_MARKERS)


def load_run(path: str | os.PathLike) -> Run:
    """Read one run directory.

    Args:
        path: RUN directory (see module docstring for its layout).
    Returns:
        A `Run`; JSON of stages not run yet are {} and identity fields may be None.
    Raises:
        InputError: `path` is not a directory or holds none of the run files, or a JSON
            file in it is corrupt.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"not a run directory: {path}")
    if not is_run_dir(path):
        raise InputError(f"not a run directory (none of {', '.join(RUN_MARKERS)}): {path}")
    config = _optional_json(path / "config.json")
    meta = _optional_json(path / "data" / "meta.json")
    model_config = _optional_json(path / "train" / "model_config.json")
    distill = _optional_json(path / "distill" / "distill.json")
    dim = _first(dig(distill, "dim"), dig(config, "sim", "dim"), dig(meta, "config", "dim"),
                 dig(model_config, "dim"), dig(config, "model", "dim"))
    seed = _first(dig(config, "train", "seed"), dig(config, "sim", "seed"), dig(meta, "config", "seed"))
    return Run(
        path=path,
        config=config,
        meta=meta,
        metrics=_optional_json(path / "train" / "metrics.json"),
        model_config=model_config,
        distill=distill,
        versions=_optional_json(path / "versions.json"),
        timings=_optional_json(path / "timings.json"),
        law=_first(dig(distill, "law"), dig(config, "sim", "law"), dig(meta, "config", "law"),
                   dig(meta, "law", "name"), _string(dig(meta, "law"))),
        dim=None if dim is None else int(dim),
        strategy=_first(dig(config, "model", "strategy"), dig(model_config, "strategy"),
                        dig(distill, "strategy")),
        seed=None if seed is None else int(seed),
    )


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
