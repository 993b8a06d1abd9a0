"""Tests of analysis/: published numbers against their sources, run loading, tables, figures.

Run directories are built from what the producers write: distill/ is a real distillation of
the planted model (`distill.planted`, one small run per module), copied into each run and
edited only through `distill.schema` (so a change of the layout breaks these tests), and
config.json holds the stage configs. train/metrics.json (gnn's output; analysis reads
test.mae_per_node and its std) and data/test_states.npy are written by hand;
train/message_history.npz comes from a real (tiny) training run.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from matplotlib.colors import to_rgba
from PIL import Image

from _distill_helpers import SMALL_SR, SPRING, small_planted_run, spring_data
from _report_helpers import legend_overlaps, scan_report
from analysis import (build_tables, find_runs, load_run, make_figures, published, run_figures, summary_rows,
                      write_tables)
from analysis.figures import message_fit_figure, sparsity_figure
from analysis.notation import write
from analysis.report import RUN_SECTIONS, write_report
from analysis.tables import to_markdown
from gnn.messages import significance, sparsity, top_components
from distill.schema import load_result, read_front, save_result
from gnn.config import ModelConfig, TrainConfig
from gnn.history import HISTORY_FILE, load_history
from gnn.train import train
from nbody.config import SimConfig
from pipeline import cli
from plumbing.errors import InputError
from plumbing.io import save_figure, save_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- #
# Run directories                                                              #
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def planted_distill(tmp_path_factory) -> Path:
    """A distill folder written by the pipeline for the planted spring model."""
    out = tmp_path_factory.mktemp("planted") / "distill"
    return small_planted_run(out)


@pytest.fixture(scope="module")
def recorded_history(tmp_path_factory) -> Path:
    """message_history.npz of a tiny bottleneck run on spring states (6 rows)."""
    out = tmp_path_factory.mktemp("history")
    data = spring_data(train_graphs=400, test_graphs=100)
    train({"train": (data.train_x, data.train_a), "test": (data.test_x, data.test_a), "law": SPRING},
          ModelConfig(strategy="bottleneck", hidden=16, n_hidden_layers=1),
          TrainConfig(epochs=4, batch_size=32, device="cpu", message_history_every=10, message_history_edges=300),
          out, progress=False)
    return out / HISTORY_FILE


@pytest.fixture
def make_run(planted_distill, recorded_history):
    """make_run(root, name, law, dim, strategy, seed, mae, stages): a run directory with the
    given stages ("data", "train", "history", "distill"); its distill numbers are set as
    listed below."""
    def make(root: Path, name: str, law="spring", dim=2, strategy="l1", seed=0, mae=0.018,
             stages=("data", "train", "distill")) -> Path:
        run = root / name
        run.mkdir(parents=True)
        save_json(run / "config.json", {"preset": "tiny", "sim": SimConfig(law=law, dim=dim, seed=seed),
                                        "model": ModelConfig(strategy=strategy, dim=dim),
                                        "train": TrainConfig(seed=seed), "distill": SMALL_SR})
        if "data" in stages:
            states = np.random.default_rng(seed).normal(size=(2, 30, 4, 2 * dim + 2)).astype(np.float32)
            states[..., -1] = 1.0  # mass
            (run / "data").mkdir()
            np.save(run / "data" / "test_states.npy", states)
        if "train" in stages:
            test = {"mae_per_node": mae, "mae_per_node_std": mae / 10, "mae_per_node_sem": mae / 100,
                    "loss_per_graph": mae * 4, "loss_per_graph_std": mae, "n_graphs": 100}
            save_json(run / "train" / "metrics.json", {"test": test, "val": test, "baseline_mae_per_node": 1.0,
                                                        "steps": 48, "epochs": 4, "train_seconds": 2.0,
                                                        "message_history_seconds": 0.05})
        if "history" in stages:
            (run / "train").mkdir(exist_ok=True)
            shutil.copy(recorded_history, run / "train" / HISTORY_FILE)
        if "distill" in stages:
            shutil.copytree(planted_distill, run / "distill")
            save_result(run / "distill", _with_numbers(load_result(run / "distill"), law, dim, strategy))
        return run
    return make


def _with_numbers(result, law, dim, strategy):
    """The planted result relabelled as this run, with the numbers the table tests expect:
    R² 0.97 (0.45), sparsity 0.95, edge 1/2 (✗), node 2/2 (✓), MAE sym 0.025 / NN 0.02."""
    def judged(entry, ok):
        return dataclasses.replace(entry, judgement=dataclasses.replace(
            entry.judgement, success=ok, target=entry.judgement.best if ok else None))

    ood = {"spread": (0.05, 0.03), "more_particles": (0.07, 0.04)}
    mae = dataclasses.replace(
        result.mae, network=0.02, symbolic=0.025, network_std=0.002, symbolic_std=0.003,
        ood={k: dataclasses.replace(v, network=ood[k][0], symbolic=ood[k][1]) for k, v in result.mae.ood.items()})
    return dataclasses.replace(
        result, law=law, dim=dim, strategy=strategy, sparsity=0.95, r2_force=(0.98, 0.96), r2_force_mean=0.97,
        r2_accel=(0.5, 0.4), r2_accel_mean=0.45, edge=tuple(map(judged, result.edge, (True, False))),
        node=tuple(judged(e, True) for e in result.node), edge_success=False, node_success=True, mae=mae)


def markdown_rows(text: str) -> dict[str, list[str]]:
    """Body rows of a Markdown pipe table keyed by their first cell, plus the header under "Sim"."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


