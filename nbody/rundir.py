"""Output-folder bookkeeping shared by every stage: locks, input fingerprints, stage records.

In:  an output folder, the config of the stage that writes it, and its inputs (a dataset
     folder, a checkpoint file).
Out: an advisory lock held while a command writes (`locked`), fingerprints that say
     whether an input is the same one (`dataset_identity`, `meta_fingerprint`,
     `file_sha256`), and the check
     that a re-run with another config or other inputs is refused instead of skipped or
     silently resumed (`check_record`).

A record is a JSON object {"config": ..., "inputs": ...}; a stage compares the record of
what an output folder holds with the one it wants before it skips or resumes.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from .errors import InputError
from .io import to_jsonable


def output_path(text: str | os.PathLike, flag: str = "--out") -> Path:
    """`text` as an output folder path; InputError if it is empty or names an existing file."""
    if not str(text).strip():
        raise InputError(f"{flag} must not be empty")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is a file, not a folder")
    return path


@contextlib.contextmanager
def locked(directory: Path, *, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive advisory lock (flock) on `directory`, creating it if needed.

    A second process asking for the same folder gets an InputError at once instead of
    writing beside the first, or, with `wait`, blocks until the first one lets go (the
    sweep's jobs take turns this way to create a dataset they share). A folder this call
    created and that is still empty when the block fails is removed again, so a refused
    command leaves nothing behind.
    """
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{directory} is in use by another run; wait for it to finish or use another --out") from None
        yield directory
    except BaseException:
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise
    finally:
        os.close(fd)


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
