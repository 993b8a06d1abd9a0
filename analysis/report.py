"""One self-contained HTML page per run or sweep: what a person opens to see the results.

In:  `Run`s (one run, or every run of a sweep), the files `make_figures` wrote for each
     ({run name: [paths]}), the comparison tables (`analysis.tables.build_tables`) and the
     sources' citations (`analysis.published`).
Out: report.html, written atomically. It needs no server and no network: inline CSS, no
     script, every image a base64 `data:` URI (the PNG figures, the training animation, and
     each equation rendered from its LaTeX by matplotlib's mathtext; LaTeX that mathtext
     cannot parse is shown as its source, and said so). Equations read as a person writes
     them (`analysis.notation`: no "**" or "*", constants to 4 significant digits, the
     same constants in the text and the LaTeX). Sections:
       run    the verdict first (`analysis.verdict`: found or not, each failed check with
              its number and limit, what to try next; the discovered law beside the true
              one and their constants), the law's, the refitted model's and the rollouts'
              errors beside the network's, summary (key numbers), equations (each with its
              judgement), training (metrics, message history, animation), figures (full
              width, each captioned; a Pareto front's caption gives the final, refitted
              equation); then the tables beside the published numbers and the sources.
       sweep  the grid: rows law-dim, one column per strategy, one ✓/✗ per run (force law
              and Newton's law both found) linking to that run's section; the tables; one
              section per run (its key figures only: SWEEP_FIGURES); the sources.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path
from typing import Any, Iterable

from distill.report import component_label, verdict
from distill.schema import EdgeEquation, Equation, NodeEquation
from plumbing.io import atomic_write_text

from . import published
from .notation import Written, force, number, write
from .runs import Run
from .tables import SPEC_BY_NAME, STRATEGY_TITLES, build_tables, found, found_parts, wide
from .verdict import equation_name, run_verdict

REPORT_FILE = "report.html"
SWEEP_FIGURES = ("message_history.png", "message_fit.png", "sparsity.png", "rollout.png")
RUN_SECTIONS = ("verdict", "law", "summary", "equations", "training", "figures")   # each run's sub-sections
MIME = {".png": "image/png", ".gif": "image/gif"}
MISSING = "–"
FIGURE_CAPTIONS = {
    "message_history.png": "Message R² against the force (solid) and F/m1 (dashed), and the sparsity, during training",
    "message_evolution.gif": "The top two message components against the linear combination of the true force "
                             "fitted to each, one frame per recorded step",
    "message_fit.png": "Each significant message component against the linear combination of the true forces "
                       "(top row) and accelerations (bottom row) fitted to it",
    "sparsity.png": "Each message component's share of the message variance, the top components in red",
    "trajectories.png": "Trajectories of the simulated particles",
    "predictions.png": "Predicted against true acceleration, per axis: network and symbolic model",
    "rollout.png": "Rollouts against the true law: median position error and energy drift over time",
}
STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
h3 { margin-top: 1.2em; } nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } caption { text-align: left; font-weight: bold; padding: .2em 0; }
td:first-child { white-space: nowrap; }
.grid a { text-decoration: none; margin-right: .4em; } .ok { color: #17702a; } .no { color: #b00020; }
.note { color: #555; font-size: .9em; } code { background: #f6f6f6; padding: 0 .2em; }
figure { display: block; margin: 1em 0 1.5em; }
figure img { display: block; width: 100%; max-height: 85vh; object-fit: contain; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; }
.eq img { vertical-align: middle; max-width: 100%; }
.verdict { font-size: 1.3em; font-weight: bold; margin: .3em 0; }
.verdict.ok { color: #17702a; } .verdict.no { color: #b00020; }
ul.checks { margin: .2em 0 .6em; } table.laws { width: 100%; } .laws td { width: 50%; }
.laws caption img { vertical-align: middle; }
.eq { margin: .3em 0; } .eq + p { margin: .2em 0 .5em; }
"""


