"""Generate, store and load simulation datasets.

In:  a `SimConfig` (generate) or a dataset directory (load).
Out: a directory, written to a temporary sibling and renamed into place in one step:

    meta.json              {"format_version": 1, "config": SimConfig fields, "law": Law fields,
                            "n", "dim", "dt", "features": ["x", "y", "vx", "vy", "q", "m"],
                            "splits": {name: {"n_sims", "n_steps", "kept_graphs", "failed_sims"}},
                            "failed_sims": total, "prune_bounds": {"v"|"a": [lo[dim], hi[dim]]}
                            (only when pruning), "prune": {"percentile": p or null, "why":
                            text} (when the config prunes or derives a percentile), "sha256": {file name: hex digest of
                            every .npy file, taken when it was written}, "package_version",
                            "seconds"}
    {split}_states.npy     [S, T, n, 2*dim+2] float32 node features (pos, vel, q, m), T kept steps
                           t = 0, k*dt, 2k*dt, ... with k = keep_every
    {split}_accel.npy      [S, T, n, dim] float32 true accelerations at those states
                           (float64, from the integrator's right-hand side, which
                           equals `nbody.laws.accelerations`: tests/test_kernels.py)
    {split}_mask.npy       [S, T] bool, True = keep the (sim, step) graph (only when pruning)
    trajectories.png       a few test-set trajectories

for split in ("train", "val", "test"). Splits: "seed" (default, the paper's text): train and
val are disjoint simulations of one random stream (val = the last `val_fraction`), test is
`resolved_n_test_sims` simulations from a second stream; "time" (the official demo): one set
of simulations whose kept steps are cut in time order into train / val / test (the last
`test_fraction`). Streams are `SeedSequence([seed, k])`, so they never overlap.
Simulations the integrator marks failed (or whose states are not finite) are dropped,
counted and reported; more than `max_failed_fraction` of them refuses the dataset.
Before anything is allocated the size is priced (`nbody.resources`) and a dataset that
cannot fit in memory or on disk is refused; a killed run's temporary folder is removed
by the next run that writes the same output.

Every refusal is an `InputError` and leaves nothing behind. `load_dataset` treats the
folder as untrusted data: a malformed meta.json, a law outside the expression whitelist
(or redefining a built-in one), NaN or infinite values in the arrays, and an array file
whose bytes are not those recorded in meta.json's "sha256" (another dataset's file copied
in: the dataset's identity is its content, not only its meta.json) are refused. A dataset
written before the digests were recorded has none to check.

`load_dataset(path).split(name).graphs()` gives (x [G, n, F], a [G, n, dim]) float32 over
the kept (sim, step) pairs, sim-major: what the GNN trainer and the distiller consume.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from plumbing.errors import InputError
from plumbing.io import (config_from_dict, load_json, remove_stale_temps, replace_dir, save_json, save_npy,
                         temp_dir_beside)
from plumbing.progress import progress_bar
from plumbing.rundir import file_sha256

from .config import SPLIT_NAMES, SimConfig
from .initial import initial_conditions
from .integrate import integrate_into, resolve_integrator
from .laws import Law, get_law, law_from_dict
from .plot import plot_trajectories
from .resources import check_resources, chunk_sims
from .state import feature_names, n_features

FORMAT_VERSION = 1
# Elements checked for NaN/inf at once when a dataset is loaded.
FINITE_CHECK_BLOCK = 1 << 24
# Bytes copied at once when a split's rows are rearranged (failed rows dropped, time windows).
COPY_BLOCK_BYTES = 1 << 26


@dataclass(frozen=True)
class Split:
    """One split of a stored dataset (arrays are read-only memory maps).

    Attributes:
        name: "train", "val" or "test".
        states: [S, T, n, 2*dim+2] float32 node features.
        accel: [S, T, n, dim] float32 true accelerations.
        mask: [S, T] bool kept (sim, step) pairs, or None when nothing was pruned.
    """

    name: str
    states: np.ndarray
    accel: np.ndarray
    mask: np.ndarray | None

    def graphs(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept graphs, flattened sim-major.

        Returns:
            x [G, n, 2*dim+2] float32 node features and a [G, n, dim] float32 accelerations.
        """
        if self.mask is None:
            S, T = self.states.shape[:2]
            return (np.asarray(self.states, dtype=np.float32).reshape(S * T, *self.states.shape[2:]),
                    np.asarray(self.accel, dtype=np.float32).reshape(S * T, *self.accel.shape[2:]))
        mask = np.asarray(self.mask)
        return np.asarray(self.states[mask], dtype=np.float32), np.asarray(self.accel[mask], dtype=np.float32)


