"""`run.py sweep --executor submitit`: resources per job, submission that returns at once,
--status, re-submission of what failed, and analysis of what finished.

The end-to-end test runs the code path a Slurm user runs, through submitit's local
executor (`--cluster local`: every job a process on this machine): a 2-run tiny sweep that
shares one dataset, one of whose jobs fails because a file stands where its train/ folder
goes; --status reports it with its log, and the same command, once the file is gone,
submits that run alone again. The Slurm side (what sbatch is asked for, sacct's states) is
tested with stand-in `sbatch`, `srun` and `sacct` scripts: no job runs there.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from _cli_helpers import run_main
from pipeline import cluster, stages
from pipeline.config import Resources
from pipeline.parser import build_parser
from pipeline.presets import PRESET_RESOURCES, PRESETS

needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="submitit is not installed (pip install -e '.[test]')")

# One epoch of a width-8 model on 12 short reference-integrator simulations, a 2-generation SR.
SMALL = ["--n-sims", "12", "--nt", "20", "--integrator", "reference", "--epochs", "1", "--batch-size", "16",
         "--hidden", "8", "--n-hidden-layers", "1", "--generations", "2", "--population-size", "16",
         "--n-edges", "200", "--n-nodes", "200", "--n-eval-graphs", "10", "--n-ood-graphs", "10",
         "--max-time", "20", "--quiet"]


def _refused(args, capsys, contains: str) -> None:
    code, _, err = run_main(args, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert contains in err, err


def _wait_until_settled(out: Path, timeout_s: float = 300) -> dict[str, cluster.RunState]:
    """The run states once no job of the sweep in `out` is running or pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = {s.name: s for s in cluster.run_states(out)}
        if not any(s.state in ("running", "pending") for s in states.values()):
            return states
        assert time.monotonic() < deadline, f"jobs still running after {timeout_s} s: {states}"
        time.sleep(1)


def _summary(out: Path) -> dict[str, dict]:
    """OUT/analysis/summary.csv as {run name: row}."""
    with open(out / "analysis" / "summary.csv", newline="") as fh:
        return {row["run"]: row for row in csv.DictReader(fh)}


def test_every_preset_has_resources_and_flags_override_them():
    assert set(PRESET_RESOURCES) == set(PRESETS)
    assert cluster.resources("paper", {}).gpus_per_job == 1
    assert cluster.resources("tiny", {}).gpus_per_job == cluster.resources("cpu", {}).gpus_per_job == 0
    args = vars(build_parser().parse_args(
        ["sweep", "--out", "x", "--preset", "paper", "--partition", "gpu", "--gpus-per-job", "2", "--mem-gb", "40",
         "--timeout-min", "90", "--account", "proj", "--qos", "high", "--cpus-per-task", "4", "--workers", "6",
         "--slurm", "constraint=a100", "--slurm", "exclude=node1,node2"]))
    assert cluster.resources("paper", args) == Resources(
        partition="gpu", gpus_per_job=2, cpus_per_task=4, mem_gb=40.0, timeout_min=90, account="proj", qos="high",
        slurm=(("constraint", "a100"), ("exclude", "node1,node2")), array_parallelism=6)


@pytest.mark.parametrize("flags, contains", [
    (["--gpus-per-job", "-1"], "gpus_per_job"),
    (["--cpus-per-task", "0"], "cpus_per_task"),
    (["--mem-gb", "nan"], "finite"),
    (["--partition", "my gpus"], "partition"),
    (["--slurm", "constraint"], "NAME=VALUE"),
    (["--slurm", "time=10"], "set by the sweep"),
    (["--slurm", "Bad Name=1"], "sbatch option"),
])
def test_bad_resources_are_one_line_and_nothing_is_written(tmp_path, capsys, flags, contains):
    _refused(["sweep", "--executor", "submitit", "--cluster", "local", *flags, "--out", tmp_path / "s"], capsys,
             contains)
    assert not (tmp_path / "s").exists()


def test_cluster_flags_need_the_submitit_executor_and_status_a_submitted_sweep(tmp_path, capsys):
    _refused(["sweep", "--partition", "gpu", "--out", tmp_path / "s"], capsys, "--executor submitit")
    _refused(["sweep", "--status", "--out", tmp_path / "s"], capsys, "no submitted sweep")
    assert not (tmp_path / "s").exists()


@needs_submitit
@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm")
def test_the_slurm_cluster_needs_slurm(tmp_path, capsys):
    _refused(["sweep", "--executor", "submitit", "--out", tmp_path / "s"], capsys, "--cluster local")
    assert not (tmp_path / "s").exists()