# --------------------------------------------------------------------------- #
# HTML pieces                                                                  #
# --------------------------------------------------------------------------- #

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, fmt: str | None = None) -> str:
    """`value` by `fmt`, else to 4 significant digits (`notation.number`)."""
    return MISSING if value is None else number(value) if fmt is None else format(value, fmt)


def _mark(ok: bool | None) -> str:
    return MISSING if ok is None else ("✓" if ok else "✗")


def _basis(d) -> str:
    """How the edge equations' components were chosen (`DistillResult.alignment`)."""
    if d.alignment is None:
        return "the raw top components"
    per = "one matrix" if d.alignment_charges is None else f"one matrix per value of the receiver's {d.alignment_property}"
    width = len(d.alignment[0][0])
    which = "" if width == len(d.top_components) else f"all {width} components "
    return f"{which}aligned to the node model ({per} explains {_num(d.alignment_rank1, '.3f')})"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(data: bytes, mime: str, alt: str) -> str:
    return f'<img src="{_data_uri(data, mime)}" alt="{_e(alt)}">'


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (then they are HTML already)."""
    cell = (lambda c: c) if raw else _e
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pairs(rows: Iterable[tuple[str, str]], caption: str = "") -> str:
    """A two-column table of (name, value) rows, names as row headers, escaped."""
    head = f"<caption>{_e(caption)}</caption>" if caption else ""
    return "<table>" + head + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _anchor(run: Run) -> str:
    """The id of a run's section: "run-" and its name, with anything but [A-Za-z0-9_-] as "_"."""
    return "run-" + re.sub(r"[^A-Za-z0-9_-]", "_", run.name)


def equation_png(latex: str, dpi: int = 110) -> bytes | None:
    """`latex` rendered by matplotlib's mathtext as PNG bytes, None when mathtext cannot parse it."""
    from matplotlib.mathtext import math_to_image  # deferred (heavy): only a report draws equations
    buf = io.BytesIO()
    try:
        math_to_image(f"${latex}$", buf, dpi=dpi, format="png")
    except ValueError:
        return None
    return buf.getvalue()


def _shown(w: Written, lhs: str = "", lhs_text: str = "") -> str:
    """An equation as a mathtext image (its plain text as alt) above its plain text; LaTeX that
    mathtext cannot draw, or none, is shown as source or text, and said so."""
    text = f"{lhs_text} = {w.text}" if lhs_text else w.text
    latex = None if w.latex is None else (f"{lhs} = {w.latex}" if lhs else w.latex)
    png = None if latex is None else equation_png(latex)
    if png is not None:
        picture = _img(png, "image/png", text)
    elif latex is not None:
        picture = f'<code>{_e(latex)}</code> <span class="note">(LaTeX source: mathtext cannot draw it)</span>'
    else:
        picture = '<span class="note">(no LaTeX: the text did not parse)</span>'
    return f'<p class="eq">{picture}</p><p>{_e(text)}</p>'


def _equation(lhs: str, lhs_text: str, e: Equation) -> str:
    """A selected equation (final, refitted form) as `_shown`."""
    return _shown(write(e.equation), lhs, lhs_text)


def _judgement(e: Equation) -> str:
    """The verdict and its numbers (`distill.schema.Judgement`) as a two-column table."""
    j = e.judgement
    rows = [("verdict", f"{_mark(j.success)} {verdict(e)}"),
            ("target (best member)", f"{j.target or MISSING} ({j.best})"),
            ("receiver factor g", j.receiver_factor or MISSING),
            ("R² of the affine fit", _num(j.r2)), ("median relative error", _num(j.rel_error)),
            ("direction cosine with the network", _num(j.cosine)),
            ("complexity (within the limit)", f"{e.complexity} ({_mark(j.complexity_ok)})"),
            ("MAE on the fit rows", _num(e.loss)),
            ("selected by; constants refit", f"{e.selected_by}; {'yes' if e.refit else 'no'}")]
    if e.refit:
        rows.append(("the front's entry before the refit", write(e.selected_equation).text))
    if hasattr(j, "r2_force"):
        rows.append(("R² against force / F/m1", f"{_num(j.r2_force)} / {_num(j.r2_accel)}"))
    if hasattr(j, "linear_in_messages"):
        rows.append(("linear in the messages", _mark(j.linear_in_messages)))
    return _pairs(rows, "judgement")


