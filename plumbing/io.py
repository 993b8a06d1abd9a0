"""Atomic file writes and config (de)serialisation shared by every stage.

In:  paths, bytes / arrays / JSON-able objects / frozen dataclasses.
Out: files that either exist completely or not at all (write to a temporary
     sibling named `.NAME.PID.XXXX.tmp`, fsync, `os.replace`), with the permissions
     the umask gives a newly created file or folder; strict JSON (NaN and infinities
     are written as null); dataclasses rebuilt from JSON with their field types checked.

Nothing that was already written is lost when a run is interrupted: a
reader sees the old file or the new one, never half of one. Every folder this project
creates carries the marker file `.symdistill` (`MARKER`; `mark`, `is_ours`); `replace_dir`
moves a finished temporary folder into place without ever removing a folder recursively
or touching a file it did not write.
"""
from __future__ import annotations

import dataclasses
import errno
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

# The file this project writes into every output folder it creates: a folder without it is
# not ours, and no command writes into it unless it is empty (`plumbing.rundir.claim`).
MARKER = ".symdistill"


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


def is_ours(directory: str | os.PathLike) -> bool:
    """Whether `directory` carries the marker this project writes into every folder it creates."""
    return (Path(directory) / MARKER).is_file()


def mark(directory: str | os.PathLike, files: list[str] | None = None) -> None:
    """Write the ownership marker into `directory` (an existing folder of ours), with the
    names of the entries `replace_dir` put there (`files`; kept from before when None)."""
    path = Path(directory) / MARKER
    if files is None:
        if path.is_file():
            return
        files = []
    atomic_write_text(path, json.dumps({"made_by": "symdistill", "files": sorted(files)}) + "\n")


def marked_files(directory: Path) -> list[str]:
    """The entry names `replace_dir` recorded in `directory`'s marker (none when unreadable)."""
    try:
        files = json.loads((Path(directory) / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and f and "/" not in f and f not in (".", "..")] \
        if isinstance(files, list) else []


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written temporary folder (from `temp_dir_beside`) into place.

    The marker of `tmp_dir` lists the entries it holds. When `final_dir` is absent or an
    empty folder (the marker aside), `tmp_dir` is renamed onto it (one atomic step;
    permissions from the umask, as mkdtemp makes it owner-only). When it is a folder of ours
    (it carries the marker), its content is replaced entry by entry: each entry of `tmp_dir`
    (files; a folder only where none of that name exists) is renamed over its namesake
    (atomic per entry; JSON records last, after the old ones were removed first, so a reader
    never sees a record beside half of its files), the files an earlier `replace_dir` put
    there that the new build lacks are removed, and nothing else in it is touched. Any other existing `final_dir` is an `InputError`, and
    nothing in it is touched. Nothing is ever removed recursively.
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    os.chmod(tmp_dir, 0o777 & ~umask())
    new = sorted(p.name for p in tmp_dir.iterdir() if p.name != MARKER)
    mark(tmp_dir, new)
    if not final_dir.is_dir() or {p.name for p in final_dir.iterdir()} <= {MARKER}:
        if final_dir.is_dir():
            (final_dir / MARKER).unlink(missing_ok=True)     # a folder of ours kept empty for this build
        try:
            os.replace(tmp_dir, final_dir)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise InputError(f"{final_dir} appeared while this run was writing it (another run?); "
                                 "nothing in it was touched") from None
            raise
        return
    if not is_ours(final_dir):
        raise InputError(f"{final_dir} exists and was not made by symdistill; nothing in it was touched")
    old = marked_files(final_dir)
    mark(final_dir, sorted(set(old) | set(new)))         # a crash below leaves every entry listed
    for name in old:
        target = final_dir / name
        if (name not in new or name.endswith(".json")) and (target.is_symlink() or target.is_file()):
            target.unlink()
    for name in sorted(new, key=lambda n: (n.endswith(".json"), n)):
        os.replace(tmp_dir / name, final_dir / name)
    mark(final_dir, new)
    (tmp_dir / MARKER).unlink(missing_ok=True)
    tmp_dir.rmdir()


def temp_dir_beside(final_dir: Path) -> Path:
    """A new folder `.NAME.PID.XXXX.tmp` next to `final_dir`, holding only the ownership
    marker, to be moved into place with `replace_dir` once complete (the pid lets a later
    run tell a dead writer's leftovers)."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.{os.getpid()}.", suffix=".tmp"))
    mark(tmp)
    return tmp


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
