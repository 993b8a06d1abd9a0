"""Readable outputs of a distillation run: the per-equation fields, equations.md and summary lines.

In:  `pipeline.FitResult`s, and the finished `schema.DistillResult`.
Out: the Pareto-front rows and the `schema.Equation` fields of a fit, equations.md (text +
     LaTeX + sympy strings with the verdicts), and `summary_lines` for the end of a run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sympy as sp

from plumbing.io import atomic_write_text

from .candidate import round_floats
from .schema import DistillResult, EdgeEquation, EnergyEquation, Equation, FrontRow, Judgement

LATEX_DIGITS = 3
MAX_PRINTED_COLUMNS = 6   # an alignment matrix wider than this is left to distill.json


def front_rows(fit) -> list[FrontRow]:
    """A fit's Pareto front; `selected` marks the entry the rule chose (before the refit),
    `heldout_loss` the loss a "_heldout" rule read (None without held-out rows)."""
    held = fit.heldout_losses or [None] * len(fit.front)
    return [FrontRow(complexity=c.complexity, loss=float(c.loss), score=float(s), selected=i == fit.index,
                     equation=str(c.expr), heldout_loss=h)
            for i, (c, s, h) in enumerate(zip(fit.front, fit.scores, held))]


def equation_fields(fit, selection: str) -> dict[str, Any]:
    """The `schema.Equation` fields of a fit chosen by the rule `selection`."""
    expr = fit.final.expr
    chosen = fit.front[fit.index]
    return {"equation": str(expr), "latex": sp.latex(round_floats(expr, LATEX_DIGITS)),
            "complexity": fit.final.complexity, "loss": fit.final.loss, "selected_by": selection,
            "refit": fit.refitted, "selected_equation": str(chosen.expr), "selected_loss": chosen.loss,
            "seconds": fit.seconds}


def _fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _target(j: Judgement) -> str:
    """A judgement's target name, with its receiver factor g when it has one."""
    return f"{j.target} (g = {j.receiver_factor})" if j.receiver_factor else j.target


def _edge_verdict(e: Equation) -> str:
    j = e.judgement
    if j.success:
        return f"reconstructed: affine in the true pair {_target(j)} (R² = {_fmt(j.r2)})"
    return f"not reconstructed (best R² = {_fmt(j.r2)}, complexity {e.complexity})"


def _node_verdict(e: Equation) -> str:
    j = e.judgement
    if j.success:
        return f"Newton's second law: undoes the edge's {_target(j)} (R² = {_fmt(j.r2)})"
    return f"not reconstructed (best R² = {_fmt(j.r2)}, complexity {e.complexity})"


def _energy_verdict(e: EnergyEquation) -> str:
    j = e.judgement
    truth = "U(r')" if e.part == "pair" else "p²/(2m)"
    if j.success:
        return f"reconstructed: {_fmt(j.affine[0])}·{truth} + terms in the particle constants (R² = {_fmt(j.r2)})"
    return f"not reconstructed (R² = {_fmt(j.r2)} against a·{truth} + constants' terms, complexity {e.complexity})"


def verdict(e: Equation) -> str:
    """One equation's verdict as a phrase (the one equations.md and the summary lines print)."""
    if isinstance(e, EnergyEquation):
        return _energy_verdict(e)
    return _edge_verdict(e) if isinstance(e, EdgeEquation) else _node_verdict(e)


def physical_lines(result: DistillResult) -> list[str]:
    """The discovered law in physical form (`DistillResult.physical_law`), the true law beside
    it with every constant's relative error, and how the refitted model and the rollouts
    compare with the network: what a run prints first. [] when the result has none."""
    law, composed = result.physical_law, result.composed
    if law is None:
        return []
    lines = [f"Discovered law ({result.law} {result.dim}D): {law.text}"]
    if law.radial:
        lines.append(f"  true law: f = {result.expected_force}; " + ", ".join(
            f"{c.term}: {_fmt(c.found)} vs {_fmt(c.true)}"
            + (f" ({c.rel_error:.2%})" if c.rel_error is not None else " (unmatched)") for c in law.constants))
        lines.append(f"  test MAE of the law {_fmt(law.test)}, "
                     + ", ".join(f"OOD {k} {_fmt(v)}" for k, v in law.ood.items()))
    if composed is not None:
        lines.append(f"  composed model refitted on the truth: test MAE {_fmt(result.mae.symbolic)} -> "
                     f"{_fmt(composed.test)} (network {_fmt(result.mae.network)})")
    roll = result.rollout
    if roll is not None:
        lines.append(f"  rollout over {roll.horizon:.3g} time units ({roll.horizon / roll.train_horizon:.0f}x "
                     f"training): median position error law {_fmt(roll.err_symbolic)}, network "
                     f"{_fmt(roll.err_network)} (against the true law by the same Verlet stepper, whose own "
                     f"error is {_fmt(roll.err_stepper)})")
    return lines


