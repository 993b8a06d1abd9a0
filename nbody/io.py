"""Atomic file writes and config (de)serialisation shared by every stage.

In:  paths, bytes / arrays / JSON-able objects / frozen dataclasses.
Out: files that either exist completely or not at all (write to a temporary
     sibling, fsync, `os.replace`), and dataclasses rebuilt from JSON.

Nothing that was already written is lost when a run is interrupted: a
reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import tempfile
import typing
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, arrays and paths turned into plain JSON types (recursively)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write `obj` (dataclasses, dicts, arrays, numbers) as indented JSON."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    """Read JSON; a missing or corrupt file is an `InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"corrupt JSON in {path}: {exc.msg if hasattr(exc, 'msg') else exc}") from None


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write one array in NumPy's .npy format."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def config_from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (possibly nested) frozen dataclass from a dict made by `save_json`.

    Unknown keys are an `InputError` (a config from another version is not
    silently half-read); missing keys take the dataclass defaults.
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
        kwargs[key] = value
    return cls(**kwargs)


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written temporary directory into place (rename is atomic)."""
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)
