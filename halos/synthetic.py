"""A SYNTHETIC halo catalogue with a planted overdensity law, for tests and the default job.

In:  a `SyntheticConfig`.
Out: a `Catalogue` with synthetic=True (every file and table made from it says "synthetic";
     nothing made from it is a cosmology result):
     positions   a Thomas cluster process in the periodic box: `cluster_fraction` of the
                 halos in clusters (centres uniform, lognormal richness, Gaussian members of
                 std `cluster_sigma`), the rest uniform;
     masses      M14 = mass_min · Pareto(mass_slope) · (local density)^density_power, the
                 local density being the halo count within 20 Mpc/h over its mean, so
                 masses grow with the local density;
     velocities  a bulk velocity per cluster plus a dispersion per halo (km/s; no law reads
                 them, they are what a "without mass" formula could use);
     delta       the paper's "best, with mass" formula (`halos.formulas.best_with_mass`, the
                 published constants, r in units of 1000/√12 Mpc/h and M in M14, all
                 neighbours within `PLANT_CUTOFF`) plus Gaussian noise of std `noise`.
     The box defaults to the side that gives Quijote's number density (215,854 halos in
     (1000 Mpc/h)^3), so a neighbourhood holds as many halos as in the paper's catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from plumbing.errors import InputError, require_finite, require_types

from .catalogue import Catalogue
from .features import formula_inputs
from .formulas import PAPER, PAPER_POSITION_STD, best_with_mass, pair_term
from .graph import HaloGraph, build_graph

QUIJOTE_HALOS, QUIJOTE_BOX = 215_854, 1000.0
PLANT_CUTOFF = 50.0
CHUNK = 10_000          # receivers per chunk when the planted law is evaluated
PLANTED = np.array(PAPER["best_with_mass"][0])


@dataclass(frozen=True)
class SyntheticConfig:
    """A synthetic catalogue (module docstring).

    Attributes:
        n_halos: halos in the box.
        box: box side in Mpc/h; None: Quijote's number density for n_halos.
        catalogue_seed: seeds positions, masses, velocities and noise.
        cluster_fraction: share of halos in clusters.
        cluster_size: mean halos per cluster.
        cluster_sigma: std of members around their cluster centre (Mpc/h).
        mass_min: smallest M14 before the density factor.
        mass_slope: Pareto index of the mass draw.
        density_power: masses scale as (local density / mean)^density_power.
        velocity_sigma: per-halo and per-cluster velocity std (km/s).
        noise: std of the Gaussian noise added to the planted δ.
    """

    n_halos: int = 12_000
    box: float | None = None
    catalogue_seed: int = 0
    cluster_fraction: float = 0.6
    cluster_size: float = 10.0
    cluster_sigma: float = 10.0
    mass_min: float = 0.2
    mass_slope: float = 1.8
    density_power: float = 0.5
    velocity_sigma: float = 300.0
    noise: float = 0.05

    def __post_init__(self):
        require_types(self)
        require_finite(self)
        if self.n_halos < 10:
            raise InputError(f"n_halos must be >= 10, got {self.n_halos}")
        if self.box is not None and not self.box > 2 * PLANT_CUTOFF:
            raise InputError(f"box must exceed {2 * PLANT_CUTOFF:g} Mpc/h, got {self.box}")
        if not (0 <= self.cluster_fraction <= 1 and self.cluster_size >= 1 and self.cluster_sigma > 0
                and self.mass_min > 0 and self.mass_slope > 0 and self.velocity_sigma >= 0 and self.noise >= 0):
            raise InputError("need cluster_fraction in [0, 1], cluster_size >= 1, cluster_sigma > 0, "
                             "mass_min > 0, mass_slope > 0, velocity_sigma >= 0 and noise >= 0")

    @property
    def resolved_box(self) -> float:
        """The box side: `box`, or the one with Quijote's number density."""
        return self.box if self.box is not None else QUIJOTE_BOX * (self.n_halos / QUIJOTE_HALOS) ** (1 / 3)


def make_catalogue(cfg: SyntheticConfig) -> Catalogue:
    """The synthetic catalogue of `cfg` (deterministic for a given config)."""
    rng = np.random.default_rng(cfg.catalogue_seed)
    box, n = cfg.resolved_box, cfg.n_halos
    n_clustered = int(round(cfg.cluster_fraction * n))
    n_clusters = max(1, int(round(n_clustered / cfg.cluster_size)))
    centres = rng.uniform(0, box, (n_clusters, 3))
    richness = rng.lognormal(0.0, 1.0, n_clusters)
    member_of = rng.choice(n_clusters, n_clustered, p=richness / richness.sum())
    pos = np.vstack([centres[member_of] + rng.normal(0, cfg.cluster_sigma, (n_clustered, 3)),
                     rng.uniform(0, box, (n - n_clustered, 3))])
    pos = np.mod(pos, box)
    pos[pos >= box] = 0.0                              # np.mod can round a tiny negative up to box
    bulk = rng.normal(0, cfg.velocity_sigma, (n_clusters, 3))
    vel = rng.normal(0, cfg.velocity_sigma, (n, 3))
    vel[:n_clustered] += bulk[member_of]
    counts = cKDTree(pos, boxsize=box).query_ball_point(pos, 20.0, return_length=True).astype(np.float64)
    mass = cfg.mass_min * rng.pareto(cfg.mass_slope, n) + cfg.mass_min
    mass *= (counts / counts.mean()) ** cfg.density_power
    order = rng.permutation(n)                          # no ordering by cluster membership in the file
    pos, vel, mass = pos[order], vel[order], mass[order]
    graph = build_graph(pos, box, PLANT_CUTOFF)
    cat = Catalogue(pos, vel, mass, np.zeros(n), box, synthetic=True)
    delta = planted_delta(cat, graph) + rng.normal(0, cfg.noise, n)
    return Catalogue(pos, vel, mass, delta, box, synthetic=True)


def _per_receiver(cat: Catalogue, graph: HaloGraph, receivers: np.ndarray | None, fn) -> np.ndarray:
    """fn(formula inputs) over `receivers` (default: all), CHUNK receivers at a time, so the
    per-edge arrays of one chunk, not of the whole graph, are in memory."""
    receivers = np.arange(len(cat)) if receivers is None else np.asarray(receivers)
    return np.concatenate([fn(formula_inputs(cat, graph, receivers[s:s + CHUNK], PAPER_POSITION_STD, 1.0, 1.0))
                           for s in range(0, len(receivers), CHUNK)])


def planted_delta(cat: Catalogue, graph: HaloGraph, receivers: np.ndarray | None = None) -> np.ndarray:
    """The noiseless planted δ of `receivers` (default: every halo); graph: `build_graph(pos,
    box, PLANT_CUTOFF)`."""
    return _per_receiver(cat, graph, receivers, lambda inp: best_with_mass(PLANTED, inp))


def planted_e(cat: Catalogue, graph: HaloGraph, receivers: np.ndarray | None = None) -> np.ndarray:
    """The planted ei = Σ_j (C4 + Mj)/(C5 + (C6 r)^C7) of `receivers` (default: every halo)."""
    return _per_receiver(cat, graph, receivers, lambda inp: inp.sum_edges(planted_pair(inp.r, inp.m_send)))


def planted_pair(r: np.ndarray, m_send: np.ndarray) -> np.ndarray:
    """The planted pair term, r in units of 1000/√12 Mpc/h, Mj in M14."""
    return pair_term(*PLANTED[3:7], r, m_send)
