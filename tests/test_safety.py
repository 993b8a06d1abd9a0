"""Issue 31: no command deletes or overwrites what it did not write, one writer per run,
a dataset's identity is its content, and hostile input is one line, never a traceback.

Every subcommand is walked with an output folder it did not make (a user folder, `.`,
`..`, `~` with HOME set to a temporary folder, a symlink to a user folder) and with a few
other hostile inputs; each must exit 2 with exactly one `error:` line and leave every
file, the inputs' included, byte for byte as it was. Most cases call `pipeline.cli.main`
in-process (a traceback would surface as an exception); the memory limit is tried in a
child process, where `ulimit -v` belongs. The shared fixtures are two tiny spring datasets
(seeds 0 and 1) and a one-epoch model.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _cli_helpers import run_main
from pipeline import cli, stages, sweep
from plumbing.errors import InputError
from plumbing.io import MARKER, replace_dir, temp_dir_beside

ROOT = Path(__file__).resolve().parents[1]
SMALL_SIM = ["--n-sims", "12", "--nt", "20", "--integrator", "reference", "--quiet"]
SMALL_TRAIN = ["--epochs", "1", "--batch-size", "16", "--hidden", "8", "--n-hidden-layers", "1", "--quiet"]
COMMANDS = ("simulate", "train", "distill", "all", "analyse", "sweep", "halos")
TARGETS = ("user folder", ".", "..", "~", "symlink")


def _refused(args, capsys, contains: str = "") -> str:
    code, _, err = run_main(args, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert contains.lower() in err.lower(), err
    return err


def _snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every path under `roots` with its bytes (None for a folder, the target for a link)."""
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            if path.is_symlink():
                found[str(path)] = os.readlink(path).encode()
            elif path.is_dir():
                found[str(path)] = None
            else:
                found[str(path)] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    out = {"data": root / "data", "data1": root / "data1", "train": root / "train"}
    for name, seed in (("data", "0"), ("data1", "1")):
        assert cli.main(["simulate", *SMALL_SIM, "--seed", seed, "--out", str(out[name])]) == 0
    assert cli.main(["train", "--data", str(out["data"]), "--strategy", "bottleneck", *SMALL_TRAIN,
                     "--out", str(out["train"])]) == 0
    (root / "fake-run").mkdir()             # never read: an analysis into it is refused first
    out["root"] = root
    return out


def _command(command: str, out, inputs: dict[str, Path]) -> list:
    """`command` writing to `out`, with valid inputs otherwise."""
    return {"simulate": ["simulate", *SMALL_SIM],
            "train": ["train", "--data", inputs["data"], *SMALL_TRAIN],
            "distill": ["distill", "--model", inputs["train"] / "checkpoint.pt", "--quiet"],
            "all": ["all", *SMALL_SIM],
            "analyse": ["analyse", "--run", inputs["root"] / "fake-run"],
            "sweep": ["sweep", "--laws", "spring", "--dims", "2", "--strategies", "l1", *SMALL_SIM],
            "halos": ["halos", "--quiet"]}[command] + ["--out", out]


# --------------------------------------------------------------------------- #
# Item 1: never delete or overwrite what is not ours                          #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_writes_into_a_folder_it_did_not_make(command, target, inputs, tmp_path, capsys, monkeypatch):
    user = tmp_path / "user"
    (user / "sub").mkdir(parents=True)
    (user / "thesis.txt").write_text("four years of work\n")
    (user / "sub" / "notes.txt").write_bytes(b"\x00\x01 notes")
    (user / "config.json").write_text('{"mine": true}\n')
    monkeypatch.setenv("HOME", str(user))
    if target == "symlink":
        (tmp_path / "link").symlink_to(user, target_is_directory=True)
    monkeypatch.chdir(user / "sub" if target == ".." else user)
    out = {"user folder": user, "symlink": tmp_path / "link"}.get(target, target)
    before = _snapshot(tmp_path, inputs["root"])
    _refused(_command(command, out, inputs), capsys,
             contains="exists" if command == "simulate" else "symdistill did not write")
    assert _snapshot(tmp_path, inputs["root"]) == before


def test_replace_dir_replaces_only_its_own_files_and_never_removes_a_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: pytest.fail("rmtree called"))
    out = tmp_path / "distill"
    first = temp_dir_beside(out)
    (first / "distill.json").write_text("old")
    (first / "pareto_node_2.csv").write_text("old front")
    replace_dir(first, out)
    (out / "my-notes.txt").write_text("the user's")                 # a user's file in our folder
    second = temp_dir_beside(out)
    (second / "distill.json").write_text("new")
    (second / "pareto_edge_0.csv").write_text("new front")
    replace_dir(second, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "distill.json", "my-notes.txt",
                                                            "pareto_edge_0.csv"])
    assert (out / "distill.json").read_text() == "new" and (out / "my-notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["distill"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep")
    third = temp_dir_beside(foreign)
    with pytest.raises(InputError, match="not made by symdistill"):
        replace_dir(third, foreign)
    assert [p.name for p in foreign.iterdir()] == ["thesis.txt"]