def summary_lines(result: DistillResult) -> list[str]:
    """A few readable lines: the rediscovered force law, Newton's second law, and the MAE comparison.

    Args:
        result: the stage's result.
    Returns:
        lines without trailing newlines.
    """
    if result.energy:
        return _energy_summary(result)
    lines = [f"Distilled {result.strategy} GNN on {result.law} {result.dim}D "
             f"(true radial force on the receiver f = {result.expected_force} along r_hat):"]
    for e in result.edge:
        lines.append(f"  edge φ{e.rank} ({component_label(result, e)}) = {e.equation}  [{_edge_verdict(e)}]")
    for e in result.node:
        lines.append(f"  node a_{e.output} = {e.equation}  [{_node_verdict(e)}]")
    mae = result.mae
    lines.append(f"  force law {'FOUND' if result.edge_success else 'not found'}; "
                 f"Newton's 2nd law {'FOUND' if result.node_success else 'not found'}; "
                 f"test MAE network {_fmt(mae.network)} vs symbolic {_fmt(mae.symbolic)}")
    return lines


def _energy_summary(result: DistillResult) -> list[str]:
    lines = [f"Distilled hamiltonian GNN on {result.law} {result.dim}D (true pair potential "
             f"U = {result.expected_potential}; pair energy R² against U {_fmt(result.r2_potential)}):"]
    lines += [f"  H_{e.part} = {e.equation}  [{_energy_verdict(e)}]" for e in result.energy]
    mae = result.mae
    lines.append(f"  potential {'FOUND' if result.edge_success else 'not found'}; "
                 f"kinetic energy {'FOUND' if result.node_success else 'not found'}; "
                 f"test MAE network {_fmt(mae.network)} vs symbolic {_fmt(mae.symbolic)}")
    return lines


def component_label(result: DistillResult, edge) -> str:
    """"component k" of the raw messages, or "aligned component x" (`DistillConfig.align`)."""
    if result.alignment is None:
        return f"component {edge.component}"
    return f"aligned component {'xyz'[edge.component]}"


def write_equations_md(path: str | Path, result: DistillResult) -> None:
    """Human-readable equations.md: each selected equation as LaTeX and sympy text, with its verdict."""
    if result.energy:
        _write_energy_md(path, result)
        return
    dim = result.dim
    edge_cols = ", ".join([f"d{a}" for a in "xyz"[:dim]] + ["r", "rs", "m1", "m2", "q1", "q2"])
    out = [f"# Distilled equations: {result.strategy} GNN, law {result.law}, {dim}D",
           "", f"SR engine {result.sr_engine}, selection by {result.edge[0].selected_by}; "
           f"{result.seconds:.1f} s. Message sparsity {_fmt(result.sparsity)} "
           f"(variance share of the top {dim} components {list(result.top_components)}).",
           "", f"True radial force on the receiver: f = {result.expected_force} "
           "(r' = r + softening) along (x1 - x2)/r.", "", *_physical_md(result),
           "## Edge model (messages)", "",
           f"Inputs: {edge_cols}; \"1\" = receiver, \"2\" = sender, dx = x1 - x2, rs = r + softening.", ""]
    if result.alignment is not None:
        charges = result.alignment_charges or (None,) * len(result.alignment)
        width = len(result.alignment[0][0])
        read = (f"m[{list(result.top_components)}]" if width == len(result.top_components)
                else f"m (all {width} components)")
        out += [f"Aligned basis: φ = M·{read}, the basis the node model reads "
                f"the messages in, scaled to unit gain (one matrix per class explains a share "
                f"{_fmt(result.alignment_rank1)} of its Jacobians):", ""]
        for q, matrix in zip(charges, result.alignment):
            rows = ("; ".join("(" + ", ".join(f"{v:.4g}" for v in row) + ")" for row in matrix)
                    if width <= MAX_PRINTED_COLUMNS else "in distill.json")
            out.append(f"- {'every receiver' if q is None else f'receivers with {result.alignment_property} = {q:g}'}"
                       f": M rows {rows}")
        if result.alignment_choice:
            out.append(f"- chosen from the data: {result.alignment_choice}")
        out.append("")
    elif result.alignment_choice:
        out += [f"Not aligned, chosen from the data: {result.alignment_choice}.", ""]
    if result.shared_forms:
        out += ["Forms shared across the axes (each aligned fit was offered the others' final forms, "
                "dx <-> dy <-> dz, on its own Pareto front): " + "; ".join(result.shared_forms) + ".", ""]
    for e in result.edge:
        out += [f"### φ{e.rank} (message {component_label(result, e)})", "",
                f"$$\\phi_{{{e.rank}}} = {e.latex}$$", "", f"    {e.equation}", "",
                f"complexity {e.complexity}, MAE {_fmt(e.loss)}; {_edge_verdict(e)}; "
                f"R² force {_fmt(e.judgement.r2_force)}, acceleration {_fmt(e.judgement.r2_accel)}.", ""]
    out += ["## Node model", "",
            "Inputs: e1..ek = summed significant message components (e1 = φ1), m1, q1, v1 of the receiver.", ""]
    if result.node_divisors is not None:
        out += ["Fitted in the edge equations' units: each e_k divided by its edge's receiver factor "
                "g_k before SR, then written back in e_k: "
                + ", ".join(f"g{k + 1} = {g}" for k, g in enumerate(result.node_divisors)) + ".", ""]
    for e in result.node:
        out += [f"### a_{e.output}", "", f"$$a_{{{e.output}}} = {e.latex}$$", "", f"    {e.equation}", "",
                f"complexity {e.complexity}, MAE {_fmt(e.loss)}; {_node_verdict(e)}.", ""]
    atomic_write_text(path, "\n".join(out + _mae_lines(result)) + "\n")