# --------------------------------------------------------------------------- #
# Published numbers                                                            #
# --------------------------------------------------------------------------- #

PUBLISHED_DOC = Path(__file__).resolve().parents[1] / "docs" / "published.md"
PUBLISHED_TABLES = [(source, name) for source in published.sources() for name in published.table_names(source)]


def _doc_tables() -> dict[tuple[str, str], list[list[str]]]:
    """Each table of docs/published.md whose heading names a published.json key `source.table`,
    as rows of cells (header first, the |---| line dropped)."""
    tables, key = {}, None
    for line in PUBLISHED_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#+ .*`(paper|repro)\.(\w+)`", line)
        if heading:
            key = heading.groups()
            tables[key] = []
        elif line.startswith("#"):
            key = None
        elif key and line.startswith("|") and not line.startswith("|---"):
            tables[key].append([c.strip() for c in line.strip().strip("|").split("|")])
    return tables


def _mean_std_cell(cell: str) -> dict:
    mean, std = re.fullmatch(r"([\d.]+) ± ([\d.]+)", cell).groups()
    return {"mean": float(mean), "std": float(std)}


def _doc_values(fmt: str, rows: list[list[str]]) -> dict[str, dict]:
    """A docs table as published.json lays it out: {"{law}-{dim}": {strategy: value}}."""
    columns = [re.sub(r"[`*]", "", c).split()[0].lower() for c in rows[0][1:]]
    out = {}
    for sim, *cells in rows[1:]:
        row = dict(zip(columns, cells))
        if fmt == "symbolic_network":
            out[sim] = {"best": {k: _mean_std_cell(row[k]) for k in ("symbolic", "network")}}
            continue
        parse = {"number": float, "mean_std": _mean_std_cell, "bool": {"✓": True, "✗": False}.__getitem__,
                 "count": lambda c: dict(zip(("success", "total"), map(int, c.split("/"))))}[fmt]
        out[sim] = {k: parse(v) for k, v in row.items()}
    return out


def test_every_published_table_is_transcribed_in_the_docs():
    assert set(_doc_tables()) == set(PUBLISHED_TABLES)


@pytest.mark.parametrize("source,name", PUBLISHED_TABLES)
def test_published_json_matches_docs_table(source, name):
    """Every cell of published.json equals its source table as transcribed in docs/published.md."""
    rows = _doc_tables()[(source, name)]
    fmt = published.table_info(source, name)["format"]
    assert _doc_values(fmt, rows) == published.table(source, name)


