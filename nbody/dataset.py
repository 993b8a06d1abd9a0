"""Generate, store and load simulation datasets.

In:  a `SimConfig` (generate) or a dataset directory (load).
Out: a directory, written to a temporary sibling and renamed into place in one step:

    meta.json              {"format_version": 1, "config": SimConfig fields, "law": Law fields,
                            "n", "dim", "dt", "features": ["x", "y", "vx", "vy", "q", "m"],
                            "splits": {name: {"n_sims", "n_steps", "kept_graphs", "failed_sims"}},
                            "failed_sims": total, "prune_bounds": {"v"|"a": [lo[dim], hi[dim]]}
                            (only when pruning), "package_version", "seconds"}
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
Simulations the integrator marks failed are dropped and counted.

`load_dataset(path).split(name).graphs()` gives (x [G, n, F], a [G, n, dim]) float32 over
the kept (sim, step) pairs, sim-major: what the GNN trainer and the distiller consume.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap
from tqdm import tqdm

from .config import SimConfig
from .errors import InputError
from .initial import initial_conditions
from .integrate import integrate
from .io import config_from_dict, load_json, replace_dir, save_json, save_npy
from .laws import Law, get_law, law_from_dict
from .plot import plot_trajectories
from .state import feature_names, n_features, pack

FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")
# float64 bytes of integrator output per chunk; bounds peak memory whatever n_sims is.
CHUNK_BYTES = 1 << 28


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
        states = _open_npy(self.path / f"{name}_states.npy", (S, T, n, n_features(dim)))
        accel = _open_npy(self.path / f"{name}_accel.npy", (S, T, n, dim))
        mask = None
        if self.config.prune_percentile is not None:
            mask = _open_npy(self.path / f"{name}_mask.npy", (S, T))
        return Split(name, states, accel, mask)


def _open_npy(path: Path, shape: tuple) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"corrupt file {path}: {exc}") from None
    if array.shape != tuple(shape):
        raise InputError(f"{path} has shape {array.shape}, expected {tuple(shape)}")
    return array


def load_dataset(path: str | Path) -> Dataset:
    """Open a dataset directory written by `generate_dataset`.

    Args:
        path: the dataset directory.
    Returns:
        Dataset; every split file is checked (exists, parses, has the recorded shape).
    Raises:
        InputError: missing directory or file, corrupt file, or another format_version.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"no dataset directory at {path}")
    meta = load_json(path / "meta.json")
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise InputError(f"{path}/meta.json: format_version {found!r}, this version reads {FORMAT_VERSION}")
    missing = [key for key in ("config", "law", "splits", "n", "dim") if key not in meta]
    if missing:
        raise InputError(f"{path}/meta.json is incomplete: missing {', '.join(missing)}")
    try:
        law = law_from_dict(meta["law"])
        config = config_from_dict(SimConfig, meta["config"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}/meta.json has a malformed law or config: {exc}") from None
    dataset = Dataset(path, config, law, meta)
    for name in meta["splits"]:
        dataset.split(name)
    return dataset


# --------------------------------------------------------------------------- #
# Generation                                                                  #
# --------------------------------------------------------------------------- #

class _SplitWriter:
    """Appends simulations of one split to .npy memory maps sized for the planned count."""

    def __init__(self, directory: Path, name: str, n_sims: int, n_steps: int, n: int, dim: int):
        self.directory, self.name, self.written = directory, name, 0
        self.shapes = {"states": (n_steps, n, n_features(dim)), "accel": (n_steps, n, dim)}
        self.arrays = {key: open_memmap(directory / f"{name}_{key}.npy", mode="w+", dtype=np.float32,
                                        shape=(n_sims, *shape)) for key, shape in self.shapes.items()}

    def append(self, states: np.ndarray, accel: np.ndarray) -> None:
        rows = slice(self.written, self.written + len(states))
        self.arrays["states"][rows] = states
        self.arrays["accel"][rows] = accel
        self.written += len(states)

    def close(self) -> int:
        """Flush; shrink the files when failed simulations left rows unused. Returns the count."""
        for key, array in self.arrays.items():
            array.flush()
            if self.written < len(array):
                final = self.directory / f"{self.name}_{key}.npy"
                kept = self.directory / f"{self.name}_{key}.kept.npy"
                out = open_memmap(kept, mode="w+", dtype=np.float32, shape=(self.written, *self.shapes[key]))
                out[:] = array[:self.written]
                out.flush()
                del out
                kept.replace(final)
        self.arrays.clear()
        return self.written


def _stream(cfg: SimConfig, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, k]))


