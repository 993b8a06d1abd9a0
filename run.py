#!/usr/bin/env python3
"""One script for the whole pipeline: simulate -> train -> distill -> analyse.

    python run.py all --preset tiny --out runs/tiny         # the small default experiment
    python run.py simulate --law spring --dim 2 --out data/spring2d
    python run.py train --data data/spring2d --strategy bottleneck --out runs/spring-bn
    python run.py distill --model runs/spring-bn/checkpoint.pt --out runs/spring-bn/distill
    python run.py analyse --run runs/tiny                    # tables, figures, report.html of a run or sweep
    python run.py sweep --preset paper --laws spring,r1 --dims 2,3 --strategies l1,bottleneck --out runs/sweep
    python run.py sweep --preset paper --seeds 0,1,2 --executor submitit --partition gpu --out runs/paper
    python run.py sweep --status --out runs/paper             # done / running / pending / failed per run
    python run.py halos                                      # halo overdensity GN on a synthetic catalogue
    python run.py warm                                       # compile the simulation kernels once (set-up does)

Every field of every stage config is a flag (`--n-sims`, `--batch-size`, `--generations`,
...); `--preset` picks the starting values and flags override them. A run directory holds
config.json (the frozen configs), versions.json, data/, train/, distill/ and analysis/.
Re-running a command skips finished stages and resumes an interrupted training run.
Bad input prints one line and exits with status 2.
"""
# This file wires the stages (nbody, gnn, distill, analysis) to the command line; the presets
# and the flags of the configs live in runconfig.py, the sweep's grid and local pool in sweep.py,
# its cluster jobs (submitit) in cluster.py.
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import cluster
from distill import sr_engines
from distill.config import DistillConfig
from gnn.config import DATA_FIELDS, ModelConfig, TrainConfig, model_for_data
from halos import cli as halos_cli
from nbody import rundir
from nbody.config import SimConfig
from nbody.errors import InputError
from nbody.integrate import warm_kernels
from nbody.integrators import integrator_names
from nbody.laws import get_law, law_names
from nbody.io import config_from_dict, load_json, mark, remove_stale_temps, save_json, to_jsonable
from runconfig import (PRESETS, STAGE_CLASSES, RunConfig, add_config_flags, add_threads_flag,
                       common_group, config_from_args, flag_type, short_usage)
from sweep import EXECUTORS, dataset_lock, execute, grid_list, set_threads, sweep_jobs

ROOT = Path(__file__).resolve().parent

# What each kind of output folder holds, to recognise one written before folders carried
# the ownership marker (`nbody.rundir.Layout`); any other existing folder that is not empty
# is refused.
RUN_LAYOUT = rundir.Layout(("config.json",), ("versions.json", "timings.json", "failed.json", "data", "train",
                                              "distill", "analysis"))
TRAIN_LAYOUT = rundir.Layout(("model_config.json", "train_config.json", "last.pt", "checkpoint.pt"),
                             ("metrics.json", "message_history.npz", "distill"))
DISTILL_LAYOUT = rundir.Layout(("distill.json", "distill_config.json"), ("*.json", "*.md", "*.csv", "*.npz"))
ANALYSIS_LAYOUT = rundir.Layout(("report.html",), ("*.md", "*.csv", "*.png", "*.gif", "*.html", "figures"))
SWEEP_LAYOUT = rundir.Layout(("data", "analysis", cluster.FOLDER, "*-*d-*-s*"))


# --------------------------------------------------------------------------- #
# Stages of a run directory                                                   #
# --------------------------------------------------------------------------- #

