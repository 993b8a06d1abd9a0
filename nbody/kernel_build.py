"""Kernels compiled once per machine: generated source in a law-hashed module, Numba's disk cache beside it.

In:  a `Law`, dim (2 or 3) and a `KernelTarget` (how one Numba target compiles: the CPU's
     `nbody.kernels_cpu.TARGET`, the GPU's `nbody.kernels_cuda.TARGET`).
Out: `compiled_kernel(law, dim, target, first_call)`: the target's entry function compiled
     for that law and dim, a Numba dispatcher; a later process loads it from the disk cache
     instead of compiling it again.

The kernel module is plain Python written to `kernel_dir()`: a header binding what the
integrator core reads (`DIM`, the Dormand–Prince constants, and `radial`, the law's force
printed by sympy as `Law.radial_code`), the source of `nbody.integrator_core.CORE_FUNCTIONS`
and of the target's entry, then the lines that compile them (`target.device_jit`, and
`target.entry_jit`, which carries Numba's `cache=True`). Its file name ends in a hash of its
text, so a changed law, integrator or entry gets a new file and never meets a stale cache;
Numba keeps the compiled code in the folder's `__pycache__`.

Cache folder: $SYMDISTILL_CACHE_DIR when set, else $XDG_CACHE_HOME/symdistill (an absolute
XDG_CACHE_HOME), else ~/.cache/symdistill; kernels go to its `kernels/` folder.

Trust: nothing read from the cache runs unless this project wrote it. The module is never
imported from its file: the text generated in this process is compiled and executed, so
no Python bytecode (`__pycache__/*.pyc`) is read or written. Numba's index (`.nbi`) and
machine-code (`.nbc`) files are pickles; each is written with an HMAC-SHA256 tag of its
name and bytes under a 32-byte key kept outside the cache (`key_path()`, mode 0600), and
the bytes read back are unpickled only when their tag verifies: a file that fails is
deleted and the kernel compiled and signed again. The cache and key folders are created
0700; one owned by another user is not used, and one of ours that others may write is
made 0700.

Robustness: a module file is created with a hard link (first writer wins, nobody rewrites
a file another process may be compiling from); a module whose text differs from the
expected one is replaced; and when loading fails, this kernel's cache entries are removed
and it is built again once. Where the cache cannot be written or trusted, kernels are built
in a temporary folder under a key of this process (compiled every time, with a warning).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import io
import os
import pickle
import secrets
import stat
import sys
import tempfile
import textwrap
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import integrator_core
from .laws import Law

APP_NAME = "symdistill"
CACHE_ENV = "SYMDISTILL_CACHE_DIR"
KEY_BYTES = 32


@dataclass(frozen=True)
class KernelTarget:
    """How one Numba target compiles a kernel module.

    Attributes:
        name: "cpu" or "cuda" (part of the module name).
        imports: import lines the module needs (Numba, NumPy, numba.cuda).
        device_jit: expression that compiles a helper, e.g. "numba.njit(error_model='numpy')".
        entry_jit: expression that compiles the entry, with Numba's `cache=True`.
        entry: the entry template, a plain function calling `integrate_one` (its free names
            `integrate_one`, `DIM` and `WORK_ROWS` are bound by the module).
    """

    name: str
    imports: str
    device_jit: str
    entry_jit: str
    entry: Callable


def cache_dir() -> Path:
    """The project's cache folder: $SYMDISTILL_CACHE_DIR, $XDG_CACHE_HOME/symdistill or ~/.cache/symdistill."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / APP_NAME


def kernel_dir() -> Path:
    """Where kernel modules and their compiled code live: `cache_dir()/kernels`."""
    return cache_dir() / "kernels"


def key_path() -> Path:
    """The key that signs the kernel cache, outside it: $XDG_DATA_HOME/symdistill/kernel-cache.key
    (an absolute XDG_DATA_HOME), else ~/.local/share/symdistill/kernel-cache.key."""
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / APP_NAME / "kernel-cache.key"


def kernel_source(law: Law, dim: int, target: KernelTarget) -> str:
    """The text of the kernel module for (law, dim, target); see the module docstring."""
    constants = "\n".join(f"{name} = {getattr(integrator_core, name)!r}" for name in integrator_core.CORE_CONSTANTS)
    functions = [*integrator_core.CORE_FUNCTIONS, target.entry]
    bodies = "\n\n".join(textwrap.dedent(inspect.getsource(f)) for f in functions)
    compiled = "\n".join(f"{f.__name__} = DEVICE_JIT({f.__name__})" for f in integrator_core.CORE_FUNCTIONS)
    return f'''"""Generated by nbody.kernel_build: the DOPRI5 kernel of law {law.name!r}, {dim}D, target {target.name}.

Do not edit: the file name ends in a hash of this text.
"""
import math

{target.imports}

DEVICE_JIT = {target.device_jit}
DIM = {dim}
{constants}


def radial(r, q1, q2, m1, m2):
    return {law.radial_code}


{bodies}


radial = DEVICE_JIT(radial)
{compiled}
ENTRY = {target.entry_jit}({target.entry.__name__})
'''