def test_distill_into_a_user_folder_is_refused_before_any_work(inputs, tmp_path, capsys, monkeypatch):
    """The reported data loss: `distill --out P` emptied P. Refused now, before the model is distilled."""
    from distill import pipeline
    monkeypatch.setattr(pipeline, "distill_checkpoint", lambda *a, **k: pytest.fail("distilled anyway"))
    user = tmp_path / "P"
    (user / "sub").mkdir(parents=True)
    (user / "thesis.txt").write_text("x\n")
    before = _snapshot(user)
    _refused(["distill", "--model", inputs["train"] / "checkpoint.pt", "--out", user], capsys, contains="thesis.txt")
    assert _snapshot(user) == before
    with pytest.raises(InputError, match="did not write"):
        pipeline.build_replacing(user, lambda tmp: pytest.fail("built anyway"))
    assert _snapshot(user) == before


def test_a_folder_of_ours_from_before_the_marker_is_still_ours(inputs, tmp_path, capsys):
    """A training folder written before folders carried the marker holds only names this
    project writes there: it is adopted (and skipped, as finished). One more file of the
    user's in it and it is refused."""
    old = tmp_path / "old-train"
    shutil.copytree(inputs["train"], old)
    (old / MARKER).unlink()
    args = ["train", "--data", inputs["data"], "--strategy", "bottleneck", *SMALL_TRAIN, "--out", old]
    code, out, err = run_main(args, capsys)
    assert code == 0 and "skipped" in out, err
    assert (old / MARKER).is_file()
    (old / MARKER).unlink()
    (old / "thesis.txt").write_text("mine")
    before = _snapshot(old)
    _refused(args, capsys, contains="thesis.txt")
    assert _snapshot(old) == before


def test_an_empty_folder_and_re_runs_into_our_own_folders_work(inputs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train", "--data", inputs["data"], "--strategy", "bottleneck", *SMALL_TRAIN, "--out", empty]
    assert run_main(args, capsys)[0] == 0
    assert (empty / MARKER).is_file() and (empty / "checkpoint.pt").is_file()
    code, out, err = run_main(args, capsys)
    assert code == 0 and "skipped" in out, err


# --------------------------------------------------------------------------- #
# Item 3: one writer per run, siblings never clash                            #
# --------------------------------------------------------------------------- #

def _hold(folder: Path, how: int):
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, how | fcntl.LOCK_NB)
    return fd


