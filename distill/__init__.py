"""distill: symbolic distillation of a trained GNN (Cranmer et al. 2020, §4.1 and App. C).

In:  a GNN checkpoint (`gnn.checkpoint`) and its dataset (`nbody.dataset`), or any
     message-passing model given as NumPy callables (`symbolic.Network`), and a
     `DistillConfig`.
Out: in out_dir (atomic writes)
     distill.json        every number (schema below)
     equations.md        selected edge/node equations: LaTeX, sympy text, verdicts
     pareto_edge_{k}.csv / pareto_node_{axis}.csv   complexity, loss (MAE), score, selected, equation
     messages.npz        edge inputs, messages and the message-vs-force fits (`messages.save_messages`)
     distill_config.json the DistillConfig

Steps: record messages on test edges -> significance (std; mean KL for KL models), sparsity
(variance share of the top `dim` components), robust Powell R² against the true pair force
and against F/m1 -> symbolic regression of each significant component from
(dx, dy, (dz), r, rs, m1, m2, q1, q2) on training edges (receiver "1", sender "2",
dx = x1 - x2, rs = r + softening) and of each node output from (e1..ek, m1, q1, v1) -> Pareto front ->
selection ("score": max -dlog(MAE)/dcomplexity, the paper; or PySR's "best") -> constant
refit -> judgement on fresh edges/nodes -> composed symbolic predictor vs network MAE, in
distribution and on two OOD sets (positions spread x2; n + 4 particles).

distill.json schema (floats that are not finite are null):
    strategy, law, dim, sr_engine, seconds, sparsity,
    component_std [k], component_score [k] (std or mean KL), top_components [dim],
    r2_force [dim], r2_force_mean, r2_accel [dim], r2_accel_mean,
    r2_affine_force / r2_affine_accel [dim][dim+1] (raw vector -> standardised component),
    edge: [{component, rank, equation, latex, complexity, loss, selected_by, refit,
            selected_equation, selected_loss, seconds,
            judgement: {success, target: "force"|"acceleration"|"field"|"field/m1"|"force+field"|
                        "force+field/m1", or one of
                        these with "·g" (times the equation's receiver factor g(q1, m1))
                        |null, best, receiver_factor (g as text, or null), r2,
                        affine [dim+1], rel_error, cosine, complexity_ok, r2_targets {name: R²},
                        r2_force, r2_accel}}],
    node: [{output: "x"|"y"|"z", index, equation, latex, complexity, loss, selected_by, refit,
            selected_equation, selected_loss, seconds,
            judgement: {success, target (the edge target it undoes) | null, best,
                        receiver_factor, linear_in_messages, r2,
                        affine, rel_error, cosine, complexity_ok, r2_targets {name: R²}}}],
    edge_success, node_success,
    mae: {network, symbolic, network_std, symbolic_std, n_graphs,
          ood: {spread: {network, symbolic, n, position_spread},
                more_particles: {network, symbolic, n, position_spread}}},
    expected_force (sympy text of the law's radial force), and from `distill_checkpoint`
    also checkpoint, dataset.
"""
from .candidate import Candidate, complexity
from .config import DistillConfig
from .pipeline import DistillData, distill_checkpoint, distill_model, distill_network, fit_target
from .report import summary_lines
from .sr_engines import get_sr_engine, register_sr_engine
from .symbolic import Network

__all__ = ["Candidate", "DistillConfig", "DistillData", "Network", "complexity", "distill_checkpoint",
           "distill_model", "distill_network", "fit_target", "get_sr_engine", "register_sr_engine",
           "summary_lines"]