@dataclass(frozen=True)
class Dataset:
    """A dataset directory opened by `load_dataset`.

    Attributes:
        path: the directory.
        config: the SimConfig it was generated from.
        law: the law (re-registered from the metadata, so custom laws survive).
        meta: the parsed meta.json.
    """

    path: Path
    config: SimConfig
    law: Law
    meta: dict

    def split(self, name: str) -> Split:
        """Open split `name` ("train", "val", "test") as memory maps; InputError if absent or bad."""
        if name not in self.meta["splits"]:
            raise InputError(f"dataset {self.path} has no split {name!r}; it has {sorted(self.meta['splits'])}")
        info = self.meta["splits"][name]
        n, dim = self.meta["n"], self.meta["dim"]
        S, T = info["n_sims"], info["n_steps"]
        states = _open_npy(self.path / f"{name}_states.npy", (S, T, n, n_features(dim)), np.float32)
        accel = _open_npy(self.path / f"{name}_accel.npy", (S, T, n, dim), np.float32)
        mask = None
        if "prune_bounds" in self.meta:
            mask = _open_npy(self.path / f"{name}_mask.npy", (S, T), np.bool_)
        return Split(name, states, accel, mask)


def _open_npy(path: Path, shape: tuple, dtype: type) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"corrupt file {path}: {exc}") from None
    if array.shape != tuple(shape):
        raise InputError(f"{path} has shape {array.shape}, expected {tuple(shape)}")
    if array.dtype != dtype:
        raise InputError(f"{path} holds {array.dtype}, expected {np.dtype(dtype)}")
    return array