def test_a_stage_folder_inside_a_locked_run_is_refused(inputs, tmp_path, capsys):
    """`run.py all --out RUN` running (it holds RUN), then `train --data RUN/data --out
    RUN/train`, `distill` into RUN/distill or `simulate` into RUN: refused."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / MARKER).write_text("{}")
    shutil.copytree(inputs["data"], run_dir / "data")
    fd = _hold(run_dir, fcntl.LOCK_EX)
    try:
        before = _snapshot(tmp_path)
        _refused(["train", "--data", run_dir / "data", *SMALL_TRAIN, "--out", run_dir / "train"], capsys,
                 contains="in use")
        _refused(["distill", "--model", inputs["train"] / "checkpoint.pt", "--out", run_dir / "distill"], capsys,
                 contains="in use")
        _refused(["simulate", *SMALL_SIM, "--out", run_dir / "data2"], capsys, contains="in use")
        assert _snapshot(tmp_path) == before
    finally:
        os.close(fd)


def test_a_run_is_refused_while_a_command_writes_in_one_of_its_stage_folders(tmp_path, capsys):
    from plumbing import rundir
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / MARKER).write_text("{}")
    with rundir.locked(run_dir / "train"):        # what `train --out RUN/train` holds while it runs
        _refused(["all", *SMALL_SIM, "--out", run_dir], capsys, contains="in use")
    assert sorted(p.name for p in run_dir.iterdir()) == [MARKER, "train"]


@pytest.mark.parametrize("ours", [False, True])
def test_sibling_datasets_never_clash(tmp_path, capsys, ours):
    """Simulate used to lock the parent folder: a second dataset beside one being written was refused."""
    parent = tmp_path / "datasets"
    parent.mkdir()
    if ours:
        (parent / MARKER).write_text("{}")
    (parent / "first").mkdir()
    (parent / "first" / MARKER).write_text("{}")
    fd = _hold(parent / "first", fcntl.LOCK_EX)
    fd_parent = _hold(parent, fcntl.LOCK_SH if ours else fcntl.LOCK_EX)
    try:
        code, _, err = run_main(["simulate", *SMALL_SIM, "--out", parent / "second"], capsys)
        assert code == 0, err
    finally:
        os.close(fd)
        os.close(fd_parent)
    assert (parent / "second" / "meta.json").is_file()


# --------------------------------------------------------------------------- #
# Item 4: a dataset's identity is its content                                  #
# --------------------------------------------------------------------------- #

def _with_files_of(dest: Path, source: Path, other: Path) -> Path:
    shutil.copytree(source, dest)
    for name in ("train_states.npy", "train_accel.npy"):
        shutil.copyfile(other / name, dest / name)                  # same shape, another seed
    return dest


def test_another_seeds_data_files_copied_in_are_refused(inputs, tmp_path, capsys):
    data = _with_files_of(tmp_path / "data", inputs["data"], inputs["data1"])
    out = tmp_path / "t"
    args = ["train", "--strategy", "bottleneck", *SMALL_TRAIN[:-1], "--epochs", "2", "--quiet"]
    assert run_main([*args, "--data", inputs["data"], "--out", out], capsys)[0] == 0
    (out / "metrics.json").unlink()                                  # as if killed before the end
    before = _snapshot(out)
    _refused([*args, "--data", data, "--out", out], capsys, contains="train_accel.npy")       # resume
    _refused(["train", "--data", data, "--strategy", "bottleneck", *SMALL_TRAIN, "--out", inputs["train"]],
             capsys, contains="sha-256")                                                    # skip
    _refused(["distill", "--model", inputs["train"] / "checkpoint.pt", "--data", data, "--out", tmp_path / "d"],
             capsys, contains="sha-256")
    assert _snapshot(out) == before and not (tmp_path / "d").exists()


def test_a_dataset_records_the_digest_of_every_array_file(inputs):
    from plumbing.rundir import file_sha256
    digests = json.loads((inputs["data"] / "meta.json").read_text())["sha256"]
    assert digests == {p.name: file_sha256(p) for p in inputs["data"].glob("*.npy")}
    assert len(digests) == 6


# --------------------------------------------------------------------------- #
# Item 5: one line instead of a traceback                                      #
# --------------------------------------------------------------------------- #

def _without_law(meta: dict) -> dict:
    del meta["dataset"]["meta"]["law"]
    return meta


SPOILED_META = {
    "meta is a list": lambda meta: ["model_config", "dataset"],
    "model_config is a string": lambda meta: {**meta, "model_config": "bottleneck"},
    "dataset is a string": lambda meta: {**meta, "dataset": "data"},
    "dataset is a list": lambda meta: {**meta, "dataset": ["data", {}]},
    "dataset meta is a string": lambda meta: {**meta, "dataset": {**meta["dataset"], "meta": "{}"}},
    "dataset meta has no law": _without_law,
    "hidden is 10**12": lambda meta: {**meta, "model_config": {**meta["model_config"], "hidden": 10 ** 12}},
}


@pytest.mark.parametrize("how", list(SPOILED_META))
def test_a_malformed_checkpoint_meta_is_one_line(inputs, tmp_path, capsys, how):
    from gnn.checkpoint import MODEL_KIND, load_torch, save_torch
    obj = load_torch(inputs["train"] / "checkpoint.pt", MODEL_KIND)
    obj["meta"] = SPOILED_META[how](obj["meta"])
    bad = tmp_path / "bad.pt"
    save_torch(bad, MODEL_KIND, {k: v for k, v in obj.items() if k not in ("kind", "version")})
    before = _snapshot(tmp_path, inputs["root"])
    _refused(["distill", "--model", bad, "--data", inputs["data"], "--out", tmp_path / "d"], capsys)
    assert _snapshot(tmp_path, inputs["root"]) == before


def test_an_absurd_model_width_is_refused_from_a_memory_estimate(inputs, tmp_path, capsys):
    _refused(["train", "--data", inputs["data"], *SMALL_TRAIN, "--hidden", "10000000", "--out", tmp_path / "t"],
             capsys, contains="GiB")
    assert list(tmp_path.iterdir()) == []


def test_the_memory_pre_check_reads_the_address_space_limit(monkeypatch):
    from plumbing import resources
    mapped = resources._proc_field("/proc/self/status", "VmSize:")
    monkeypatch.setattr(resources.resource, "getrlimit", lambda which: (mapped + (1 << 30), resource.RLIM_INFINITY))
    assert 0 < resources.available_memory() <= 1 << 30


def test_simulate_under_ulimit_v_is_one_line(tmp_path):
    """Under an address-space limit (ulimit -v) a dataset that the machine could hold but the
    process cannot is refused by the pre-check, in one line; nothing is written."""
    limit = """
