"""Halo catalogues: read, validate and write the columns `x y z vx vy vz M14 delta`.

In:  a file path:
     .npz          one 1-D array per column name (extra keys "box" [scalar] and "synthetic"
                   [bool] are read when present);
     .csv          a header line naming the columns, then comma-separated rows;
     other text    (.txt, .dat, ...) a header line naming the columns (a leading "#" is
                   allowed), then whitespace-separated rows.
     Column order is free and extra columns are ignored. Positions in Mpc/h inside the
     periodic box [0, box)^3, velocities in km/s, M14 = M / (1e14 Msun/h) > 0, delta the
     smoothed overdensity at the halo (README "Halo catalogues": how to make one from Quijote).
Out: a `Catalogue` (float64 arrays), or an `InputError` with one line naming the problem:
     missing columns, unreadable numbers, NaN or infinite values, positions outside the box,
     non-positive masses, duplicate halos (two rows at the same position), fewer than 2 halos.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nbody.errors import InputError
from nbody.io import atomic_write_text, load_npz, save_npz

COLUMNS = ("x", "y", "z", "vx", "vy", "vz", "M14", "delta")
DEFAULT_BOX = 1000.0  # Mpc/h, the Quijote box


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A validated halo catalogue.

    Attributes:
        pos: [N, 3] positions in [0, box); vel: [N, 3] velocities; mass: [N] M14 > 0;
        delta: [N] overdensity; box: side of the periodic box; synthetic: made by
        `halos.synthetic` (every output that uses it says so).
    """

    pos: np.ndarray
    vel: np.ndarray
    mass: np.ndarray
    delta: np.ndarray
    box: float
    synthetic: bool = False

    def __len__(self) -> int:
        return len(self.mass)

    def columns(self) -> dict[str, np.ndarray]:
        """{column name: [N] array} in COLUMNS order."""
        cols = np.column_stack([self.pos, self.vel, self.mass, self.delta])
        return {name: cols[:, k] for k, name in enumerate(COLUMNS)}


def from_columns(cols: dict[str, np.ndarray], box: float, synthetic: bool = False, where: str = "catalogue") -> Catalogue:
    """Validate named columns and build a `Catalogue` (InputError naming `where` otherwise)."""
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise InputError(f"{where}: missing columns {' '.join(missing)} (need {' '.join(COLUMNS)})")
    if not (np.isfinite(box) and box > 0):
        raise InputError(f"{where}: box must be a positive number, got {box!r}")
    try:
        data = np.column_stack([np.asarray(cols[c], dtype=np.float64).reshape(-1) for c in COLUMNS])
    except ValueError as exc:
        raise InputError(f"{where}: columns are not numbers of one length ({exc})") from None
    if len(data) < 2:
        raise InputError(f"{where}: needs at least 2 halos, found {len(data)}")
    bad = ~np.isfinite(data)
    if bad.any():
        name = COLUMNS[int(np.argmax(bad.any(axis=0)))]
        raise InputError(f"{where}: {int(bad.any(axis=1).sum())} rows hold NaN or infinite values "
                         f"(first in column {name}, row {int(np.argmax(bad.any(axis=1)))})")
    pos = data[:, :3]
    outside = np.any((pos < 0) | (pos >= box), axis=1)
    if outside.any():
        raise InputError(f"{where}: {int(outside.sum())} halos lie outside the box [0, {box:g}) "
                         f"(first: row {int(np.argmax(outside))}); pass the right --box")
    if np.any(data[:, 6] <= 0):
        raise InputError(f"{where}: {int((data[:, 6] <= 0).sum())} halos have M14 <= 0")
    _, first, counts = np.unique(pos, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        raise InputError(f"{where}: {int((counts - 1).sum())} duplicate halos (same position; "
                         f"first at row {int(first[counts > 1].min())})")
    return Catalogue(data[:, :3].copy(), data[:, 3:6].copy(), data[:, 6].copy(), data[:, 7].copy(),
                     float(box), bool(synthetic))


def load_catalogue(path: str | os.PathLike, box: float | None = None) -> Catalogue:
    """Read and validate a catalogue file (module docstring).

    Args:
        path: .npz, .csv or whitespace text file.
        box: side of the periodic box; None uses the file's "box" (npz) or DEFAULT_BOX.
    Raises:
        InputError: missing or unreadable file, or a catalogue that fails validation.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no catalogue at {path}")
    synthetic, stored_box = False, None
    if path.suffix == ".npz":
        cols = load_npz(path)
        synthetic = bool(cols.pop("synthetic", False))
        stored_box = float(cols.pop("box")) if "box" in cols else None
    else:
        cols = _read_text(path, "," if path.suffix == ".csv" else None)
    box = box if box is not None else (stored_box if stored_box is not None else DEFAULT_BOX)
    return from_columns(cols, box, synthetic, where=str(path))


def _read_text(path: Path, delimiter: str | None) -> dict[str, np.ndarray]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (use .npz for binary catalogues)") from None
    if not lines:
        raise InputError(f"{path}: empty file")
    header = lines[0].lstrip("#").strip()
    names = [n.strip() for n in (header.split(delimiter) if delimiter else header.split())]
    try:
        rows = np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=delimiter, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{path}: unreadable rows ({str(exc).splitlines()[0]})") from None
    if rows.size and rows.shape[1] != len(names):
        raise InputError(f"{path}: the header names {len(names)} columns but rows have {rows.shape[1]}")
    return {name: rows[:, k] if rows.size else np.zeros(0) for k, name in enumerate(names)}


def save_catalogue(path: str | os.PathLike, cat: Catalogue) -> Path:
    """Write `cat` atomically: .npz (with box and synthetic), .csv, or whitespace text."""
    path = Path(path)
    cols = cat.columns()
    if path.suffix == ".npz":
        save_npz(path, {**cols, "box": np.float64(cat.box), "synthetic": np.bool_(cat.synthetic)})
        return path
    delimiter = "," if path.suffix == ".csv" else " "
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack(list(cols.values())), delimiter=delimiter, fmt="%.9g",
               header=delimiter.join(COLUMNS), comments="" if path.suffix == ".csv" else "# ")
    atomic_write_text(path, buf.getvalue())
    return path


def fingerprint(cat: Catalogue) -> str:
    """Hex SHA-256 of a catalogue's values, box and label: what makes two catalogues the same."""
    import hashlib
    digest = hashlib.sha256(np.ascontiguousarray(np.column_stack(list(cat.columns().values()))).tobytes())
    digest.update(f"{cat.box!r} {cat.synthetic}".encode())
    return digest.hexdigest()
