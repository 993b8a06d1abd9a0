"""Config fields as command-line flags: one `--field-name` per settable field of a config
dataclass, its help text taken from the class's "Attributes:" docstring.

In:  an argparse parser, the config classes of a command, and the parsed flags.
Out: the flags (`add_config_flags`, `add_threads_flag`, in a "common flags" group listed
     first: `common_group`, `short_usage`); argparse `type=` converters for an annotation
     (`flag_type`, `positive_int`); the run config the flags of a command name
     (`config_from_args`); the sweep's comma-separated grid lists (`grid_list`).
Bad values: argparse's one-line error, or `InputError`.
"""
from __future__ import annotations

import argparse
import math
import textwrap
import types
import typing

from plumbing.errors import InputError

from .config import DEFAULT_THREADS, RunConfig, settable_fields, stage_prefix
from .presets import config_from_values

# The flags a newcomer sets first: `run.py COMMAND --help` lists them, with --out, --preset
# and --threads, in a group before every stage's own flags.
COMMON_FIELDS = ("law", "dim", "strategy", "seed")


def config_from_args(args: argparse.Namespace, **extra) -> RunConfig:
    """The preset named by --preset with every given flag applied, and `extra` values (e.g.
    the strategy of the checkpoint `run.py distill` reads, which picks per-strategy settings)."""
    return config_from_values(args.preset, {**vars(args), **extra})


def grid_list(flag: str, text: str, kind: type = str) -> list:
    """The value `text` of grid flag `flag` as a list of `kind` ("2,3" -> [2, 3]); empty items are skipped."""
    try:
        return [kind(v) for v in text.split(",") if v]
    except ValueError:
        raise InputError(f"{flag} takes a comma-separated list of {kind.__name__}, got {text!r}") from None


def common_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """A "common flags" group, listed right after -h: create it before any other group."""
    return parser.add_argument_group("common flags (the stages' own flags follow)")


def add_threads_flag(group) -> None:
    """`--threads N` (dest "threads", None when not given; `config_from_values` reads it)."""
    group.add_argument("--threads", type=positive_int, default=None, metavar="N",
                       help=f"CPU threads of training and distillation: torch's (default {DEFAULT_THREADS}, the "
                            "fastest on a shared CPU: benchmarks/RESULTS.md) and, when given, the SR search's "
                            "(default: every core)")


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
                prefix = stage_prefix(cls)
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