def versions() -> dict:
    """Library versions and the git commit, saved beside every run."""
    import importlib.metadata as md
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "sympy", "numba", "torch", "pyoperon", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    try:
        out["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def prepare_run_dir(run_dir: Path, cfg: RunConfig) -> None:
    """Create `run_dir` with config.json and versions.json, or check it holds this same config."""
    path = run_dir / "config.json"
    wanted = to_jsonable(cfg)
    if path.exists():
        saved = load_json(path)
        held = {stage: to_jsonable(config_from_dict(cls, saved.get(stage, {})))
                for stage, cls in STAGE_CLASSES.items()}     # fields added since: their defaults
        diff = sorted(f"{stage}.{k}" for stage in STAGE_CLASSES for k in wanted[stage]
                      if held[stage][k] != wanted[stage][k] and not (stage == "model" and k in DATA_FIELDS))
        if diff:
            raise InputError(f"{run_dir} holds a run with a different config ({', '.join(diff[:4])}); "
                             "use another --out")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(path, wanted)
    save_json(run_dir / "versions.json", versions())


def stage_simulate(data_dir: Path, sim: SimConfig, progress: bool = True) -> Path:
    """Generate the dataset unless `data_dir` already holds one made from `sim`."""
    from nbody.dataset import generate_dataset, load_dataset
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
        return _train_in(train_dir, data_dir, model, train_cfg, progress)


def _train_in(train_dir: Path, data_dir: Path, model: ModelConfig, train_cfg: TrainConfig, progress: bool) -> Path:
    from gnn.checkpoint import check_model_size
    from gnn.train import train
    from nbody.dataset import load_dataset
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


def stage_distill(distill_dir: Path, checkpoint: Path, data_dir: Path | None, cfg: DistillConfig):
    """Distill the checkpoint unless distill_dir/distill.json exists; returns its `DistillResult`.

    A finished distillation made with another config, checkpoint or dataset is refused.
    """
    with rundir.locked(distill_dir, layout=DISTILL_LAYOUT):
        return _distill_in(distill_dir, checkpoint, data_dir, cfg)


def _distill_in(distill_dir: Path, checkpoint: Path, data_dir: Path | None, cfg: DistillConfig):
    from distill.pipeline import distill_checkpoint, distill_inputs
    from distill.schema import load_result
    from nbody.dataset import load_dataset
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
    from analysis import find_runs, load_run, make_figures, write_report, write_tables
    if not target.is_dir():
        raise InputError(f"no such run or sweep directory: {target}")
    out_dir = out_dir or target / "analysis"
    with rundir.locked(out_dir, layout=ANALYSIS_LAYOUT):
        runs = [load_run(target)] if (target / "config.json").exists() else find_runs(target)
        if not runs:
            raise InputError(f"no runs found under {target}")
        written = list(write_tables(runs, out_dir).values())
        figures = {}
        for run in runs:
            fig_dir = out_dir if len(runs) == 1 else out_dir / "figures" / run.path.name
            figures[run.name] = make_figures(run, fig_dir)
            written += figures[run.name]
        written.append(write_report(runs, out_dir / "report.html", figures))
    print(f"[analyse] {len(runs)} run(s): {len(written)} files in {out_dir}")
    return written


def run_all(run_dir: Path, cfg: RunConfig, data_dir: Path | None = None, progress: bool = True):
    """Every stage in order into `run_dir` (data in `data_dir` if shared); returns distill results.

    The run directory is locked for the whole run: a second run on it exits at once.
    RUN/timings.json records the wall seconds of each stage this run directory ran itself
    (a shared dataset is not counted; a skipped stage keeps its earlier figure).
    """
    with rundir.locked(run_dir, layout=RUN_LAYOUT):
        prepare_run_dir(run_dir, cfg)
        timings_path = run_dir / "timings.json"
        timings = load_json(timings_path) if timings_path.exists() else {}

        def timed(name: str | None, done: Path, stage, *args):
            start, skipped = time.perf_counter(), done.exists()
            out = stage(*args)
            if name and not skipped:
                timings[name] = round(time.perf_counter() - start, 2)
                save_json(timings_path, timings)
            return out

        own_data = data_dir is None
        data_dir = data_dir or run_dir / "data"
        timed("simulate" if own_data else None, data_dir / "meta.json", stage_simulate, data_dir, cfg.sim, progress)
        checkpoint = timed("train", run_dir / "train" / "metrics.json", stage_train,
                           run_dir / "train", data_dir, cfg.model, cfg.train, progress)
        result = timed("distill", run_dir / "distill" / "distill.json", stage_distill,
                       run_dir / "distill", checkpoint, data_dir, cfg.distill)
        stage_analyse(run_dir)
    return result


def print_equations(result) -> None:
    """The rediscovered force law and Newton's second law, a few readable lines."""
    from distill.report import physical_lines, summary_lines
    print()
    for line in physical_lines(result) + summary_lines(result):
        print(line)


# --------------------------------------------------------------------------- #
# Sweep                                                                        #
# --------------------------------------------------------------------------- #

def run_sweep(out: Path, args: argparse.Namespace) -> None:
    """The sweep's runs into `out` (`sweep.sweep_jobs`). Locally: all of them in a process
    pool (`sweep.execute`), then the tables. With submitit: submit the runs not yet done,
    queued or running (`cluster.submit`) and return at once."""
    laws, dims = grid_list("--laws", args.laws), grid_list("--dims", args.dims, int)
    strategies, seeds = grid_list("--strategies", args.strategies), grid_list("--seeds", args.seeds, int)
    if args.executor == "submitit":
        res = cluster.resources(args.preset, vars(args))
        out = out.resolve()          # the jobs may start in another working directory
        jobs = sweep_jobs(args.preset, vars(args), laws, dims, strategies, seeds, out)
        where = args.cluster or "slurm"
        submitted, before = cluster.submit(_sweep_job, jobs, out, res, where)
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
    for job, done in zip(jobs, execute(_local_sweep_job, jobs, workers=args.workers, threads=args.threads)):
        print(f"[sweep] done {done}")
        if done != str(job[0]):
            refused.append(done)
    if len(refused) < len(jobs):
        stage_analyse(out)
        for table in ("test_mae", "edge_reconstruction", "node_reconstruction"):
            print("\n" + (out / "analysis" / f"{table}.md").read_text())
    if refused:
        print(f"\n[sweep] {len(refused)} of {len(jobs)} jobs refused or failed:")
        for line in refused:
            print(f"  {line}")
        raise InputError(f"{len(refused)} of {len(jobs)} sweep jobs were refused or failed (listed on stdout); "
                         "the others finished")


def _sweep_job(job: tuple[Path, RunConfig, Path]) -> str:
    """One run of a sweep, in a pool worker or a cluster job: its shared dataset first (the
    first job of that dataset to take its lock simulates it, the others wait and reuse it),
    then every stage. A stage that refuses the run (an InputError, e.g. a model whose
    messages cannot be aligned) leaves RUN/failed.json for the tables, which count the run as
    found nothing, and the error is raised again (a cluster job fails); a later sweep tries
    the run again. Returns the run directory."""
    from analysis.runs import FAILED_FILE
    run_dir, cfg, data_dir = job
    with rundir.locked(dataset_lock(data_dir), wait=True):
        stage_simulate(data_dir, cfg.sim, progress=False)
    failed = run_dir / FAILED_FILE
    try:
        with sr_engines.progress(enabled=False):
            run_all(run_dir, cfg, data_dir, progress=False)
    except (InputError, OSError) as err:
        if run_dir.is_dir() and _ours(run_dir):            # never into a folder that is not ours
            save_json(failed, {"error": str(err)})
        raise
    failed.unlink(missing_ok=True)
    return str(run_dir)


def _ours(run_dir: Path) -> bool:
    """Whether the sweep may record a failure in `run_dir` (`rundir.check_ours`); marks it."""
    try:
        rundir.check_ours(run_dir, RUN_LAYOUT)
    except InputError:
        return False
    mark(run_dir)
    return True


def _local_sweep_job(job: tuple[Path, RunConfig, Path]) -> str:
    """`_sweep_job` in the local pool: a refused or failed run (bad input, a file system
    error, out of memory) is reported and the other runs go on. Returns the run directory,
    or for a refused run its directory and the reason."""
    try:
        return _sweep_job(job)
    except InputError as err:
        return f"{job[0]} (refused: {err})"
    except (OSError, MemoryError) as err:
        return f"{job[0]} (failed: {type(err).__name__}: {err})"


# --------------------------------------------------------------------------- #
# Command line                                                                 #
# --------------------------------------------------------------------------- #

class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): `error: ...` and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def register_custom_law(args: argparse.Namespace) -> None:
    """Register `--law NAME` with `--potential EXPR` or `--force EXPR` (and optional --law-dt),
    or the law a run discovered (`--law-from RUN`, `distill.discovered.load_law`)."""
    if getattr(args, "law_from", None) is not None:
        if args.potential is not None or args.force is not None or getattr(args, "law", None) is not None:
            raise InputError("--law-from RUN simulates the law that run discovered: give no --law, --potential "
                             "or --force with it")
        from distill.discovered import load_law
        args.law = load_law(args.law_from).name
        return
    if getattr(args, "potential", None) is None and getattr(args, "force", None) is None:
        return
    if getattr(args, "law", None) is None:
        raise InputError("--potential and --force name a new law: give it a name with --law NAME")
    from nbody.laws import Law, register_law
    register_law(Law(name=args.law, potential=args.potential, force=args.force,
                     dt=args.law_dt, charges=args.charges), overwrite=True)


