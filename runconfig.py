"""The config of a run: presets, and every field of every stage config as a command-line flag.

In:  a preset name (PRESETS) and {field: value} overrides, as run.py's flags give them:
     "field" sets that field in every stage that has it, "stage:field" in one stage only.
Out: a frozen `RunConfig` of the four stage configs (SimConfig, ModelConfig, TrainConfig,
     DistillConfig) whose model fits its data (`gnn.config.model_for_data`);
     `add_config_flags` gives an argparse parser one `--field-name` flag per settable field,
     its help text taken from the config's docstring.
Imports no torch: configs are built and checked before any stage starts.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import textwrap
import types
import typing
from dataclasses import dataclass

from distill.config import DistillConfig
from gnn.config import DATA_FIELDS, ModelConfig, TrainConfig, model_for_data
from gnn.strategies import get_strategy
from nbody.config import SimConfig
from nbody.errors import InputError

PRESETS = ("tiny", "cpu", "paper")
# RunConfig field (and flag prefix of a field several stages share) -> its config class.
STAGE_CLASSES: dict[str, type] = {"sim": SimConfig, "model": ModelConfig, "train": TrainConfig,
                                  "distill": DistillConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything a run does; saved as RUN/config.json."""

    preset: str
    sim: SimConfig
    model: ModelConfig
    train: TrainConfig
    distill: DistillConfig


# The cpu preset's training (its sweep in results/cpu was trained so): 25 epochs of the tiny
# data at batch 32, 70,300 optimiser steps.
CPU_TRAIN = TrainConfig(batch_size=32, epochs=25, lr=3e-3, seed=0)
# The tiny preset's: 14 epochs (39,368 steps; benchmarks/RESULTS.md, "make run time").
TINY_TRAIN = dataclasses.replace(CPU_TRAIN, epochs=14)

# The discovery recipe: what every law gets, the same for all, each value either fixed or a
# rule that reads the data or the trained model (issue 28; benchmarks/RESULTS.md, "One recipe"):
#   prune_tail        the time steps of close encounters are dropped when the accelerations'
#                     tail reaches beyond 300 x their median (`nbody.dataset.derived_percentile`;
#                     none for light-tailed laws);
#   align "auto"      the edge fits read the messages in the node model's basis, one per value
#                     of a receiver property when the node model's Jacobians ask for it
#                     (`distill.align.auto_alignment`);
#   node_units "edge" the node fits read each summed component divided by the receiver factor
#                     its edge equation carries (1 when it carries none);
#   selection         PySR's "best" for the edge fits, "score" for the node fits;
#   simplify_tol      the selected equations lose every term that does nothing (the default).
RECIPE_SIM = {"prune_tail": 300.0}
RECIPE_DISTILL = {"align": "auto", "node_units": "edge", "selection": "best", "node_selection": "score"}
# The cpu preset's SR budget: up to 150 generations, stopped once 20 in a row have not improved
# the Pareto front (the front's stability decides, not the law), on all fit rows.
CPU_SR = {"generations": 150, "stall_generations": 20, "search_rows": None}


def preset(name: str, law: str | None = None, strategy: str | None = None) -> RunConfig:
    """The named starting point; `law` and `strategy` set those fields (and the cpu preset's
    per-strategy settings). No setting depends on the law's name: every law gets the
    recipe (RECIPE_SIM, RECIPE_DISTILL), whose rules read the data and the trained model.

    tiny:  spring, 2D, 4 bodies, bottleneck model (128-wide, 2 hidden layers, OneCycle peak
           lr 3e-3, 14 epochs of batch 32), 1,000 simulations x 500 steps keeping every 5th,
           the recipe; SR stopped early after 10 stalled generations, searching a
           2,000-row subsample; about 1.5 minutes on 2 CPU cores, and it rediscovers the
           force law and Newton's second law.
    cpu:   tiny trained 25 epochs, with the SR budget CPU_SR (up to 150 generations, stopped
           by the front's stability, all fit rows), then the strategy's `recipe` (gnn.strategies):
           hamiltonian: the SR operators add log, because the model's pair energy is the
           potential itself and r1's is m1 m2 log r' (its force m1 m2/r' has a short form in
           + - * /, its energy none); and the Pareto rule is "best" on held-out rows in groups
           of shared particle constants ("best_heldout", `distill.select`), because an energy
           is defined only up to terms in those constants, which the fit rows' MAE charges to
           a short true form and a long one fits term by term (benchmarks/RESULTS.md,
           "Hamiltonian model").
           l1, kl, standard: the aligned basis combines all 100 message components ("all"),
           not the top two or three: after the preset's 70,000 steps the L1 messages are not
           sparse yet (the top components carry 22-69 % of the variance), while the node model
           reads exactly dim combinations of them, and those are the force (benchmarks/RESULTS.md,
           "L1: the node model's reading of all components"). The same holds for any message
           that is not sparse, so the standard and KL models get it too (the paper's reading,
           the top components by variance or KL, is `--align-components top`).
           run.py applies flags after the preset, so an explicit flag beats the recipe.
    paper: the facts sheet's full-size settings (10,000 simulations x 1,000 steps, the
           demo's 100 kept snapshots per simulation, 300-wide 3-hidden-layer MLPs,
           batch 64: 100 epochs of the 900,000 training graphs, ~1.4M optimiser steps; the
           larger SR budget, every generation run on all fit rows) and the paper's
           distillation (raw components, "score"); the recipe is `--preset cpu`'s.
    """
    if name == "cpu":
        tiny = preset("tiny")
        base = dataclasses.replace(tiny, preset=name, train=CPU_TRAIN)
        return with_values(base, {**({"law": law} if law else {}), **CPU_SR,
                                  **get_strategy(strategy or base.model.strategy).recipe})
    if name == "tiny":
        sim = SimConfig(law=law or "spring", dim=2, n=4, n_sims=1000, nt=500, keep_every=5, seed=0, **RECIPE_SIM)
        return RunConfig(
            preset=name, sim=sim,
            model=model_for_data(ModelConfig(strategy="bottleneck", hidden=128, n_hidden_layers=2), sim),
            train=TINY_TRAIN,
            distill=DistillConfig(stall_generations=10, search_rows=2000, **RECIPE_DISTILL),
        )
    if name == "paper":
        sim = SimConfig(law=law or "spring", dim=2, n=4, n_sims=10_000, nt=1000, keep_every=10, seed=0)
        return RunConfig(
            preset=name, sim=sim,
            model=model_for_data(ModelConfig(strategy="l1"), sim),
            train=TrainConfig(batch_size=64, epochs=100, seed=0),
            distill=DistillConfig(population_size=1000, generations=200),
        )
    raise InputError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")


