"""run.py end to end: the `tiny` and `cpu` presets, resume/skip behaviour, and bad input.

The tiny preset is the README's main job; here (in every test run) it must rediscover the
spring force law with the bottleneck strategy, write tables that parse and figures that are
PNGs, and a re-run must skip every finished stage. The `cpu` preset's r2 recovery takes
minutes and is marked `slow` (left out by default; `pytest -m slow` runs it).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gnn.strategies import get_strategy
from nbody.laws import Law, register_law
from pipeline import cli, presets, stages, sweep
from pipeline.flags import config_from_args
from pipeline.parser import build_parser
from plumbing.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("tiny") / "run"
    proc = _cli("all", "--preset", "tiny", "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


def test_tiny_preset_rediscovers_the_spring_law(tiny_run):
    out, proc = tiny_run
    result = json.loads((out / "distill" / "distill.json").read_text())
    assert result["law"] == "spring" and result["strategy"] == "bottleneck"
    assert result["edge_success"], [e["judgement"] for e in result["edge"]]
    assert result["node_success"], [e["judgement"] for e in result["node"]]
    assert min(result["r2_force_mean"], 1.0) > 0.95
    assert "force law FOUND" in proc.stdout and "Newton's 2nd law FOUND" in proc.stdout


def test_tiny_run_directory_holds_configs_tables_and_figures(tiny_run):
    out, _ = tiny_run
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "tiny" and config["sim"]["law"] == "spring"
    assert json.loads((out / "versions.json").read_text())["torch"].startswith("2.")
    tables = out / "analysis"
    with open(tables / "test_mae.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert any(row.get("sim", "").startswith("spring-2") for row in rows), rows
    markdown = (tables / "test_mae.md").read_text().splitlines()
    assert any(line.startswith("| spring-2") for line in markdown), markdown
    pngs = sorted(tables.glob("*.png"))
    assert len(pngs) >= 4
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tiny_run_report_and_message_history(tiny_run):
    """The page a person opens: every section and figure embedded, nothing outside it; the
    messages recorded during training become the force (the animation has a frame per record)."""
    from PIL import Image

    from _report_helpers import scan_report
    from analysis.report import RUN_SECTIONS
    from gnn.history import load_history

    out, _ = tiny_run
    scan = scan_report(out / "analysis" / "report.html")
    assert not scan.problems, scan.problems
    assert {f"run-run-{key}" for key in RUN_SECTIONS} | {"tables", "sources"} <= scan.ids
    figures = sorted(p.name for p in (out / "analysis").iterdir() if p.suffix in (".png", ".gif"))
    named = sorted(c.rsplit(" (", 1)[-1].rstrip(")") for c in scan.captions)   # "what it shows (file)"
    assert named == figures and "message_evolution.gif" in figures
    history = load_history(out / "train")
    assert history.step[0] == 0 and len(history.step) > 10
    assert history.r2_force[-1].min() > 0.95 > history.r2_force[0].max()
    with Image.open(out / "analysis" / "message_evolution.gif") as gif:
        assert gif.n_frames > 1


def test_rerun_skips_finished_stages_and_redoes_only_the_missing_one(tiny_run):
    out, _ = tiny_run
    checkpoint = out / "train" / "checkpoint.pt"
    data_meta = out / "data" / "meta.json"
    before = (checkpoint.stat().st_mtime_ns, data_meta.stat().st_mtime_ns)
    (out / "distill" / "distill.json").unlink()   # as if distillation had been interrupted
    proc = _cli("all", "--preset", "tiny", "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[simulate]" in proc.stdout and "done already, skipped" in proc.stdout
    assert (checkpoint.stat().st_mtime_ns, data_meta.stat().st_mtime_ns) == before
    assert (out / "distill" / "distill.json").exists()


def test_changed_config_in_an_existing_run_directory_is_refused(tiny_run):
    out, _ = tiny_run
    proc = _cli("all", "--preset", "tiny", "--quiet", "--epochs", "1", "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "different config" in proc.stderr


@pytest.mark.slow
def test_cpu_preset_rediscovers_the_r2_law_in_2d(tmp_path):
    out = tmp_path / "r2"
    # Measured beside another job on 2 cores: 683 s once, and over 900 s once (benchmarks/RESULTS.md).
    proc = _cli("all", "--preset", "cpu", "--law", "r2", "--dim", "2", "--strategy", "bottleneck",
                "--quiet", "--out", str(out), timeout=2400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "distill" / "distill.json").read_text())
    assert result["edge_success"], [e["judgement"] for e in result["edge"]]
    assert result["node_success"], [e["judgement"] for e in result["node"]]


@pytest.mark.slow
@pytest.mark.parametrize("seed, threads", [(1, 1), (2, 2)])
def test_tiny_preset_rediscovers_spring_under_another_seed_and_thread_count(tmp_path, seed, threads):
    """The demo must not ride on one seed's or one float path's luck: another seed, and torch
    at 2 threads (another reduction order, as another CPU has), recover both laws too
    (results/robustness: 10 seeds x 1 and 2 threads)."""
    out = tmp_path / "run"
    proc = _cli("all", "--preset", "tiny", "--seed", str(seed), "--threads", str(threads), "--quiet",
                "--out", str(out), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "distill" / "distill.json").read_text())
    assert result["edge_success"], [e["judgement"] for e in result["edge"]]
    assert result["node_success"], [e["judgement"] for e in result["node"]]


@pytest.mark.parametrize("args, message", [
    (["simulate", "--law", "nope", "--out", "{tmp}/d"], "unknown law"),
    (["simulate", "--n", "1", "--out", "{tmp}/d"], "n must be"),
    (["simulate", "--dim", "4", "--out", "{tmp}/d"], "dim must be 2 or 3"),
    (["simulate", "--dt", "-0.1", "--out", "{tmp}/d"], "dt must be positive"),
    (["simulate", "--out", "{tmp}"], "exists"),
    (["train", "--data", "{tmp}/missing", "--out", "{tmp}/t"], "no dataset"),
    (["train", "--data", "{tmp}", "--strategy", "nope", "--out", "{tmp}/t"], "strategy"),
    (["distill", "--model", "{tmp}/missing.pt"], "checkpoint"),
    (["distill", "--model", "{tmp}/garbage.pt"], "corrupt checkpoint"),
    (["all", "--integrator", "gpu", "--out", "{tmp}/r"], "integrator"),
    (["analyse", "--run", "{tmp}/missing"], "no such run"),
])
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = cli.main([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before   # nothing written or lost


def test_bad_input_message_is_a_single_line(tmp_path):
    proc = _cli("simulate", "--law", "nope", "--out", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown law") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_every_config_field_is_a_flag_and_overrides_the_preset():
    parser = build_parser()
    args = parser.parse_args(["all", "--out", "x", "--law", "r2", "--dim", "3", "--strategy", "kl",
                              "--epochs", "3", "--generations", "7", "--no-refit", "--n", "none"])
    cfg = config_from_args(args)
    assert (cfg.sim.law, cfg.sim.dim, cfg.sim.n) == ("r2", 3, None)
    assert (cfg.model.strategy, cfg.train.epochs, cfg.distill.generations) == ("kl", 3, 7)
    assert cfg.distill.refit is False
    assert cfg.train.seed == cfg.sim.seed == cfg.distill.seed == 0


@pytest.mark.parametrize("preset", presets.PRESETS)
@pytest.mark.parametrize("strategy", ["bottleneck", "l1", "hamiltonian"])
def test_no_preset_setting_depends_on_the_laws_name(preset, strategy):
    """Two laws differ in a preset only by their name: every other setting is the recipe's,
    whose rules read the data (and a flag still beats them)."""
    register_law(Law("mirror_of_charge", potential="q1*q2/r", dt=1e-3, charges="sign"), overwrite=True)
    configs = [presets.preset(preset, law, strategy) for law in ("spring", "r2", "charge", "mirror_of_charge")]
    assert [c.sim.law for c in configs] == ["spring", "r2", "charge", "mirror_of_charge"]
    unnamed = [dataclasses.replace(c, sim=dataclasses.replace(c.sim, law="spring")) for c in configs]
    assert all(c == unnamed[0] for c in unnamed), [c.distill for c in configs]
    assert not hasattr(presets, "CPU_LAW_SETTINGS")
    parser = build_parser()
    given = config_from_args(parser.parse_args(
        ["all", "--out", "x", "--preset", preset, "--law", "charge", "--prune-tail", "none", "--align", "node"]))
    assert given.sim.prune_tail is None and given.distill.align == "node"


def test_the_pruning_percentile_is_read_off_the_data_not_the_law():
    """Two laws with the same data get the same percentile: it depends on the accelerations only."""
    from nbody.config import SimConfig
    from nbody.dataset import derived_percentile
    rng = np.random.default_rng(0)
    light = rng.normal(size=(20, 10, 4, 2))
    heavy = light.copy()
    heavy.reshape(-1)[:40] = 1e5                                    # 40 of 1,600 components: close encounters
    for law in ("spring", "r2"):
        cfg = SimConfig(law=law, prune_tail=300.0)
        assert derived_percentile(cfg, light)[0] is None
        assert derived_percentile(cfg, heavy)[0] == pytest.approx(100 * (1 - 40 / 1600))
        assert derived_percentile(SimConfig(law=law, prune_tail=300.0, prune_percentile=99.0), heavy)[0] == 99.0
        assert derived_percentile(SimConfig(law=law), heavy) == (None, "no pruning")


def test_cpu_preset_applies_its_per_strategy_settings_to_that_strategy_only(tmp_path):
    parser = build_parser()

    def cfg(*flags):
        return config_from_args(parser.parse_args(["all", "--out", "x", "--preset", "cpu", "--law", "r1", *flags]))
    ham = cfg("--strategy", "hamiltonian").distill
    for field, value in get_strategy("hamiltonian").recipe.items():
        assert getattr(ham, field) == value, field
    for strategy in ("standard", "bottleneck", "l1", "kl"):       # what results/cpu was measured with
        other = cfg("--strategy", strategy).distill
        assert (other.selection, other.node_selection, other.operators) == ("best", "score", ("+", "-", "*", "/"))
    assert cfg("--strategy", "hamiltonian", "--selection", "score").distill.selection == "score"
    tiny = config_from_args(parser.parse_args(["all", "--out", "x", "--strategy", "hamiltonian"]))
    assert tiny.distill == presets.preset("tiny").distill


def test_run_py_distill_takes_the_preset_settings_of_the_checkpoints_model_and_law(tmp_path, monkeypatch):
    from gnn.checkpoint import save_model, trained_preset_keys
    from gnn.config import ModelConfig
    from gnn.hamiltonian import HamiltonianGNN
    from gnn.model import GNN
    model_cfg = ModelConfig(strategy="hamiltonian", dim=2, hidden=8, n_hidden_layers=1)
    save_model(tmp_path / "checkpoint.pt", HamiltonianGNN(model_cfg), {"model_config": vars(model_cfg)})
    assert trained_preset_keys(tmp_path) == trained_preset_keys(tmp_path / "checkpoint.pt") == {
        "strategy": "hamiltonian"}
    with pytest.raises(InputError, match="missing checkpoint"):
        trained_preset_keys(tmp_path / "none.pt")
    charge = tmp_path / "charge"
    bottleneck = ModelConfig(strategy="bottleneck", dim=2, hidden=8, n_hidden_layers=1)
    save_model(charge / "checkpoint.pt", GNN(bottleneck), {
        "model_config": vars(bottleneck), "dataset": {"path": None, "meta": {"config": {"law": "charge"}}}})
    assert trained_preset_keys(charge) == {"strategy": "bottleneck", "law": "charge"}
    custom = tmp_path / "custom"
    save_model(custom / "checkpoint.pt", GNN(bottleneck), {
        "model_config": vars(bottleneck), "dataset": {"path": None, "meta": {"config": {"law": "mine"}}}})

    class Reached(Exception):
        pass

    def stage_distill(out, checkpoint, data_dir, cfg):
        raise Reached(cfg)
    monkeypatch.setattr(stages, "stage_distill", stage_distill)

    def distill_config(preset, folder):
        with pytest.raises(Reached) as reached:
            cli.main(["distill", "--preset", preset, "--model", str(folder / "checkpoint.pt"),
                      "--out", str(tmp_path / "d")])
        return reached.value.args[0]
    assert distill_config("cpu", tmp_path).selection == get_strategy("hamiltonian").recipe["selection"]
    assert distill_config("tiny", tmp_path).selection == presets.preset("tiny").distill.selection
    assert distill_config("cpu", charge) == distill_config("cpu", custom)
    assert distill_config("cpu", custom).align == presets.preset("cpu").distill.align == "auto"


def test_a_cpu_sweep_gains_the_hamiltonian_column_beside_the_published_flathgn(tmp_path):
    out = tmp_path / "sweep"
    small = ["--n-sims", "12", "--nt", "40", "--integrator", "reference", "--epochs", "1", "--batch-size", "16",
             "--hidden", "8", "--n-hidden-layers", "1", "--generations", "2", "--population-size", "16",
             "--n-edges", "200", "--n-nodes", "200", "--n-eval-graphs", "10", "--n-ood-graphs", "10",
             "--max-time", "20", "--n-threads", "1", "--quiet"]
    assert cli.main(["sweep", "--preset", "cpu", "--laws", "r1", "--dims", "2", "--strategies",
                     "bottleneck,hamiltonian", "--seeds", "0", *small, "--out", str(out)]) == 0
    ham, other = (json.loads((out / f"r1-2d-{s}-s0" / "distill" / "distill_config.json").read_text())
                  for s in ("hamiltonian", "bottleneck"))
    assert "log" in ham["operators"] and ham["selection"] == "best_heldout" and other["selection"] == "best"
    header = (out / "r1-2d-hamiltonian-s0" / "distill" / "pareto_pair_energy.csv").read_text().splitlines()[0]
    assert header.endswith(",heldout_loss")

    def cells(table):
        lines = [line for line in (out / "analysis" / f"{table}.md").read_text().splitlines() if line.startswith("|")]
        titles = [c.strip() for c in lines[0].strip("|").split("|")]
        return {row.split("|")[1].strip(): dict(zip(titles, (c.strip() for c in row.strip("|").split("|"))))
                for row in lines[2:]}
    assert cells("test_mae")["r1-2"]["Hamiltonian (FlatHGN)"].endswith("(paper 0.050)")   # Table 3, r1-2 FlatHGN
    success = cells("success_rate")["r1-2"]
    assert re.fullmatch(r"[01]/1 \(potential [01]/1, kinetic [01]/1\)", success["Hamiltonian (FlatHGN)"])
    assert re.fullmatch(r"[01]/1 \(force [01]/1, Newton [01]/1\)( \(paper .\))?", success["Bottleneck"])
    assert re.fullmatch(r"-?\d\.\d{3} \(–\)", cells("r2")["r1-2"]["Hamiltonian (FlatHGN)"])
    with open(out / "analysis" / "summary.csv", newline="", encoding="utf-8") as fh:
        assert {row["strategy"] for row in csv.DictReader(fh)} == {"bottleneck", "hamiltonian"}


def test_sweep_jobs_cover_the_grid_and_share_datasets(tmp_path):
    jobs = sweep.sweep_jobs("tiny", {}, ["spring", "r1"], [2, 3], ["l1", "bottleneck"], [0, 1], tmp_path)
    assert len(jobs) == 16
    assert len({str(job[0]) for job in jobs}) == 16
    assert len({str(job[2]) for job in jobs}) == 8        # one dataset per law x dim x seed
    bottleneck_3d = [c for d, c, _ in jobs if c.model.strategy == "bottleneck" and c.sim.dim == 3]
    assert all(c.model.resolved_msg_dim == 3 for c in bottleneck_3d)


def test_cpu_sweep_jobs_carry_each_laws_preset_settings_and_the_flags(tmp_path):
    values = vars(build_parser().parse_args(["sweep", "--out", "x", "--preset", "cpu", "--epochs", "3"]))
    jobs = sweep.sweep_jobs("cpu", values, ["spring", "r2"], [2], ["l1"], [0, 1], tmp_path)
    by_law = {(c.sim.law, c.sim.seed): c for _, c, _ in jobs}
    assert by_law[("r2", 0)].sim.prune_tail == by_law[("spring", 0)].sim.prune_tail == 300.0
    assert all(c.train.epochs == 3 and c.sim.seed == c.train.seed == c.distill.seed for c in by_law.values())
    assert {c.train.seed for c in by_law.values()} == {0, 1}


def test_a_refused_run_is_recorded_and_the_local_sweep_goes_on(tmp_path, monkeypatch):
    """Seen in the cpu sweep: a KL model whose node model reads its messages through a
    singular map cannot be distilled. The run gets failed.json, the pool gets a line, not an
    exception, and a later success clears the record."""
    (job,) = sweep.sweep_jobs("tiny", {}, ["spring"], [2], ["kl"], [0], tmp_path)
    run_dir = job[0]
    monkeypatch.setattr(stages, "stage_simulate", lambda *args, **kw: None)

    def refuse(cfg, run_dir, *args, **kw):
        run_dir.mkdir(parents=True, exist_ok=True)
        raise InputError("the node model reads the aligned message components through a singular map")

    monkeypatch.setattr(stages, "run", refuse)
    assert sweep.local_sweep_job(job) == f"{run_dir} (refused: the node model reads the aligned message " \
                                        "components through a singular map)"
    assert "singular map" in json.loads((run_dir / "failed.json").read_text())["error"]
    with pytest.raises(InputError):
        sweep.sweep_job(job)                              # a cluster job fails visibly
    monkeypatch.setattr(stages, "run", lambda *args, **kw: None)
    assert sweep.local_sweep_job(job) == str(run_dir) and not (run_dir / "failed.json").exists()


def test_a_bug_in_one_run_is_recorded_with_its_traceback_and_the_local_sweep_goes_on(tmp_path, monkeypatch):
    """Seen in session 15: a KL run's distillation raised a sympy KeyError; the pool held the
    exception until every other run had finished and the sweep ended in a traceback, with no
    tables. Now the run gets failed.json with the traceback and the pool a line."""
    (job,) = sweep.sweep_jobs("tiny", {}, ["spring"], [2], ["kl"], [0], tmp_path)
    run_dir = job[0]
    monkeypatch.setattr(stages, "stage_simulate", lambda *args, **kw: None)

    def crash(cfg, run_dir, *args, **kw):
        run_dir.mkdir(parents=True, exist_ok=True)
        return {}["ComplexInfinity"]

    monkeypatch.setattr(stages, "run", crash)
    assert sweep.local_sweep_job(job) == f"{run_dir} (failed: KeyError: 'ComplexInfinity')"
    record = json.loads((run_dir / "failed.json").read_text())
    assert record["error"] == "KeyError: 'ComplexInfinity'" and "in crash" in record["traceback"]
    with pytest.raises(KeyError):
        sweep.sweep_job(job)                              # a cluster job fails visibly