def test_published_spot_checks():
    # Values read off docs/published.md (§1 the paper, §2 the reproduction) by hand.
    assert published.mean_std("repro", "test_mae", "spring-2", "bottleneck") == (0.0182, 0.001)
    assert published.mean_std("repro", "test_mae", "charge-2", "standard") == (0.466, 0.211)
    assert published.mean_std("repro", "test_mae", "r2-3", "kl") == (3.8264, 0.264)
    assert published.number("repro", "r2_force", "charge-3", "standard") == 0.429
    assert published.number("repro", "r2_accel", "charge-3", "standard") == 0.990
    assert published.number("repro", "r2_force", "spring-2", "bottleneck") == 0.999
    assert published.number("repro", "sparsity", "charge-2", "standard") == 0.180
    assert published.count("repro", "edge_success", "spring-3", "bottleneck") == (2, 3)
    assert published.count("repro", "node_success", "charge-3", "kl") == (3, 3)
    assert published.number("paper", "test_loss", "spring-2", "bottleneck") == 0.046
    assert published.number("paper", "test_loss", "charge-2", "standard") == 48.688
    assert published.number("paper", "test_loss", "r1-3", "flathgn") == 0.017
    assert published.number("paper", "r2_force", "r2-3", "kl") == 0.214
    assert published.flag("paper", "edge_success", "charge-3", "bottleneck") is True
    assert published.flag("paper", "edge_success", "r2-2", "kl") is False
    assert published.value("paper", "r2_force", "spring-2", "flathgn") is None
    assert "per node" in published.normalisation("repro")
    assert "unspecified" in published.normalisation("paper")
    assert "Jain" in published.citation("repro") and "Cranmer" in published.citation("paper")
    with pytest.raises(InputError):
        published.table("paper", "no_such_table")


def test_repro_quotes_of_the_paper_agree_with_paper_tables():
    """The reproduction quotes the paper's Table 3 to 2 significant figures and Table 1 exactly."""
    for sim, row in published.table("repro", "paper_test_loss_quoted").items():
        for strategy, quoted in row.items():
            exact = published.number("paper", "test_loss", sim, strategy)
            assert float(f"{exact:.2g}") == pytest.approx(quoted), (sim, strategy)
    assert published.table("repro", "paper_r2_force_quoted") == published.table("paper", "r2_force")


# --------------------------------------------------------------------------- #
# Loading runs                                                                 #
# --------------------------------------------------------------------------- #

def test_load_run_identity_and_lazy_arrays(tmp_path, make_run):
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0"))
    assert (run.law, run.dim, run.strategy, run.seed, run.sim) == ("spring", 2, "l1", 0, "spring-2")
    assert run.metrics["test"]["mae_per_node"] == 0.018
    assert run.distill == load_result(run.distill_dir) and run.distill.sparsity == 0.95
    assert run.messages.messages.shape == (500, 2)
    assert list(run.messages.top) == list(run.distill.top_components)
    assert run.predictions.true.shape == run.predictions.symbolic.shape == (20, 4, 2)
    fronts = {e.front_file for e in run.distill.edge + run.distill.node}
    assert {p.name for p in run.distill_dir.glob("pareto_*.csv")} == fronts
    assert "pareto_node_x.csv" in fronts
    rows = read_front(run.distill_dir / "pareto_node_x.csv")
    assert [r.complexity for r in rows] == sorted(r.complexity for r in rows)
    assert sum(r.selected for r in rows) == 1


def test_bad_paths_raise_input_error(tmp_path, make_run):
    with pytest.raises(InputError):
        load_run(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError):
        load_run(tmp_path / "file.txt")
    with pytest.raises(InputError):
        load_run(tmp_path)  # a directory, but no config.json
    with pytest.raises(InputError):
        find_runs(tmp_path / "missing")
    bad = make_run(tmp_path, "bad")
    (bad / "distill" / "distill.json").write_text("{not json")
    with pytest.raises(InputError):
        load_run(bad)
    newer = make_run(tmp_path, "newer")
    stored = json.loads((newer / "distill" / "distill.json").read_text())
    (newer / "distill" / "distill.json").write_text(json.dumps({**stored, "version": 99}))
    with pytest.raises(InputError, match="version 99"):
        load_run(newer)