# --------------------------------------------------------------------------- #
# A run                                                                        #
# --------------------------------------------------------------------------- #

def _summary(run: Run) -> str:
    d, m = run.distill, run.metrics
    rows = [("run", f"{run.label} ({run.path})")]
    if d is not None and d.energy:
        rows += [("pair energy R² against U", _num(d.r2_potential, ".4f")),
                 ("test MAE per node: symbolic / network",
                  f"{_num(d.mae.symbolic)} / {_num(d.mae.network)} ({d.mae.n_graphs} graphs)")]
    elif d is not None:
        rows += [("message R² against force (F/m1), mean of the top components",
                  f"{_num(d.r2_force_mean, '.4f')} ({_num(d.r2_accel_mean, '.4f')})"),
                 ("sparsity: variance share of the top components", _num(d.sparsity, ".3f")),
                 ("basis of the edge equations", _basis(d)),
                 ("test MAE per node: symbolic / network",
                  f"{_num(d.mae.symbolic)} / {_num(d.mae.network)} ({d.mae.n_graphs} graphs)")]
        rows += [(f"OOD MAE ({name}: n={v.n}, positions ×{v.position_spread}): symbolic / network",
                  f"{_num(v.symbolic)} / {_num(v.network)}") for name, v in d.mae.ood.items()]
    else:
        rows.append(("distillation", "not run yet"))
    if m is not None:
        rows.append(("network test MAE per node (baseline: mean acceleration)",
                     f"{_num(m['test']['mae_per_node'])} ({_num(m.get('baseline_mae_per_node'))})"))
    if run.timings:
        rows.append(("wall seconds per stage", ", ".join(f"{k} {v:.0f}" for k, v in run.timings.items())))
    return _pairs(rows)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{number(100 * value, 2)} %"


FRAME = Written("a_i = (1/m_i) Σ_j f(r'_ij) r̂_ij, with r' = r + softening",
                r"a_i = \frac{1}{m_i}\sum_j f(r'_{ij})\,\hat{r}_{ij}")


def _side_by_side(caption: str, found_cell: str, true_cell: str) -> str:
    """Two columns, discovered and true, under `caption` (all HTML already)."""
    return (f'<table class="laws"><caption>{caption}</caption><tr><th>discovered</th><th>true</th></tr>'
            f"<tr><td>{found_cell}</td><td>{true_cell}</td></tr></table>")


def _laws(run: Run) -> str:
    """The discovered law beside the true one (LaTeX and text), and their constants."""
    d = run.distill
    law = d.physical_law
    if d.energy:
        pair = next((e for e in d.energy if e.part == "pair"), None)
        found_cell = _shown(write(pair.equation), r"H_{\rm pair}", "H_pair") if pair else MISSING
        true_cell = _shown(force(d.expected_potential or MISSING), "U(r')", "U(r')")
        return _side_by_side("The pair energy", found_cell, true_cell)
    true_cell = _shown(force(d.expected_force), "f(r')", "f(r')")
    if law is None or not law.radial:
        why = "no physical law (a distillation before version 6)" if law is None else law.text
        selected = "".join(_equation(*_names(e), e) for e in d.edge + d.node)
        return _side_by_side("The radial force f(r')",
                             f'<p class="note">{_e(why)}; the selected equations:</p>{selected}', true_cell)
    found_cell = _shown(force(law.force), "f(r')", "f(r')")
    if law.receiver:
        parts = [write(p) for p in law.receiver]
        latex = (None if any(p.latex is None for p in parts)
                 else r"\left(" + ", ".join(p.latex for p in parts) + r"\right)")
        found_cell += ('<p class="note">plus a receiver part of a<sub>i</sub>, carried by no pair:</p>'
                       + _shown(Written("(" + ", ".join(p.text for p in parts) + ")", latex)))
    png = equation_png(FRAME.latex)
    frame = _img(png, "image/png", FRAME.text) if png else _e(FRAME.text)
    constants = _table(["term of f", "discovered", "true", "relative error"],
                       [[write(c.term).text, _num(c.found), _num(c.true), _percent(c.rel_error)]
                        for c in law.constants])
    summary = ("every term within 1 %" if law.matches_truth
               else f"largest relative error {_percent(law.max_rel_error)}; not every term within 1 %")
    return (_side_by_side(f"The radial force f(r') in {frame}", found_cell, true_cell)
            + constants + f'<p class="note">Constants of f: {_e(summary)}.</p>')


