"""What AMP would cost the Hamiltonian model: its accelerations with the energy MLPs under a
bf16 autocast (CPU), against float32, on a trained checkpoint's test graphs.

Run: `python benchmarks/hamiltonian_bf16_error.py RUN/train/checkpoint.pt RUN/data [graphs]`
(from the repository root). Prints the relative error of the bf16 accelerations (median,
90th percentile), their MAE per node against float32, and the model's own test MAE per node.
The model itself never runs under autocast (`gnn.hamiltonian`); this measures why.
"""
import sys

import numpy as np
import torch

from gnn.checkpoint import load_model
from gnn.hamiltonian import canonical
from nbody import state
from nbody.dataset import load_dataset


def accelerations(model, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """-(dH/dx)/m with the energies computed under a bf16 autocast or in float32."""
    dim = model.cfg.dim
    z = canonical(x, dim).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        node, _ = model.energies(z)
    (grad,) = torch.autograd.grad(node.float().sum(), z)
    return (-grad[..., :dim] / state.mass(z, dim)[..., None]).detach()


def main(checkpoint: str, data: str, graphs: int = 2000) -> None:
    model, _ = load_model(checkpoint)
    x, a = load_dataset(data).split("test").graphs()
    x = torch.from_numpy(np.array(x[:graphs], dtype=np.float32))
    ref, low = accelerations(model, x, False), accelerations(model, x, True)
    rel = (low - ref).norm(dim=-1) / ref.norm(dim=-1)
    print(f"bf16 vs float32 accelerations on {len(x)} test graphs: relative error median {rel.median():.4f}, "
          f"90th percentile {rel.quantile(0.9):.4f}; MAE per node between them "
          f"{(low - ref).abs().sum(-1).mean():.4f}; the model's test MAE per node "
          f"{(ref - torch.from_numpy(np.array(a[:graphs]))).abs().sum(-1).mean():.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(v) for v in sys.argv[3:4]))
