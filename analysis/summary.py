"""One row per run: the sweep's flat record of what each experiment found and what it cost.

In:  `Run`s (see `analysis.runs`). Read: distill.json (`distill.schema.DistillResult`)
     edge_success, node_success, r2_force_mean, r2_accel_mean, mae.network, mae.symbolic,
     edge[].judgement.target (a Hamiltonian run: its pair energy's, and r2_potential as
     r2_force); RUN/timings.json (wall seconds per stage, `plumbing.rundir.stage_seconds`).
Out: `summary_rows` (dicts with SUMMARY_FIELDS) and `to_summary_csv` (booleans as
     true/false, missing values empty). `test_mae_network` is the network's MAE on the
     distillation's evaluation graphs (the same graphs as `test_mae_symbolic`); `wall_s` is the
     sum of the run's own stage wall times (simulate, train, distill; a dataset that a
     sweep shares between runs is made by the first job that needs it and not counted);
     `failure` is the message of a stage that refused the run (RUN/failed.json).
     From distill.json version 6: `test_mae_symbolic_refit` (the composed model refitted on
     the true accelerations, `composed.test`); `ood_mae_network` and `ood_mae_symbolic` the
     worse of the two OOD sets (symbolic: the refitted model, else the selected equations);
     `rollout_err_network` / `rollout_err_symbolic` the median position error at the end of
     the rollout (10x the training horizon) of the network / the discovered law;
     `law_exact` whether the discovered law in physical form matches the true law term by
     term within 1 % (`physical_law.matches_truth`; false where no radial law was found) and
     `law_test_mae` / `law_ood_mae` that law's test MAE and its worse OOD MAE.
     From version 7: `residual_search` "kept" or "not kept" where the residual search ran
     (`distill.residual`: the composed model fell short of the network), else empty.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from distill.schema import judged_equations

from .runs import Run

SUMMARY_FIELDS = ("law", "dim", "strategy", "seed", "force_law_found", "newton_found", "edge_target",
                  "r2_force", "r2_accel", "test_mae_network", "test_mae_symbolic", "test_mae_symbolic_refit",
                  "ood_mae_network", "ood_mae_symbolic", "rollout_err_network", "rollout_err_symbolic", "law_exact",
                  "law_test_mae", "law_ood_mae", "residual_search", "wall_s", "run", "failure")


def summary_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """The summary row of each run, sorted by law, dim, strategy, seed; distill fields are
    None for a run not distilled yet, and a run a stage refused (`Run.failure`) found neither law."""
    rows = []
    for run in runs:
        d = run.distill
        undistilled = False if run.failure else None      # refused: found nothing; pending: unknown
        targets = sorted({e.judgement.target for e in judged_equations(d, "edge")
                          if e.judgement.target is not None}) if d else []
        rows.append({
            "law": run.law, "dim": run.dim, "strategy": run.strategy, "seed": run.seed,
            "force_law_found": d.edge_success if d else undistilled,
            "newton_found": d.node_success if d else undistilled,
            "edge_target": "+".join(targets) or None,
            "r2_force": (d.r2_force_mean if d.r2_potential is None else d.r2_potential) if d else None,
            "r2_accel": d.r2_accel_mean if d else None,
            "test_mae_network": d.mae.network if d else None,
            "test_mae_symbolic": d.mae.symbolic if d else None,
            **_physics_cells(d),
            "wall_s": round(sum(run.timings.values()), 1) if run.timings else None,
            "run": run.name,
            "failure": run.failure,
        })
    return sorted(rows, key=lambda r: (r["law"], r["dim"], r["strategy"], r["seed"]))


def _worst(values) -> float | None:
    """The largest of the values; None when any is missing."""
    values = list(values)
    return None if not values or any(v is None for v in values) else max(values)


def _physics_cells(d) -> dict[str, Any]:
    """The refit, OOD and rollout columns of a distillation (None where it has no such record)."""
    composed = d.composed if d else None
    roll = d.rollout if d else None
    law = d.physical_law if d else None
    ood = d.mae.ood if d else {}
    return {"test_mae_symbolic_refit": composed.test if composed else None,
            "ood_mae_network": _worst(v.network for v in ood.values()),
            "ood_mae_symbolic": _worst(composed.ood.values()) if composed else _worst(v.symbolic for v in ood.values()),
            "rollout_err_network": roll.err_network if roll else None,
            "rollout_err_symbolic": roll.err_symbolic if roll else None,
            "law_exact": law.matches_truth if law else None,
            "law_test_mae": law.test if law else None,
            "law_ood_mae": _worst(law.ood.values()) if law and law.ood else None,
            "residual_search": None if d is None or d.residual_search is None
            else ("kept" if d.residual_search.kept else "not kept")}


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