def test_find_runs_in_sweep(tmp_path, make_run):
    make_run(tmp_path, "spring-2d-l1-s0")
    make_run(tmp_path / "group", "r1-3d-kl-s1", law="r1", dim=3, strategy="kl", seed=1)
    (tmp_path / "logs").mkdir()
    runs = find_runs(tmp_path)
    assert [r.name for r in runs] == ["r1-3d-kl-s1", "spring-2d-l1-s0"]
    assert [r.name for r in find_runs(tmp_path / "spring-2d-l1-s0")] == ["spring-2d-l1-s0"]


def test_a_version_1_run_is_read_without_predictions(tmp_path, make_run):
    """Runs distilled before the layout had a version: distill.json without it, no predictions.npz."""
    run_dir = make_run(tmp_path, "spring-2d-l1-s0")
    path = run_dir / "distill" / "distill.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "version"}))
    (run_dir / "distill" / "predictions.npz").unlink()
    run = load_run(run_dir)
    assert run.distill.version == 1 and run.predictions is None
    names = {p.name for p in make_figures(run, tmp_path / "figures")}
    assert "message_fit.png" in names and "predictions.png" not in names


# --------------------------------------------------------------------------- #
# Tables                                                                       #
# --------------------------------------------------------------------------- #

def test_tables_of_one_run(tmp_path, make_run):
    tables = build_tables([load_run(make_run(tmp_path, "spring-2d-l1-s0"))])
    assert set(tables) == {"test_mae", "r2", "sparsity", "edge_reconstruction", "success_rate",
                           "node_reconstruction", "symbolic_vs_network", "ood"}
    cell = {(r["table"], r["strategy"]): r for rows in tables.values() for r in rows if r["sim"] == "spring-2"}
    mae = cell[("test_mae", "l1")]
    assert mae["value"] == 0.018 and mae["spread"] == pytest.approx(0.0018) and mae["n_runs"] == 1
    assert mae["paper"] == 0.045 and mae["repro"] == {"mean": 0.0249, "std": 0.001}
    assert mae["cell"] == "0.0180 ± 0.00180 over test graphs (paper 0.045, repro 0.0249 ± 0.001)"
    assert cell[("r2", "l1")]["cell"] == "0.970 (0.450) (paper 1.000, repro 1.000 (0.430))"
    assert cell[("sparsity", "l1")]["cell"] == "0.950 (repro 1.000)"
    assert cell[("edge_reconstruction", "l1")]["cell"] == "1/2 ✗ (paper ✓, repro 2/2)"
    assert cell[("node_reconstruction", "l1")]["cell"] == "2/2 ✓ (repro 2/2)"
    assert cell[("success_rate", "l1")]["cell"] == "0/1 (force 0/1, Newton 1/1) (paper ✓)"
    assert cell[("symbolic_vs_network", "l1")]["cell"] == "sym 0.0250 ± 0.00300 / NN 0.0200 ± 0.00200 over test graphs"
    assert cell[("ood", "l1")]["value"] is None and cell[("ood", "l1")]["spread_symbolic"] == 0.03
    # Strategies without runs still show the published numbers.
    assert cell[("test_mae", "bottleneck")]["cell"] == "– (paper 0.046, repro 0.0182 ± 0.001)"
    assert cell[("test_mae", "bottleneck")]["n_runs"] == 0


