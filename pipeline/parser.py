"""The command line's parser: seven subcommands, every config field a flag.

In:  argv (through `build_parser(prog).parse_args`).
Out: an argparse Namespace for `pipeline.cli.dispatch`; a bad flag prints one line
     (`error: PROG: ...`) and exits with status 2.
"""
from __future__ import annotations

import argparse
import os

from distill.config import DistillConfig
from gnn.config import ModelConfig, TrainConfig
from gnn.strategies import get_strategy, strategy_names
from halos.config import HaloConfig
from halos.synthetic import SyntheticConfig
from nbody.config import SimConfig
from nbody.integrators import integrator_names
from nbody.laws import law_names

from . import cluster
from .config import STAGE_CLASSES
from .flags import add_config_flags, add_threads_flag, common_group, flag_type, short_usage
from .presets import HALO_PRESETS, PRESETS

DESCRIPTION = "One command for the whole pipeline: simulate -> train -> distill -> analyse."
USAGE = """\
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
config.json (the frozen configs), versions.json, timings.json, data/, train/, distill/ and
analysis/. Re-running a command skips finished stages and resumes an interrupted training run.
Bad input prints one line and exits with status 2. `symdistill` is the same command.
"""
EXECUTORS = ("local", "submitit")
# HaloConfig's SR fields take the flag names that `run.py distill` gives the same settings
# (--generations, not --sr-generations; the old spellings stay accepted, unlisted).
HALO_FLAG_NAMES = {"sr_edges": "n_edges", "sr_nodes": "n_nodes", "sr_generations": "generations",
                   "sr_population_size": "population_size", "sr_max_time": "max_time",
                   "sr_max_length": "max_length", "sr_operators": "operators", "sr_threads": "n_threads"}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): `error: ...` and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    """The argument parser with its seven subcommands (`prog`: the name in its messages)."""
    every_stage = list(STAGE_CLASSES.values())
    parser = _Parser(prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog=USAGE)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, text, classes, inputs=(), threads=True, presets=PRESETS, flag_names=None):
        """A subcommand whose --help starts with the common flags: `inputs` (flag, add_argument
        keywords), --preset, the COMMON_FIELDS of `classes`, --threads (if it trains or
        distills) and --quiet; then each config's own flags."""
        p = sub.add_parser(name, help=text, description=text)
        common = common_group(p)
        for flag, keywords in inputs:
            common.add_argument(flag, **keywords)
        common.add_argument("--preset", default=presets[0], choices=presets, metavar="PRESET",
                            help=f"starting values for every config: {', '.join(presets)} (default: {presets[0]})")
        add_config_flags(p, classes, common, flag_names)
        if threads:
            add_threads_flag(common)
        common.add_argument("--quiet", action="store_true", help="no progress bars")
        p.usage = short_usage(common)
        return p

    def out(required: bool, text: str, metavar: str = "DIR", default: str | None = None):
        return "--out", {"required": required, "metavar": metavar, "help": text, "default": default}

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
    g.add_argument("--strategies", default=",".join(n for n in strategy_names() if get_strategy(n).network == "message"),
                   help="default: every strategy with a message network (the paper's Table 5)")
    g.add_argument("--seeds", default="0")
    g.add_argument("--workers", type=int, default=1, help="jobs at a time (for submitit: the Slurm array's)")
    g.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local process pool (waits for every run), or submitit: submits the runs not yet "
                        "done, queued or running, and returns at once")
    g.add_argument("--status", action="store_true",
                   help="print the state of each run of the sweep submitted into --out, and exit")
    cluster.add_flags(p)

    p = command("halos", "dark-matter halo overdensity: train and distill a GN on a halo catalogue",
                [HaloConfig, SyntheticConfig], presets=HALO_PRESETS, flag_names=HALO_FLAG_NAMES,
                inputs=[("--catalogue", {"metavar": "FILE", "help": "halo catalogue (.npz, .csv or text; columns "
                                                                    "x y z vx vy vz M14 delta); default: a synthetic one"}),
                        out(False, "run folder (default: runs/halos)", default="runs/halos")])

    p = sub.add_parser("warm", help="compile the simulation kernels into the per-machine cache (set-up runs it)",
                       description="Compile (or find in the cache) the simulation kernel of every law and "
                                   "dim, so that a later simulate starts integrating without compiling "
                                   "(nbody.kernel_build; cache folder: $SYMDISTILL_CACHE_DIR).")
    p.add_argument("--laws", default=",".join(law_names()), help="laws to warm (default: every built-in law)")
    p.add_argument("--dims", default="2,3")
    p.add_argument("--integrator", default="auto", choices=integrator_names())
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="compiling processes (default: one per core)")
    return parser