def config_from_values(preset_name: str, values: dict) -> RunConfig:
    """Preset `preset_name` (with its settings for values["law"] and values["strategy"]) and
    then `values` applied: {field: value} for every stage, {"stage:field": value} for one stage.
    values["threads"] (`--threads`) is also the SR search's thread count (`with_sr_threads`)."""
    values = with_sr_threads(values, "n_threads", "distill:n_threads")
    return with_values(preset(preset_name, values.get("law"), values.get("strategy")), values)


def config_from_args(args: argparse.Namespace, **extra) -> RunConfig:
    """The preset named by --preset with every given flag applied, and `extra` values (e.g.
    the strategy of the checkpoint `run.py distill` reads, which picks per-strategy settings)."""
    return config_from_values(args.preset, {**vars(args), **extra})


def with_values(cfg: RunConfig, values: dict) -> RunConfig:
    """`cfg` with `values` applied to every stage (`override`) and its model fitted to the new sim."""
    sim = override(cfg.sim, values)
    return dataclasses.replace(cfg, sim=sim, model=model_for_data(override(cfg.model, values), sim),
                               train=override(cfg.train, values), distill=override(cfg.distill, values))


def override(cfg, values: dict):
    """`cfg` (a stage config) with every settable field given in `values` replaced (validated
    by the dataclass). A stage-prefixed key ("train:seed") wins over the shared one ("seed")."""
    prefix = _prefix(type(cfg))
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


# --------------------------------------------------------------------------- #
# Config fields as command-line flags                                          #
# --------------------------------------------------------------------------- #

# The flags a newcomer sets first: `run.py COMMAND --help` lists them, with --out, --preset
# and --threads, in a group before every stage's own flags.
COMMON_FIELDS = ("law", "dim", "strategy", "seed")

# torch's CPU threads when --threads is not given. Measured on 2 cores (benchmarks/RESULTS.md,
# "CPU threads"): 2 threads trained the tiny network 586 -> 3 steps/s and the paper's 46 -> 1.5
# when anything else ran beside them (OpenMP's threads spin-wait for each other), 1 thread lost
# at most 2.6x beside a busy process. The SR search does not collapse so (2 threads beside a
# busy process: 3.0 generations/s against 3.1 at 1), so it keeps its own default, every core.
DEFAULT_THREADS = 1


def common_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """A "common flags" group, listed right after -h: create it before any other group."""
    return parser.add_argument_group("common flags (the stages' own flags follow)")


def add_threads_flag(group) -> None:
    """`--threads N` (dest "threads", None when not given; `config_from_values` reads it)."""
    group.add_argument("--threads", type=positive_int, default=None, metavar="N",
                       help=f"CPU threads of training and distillation: torch's (default {DEFAULT_THREADS}, the "
                            "fastest on a shared CPU: benchmarks/RESULTS.md) and, when given, the SR search's "
                            "(default: every core)")


def with_sr_threads(values: dict, field: str, *aliases: str) -> dict:
    """`values` with values["threads"] (`--threads`, when given) as the SR thread count `field`,
    unless `field` or one of its `aliases` is set itself."""
    if values.get("threads") is None or {field, *aliases} & set(values):
        return values
    return {**values, field: values["threads"]}