def test_markdown_and_csv_of_a_sweep(tmp_path, make_run):
    sweep = tmp_path / "sweep"
    for seed, mae in enumerate((0.01, 0.02, 0.03)):
        make_run(sweep, f"spring-2d-l1-s{seed}", seed=seed, mae=mae)
    make_run(sweep, "r1-3d-bottleneck-s0", law="r1", dim=3, strategy="bottleneck", mae=0.5)
    out = tmp_path / "tables"
    written = write_tables(find_runs(sweep), out)
    assert {"tables.md", "tables_long.csv", "test_mae.md", "test_mae.csv", "ood.csv"} <= set(written)
    assert all(p.is_file() for p in written.values())
    assert not [p for p in out.iterdir() if ".tmp" in p.name]

    md = markdown_rows(written["test_mae.md"].read_text(encoding="utf-8"))
    assert md["Sim"] == ["Standard", "Bottleneck", "L1", "KL"]
    assert list(md)[1:] == ["spring-2", "r1-3"]
    assert md["spring-2"][2] == "0.0200 ± 0.0100 [n=3] (paper 0.045, repro 0.0249 ± 0.001)"
    assert md["r1-3"][1] == "0.500 ± 0.0500 over test graphs (paper 0.050, repro 0.0261 ± 0.003)"

    with open(written["test_mae.csv"], newline="", encoding="utf-8") as fh:
        rows = {r["sim"]: r for r in csv.DictReader(fh)}
    assert rows["spring-2"]["l1"].startswith("0.0200 ± 0.0100 [n=3]")
    assert rows["r1-3"]["kl"] == "– (paper 3.523, repro 3.251 ± 0.101)"

    edge = markdown_rows(written["edge_reconstruction.md"].read_text(encoding="utf-8"))
    assert edge["spring-2"][2] == "3/6 ✗ [n=3] (paper ✓, repro 2/2)"

    with open(written["symbolic_vs_network.csv"], newline="", encoding="utf-8") as fh:
        sym = {r["sim"]: r for r in csv.DictReader(fh)}
    assert sym["r1-3"]["repro"] == "sym 0.161 ± 0.027 / best NN 0.0261 ± 0.003"

    long_rows = list(csv.DictReader(io.StringIO(written["tables_long.csv"].read_text(encoding="utf-8"))))
    mae = next(r for r in long_rows if (r["table"], r["sim"], r["strategy"]) == ("test_mae", "spring-2", "l1"))
    assert float(mae["value"]) == pytest.approx(0.02) and float(mae["spread"]) == pytest.approx(0.01)
    assert json.loads(mae["runs"]) == ["spring-2d-l1-s0", "spring-2d-l1-s1", "spring-2d-l1-s2"]
    assert "Cranmer" in written["tables.md"].read_text(encoding="utf-8")

    summary = list(csv.DictReader(io.StringIO(written["summary.csv"].read_text(encoding="utf-8"))))
    assert list(summary[0])[:11] == ["law", "dim", "strategy", "seed", "force_law_found", "newton_found",
                                     "edge_target", "r2_force", "r2_accel", "test_mae_network",
                                     "test_mae_symbolic"]
    assert [(r["law"], r["dim"], r["strategy"], r["seed"]) for r in summary] == [
        ("r1", "3", "bottleneck", "0"), ("spring", "2", "l1", "0"), ("spring", "2", "l1", "1"),
        ("spring", "2", "l1", "2")]
    assert {r["force_law_found"] for r in summary} <= {"true", "false"}
    assert {r["newton_found"] for r in summary} <= {"true", "false"}


def test_a_refused_run_counts_as_found_nothing(tmp_path, make_run):
    """RUN/failed.json (a stage refused the run) with no distill result: a seed that found
    neither law, in the summary and in the success rate over seeds."""
    make_run(tmp_path, "spring-2d-kl-s0", strategy="kl")
    refused = make_run(tmp_path, "spring-2d-kl-s1", strategy="kl", seed=1, stages=("data", "train"))
    save_json(refused / "failed.json", {"error": "the node model reads the aligned message components "
                                                 "through a singular map"})
    runs = find_runs(tmp_path)
    assert runs[1].failure.endswith("singular map") and runs[0].failure is None
    rows = {r["run"]: r for r in summary_rows(runs)}
    assert rows["spring-2d-kl-s1"]["force_law_found"] is False and rows["spring-2d-kl-s1"]["newton_found"] is False
    assert "singular map" in rows["spring-2d-kl-s1"]["failure"] and rows["spring-2d-kl-s0"]["failure"] is None
    cell = next(r for r in build_tables(runs)["success_rate"] if (r["sim"], r["strategy"]) == ("spring-2", "kl"))
    assert cell["n_runs"] == 2 and cell["cell"].startswith("0/2 (force 0/2, Newton 1/2)")
    only = build_tables([runs[1]])["success_rate"]
    assert next(r for r in only if r["strategy"] == "kl" and r["sim"] == "spring-2")["cell"].startswith(
        "0/1 (force 0/1, Newton 0/1)")
    energy = make_run(tmp_path, "spring-2d-hamiltonian-s0", strategy="hamiltonian", stages=("data",))
    save_json(energy / "failed.json", {"error": "refused"})
    cell = next(r for r in build_tables([load_run(energy)])["success_rate"] if r["strategy"] == "hamiltonian")
    assert cell["cell"].startswith("0/1 (potential 0/1, kinetic 0/1)") and cell["found"] == 0


