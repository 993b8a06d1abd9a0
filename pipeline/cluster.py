"""The sweep on a cluster through submitit: what each job asks for, submission that returns
at once, the state of every run, and re-submission of what has not finished.

In:  the sweep's jobs (`pipeline.sweep.sweep_jobs`), a job function importable by name
     (`pipeline.sweep.sweep_job`, from the installed package),
     the `Resources` each job asks for (the preset's defaults, then flags) and the cluster:
     "slurm" (sbatch, one job array per submission) or "local" (submitit's local executor:
     every job a process on this machine, all started at once; for tests and workstations).
Out: OUT/submitit/ holds submitit's pickles and the logs of each job
     ({job id}_0_log.out / .err) and sweep.json: every run of the sweep with its dataset and
     config, and one entry per submission (time, cluster, `Resources`, {run: job id}).
     `submit` sends only the runs that are neither done nor queued nor running, and returns
     as soon as the scheduler has them; `run_states` reads the state of each run (STATES)
     without waiting for anything.

Datasets are never simulated by the submitting process: each job creates the dataset it
shares with other runs under a lock (`pipeline.sweep.sweep_job`, `dataset_lock`), so the first
job of a dataset simulates it while the others wait (seconds at paper size), then all train.
The sweep folder must be on a file system that every node sees and that honours flock
(NFS, or Lustre mounted with -o flock).
Imports submitit only to submit and to read states (`pip install -e '.[cluster]'`).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import shutil
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from distill.schema import RESULT_FILE
from plumbing import rundir
from plumbing.errors import InputError
from plumbing.io import load_json, save_json, to_jsonable

from .config import Job, Resources
from .flags import field_help, flag_type
from .presets import PRESET_RESOURCES

CLUSTERS = ("slurm", "local")
FOLDER = "submitit"                 # OUT/FOLDER: submitit's files and the sweep record
RECORD = "sweep.json"
# A run's state, in the order `status_lines` counts them. "failed" and "not submitted" are
# what a re-run of the same sweep command submits again.
STATES = ("done", "running", "pending", "failed", "unknown", "not submitted")
RESUBMIT = ("failed", "not submitted")


# Resources fields set by a flag of their own name (array_parallelism comes from --workers).
_FLAG_FIELDS = [f for f in dataclasses.fields(Resources) if f.name not in ("slurm", "array_parallelism")]


@dataclass(frozen=True)
class RunState:
    """The state of one run of a submitted sweep.

    Attributes:
        name: the run's folder name (OUT/name).
        state: one of STATES.
        job_id: its latest job (None: never submitted).
        detail: the scheduler's word or the error's last line ("" when there is nothing to add).
        log: the latest job's stderr log (a failed run's is where to look).
    """

    name: str
    state: str
    job_id: str | None = None
    detail: str = ""
    log: Path | None = None


# --------------------------------------------------------------------------- #
# Flags and resources                                                          #
# --------------------------------------------------------------------------- #

def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add --cluster, one flag per `Resources` field (--partition, --gpus-per-job, ...) and
    the repeatable --slurm NAME=VALUE to the sweep's parser; all default to None (not given)."""
    group = parser.add_argument_group("cluster (--executor submitit)")
    group.add_argument("--cluster", choices=CLUSTERS, default=None,
                       help="slurm (default: sbatch job arrays) or local (submitit's local executor: "
                            "every job a process on this machine at once)")
    hints, helps = typing.get_type_hints(Resources), field_help(Resources)
    for field in _FLAG_FIELDS:
        defaults = {name: getattr(res, field.name) for name, res in PRESET_RESOURCES.items()}
        help_text = helps[field.name]
        if len(set(defaults.values())) > 1:
            help_text += " Default per preset: " + ", ".join(f"{k} {v}" for k, v in defaults.items()) + "."
        group.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                           type=flag_type(hints[field.name]), metavar=field.name.upper(),
                           help=help_text.replace("%", "%%"))
    group.add_argument("--slurm", action="append", default=None, metavar="NAME=VALUE",
                       help="a further sbatch option, e.g. --slurm constraint=a100 (repeatable)")


