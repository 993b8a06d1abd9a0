"""Tests of analysis/: published numbers against their sources, run loading, tables, figures.

Fake run directories are written by hand following the run-directory schema (see
analysis/runs.py), so these tests need no simulator, model or symbolic regression.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from analysis import build_tables, find_runs, load_run, make_figures, published, write_tables
from analysis.runs import read_pareto
from analysis.tables import to_markdown
from nbody.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- #
# Fake runs                                                                    #
# --------------------------------------------------------------------------- #

def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def make_run(root: Path, name: str, law="spring", dim=2, strategy="l1", seed=0, mae=0.018,
             stages=("data", "train", "distill"), layout="brief") -> Path:
    """Write a run directory with the given stages ("data", "train", "distill").

    layout "brief" writes messages.npz / pareto CSVs with the key names of the run-directory
    brief ("top_components", "fitted"); "distill" those distill/ actually writes ("top",
    "fitted_force", "fitted_accel", a "selected" CSV column).
    """
    run = root / name
    rng = np.random.default_rng(seed)
    n, msg_dim = 4, 8
    _write_json(run / "config.json", {"sim": {"law": law, "dim": dim, "seed": seed},
                                      "model": {"strategy": strategy, "msg_dim": msg_dim},
                                      "train": {"seed": seed}, "distill": {}, "preset": "tiny"})
    _write_json(run / "versions.json", {"python": "3.11", "git": "abc123"})
    if "data" in stages:
        _write_json(run / "data" / "meta.json", {"config": {"law": law, "dim": dim, "n": n}, "law": {"name": law}})
        states = rng.normal(size=(2, 30, n, 2 * dim + 2)).astype(np.float32)
        states[..., -1] = 1.0  # mass
        np.save(run / "data" / "test_states.npy", states)
        np.save(run / "data" / "test_accel.npy", rng.normal(size=(2, 30, n, dim)).astype(np.float32))
    if "train" in stages:
        test = {"mae_per_node": mae, "mae_per_node_std": mae / 10, "mae_per_node_sem": mae / 100,
                "loss_per_graph": mae * n, "loss_per_graph_std": mae, "n_graphs": 100}
        _write_json(run / "train" / "metrics.json", {"test": test, "val": test, "baseline_mae_per_node": 1.0,
                                                     "steps": 10, "epochs": 1, "train_seconds": 1.0,
                                                     "graphs_per_second": 100.0, "device": "cpu", "amp": False})
        _write_json(run / "train" / "model_config.json", {"strategy": strategy, "dim": dim})
    if "distill" in stages:
        _write_distill(run / "distill", law, dim, strategy, rng, msg_dim, layout)
    return run


def _write_distill(out: Path, law, dim, strategy, rng, msg_dim, layout) -> None:
    e = 300
    dx, dy = rng.normal(size=(2, e))
    r = np.hypot(dx, dy)
    force = np.stack([-(r - 1) * dx / r, -(r - 1) * dy / r], axis=1)
    messages = rng.normal(scale=1e-3, size=(e, msg_dim))
    messages[:, 3] = 2.0 * force[:, 0] + 0.5 * force[:, 1]
    messages[:, 5] = -force[:, 1]
    top = np.array([3, 5])
    fitted = np.stack([(m - m.mean()) / m.std() for m in messages[:, top].T], axis=1)
    component_std = messages.std(axis=0)
    out.mkdir(parents=True, exist_ok=True)
    columns = dict(messages=messages, dx=dx, dy=dy, r=r, m1=np.ones(e), m2=np.ones(e), q1=np.ones(e),
                   q2=np.ones(e), force=force)
    if layout == "brief":
        np.savez(out / "messages.npz", top_components=top, fitted=fitted, component_std=component_std, **columns)
    else:
        np.savez(out / "messages.npz", top=top, fitted_force=fitted, fitted_accel=fitted[:, ::-1],
                 scores=component_std, **columns)
    true = rng.normal(size=(20, 4, dim))
    np.savez(out / "predictions.npz", true=true, network=true + 0.01, symbolic=true - 0.02)
    front = ("complexity,loss,score,equation\n1,1.0,0.0,x0\n5,0.1,0.5,x0*dx\n"
             "9,0.01,0.6,dx*(r-1)/r\n13,0.009,0.01,dx*(r-1)/r+0.001\n")
    if layout == "distill":
        front = ("complexity,loss,score,selected,equation\n1,1.0,0.0,0,x0\n5,0.1,0.5,1,x0*dx\n"
                 "9,0.01,0.6,0,dx*(r-1)/r\n")
    for stem in ("pareto_edge_3", "pareto_node_x"):
        (out / f"{stem}.csv").write_text(front)
    edge = [{"component": 3, "equation": "dx*(r-1)/r", "latex": "", "complexity": 9, "loss": 0.01,
             "selected_by": "score", "judgement": {"success": True, "target": "force", "r2": 0.99, "affine": []}},
            {"component": 5, "equation": "dy", "latex": "", "complexity": 1, "loss": 1.0,
             "selected_by": "score", "judgement": {"success": False, "target": None, "r2": 0.1, "affine": []}}]
    node = [{"output": axis, "equation": "e0", "latex": "", "complexity": 1, "loss": 0.1,
             "judgement": {"success": True, "divided_by_mass": False, "r2": 0.99}} for axis in "xy"]
    ood = {"spread": {"network": 0.05, "symbolic": 0.03}, "more_particles": {"network": 0.07, "symbolic": 0.04}}
    _write_json(out / "distill.json", {
        "strategy": strategy, "law": law, "dim": dim, "sr_engine": "fake", "seconds": 1.0, "sparsity": 0.95,
        "component_std": component_std.tolist(), "top_components": top.tolist(),
        "r2_force": [0.98, 0.96], "r2_force_mean": 0.97, "r2_accel": [0.5, 0.4], "r2_accel_mean": 0.45,
        "edge": edge, "node": node, "edge_success": False, "node_success": True,
        "mae": {"network": 0.02, "symbolic": 0.025, "network_std": 0.002, "symbolic_std": 0.003, "ood": ood}})


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

def test_load_run_identity_and_lazy_arrays(tmp_path):
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0"))
    assert (run.law, run.dim, run.strategy, run.seed, run.sim) == ("spring", 2, "l1", 0, "spring-2")
    assert run.metrics["test"]["mae_per_node"] == 0.018
    assert run.messages["messages"].shape == (300, 8)
    assert list(run.messages["top_components"]) == [3, 5]
    assert run.predictions["true"].shape == (20, 4, 2)
    states, accel = run.dataset("test")
    assert states.shape == (2, 30, 4, 6) and accel.shape == (2, 30, 4, 2)
    assert run.dataset("train") is None
    assert set(run.pareto_files()) == {"pareto_edge_3", "pareto_node_x"}
    rows = read_pareto(run.pareto_files()["pareto_edge_3"])
    assert [r["complexity"] for r in rows] == [1, 5, 9, 13] and rows[2]["equation"] == "dx*(r-1)/r"


def test_bad_paths_raise_input_error(tmp_path):
    with pytest.raises(InputError):
        load_run(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError):
        load_run(tmp_path / "file.txt")
    with pytest.raises(InputError):
        load_run(tmp_path)  # a directory, but no run files
    with pytest.raises(InputError):
        find_runs(tmp_path / "missing")
    bad = tmp_path / "bad"
    _write_json(bad / "config.json", {})
    (bad / "distill").mkdir()
    (bad / "distill" / "distill.json").write_text("{not json")
    with pytest.raises(InputError):
        load_run(bad)


def test_find_runs_in_sweep(tmp_path):
    make_run(tmp_path, "spring-2d-l1-s0")
    make_run(tmp_path / "group", "r1-3d-kl-s1", law="r1", dim=3, strategy="kl", seed=1)
    (tmp_path / "logs").mkdir()
    runs = find_runs(tmp_path)
    assert [r.name for r in runs] == ["r1-3d-kl-s1", "spring-2d-l1-s0"]
    assert [r.name for r in find_runs(tmp_path / "spring-2d-l1-s0")] == ["spring-2d-l1-s0"]


def test_identity_survives_schema_drift(tmp_path):
    run_dir = tmp_path / "drift"
    _write_json(run_dir / "data" / "meta.json", {"config": {"n": 4}, "law": "charge"})
    _write_json(run_dir / "train" / "model_config.json", {"strategy": "bottleneck", "dim": 3})
    _write_json(run_dir / "distill" / "distill.json", {"r2_force": [0.5, 0.7, float("nan")], "edge": []})
    run = load_run(run_dir)
    assert (run.law, run.dim, run.strategy, run.seed) == ("charge", 3, "bottleneck", None)
    r2 = next(r for r in build_tables([run])["r2"] if r["strategy"] == "bottleneck")
    assert r2["value"] == pytest.approx(0.6) and r2["accel"] is None


# --------------------------------------------------------------------------- #
# Tables                                                                       #
# --------------------------------------------------------------------------- #

def test_tables_of_one_run(tmp_path):
    tables = build_tables([load_run(make_run(tmp_path, "spring-2d-l1-s0"))])
    assert set(tables) == {"test_mae", "r2", "sparsity", "edge_reconstruction", "success_rate",
                           "node_reconstruction", "symbolic_vs_network", "ood"}
    cell = {(r["table"], r["strategy"]): r for rows in tables.values() for r in rows if r["sim"] == "spring-2"}
    mae = cell[("test_mae", "l1")]
    assert mae["value"] == 0.018 and mae["spread"] == pytest.approx(0.0018) and mae["n_runs"] == 1
    assert mae["paper"] == 0.045 and mae["repro"] == {"mean": 0.0249, "std": 0.001}
    assert mae["cell"] == "0.0180 ± 0.00180 (paper 0.045, repro 0.0249 ± 0.001)"
    assert cell[("r2", "l1")]["cell"] == "0.970 (0.450) (paper 1.000, repro 1.000 (0.430))"
    assert cell[("sparsity", "l1")]["cell"] == "0.950 (repro 1.000)"
    assert cell[("edge_reconstruction", "l1")]["cell"] == "1/2 ✗ (paper ✓, repro 2/2)"
    assert cell[("node_reconstruction", "l1")]["cell"] == "2/2 ✓ (repro 2/2)"
    assert cell[("success_rate", "l1")]["cell"] == "0/1 (force 0/1, Newton 1/1) (paper ✓)"
    assert cell[("symbolic_vs_network", "l1")]["cell"] == "sym 0.0250 ± 0.00300 / NN 0.0200 ± 0.00200"
    assert cell[("ood", "l1")]["value"] is None and cell[("ood", "l1")]["spread_symbolic"] == 0.03
    # Strategies without runs still show the published numbers.
    assert cell[("test_mae", "bottleneck")]["cell"] == "– (paper 0.046, repro 0.0182 ± 0.001)"
    assert cell[("test_mae", "bottleneck")]["n_runs"] == 0


def test_markdown_and_csv_of_a_sweep(tmp_path):
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
    assert md["r1-3"][1] == "0.500 ± 0.0500 (paper 0.050, repro 0.0261 ± 0.003)"

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


def test_missing_stages_leave_cells_empty(tmp_path):
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


def test_figures_of_a_full_run(tmp_path):
    out = tmp_path / "figures"
    paths = make_figures(load_run(make_run(tmp_path, "spring-2d-l1-s0")), out)
    assert sorted(p.name for p in paths) == ["message_fit.png", "pareto_edge_3.png", "pareto_node_x.png",
                                             "predictions.png", "sparsity.png", "trajectories.png"]
    for path in paths:
        _assert_png(path)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_figures_with_distill_key_names(tmp_path):
    run = load_run(make_run(tmp_path, "spring-2d-l1-s0", layout="distill"))
    rows = read_pareto(run.pareto_files()["pareto_edge_3"])
    assert [r["selected"] for r in rows] == [False, True, False]
    small = make_figures(load_run(make_run(tmp_path, "small", stages=("distill",))), tmp_path / "small")
    paths = make_figures(run, tmp_path / "figures")
    assert {p.name for p in paths} == {"message_fit.png", "pareto_edge_3.png", "pareto_node_x.png",
                                       "predictions.png", "sparsity.png", "trajectories.png"}
    for path in paths:
        _assert_png(path)
    # Force and acceleration rows: the grid is taller than the force-only one.
    fit = next(p for p in paths if p.name == "message_fit.png")
    small_fit = next(p for p in small if p.name == "message_fit.png")
    assert _png_size(fit)[1] > 1.5 * _png_size(small_fit)[1]


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG IHDR chunk."""
    data = path.read_bytes()
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_figures_skip_missing_stages(tmp_path):
    data_only = load_run(make_run(tmp_path, "data-only", stages=("data",)))
    assert [p.name for p in make_figures(data_only, tmp_path / "a")] == ["trajectories.png"]
    train_only = load_run(make_run(tmp_path, "train-only", stages=("train",)))
    assert make_figures(train_only, tmp_path / "b") == []