def _simulate_job(cfg: SimConfig, law: Law, ics, targets, bar) -> int:
    """Integrate the systems `ics` in chunks and append each time window to its writer.

    `targets` is a list of (writer, slice over kept steps). Returns the failed count.
    """
    pos0, vel0, q, m = ics
    n, dim = cfg.resolved_n, cfg.dim
    chunk = max(1, CHUNK_BYTES // (24 * cfg.nt * n * dim))     # pos, vel, acc in float64
    failed_total = 0
    for lo in range(0, len(pos0), chunk):
        hi = min(lo + chunk, len(pos0))
        result = integrate(law, pos0[lo:hi], vel0[lo:hi], q[lo:hi], m[lo:hi], dt=cfg.resolved_dt,
                           nt=cfg.nt, softening=cfg.softening, rtol=cfg.rtol, atol=cfg.atol,
                           max_substeps=cfg.max_substeps, official_quirks=cfg.official_quirks,
                           backend=cfg.backend)
        ok = ~result.failed
        failed_total += int(result.failed.sum())
        pos = result.pos[ok, ::cfg.keep_every]                      # [c, T, n, dim]
        vel = result.vel[ok, ::cfg.keep_every]
        qs = np.broadcast_to(q[lo:hi][ok][:, None, :], pos.shape[:3])
        ms = np.broadcast_to(m[lo:hi][ok][:, None, :], pos.shape[:3])
        acc = result.acc[ok, ::cfg.keep_every].astype(np.float32)
        states = pack(pos, vel, qs, ms).astype(np.float32)
        for writer, window in targets:
            writer.append(states[:, window], acc[:, window])
        bar.update(hi - lo)
    return failed_total


def _prune(cfg: SimConfig, directory: Path, names: list[str]) -> tuple[dict, dict]:
    """Write {split}_mask.npy from the training split's percentiles. Returns (kept counts, bounds)."""
    dim, p = cfg.dim, cfg.prune_percentile
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
        progress: show a tqdm progress bar over simulations.
    Returns:
        The dataset directory (`out_dir`).
    Raises:
        InputError: `out_dir` exists (it is left untouched), or the splits would be empty.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise InputError(f"output {out_dir} already exists; choose a new path or delete it")
    law = get_law(cfg.law)
    n, dim, nt = cfg.resolved_n, cfg.dim, cfg.nt
    n_kept = len(range(0, nt, cfg.keep_every))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
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
        with tqdm(total=total, desc=f"simulate {law.name}", unit="sim", disable=not progress) as bar:
            for ics, targets in jobs:
                n_failed = _simulate_job(cfg, law, ics, targets, bar)
                failed.update({writer.name: n_failed for writer, _ in targets})
        failed_total = sum(failed.values()) if cfg.split == "seed" else failed["train"]
        counts = {name: writer.close() for name, writer in writers.items()}
        splits = {name: {"n_sims": counts[name], "n_steps": steps[name],
                         "kept_graphs": counts[name] * steps[name], "failed_sims": failed[name]}
                  for name in SPLIT_NAMES}
        if counts["train"] == 0:
            raise InputError(f"every training simulation failed; raise max_substeps (now {cfg.max_substeps})")
        meta = {"format_version": FORMAT_VERSION, "config": cfg, "law": asdict(law), "n": n, "dim": dim,
                "dt": cfg.resolved_dt, "features": feature_names(dim), "splits": splits,
                "failed_sims": failed_total}
        if cfg.prune_percentile is not None:
            kept, bounds = _prune(cfg, tmp, list(SPLIT_NAMES))
            for name in SPLIT_NAMES:
                splits[name]["kept_graphs"] = kept[name]
            meta["prune_bounds"] = bounds
        test_states = np.load(tmp / "test_states.npy", mmap_mode="r")
        if len(test_states):
            plot_trajectories(test_states, dim, tmp / "trajectories.png", title=f"{law.name}, n={n}, {dim}D")
        del test_states
        meta["package_version"] = _package_version()
        meta["seconds"] = round(time.perf_counter() - start, 3)
        save_json(tmp / "meta.json", meta)
        tmp.chmod(0o755)  # mkdtemp makes it owner-only; a dataset is meant to be shared
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