def test_missing_stages_leave_cells_empty(tmp_path, make_run):
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0", stages=("data",)))
    tables = build_tables([run])
    assert all(r["value"] is None for rows in tables.values() for r in rows)
    md = markdown_rows(to_markdown("r2", tables["r2"]))
    assert md["spring-2"][2] == "– (paper 1.000, repro 1.000 (0.430))"
    assert md["spring-2"][0] == "– (paper 0.032, repro 0.422 (0.999))"
    assert write_tables([], tmp_path / "empty")["tables.md"].is_file()


# --------------------------------------------------------------------------- #
# Figures                                                                      #
# --------------------------------------------------------------------------- #

def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 3000, path


def test_figures_of_a_full_run(tmp_path, make_run):
    out = tmp_path / "figures"
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0"))
    paths = make_figures(run, out)
    fronts = [f"pareto_edge_{k}.png" for k in run.distill.top_components] + ["pareto_node_x.png", "pareto_node_y.png"]
    assert sorted(p.name for p in paths) == sorted(["message_fit.png", "predictions.png", "rollout.png", "sparsity.png",
                                                    "trajectories.png", *fronts])
    for path in paths:
        _assert_png(path)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG IHDR chunk."""
    data = path.read_bytes()
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_message_fit_shows_force_and_acceleration_rows(tmp_path, make_run):
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0"))
    fit = next(p for p in make_figures(run, tmp_path / "figures") if p.name == "message_fit.png")
    msgs = run.messages
    force_only = save_figure(message_fit_figure(msgs.messages, msgs.top, {"force": msgs.fitted_force}),
                             tmp_path / "force.png")
    assert _png_size(fit)[1] > 1.5 * _png_size(force_only)[1]


def test_message_fit_of_a_constant_component_gets_a_window(tmp_path):
    """A dead component (constant message, constant fit) plots without matplotlib's
    singular-limits warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = message_fit_figure(np.ones((50, 3)), np.array([1]), {"force": np.zeros((50, 1))})
    assert fig.axes[0].get_xlim() == (-1.0, 1.0)


def test_figures_skip_missing_stages(tmp_path, make_run):
    data_only = load_run(make_run(tmp_path, "data-only", stages=("data",)))
    assert [p.name for p in make_figures(data_only, tmp_path / "a")] == ["trajectories.png"]
    train_only = load_run(make_run(tmp_path, "train-only", stages=("train",)))
    assert make_figures(train_only, tmp_path / "b") == []


ALL_STAGES = ("data", "train", "history", "distill")


def test_every_figure_names_the_run_and_no_legend_covers_an_axes(tmp_path, make_run):
    run = load_run(make_run(tmp_path, "spring-2d-bottleneck-s3", strategy="bottleneck", seed=3, stages=ALL_STAGES))
    assert run.label == "spring 2D, bottleneck, seed 3"
    figures = run_figures(run)
    assert {"trajectories.png", "message_history.png", "message_fit.png", "sparsity.png",
            "predictions.png", "pareto_node_x.png"} <= set(figures)
    for name, fig in figures.items():
        assert run.label in fig.get_suptitle(), name
        assert not legend_overlaps(fig), name
    assert any(fig.legends for fig in figures.values())       # the check saw legends


