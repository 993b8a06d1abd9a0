"""The configs of the pipeline: a run's `RunConfig` (its four stage configs), a sweep job's
cluster `Resources`, and how {field: value} overrides apply to them.

In:  stage configs (`SimConfig`, `ModelConfig`, `TrainConfig`, `DistillConfig`) and
     {field: value} overrides: "field" sets that field in every stage that has it,
     "stage:field" in one stage only (what the command line's flags give).
Out: a frozen `RunConfig` whose model fits its data (`gnn.config.model_for_data`), saved as
     RUN/config.json; a frozen, validated `Resources`, saved with each submission in
     OUT/submitit/sweep.json. The named starting points are in `pipeline.presets`.
Imports no torch: configs are built and checked before any stage starts.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from distill.config import DistillConfig
from gnn.config import DATA_FIELDS, ModelConfig, TrainConfig, model_for_data
from nbody.config import SimConfig
from plumbing.errors import InputError, require_finite

# RunConfig field (and flag prefix of a field several stages share) -> its config class.
STAGE_CLASSES: dict[str, type] = {"sim": SimConfig, "model": ModelConfig, "train": TrainConfig,
                                  "distill": DistillConfig}

# torch's CPU threads when --threads is not given. Measured on 2 cores (benchmarks/RESULTS.md,
# "CPU threads"): 2 threads trained the tiny network 586 -> 3 steps/s and the paper's 46 -> 1.5
# when anything else ran beside them (OpenMP's threads spin-wait for each other), 1 thread lost
# at most 2.6x beside a busy process. The SR search does not collapse so (2 threads beside a
# busy process: 3.0 generations/s against 3.1 at 1), so it keeps its own default, every core.
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class RunConfig:
    """Everything a run does; saved as RUN/config.json. `pipeline.presets.preset(name)` builds
    one (the command line's default is the "tiny" preset).

    Attributes:
        preset: the name of the preset it started from.
        sim: the dataset (`nbody`).
        model: the network (`gnn`); its data fields (dim, n_features, ...) follow `sim`.
        train: the training (`gnn.train`).
        distill: the distillation (`distill`).
    """

    preset: str
    sim: SimConfig
    model: ModelConfig
    train: TrainConfig
    distill: DistillConfig


# One run of a sweep: (run folder, its config, the dataset folder it shares).
Job = tuple[Path, RunConfig, Path]


def with_values(cfg: RunConfig, values: dict) -> RunConfig:
    """`cfg` with `values` applied to every stage (`override`) and its model fitted to the new sim."""
    sim = override(cfg.sim, values)
    return dataclasses.replace(cfg, sim=sim, model=model_for_data(override(cfg.model, values), sim),
                               train=override(cfg.train, values), distill=override(cfg.distill, values))


def override(cfg, values: dict):
    """`cfg` (a stage config) with every settable field given in `values` replaced (validated
    by the dataclass). A stage-prefixed key ("train:seed") wins over the shared one ("seed")."""
    prefix = stage_prefix(type(cfg))
    changes = {}
    for field in settable_fields(type(cfg)):
        for key in (f"{prefix}:{field.name}", field.name):
            if key in values:
                changes[field.name] = values[key]
                break
    return dataclasses.replace(cfg, **changes) if changes else cfg


def settable_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of stage config `cls` that flags set: all but the model's DATA_FIELDS."""
    return [f for f in dataclasses.fields(cls) if not (cls is ModelConfig and f.name in DATA_FIELDS)]


def stage_prefix(cls: type) -> str:
    """The flag prefix of stage config `cls` ("sim", "model", "train", "distill")."""
    return next(prefix for prefix, stage in STAGE_CLASSES.items() if stage is cls)


def with_sr_threads(values: dict, field: str, *aliases: str) -> dict:
    """`values` with values["threads"] (`--threads`, when given) as the SR thread count `field`,
    unless `field` or one of its `aliases` is set itself."""
    if values.get("threads") is None or {field, *aliases} & set(values):
        return values
    return {**values, field: values["threads"]}


@dataclass(frozen=True)
class Resources:
    """What each job of a sweep asks the cluster for; saved with its submission in sweep.json.

    Attributes:
        partition: Slurm partition (None: the cluster's default).
        gpus_per_job: GPUs per job (0: CPUs only).
        cpus_per_task: CPU cores per job; torch uses this many threads in the job.
        mem_gb: memory per job in GB.
        timeout_min: wall-clock limit per job in minutes.
        account: Slurm account charged for the jobs (None: your default).
        qos: Slurm quality of service (None: the default).
        slurm: further sbatch options as (name, value) pairs, e.g. (("constraint", "a100"),),
            from `--slurm NAME=VALUE`.
        array_parallelism: jobs running at once (the sweep's --workers; Slurm only).
    """

    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_task: int = 2
    mem_gb: float = 8.0
    timeout_min: int = 60
    account: str | None = None
    qos: str | None = None
    slurm: tuple[tuple[str, str], ...] = ()
    array_parallelism: int = 1

    def __post_init__(self):
        require_finite(self)
        if self.gpus_per_job < 0:
            raise InputError(f"gpus_per_job must be >= 0, got {self.gpus_per_job}")
        for name in ("cpus_per_task", "timeout_min", "array_parallelism"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.mem_gb > 0:
            raise InputError(f"mem_gb must be > 0, got {self.mem_gb}")
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None and not _SLURM_VALUE.fullmatch(value):
                raise InputError(f"{name} must be a non-empty name without spaces, got {value!r}")
        for name, value in self.slurm:
            if not _SLURM_NAME.fullmatch(name):
                raise InputError(f"--slurm {name!r}: not an sbatch option name (e.g. constraint, mail-type)")
            if name.replace("_", "-") in _SET_HERE:
                raise InputError(f"--slurm {name}: set by the sweep itself; use its own flag "
                                 f"({', '.join(sorted(_SET_HERE))} are taken)")
            if not value or any(c in value for c in "\n\r\0"):
                raise InputError(f"--slurm {name}: the value must be one non-empty line")


_SLURM_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_SLURM_VALUE = re.compile(r"\S+")
# sbatch options that a Resources field or submitit itself sets (the logs must stay where
# `pipeline.cluster.run_states` looks for them).
_SET_HERE = frozenset({"partition", "gpus-per-node", "cpus-per-task", "mem", "time", "account", "qos",
                       "array", "output", "error", "job-name", "signal", "open-mode", "nodes",
                       "ntasks-per-node"})
