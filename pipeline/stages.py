"""The stage runner: each stage into its folder, skipping what is finished and refusing what
was made from another config or other inputs; `run` chains them into one run folder.

In:  a `RunConfig` (or one stage's config) and the folders to read and write.
Out: RUN/ as the command line writes it (`run.py all`, docs/architecture.md): config.json,
     versions.json, timings.json (`pipeline.runfolder`), data/ (`nbody.dataset`), train/
     (`gnn.train`), distill/ (`distill.pipeline`), analysis/ (`analysis`); `run` returns the
     `distill.schema.DistillResult`. `warm` compiles the simulation kernels into the cache.
Bad input raises `InputError` with one line (the command line exits 2).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from pathlib import Path

from analysis import find_runs, load_run, make_figures, write_report, write_tables
from distill.config import DistillConfig
from distill.pipeline import distill_checkpoint, distill_inputs
from distill.schema import DistillResult, load_result
from gnn.checkpoint import check_model_size
from gnn.config import ModelConfig, TrainConfig, model_for_data
from gnn.train import train
from nbody.config import SimConfig
from nbody.dataset import generate_dataset, load_dataset
from nbody.integrate import warm_kernels
from nbody.laws import get_law
from plumbing import rundir
from plumbing.errors import InputError
from plumbing.io import config_from_dict, load_json, remove_stale_temps, to_jsonable

from .config import RunConfig
from .runfolder import ANALYSIS_LAYOUT, DISTILL_LAYOUT, RUN_LAYOUT, TRAIN_LAYOUT, run_config_view, run_folder


def run(cfg: RunConfig, run_dir: str | Path, data_dir: Path | None = None, progress: bool = True) -> DistillResult:
    """Every stage in order into `run_dir` (the data in `data_dir` when shared); returns the
    distillation's result. What `run.py all` does, and the folder it writes.

    The run folder is locked for the whole run: a second run on it is refused at once.
    RUN/timings.json records each stage this run folder ran itself (a shared dataset is not
    counted; a skipped stage keeps its earlier figure).
    """
    run_dir = rundir.output_path(run_dir)
    with run_folder(run_dir, to_jsonable(cfg), RUN_LAYOUT, run_config_view) as timings:
        own_data = data_dir is None
        data_dir = data_dir or run_dir / "data"
        timings.time("simulate" if own_data else None, data_dir / "meta.json", stage_simulate, data_dir, cfg.sim,
                     progress)
        checkpoint = timings.time("train", run_dir / "train" / "metrics.json", stage_train,
                                  run_dir / "train", data_dir, cfg.model, cfg.train, progress)
        result = timings.time("distill", run_dir / "distill" / "distill.json", stage_distill,
                              run_dir / "distill", checkpoint, data_dir, cfg.distill)
        stage_analyse(run_dir)
    return result


def stage_simulate(data_dir: Path, sim: SimConfig, progress: bool = True) -> Path:
    """Generate the dataset unless `data_dir` already holds one made from `sim`."""
    if (data_dir / "meta.json").exists():
        held = load_dataset(data_dir)
        if held.config != sim:
            raise InputError(f"{data_dir} holds a dataset with a different config; use another --out")
        print(f"[simulate] {data_dir}: done already, skipped")
        return data_dir
    print(f"[simulate] {sim.law} {sim.dim}D n={sim.resolved_n}: {sim.n_sims} simulations x {sim.nt} steps")
    generate_dataset(sim, data_dir, progress=progress)
    return data_dir


def stage_train(train_dir: Path, data_dir: Path, model: ModelConfig, train_cfg: TrainConfig,
                progress: bool = True) -> Path:
    """Train (or resume) unless train_dir/metrics.json exists; returns the checkpoint path.

    A finished run made with other configs or another dataset is refused (InputError)
    instead of skipped; `gnn.train.train` refuses to resume such a run.
    """
    with rundir.locked(train_dir, layout=TRAIN_LAYOUT):
        dataset = load_dataset(data_dir)
        model = model_for_data(model, dataset.config)
        check_model_size(model, train_cfg.batch_size)
        if (train_dir / "metrics.json").exists():
            wanted = rundir.record({"model": model, "train": train_cfg},
                                   {"dataset": rundir.dataset_identity(dataset.meta)})
            trained_on = load_json(train_dir / "metrics.json").get("dataset") or {}
            held = rundir.record({"model": config_from_dict(ModelConfig, load_json(train_dir / "model_config.json")),
                                  "train": config_from_dict(TrainConfig, load_json(train_dir / "train_config.json"))},
                                 {"dataset": rundir.dataset_identity(trained_on.get("meta") or {})})
            rundir.check_record(held, wanted, train_dir)
            print(f"[train] {train_dir}: done already, skipped")
        else:
            remove_stale_temps(train_dir)
            resumed = " (resuming)" if (train_dir / "last.pt").exists() else ""
            print(f"[train] {model.strategy} model on {data_dir}{resumed}")
            train(data_dir, model, train_cfg, train_dir, progress=progress)
    return train_dir / "checkpoint.pt"


def stage_distill(distill_dir: Path, checkpoint: Path, data_dir: Path | None, cfg: DistillConfig) -> DistillResult:
    """Distill the checkpoint unless distill_dir/distill.json exists; returns its `DistillResult`.

    A finished distillation made with another config, checkpoint or dataset is refused.
    """
    with rundir.locked(distill_dir, layout=DISTILL_LAYOUT):
        if (distill_dir / "distill.json").exists():
            held = load_result(distill_dir)
            data = data_dir or Path(held.dataset or "")      # default: the dataset it was made from
            held_cfg = config_from_dict(DistillConfig, load_json(distill_dir / "distill_config.json"))
            load_dataset(data)        # its files still match the digests recorded when it was written
            rundir.check_record(rundir.record(held_cfg, held.inputs),
                                rundir.record(cfg, distill_inputs(checkpoint, data)), distill_dir)
            print(f"[distill] {distill_dir}: done already, skipped")
            return held
        remove_stale_temps(distill_dir.parent, distill_dir.name)
        print(f"[distill] {checkpoint} with {cfg.sr_engine}")
        return distill_checkpoint(checkpoint, cfg, distill_dir, dataset_path=data_dir)


def stage_analyse(target: Path, out_dir: Path | None = None) -> list[Path]:
    """Tables, figures and report.html for a run directory or a sweep of run directories."""
    if not target.is_dir():
        raise InputError(f"no such run or sweep directory: {target}")
    out_dir = out_dir or target / "analysis"
    with rundir.locked(out_dir, layout=ANALYSIS_LAYOUT):
        runs = [load_run(target)] if (target / "config.json").exists() else find_runs(target)
        if not runs:
            raise InputError(f"no runs found under {target}")
        written = list(write_tables(runs, out_dir).values())
        figures = {}
        for one in runs:
            fig_dir = out_dir if len(runs) == 1 else out_dir / "figures" / one.path.name
            figures[one.name] = make_figures(one, fig_dir)
            written += figures[one.name]
        written.append(write_report(runs, out_dir / "report.html", figures))
    print(f"[analyse] {len(runs)} run(s): {len(written)} files in {out_dir}")
    return written


def warm(laws: list[str], dims: tuple[int, ...], integrator: str = "auto", workers: int = 1) -> None:
    """Compile (or find in the cache) each law's simulation kernels for `dims`, each law in its
    own process, `workers` at a time (`nbody.integrate.warm_kernels`)."""
    for name in laws:
        get_law(name)                    # an unknown law is refused before any process starts
    if workers < 1:
        raise InputError("--workers must be at least 1")
    tick = time.perf_counter()
    context = multiprocessing.get_context("spawn")   # Numba in a fresh interpreter, not a fork
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(laws)), mp_context=context) as pool:
        for done in pool.map(warm_kernels, [[name] for name in laws], [dims] * len(laws),
                             [integrator] * len(laws)):
            print(f"[warm] {', '.join(done)}")
    print(f"[warm] {len(laws) * len(dims)} kernels ready in {time.perf_counter() - tick:.1f} s")