def test_sparsity_figure_shows_the_json_definition_on_a_fitting_axis():
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(2000, 100)) * np.r_[3.0, 2.0, np.full(98, 1e-3)]   # an L1 run's messages
    top = top_components(significance(wide), 2)
    fig = sparsity_figure(wide.std(axis=0), top)
    ax = fig.axes[0]
    red = [p.get_height() for p in ax.patches if p.get_facecolor() == to_rgba("tab:red")]
    assert len(red) == 2 and sum(red) == pytest.approx(sparsity(wide, top), rel=1e-12)
    assert f"{sparsity(wide, top):.1%}" in ax.get_title() and "variance" in ax.get_title()
    assert ax.get_yscale() == "log" and len(fig.axes) == 2           # shares span decades; the strip shows all 100
    bottleneck = sparsity_figure(np.array([1.234, 1.237]), np.array([1, 0]))
    ax = bottleneck.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0 and len(bottleneck.axes) == 1
    assert "100.0%" in ax.get_title()


def test_history_figures_and_an_animation_of_every_recorded_step(tmp_path, make_run):
    run = load_run(make_run(tmp_path, "spring-2d-bottleneck-s0", strategy="bottleneck", stages=("train", "history")))
    paths = {p.name: p for p in make_figures(run, tmp_path / "figures")}
    assert set(paths) == {"message_history.png", "message_evolution.gif"}
    _assert_png(paths["message_history.png"])
    history = load_history(run.path / "train")
    assert list(history.step) == [0, 10, 20, 30, 40, 48]
    with Image.open(paths["message_evolution.gif"]) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(history.step)
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        assert not np.array_equal(first, np.asarray(gif.convert("RGB")))   # the frames differ


def _report_of(tmp_path, runs):
    figures = {r.name: make_figures(r, tmp_path / "figures" / r.name) for r in runs}
    return write_report(runs, tmp_path / "report.html", figures), figures


def test_run_report_is_one_self_contained_page_with_every_section_and_figure(tmp_path, make_run):
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0", stages=ALL_STAGES))
    path, figures = _report_of(tmp_path, [run])
    scan = scan_report(path)
    assert not scan.problems, scan.problems
    anchor = "run-spring-2d-l1-s0"
    assert {f"{anchor}-{key}" for key in RUN_SECTIONS} | {"tables", "sources"} <= scan.ids
    assert {f"table-{name}" for name in build_tables([run])} <= scan.ids
    named = sorted(c.rsplit(" (", 1)[-1].rstrip(")") for c in scan.captions)   # "what it shows (file)"
    assert named == sorted(p.name for p in figures[run.name])   # every figure, the GIF too
    assert sum(mime == "image/gif" for mime, _, _ in scan.images) == 1
    equations = {alt for mime, _, alt in scan.images if alt.startswith(("φ", "a_"))}
    shown = {f"{lhs} = {write(e.equation).text}" for lhs, e in
             [(f"φ{e.rank}", e) for e in run.distill.edge] + [(f"a_{e.output}", e) for e in run.distill.node]}
    assert shown <= equations                               # each rendered by mathtext, its plain text as alt
    assert all(text in scan.text for text in shown)
    assert scan.text.count("judgement") == len(shown)
    assert "paper 0.045" in scan.text and "Cranmer" in scan.text       # the published numbers, cited


def test_sweep_report_grid_marks_and_links_every_run(tmp_path, make_run):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        make_run(sweep, f"spring-2d-l1-s{seed}", seed=seed)
    found = make_run(sweep, "r1-3d-bottleneck-s0", law="r1", dim=3, strategy="bottleneck", stages=ALL_STAGES)
    result = load_result(found / "distill")
    save_result(found / "distill", dataclasses.replace(result, edge_success=True, node_success=True))
    assert cli.main(["analyse", "--run", str(sweep)]) == 0
    scan = scan_report(sweep / "analysis" / "report.html")
    assert not scan.problems, scan.problems
    runs = find_runs(sweep)
    assert {"grid", "tables", "runs", "sources"} | {f"run-{r.name}" for r in runs} <= scan.ids
    assert sorted(set(scan.links) & {f"run-{r.name}" for r in runs}) == sorted(f"run-{r.name}" for r in runs)
    assert "s0 ✓" in scan.text and "s1 ✗" in scan.text                 # r1 both found; spring l1 not
    assert not any(mime == "image/gif" for mime, _, _ in scan.images)  # a sweep shows the key figures only
