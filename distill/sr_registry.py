"""The registry of symbolic-regression (SR) engines: each engine's name and where its fit lives.

In:  an engine name (`DistillConfig.sr_engine`, run.py's --sr-engine).
Out: `sr_engine_names()`, the names `DistillConfig` accepts, in registration order;
     `get_sr_engine(name)`, the engine's `fit(X, y, names, cfg) -> list[Candidate]`;
     `reports_rounds(name)`, whether its fit also takes a keyword `on_round` (the progress
     bar of `distill.sr_engines.fit`).
Built in: "operon" (pyoperon, embedded; the default) and "pysr" (needs Julia). A built-in
engine is registered by the name of its module, which is imported on first use: registering
costs nothing, and an engine that cannot be imported (or whose library is missing: each
engine raises that itself) is a one-line `InputError` when it is used, never when the
registry is read. `register_sr_engine` adds an engine given as a callable.

Imports nothing of `distill`: `distill.config` validates against it, and the engines import
the config.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from plumbing.errors import InputError
from plumbing.registry import Registry

SREngine = Callable[..., list]


@dataclass(frozen=True)
class _Entry:
    fit: SREngine | None   # given as a callable, or
    module: str | None     # the module whose `fit` it is, imported on first use
    reports_rounds: bool


_SR_ENGINES: Registry[_Entry] = Registry("SR engine")


def register_sr_engine(name: str, fit: SREngine, reports_rounds: bool = False) -> None:
    """Make `fit(X, y, names, cfg)` available as SR engine `name`; with `reports_rounds` it
    also takes a keyword `on_round`, to call with the generations run so far after each round."""
    _SR_ENGINES.register(name, _Entry(fit, None, reports_rounds))


def _register_module(name: str, module: str, reports_rounds: bool = False) -> None:
    """Register the `fit` of `module` as SR engine `name`, imported when the engine is first used."""
    _SR_ENGINES.register(name, _Entry(None, module, reports_rounds))


def sr_engine_names() -> tuple[str, ...]:
    """The registered SR engines' names, in registration order."""
    return _SR_ENGINES.names()


def reports_rounds(name: str) -> bool:
    """Whether engine `name`'s fit takes `on_round` (InputError for an unknown name)."""
    return _SR_ENGINES.get(name).reports_rounds


def get_sr_engine(name: str) -> SREngine:
    """The fit of SR engine `name`, its module imported on first use.

    Raises:
        InputError: unknown name, or an engine module that cannot be imported (one line).
    """
    entry = _SR_ENGINES.get(name)
    if entry.fit is not None:
        return entry.fit
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        raise InputError(f"SR engine {name!r} is unavailable: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else entry.module}") from None
    return module.fit


_register_module("operon", "distill.operon", reports_rounds=True)
_register_module("pysr", "distill.pysr_engine")