def _verdict(run: Run) -> str:
    """Found or not, the failed checks, what to try next, and the two laws side by side."""
    v = run_verdict(run)
    if v.found is None:
        return f'<p class="verdict no">{_e(v.failures[0])}</p>'
    parts = " · ".join(f"{name} {_mark(made)}" for name, made in v.findings)
    out = [f'<p class="verdict {"ok" if v.found else "no"}">{"Found" if v.found else "Not found"}: {_e(parts)}</p>']
    if v.failures:
        out.append("<p><b>Failed checks</b></p><ul class=\"checks\">"
                   + "".join(f"<li>{_e(f)}</li>" for f in v.failures) + "</ul>")
    if v.hints:
        out.append("<p><b>Next to try</b> <span class=\"note\">(rules of thumb; distillation settings take "
                   "effect in a new distillation: run.py distill with a new --out)</span></p><ul class=\"checks\">"
                   + "".join(f"<li>{_e(h)}</li>" for h in v.hints) + "</ul>")
    return "".join(out) + _laws(run)


def _physical(run: Run) -> str:
    """The discovered law's MAEs and rollout errors beside the network's."""
    d = run.distill
    law = None if d is None else d.physical_law
    if law is None or not law.radial:
        return "<p>No radial law to test (see the verdict).</p>"
    rows = [("test MAE per node: law / refitted model / selected equations / network",
             f"{_num(law.test)} / {_num(d.composed.test if d.composed else None)} / {_num(d.mae.symbolic)} / "
             f"{_num(d.mae.network)}")]
    rows += [(f"OOD MAE {name}: law / network", f"{_num(law.ood.get(name))} / {_num(v.network)}")
             for name, v in d.mae.ood.items()]
    roll = d.rollout
    if roll is not None:
        rows += [(f"rollout over {roll.horizon:.3g} time units ({roll.n_sims} runs): median position error",
                  f"law {_num(roll.err_symbolic)}, network {_num(roll.err_network)} (network against the true "
                  f"law by the same Verlet stepper, whose own error is {_num(roll.err_stepper)})"),
                 ("energy drift: true / law / network", f"{_num(roll.drift_true)} / {_num(roll.drift_symbolic)} / "
                                                         f"{_num(roll.drift_network)}")]
    return _pairs(rows)


def _equations(run: Run) -> str:
    d = run.distill
    if d is None:
        return "<p>Not distilled yet.</p>"
    out = [f"<p class=\"note\">SR engine {_e(d.sr_engine)}. Edge inputs: dx, dy, (dz), r, rs = r + softening, "
           "m1, m2, q1, q2 (1: receiver, 2: sender, dx = x1 − x2); node inputs: e1..ek, the summed "
           "significant messages, and the receiver's m1, q1, v1.</p>"]
    for e in d.edge:
        out += [f"<h4>Edge φ{e.rank} (message {_e(component_label(d, e))})</h4>",
                _equation(*_names(e), e), _judgement(e)]
    for e in d.node:
        out += [f"<h4>Node a<sub>{e.output}</sub></h4>", _equation(*_names(e), e), _judgement(e)]
    for e in d.energy:
        out += [f"<h4>H<sub>{e.part}</sub></h4>", _equation(*_names(e), e), _judgement(e)]
    return "".join(out)