def _physical_md(result: DistillResult) -> list[str]:
    """The discovered law at the top of equations.md: LaTeX, text, its constants against the
    law's, and the MAEs of the law and the refitted composed model."""
    law = result.physical_law
    if law is None:
        return []
    out = ["## The discovered law", ""]
    if not law.radial:
        return out + [law.text, ""]
    out += [f"$${law.latex}$$", "", f"    {law.text}", "", "| term | discovered | true | relative error |",
            "|---|---|---|---|"]
    out += [f"| {c.term} | {_fmt(c.found, 6)} | {_fmt(c.true, 6)} | {_fmt(c.rel_error, 3)} |" for c in law.constants]
    out += ["", f"Constants refitted on the true accelerations (one f for every axis); MAE of the law: "
            f"test {_fmt(law.test)}, " + ", ".join(f"OOD {k} {_fmt(v)}" for k, v in law.ood.items()) + "."]
    if result.composed is not None:
        c = result.composed
        out.append(f"Composed model refitted end to end ({'kept' if c.refitted else 'not kept: no gain'}): "
                   f"training MAE {_fmt(c.train_before)} -> {_fmt(c.train_after)}, test {_fmt(c.test)}, "
                   + ", ".join(f"OOD {k} {_fmt(v)}" for k, v in c.ood.items()) + ".")
        if c.distance_swaps:
            out.append("Distances the joint fit wrote in the other one (r or rs): " + "; ".join(c.distance_swaps) + ".")
        if c.front_choices:
            out.append("Chosen again from the Pareto fronts on the true accelerations: "
                       + "; ".join(f"`{choice}`" for choice in c.front_choices) + ".")
    search = result.residual_search
    if search is not None:
        changes = "; ".join(f"`{c}`" for c in search.edge_changes)
        out.append(f"Residual search (the composed model, training MAE {_fmt(search.composed_train)}, was not "
                   f"far enough below the network's {_fmt(search.network_train)}): sums with searches on the "
                   f"edge equations' residuals give {_fmt(search.searched_train)}, "
                   + ("kept" if search.kept else "not kept") + (f": {changes}" if changes else "") + "."
                   + (f" The composed model started from {search.composed_choice}." if search.composed_choice else ""))
    return out + [""]


def _write_energy_md(path: str | Path, result: DistillResult) -> None:
    """equations.md of a Hamiltonian model: its pair and self energy equations."""
    cols = {"pair": ", ".join([f"d{a}" for a in "xyz"[:result.dim]] + ["r", "rs", "m1", "m2", "q1", "q2"]),
            "self": ", ".join([f"p{a}" for a in "xyz"[:result.dim]] + ["m", "q"])}
    out = [f"# Distilled energies: hamiltonian GNN, law {result.law}, {result.dim}D", "",
           f"SR engine {result.sr_engine}, selection by {result.energy[0].selected_by}; {result.seconds:.1f} s.",
           "", f"True pair potential U = {result.expected_potential} (r' = r + softening); the pair energy's "
           f"R² against a·U + f(q1, q2, m1, m2) on fresh test rows: {_fmt(result.r2_potential)} "
           f"(a = {_fmt((result.r2_affine_potential or (None,))[0])}; 0.5 for the true energy).", ""]
    for e in result.energy:
        out += [f"## H_{e.part} (inputs {cols[e.part]})", "", f"$$H_{{\\rm {e.part}}} = {e.latex}$$", "",
                f"    {e.equation}", "", f"complexity {e.complexity}, MAE {_fmt(e.loss)}; {_energy_verdict(e)}.", ""]
    atomic_write_text(path, "\n".join(out + _mae_lines(result)) + "\n")


def _mae_lines(result: DistillResult) -> list[str]:
    mae = result.mae
    out = ["## Symbolic model vs network (MAE: mean over nodes of Σ|Δa|)", "",
            "| data | network | symbolic |", "|---|---|---|",
            f"| test | {_fmt(mae.network)} ± {_fmt(mae.network_std)} | {_fmt(mae.symbolic)} ± {_fmt(mae.symbolic_std)} |"]
    for name, v in mae.ood.items():
        out.append(f"| OOD {name} (n={v.n}, spread ×{v.position_spread}) | {_fmt(v.network)} | {_fmt(v.symbolic)} |")
    return out
