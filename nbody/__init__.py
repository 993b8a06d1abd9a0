"""nbody: softened N-body simulations of the paper's particle systems.

In:  a `SimConfig` (law, n particles, dim 2|3, number of simulations and steps, dt,
     softening, seed, split and pruning options).
Out: a dataset directory (see `nbody.dataset`): per split, states [S, T, n, 2*dim+2]
     float32 laid out as (pos[dim], vel[dim], q, m) and true accelerations
     [S, T, n, dim], plus `meta.json` (config, law, version) and a trajectory plot.

The physics (pair laws, softening, damping, gravity) lives in `nbody.laws` and is shared
by the NumPy reference integrator, the Numba CPU and CUDA kernels, the tests and the
analysis of learned messages; the edge template of n interacting particles and the
scatter-sum over it live in `nbody.graph`, shared with the graph network.
"""
from .laws import Law, get_law, law_names, register_law

__all__ = ["Law", "get_law", "law_names", "register_law"]