def _training(run: Run, files: dict[str, Path], animate: bool) -> str:
    m, h = run.metrics, run.history
    if m is None and h is None:
        return "<p>Not trained yet.</p>"
    out = []
    if m is not None:
        seconds, recording = m.get("train_seconds"), m.get("message_history_seconds")
        share = f" ({recording / seconds:.1%} of the training time)" if recording and seconds else ""
        out.append(_pairs([
            ("optimiser steps (epochs)", f"{m.get('steps')} ({m.get('epochs')})"),
            ("training seconds; graphs per second",
             f"{_num(seconds, '.1f')}; {_num(m.get('graphs_per_second'), '.0f')}"),
            ("recording the messages", "not recorded" if recording is None else f"{recording:.1f} s{share}"),
            ("device", m.get("device"))]))
    if h is not None:
        out.append(f"<p class=\"note\">Messages recorded on {h.values.shape[1]} fixed held-out edges at "
                   f"{len(h.step)} steps (train/message_history.npz).</p>")
    for name in ("message_history.png", "message_evolution.gif") if animate else ("message_history.png",):
        if name in files:
            out.append(_figure(files[name], run))
    return "".join(out)


def _names(e: Equation) -> tuple[str, str]:
    """An equation's left-hand side in LaTeX and in text: φ1, a_x, H_pair."""
    if isinstance(e, EdgeEquation):
        return rf"\phi_{{{e.rank}}}", f"φ{e.rank}"
    if isinstance(e, NodeEquation):
        return f"a_{{{e.output}}}", f"a_{e.output}"
    return rf"H_{{\rm {e.part}}}", f"H_{e.part}"


def _caption(run: Run, name: str) -> str:
    """What a figure shows; a Pareto front's caption gives the final (refitted) equation."""
    d = run.distill
    for e in () if d is None else d.edge + d.node + d.energy:
        if f"{Path(e.front_file).stem}.png" == name:
            final = f"{_names(e)[1]} = {write(e.equation).text}"
            how = "its constants refitted" if e.refit else "as selected (the refit did not help)"
            return (f"Pareto front of {equation_name(d, e)}: loss against complexity, ★ the selected entry. "
                    f"Final equation, {how}: {final}")
    return FIGURE_CAPTIONS.get(name, "")


def _figure(path: Path, run: Run) -> str:
    caption = _caption(run, path.name)
    return (f"<figure>{_img(path.read_bytes(), MIME[path.suffix], path.name)}"
            f"<figcaption>{_e(caption)} ({_e(path.name)})</figcaption></figure>")


def _run_parts(run: Run, paths: list[Path], full: bool) -> list[tuple[str, str, str]]:
    """A run's sub-sections (id, title, HTML) in RUN_SECTIONS order; `full` shows every figure
    and the animation, else SWEEP_FIGURES."""
    files = {p.name: p for p in paths}
    shown = [p for p in paths if p.suffix == ".png" and p.name != "message_history.png"
             and (full or p.name in SWEEP_FIGURES)]
    content = {"verdict": ("Verdict", _verdict(run)), "law": ("The law against the network", _physical(run)),
               "summary": ("Summary", _summary(run)), "equations": ("Equations", _equations(run)),
               "training": ("Training", _training(run, files, animate=full)),
               "figures": ("Figures", "".join(_figure(p, run) for p in shown) or "<p>None yet.</p>")}
    return [(f"{_anchor(run)}-{key}", *content[key]) for key in RUN_SECTIONS]


def _run_section(run: Run, paths: list[Path]) -> str:
    """A run's section in a sweep report: its label, then its sub-sections with the key figures."""
    body = "".join(f'<section id="{sid}"><h3>{title}</h3>{content}</section>'
                   for sid, title, content in _run_parts(run, paths, full=False))
    return f'<section id="{_anchor(run)}"><h2>{_e(run.label)}</h2>{body}</section>'


