"""A trained GNN on one isolated pair: its predicted acceleration of the receiver against the
true law's, over a grid of the two masses.

In:  a run folder (its train/checkpoint.pt and the law in its config.json), a distance r.
Out: printed tables (rows m1, columns m2) of the network's a_x of the receiver and of the
     truth (`nbody.laws.accelerations`, the physics the simulator uses), receiver at the
     origin, sender at (r, 0[, 0]), both at rest, charges +1.

    PYTHONPATH=. python results/recipe-grid/third-law/training-probes/pair_probe.py RUN [r]
"""
import sys

import numpy as np
import torch

from gnn.checkpoint import load_model
from nbody.laws import accelerations, get_law
from plumbing.io import load_json


def main(run: str, r: float) -> None:
    model, _ = load_model(f"{run}/train/checkpoint.pt")
    model.eval()
    sim = load_json(f"{run}/config.json")["sim"]
    law, dim = get_law(sim["law"]), model.cfg.dim
    masses = np.exp(np.linspace(-2.0, 2.0, 5))
    m1, m2 = np.meshgrid(masses, masses, indexing="ij")                        # [5, 5]
    pos = np.zeros(m1.shape + (2, dim))
    pos[..., 1, 0] = r
    vel = np.zeros_like(pos)
    q = np.ones(m1.shape + (2,))
    m = np.stack([m1, m2], axis=-1)
    truth = accelerations(law, pos, vel, q, m, sim["softening"])[..., 0, 0]      # [5, 5]
    x = np.concatenate([pos, vel, q[..., None], m[..., None]], axis=-1).reshape(-1, 2, 2 * dim + 2)
    with torch.no_grad():
        net = model(torch.as_tensor(x, dtype=torch.float32)).acc[:, 0, 0].numpy().reshape(m1.shape)
    for title, table in (("network", net), ("truth", truth)):
        print(f"{title}: a_x of the receiver at r = {r:g} (rows m1, columns m2)")
        print("  m1\\m2 " + " ".join(f"{v:7.2f}" for v in masses))
        for value, row in zip(masses, table):
            print(f"  {value:6.2f} " + " ".join(f"{v:7.3f}" for v in row))
    print(f"median relative error {np.median(np.abs(net - truth) / np.abs(truth)):.3g}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
