"""The one error type for bad user input, and the type and finiteness checks configs share.

Every stage raises `InputError` with a one-line, human-readable message when
its input is unusable (unknown law, missing file, mismatched dimensions, ...).
`run.py` catches it, prints the message and exits with status 2, so users
never see a traceback for a mistake they can fix.
"""
import dataclasses
import math
import numbers
import reprlib
import types
import typing


class InputError(ValueError):
    """Bad input from the user: the message is shown as a single line."""


def require_finite(cfg) -> None:
    """Raise InputError naming the first float field of dataclass `cfg` that is NaN or infinite.

    Every config calls this from `__post_init__`: no setting of this package means
    anything at infinity, and a NaN passes every `not (x > 0)`-style bound check.
    """
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{field.name} must be a finite number, got {value}")


def require_types(cfg) -> None:
    """Raise InputError naming the first field of dataclass `cfg` whose value does not have
    its annotated type (`matches_type`), e.g. the text "four" for an `int` read from JSON."""
    hints = typing.get_type_hints(type(cfg))
    for field in dataclasses.fields(cfg):
        hint = hints.get(field.name, typing.Any)
        value = getattr(cfg, field.name)
        if not matches_type(value, hint):
            raise InputError(f"{field.name} must be of type {type_name(hint)}, got {reprlib.repr(value)}")


def matches_type(value, hint) -> bool:
    """Whether `value` fits the annotation `hint`: bool is not an int, an int is a float,
    tuples and unions are checked element-wise; annotations it does not know pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arg) for arg in args)
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        kind = numbers.Integral if hint is int else numbers.Real
        return isinstance(value, kind) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(matches_type(item, args[0]) for item in value)
        return len(value) == len(args) and all(map(matches_type, value, args))
    if origin is typing.Literal:
        return value in args
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint) if isinstance(hint, type) else True


def type_name(hint) -> str:
    """`hint` as a user reads it: "int", "float or None", "tuple[str, ...]"."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
