"""The first screen of report.html: the verdict before anything else (found or not, the failed
check with its number, what to try next), the discovered law beside the true one with no
Python syntax, Pareto captions that give the final (refitted) equations, readable step ticks.

The run is the planted spring model distilled by the real pipeline (`distill.planted`, small
settings), edited only through `distill.schema` to plant a failure or a law; the report is
built without figures except where the captions are the point.
"""
from __future__ import annotations

import dataclasses
import shutil
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from _distill_helpers import SMALL_SR, small_planted_run
from _report_helpers import scan_report
from analysis import load_run, make_figures, write_report
from analysis.notation import force, write
from analysis.training import history_figure
from analysis.verdict import run_verdict
from distill.schema import ConstantMatch, PhysicalLaw, load_result, save_result
from gnn.config import ModelConfig, TrainConfig
from nbody.config import SimConfig
from plumbing.io import save_json



@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("planted") / "distill"
    return small_planted_run(out)


@pytest.fixture
def make_run(planted, tmp_path):
    """make_run(edit): a run folder (config.json, train/metrics.json, distill/) whose
    DistillResult went through `edit`."""
    def make(edit=lambda d: d, name="spring-2d-bottleneck-s0") -> Path:
        run = tmp_path / name
        run.mkdir()
        save_json(run / "config.json", {"preset": "tiny", "sim": SimConfig(law="spring", dim=2),
                                        "model": ModelConfig(strategy="bottleneck", dim=2),
                                        "train": TrainConfig(), "distill": SMALL_SR})
        save_json(run / "train" / "metrics.json", {"test": {"mae_per_node": 0.02, "mae_per_node_std": 0.002},
                                                    "epochs": 14, "steps": 100})
        shutil.copytree(planted, run / "distill")
        save_result(run / "distill", edit(load_result(run / "distill")))
        return run
    return make


class _Sections(HTMLParser):
    """The page's top-level sections in order: [(id, visible text, image alts)]."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.depth = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            if self.depth == 0:
                self.sections.append((dict(attrs).get("id"), [], []))
            self.depth += 1
        elif tag == "img" and self.depth:
            self.sections[-1][2].append(dict(attrs).get("alt", ""))

    def handle_endtag(self, tag):
        if tag == "section":
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.sections[-1][1].append(data)


def sections(path: Path) -> list[tuple[str, str, list[str]]]:
    parser = _Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    return [(sid, " ".join(" ".join(text).split()), alts) for sid, text, alts in parser.sections]


def _report(run_dir: Path, figures: list[Path] | None = None) -> Path:
    run = load_run(run_dir)
    path = write_report([run], run_dir / "report.html", {run.name: figures or []})
    assert not scan_report(path).problems
    return path


def _judged(e, **changes):
    return dataclasses.replace(e, judgement=dataclasses.replace(e.judgement, **changes))


def _found(d, force="2.0002 - 2*r"):
    """The result with every equation passed and a radial law `force` (over r, the softened
    distance) found beside the true 2 - 2r'."""
    constants = (ConstantMatch(term="1", true=2.0, found=2.0002, rel_error=1e-4),
                 ConstantMatch(term="r'", true=-2.0, found=-2.0, rel_error=0.0))
    law = PhysicalLaw(radial=True, reason=None, force=force, text="", latex="", receiver=None, nonradial_share=0.0,
                      constants=constants, max_rel_error=1e-4, matches_truth=True, train=1e-6, test=1e-6, ood={})
    return dataclasses.replace(d, edge=tuple(_judged(e, success=True) for e in d.edge),
                               node=tuple(_judged(e, success=True) for e in d.node), edge_success=True,
                               node_success=True, physical_law=law)


def test_the_verdict_comes_first_with_both_laws_in_readable_form(make_run):
    run_dir = make_run(_found)
    first_id, text, alts = sections(_report(run_dir))[0]
    assert first_id == "run-spring-2d-bottleneck-s0-verdict"
    assert text.startswith("Verdict Found: force law ✓ · Newton's second law ✓")
    assert "Failed checks" not in text and "Next to try" not in text
    # a·r' + b written as a·(r' + b/a) for both; the 1.0001 the text keeps is in the LaTeX too
    for law in ("f(r') = -2·(r' - 1.000)", "f(r') = -2·(r' - 1)"):
        assert law in text and law in alts                                      # text, and drawn from LaTeX
    assert "1 2.000 2 0.01 %" in text                                             # the constants, rounded
    assert "**" not in text and "*" not in text and "**" not in " ".join(alts)


def _no_radial_law(d):
    """The composed model read as no radial law (as when its axes' pair terms disagree)."""
    reason = "the radial factors of the axes differ by 22 %"
    law = dataclasses.replace(d.physical_law, radial=False, reason=reason, force=None, latex="",
                              text=f"no radial force law: {reason}", nonradial_share=None, constants=(),
                              max_rel_error=None, matches_truth=False)
    return dataclasses.replace(d, physical_law=law)