def short_usage(group) -> str:
    """A usage line naming only the flags of `group` (the common ones), for `parser.usage`."""
    parts = []
    for action in group._group_actions:
        text = action.option_strings[0] if action.nargs == 0 else f"{action.option_strings[0]} {action.metavar}"
        parts.append(text if action.required else f"[{text}]")
    return textwrap.fill("%(prog)s " + " ".join(parts) + " [stage flags ...]", 100, subsequent_indent=" " * 11,
                         break_on_hyphens=False)


def add_config_flags(parser: argparse.ArgumentParser, classes, common=None,
                     flag_names: dict[str, str] | None = None) -> None:
    """Add one `--field-name` flag per settable field of the stage config `classes`.

    A name that several of `classes` share (e.g. `seed`) gets one flag per stage,
    `--sim-seed`, `--train-seed`, `--distill-seed` (dest "sim:seed", ...), plus the
    plain `--seed`, which sets all of them. The plain flags of COMMON_FIELDS go into
    `common` (a `common_group`; default: the parser itself), the rest into a group per class.
    `flag_names` {field: name} spells a field's flag `--name` (the same flag as other
    commands' field of that meaning); `--field-name` stays accepted, unlisted.
    """
    renamed = flag_names or {}
    counts: dict[str, int] = {}
    owner: dict[str, type] = {}
    for cls in classes:
        for field in settable_fields(cls):
            counts[field.name] = counts.get(field.name, 0) + 1
            owner.setdefault(field.name, cls)
    for name in COMMON_FIELDS:
        if name in owner:
            _add_field_flag(parser if common is None else common, owner[name], name, _plain_help(owner[name], name,
                                                                                               counts[name]))
    for cls in classes:
        group = parser.add_argument_group(f"{cls.__name__} fields")
        for field in settable_fields(cls):
            if counts[field.name] > 1:
                prefix = _prefix(cls)
                _add_field_flag(group, cls, f"{prefix}:{field.name}",
                                f"({prefix} stage only) {_field_help(cls, field.name)}")
            if owner[field.name] is cls and field.name not in COMMON_FIELDS:
                _add_field_flag(group, cls, field.name, _plain_help(cls, field.name, counts[field.name]),
                                renamed.get(field.name))


def _plain_help(cls: type, name: str, count: int) -> str:
    """Help of the plain `--name` flag: the field's, or for a shared name what it sets."""
    return f"sets --*-{name.replace('_', '-')} of every stage" if count > 1 else _field_help(cls, name)


def _field_help(cls: type, name: str) -> str:
    return field_help(cls).get(name, "").replace("%", "%%")


def _add_field_flag(group, cls: type, dest: str, help_text: str, name: str | None = None) -> None:
    """The flag `--dest` ("stage:field" -> --stage-field) of field dest's field of `cls`, or
    `--name` with `--dest` as an unlisted alias."""
    hint = typing.get_type_hints(cls)[dest.split(":")[-1]]
    spellings = [(name, help_text), (dest, argparse.SUPPRESS)] if name else [(dest, help_text)]
    for spelling, text in spellings:
        flag = "--" + spelling.replace(":", "-").replace("_", "-")
        if hint is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=text)
        else:
            group.add_argument(flag, dest=dest, type=flag_type(hint), default=argparse.SUPPRESS,
                               metavar=spelling.split(":")[-1].upper(), help=text)


def positive_int(text: str) -> int:
    """argparse `type=` for a whole number >= 1."""
    value = flag_type(int)(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be at least 1")
    return value


def flag_type(hint):
    """argparse `type=` for a dataclass field annotation (None accepted for Optionals;
    tuples as comma-separated text; NaN and infinities refused)."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        convert = lambda text: tuple(item(v) for v in text.split(",") if v)  # noqa: E731
    else:
        convert = base

    def parse(text: str):
        if optional and text.lower() == "none":
            return None
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}") from None
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a finite number")
        return value
    parse.__name__ = getattr(base, "__name__", "value")
    return parse


def _prefix(cls: type) -> str:
    """The flag prefix of stage config `cls` ("sim", "model", "train", "distill")."""
    return next(prefix for prefix, stage in STAGE_CLASSES.items() if stage is cls)


def field_help(cls) -> dict[str, str]:
    """Per-field help text parsed from the dataclass's 'Attributes:' docstring section."""
    helps, current = {}, None
    in_attrs = False
    for line in (cls.__doc__ or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("Attributes:"):
            in_attrs = True
            continue
        if not in_attrs or not stripped:
            continue
        head, sep, rest = stripped.partition(":")
        if sep and head.isidentifier() and line.startswith(" " * 8) and not line.startswith(" " * 12):
            current = head
            helps[current] = rest.strip()
        elif current:
            helps[current] += " " + stripped
    return helps
