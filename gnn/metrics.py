"""The MAE per node: the one definition of the test error that training and distillation report.

In:  predicted and true accelerations [..., n, dim] (NumPy or torch), or the per-graph
     errors they give.
Out: the per-graph MAE per node (mean over nodes of the sum over dims of |Δa|), and its
     mean and std over graphs. NumPy only, so that callers need no torch.
"""
from __future__ import annotations

import numpy as np


def per_graph_mae(pred, true):
    """[..., n, dim] -> [...]: mean over nodes of the sum over dims of |pred - true|."""
    return abs(pred - true).sum(-1).mean(-1)


def mae_per_node(per_graph: np.ndarray) -> tuple[float, float]:
    """Mean and std over graphs (ddof=1; 0.0 for one graph) of per-graph MAEs [G]."""
    per_graph = np.asarray(per_graph, dtype=np.float64)
    return float(per_graph.mean()), float(per_graph.std(ddof=1)) if len(per_graph) > 1 else 0.0
