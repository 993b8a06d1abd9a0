"""Atomic file writes and config (de)serialisation shared by every stage.

In:  paths, bytes / arrays / JSON-able objects / frozen dataclasses.
Out: files that either exist completely or not at all (write to a temporary
     sibling named `.NAME.PID.XXXX.tmp`, fsync, `os.replace`), with the permissions
     the umask gives a newly created file or folder; strict JSON (NaN and infinities
     are written as null); dataclasses rebuilt from JSON with their field types checked.

Nothing that was already written is lost when a run is interrupted: a
reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import reprlib
import shutil
import tempfile
import typing
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, matches_type, type_name


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~umask())          # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, tight: bool = True) -> Path:
    """Write a matplotlib figure as PNG atomically (rendered in memory, then
    `atomic_write_bytes`; parent folders are created). `tight` crops the margins to the
    drawn content (bbox_inches="tight", which draws the figure twice). Returns the destination path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, arrays and paths turned into plain JSON types (recursively);
    NaN and infinite floats become None (JSON null), as strict JSON has no such numbers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write `obj` (dataclasses, dicts, arrays, numbers) as indented strict JSON."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    """Read JSON; a missing or corrupt file (bad syntax or encoding, absurd nesting or
    number length) is an `InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:      # JSONDecodeError and UnicodeDecodeError included
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise InputError(f"corrupt JSON in {path}: {reason}") from None


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write one array in NumPy's .npy format."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write named arrays as one compressed .npz (plain arrays, nothing pickled)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read without unpickling; a missing or unreadable file is
    an `InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"unreadable array file {path}: {exc}") from None


def config_from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (possibly nested) frozen dataclass from a dict made by `save_json`.

    Unknown keys and values not of the field's annotated type are an `InputError` (a
    config from another version or a hand-edited file is not silently half-read);
    missing keys take the dataclass defaults.
    """
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise InputError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        if hint is not None and not matches_type(value, hint):
            raise InputError(f"{cls.__name__} field {key} must be of type {type_name(hint)}, "
                             f"got {reprlib.repr(value)}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:       # a __post_init__ tripping over a value it cannot compare
        raise InputError(f"malformed {cls.__name__}: {exc}") from None


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written temporary directory into place (rename is atomic), with the
    permissions the umask gives a new folder (mkdtemp makes it owner-only)."""
    os.chmod(tmp_dir, 0o777 & ~umask())
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)


def temp_dir_beside(final_dir: Path) -> Path:
    """A new empty folder `.NAME.PID.XXXX.tmp` next to `final_dir`, to be moved into place
    with `replace_dir` once complete (the pid lets a later run tell a dead writer's leftovers)."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.{os.getpid()}.", suffix=".tmp"))


def remove_stale_temps(directory: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete the temporary files and folders of writers that died in `directory`.

    Temporaries are named `.NAME.PID.XXXX.tmp` (see `temp_dir_beside`, `atomic_write_bytes`);
    one whose PID is no longer running is a leftover of a killed run. With `name`, only
    temporaries of that output name are considered. Returns the removed paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.iterdir():
        parts = path.name.removesuffix(".tmp").rsplit(".", 2)       # [".NAME", "PID", "XXXX"]
        if (not path.name.endswith(".tmp") or len(parts) != 3 or not parts[0].startswith(".")
                or (name is not None and parts[0] != f".{name}")):
            continue
        pid = parts[1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (an unknowable one counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
