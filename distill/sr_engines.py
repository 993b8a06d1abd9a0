"""Symbolic-regression (SR) fits behind one interface: the engine the config names, with a progress bar.

In:  X [N, d] float64, y [N], column names, a `DistillConfig` (its `sr_engine` names the engine).
Out: the SR engine's whole Pareto front as `Candidate`s (sympy expression, PySR-style
     complexity, MAE on (X, y)), so selection, refit and judgement are SR-engine-independent.

An SR engine is a callable `fit(X, y, names, cfg) -> list[Candidate]`, registered in
`distill.sr_registry`: built-in "operon" (pyoperon, embedded) and "pysr" (optional, needs
Julia); `register_sr_engine` adds more.

Progress: each fit shows a bar over its generation budget ("distill edge 1/2: 40% 20/50
[8 s, 2.5 gen/s, ETA 12 s]"; plain lines in a log, `plumbing.progress`), with a line as it
starts. An engine registered with `reports_rounds` advances it after each round of
generations (operon: each `stall_generations` round, so a fit run in one round, k = 0, shows
its start and its end); the line says the fit stops by `max_time`, and an early stop ends
it before the ETA. What the bars are called and whether they show is set for a block of
code with `progress(label=..., enabled=...)`; the default is shown, "SR fit".
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from plumbing.errors import InputError
from plumbing.progress import progress_bar

from .candidate import Candidate
from .config import DistillConfig
from .sr_registry import get_sr_engine, reports_rounds


@dataclass(frozen=True)
class _Progress:
    label: str = "SR fit"
    enabled: bool = True


# A context variable, not an argument: the fits sit under the stages' own functions
# (fit_target, the distill pipelines), which pass a label but not whether bars show.
_PROGRESS: contextvars.ContextVar[_Progress] = contextvars.ContextVar("sr_progress", default=_Progress())


@contextlib.contextmanager
def progress(label: str | None = None, enabled: bool | None = None) -> Iterator[None]:
    """Within the block, the fits' progress bars read "distill {label}" and show when
    `enabled`; None keeps the enclosing block's setting."""
    outer = _PROGRESS.get()
    token = _PROGRESS.set(_Progress(outer.label if label is None else label,
                                    outer.enabled if enabled is None else enabled))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], cfg: DistillConfig) -> list[Candidate]:
    """Run the configured SR engine on one target.

    Args:
        X: inputs [N, d]; y: target [N]; names: d column names (valid Python identifiers).
        cfg: budget, operators, seed and SR engine name.
    Returns:
        candidate equations (the SR engine's Pareto front / hall of fame).
    Raises:
        InputError: unknown or unavailable SR engine, or non-finite data.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape != (y.shape[0], len(names)):
        raise InputError(f"SR data shapes disagree: X {X.shape}, y {y.shape}, {len(names)} names")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise InputError("SR data contain inf or nan")
    engine, shown = get_sr_engine(cfg.sr_engine), _PROGRESS.get()
    with progress_bar(cfg.generations, f"distill {shown.label}", enabled=shown.enabled, unit="gen") as bar:
        bar.set_postfix_str(f"stops by {cfg.max_time:.0f} s")
        bar.refresh()
        if reports_rounds(cfg.sr_engine):
            front = engine(X, y, names, cfg, on_round=lambda done: bar.update(done - bar.n))
        else:
            front = engine(X, y, names, cfg)
            bar.update(cfg.generations)
        bar.set_postfix_str(f"{len(front)} equations on the front")
    return front