@needs_submitit
def test_a_tiny_sweep_through_submitits_local_executor(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    command = ["sweep", "--executor", "submitit", "--cluster", "local", "--preset", "tiny", "--laws", "spring",
               "--dims", "2", "--strategies", "bottleneck,l1", "--seeds", "0", "--cpus-per-task", "1", *SMALL,
               "--out", out]
    good, bad = "spring-2d-bottleneck-s0", "spring-2d-l1-s0"
    (out / bad).mkdir(parents=True)
    (out / bad / "train").write_text("a file where the run's train/ folder goes")

    def never(*args, **kwargs):
        raise AssertionError("the submitting process simulated a dataset")
    monkeypatch.setattr(stages, "stage_simulate", never)             # the jobs' own processes still can
    code, stdout, err = run_main(command, capsys)
    assert code == 0, err
    record = json.loads((out / "submitit" / "sweep.json").read_text())
    first = record["submissions"][0]
    assert sorted(first["jobs"]) == sorted([good, bad]) and first["cluster"] == "local"
    assert first["resources"]["cpus_per_task"] == 1 and first["resources"]["gpus_per_job"] == 0
    states = {s.name: s for s in cluster.run_states(out)}
    assert states[good].state == "running", states          # submission did not wait for the jobs

    code, stdout, _ = run_main(command, capsys)                  # the same command while they run
    assert code == 0 and "0 submitted" in stdout, stdout
    assert len(json.loads((out / "submitit" / "sweep.json").read_text())["submissions"]) == 1

    states = _wait_until_settled(out)
    assert states[good].state == "done" and states[bad].state == "failed", states
    logs = [p.read_text() for p in (out / "submitit").glob("*_0_log.out")]
    assert sum("12 simulations x 20 steps" in log for log in logs) == 1, logs     # one job simulated
    assert "train" in states[bad].detail
    code, stdout, _ = run_main(["sweep", "--status", "--out", out], capsys)
    assert code == 0
    bad_line = next(line for line in stdout.splitlines() if line.startswith(bad))
    assert "failed" in bad_line and f"log: {states[bad].log}" in bad_line
    assert "Error" in states[bad].log.read_text()
    assert "1 done, 1 failed" in stdout

    assert run_main(["analyse", "--run", out], capsys)[0] == 0          # what has finished so far
    summary = _summary(out)
    assert summary[good]["test_mae_network"] and not summary[bad]["test_mae_network"], summary

    (out / bad / "train").unlink()
    code, stdout, err = run_main(command, capsys)
    assert code == 0, err
    assert "1 submitted" in stdout and "1 done" in stdout, stdout
    record = json.loads((out / "submitit" / "sweep.json").read_text())
    assert [sorted(s["jobs"]) for s in record["submissions"]] == [sorted([good, bad]), [bad]]
    states = _wait_until_settled(out)
    assert {s.state for s in states.values()} == {"done"}, states
    assert states[bad].job_id == record["submissions"][1]["jobs"][bad]
    assert run_main(["analyse", "--run", out], capsys)[0] == 0
    assert all(row["test_mae_network"] for row in _summary(out).values())


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """Stand-ins for sbatch (keeps each script as sbatch_K.sh, answers job 4242 + K, or fails
    when the folder holds refuse.txt), srun, and sacct (prints the folder's sacct.txt)."""
    folder = tmp_path / "slurm-bin"
    folder.mkdir()
    scripts = {
        "sbatch": '#!/bin/sh\nd="$(dirname "$0")"\n'
                  'if [ -f "$d/refuse.txt" ]; then cat "$d/refuse.txt" >&2; exit 1; fi\n'
                  'k=$(ls "$d" | grep -c "^sbatch_")\ncp "$1" "$d/sbatch_$k.sh"\n'
                  'echo "Submitted batch job $((4242 + k))"\n',
        "srun": "#!/bin/sh\nexit 0\n",
        "sacct": '#!/bin/sh\ncat "$(dirname "$0")/sacct.txt" 2>/dev/null\n',
    }
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@needs_submitit
def test_slurm_gets_the_resources_and_states_come_from_sacct(tmp_path, capsys, fake_slurm):
    out = tmp_path / "paper"
    command = ["sweep", "--executor", "submitit", "--preset", "paper", "--laws", "spring", "--dims", "2",
               "--strategies", "bottleneck,l1", "--seeds", "0", "--partition", "gpu", "--account", "proj",
               "--qos", "high", "--slurm", "constraint=a100", "--workers", "2", "--out", out]
    good, bad = "spring-2d-bottleneck-s0", "spring-2d-l1-s0"
    code, stdout, err = run_main(command, capsys)
    assert code == 0, err
    script = (fake_slurm / "sbatch_0.sh").read_text()
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=16GB", "--time=720",
                 "--account=proj", "--qos=high", "--constraint=a100", "--array=0-1%2"):
        assert f"#SBATCH {line}\n" in script, line
    assert not (out / "data").exists()                                   # nothing simulated here
    jobs = json.loads((out / "submitit" / "sweep.json").read_text())["submissions"][0]["jobs"]
    assert jobs == {good: "4242_0", bad: "4242_1"}

    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_0|RUNNING|n1\n4242_1|TIMEOUT|n2\n")
    code, stdout, _ = run_main(["sweep", "--status", "--out", out], capsys)
    assert code == 0 and "1 running, 1 failed" in stdout, stdout
    assert f"log: {out / 'submitit' / '4242_1_0_log.err'}" in stdout and "(TIMEOUT)" in stdout

    code, stdout, err = run_main(command, capsys)                           # the same command again
    assert code == 0 and "1 submitted" in stdout and "1 running" in stdout, stdout
    assert "--array" not in (fake_slurm / "sbatch_1.sh").read_text()   # the failed run alone
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_0|COMPLETING|n1\n4243|PENDING|\n")
    states = {s.name: (s.state, s.job_id) for s in cluster.run_states(out)}
    assert states == {good: ("running", "4242_0"), bad: ("pending", "4243")}

    _refused([*command[:-2], "--epochs", "3", "--out", out], capsys, "different config")
    (fake_slurm / "refuse.txt").write_text("sbatch: error: invalid partition specified: nope\n")
    _refused([*command, "--seeds", "1"], capsys, "invalid partition specified: nope")
    assert len(json.loads((out / "submitit" / "sweep.json").read_text())["submissions"]) == 2
    _refused([*command, "--out", tmp_path / "other"], capsys, "invalid partition specified: nope")
    assert not (tmp_path / "other").exists()
