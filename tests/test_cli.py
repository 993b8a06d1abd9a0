"""run.py refuses what it cannot honour: untrusted input never runs code, bad input gets
exit 2 and one line on stderr, nothing is written or left behind, and re-runs never mix
configs or datasets.

Most cases call `pipeline.cli.main` in-process (one torch import for the module); a few go through
a subprocess where the process boundary is the point (stderr bytes, progress output).
The shared fixtures are a tiny spring and a tiny r2 dataset from the NumPy reference
integrator and a one-epoch model on the spring data.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gnn.config import model_for_data
from pipeline import cli
from pipeline.config import STAGE_CLASSES, settable_fields
from pipeline.flags import config_from_args
from pipeline.parser import build_parser
from pipeline.presets import preset
from pipeline.runfolder import prepare_run_dir
from plumbing.errors import InputError
from plumbing.io import save_json

ROOT = Path(__file__).resolve().parents[1]
SMALL_SIM = ["--n-sims", "12", "--nt", "20", "--integrator", "reference", "--quiet"]
SMALL_TRAIN = ["--epochs", "1", "--batch-size", "16", "--hidden", "8", "--n-hidden-layers", "1", "--quiet"]
SMALL_DISTILL = ["--generations", "2", "--population-size", "16", "--n-edges", "200", "--n-nodes", "200",
                 "--n-eval-graphs", "10", "--n-ood-graphs", "10", "--max-time", "20", "--quiet"]
PAYLOAD = "__import__('os').system('touch {marker}')"


def _main(args, capsys) -> tuple[int, str]:
    """cli.main on `args` (argparse's own exits included) -> (exit code, stderr)."""
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _refused(args, capsys, *, contains: str = "") -> str:
    code, err = _main(args, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert contains.lower() in err.lower(), err
    return err


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    out = {}
    for law in ("spring", "r2"):
        out[law] = root / law
        assert cli.main(["simulate", "--law", law, *SMALL_SIM, "--out", str(out[law])]) == 0
    return out


@pytest.fixture(scope="module")
def trained(datasets, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "spring"
    assert cli.main(["train", "--data", str(datasets["spring"]), "--strategy", "bottleneck",
                     *SMALL_TRAIN, "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- #
# Untrusted law expressions                                                    #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("flag", ["--potential", "--force"])
@pytest.mark.parametrize("command", ["simulate", "all"])
def test_a_law_flag_never_runs_code(tmp_path, capsys, flag, command):
    marker = tmp_path / "pwned"
    _refused([command, "--law", "evil", flag, PAYLOAD.format(marker=marker), "--out", tmp_path / "d"], capsys)
    assert not marker.exists()
    assert _tree(tmp_path) == []


def test_a_law_in_meta_json_is_data_and_never_runs(datasets, trained, tmp_path, capsys):
    import shutil
    marker = tmp_path / "pwned"
    data = tmp_path / "evil-data"
    shutil.copytree(datasets["spring"], data)
    meta = json.loads((data / "meta.json").read_text())
    meta["law"].update(name="evil", potential=PAYLOAD.format(marker=marker))
    meta["config"]["law"] = "evil"
    (data / "meta.json").write_text(json.dumps(meta))
    _refused(["train", "--data", data, *SMALL_TRAIN, "--out", tmp_path / "t"], capsys)
    _refused(["distill", "--model", trained / "checkpoint.pt", "--data", data, "--out", tmp_path / "d"], capsys)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil-data"]


@pytest.mark.parametrize("expression", ["r + 9**9**9**9", "1/0", "lambda: 1", "r.__class__", "'r'",
                                        "exp(r, evaluate=False)", "getattr(r, 'x')", "[r for r in (1,)]"])
def test_bad_law_expressions_are_refused_quickly(tmp_path, capsys, expression):
    start = time.perf_counter()
    _refused(["simulate", "--law", "custom", "--potential", expression, "--out", tmp_path / "d"], capsys)
    assert time.perf_counter() - start < 5
    assert _tree(tmp_path) == []


def test_a_built_in_law_cannot_be_redefined(tmp_path, capsys):
    _refused(["simulate", "--law", "spring", "--potential", "(r - 2)**2", "--out", tmp_path / "d"], capsys,
             contains="spring")
    assert _tree(tmp_path) == []


def test_a_custom_law_needs_a_name(tmp_path, capsys):
    _refused(["simulate", "--potential", "(r - 2)**2", "--out", tmp_path / "d"], capsys, contains="--law")


# --------------------------------------------------------------------------- #
# Every field has its own flag                                                 #
# --------------------------------------------------------------------------- #

# A valid non-default value for every settable config field; a new field must be added here.
FIELD_VALUES = {
    "law": "r2", "n": 5, "dim": 3, "n_sims": 7, "n_test_sims": 3, "nt": 30, "dt": 0.002, "keep_every": 2,
    "softening": 0.02, "seed": 3, "split": "time", "val_fraction": 0.2, "test_fraction": 0.3,
    "prune_percentile": 99.0, "prune_tail": 50.0, "official_quirks": True, "integrator": "reference", "rtol": 1e-7, "atol": 1e-8,
    "max_substeps": 500, "max_failed_fraction": 0.5,
    "strategy": "kl", "hidden": 17, "n_hidden_layers": 1, "msg_dim": 5, "logvar_clamp": 4.0, "third_law": False,
    "batch_size": 9, "epochs": 4, "steps_per_epoch": 11, "lr": 0.004, "weight_decay": 0.001,
    "final_div_factor": 10.0, "l1_weight": 0.5, "kl_weight": 0.25, "augment_sigma": 1.5, "device": "cpu",
    "energy_weight": 2e-6, "velocity_weight": 0.5, "relative_loss_floor": 0.5,
    "amp": False, "compile": True, "cpu_amp": True, "cpu_compile": True, "eval_batch_size": 33,
    "max_train_graphs": 99, "checkpoint_every": 13, "log_every": 7, "message_history_every": 250, "message_history_edges": 400,
    "sr_engine": "pysr", "n_edges": 123, "n_nodes": 321, "operators": ("+", "*"), "population_size": 44,
    "generations": 5, "max_length": 12, "max_time": 9.0, "stall_generations": 3, "stall_tol": 0.01,
    "search_rows": 77, "optimizer_iterations": 3, "n_threads": 1,
    "selection": "score_heldout", "node_selection": "best", "best_loss_factor": 2.0, "refit": False, "node_target": "true", "min_r": 0.25,
    "success_r2": 0.9, "max_complexity": 30, "max_rel_error": 0.1, "min_cosine": 0.5, "n_eval_graphs": 50,
    "n_ood_graphs": 40, "ood_spread": 3.0, "ood_extra_particles": 2, "precision": 4, "align": "node", "align_components": "all",
    "node_units": "messages", "simplify_tol": 0.1, "front_pass": False, "residual_gain": 3.0,
}


# The stages whose config fields each command exposes.
COMMAND_STAGES = {"simulate": ("sim",), "train": ("model", "train"), "distill": ("distill",),
                  "all": ("sim", "model", "train", "distill"), "sweep": ("sim", "model", "train", "distill")}


@pytest.mark.parametrize("command", list(COMMAND_STAGES))
def test_every_field_of_every_stage_has_its_own_working_flag(command):
    parser = build_parser()
    base = {"train": ["--data", "d"], "distill": ["--model", "m"]}.get(command, [])
    dests = {a.dest for a in parser._subparsers._group_actions[0].choices[command]._actions}
    default = preset("tiny")
    classes = STAGE_CLASSES
    for stage in COMMAND_STAGES[command]:
        for field in settable_fields(classes[stage]):
            dest = next((d for d in (f"{stage}:{field.name}", field.name) if d in dests), None)
            assert dest is not None, f"{command}: no flag for {stage}.{field.name}"
            value = FIELD_VALUES[field.name]
            flag = "--" + dest.replace(":", "-").replace("_", "-")
            given = ([flag if value else "--no-" + flag[2:]] if isinstance(value, bool)
                     else [flag, ",".join(value) if isinstance(value, tuple) else str(value)])
            cfg = config_from_args(parser.parse_args([command, "--out", "x", *base, *given]))
            assert getattr(getattr(cfg, stage), field.name) == value, (command, flag)
            if ":" in dest:          # a stage-prefixed flag sets its own stage only
                for other in set(classes) - {stage}:
                    if hasattr(getattr(default, other), field.name):
                        assert getattr(getattr(cfg, other), field.name) == getattr(getattr(default, other), field.name)


def test_the_shared_seed_flag_sets_every_stage_and_a_stage_flag_wins():
    args = build_parser().parse_args(["all", "--out", "x", "--seed", "4", "--train-seed", "9"])
    cfg = config_from_args(args)
    assert (cfg.sim.seed, cfg.train.seed, cfg.distill.seed) == (4, 9, 4)


def test_integrator_and_sr_engine_flags_reach_their_stage(tmp_path, capsys):
    assert _main(["simulate", "--law", "spring", *SMALL_SIM, "--integrator", "cpu", "--out", tmp_path / "d"],
                 capsys)[0] == 0
    _refused(["all", "--sr-engine", "pysr", "--integrator", "gpu", "--out", tmp_path / "r"], capsys,
             contains="integrator")
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- #
# Re-runs never mix configs, datasets or processes                             #
# --------------------------------------------------------------------------- #

def test_train_refuses_a_changed_config_or_another_dataset(datasets, trained, capsys):
    before = (trained / "checkpoint.pt").stat().st_mtime_ns
    assert _main(["train", "--data", datasets["spring"], "--strategy", "bottleneck", *SMALL_TRAIN,
                  "--out", trained], capsys)[0] == 0                           # same: skipped
    _refused(["train", "--data", datasets["spring"], "--strategy", "l1", *SMALL_TRAIN, "--out", trained],
             capsys, contains="different config")
    _refused(["train", "--data", datasets["r2"], "--strategy", "bottleneck", *SMALL_TRAIN, "--out", trained],
             capsys, contains="inputs.dataset")
    assert (trained / "checkpoint.pt").stat().st_mtime_ns == before


def test_a_training_run_from_before_a_new_config_field_is_still_the_same_run(datasets, trained, tmp_path, capsys):
    out = tmp_path / "train"
    shutil.copytree(trained, out)
    saved, before = out / "train_config.json", (out / "checkpoint.pt").stat().st_mtime_ns
    held = json.loads(saved.read_text())
    saved.write_text(json.dumps({k: v for k, v in held.items() if not k.startswith("message_history")}))
    code, err = _main(["train", "--data", datasets["spring"], "--strategy", "bottleneck", *SMALL_TRAIN,
                       "--out", out], capsys)
    assert code == 0, err                # the missing fields take their defaults: the same run, skipped
    assert (out / "checkpoint.pt").stat().st_mtime_ns == before
    _refused(["train", "--data", datasets["spring"], "--strategy", "bottleneck", *SMALL_TRAIN,
              "--message-history-every", "7", "--out", out], capsys, contains="message_history_every")


def test_an_interrupted_training_run_does_not_resume_on_another_dataset(datasets, tmp_path, capsys):
    from gnn.train import train
    out = tmp_path / "t"
    args = ["train", "--strategy", "bottleneck", *SMALL_TRAIN[:-1], "--epochs", "3", "--out", str(out)]
    parsed = config_from_args(build_parser().parse_args([*args, "--data", str(datasets["spring"])]))
    model = model_for_data(parsed.model, parsed.sim)
    assert _main([*args, "--data", datasets["spring"], "--quiet"], capsys)[0] == 0
    (out / "metrics.json").unlink()                      # as if killed before the end
    _refused([*args, "--data", datasets["r2"], "--quiet"], capsys, contains="another dataset")
    with pytest.raises(InputError, match="another dataset"):
        train(datasets["r2"], model, parsed.train, out, progress=False)


def test_distill_refuses_a_changed_config_and_data_of_another_law(datasets, trained, tmp_path, capsys):
    out = tmp_path / "d"
    code, err = _main(["distill", "--model", trained / "checkpoint.pt", *SMALL_DISTILL, "--out", out], capsys)
    assert code == 0, err
    assert json.loads((out / "distill.json").read_text())["inputs"]["dataset"]["law"] == "spring"
    _refused(["distill", "--model", trained / "checkpoint.pt", *SMALL_DISTILL, "--generations", "3",
              "--out", out], capsys, contains="different config")
    _refused(["distill", "--model", trained / "checkpoint.pt", "--data", datasets["r2"], *SMALL_DISTILL,
              "--out", tmp_path / "d2"], capsys, contains="law 'spring'")
    assert not (tmp_path / "d2").exists()
    saved, before = out / "distill_config.json", (out / "distill.json").stat().st_mtime_ns
    saved.write_text(json.dumps({k: v for k, v in json.loads(saved.read_text()).items() if k != "simplify_tol"}))
    code, err = _main(["distill", "--model", trained / "checkpoint.pt", *SMALL_DISTILL, "--out", out], capsys)
    assert code == 0, err          # written before `simplify_tol` existed: its default, the same run, skipped
    assert (out / "distill.json").stat().st_mtime_ns == before
    _refused(["distill", "--model", trained / "checkpoint.pt", *SMALL_DISTILL, "--simplify-tol", "0.5",
              "--out", out], capsys, contains="simplify_tol")


def test_a_run_directory_from_before_a_new_config_field_still_matches(tmp_path):
    cfg = preset("tiny")
    prepare_run_dir(tmp_path, cfg)
    held = json.loads((tmp_path / "config.json").read_text())
    del held["distill"]["simplify_tol"]
    (tmp_path / "config.json").write_text(json.dumps(held))
    prepare_run_dir(tmp_path, cfg)                   # the missing field takes its default
    other = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, simplify_tol=0.5))
    with pytest.raises(InputError, match="distill.simplify_tol"):
        prepare_run_dir(tmp_path, other)


def test_a_locked_run_directory_is_refused_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = time.perf_counter()
        _refused(["all", "--out", out, "--quiet"], capsys, contains="in use")
        assert time.perf_counter() - start < 5
    finally:
        os.close(fd)
    assert _tree(out) == []


# --------------------------------------------------------------------------- #
# Non-finite values                                                            #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("flag", ["--lr", "--augment-sigma", "--l1-weight", "--rtol", "--law-dt", "--min-r"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_float_flags_are_refused(tmp_path, capsys, flag, value):
    _refused(["all", f"{flag}={value}", "--out", tmp_path / "r"], capsys, contains="finite")
    assert _tree(tmp_path) == []


def test_configs_built_in_python_refuse_non_finite_values():
    from distill.config import DistillConfig
    from gnn.config import ModelConfig, TrainConfig
    from nbody.config import SimConfig
    for cls, field in ((TrainConfig, "lr"), (TrainConfig, "l1_weight"), (ModelConfig, "logvar_clamp"),
                       (DistillConfig, "max_time"), (SimConfig, "rtol")):
        with pytest.raises(InputError, match="finite"):
            cls(**{field: float("inf")})


def test_data_with_nan_is_refused_at_load(datasets, tmp_path, capsys):
    import shutil
    data = tmp_path / "nan-data"
    shutil.copytree(datasets["spring"], data)
    states = np.load(data / "train_states.npy")
    states[0, 0, 0, 0] = np.nan
    np.save(data / "train_states.npy", states)
    _refused(["train", "--data", data, *SMALL_TRAIN, "--out", tmp_path / "t"], capsys, contains="train_states")
    assert not (tmp_path / "t").exists()


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_resume_point(datasets, tmp_path, capsys,
                                                                                monkeypatch):
    import importlib
    trainer = importlib.import_module("gnn.train")       # `gnn.train` the attribute is the function
    real = trainer.batch_loss
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 5 else loss

    monkeypatch.setattr(trainer, "batch_loss", poisoned)
    out = tmp_path / "t"
    err = _refused(["train", "--data", datasets["spring"], *SMALL_TRAIN, "--epochs", "2", "--batch-size", "4",
                    "--checkpoint-every", "2", "--log-every", "1", "--out", out], capsys, contains="step 5")
    assert "last good resume point" in err
    from gnn.checkpoint import RESUME_KIND, load_torch
    state = load_torch(out / "last.pt", RESUME_KIND)
    assert state["step"] == 4
    assert all(bool(v.isfinite().all()) for v in state["model"].values())
    assert not (out / "metrics.json").exists()


def test_a_checkpoint_with_nan_weights_is_refused_and_leaves_no_output(trained, tmp_path, capsys):
    import torch
    from gnn.checkpoint import MODEL_KIND, load_torch, save_torch
    obj = load_torch(trained / "checkpoint.pt", MODEL_KIND)
    first = next(iter(obj["model"]))
    obj["model"][first] = obj["model"][first] * float("nan")
    save_torch(tmp_path / "nan.pt", MODEL_KIND, {k: v for k, v in obj.items() if k not in ("kind", "version")})
    _refused(["distill", "--model", tmp_path / "nan.pt", "--out", tmp_path / "d"], capsys, contains="non-finite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.pt"]
    assert torch.isnan(obj["model"][first]).all()


def test_json_outputs_are_strict(trained, tmp_path):
    def strict(text: str):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON output"))
    strict((trained / "metrics.json").read_text())
    save_json(tmp_path / "odd.json", {"nan": float("nan"), "inf": np.float32("inf"), "list": [np.nan, 1.5]})
    assert strict((tmp_path / "odd.json").read_text()) == {"nan": None, "inf": None, "list": [None, 1.5]}


# --------------------------------------------------------------------------- #
# Output locations, sizes, leftovers                                           #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("command", ["simulate", "all", "sweep"])
def test_empty_or_file_out_is_refused(tmp_path, capsys, command):
    _refused([command, "--out", ""], capsys, contains="must not be empty")
    (tmp_path / "file").write_text("keep me")
    _refused([command, "--out", tmp_path / "file"], capsys)
    assert (tmp_path / "file").read_text() == "keep me"


def test_an_unwritable_out_is_one_line(capsys):
    _refused(["all", "--out", "/proc/symdistill-run", "--quiet"], capsys)


@pytest.mark.parametrize("args", [["--n", "100000"], ["--n-sims", "1000000000"],
                                  ["--nt", "1000000000", "--keep-every", "1"]])
def test_absurd_sizes_are_refused_up_front(tmp_path, capsys, args):
    start = time.perf_counter()
    _refused(["simulate", *args, "--out", tmp_path / "d"], capsys, contains="GiB")
    assert time.perf_counter() - start < 10
    assert _tree(tmp_path) == []


def test_a_law_whose_simulations_mostly_fail_is_refused(tmp_path, capsys):
    _refused(["simulate", "--law", "sqrtlaw", "--force", "sqrt(r - 1)", "--n-sims", "40", "--nt", "50",
              "--max-substeps", "200", "--integrator", "reference", "--quiet", "--out", tmp_path / "d"],
             capsys, contains="failed")
    assert _tree(tmp_path) == []


def test_malformed_meta_json_fields_are_one_line(datasets, tmp_path, capsys):
    import shutil
    for key, value in (("n", "four"), ("splits", []), ("law", "spring"), ("dim", None)):
        data = tmp_path / f"bad-{key}"
        shutil.copytree(datasets["spring"], data)
        meta = json.loads((data / "meta.json").read_text())
        meta[key] = value
        (data / "meta.json").write_text(json.dumps(meta))
        _refused(["train", "--data", data, *SMALL_TRAIN, "--out", tmp_path / f"t-{key}"], capsys)
        assert not (tmp_path / f"t-{key}").exists()


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".d.{dead}.abcd.tmp"
    stale.mkdir()
    (stale / "train_states.npy").write_bytes(b"half")
    assert _main(["simulate", *SMALL_SIM, "--out", tmp_path / "d"], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_distill_that_fails_midway_leaves_nothing(trained, tmp_path, capsys):
    _refused(["distill", "--model", trained / "checkpoint.pt", *SMALL_DISTILL, "--min-r", "100",
              "--out", tmp_path / "d"], capsys, contains="min_r")
    assert _tree(tmp_path) == []


def test_outputs_honour_the_umask(datasets, trained):
    umask = os.umask(0)
    os.umask(umask)
    for path in (datasets["spring"], datasets["spring"] / "meta.json", trained / "checkpoint.pt",
                 trained / "metrics.json"):
        wanted = (0o777 if path.is_dir() else 0o666) & ~umask
        assert path.stat().st_mode & 0o777 == wanted, path


def test_progress_written_to_a_pipe_is_plain_lines(datasets, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "train", "--data", str(datasets["spring"]),
                           *SMALL_TRAIN[:-1], "--out", str(tmp_path / "t")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
    assert 1 <= proc.stderr.count("\n") < 20, proc.stderr
