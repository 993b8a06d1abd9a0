"""`SimConfig`: everything that defines a dataset, validated on construction.

In:  field values (from run.py flags, a preset, or a saved config.json).
Out: a frozen, validated config; `resolved_n` / `resolved_dt` fill law defaults.
Bad values (wrong type, NaN or infinite, out of range) raise `InputError` with a
one-line message.
"""
from __future__ import annotations

from dataclasses import dataclass

from plumbing.errors import InputError, require_finite, require_types

from .integrators import get_integrator
from .laws import get_law

SPLIT_MODES = ("seed", "time")         # how a dataset is split: `SimConfig.split`
SPLIT_NAMES = ("train", "val", "test")  # the splits every dataset holds


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
            outlier pruning); None keeps everything (unless prune_tail derives a p).
        prune_tail: derive prune_percentile from the data when it is None: p = 100 x the
            share of the training split's acceleration components within prune_tail x
            their median magnitude, so a light-tailed law (nothing that far out) keeps
            everything and a law with close encounters (1/r^2: 0.2-1 % of components
            beyond 300 x the median) drops their time steps; the p used and why are in
            meta.json's "prune". None derives nothing.
        official_quirks: reproduce the official code's node-order-dependent damping and
            string gravity (see `nbody.laws.external_weights`).
        integrator: a registered integrator (`nbody.integrators`): "auto" (CUDA if a real GPU,
            else CPU), "cpu", "cuda" or "reference" (NumPy).
        rtol: relative error tolerance of the adaptive integrator.
        atol: absolute error tolerance of the adaptive integrator.
        max_substeps: adaptive steps allowed per output interval before a simulation is
            marked failed (never silently inaccurate, unlike odeint's mxstep).
        max_failed_fraction: largest share of failed simulations (0..1) a dataset may have;
            above it generation is refused and nothing is written (failures are dropped,
            so many of them bias the data toward the easy systems).
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
    prune_tail: float | None = None
    official_quirks: bool = False
    integrator: str = "auto"
    rtol: float = 1e-9
    atol: float = 1e-9
    max_substeps: int = 100_000
    max_failed_fraction: float = 0.05

    def __post_init__(self):
        require_types(self)
        require_finite(self)
        law = get_law(self.law)
        if self.n is not None and self.n < 2:
            raise InputError(f"n must be an integer >= 2, got {self.n}")
        if self.dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {self.dim}")
        if law.gravity and self.dim < 2:
            raise InputError("gravity needs dim >= 2")
        if self.n_sims < 1:
            raise InputError(f"n_sims must be a positive integer, got {self.n_sims}")
        if self.n_test_sims is not None and self.n_test_sims < 1:
            raise InputError(f"n_test_sims must be a positive integer, got {self.n_test_sims}")
        if self.nt < 2:
            raise InputError(f"nt must be an integer >= 2, got {self.nt}")
        if self.dt is not None and not (self.dt > 0):
            raise InputError(f"dt must be positive, got {self.dt}")
        if not 1 <= self.keep_every < self.nt:
            raise InputError(f"keep_every must be an integer in [1, nt), got {self.keep_every}")
        if self.softening < 0:
            raise InputError(f"softening must be >= 0, got {self.softening}")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        if self.split not in SPLIT_MODES:
            raise InputError(f"split must be one of {SPLIT_MODES}, got {self.split!r}")
        if not (0 <= self.val_fraction < 1) or not (0 < self.test_fraction < 1):
            raise InputError("val_fraction must be in [0, 1) and test_fraction in (0, 1)")
        if self.split == "time" and self.val_fraction + self.test_fraction >= 1:
            raise InputError("val_fraction + test_fraction must be < 1 for split='time'")
        if self.prune_percentile is not None and not (50 < self.prune_percentile < 100):
            raise InputError(f"prune_percentile must be in (50, 100), got {self.prune_percentile}")
        if self.prune_tail is not None and not self.prune_tail > 1:
            raise InputError(f"prune_tail must be > 1 (a multiple of the median |a|) or None, got {self.prune_tail}")
        get_integrator(self.integrator)   # InputError naming the registered ones (`nbody.integrators`)
        if not (self.rtol > 0 and self.atol > 0):
            raise InputError("rtol and atol must be positive")
        if self.max_substeps < 1:
            raise InputError(f"max_substeps must be at least 1, got {self.max_substeps}")
        if not (0 <= self.max_failed_fraction <= 1):
            raise InputError(f"max_failed_fraction must be in [0, 1], got {self.max_failed_fraction}")

    @property
    def prunes(self) -> bool:
        """Whether a dataset of this config may be pruned (and so has {split}_mask.npy files
        when its meta.json records a percentile)."""
        return self.prune_percentile is not None or self.prune_tail is not None

    @property
    def resolved_n(self) -> int:
        return self.n if self.n is not None else get_law(self.law).default_n

    @property
    def resolved_dt(self) -> float:
        return self.dt if self.dt is not None else get_law(self.law).dt

    @property
    def resolved_n_test_sims(self) -> int:
        return self.n_test_sims if self.n_test_sims is not None else max(1, self.n_sims // 4)