def resources(preset: str, values: dict) -> Resources:
    """The preset's `PRESET_RESOURCES` with every resource flag given in `values` applied.

    Args:
        preset: a preset name (`pipeline.presets.PRESETS`).
        values: the parsed flags (vars(args)): a `Resources` field name -> value or None
            (not given), "slurm" -> ["NAME=VALUE", ...] or None, "workers" -> jobs at once.
    Returns:
        The validated `Resources` (InputError names a bad value).
    """
    changes = {f.name: values[f.name] for f in _FLAG_FIELDS if values.get(f.name) is not None}
    if values.get("slurm"):
        pairs = [text.partition("=") for text in values["slurm"]]
        if not all(sep and name for name, sep, _ in pairs):
            raise InputError("--slurm takes NAME=VALUE, e.g. --slurm constraint=a100")
        changes["slurm"] = tuple((name.strip(), value.strip()) for name, _, value in pairs)
    if values.get("workers") is not None:
        changes["array_parallelism"] = values["workers"]
    return dataclasses.replace(PRESET_RESOURCES[preset], **changes)


def given_flags(values: dict) -> list[str]:
    """The cluster flags given in `values` (vars(args)), as "--name" (for refusing them
    where no cluster is used)."""
    names = ["cluster", "slurm", *(f.name for f in _FLAG_FIELDS)]
    return ["--" + name.replace("_", "-") for name in names if values.get(name) is not None]


# --------------------------------------------------------------------------- #
# Submission                                                                   #
# --------------------------------------------------------------------------- #

def submit(fn: Callable[[Job], str], jobs: list[Job], out: Path, res: Resources,
           cluster: str = "slurm") -> tuple[dict[str, str], list[RunState]]:
    """Submit the jobs whose run is failed or not submitted yet; return without waiting.

    Args:
        fn: the job function, pickled by reference: a module-level function of an installed
            module (or a functools.partial of one), which the jobs import as this process does.
        jobs: from `pipeline.sweep.sweep_jobs` for the sweep folder `out`.
        out: the sweep folder (OUT/submitit/ is created in it).
        res: what each job asks for.
        cluster: "slurm" or "local".
    Returns:
        ({run name: job id} of the jobs submitted now, the state of every run before).
    Raises:
        InputError: submitit is missing, Slurm is not there, sbatch refused the jobs, or
            a run of the sweep record has another config than the same run in `jobs`
            (nothing is submitted then).
    """
    submitit = _import_submitit()
    record = _load_record(out) if (out / FOLDER / RECORD).exists() else {"runs": {}, "submissions": []}
    for run_dir, cfg, data_dir in jobs:
        wanted = {"data": data_dir.relative_to(out).as_posix(), "config": to_jsonable(cfg)}
        if run_dir.name in record["runs"]:
            rundir.check_record(record["runs"][run_dir.name], wanted, run_dir)
        record["runs"][run_dir.name] = wanted
    before = _states(out, record, submitit)
    resubmit = {s.name for s in before if s.state in RESUBMIT}
    todo = [job for job in jobs if job[0].name in resubmit]
    submitted = {}
    if todo:
        first = not (out / FOLDER).exists()
        executor = _executor(submitit, out / FOLDER, res, cluster)
        # submitit prints sbatch's complaint to stderr itself; it goes into the one-line error instead.
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                started = executor.map_array(fn, todo)
            except submitit.core.utils.FailedJobError as exc:
                if first:
                    shutil.rmtree(out / FOLDER, ignore_errors=True)
                raise InputError(f"sbatch refused the jobs: {_last_line(str(exc)) or 'no message'}") from None
        submitted = {job[0].name: started_job.job_id for job, started_job in zip(todo, started)}
        record["submissions"].append({"submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cluster": cluster,
                                      "resources": to_jsonable(res), "jobs": submitted})
    save_json(out / FOLDER / RECORD, record)
    return submitted, before


def _import_submitit():
    """The submitit module, or InputError saying how to install it."""
    try:
        import submitit  # optional: only the Slurm back-end needs it
    except ImportError:
        raise InputError("--executor submitit needs submitit: pip install -e '.[cluster]'") from None
    return submitit


def _executor(submitit, folder: Path, res: Resources, cluster: str):
    """A submitit executor for `cluster` writing into `folder`, asking for `res` per job."""
    if cluster == "slurm" and not (shutil.which("sbatch") and shutil.which("srun")):
        raise InputError("--cluster slurm needs Slurm (no sbatch or srun on this machine); "
                         "--cluster local runs the jobs here")
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(
        name="symdistill", nodes=1, tasks_per_node=1, timeout_min=res.timeout_min, mem_gb=res.mem_gb,
        cpus_per_task=res.cpus_per_task, gpus_per_node=res.gpus_per_job,
        slurm_partition=res.partition, slurm_account=res.account, slurm_qos=res.qos,
        slurm_array_parallelism=res.array_parallelism, slurm_additional_parameters=dict(res.slurm))
    return executor


# --------------------------------------------------------------------------- #
# State of each run                                                            #
# --------------------------------------------------------------------------- #