def build_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    """The `run.py` argument parser with its seven subcommands (`prog`: the name in its messages)."""
    every_stage = list(STAGE_CLASSES.values())
    parser = _Parser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, text, classes, inputs=(), threads=True):
        """A subcommand whose --help starts with the common flags: `inputs` (flag, add_argument
        keywords), --preset, the COMMON_FIELDS of `classes`, --threads (if it trains or
        distills) and --quiet; then each stage config's own flags."""
        p = sub.add_parser(name, help=text, description=text)
        common = common_group(p)
        for flag, keywords in inputs:
            common.add_argument(flag, **keywords)
        common.add_argument("--preset", default="tiny", choices=PRESETS, metavar="PRESET",
                            help=f"starting values for every config: {', '.join(PRESETS)} (default: tiny)")
        add_config_flags(p, classes, common)
        if threads:
            add_threads_flag(common)
        common.add_argument("--quiet", action="store_true", help="no progress bars")
        p.usage = short_usage(common)
        return p

    def out(required: bool, text: str, metavar: str = "DIR"):
        return "--out", {"required": required, "metavar": metavar, "help": text}

    def custom_law_flags(p):
        g = p.add_argument_group("a force law of your own (with --law NAME)")
        g.add_argument("--potential", help="register --law NAME with this pair potential U(r, q1, q2, m1, m2), "
                                           "r the softened distance")
        g.add_argument("--force", help="register --law NAME with this radial force f(r, q1, q2, m1, m2) = -dU/dr")
        g.add_argument("--law-dt", type=flag_type(float), default=1e-2, help="sampling interval of a custom law")
        g.add_argument("--charges", default="gaussian", choices=("gaussian", "sign"),
                       help="charges of a custom law: N(0,1) or ±1")

    p = command("simulate", "simulate a dataset (nbody)", [SimConfig], threads=False,
                inputs=[out(True, "dataset directory to create (must not exist)")])
    custom_law_flags(p)
    p.add_argument("--law-from", metavar="RUN", help="simulate the radial force law that the run (or distill "
                                                      "folder) RUN discovered, registered as discovered_<law>")

    command("train", "train a GNN on a dataset (gnn)", [ModelConfig, TrainConfig],
            inputs=[("--data", {"required": True, "metavar": "DIR", "help": "dataset directory made by `simulate`"}),
                    out(True, "training output directory (resumed if interrupted)")])

    command("distill", "distill a trained GNN into equations (distill)", [DistillConfig],
            inputs=[("--model", {"required": True, "metavar": "CHECKPOINT", "help": "checkpoint.pt made by `train`"}),
                    ("--data", {"metavar": "DIR", "help": "dataset directory (default: the one the model was "
                                                          "trained on)"}),
                    out(False, "output directory (default: beside the checkpoint, distill/)")])

    p = sub.add_parser("analyse", help="tables, figures and report.html of a run or sweep (analysis)")
    p.add_argument("--run", required=True, help="a run directory or a sweep directory")
    p.add_argument("--out", help="output directory (default: RUN/analysis)")

    p = command("all", "simulate, train, distill and analyse into one run directory", every_stage,
                inputs=[out(True, "run directory (finished stages are skipped)", "RUN")])
    custom_law_flags(p)

    p = command("sweep", "laws x dims x strategies x seeds as independent runs", every_stage,
                inputs=[out(True, "sweep directory")])
    g = p.add_argument_group("the sweep's grid and executor")
    g.add_argument("--laws", default="spring,r1,r2,charge")
    g.add_argument("--dims", default="2,3")
    g.add_argument("--strategies", default="standard,bottleneck,l1,kl")
    g.add_argument("--seeds", default="0")
    g.add_argument("--workers", type=int, default=1, help="jobs at a time (for submitit: the Slurm array's)")
    g.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local process pool (waits for every run), or submitit: submits the runs not yet "
                        "done, queued or running, and returns at once")
    g.add_argument("--status", action="store_true",
                   help="print the state of each run of the sweep submitted into --out, and exit")
    cluster.add_flags(p)

    p = sub.add_parser("warm", help="compile the simulation kernels into the per-machine cache (set-up runs it)",
                       description="Compile (or find in the cache) the simulation kernel of every law and "
                                   "dim, so that a later simulate starts integrating without compiling "
                                   "(nbody.kernel_build; cache folder: $SYMDISTILL_CACHE_DIR).")
    p.add_argument("--laws", default=",".join(law_names()), help="laws to warm (default: every built-in law)")
    p.add_argument("--dims", default="2,3")
    p.add_argument("--integrator", default="auto", choices=integrator_names())
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="compiling processes (default: one per core)")

    halos_cli.add_parser(sub)
    return parser