# --------------------------------------------------------------------------- #
# Sweep grid, tables, sources                                                  #
# --------------------------------------------------------------------------- #

def _grid(runs: list[Run], tables: dict[str, list[dict]]) -> str:
    """Rows law-dim, a column per strategy; per run ✓ (`tables.found`), ✗, or – (not distilled)."""
    header, _ = wide(tables["success_rate"])
    strategies = [s for s in header[1:] if s != "repro" and any(r.strategy == s for r in runs)]
    sims = list(dict.fromkeys(r["sim"] for r in tables["success_rate"]))
    by_cell: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        by_cell.setdefault((run.sim, run.strategy), []).append(run)
    rows = []
    for sim in sims:
        cells = []
        for strategy in strategies:
            links = []
            for run in by_cell.get((sim, strategy), []):
                d = run.distill
                ok = None if d is None else found(d)
                detail = ("not distilled" if d is None else
                          ", ".join(f"{name} {_mark(success)}" for name, success in found_parts(d)))
                links.append(f'<a href="#{_anchor(run)}" class="{"ok" if ok else "no"}" '
                             f'title="{_e(run.label)}: {_e(detail)}">s{run.seed} {_mark(ok)}</a>')
            cells.append(" ".join(links) or MISSING)
        rows.append([_e(sim), *cells])
    return ('<p class="note">✓: force law and Newton\'s second law both found (Hamiltonian: the pair '
            'potential found); ✗: not found; –: not distilled yet. Each mark links to its run.</p>'
            '<div class="grid">'
            + _table(["law-dim", *(STRATEGY_TITLES.get(s, s) for s in strategies)], rows, raw=True) + "</div>")


def _tables(tables: dict[str, list[dict]]) -> str:
    out = ['<p class="note">Each cell: ours (paper P, repro R); several seeds as mean ± std [n].</p>']
    for name, rows in tables.items():
        spec = SPEC_BY_NAME[name]
        header, body = wide(rows)
        out += [f'<h3 id="table-{name}">{_e(spec.title)}</h3><p class="note">{_e(spec.note)}</p>',
                _table(["sim", *(STRATEGY_TITLES.get(h, h) for h in header[1:])], body)]
    return "".join(out)


def _sources() -> str:
    items = "".join(f"<li><b>{_e(s)}</b>: {_e(published.citation(s))} Normalisation: "
                    f"{_e(published.normalisation(s))}</li>" for s in published.sources())
    return f"<ul>{items}</ul>"


def _page(title: str, sections: list[tuple[str, str, str]]) -> str:
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(name)}</h2>{content}</section>' for sid, name, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1><nav>{nav}</nav>{body}</body></html>\n")


def write_report(runs: list[Run], path: str | os.PathLike, figures: dict[str, list[Path]]) -> Path:
    """Write report.html for one run (`len(runs) == 1`) or a sweep.

    Args:
        runs: the runs (at least one).
        path: the output file.
        figures: {run name: paths `make_figures` wrote for it}; runs without an entry show no figures.
    Returns:
        The written path.
    """
    tables = build_tables(runs)
    common = [("tables", "Results beside the published numbers", _tables(tables)), ("sources", "Sources", _sources())]
    if len(runs) == 1:
        run = runs[0]
        page = _page(f"symdistill run: {run.label}", [*_run_parts(run, figures.get(run.name, []), full=True), *common])
    else:
        sweep = Path(os.path.commonpath([str(r.path) for r in runs]))
        sections = "".join(_run_section(r, figures.get(r.name, [])) for r in runs)
        page = _page(f"symdistill sweep: {sweep.name} ({len(runs)} runs)",
                     [("grid", "Runs by law, dimension and strategy", _grid(runs, tables)), common[0],
                      ("runs", "Runs", sections), common[1]])
    atomic_write_text(path, page)
    return Path(path)
