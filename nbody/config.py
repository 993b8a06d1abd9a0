"""`SimConfig`: everything that defines a dataset, validated on construction.

In:  field values (from run.py flags, a preset, or a saved config.json).
Out: a frozen, validated config; `resolved_n` / `resolved_dt` fill law defaults.
Bad values raise `InputError` with a one-line message.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .laws import get_law

SPLITS = ("seed", "time")
BACKENDS = ("auto", "cpu", "cuda", "reference")


@dataclass(frozen=True)
class SimConfig:
    """One dataset.

    Attributes:
        law: registered law name (`nbody.laws`).
        n: particles per system; None takes the law's default (4; 30 for string).
        dim: spatial dimension, 2 or 3.
        n_sims: simulations for train + validation.
        n_test_sims: simulations for the separate-seed test set (split="seed"); None: n_sims // 4.
        nt: sampled time steps per simulation (every `dt`).
        dt: sampling interval; None takes the law's paper value.
        keep_every: store every k-th sampled step (the demo keeps every 5th).
        softening: eps in r' = r + eps (paper: 0.01).
        seed: master seed; the same seed gives byte-identical data.
        split: "seed" (train/val are disjoint simulations, test is a separate seed: the
            paper's text) or "time" (the official demo: one set of simulations, the last
            `test_fraction` of kept time steps is the test set).
        val_fraction: fraction of train+val simulations (or time steps) kept for validation.
        test_fraction: fraction of time steps for the test set when split="time".
        prune_percentile: e.g. 99.99 drops every time step whose v or a has a component
            outside the [100-p, p] percentiles of the training split (the reproduction's
            outlier pruning); None keeps everything.
        official_quirks: reproduce the official code's node-order-dependent damping and
            string gravity (see `nbody.laws.external_weights`).
        backend: "auto" (CUDA if a real GPU, else CPU), "cpu", "cuda" or "reference" (NumPy).
        rtol: relative error tolerance of the adaptive integrator.
        atol: absolute error tolerance of the adaptive integrator.
        max_substeps: adaptive steps allowed per output interval before a simulation is
            marked failed (never silently inaccurate, unlike odeint's mxstep).
    """

    law: str = "spring"
    n: int | None = None
    dim: int = 2
    n_sims: int = 1000
    n_test_sims: int | None = None
    nt: int = 1000
    dt: float | None = None
    keep_every: int = 1
    softening: float = 0.01
    seed: int = 0
    split: str = "seed"
    val_fraction: float = 0.1
    test_fraction: float = 0.25
    prune_percentile: float | None = None
    official_quirks: bool = False
    backend: str = "auto"
    rtol: float = 1e-9
    atol: float = 1e-9
    max_substeps: int = 100_000

    def __post_init__(self):
        law = get_law(self.law)
        if self.n is not None and (not isinstance(self.n, int) or self.n < 2):
            raise InputError(f"n must be an integer >= 2, got {self.n}")
        if self.dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {self.dim}")
        if law.gravity and self.dim < 2:
            raise InputError("gravity needs dim >= 2")
        if not isinstance(self.n_sims, int) or self.n_sims < 1:
            raise InputError(f"n_sims must be a positive integer, got {self.n_sims}")
        if self.n_test_sims is not None and (not isinstance(self.n_test_sims, int) or self.n_test_sims < 1):
            raise InputError(f"n_test_sims must be a positive integer, got {self.n_test_sims}")
        if not isinstance(self.nt, int) or self.nt < 2:
            raise InputError(f"nt must be an integer >= 2, got {self.nt}")
        if self.dt is not None and not (self.dt > 0):
            raise InputError(f"dt must be positive, got {self.dt}")
        if not isinstance(self.keep_every, int) or self.keep_every < 1 or self.keep_every >= self.nt:
            raise InputError(f"keep_every must be an integer in [1, nt), got {self.keep_every}")
        if not (self.softening >= 0):
            raise InputError(f"softening must be >= 0, got {self.softening}")
        if self.split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not (0 <= self.val_fraction < 1) or not (0 < self.test_fraction < 1):
            raise InputError("val_fraction must be in [0, 1) and test_fraction in (0, 1)")
        if self.split == "time" and self.val_fraction + self.test_fraction >= 1:
            raise InputError("val_fraction + test_fraction must be < 1 for split='time'")
        if self.prune_percentile is not None and not (50 < self.prune_percentile < 100):
            raise InputError(f"prune_percentile must be in (50, 100), got {self.prune_percentile}")
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if not (self.rtol > 0 and self.atol > 0):
            raise InputError("rtol and atol must be positive")

    @property
    def resolved_n(self) -> int:
        return self.n if self.n is not None else get_law(self.law).default_n

    @property
    def resolved_dt(self) -> float:
        return self.dt if self.dt is not None else get_law(self.law).dt

    @property
    def resolved_n_test_sims(self) -> int:
        return self.n_test_sims if self.n_test_sims is not None else max(1, self.n_sims // 4)