def module_name(law: Law, dim: int, target: KernelTarget, source: str) -> str:
    """`symdistill_<target>_<law>_<dim>d_<hash>`: unique per module text."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:20]
    return f"{APP_NAME}_{target.name}_{law.name}_{dim}d_{digest}"


def compiled_kernel(law: Law, dim: int, target: KernelTarget, first_call: Callable):
    """The compiled entry of `target` for (law, dim), after `first_call(entry)` succeeded.

    `first_call` triggers the compilation, or the load from the disk cache (the CPU calls the
    entry on zero simulations, CUDA launches its first chunk). If it raises, this kernel's
    cache entries are removed and it is built and called once more: a cache entry that
    cannot be loaded costs one compilation, not a crash (one that fails its signature is
    never loaded: `_SignedCacheFile`). A second failure propagates.
    """
    entry = load_kernel(law, dim, target)
    try:
        first_call(entry)
    except Exception:
        entry = _rebuild_kernel(law, dim, target)
        first_call(entry)
    return entry


@functools.lru_cache(maxsize=None)
def load_kernel(law: Law, dim: int, target: KernelTarget):
    """The entry of `target` for (law, dim), a Numba dispatcher not yet called: its first call
    compiles it or loads it from the signed disk cache (`compiled_kernel` makes that call safely)."""
    name, source, path, key = _kernel_module(law, dim, target)
    entry = _execute(path, name, source).ENTRY
    _sign_disk_cache(entry, key)
    return entry


def _kernel_module(law: Law, dim: int, target: KernelTarget) -> tuple[str, str, Path, bytes]:
    """(module name, its text, the path of its file, written if needed, and the key that signs
    the compiled code beside it) of the kernel for (law, dim, target)."""
    source = kernel_source(law, dim, target)
    name = module_name(law, dim, target, source)
    return (name, source, *_write_module(name, source))


def _rebuild_kernel(law: Law, dim: int, target: KernelTarget):
    """A freshly loaded entry after dropping the kernel's compiled cache entries."""
    name, _, path, _ = _kernel_module(law, dim, target)
    for stale in (path.parent / "__pycache__").glob(f"{name}.*"):
        stale.unlink(missing_ok=True)
    load_kernel.cache_clear()
    sys.modules.pop(name, None)
    return load_kernel(law, dim, target)


class UntrustedCache(OSError):
    """A cache or key folder this process must not use (another user's)."""


def _write_module(name: str, source: str) -> tuple[Path, bytes]:
    """(path of the module file `name`.py holding `source`, created if needed; the key that signs
    the compiled code beside it)."""
    try:
        folder, key = _trusted_store(kernel_dir(), key_path())
        return _publish(folder, name, source), key
    except OSError as exc:
        warnings.warn(f"cannot use the kernel cache at {kernel_dir()} ({exc}); compiling into a temporary "
                      f"folder, for this process only (set {CACHE_ENV} to a writable folder)", stacklevel=4)
        folder, key = _scratch_store()
        return _publish(folder, name, source), key


@functools.lru_cache(maxsize=None)
def _trusted_store(folder: Path, key_file: Path) -> tuple[Path, bytes]:
    """(the cache folder, made private with its `__pycache__`; the signing key, read or created)."""
    _private_folder(folder)
    _private_folder(folder / "__pycache__")
    return folder, _signing_key(key_file)


@functools.lru_cache(maxsize=None)
def _scratch_store() -> tuple[Path, bytes]:
    """A temporary folder (0700) and a key of this process only: the fallback cache."""
    return Path(tempfile.mkdtemp(prefix=f"{APP_NAME}-kernels-")), secrets.token_bytes(KEY_BYTES)


