"""distill: symbolic distillation of a trained GNN (Cranmer et al. 2020, §4.1 and App. C).

In:  a GNN checkpoint (`gnn.checkpoint`) and its dataset (`nbody.dataset`), or any
     message-passing model given as NumPy callables (`symbolic.Network`), and a
     `DistillConfig`.
Out: a `schema.DistillResult` and, in out_dir (atomic writes; layout and versions in
     `distill.schema`, the one place that defines them):
     distill.json        every number (`DistillResult`)
     messages.npz        edge inputs, messages and the message-vs-force fits (`MessageArrays`)
     predictions.npz     true, network and symbolic accelerations on the MAE test graphs
     pareto_edge_{k}.csv / pareto_node_{axis}.csv   complexity, loss (MAE), score, selected, equation
     equations.md        selected edge/node equations: LaTeX, sympy text, verdicts
     distill_config.json the DistillConfig

Steps: record messages on test edges -> significance (std; mean KL for KL models), sparsity
(variance share of the top `dim` components), robust Powell R² against the true pair force
and against F/m1 -> symbolic regression of each significant component from
(dx, dy, (dz), r, rs, m1, m2, q1, q2) on training edges (receiver "1", sender "2",
dx = x1 - x2, rs = r + softening) and of each node output from (e1..ek, m1, q1, v1) with the
SR engine `DistillConfig.sr_engine` -> Pareto front -> selection ("score": max
-dlog(MAE)/dcomplexity, the paper; or PySR's "best"; either on held-out training rows,
"score_heldout" / "best_heldout") -> Occam's pass (`simplify`: terms that do nothing go) -> constant refit -> judgement on fresh
edges/nodes -> composed symbolic predictor vs network MAE, in distribution and on two OOD
sets (positions spread x2; n + 4 particles) -> the composed model refitted on the true
accelerations (`compose`), the law in physical form f(r') (`physical`), and rollouts of the
truth, the discovered law and the network (`rollout`; rollout.npz).

Library: `load_law(run)` gives the discovered law as a `nbody.laws.Law` (what
`run.py simulate --law-from RUN` simulates); `symbolic_model(run)` the refitted symbolic
model with the network's signature, x [G, n, F] -> a [G, n, dim].
"""
from .candidate import Candidate, complexity
from .config import DistillConfig, JudgeConfig
from .data import DistillData
from .discovered import load_law, symbolic_model
from .fitting import fit_target
from .pipeline import distill_checkpoint, distill_model, distill_network
from .report import summary_lines
from .schema import DistillResult, load_result
from .sr_registry import get_sr_engine, register_sr_engine, sr_engine_names
from .symbolic import Network

__all__ = ["Candidate", "DistillConfig", "DistillData", "DistillResult", "JudgeConfig", "Network", "complexity",
           "distill_checkpoint", "distill_model", "distill_network", "fit_target", "get_sr_engine",
           "load_law", "load_result", "register_sr_engine", "sr_engine_names", "summary_lines", "symbolic_model"]