def run_warm(args: argparse.Namespace) -> None:
    """`run.py warm`: each law's kernels in its own process, `--workers` at a time."""
    laws, dims = grid_list("--laws", args.laws), tuple(grid_list("--dims", args.dims, int))
    for name in laws:
        get_law(name)                    # an unknown law is refused before any process starts
    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    tick = time.perf_counter()
    context = multiprocessing.get_context("spawn")   # Numba in a fresh interpreter, not a fork
    with concurrent.futures.ProcessPoolExecutor(min(args.workers, len(laws)), mp_context=context) as pool:
        for done in pool.map(warm_kernels, [[name] for name in laws], [dims] * len(laws),
                             [args.integrator] * len(laws)):
            print(f"[warm] {', '.join(done)}")
    print(f"[warm] {len(laws) * len(dims)} kernels ready in {time.perf_counter() - tick:.1f} s")


def dispatch(args: argparse.Namespace) -> None:
    """Run the subcommand named in `args`."""
    progress = not getattr(args, "quiet", False)
    if args.command in ("train", "distill", "all", "halos"):     # the commands with --threads
        set_threads(args.threads)
    if args.command == "halos":
        halos_cli.run_halos(args)
        return
    if args.command == "warm":
        run_warm(args)
        return
    if args.command == "analyse":
        stage_analyse(Path(args.run), rundir.output_path(args.out) if args.out else None)
        return
    register_custom_law(args)
    extra = {}
    if args.command == "distill":   # the preset's per-strategy and per-law settings follow the trained model
        from gnn.checkpoint import trained_preset_keys
        extra = trained_preset_keys(args.model)
        if extra.get("law") not in law_names():   # a custom law's dataset: no per-law settings
            extra.pop("law", None)
    cfg = config_from_args(args, **extra)
    if args.command == "simulate":
        out = rundir.output_path(args.out)
        if out.exists() or out.is_symlink():
            raise InputError(f"output path {out} exists; choose a new --out (nothing was overwritten)")
        with rundir.guarded(out):          # the dataset appears in one rename: siblings never clash
            stage_simulate(out, cfg.sim, progress)
        print(f"[simulate] wrote {out}")
    elif args.command == "train":
        data, out = Path(args.data), rundir.output_path(args.out)
        if not (data / "meta.json").exists():
            raise InputError(f"no dataset at {data} (expected {data / 'meta.json'})")
        ckpt = stage_train(out, data, cfg.model, cfg.train, progress)
        print(f"[train] metrics: {out / 'metrics.json'}; checkpoint: {ckpt}")
    elif args.command == "distill":
        ckpt = Path(args.model)
        out = rundir.output_path(args.out) if args.out is not None else ckpt.parent / "distill"
        print_equations(stage_distill(out, ckpt, Path(args.data) if args.data else None, cfg.distill))
    elif args.command == "all":
        print_equations(run_all(rundir.output_path(args.out), cfg, progress=progress))
    elif args.command == "sweep":
        out = rundir.output_path(args.out)
        if args.status:
            print("\n".join(cluster.status_lines(out, cluster.run_states(out))))
            return
        if args.workers < 1:
            raise InputError("--workers must be at least 1")
        with rundir.locked(out, layout=SWEEP_LAYOUT):
            run_sweep(out, args)


def main(argv: list[str] | None = None, prog: str = "run.py") -> int:
    """Entry point: returns 0 on success, 2 on bad input, 130 when interrupted."""
    args = build_parser(prog).parse_args(argv)
    try:
        with sr_engines.progress(enabled=not getattr(args, "quiet", False)):
            dispatch(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable or full output location, a folder where a file should be, ...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory (a memory limit such as ulimit -v, a cgroup's or the machine's); "
              "lower the sizes", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


def symdistill() -> int:
    """The `symdistill` command that an installed package provides: `python run.py` by that name."""
    return main(prog="symdistill")


if __name__ == "__main__":
    # Run as the module `run`, not as `__main__`, so that the sweep's job function is pickled
    # by name and found again in a pool worker or a cluster job.
    import run
    sys.exit(run.main())