def _private_folder(folder: Path) -> None:
    """Create `folder` and its missing parents 0700; if `folder` is ours but others may write
    it, make it 0700; if it is another user's, or not a folder, raise `UntrustedCache`."""
    for path in reversed([folder, *folder.parents]):
        if not os.path.lexists(path):
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:            # another process made it first
                pass
    info = os.stat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedCache(f"{folder} is not a folder")
    if info.st_uid != os.geteuid():
        raise UntrustedCache(f"{folder} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o022:
        os.chmod(folder, 0o700)


def _signing_key(path: Path) -> bytes:
    """The cache's signing key: KEY_BYTES random bytes in `path`, in a private folder. Created
    when absent; a file that `_read_key` refuses is replaced by a new key (the cache it
    signed is then rebuilt)."""
    _private_folder(path.parent)
    key = _read_key(path)
    if key is None:
        _write_key(path, replace=os.path.lexists(path))
        key = _read_key(path)
    if key is None:
        raise UntrustedCache(f"cannot keep a private key at {path}")
    return key


def _read_key(path: Path) -> bytes | None:
    """The key in `path` if it is a regular file of ours (no symlink), with no permission for
    group or others, KEY_BYTES long; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        key = fh.read(KEY_BYTES + 1)
    return key if len(key) == KEY_BYTES else None


def _write_key(path: Path, replace: bool) -> None:
    """Write a fresh key to `path` atomically (0600): over the file there if `replace`, else
    only if none appeared meanwhile (the first of two processes wins)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _publish(folder: Path, name: str, source: str) -> Path:
    """Create folder/name.py with `source` atomically, never rewriting an intact one."""
    path = folder / f"{name}.py"
    try:
        if path.read_text(encoding="utf-8") == source:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(source)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)                 # atomic create-if-absent: the first writer wins
        except FileExistsError:
            if path.read_text(encoding="utf-8", errors="replace") != source:
                os.replace(tmp, path)          # a damaged file: replace it (Numba sees a new stamp)
        except OSError:
            os.replace(tmp, path)              # a file system without hard links: rename instead
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _execute(path: Path, name: str, source: str):
    """The module `name` made by executing `source`, the text generated in this process, as if
    read from `path` (Numba locates its cache by the file name); never a file's bytecode.
    Registered in sys.modules, as Numba's cache expects."""
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


# What `_SignedCacheFile` overrides and calls of Numba's IndexDataCacheFile (numba.core.caching;
# numba-cuda's copy has the same).
_NUMBA_CACHE_FILE_API = ("_load_index", "_save_index", "_load_data", "_save_data", "_data_path", "_dump",
                         "_open_for_write", "_index_path", "_version", "_source_stamp")


def _sign_disk_cache(entry, key: bytes) -> None:
    """Make the disk cache of the dispatcher `entry` read and write signed files only
    (`_SignedCacheFile`); signing it again only sets the key. A dispatcher without one (the CUDA simulator, NUMBA_DISABLE_JIT) is
    left alone; a Numba whose cache file lacks the expected methods gets its disk cache off."""
    cache = getattr(entry, "_cache", None)
    files = getattr(cache, "_cache_file", None)
    if files is None:
        return
    if isinstance(files, _SignedCacheFile):   # signed already: a module loaded again (same text, new Law object)
        files._key = key
        return
    if not all(hasattr(files, name) for name in _NUMBA_CACHE_FILE_API):
        warnings.warn("this Numba's cache files are not the kind nbody.kernel_build can sign; "
                      "kernels are compiled in every process", stacklevel=3)
        cache.disable()
        return
    files.__class__ = _signed_class(type(files))
    files._key = key


@functools.lru_cache(maxsize=None)
def _signed_class(base: type) -> type:
    return type(f"Signed{base.__name__}", (_SignedCacheFile, base), {})


class _SignedCacheFile:
    """Mixed into Numba's IndexDataCacheFile: its index and data files, pickles, are written as
    tag + bytes, tag = HMAC-SHA256(key, file name + bytes), and read back through `_verified`,
    so only bytes this project signed are ever unpickled. `_key` is set by `_sign_disk_cache`."""

    _key: bytes

    def _load_index(self):
        payload = self._verified(self._index_path)
        if payload is None:
            return {}
        stream = io.BytesIO(payload)
        if pickle.load(stream) != self._version:
            return {}
        stamp, overloads = pickle.load(stream)
        return overloads if stamp == self._source_stamp else {}

    def _save_index(self, overloads):
        payload = pickle.dumps(self._version, protocol=-1) + self._dump((self._source_stamp, overloads))
        self._write_signed(self._index_path, payload)

    def _load_data(self, name):
        payload = self._verified(self._data_path(name))
        return None if payload is None else pickle.loads(payload)

    def _save_data(self, name, data):
        self._write_signed(self._data_path(name), self._dump(data))

    def _tag(self, path: str, payload: bytes) -> bytes:
        return hmac.new(self._key, os.path.basename(path).encode() + b"\0" + payload, hashlib.sha256).digest()

    def _write_signed(self, path: str, payload: bytes) -> None:
        with self._open_for_write(path) as fh:
            fh.write(self._tag(path, payload) + payload)

    def _verified(self, path: str) -> bytes | None:
        """The signed bytes of the file at `path`, or None when it is absent or fails the check
        (then it is deleted, so Numba compiles and writes a signed one)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError:
            blob = b""
        else:
            with os.fdopen(fd, "rb") as fh:
                blob = fh.read() if stat.S_ISREG(os.fstat(fh.fileno()).st_mode) else b""
        size = hashlib.sha256().digest_size
        tag, payload = blob[:size], blob[size:]
        if len(tag) == size and hmac.compare_digest(tag, self._tag(path, payload)):
            return payload
        try:
            os.unlink(path)
        except OSError:
            pass
        return None