def test_a_run_without_a_radial_law_shows_its_selected_equations(make_run):
    run_dir = make_run(_no_radial_law)
    d = load_result(run_dir / "distill")
    assert not d.physical_law.radial
    _, text, _ = sections(_report(run_dir))[0]
    assert d.physical_law.reason in text and "f(r') = -2·(r' - 1)" in text
    assert all(f"φ{e.rank} = {write(e.equation).text}" in text for e in d.edge)


def test_a_failed_run_names_the_check_its_number_and_a_hint(make_run):
    def fail(d):
        node = (_judged(d.node[0], success=False, r2=0.97, target=None),) + d.node[1:]
        return dataclasses.replace(d, node=node, node_success=False, r2_force_mean=0.9995)
    _, text, _ = sections(_report(make_run(fail)))[0]
    assert "Not found" in text and "Newton's second law ✗" in text
    assert "node a_x" in text and "R² 0.97 < 0.99 against the force" in text
    assert "Next to try" in text and "--generations (this run had 8)" in text


def test_hints_follow_the_rules(make_run):
    def weak_messages(d):
        edge = tuple(_judged(e, success=False, r2=0.5, cosine=0.5) for e in d.edge)
        return dataclasses.replace(d, edge=edge, edge_success=False, r2_force_mean=0.6, r2_accel_mean=0.4)
    v = run_verdict(load_run(make_run(weak_messages)))
    assert v.found is False
    assert any("R² 0.5 < 0.99" in f for f in v.failures)
    assert any("direction cosine 0.5 < 0.99" in f for f in v.failures)
    assert len(v.hints) == 1 and v.hints[0].startswith("train longer: --epochs (this run had 14)")

    def nonlinear_node(d):
        node = (_judged(d.node[0], success=False, linear_in_messages=False),) + d.node[1:]
        return dataclasses.replace(d, node=node, node_success=False)
    v = run_verdict(load_run(make_run(nonlinear_node, name="nonlinear")))
    assert any(f.endswith("not linear in the summed messages") for f in v.failures)
    assert any("--generations" in h for h in v.hints)         # SMALL_SR picks node equations by score already

    fine = run_verdict(load_run(make_run(_found, name="fine")))
    assert fine.found and fine.failures == () and fine.hints == ()


def test_text_and_latex_keep_the_same_constants():
    w = write("1.0002*e1/m1 + 0.14522")
    assert w.text == "1.000·e1/m1 + 0.1452" and "1.000" in w.latex      # the factor is not dropped
    w = write("-1.9277*dx*r**(-2) + 6.9876e-9")
    assert w.text == "-1.928·dx/r² + 6.988×10⁻⁹" and r"6.988 \cdot 10^{-9}" in w.latex
    assert force("2 - 2*r'").text == force("-2.0*r + 2.0").text == "-2·(r' - 1)"


def test_a_law_with_powers_reads_without_python_syntax(make_run):
    def power_law(d):
        return dataclasses.replace(_found(d, force="-1.0002*m1*m2/r**2"), expected_force="-m1*m2/r'**2")
    _, text, alts = sections(_report(make_run(power_law)))[0]
    assert "f(r') = -1.000·m1·m2/r'²" in text and "f(r') = -m1·m2/r'²" in text
    assert "f(r') = -1.000·m1·m2/r'²" in alts
    assert "**" not in text and "*" not in text


def test_pareto_captions_give_the_final_refitted_equation(make_run, tmp_path):
    def refitted(d):
        edge = (dataclasses.replace(d.edge[0], refit=True, selected_equation="0.5*dx/r"),) + d.edge[1:]
        return dataclasses.replace(d, edge=edge)
    run_dir = make_run(refitted)
    run = load_run(run_dir)
    figures = [p for p in make_figures(run, tmp_path / "figures") if p.name.startswith("pareto_")]
    captions = scan_report(_report(run_dir, figures)).captions
    d = run.distill
    for e, lhs in [(e, f"φ{e.rank}") for e in d.edge] + [(e, f"a_{e.output}") for e in d.node]:
        caption = next(c for c in captions if c.endswith(f"({Path(e.front_file).stem}.png)"))
        assert f"{lhs} = {write(e.equation).text}" in caption
    first = next(c for c in captions if c.endswith(f"({Path(d.edge[0].front_file).stem}.png)"))
    assert "constants refitted" in first and write("0.5*dx/r").text not in first


def test_message_history_step_labels_do_not_overlap():
    steps = np.arange(0, 40001, 1000)
    rng = np.random.default_rng(0)
    history = SimpleNamespace(step=steps, r2_force=rng.uniform(size=(len(steps), 2)),
                              r2_accel=rng.uniform(size=(len(steps), 2)), sparsity=rng.uniform(size=len(steps)))
    fig = history_figure(history, title="spring 2D, bottleneck, seed 0")
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert len(boxes) >= 3
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in ax.get_xticklabels()]
