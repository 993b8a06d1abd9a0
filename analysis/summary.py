"""One row per run: the sweep's flat record of what each experiment found and what it cost.

In:  `Run`s (see `analysis.runs`). Keys read: distill/distill.json edge_success,
     node_success, r2_force_mean, r2_accel_mean, mae.network, mae.symbolic, edge[].judgement
     .target; train/metrics.json test.mae_per_node; RUN/timings.json (wall seconds per stage,
     written by run.py).
Out: `summary_rows` (dicts with SUMMARY_FIELDS) and `to_summary_csv` (booleans as
     true/false, missing values empty). `test_mae_network` is the network's MAE on the
     distillation's evaluation graphs (the same graphs as `test_mae_symbolic`); `wall_s` is the
     sum of the run's own stage wall times (simulate, train, distill; a dataset that a
     sweep shares between runs is simulated before them and not counted).
"""
from __future__ import annotations

import csv
import io
from typing import Any

from .runs import Run, dig

SUMMARY_FIELDS = ("law", "dim", "strategy", "seed", "force_law_found", "newton_found", "edge_target",
                  "r2_force", "r2_accel", "test_mae_network", "test_mae_symbolic", "wall_s", "run")


def summary_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """The summary row of each run that has a law and a dim, sorted by law, dim, strategy, seed."""
    rows = []
    for run in runs:
        if run.law is None or run.dim is None:
            continue
        timings = run.timings
        targets = sorted({t for t in (dig(e, "judgement", "target") for e in dig(run.distill, "edge", default=[]))
                          if t is not None})
        rows.append({
            "law": run.law, "dim": run.dim, "strategy": run.strategy, "seed": run.seed,
            "force_law_found": dig(run.distill, "edge_success"),
            "newton_found": dig(run.distill, "node_success"),
            "edge_target": "+".join(targets) or None,
            "r2_force": dig(run.distill, "r2_force_mean"),
            "r2_accel": dig(run.distill, "r2_accel_mean"),
            "test_mae_network": dig(run.distill, "mae", "network"),
            "test_mae_symbolic": dig(run.distill, "mae", "symbolic"),
            "wall_s": round(sum(timings.values()), 1) if timings else None,
            "run": run.name,
        })
    return sorted(rows, key=lambda r: (r["law"], r["dim"], str(r["strategy"]), r["seed"] or 0))


def to_summary_csv(rows: list[dict[str, Any]]) -> str:
    """`summary_rows` as CSV text with SUMMARY_FIELDS as the header."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_FIELDS)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in SUMMARY_FIELDS])
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
