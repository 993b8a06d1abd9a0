"""A run's verdict as a person wants it first: found or not, which check failed by how much,
and what to try next.

In:  a `Run`; its distill.json judgements (`distill.schema.Judgement`), the thresholds it
     was judged by (distill/distill_config.json, else `DistillConfig`'s defaults) and the
     epochs it trained (train/metrics.json).
Out: `run_verdict(run)` -> `Verdict`: the two findings (`tables.found_parts`: force law and
     Newton's law, or potential and kinetic energy), every failed check of every equation
     that did not pass ("edge φ1 (component 0), 0.7·dx/r: R² 0.97 < 0.99 against the force"), and
     short rule-based hints naming run.py flags:
       messages not a linear map of the force or F/m1 (R² below the threshold)
                                   -> train longer (--epochs); a dense strategy
                                      (not `Strategy.sparse`: standard): a sparse one
       messages fine, an edge or energy equation failed
                                   -> more SR generations (--generations), --selection
                                      best (when it was "score")
       a node equation failed      -> not linear in the messages and not picked by score:
                                      --node-selection score; else more generations
       either, without an alignment -> --align auto (the node model's basis)
     The hints are suggestions from these rules, not a diagnosis.
"""
from __future__ import annotations

from dataclasses import dataclass

from distill.config import DistillConfig
from distill.report import component_label
from distill.schema import DistillResult, EdgeEquation, EnergyEquation, Equation
from gnn.strategies import find_strategy
from plumbing.io import config_from_dict, load_json

from .notation import number, write
from .runs import Run
from .tables import found, found_parts

FINDING_NAMES = {"force": "force law", "Newton": "Newton's second law", "potential": "pair potential",
                 "kinetic": "kinetic energy"}


@dataclass(frozen=True)
class Verdict:
    """found: every finding made (None: not distilled); findings: (name, made) pairs;
    failures: one line per failed check; hints: what to try next."""

    found: bool | None
    findings: tuple[tuple[str, bool], ...]
    failures: tuple[str, ...]
    hints: tuple[str, ...]


def _limits(run: Run) -> DistillConfig:
    """The config the run was distilled with (its thresholds and search settings)."""
    path = run.distill_dir / "distill_config.json"
    return config_from_dict(DistillConfig, load_json(path)) if path.is_file() else DistillConfig()


def equation_name(d: DistillResult, e: Equation) -> str:
    """"edge φ1 (component 0)", "node a_x" or "H_pair"."""
    if isinstance(e, EdgeEquation):
        return f"edge φ{e.rank} ({component_label(d, e)})"
    return f"H_{e.part}" if isinstance(e, EnergyEquation) else f"node a_{e.output}"


def failed_checks(e: Equation, cfg: DistillConfig) -> list[str]:
    """Each criterion of `distill.judge` that the equation misses, with its number and limit."""
    j = e.judgement
    out = []
    if j.r2 is None or j.r2 < cfg.success_r2:
        out.append(f"R² {number(j.r2)} < {cfg.success_r2:g} against the {j.best}")
    if not j.complexity_ok:
        out.append(f"complexity {e.complexity} > {cfg.max_complexity}")
    if j.rel_error is None or j.rel_error > cfg.max_rel_error:
        shown = "–" if j.rel_error is None else f"{j.rel_error:.1%}"
        out.append(f"median relative error {shown} > {cfg.max_rel_error:.0%}")
    if j.cosine is not None and j.cosine < cfg.min_cosine:
        out.append(f"direction cosine {number(j.cosine)} < {cfg.min_cosine:g}")
    if getattr(j, "linear_in_messages", True) is False:
        out.append("not linear in the summed messages")
    if isinstance(e, EnergyEquation) and j.affine and j.affine[0] is not None and j.affine[0] <= 0:
        out.append(f"slope {number(j.affine[0])} on the truth is not positive")
    return out or ["failed (the Equations section shows its numbers)"]


def _hints(run: Run, d: DistillResult, cfg: DistillConfig) -> list[str]:
    """What to try next, by the rules of the module docstring."""
    messages = None if d.energy else max((v for v in (d.r2_force_mean, d.r2_accel_mean) if v is not None),
                                         default=None)
    if messages is not None and messages < cfg.success_r2:
        epochs = (run.metrics or {}).get("epochs")
        hints = [f"train longer: --epochs (this run had {epochs or '–'}); the messages are not yet a linear "
                 f"map of the force (R² {number(messages)} < {cfg.success_r2:g})"]
        strategy = find_strategy(run.strategy)
        dense = strategy is not None and not strategy.sparse
        return hints + (["a sparse strategy: --strategy bottleneck or l1"] if dense else [])
    more = f"more SR generations: --generations (this run had {cfg.generations})"
    hints = []
    if not d.edge_success:
        hints.append(more)
        if cfg.selection == "score":
            hints.append("the most accurate equation of each Pareto front: --selection best")
    if not d.node_success and not d.energy:
        linear = all(getattr(e.judgement, "linear_in_messages", True) for e in d.node)
        if not linear and (cfg.node_selection or cfg.selection) != "score":
            hints.append("a node equation is not linear in the summed messages: --node-selection score")
        elif more not in hints:
            hints.append(more)
    if hints and not d.energy and cfg.align == "none":
        hints.append("fit the messages in the basis the node model reads them in: --align auto")
    return hints


def run_verdict(run: Run) -> Verdict:
    """The run's verdict (see the module docstring)."""
    d = run.distill
    if d is None:
        reason = f"a stage refused the run: {run.failure}" if run.failure else "not distilled yet"
        return Verdict(found=None, findings=(), failures=(reason,), hints=())
    cfg = _limits(run)
    findings = tuple((FINDING_NAMES[name], made) for name, made in found_parts(d))
    failures = tuple(f"{equation_name(d, e)}, {write(e.equation).text}: {check}" for e in d.edge + d.node + d.energy
                     if not e.judgement.success for check in failed_checks(e, cfg))
    ok = found(d)
    return Verdict(found=ok, findings=findings, failures=failures, hints=() if ok else tuple(_hints(run, d, cfg)))
