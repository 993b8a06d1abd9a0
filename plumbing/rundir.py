"""Output-folder bookkeeping shared by every stage: locks, input fingerprints, stage records.

In:  an output folder, the config of the stage that writes it, and its inputs (a dataset
     folder, a checkpoint file).
Out: the check that an output folder is ours (`check_ours`: absent, empty, carrying the
     marker `.symdistill`, or of a known `Layout` from before the marker), an advisory
     lock held while a command writes (`locked`, with shared locks on the enclosing folders
     of ours; `guarded`), fingerprints that say
     whether an input is the same one (`dataset_identity`, `meta_fingerprint`,
     `file_sha256`), and the check
     that a re-run with another config or other inputs is refused instead of skipped or
     silently resumed (`check_record`); a folder's timings.json (`Timings`, `stage_seconds`).

A record is a JSON object {"config": ..., "inputs": ...}; a stage compares the record of
what an output folder holds with the one it wants before it skips or resumes.
"""
from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from .errors import InputError
from .io import MARKER, is_ours, load_json, mark, save_json, to_jsonable


# Folders whose locks this process, or the process that started it (a sweep's pool workers),
# holds: os.pathsep-separated resolved paths, inherited by child processes.
LOCKS_ENV = "SYMDISTILL_HELD_LOCKS"
# Entries every folder of ours may hold besides its own: the marker, temporaries of atomic
# writes (`.NAME.PID.XXXX.tmp`) and lock folders (`.NAME.lock`).
ALWAYS_OURS = (MARKER, ".*.tmp", ".*.lock")
TIMINGS_FILE = "timings.json"
T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """What a folder of one kind holds, to recognise one written before folders carried the
    marker: it is taken as ours when it holds nothing but `allowed` names (fnmatch
    patterns; the witnesses are allowed too) and either at least one `witness` or a parent
    folder of ours (a run folder of a sweep that failed before writing its config)."""

    witness: tuple[str, ...]
    allowed: tuple[str, ...] = ()

    def adopts(self, names: list[str]) -> bool:
        """Whether a folder holding exactly `names` is one of this layout."""
        return (any(fnmatch.fnmatchcase(n, w) for n in names for w in self.witness)
                and not self.foreign(names))

    def foreign(self, names: list[str]) -> list[str]:
        """The names that are none of this layout's."""
        patterns = (*ALWAYS_OURS, *self.witness, *self.allowed)
        return [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def output_path(text: str | os.PathLike, flag: str = "--out") -> Path:
    """`text` as an output folder path (`~` expanded); InputError if it is empty or names an
    existing file."""
    if not str(text).strip():
        raise InputError(f"{flag} must not be empty")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is a file, not a folder")
    return path


def check_ours(directory: Path, layout: Layout | None = None) -> None:
    """InputError unless `directory` may be written: absent, empty, carrying the marker, or
    (with `layout`) a folder of that layout from before the marker (`Layout`). Reads only; stops at the
    first entries that rule the folder out, so a huge folder costs little."""
    directory = Path(directory)
    if not directory.exists() or is_ours(directory):
        return
    if not directory.is_dir():
        raise InputError(f"{directory} is a file, not a folder; nothing was written")
    names, foreign = [], []
    for entry in directory.iterdir():
        names.append(entry.name)
        if layout is None or layout.foreign([entry.name]):
            foreign.append(entry.name)
            if len(foreign) == 3:
                break
    if not names or (not foreign and layout is not None
                     and (layout.adopts(names) or is_ours(directory.absolute().parent))):
        return
    shown = ", ".join(sorted(foreign or names)[:3])
    raise InputError(f"{directory} exists and holds files symdistill did not write ({shown}); "
                     "nothing in it was touched: choose a new or empty folder")


@contextlib.contextmanager
def locked(directory: Path, *, wait: bool = False, layout: Layout | None = None) -> Iterator[Path]:
    """Claim `directory` for this command: check that it is ours (`check_ours`), create it
    if needed, mark it, and hold an exclusive advisory lock (flock) on it while the block runs.

    Every ancestor folder of ours (one carrying the marker) that this process does not hold
    itself is held with a shared lock for as long, so a stage folder inside a run that
    another command is writing is refused, and so is a run while a command writes in one of
    its stage folders; sibling folders never clash. A second process asking for a held
    folder gets an InputError at once, or, with `wait`, blocks until the first one lets go
    (the sweep's jobs take turns this way to create a dataset they share). A folder this
    call created and that holds only the marker when the block fails is removed again, so a
    refused command leaves nothing behind.
    """
    directory = Path(directory)
    check_ours(directory, layout)
    fds = _hold_ancestors(directory)
    held = os.environ.get(LOCKS_ENV)
    created = not directory.exists()
    try:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fds.append(os.open(directory, os.O_RDONLY))
            try:
                fcntl.flock(fds[-1], fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"{directory} is in use by another run; wait for it to finish or use another "
                                 "--out") from None
            mark(directory)
            os.environ[LOCKS_ENV] = os.pathsep.join(filter(None, (held, str(directory.resolve()))))
            yield directory
        finally:
            _restore(LOCKS_ENV, held)
            for fd in fds:
                os.close(fd)
    except BaseException:
        if created and directory.is_dir() and {p.name for p in directory.iterdir()} <= {MARKER}:
            (directory / MARKER).unlink(missing_ok=True)
            directory.rmdir()
        raise


@contextlib.contextmanager
def guarded(path: Path) -> Iterator[Path]:
    """Hold shared locks on the ancestor folders of ours of `path` (as `locked` does) while
    the block writes `path` without locking it (a dataset that appears in one rename)."""
    fds = _hold_ancestors(Path(path))
    try:
        yield Path(path)
    finally:
        for fd in fds:
            os.close(fd)


def _hold_ancestors(path: Path) -> list[int]:
    """Shared flocks on every ancestor of `path` that carries the marker and that this process
    (or its parent, `LOCKS_ENV`) does not hold; InputError if one is locked by another run."""
    held = set(filter(None, os.environ.get(LOCKS_ENV, "").split(os.pathsep)))
    fds = []
    try:
        for folder in Path(path).absolute().resolve().parents:
            if str(folder) in held or not is_ours(folder):
                continue
            fds.append(os.open(folder, os.O_RDONLY))
            try:
                fcntl.flock(fds[-1], fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"{folder} is in use by another run, and {path} is inside it; wait for it "
                                 "to finish or use another --out") from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_fingerprint(meta: dict) -> str:
    """Hex SHA-256 of a dataset's meta.json content (canonical JSON, key order ignored)."""
    return hashlib.sha256(json.dumps(to_jsonable(meta), sort_keys=True).encode()).hexdigest()


def dataset_identity(meta: dict) -> dict:
    """What makes a dataset the same dataset: law, dim, n, topology and its meta.json fingerprint.

    Args:
        meta: the dataset's parsed meta.json (empty for in-memory arrays: identity of nothing).
    """
    law = meta.get("law") if isinstance(meta.get("law"), dict) else {}
    return {"law": law.get("name"), "dim": meta.get("dim"), "n": meta.get("n"),
            "topology": law.get("topology"), "meta_sha256": meta_fingerprint(meta)}


def record(config, inputs: dict) -> dict:
    """The JSON record of a stage: its config (a dataclass or dict) and its inputs' identities."""
    return {"config": to_jsonable(config), "inputs": to_jsonable(inputs)}


def check_record(held: dict, wanted: dict, where: Path) -> None:
    """InputError naming the differing fields when a held stage record is not the wanted one."""
    diff = sorted(_differences(held, wanted))
    if diff:
        raise InputError(f"{where} holds results made with a different config or input "
                         f"({', '.join(diff[:4])}); use another --out")


def _differences(held, wanted, prefix: str = "") -> Iterator[str]:
    if isinstance(held, dict) and isinstance(wanted, dict):
        for key in sorted(set(held) | set(wanted)):
            yield from _differences(held.get(key), wanted.get(key), f"{prefix}{key}.")
    elif held != wanted:
        yield prefix.rstrip(".")


class Timings:
    """A run folder's timings.json: {stage: {"seconds": wall seconds, "peak_rss_mb": this
    process's peak resident memory after the stage}} for each stage the folder ran itself;
    written (atomically) after every stage, so an interrupted run keeps what it finished."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / TIMINGS_FILE
        self.stages = load_json(self.path) if self.path.exists() else {}

    def time(self, name: str | None, done: Path, stage: Callable[..., T], *args, **kwargs) -> T:
        """stage(*args, **kwargs), recorded as `name` unless `done` (the file a finished stage
        leaves) existed before: a skipped stage keeps its earlier figure; `name` None: not recorded."""
        start, skipped = time.perf_counter(), Path(done).exists()
        out = stage(*args, **kwargs)
        if name and not skipped:
            self.stages[name] = {"seconds": round(time.perf_counter() - start, 2),
                                 "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
            save_json(self.path, self.stages)
        return out


def stage_seconds(folder: Path) -> dict[str, float]:
    """{stage: wall seconds} of `folder`'s timings.json ({} if absent); a file from before the
    entries carried peak memory holds the seconds themselves."""
    path = Path(folder) / TIMINGS_FILE
    held = load_json(path) if path.is_file() else {}
    return {name: entry["seconds"] if isinstance(entry, dict) else entry for name, entry in held.items()}
