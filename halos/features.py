"""The paper's standardisation of halo features and the inputs of the network and the formulas.

In:  a `Catalogue`, its `HaloGraph`, a set of receiver halos.
Out: `Standardiser` (saved as JSON next to every output): (pos - box/2)/σ_pos, v/σ_v, M/σ_M
     with the stds of the catalogue it was made from (docs/facts.md §7);
     `node_features` [N, 4] = (v, M) standardised; `edge_features` [e, 11] =
     [Δpos (3, minimum image), (v, M) of the receiver, (v, M) of the sender] (absolute
     positions are never fed in); `formula_inputs` the per-edge and per-receiver values of
     `halos.formulas` in the same units; `sr_edge_inputs` the columns the message SR sees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalogue import Catalogue
from .formulas import HAND_RADIUS, HaloInputs
from .graph import HaloGraph, displacement, edges_of

SR_EDGE_NAMES = ("r", "M1", "M2", "dv")     # distance, receiver and sender mass, |vi - vj|
SR_NODE_NAMES = ("e", "M1", "v1")            # summed informative component, mass, speed |vi|


@dataclass(frozen=True)
class Standardiser:
    """Feature scales: positions (x - box/2)/pos_std, velocities v/vel_std, masses M/mass_std."""

    box: float
    pos_std: float
    vel_std: float
    mass_std: float

    @classmethod
    def of(cls, cat: Catalogue) -> "Standardiser":
        """The stds of `cat` (over every coordinate / component; zero stds become 1)."""
        def std(a):
            s = float(np.std(a))
            return s if s > 0 else 1.0
        return cls(cat.box, std(cat.pos), std(cat.vel), std(cat.mass))

    def node_features(self, cat: Catalogue) -> np.ndarray:
        """[N, 4] float32: (vx, vy, vz)/σ_v, M/σ_M."""
        return np.column_stack([cat.vel / self.vel_std, cat.mass / self.mass_std]).astype(np.float32)

    def edge_features(self, cat: Catalogue, nodes: np.ndarray, recv: np.ndarray, send: np.ndarray) -> np.ndarray:
        """[e, 11] float32 message inputs of edges send -> recv (global halo indices);
        `nodes` = node_features(cat)."""
        d = displacement(cat.pos[recv], cat.pos[send], cat.box) / self.pos_std
        return np.hstack([d.astype(np.float32), nodes[recv], nodes[send]])

    def formula_inputs(self, cat: Catalogue, graph: HaloGraph, receivers: np.ndarray) -> HaloInputs:
        """`halos.formulas` inputs of `receivers` with all their edges, in these units."""
        return formula_inputs(cat, graph, receivers, self.pos_std, self.vel_std, self.mass_std)

    def sr_edge_inputs(self, cat: Catalogue, recv: np.ndarray, send: np.ndarray) -> np.ndarray:
        """[e, 4] float64 columns SR_EDGE_NAMES of edges send -> recv."""
        d = displacement(cat.pos[recv], cat.pos[send], cat.box)
        return np.column_stack([np.linalg.norm(d, axis=1) / self.pos_std, cat.mass[recv] / self.mass_std,
                                cat.mass[send] / self.mass_std,
                                np.linalg.norm(cat.vel[recv] - cat.vel[send], axis=1) / self.vel_std])


def formula_inputs(cat: Catalogue, graph: HaloGraph, receivers: np.ndarray, pos_scale: float,
                   vel_scale: float, mass_scale: float) -> HaloInputs:
    """Per-edge r, Mj, |vi - vj| and per-receiver Mi, |vi| of `receivers`, divided by the scales
    (the simple formula's 20 Mpc/h radius too)."""
    receivers = np.asarray(receivers, dtype=np.int64)
    local, send = edges_of(graph, receivers)
    recv = receivers[local]
    d = displacement(cat.pos[recv], cat.pos[send], cat.box)
    return HaloInputs(
        recv=local, r=np.linalg.norm(d, axis=1) / pos_scale, m_send=cat.mass[send] / mass_scale,
        dv=np.linalg.norm(cat.vel[recv] - cat.vel[send], axis=1) / vel_scale,
        mass=cat.mass[receivers] / mass_scale, speed=np.linalg.norm(cat.vel[receivers], axis=1) / vel_scale,
        hand_radius=HAND_RADIUS / pos_scale)