def load_dataset(path: str | Path) -> Dataset:
    """Open a dataset directory written by `generate_dataset`.

    Args:
        path: the dataset directory.
    Returns:
        Dataset; meta.json is validated field by field and every split file is checked
        (exists, parses, has the recorded shape, holds only finite numbers).
    Raises:
        InputError: missing directory or file, corrupt or malformed file, another
            format_version, a stored law that is not allowed, NaN / inf in the data, or an
            array file whose SHA-256 is not the one meta.json recorded.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"no dataset directory at {path}")
    meta = load_json(path / "meta.json")
    where = f"{path}/meta.json"
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise InputError(f"{where}: format_version {found!r}, this version reads {FORMAT_VERSION}")
    missing = [key for key in ("config", "law", "splits", "n", "dim") if key not in meta]
    if missing:
        raise InputError(f"{where} is incomplete: missing {', '.join(missing)}")
    try:
        _check_layout(meta)
        law = law_from_dict(meta["law"])
        config = config_from_dict(SimConfig, meta["config"])
        if (config.law, config.resolved_n, config.dim) != (law.name, meta["n"], meta["dim"]):
            raise InputError(f"config (law {config.law}, n {config.resolved_n}, dim {config.dim}) does not "
                             f"match the recorded law {law.name}, n {meta['n']}, dim {meta['dim']}")
    except (InputError, TypeError) as exc:
        raise InputError(f"{where}: {exc}") from None
    dataset = Dataset(path, config, law, meta)
    for name in meta["splits"]:
        split = dataset.split(name)
        _require_finite(split.states, path / f"{name}_states.npy")
        _require_finite(split.accel, path / f"{name}_accel.npy")
    _check_digests(path, meta)
    return dataset


def _check_layout(meta: dict) -> None:
    """InputError unless n, dim and splits of meta.json have the types and ranges written."""
    n, dim, splits = meta["n"], meta["dim"], meta["splits"]
    if not _is_int(n) or n < 2:
        raise InputError(f"n must be an integer >= 2, got {n!r}")
    if not _is_int(dim) or dim not in (2, 3):
        raise InputError(f"dim must be 2 or 3, got {dim!r}")
    if not isinstance(splits, dict) or not splits or not set(splits) <= set(SPLIT_NAMES):
        raise InputError(f"splits must map some of {SPLIT_NAMES} to their sizes, got {splits!r:.80}")
    for name, info in splits.items():
        if not isinstance(info, dict) or not all(_is_int(info.get(k)) and info[k] >= 0
                                                 for k in ("n_sims", "n_steps")):
            raise InputError(f"splits.{name} needs integers n_sims and n_steps >= 0, got {info!r:.80}")


def _check_digests(path: Path, meta: dict) -> None:
    """InputError unless every .npy file of the dataset has the SHA-256 that meta.json
    recorded when it was written (nothing to check in a dataset from before the digests)."""
    if "sha256" not in meta:
        return
    digests = meta["sha256"]
    if not isinstance(digests, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in digests.items()):
        raise InputError(f"{path}/meta.json: sha256 must map file names to hex digests")
    for name in sorted({p.name for p in path.glob("*.npy")} | set(digests)):
        if name not in digests or "/" in name or not (path / name).is_file() \
                or file_sha256(path / name) != digests[name]:
            raise InputError(f"{path / name} is not the file this dataset was written with (its SHA-256 "
                             "differs from meta.json's, or it is missing or unrecorded); regenerate the dataset")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_finite(array: np.ndarray, path: Path) -> None:
    """InputError naming `path` if `array` holds a NaN or an infinity (checked in blocks)."""
    rows = max(1, FINITE_CHECK_BLOCK // max(1, int(np.prod(array.shape[1:]))))
    for lo in range(0, len(array), rows):
        if not np.isfinite(array[lo:lo + rows]).all():
            raise InputError(f"{path} contains NaN or infinite values; the dataset is damaged, regenerate it")


# --------------------------------------------------------------------------- #
# Generation                                                                  #
# --------------------------------------------------------------------------- #

class _SplitWriter:
    """The .npy memory maps of one split, sized for its planned simulations: the integrator
    writes into them directly, and the rows of failed simulations are dropped at `close`."""

    def __init__(self, directory: Path, name: str, n_sims: int, n_steps: int, n: int, dim: int):
        self.directory, self.name = directory, name
        shapes = {"states": (n_steps, n, n_features(dim)), "accel": (n_steps, n, dim)}
        self.arrays = {key: open_memmap(directory / f"{name}_{key}.npy", mode="w+", dtype=np.float32,
                                        shape=(n_sims, *shape)) for key, shape in shapes.items()}
        self.ok = np.ones(n_sims, dtype=bool)

    def close(self) -> int:
        """Flush; when simulations failed (`ok` False), rewrite the files without their rows.
        Returns the number of simulations kept."""
        rows = np.flatnonzero(self.ok)
        for key, array in self.arrays.items():
            array.flush()
            if len(rows) < len(array):
                final = self.directory / f"{self.name}_{key}.npy"
                kept = self.directory / f"{self.name}_{key}.kept.npy"
                out = open_memmap(kept, mode="w+", dtype=np.float32, shape=(len(rows), *array.shape[1:]))
                block = _block_rows(array)
                for lo in range(0, len(rows), block):
                    out[lo:lo + block] = array[rows[lo:lo + block]]
                out.flush()
                del out
                kept.replace(final)
        self.arrays.clear()
        return len(rows)


def _block_rows(array: np.ndarray) -> int:
    """Rows of `array` copied at once, about COPY_BLOCK_BYTES."""
    return max(1, COPY_BLOCK_BYTES // max(1, array[0].nbytes))


def _stream(cfg: SimConfig, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, k]))


def _simulate_job(cfg: SimConfig, ics, targets, bar, scratch: Path) -> int:
    """Integrate the systems `ics` into their writers; returns how many failed.

    `targets` is a list of (writer, slice over kept steps). A single target taking every kept
    step (split="seed") is written in place by the integrator; several time windows of the
    same simulations (split="time") are integrated into a temporary pair of memory maps in
    `scratch` and copied window by window. Each writer's `ok` marks the systems kept: not
    failed, which includes a stored value that is not finite (`integrate_into`).
    """
    n_sims, n, dim = ics[0].shape
    in_place = len(targets) == 1 and targets[0][1] == slice(None)
    if in_place:
        states, accel = targets[0][0].arrays["states"], targets[0][0].arrays["accel"]
    else:
        n_kept = len(range(0, cfg.nt, cfg.keep_every))
        states, accel = (open_memmap(scratch / f".all_{key}.npy", mode="w+", dtype=np.float32,
                                     shape=(n_sims, n_kept, n, width))
                         for key, width in (("states", n_features(dim)), ("accel", dim)))
    failed = np.zeros(n_sims, dtype=bool)
    # The GPU needs every system in one launch to fill its multiprocessors (kernels_cuda bounds
    # its own device memory); the CPU chunks are progress and cancellation points.
    chunk = max(n_sims, 1) if resolve_integrator(cfg.integrator) == "cuda" else chunk_sims(n, dim, cfg.nt)
    for lo in range(0, n_sims, chunk):
        hi = min(lo + chunk, n_sims)
        _, failed[lo:hi] = integrate_into(cfg, *(a[lo:hi] for a in ics), states[lo:hi], accel[lo:hi],
                                          keep_every=cfg.keep_every, on_done=bar.update)
    if not in_place:
        block = _block_rows(states)
        for writer, window in targets:
            for lo in range(0, n_sims, block):
                writer.arrays["states"][lo:lo + block] = states[lo:lo + block, window]
                writer.arrays["accel"][lo:lo + block] = accel[lo:lo + block, window]
        del states, accel
        for key in ("states", "accel"):
            (scratch / f".all_{key}.npy").unlink()
    for writer, _ in targets:
        writer.ok = ~failed
    return int(failed.sum())


def derived_percentile(cfg: SimConfig, train_accel: np.ndarray) -> tuple[float | None, str]:
    """The pruning percentile of `cfg` for training accelerations [S, T, n, dim] and why:
    prune_percentile when given; else, with prune_tail, 100 x the share of acceleration
    components within prune_tail x their median magnitude (None when none lies beyond);
    else None."""
    if cfg.prune_percentile is not None:
        return cfg.prune_percentile, "prune_percentile given"
    if cfg.prune_tail is None:
        return None, "no pruning"
    magnitude = np.abs(np.asarray(train_accel, dtype=np.float64)).reshape(-1)
    median = float(np.median(magnitude))
    beyond = float(np.mean(magnitude > cfg.prune_tail * median))
    why = (f"{100 * beyond:.4g} % of the training acceleration components lie beyond prune_tail "
           f"{cfg.prune_tail:g} x their median magnitude {median:.4g}")
    if beyond == 0:
        return None, why + ": nothing to prune"
    return min(100 * (1 - beyond), 99.9999), why


def _prune(p: float, dim: int, directory: Path, names: list[str]) -> tuple[dict, dict]:
    """Write {split}_mask.npy from the training split's [100-p, p] percentiles. Returns (kept counts, bounds)."""
    train_states = np.load(directory / "train_states.npy", mmap_mode="r")
    train_accel = np.load(directory / "train_accel.npy", mmap_mode="r")
    columns = {"v": (train_states[..., dim:2 * dim]), "a": train_accel}
    bounds = {key: np.percentile(np.asarray(values).reshape(-1, dim), [100 - p, p], axis=0)
              for key, values in columns.items()}                     # each [2, dim]
    kept = {}
    for name in names:
        states = np.load(directory / f"{name}_states.npy", mmap_mode="r")
        accel = np.load(directory / f"{name}_accel.npy", mmap_mode="r")
        inside = np.ones(states.shape[:2], dtype=bool)
        for key, values in (("v", states[..., dim:2 * dim]), ("a", accel)):
            lo, hi = bounds[key]
            inside &= ((values >= lo) & (values <= hi)).all(axis=(-2, -1))
        save_npy(directory / f"{name}_mask.npy", inside)
        kept[name] = int(inside.sum())
    return kept, {key: value.tolist() for key, value in bounds.items()}


