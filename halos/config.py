"""`HaloConfig`: the graph, model, training and distillation settings of `run.py halos`.

In:  field values (run.py flags, a preset of `pipeline.presets.HALO_PRESETS`, or a saved
     halo_config.json).
Out: a frozen, validated config saved next to every output; `distill_config()` the
     `distill.config.DistillConfig` the shared SR engine, selection and refit read.
Bad values raise `InputError` with one line. Imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

from distill.config import DistillConfig
from plumbing.errors import InputError, require_finite, require_types

@dataclass(frozen=True)
class HaloConfig:
    """One halo experiment (paper §4.3, App. E; docs/facts.md §7). Defaults are the paper's.

    Attributes:
        cutoff: radius of the graph in Mpc/h (paper: 50).
        face_mask: leave halos closer than `cutoff` to a box face out of the loss and of
            every reported error (paper: yes; the graph is periodic, so this only drops halos).
        chunk_size: receivers per cKDTree query while building the graph.
        hidden: width of every hidden layer of both MLPs (paper: 500).
        n_hidden_layers: hidden layers per MLP (dm-code's printout: 3; the paper's text says 2).
        msg_dim: message components (paper: 100).
        batch_size: receiver halos per step, each with all its neighbours (dm-code: 32).
        epochs: epochs (dm-code: 100).
        steps_per_epoch: optimiser steps per epoch (dm-code: 1500).
        lr: Adam learning rate and OneCycleLR max_lr.
        weight_decay: Adam weight decay.
        final_div_factor: OneCycleLR final_div_factor.
        l1_weight: weight of the L1 message penalty (per receiver: the sum over its edges of |m|_1).
        seed: seeds the split, the batches, the parameters and the SR sampling.
        ood_threshold: halos with δ above it are held out of training and fits (paper: 1).
        test_fraction: share of the other halos held out as the in-distribution test set.
        checkpoint_every: steps between resume points.
        device: "auto", "cpu", "cuda" or "cuda:N".
        eval_halos: at most this many halos of each set for the reported errors (None: all).
        sr_edges: training edges in the message analysis and the message SR fit.
        sr_nodes: training halos in the node SR fit.
        refit_halos: training halos the formulas' constants are refit on.
        sr_generations: SR generations per fit.
        sr_population_size: SR population.
        sr_max_time: SR wall-time limit per fit in seconds.
        sr_max_length: largest expression SR may build.
        sr_operators: SR operators ("^" lets it write the paper's (C6 r)^C7).
        sr_threads: SR threads (0: every core).
    """

    cutoff: float = 50.0
    face_mask: bool = True
    chunk_size: int = 10_000
    hidden: int = 500
    n_hidden_layers: int = 3
    msg_dim: int = 100
    batch_size: int = 32
    epochs: int = 100
    steps_per_epoch: int = 1500
    lr: float = 1e-3
    weight_decay: float = 1e-8
    final_div_factor: float = 1e5
    l1_weight: float = 1e-2
    seed: int = 0
    ood_threshold: float = 1.0
    test_fraction: float = 0.1
    checkpoint_every: int = 500
    device: str = "auto"
    eval_halos: int | None = 5000
    sr_edges: int = 5000
    sr_nodes: int = 3000
    refit_halos: int = 3000
    sr_generations: int = 100
    sr_population_size: int = 500
    sr_max_time: float = 120.0
    sr_max_length: int = 30
    sr_operators: tuple[str, ...] = ("+", "-", "*", "/", "^")
    sr_threads: int = 0

    def __post_init__(self):
        require_types(self)
        require_finite(self)
        for name in ("chunk_size", "hidden", "msg_dim", "batch_size", "epochs", "steps_per_epoch",
                     "checkpoint_every", "sr_edges", "sr_nodes", "refit_halos", "sr_generations",
                     "sr_population_size", "sr_max_length"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.eval_halos is not None and self.eval_halos < 1:
            raise InputError(f"eval_halos must be a positive integer or None, got {self.eval_halos!r}")
        if self.n_hidden_layers < 0 or self.sr_threads < 0:
            raise InputError("n_hidden_layers and sr_threads must be >= 0")
        if not (self.cutoff > 0 and self.lr > 0 and self.final_div_factor > 0 and self.sr_max_time > 0):
            raise InputError("cutoff, lr, final_div_factor and sr_max_time must be positive")
        if not (self.weight_decay >= 0 and self.l1_weight >= 0 and 0 < self.test_fraction < 1):
            raise InputError("need weight_decay >= 0, l1_weight >= 0 and test_fraction in (0, 1)")
        self.distill_config()          # the SR settings are valid DistillConfig values

    def distill_config(self) -> DistillConfig:
        """The shared SR stage's settings for the message and node fits."""
        return DistillConfig(n_edges=self.sr_edges, n_nodes=self.sr_nodes, seed=self.seed,
                             operators=self.sr_operators, population_size=self.sr_population_size,
                             generations=self.sr_generations, max_length=self.sr_max_length,
                             max_time=self.sr_max_time, n_threads=self.sr_threads)
