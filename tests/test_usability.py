"""The command line as a newcomer meets it (issue 32): --threads, --help, distillation
progress, the halos command's flag names and summary, the installed `symdistill` command."""
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from distill import operon, sr_engines
from distill.config import DistillConfig
from distill.fitting import fit_target
from halos.distill import table_markdown
from pipeline import cli, sweep
from pipeline.config import DEFAULT_THREADS
from pipeline.flags import config_from_args
from pipeline.halos import summary_lines
from pipeline.parser import build_parser
from plumbing.progress import progress_bar

SMALL_SIM = ["--n-sims", "12", "--nt", "20", "--integrator", "reference", "--quiet"]
SMALL_TRAIN = ["--epochs", "1", "--batch-size", "16", "--hidden", "8", "--n-hidden-layers", "1", "--quiet"]
# Rounds of 2 generations; the first round is always followed by a second (nothing to compare
# with yet), later ones only while the front improves.
TINY_SR = DistillConfig(population_size=40, generations=6, stall_generations=2, n_threads=1, max_time=60, seed=0)


@pytest.fixture
def torch_threads():
    """Give torch's thread count back after a test that sets it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "spring"
    assert cli.main(["simulate", "--law", "spring", *SMALL_SIM, "--out", str(out)]) == 0
    return out


def _spring_rows(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 3, size=n)])
    return X, 0.7 * X[:, 0] * (X[:, 2] - 1) / X[:, 2]


# --------------------------------------------------------------------------- #
# --threads                                                                   #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("flag, threads", [([], DEFAULT_THREADS), (["--threads", "2"], 2)])
def test_training_runs_on_the_threads_given_and_records_them(dataset, tmp_path, torch_threads, flag, threads):
    torch.set_num_threads(3)                      # whatever the process had before
    out = tmp_path / "train"
    assert cli.main(["train", "--data", str(dataset), *SMALL_TRAIN, *flag, "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads
    assert json.loads((out / "metrics.json").read_text())["threads"] == threads


def test_threads_given_is_also_the_sr_searchs_unless_n_threads_is():
    def cfg(*flags):
        return config_from_args(build_parser().parse_args(["all", "--out", "x", *flags]))

    assert cfg().distill.n_threads == DistillConfig().n_threads        # not given: the SR default
    assert cfg("--threads", "3").distill.n_threads == 3
    assert cfg("--threads", "3", "--n-threads", "2").distill.n_threads == 2


def test_a_bad_thread_count_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", "--data", "d", "--out", "o", "--threads", "0"])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("given, threads", [(None, DEFAULT_THREADS), (2, 2)])
def test_a_sweep_job_runs_on_the_sweeps_threads(torch_threads, given, threads):
    assert sweep.with_threads(lambda job: torch.get_num_threads(), given, None) == threads


# --------------------------------------------------------------------------- #
# --help                                                                      #
# --------------------------------------------------------------------------- #

def _help(capsys, *args) -> list[str]:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*args, "--help"])
    return capsys.readouterr().out.splitlines()


def test_all_help_starts_with_what_a_newcomer_types(capsys):
    top = "\n".join(_help(capsys, "all")[:30])
    for flag in ("--law", "--dim", "--strategy", "--preset", "--out", "--seed", "--threads"):
        assert flag in top, flag
    assert "--n-sims" not in top and "--batch-size" not in top      # the stages' flags come later


@pytest.mark.parametrize("command", ["train", "distill", "halos", "sweep"])
def test_every_command_that_trains_or_distills_has_threads(capsys, command):
    assert "--threads" in "\n".join(_help(capsys, command)[:30])


# --------------------------------------------------------------------------- #
# Distillation progress                                                       #
# --------------------------------------------------------------------------- #

def test_operon_reports_each_round_of_generations():
    seen = []
    _, done = operon.search(*_spring_rows(), TINY_SR, on_round=seen.append)
    assert seen[:2] == [2, 4] and seen == list(range(2, done + 1, 2))


def test_a_fit_in_a_log_says_which_fit_runs_and_how_far_it_got(capsys):
    with sr_engines.progress(label="edge 1/2"):
        front = sr_engines.fit(*_spring_rows(), ["dx", "dy", "r"], TINY_SR)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("distill edge 1/2: 0% 0/6 [") and lines[0].endswith("stops by 60 s")
    assert re.match(r"distill edge 1/2: \d+% [46]/6 \[", lines[-1]), lines[-1]
    assert lines[-1].endswith(f"{len(front)} equations on the front")
    assert "\r" not in "\n".join(lines)


def test_fit_target_labels_its_fit_and_quiet_turns_it_off(capsys):
    X, y = _spring_rows()
    fit_target(X, y, ["dx", "dy", "r"], TINY_SR, label="node x 1/2")
    assert re.search(r"^distill node x 1/2: \d+% [46]/6 ", capsys.readouterr().err, re.M)
    with sr_engines.progress(enabled=False):
        fit_target(X, y, ["dx", "dy", "r"], TINY_SR, label="node x 1/2")
    assert capsys.readouterr().err == ""


def test_a_log_line_has_an_eta_until_the_end():
    out = io.StringIO()
    bar = progress_bar(10, "x", unit="gen", stream=out, interval=0)
    bar.update(5)
    bar.update(5)
    early = progress_bar(10, "y", unit="gen", stream=out, interval=0)
    early.update(5)
    early.close()                                   # stopped early: done, nothing left to wait for
    first, last, early_running, early_closed = out.getvalue().splitlines()
    assert ", ETA " in first and "ETA" not in last
    assert ", ETA " in early_running and "ETA" not in early_closed


# --------------------------------------------------------------------------- #
# run.py halos                                                                #
# --------------------------------------------------------------------------- #

def test_halos_spells_the_sr_budget_as_the_other_commands(capsys):
    parse = build_parser().parse_args
    assert vars(parse(["halos", "--generations", "7", "--max-time", "5"]))["sr_generations"] == 7
    assert vars(parse(["halos", "--sr-generations", "7"]))["sr_generations"] == 7   # the old spelling
    text = "\n".join(_help(capsys, "halos"))
    assert "--generations" in text and "--sr-" not in text


RESULT = {"synthetic": True, "n_halos": 500, "sets": {"train": 400, "test": 50, "ood": 50}, "refit_halos": 300,
          "top_component": 3, "top_share": 0.91, "paper_ood": {"network": (0.06, 0.14), "distilled": (0.08, 0.09)},
          "edge": {"equation": "M2/(r + 1.5)", "complexity": 5}, "node": {"equation": "0.5*e + 0.1", "complexity": 5},
          "table": [{"formula": "network", "label": "the graph network", "paper_mae": None,
                     "mae": {"train": 0.05, "test": 0.06, "ood": 0.2}},
                    {"formula": "distilled", "label": "δ̂ = 0.5*e + 0.1", "paper_mae": None,
                     "mae": {"train": 0.055, "test": 0.061, "ood": 0.15}}],
          "planted": {"fresh_catalogue_seed": 1, "e_r2_distilled": 0.998, "e_r2_refit": 0.999,
                      "edge_r2_distilled": 0.99},
          "success": {"form_recovered": True, "beats_network_ood": True}}


def test_halos_prints_a_summary_not_a_python_dict():
    lines = summary_lines(RESULT, Path("runs/halos/distill/table.md"))
    text = "\n".join(lines) + table_markdown(RESULT)
    assert "{" not in text and "'" not in text
    assert "planted form FOUND" in lines[3] and "beats the network out of distribution" in lines[3]
    assert lines[1].startswith("  edge e = M2/(r + 1.5)") and "test 0.06 vs 0.061" in lines[4]


# --------------------------------------------------------------------------- #
# The installed command                                                        #
# --------------------------------------------------------------------------- #

def test_the_symdistill_command_is_run_py():
    script = Path(sys.executable).parent / "symdistill"
    if not script.exists():
        script = shutil.which("symdistill")
    if script is None:
        pytest.skip("the package is not installed here (make test installs it)")
    proc = subprocess.run([str(script), "all", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: symdistill all --out RUN")
    bad = subprocess.run([str(script), "all"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: symdistill all: ")