def _check_failures(failed: int, total: int, cfg: SimConfig) -> None:
    """Report failed simulations on the console; InputError past `cfg.max_failed_fraction`."""
    if not failed:
        return
    summary = f"{failed} of {total} simulations failed ({100 * failed / total:.1f} %)"
    print(f"[simulate] {summary}", flush=True)
    if failed > cfg.max_failed_fraction * total:
        raise InputError(f"{summary}, more than max_failed_fraction {cfg.max_failed_fraction}; the law may "
                         "be singular or undefined somewhere (raise max_substeps or max_failed_fraction "
                         "to keep the survivors)")


def _package_version() -> str:
    try:
        return metadata.version("symdistill")
    except metadata.PackageNotFoundError:
        return "unknown"


def generate_dataset(cfg: SimConfig, out_dir: str | Path, *, progress: bool = True) -> Path:
    """Simulate the dataset described by `cfg` and write it to `out_dir` (format: module docstring).

    Args:
        cfg: the dataset description.
        out_dir: directory to create; must not exist yet.
        progress: show a progress bar over simulations (`plumbing.progress`).
    Returns:
        The dataset directory (`out_dir`).
    Raises:
        InputError: `out_dir` exists (it is left untouched), the dataset would not fit in
            memory or on disk, more than `cfg.max_failed_fraction` of the simulations
            failed, or the splits would be empty. Nothing is left behind.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise InputError(f"output {out_dir} already exists; choose a new path or delete it")
    law = get_law(cfg.law)
    n, dim, nt = cfg.resolved_n, cfg.dim, cfg.nt
    n_kept = len(range(0, nt, cfg.keep_every))
    remove_stale_temps(out_dir.parent, out_dir.name)
    check_resources(cfg, out_dir)
    tmp = temp_dir_beside(out_dir)
    try:
        if cfg.split == "seed":
            n_val = round(cfg.val_fraction * cfg.n_sims)
            n_train = cfg.n_sims - n_val
            if n_train < 1:
                raise InputError(f"val_fraction {cfg.val_fraction} leaves no training simulations")
            main = initial_conditions(law, n, dim, cfg.n_sims, _stream(cfg, 0))
            test = initial_conditions(law, n, dim, cfg.resolved_n_test_sims, _stream(cfg, 1))
            writers = {name: _SplitWriter(tmp, name, count, n_kept, n, dim)
                       for name, count in (("train", n_train), ("val", n_val),
                                           ("test", cfg.resolved_n_test_sims))}
            everything = slice(None)
            jobs = [(tuple(a[:n_train] for a in main), [(writers["train"], everything)]),
                    (tuple(a[n_train:] for a in main), [(writers["val"], everything)]),
                    (test, [(writers["test"], everything)])]
            steps = {name: n_kept for name in SPLIT_NAMES}
        else:
            n_test = max(1, round(cfg.test_fraction * n_kept))
            n_val = round(cfg.val_fraction * n_kept)
            n_train = n_kept - n_val - n_test
            if n_train < 1:
                raise InputError(f"nt={nt} with keep_every={cfg.keep_every} leaves no training steps")
            steps = {"train": n_train, "val": n_val, "test": n_test}
            writers = {name: _SplitWriter(tmp, name, cfg.n_sims, steps[name], n, dim) for name in SPLIT_NAMES}
            windows = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
                       "test": slice(n_train + n_val, n_kept)}
            ics = initial_conditions(law, n, dim, cfg.n_sims, _stream(cfg, 0))
            jobs = [(ics, [(writers[name], windows[name]) for name in SPLIT_NAMES])]
        # A split's failed count is that of the simulations feeding it (for split="time"
        # all three splits share the same simulations, hence the same count).
        failed = {}
        total = sum(len(ics[0]) for ics, _ in jobs)
        with progress_bar(total, f"simulate {law.name}", enabled=progress, unit="sim") as bar:
            for ics, targets in jobs:
                n_failed = _simulate_job(cfg, ics, targets, bar, tmp)
                failed.update({writer.name: n_failed for writer, _ in targets})
        failed_total = sum(failed.values()) if cfg.split == "seed" else failed["train"]
        _check_failures(failed_total, total, cfg)
        counts = {name: writer.close() for name, writer in writers.items()}
        splits = {name: {"n_sims": counts[name], "n_steps": steps[name],
                         "kept_graphs": counts[name] * steps[name], "failed_sims": failed[name]}
                  for name in SPLIT_NAMES}
        if counts["train"] == 0:
            raise InputError(f"every training simulation failed; raise max_substeps (now {cfg.max_substeps})")
        meta = {"format_version": FORMAT_VERSION, "config": cfg, "law": law, "n": n, "dim": dim,
                "dt": cfg.resolved_dt, "features": feature_names(dim), "splits": splits,
                "failed_sims": failed_total}
        percentile, why = derived_percentile(cfg, np.load(tmp / "train_accel.npy", mmap_mode="r"))
        if cfg.prunes:
            meta["prune"] = {"percentile": percentile, "why": why}
        if percentile is not None:
            kept, bounds = _prune(percentile, dim, tmp, list(SPLIT_NAMES))
            for name in SPLIT_NAMES:
                splits[name]["kept_graphs"] = kept[name]
            meta["prune_bounds"] = bounds
        test_states = np.load(tmp / "test_states.npy", mmap_mode="r")
        if len(test_states):
            plot_trajectories(test_states, dim, tmp / "trajectories.png", title=f"{law.name}, n={n}, {dim}D")
        del test_states
        meta["sha256"] = {p.name: file_sha256(p) for p in sorted(tmp.glob("*.npy"))}
        meta["package_version"] = _package_version()
        meta["seconds"] = round(time.perf_counter() - start, 3)
        save_json(tmp / "meta.json", meta)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
