"""The command line: `python run.py COMMAND ...` and the installed `symdistill COMMAND ...`.

In:  argv (`pipeline.parser.build_parser`).
Out: the command's folders (`pipeline.stages`, `pipeline.sweep`, `pipeline.halos`) and a few
     readable lines; `main` returns the exit status: 0 on success, 2 on bad input (one line
     on stderr, no traceback), 130 when interrupted.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from distill import sr_engines
from distill.discovered import load_law
from distill.report import physical_lines, summary_lines
from halos.synthetic import SyntheticConfig
from nbody.laws import Law, law_names, register_law
from plumbing import rundir
from plumbing.errors import InputError

from . import cluster
from .config import with_sr_threads
from .flags import config_from_args, grid_list
from .parser import build_parser
from .presets import halo_preset
from .runfolder import SWEEP_LAYOUT


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
    """The installed `symdistill` command: `python run.py` by that name."""
    return main(prog="symdistill")


def dispatch(args: argparse.Namespace) -> None:
    """Run the subcommand named in `args`."""
    # heavy (torch, numba, matplotlib): loaded once a command runs, so --help and a bad flag answer at once
    from gnn.checkpoint import trained_preset_keys

    from . import halos, stages, sweep
    progress = not getattr(args, "quiet", False)
    if args.command in ("train", "distill", "all", "halos"):     # the commands with --threads
        sweep.set_threads(args.threads)
    if args.command == "halos":
        halos.run_halos(*halo_configs(args), progress=progress)
        return
    if args.command == "warm":
        stages.warm(grid_list("--laws", args.laws), tuple(grid_list("--dims", args.dims, int)), args.integrator,
                    args.workers)
        return
    if args.command == "analyse":
        stages.stage_analyse(Path(args.run), rundir.output_path(args.out) if args.out else None)
        return
    register_custom_law(args)
    extra = {}
    if args.command == "distill":   # the preset's per-strategy and per-law settings follow the trained model
        extra = trained_preset_keys(args.model)
        if extra.get("law") not in law_names():   # a custom law's dataset: no per-law settings
            extra.pop("law", None)
    cfg = config_from_args(args, **extra)
    if args.command == "simulate":
        out = rundir.output_path(args.out)
        if out.exists() or out.is_symlink():
            raise InputError(f"output path {out} exists; choose a new --out (nothing was overwritten)")
        with rundir.guarded(out):          # the dataset appears in one rename: siblings never clash
            stages.stage_simulate(out, cfg.sim, progress)
        print(f"[simulate] wrote {out}")
    elif args.command == "train":
        data, out = Path(args.data), rundir.output_path(args.out)
        if not (data / "meta.json").exists():
            raise InputError(f"no dataset at {data} (expected {data / 'meta.json'})")
        ckpt = stages.stage_train(out, data, cfg.model, cfg.train, progress)
        print(f"[train] metrics: {out / 'metrics.json'}; checkpoint: {ckpt}")
    elif args.command == "distill":
        ckpt = Path(args.model)
        out = rundir.output_path(args.out) if args.out is not None else ckpt.parent / "distill"
        print_equations(stages.stage_distill(out, ckpt, Path(args.data) if args.data else None, cfg.distill))
    elif args.command == "all":
        print_equations(stages.run(cfg, args.out, progress=progress))
    elif args.command == "sweep":
        out = rundir.output_path(args.out)
        if args.status:
            print("\n".join(cluster.status_lines(out, cluster.run_states(out))))
            return
        if args.workers < 1:
            raise InputError("--workers must be at least 1")
        with rundir.locked(out, layout=SWEEP_LAYOUT):
            sweep.run_sweep(out, args)


def register_custom_law(args: argparse.Namespace) -> None:
    """Register `--law NAME` with `--potential EXPR` or `--force EXPR` (and optional --law-dt),
    or the law a run discovered (`--law-from RUN`, `distill.discovered.load_law`)."""
    if getattr(args, "law_from", None) is not None:
        if args.potential is not None or args.force is not None or getattr(args, "law", None) is not None:
            raise InputError("--law-from RUN simulates the law that run discovered: give no --law, --potential "
                             "or --force with it")
        args.law = load_law(args.law_from).name
        return
    if getattr(args, "potential", None) is None and getattr(args, "force", None) is None:
        return
    if getattr(args, "law", None) is None:
        raise InputError("--potential and --force name a new law: give it a name with --law NAME")
    register_law(Law(name=args.law, potential=args.potential, force=args.force,
                     dt=args.law_dt, charges=args.charges), overwrite=True)


def halo_configs(args: argparse.Namespace) -> tuple:
    """`run_halos`'s (cfg, out, catalogue, synthetic, box) from the `halos` flags: the preset
    with the flags given; a flag of the synthetic catalogue beside --catalogue is refused."""
    values = with_sr_threads(vars(args), "sr_threads")
    cfg = _with_flags(halo_preset(args.preset), values)
    if args.catalogue:
        given = sorted(f.name for f in dataclasses.fields(SyntheticConfig) if f.name in values and f.name != "box")
        if given:
            raise InputError(f"--{given[0].replace('_', '-')} describes a synthetic catalogue; drop it or --catalogue")
        return cfg, args.out, args.catalogue, None, values.get("box")
    return cfg, args.out, None, _with_flags(SyntheticConfig(), values), None


def _with_flags(cfg, values: dict):
    return dataclasses.replace(cfg, **{f.name: values[f.name] for f in dataclasses.fields(cfg) if f.name in values})


def print_equations(result) -> None:
    """The rediscovered force law and Newton's second law, a few readable lines."""
    print()
    for line in physical_lines(result) + summary_lines(result):
        print(line)
