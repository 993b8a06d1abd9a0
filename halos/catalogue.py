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
     missing columns, unreadable numbers, columns that are not real numbers (complex, text,
     bool, object), NaN or infinite values, positions outside the box, non-positive masses,
     duplicate halos (two rows at the same position), fewer than 2 halos; in an .npz, a "box"
     that is not one real number, a "synthetic" that is not one bool, or a member whose
     header claims more values than the member holds (checked before anything is allocated).
"""
from __future__ import annotations

import hashlib
import io
import numbers
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plumbing.errors import InputError
from plumbing.io import atomic_write_text, load_npz, save_npz

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
    if not (_is_real(box) and np.isfinite(box) and box > 0):
        raise InputError(f"{where}: box must be a positive number, got {_shown(box)}")
    if not isinstance(synthetic, (bool, np.bool_)):
        raise InputError(f"{where}: synthetic must be true or false, got {_shown(synthetic)}")
    arrays = [_column(cols[c], c, where) for c in COLUMNS]
    if len({len(array) for array in arrays}) > 1:
        raise InputError(f"{where}: columns of different lengths "
                         f"({', '.join(f'{c} {len(a)}' for c, a in zip(COLUMNS, arrays))})")
    data = np.column_stack(arrays)
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


def _column(value, name: str, where: str) -> np.ndarray:
    """Column `name` as a flat float64 array; InputError unless it holds real numbers (an
    integer or float dtype: no complex, text, bool or object values, nothing ragged)."""
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise InputError(f"{where}: column {name} is not an array of numbers ({str(exc).splitlines()[0]})") from None
    if array.dtype.kind not in "iuf":
        raise InputError(f"{where}: column {name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64).reshape(-1)


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
        cols = _read_npz(path)
        synthetic = _scalar(cols.pop("synthetic", np.False_), "b", "synthetic", "one true/false value", path)
        stored_box = _scalar(cols.pop("box"), "iuf", "box", "one real number", path) if "box" in cols else None
    else:
        cols = _read_text(path, "," if path.suffix == ".csv" else None)
    box = box if box is not None else (stored_box if stored_box is not None else DEFAULT_BOX)
    return from_columns(cols, box, synthetic, where=str(path))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz (`plumbing.io.load_npz`), read only after every member's header was
    found to describe no more values than the member holds: a header claiming 10^12 rows is
    refused before numpy allocates them."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version not in ((1, 0), (2, 0)):
                        raise ValueError(f"member {info.filename}: .npy format {version} is not supported")
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(member)
                    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if claimed > info.file_size - member.tell():
                        raise ValueError(f"member {info.filename} claims shape {shape} ({claimed:,} bytes) but "
                                         f"holds {info.file_size - member.tell():,} bytes")
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"unreadable array file {path}: {str(exc).splitlines()[0]}") from None
    return load_npz(path)


def _scalar(value: np.ndarray, kinds: str, name: str, what: str, path: Path):
    """The Python value of a single-value array of one of the dtype `kinds`, else InputError."""
    if value.ndim != 0 or value.dtype.kind not in kinds:
        raise InputError(f"{path}: {name} must be {what}, got {_shown(value)}")
    return value.item()


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _shown(value) -> str:
    """`value` in an error message: an array's dtype and shape, else its repr (shortened)."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {list(value.shape)}"
    return repr(value)[:60]


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
    digest = hashlib.sha256(np.ascontiguousarray(np.column_stack(list(cat.columns().values()))).tobytes())
    digest.update(f"{cat.box!r} {cat.synthetic}".encode())
    return digest.hexdigest()
