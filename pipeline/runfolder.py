"""The one run-folder protocol of every command (a run, a sweep, the halo experiment).

In:  a run folder, the JSON record of the configs that make it (what config.json holds), and
     the `Layout` of its kind (to recognise a folder from before folders carried the marker).
Out: `run_folder(...)`, a context manager that locks the folder for the command (a second
     command on it is refused at once), writes config.json and versions.json the first
     time, and refuses a folder that holds another config (InputError naming the fields),
     yielding the folder's `plumbing.rundir.Timings` (timings.json: seconds and peak memory
     of each stage the folder ran itself). Inside it each stage skips what is finished and
     refuses what was made from another config or other inputs (`pipeline.stages`,
     `pipeline.halos`).
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Callable, Iterator

from gnn.config import DATA_FIELDS
from plumbing import rundir
from plumbing.io import config_from_dict, load_json, save_json, to_jsonable

from .config import STAGE_CLASSES, RunConfig

CONFIG_FILE = "config.json"
VERSIONS_FILE = "versions.json"
ROOT = Path(__file__).resolve().parents[1]

# What each kind of output folder holds, to recognise one written before folders carried
# the ownership marker (`plumbing.rundir.Layout`); any other existing folder that is not
# empty is refused.
RUN_LAYOUT = rundir.Layout((CONFIG_FILE,), (VERSIONS_FILE, rundir.TIMINGS_FILE, "failed.json", "data", "train",
                                            "distill", "analysis"))
TRAIN_LAYOUT = rundir.Layout(("model_config.json", "train_config.json", "last.pt", "checkpoint.pt"),
                             ("metrics.json", "message_history.npz", "distill"))
DISTILL_LAYOUT = rundir.Layout(("distill.json", "distill_config.json"), ("*.json", "*.md", "*.csv", "*.npz"))
ANALYSIS_LAYOUT = rundir.Layout(("report.html",), ("*.md", "*.csv", "*.png", "*.gif", "*.html", "figures"))
SWEEP_LAYOUT = rundir.Layout(("data", "analysis", "submitit", "*-*d-*-s*"))
HALOS_LAYOUT = rundir.Layout((CONFIG_FILE,), (VERSIONS_FILE, rundir.TIMINGS_FILE, "catalogue.npz", "SYNTHETIC.txt",
                                              "graph", "train", "distill"))


def versions() -> dict:
    """Library versions and the git commit, saved beside every run."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "sympy", "numba", "torch", "pyoperon", "matplotlib"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        out["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def prepare(folder: Path, config: dict, view: Callable[[dict], dict] = lambda record: record) -> None:
    """Write `folder`/config.json (`config`) and versions.json, or refuse (InputError) a folder
    whose config.json differs from `config` where `view` (applied to both) looks."""
    path = folder / CONFIG_FILE
    if path.exists():
        rundir.check_record(view(load_json(path)), view(config), folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    save_json(path, config)
    save_json(folder / VERSIONS_FILE, versions())


@contextlib.contextmanager
def run_folder(folder: Path, config: dict, layout: rundir.Layout,
               view: Callable[[dict], dict] = lambda record: record) -> Iterator[rundir.Timings]:
    """Hold `folder` for one command: lock it (`plumbing.rundir.locked`), `prepare` it, and
    yield its timings."""
    with rundir.locked(folder, layout=layout):
        prepare(folder, config, view)
        yield rundir.Timings(folder)


def run_config_view(record: dict) -> dict:
    """What makes two RUN/config.json the same run: every stage config, a field added since
    the file was written taking its default, the model's data fields (derived) left out."""
    view = {stage: to_jsonable(config_from_dict(cls, record.get(stage, {}))) for stage, cls in STAGE_CLASSES.items()}
    view["model"] = {k: v for k, v in view["model"].items() if k not in DATA_FIELDS}
    return view


def prepare_run_dir(run_dir: Path, cfg: RunConfig) -> None:
    """`prepare` a run folder for `cfg` (unlocked: `run_folder` locks)."""
    prepare(run_dir, to_jsonable(cfg), run_config_view)