def run_states(out: Path) -> list[RunState]:
    """The state of every run of the sweep submitted into `out`, by name; never waits.

    done: its latest job finished without error (or, never submitted, its distillation is
    on disk); failed: the job raised (detail: the error's last line), was killed or timed
    out; running / pending: so says the scheduler (sacct; for the local cluster, whether
    the job's process lives); unknown: the scheduler did not say.
    Raises InputError if `out` holds no submitted sweep.
    """
    return _states(out, _load_record(out), _import_submitit())


def status_lines(out: Path, states: list[RunState]) -> list[str]:
    """A summary line with the count per state, then one line per run (log of failures)."""
    counts = {state: sum(s.state == state for s in states) for state in STATES}
    lines = [f"[status] {out}: {len(states)} runs: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n)]
    width = max((len(s.name) for s in states), default=0)
    for s in states:
        line = f"{s.name:<{width}}  {s.state:<13}"
        if s.job_id is not None:
            line += f"  job {s.job_id}"
        if s.detail:
            line += f"  ({s.detail})"
        if s.state == "failed" and s.log is not None:
            line += f"  log: {s.log}"
        lines.append(line.rstrip())
    return lines


def _load_record(out: Path) -> dict:
    """OUT/submitit/sweep.json, checked to have its "runs" and "submissions"."""
    path = out / FOLDER / RECORD
    if not path.is_file():
        raise InputError(f"no submitted sweep in {out} (no {path}); submit one with --executor submitit")
    record = load_json(path)
    if not (isinstance(record, dict) and isinstance(record.get("runs"), dict)
            and isinstance(record.get("submissions"), list)):
        raise InputError(f"{path} is not a sweep record (runs, submissions)")
    return record


def _states(out: Path, record: dict, submitit) -> list[RunState]:
    """`run_states` for the runs and submissions of `record`."""
    latest: dict[str, tuple[str, str]] = {}
    for entry in record["submissions"]:
        latest.update({name: (job_id, entry["cluster"]) for name, job_id in entry["jobs"].items()})
    folder = out / FOLDER
    paths = {name: submitit.core.utils.JobPaths(folder, job_id, 0) for name, (job_id, _) in latest.items()}
    asking_slurm = [job_id for name, (job_id, cluster) in latest.items()
                    if cluster == "slurm" and not paths[name].result_pickle.exists()]
    slurm = _slurm_states(asking_slurm) if asking_slurm else {}
    states = []
    for name in sorted(record["runs"]):
        if name not in latest:
            done = (out / name / "distill" / RESULT_FILE).is_file()
            states.append(RunState(name, "done" if done else "not submitted"))
            continue
        job_id, cluster = latest[name]
        job = paths[name]
        if job.result_pickle.exists():
            outcome, value = submitit.core.utils.pickle_load(job.result_pickle)
            state, detail = ("done", "") if outcome == "success" else ("failed", _last_line(str(value)))
        elif cluster == "local":
            state, detail = ("running", "") if _local_job_alive(job_id) else ("failed", "ended without a result")
        else:
            detail = slurm[job_id]
            state = _SLURM_STATES.get(detail.split()[0], "failed")
        states.append(RunState(name, state, job_id, detail, job.stderr))
    return states


# sacct's job states (first word) -> ours; any other word is a job that ended without a
# result (FAILED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, ...).
_SLURM_STATES = {
    **dict.fromkeys(("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"), "running"),
    **dict.fromkeys(("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED",
                     "PREEMPTED"), "pending"),
    "UNKNOWN": "unknown",
}


def _slurm_states(job_ids: list[str]) -> dict[str, str]:
    """sacct's state word for each job id, asked in one sacct call ("UNKNOWN" if it did not say)."""
    if shutil.which("sacct") is None:
        return dict.fromkeys(job_ids, "UNKNOWN (no sacct on this machine)")
    from submitit.slurm.slurm import SlurmInfoWatcher  # optional, as above
    watcher = SlurmInfoWatcher()
    for job_id in job_ids:
        watcher.register_job(job_id)
    watcher.update()
    return {job_id: watcher.get_state(job_id, mode="cache") for job_id in job_ids}


def _last_line(text: str) -> str:
    """The last non-blank line of `text` (a traceback's error), at most 200 characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _local_job_alive(job_id: str) -> bool:
    """Whether the local executor's job `job_id` (its controller's pid) still runs. On Linux
    its command line must name submitit (a zombie's is empty, a reused pid's another)."""
    if Path("/proc/self").is_dir():
        try:
            return b"submitit" in (Path("/proc") / job_id / "cmdline").read_bytes()
        except OSError:
            return False
    try:
        os.kill(int(job_id), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