import resource, sys
from pipeline.cli import main
size = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (700 << 20), resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""
    proc = subprocess.run([sys.executable, "-c", limit, "simulate", "--n-sims", "5000000", "--nt", "50", "--quiet",
                           "--out", str(tmp_path / "d")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "of memory" in proc.stderr and "is available" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# Item 6: a sweep with a refused job exits non-zero and lists it               #
# --------------------------------------------------------------------------- #

def test_a_sweep_with_a_refused_job_finishes_the_others_then_exits_2_with_the_list(tmp_path, capsys, monkeypatch):
    ran = []

    def job(job):
        ran.append(job[0].name)
        if "-l1-" in job[0].name:
            raise InputError("this run was made with --epochs 1; use another --out")
        return str(job[0])

    def analyse(target, out_dir=None):
        for table in ("test_mae", "edge_reconstruction", "node_reconstruction"):
            (target / "analysis").mkdir(exist_ok=True)
            (target / "analysis" / f"{table}.md").write_text(f"| {table} |\n")

    monkeypatch.setattr(sweep, "execute", lambda fn, jobs, **pool: map(fn, jobs))
    monkeypatch.setattr(sweep, "sweep_job", job)
    monkeypatch.setattr(stages, "stage_analyse", analyse)
    code, out, err = run_main(["sweep", "--laws", "spring", "--dims", "2", "--strategies", "l1,bottleneck", *SMALL_SIM,
                            "--out", tmp_path / "s"], capsys)
    assert code == 2 and err.count("\n") == 1 and "1 of 2 sweep jobs" in err, err
    assert ran == ["spring-2d-l1-s0", "spring-2d-bottleneck-s0"]               # the other one still ran
    assert "| test_mae |" in out
    listed = out.split("jobs refused or failed:")[1]
    assert "spring-2d-l1-s0 (refused: this run was made with --epochs 1" in listed
    assert "bottleneck" not in listed


def test_a_sweep_job_refused_in_a_foreign_folder_writes_nothing_there(tmp_path, monkeypatch):
    (job,) = sweep.sweep_jobs("tiny", {}, ["spring"], [2], ["l1"], [0], tmp_path)
    job[0].mkdir(parents=True)
    (job[0] / "thesis.txt").write_text("mine")
    monkeypatch.setattr(stages, "stage_simulate", lambda *args, **kw: None)
    assert "symdistill did not write" in sweep.local_sweep_job(job)
    assert sorted(p.name for p in job[0].iterdir()) == ["thesis.txt"]


# --------------------------------------------------------------------------- #
# Every subcommand, a few hostile inputs                                        #
# --------------------------------------------------------------------------- #

def _hostile(command: str, case: str, inputs: dict[str, Path], tmp: Path) -> list:
    """`command` with one hostile input `case`; the output (where one is named) goes to tmp/out."""
    garbage = tmp / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    bad_data = tmp / "bad-data"
    bad_data.mkdir()
    (bad_data / "meta.json").write_text('{"format_version": 1, "law": [1, 2]')
    args = _command(command, tmp / "out", inputs)
    if case == "empty --out":
        return args[:-1] + [""]
    if case == "--out is a file":
        return args[:-1] + [garbage]
    if case == "missing input":
        swap = {"train": "--data", "distill": "--model", "analyse": "--run", "halos": None}.get(command)
        if swap:
            return [tmp / "absent" if a == args[args.index(swap) + 1] else a for a in args]
        return args + (["--catalogue", tmp / "absent.npz"] if command == "halos" else ["--n", "1"])
    if case == "corrupt input":
        swap = {"train": ("--data", bad_data), "distill": ("--model", garbage),
                "analyse": ("--run", bad_data)}.get(command)
        if swap:
            return [swap[1] if a == args[args.index(swap[0]) + 1] else a for a in args]
        return args + (["--catalogue", garbage] if command == "halos" else ["--dim", "7"])
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["empty --out", "--out is a file", "missing input", "corrupt input"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_refuses_hostile_input_in_one_line_and_touches_nothing(command, case, inputs, tmp_path,
                                                                                capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = _hostile(command, case, inputs, tmp_path)
    before = _snapshot(tmp_path, inputs["root"])
    _refused(args, capsys)
    assert _snapshot(tmp_path, inputs["root"]) == before
