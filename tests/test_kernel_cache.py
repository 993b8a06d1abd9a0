"""The kernels' disk cache (`nbody.kernel_build`): where it lives, compile once, robustness,
and trust (nothing planted in the cache runs).

Each check runs the CPU kernel in fresh processes against its own cache folder and reads
Numba's own counters (`dispatcher.stats.cache_hits` / `cache_misses`), so nothing is timed.
The processes of this module keep the cache's signing key in a temporary folder.
"""
import importlib.util
import json
import os
import pickle
import py_compile
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbody import kernel_build, kernels_cpu, kernels_cuda
from nbody.laws import Law, get_law

ROOT = Path(__file__).resolve().parents[1]

# Integrates two systems of a law, prints Numba's cache counters and a checksum of the result.
_RUN = """
import json, sys
import numpy as np
from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate
from nbody.kernel_build import load_kernel
from nbody.kernels_cpu import TARGET
from nbody.laws import Law, register_law
law = register_law(Law("cachetest", potential=sys.argv[1], dt=1e-2))
ics = initial_conditions(law, 3, 2, 2, np.random.default_rng(0))
result = integrate(SimConfig(law="cachetest", n=3, dim=2, nt=5, integrator="cpu"), *ics)
stats = load_kernel(law, 2, TARGET).stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
                  "sum": float(np.nansum(result.pos)), "failed": int(result.failed.sum())}))
"""


@pytest.fixture(scope="module", autouse=True)
def _key_folder(tmp_path_factory):
    """XDG_DATA_HOME, where the key signing the cache lives, in a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
        yield


def _env(cache: Path) -> dict:
    env = {**os.environ, "SYMDISTILL_CACHE_DIR": str(cache)}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return env


def _start(cache: Path, potential: str = "(r - 1)**2 + 0.1*r") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUN, potential], env=_env(cache), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _run(cache: Path, potential: str = "(r - 1)**2 + 0.1*r") -> dict:
    return _finish(_start(cache, potential))


def test_cache_folder_follows_the_platform_convention(monkeypatch, tmp_path):
    monkeypatch.delenv(kernel_build.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert kernel_build.cache_dir() == Path.home() / ".cache" / "symdistill"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert kernel_build.cache_dir() == Path.home() / ".cache" / "symdistill"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel_build.cache_dir() == tmp_path / "xdg" / "symdistill"
    monkeypatch.setenv(kernel_build.CACHE_ENV, str(tmp_path / "mine"))
    assert kernel_build.kernel_dir() == tmp_path / "mine" / "kernels"


def test_module_name_hashes_the_law_dim_and_target():
    spring, r2 = get_law("spring"), get_law("r2")
    names = {kernel_build.module_name(law, dim, target, kernel_build.kernel_source(law, dim, target))
             for law in (spring, r2) for dim in (2, 3) for target in (kernels_cpu.TARGET, kernels_cuda.TARGET)}
    assert len(names) == 8
    again = kernel_build.kernel_source(spring, 2, kernels_cpu.TARGET)
    assert again == kernel_build.kernel_source(spring, 2, kernels_cpu.TARGET)


def test_the_module_holds_sympy_printed_code_not_the_users_text():
    law = Law("printed", potential="-m1*m2*exp(-r)/r", dt=1e-3)
    source = kernel_build.kernel_source(law, 2, kernels_cpu.TARGET)
    assert law.radial_code in source and "math.exp" in source
    assert law.potential not in source


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache folder in which one process compiled the test law: (folder, its result)."""
    folder = tmp_path_factory.mktemp("warm")
    return folder, _run(folder)


def _copy(warm, tmp_path) -> Path:
    """A private copy of the warm cache (copytree keeps the modification times Numba checks)."""
    return Path(shutil.copytree(warm[0], tmp_path / "cache"))


def test_a_second_process_loads_the_kernel_instead_of_compiling(warm):
    folder, first = warm
    second = _run(folder)
    assert (first["misses"], first["hits"]) == (1, 0)
    assert (second["misses"], second["hits"]) == (0, 1)
    assert second["sum"] == first["sum"] and first["failed"] == 0
    assert len(list((folder / "kernels").glob("symdistill_cpu_cachetest_2d_*.py"))) == 1


def test_two_processes_compiling_the_same_law_at_once(tmp_path):
    both = [_start(tmp_path), _start(tmp_path)]
    results = [_finish(proc) for proc in both]
    assert results[0]["sum"] == results[1]["sum"]
    assert _run(tmp_path)["hits"] == 1                       # what they left is a valid cache
    assert not list((tmp_path / "kernels").glob(".*.tmp"))    # and no temporaries


def test_a_damaged_cache_is_rebuilt(warm, tmp_path):
    folder = _copy(warm, tmp_path)
    compiled = list((folder / "kernels" / "__pycache__").glob("symdistill_cpu_cachetest_*.nb*"))
    assert compiled
    for path in compiled:
        path.write_bytes(b"\x80\x04 not a pickle")
    module, = (folder / "kernels").glob("symdistill_cpu_cachetest_*.py")
    module.write_text(module.read_text()[:100])               # and a truncated module file
    rebuilt = _run(folder)
    assert rebuilt["sum"] == warm[1]["sum"] and rebuilt["misses"] == 1
    assert _run(folder)["hits"] == 1


def test_a_damaged_index_alone_is_rebuilt(warm, tmp_path):
    folder = _copy(warm, tmp_path)
    index, = (folder / "kernels" / "__pycache__").glob("symdistill_cpu_cachetest_*.nbi")
    index.write_bytes(index.read_bytes()[:20])
    assert _run(folder)["sum"] == warm[1]["sum"]
    assert _run(folder)["hits"] == 1


def test_another_law_gets_its_own_kernel(warm, tmp_path):
    folder = _copy(warm, tmp_path)
    other = _run(folder, "(r - 2)**2")
    assert other["misses"] == 1 and other["sum"] != warm[1]["sum"]
    assert len(list((folder / "kernels").glob("symdistill_cpu_cachetest_2d_*.py"))) == 2


def test_an_unwritable_cache_folder_still_integrates(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = subprocess.run([sys.executable, "-c", _RUN, "(r - 1)**2"], env=_env(blocker), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cannot use the kernel cache" in proc.stderr
    assert np.isfinite(json.loads(proc.stdout.strip().splitlines()[-1])["sum"])


@pytest.mark.parametrize("n", [300, 1000])
def test_large_n_uses_the_same_kernel(n, warm):
    """The pair loop runs at run time: n = 300 and 1000 load the n = 3 kernel (a cache hit)."""
    script = _RUN.replace("initial_conditions(law, 3, 2, 2,", f"initial_conditions(law, {n}, 2, 1,") \
                 .replace("n=3, dim=2, nt=5", f"n={n}, dim=2, nt=2, dt=1e-5")
    proc = subprocess.run([sys.executable, "-c", script, "(r - 1)**2 + 0.1*r"], env=_env(warm[0]), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["hits"] == 1 and result["misses"] == 0 and result["failed"] == 0


def test_integrating_leaves_torchs_thread_count_alone(warm):
    """Numba's OpenMP threading layer, once started, sets the process's OpenMP thread count,
    which torch shares: a training after a simulation in one process (`run.py all` under
    OMP_NUM_THREADS=1) would then run on NUMBA_NUM_THREADS threads. The kernel never starts it."""
    script = "import torch\n" + _RUN + "print(json.dumps(torch.get_num_threads()))\n"
    proc = subprocess.run([sys.executable, "-c", script, "(r - 1)**2 + 0.1*r"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600,
                          env={**_env(warm[0]), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == 1


_HITS = """
import json
import numpy as np
from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate
from nbody.kernel_build import load_kernel
from nbody.kernels_cpu import TARGET
from nbody.laws import get_law
law = get_law("r1")
integrate(SimConfig(law="r1", dim=2, n_sims=2, nt=3, integrator="cpu"), *initial_conditions(law, 4, 2, 2, np.random.default_rng(1)))
stats = load_kernel(law, 2, TARGET).stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def test_warm_command_fills_the_cache_a_later_process_reads(tmp_path):
    env = _env(tmp_path / "cache")
    warm = subprocess.run([sys.executable, "run.py", "warm", "--laws", "r1", "--dims", "2", "--integrator", "cpu",
                           "--workers", "1"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert "[warm] r1 2D" in warm.stdout
    later = subprocess.run([sys.executable, "-c", _HITS], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert later.returncode == 0, later.stderr[-3000:]
    assert json.loads(later.stdout.strip().splitlines()[-1]) == {"hits": 1, "misses": 0}
    refused = subprocess.run([sys.executable, "run.py", "warm", "--laws", "r1,nope"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: unknown law 'nope'; known: charge, damped, discontinuous, r1, r2, spring, string, superposition")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_cache_and_its_key_are_private_and_apart(warm):
    """Folders 0700, key 0600, and the key is not in the cache folder."""
    kernels = warm[0] / "kernels"
    assert _mode(warm[0]) == _mode(kernels) == _mode(kernels / "__pycache__") == 0o700
    key = Path(os.environ["XDG_DATA_HOME"]) / "symdistill" / "kernel-cache.key"
    assert _mode(key) == 0o600 and key.stat().st_size == kernel_build.KEY_BYTES
    assert kernels not in key.parents


class _Payload:
    """Unpickling it writes `sentinel` (what a planted pickle would do instead)."""

    def __init__(self, sentinel: Path):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return exec, (f"open({self.sentinel!r}, 'w').write('ran')",)


def _plant_bytecode(folder: Path, sentinel: Path) -> None:
    """An unchecked-hash .pyc for the kernel module (Python loads those without reading the
    source) that writes `sentinel`."""
    module, = (folder / "kernels").glob("symdistill_cpu_cachetest_*.py")
    payload = folder / "payload.py"
    payload.write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    py_compile.compile(str(payload), cfile=importlib.util.cache_from_source(str(module)), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def _plant_pickle(suffix: str):
    def plant(folder: Path, sentinel: Path) -> None:
        target, = (folder / "kernels" / "__pycache__").glob(f"symdistill_cpu_cachetest_*{suffix}")
        target.write_bytes(pickle.dumps(_Payload(sentinel)))
    return plant


@pytest.mark.parametrize("plant", [_plant_bytecode, _plant_pickle(".nbi"), _plant_pickle(".1.nbc")],
                         ids=["pyc", "nbi", "nbc"])
def test_code_planted_in_the_cache_never_runs(plant, warm, tmp_path):
    """A .pyc in __pycache__, or a Numba index or data file replaced by a pickle with a
    payload: the payload does not run, the result is right, and the cache is sound after."""
    folder = _copy(warm, tmp_path)
    sentinel = tmp_path / "payload-ran"
    plant(folder, sentinel)
    proc = _start(folder)
    out, err = proc.communicate(timeout=600)
    assert not sentinel.exists()
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["sum"] == warm[1]["sum"]
    assert _run(folder)["hits"] == 1


def test_a_cache_file_signed_under_another_key_is_rebuilt(warm, tmp_path, monkeypatch):
    """The key is what makes a cache file ours: under a new key every file fails and is rebuilt."""
    folder = _copy(warm, tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "other-data"))
    assert _run(folder)["misses"] == 1
    assert _run(folder)["hits"] == 1


def test_a_cache_folder_others_may_write_is_made_private(tmp_path):
    for folder in (tmp_path / "kernels", tmp_path / "kernels" / "__pycache__"):
        folder.mkdir(mode=0o777)
        os.chmod(folder, 0o777)
    kernel_build._private_folder(tmp_path / "kernels" / "__pycache__")
    assert _mode(tmp_path / "kernels" / "__pycache__") == 0o700
    kernel_build._private_folder(tmp_path / "new" / "kernels")
    assert _mode(tmp_path / "new") == _mode(tmp_path / "new" / "kernels") == 0o700


@pytest.mark.parametrize("spoil", [
    lambda key: os.chmod(key, 0o644),                     # readable by others
    lambda key: key.write_bytes(b"short"),                # not a key
    lambda key: (key.unlink(), key.symlink_to(key.parent / "elsewhere")),
])
def test_a_key_that_is_not_private_is_replaced(spoil, tmp_path):
    path = tmp_path / "data" / "symdistill" / "kernel-cache.key"
    first = kernel_build._signing_key(path)
    assert kernel_build._signing_key(path) == first and _mode(path.parent) == 0o700
    spoil(path)
    second = kernel_build._signing_key(path)
    assert second != first and len(second) == kernel_build.KEY_BYTES
    assert not path.is_symlink() and _mode(path) == 0o600


def test_another_users_cache_folder_is_not_used(tmp_path, monkeypatch):
    """A cache folder owned by another user (as this process sees it) is left alone: kernels are
    built in a temporary folder, with a warning."""
    monkeypatch.setenv(kernel_build.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "cache" / "kernels").mkdir(parents=True, mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.warns(UserWarning, match="belongs to another user"):
        path, _ = kernel_build._write_module("symdistill_probe", "X = 1\n")
    assert tmp_path not in path.parents and not list((tmp_path / "cache" / "kernels").iterdir())


def test_a_numba_cache_of_another_layout_is_switched_off_not_read():
    """Signing relies on the methods of Numba's IndexDataCacheFile; a Numba without them gets
    no disk cache (compiled in every process) rather than an unchecked one."""
    class Cache:
        enabled = True
        _cache_file = object()

        def disable(self):
            self.enabled = False

    entry = type("Dispatcher", (), {"_cache": Cache()})()
    with pytest.warns(UserWarning, match="kernel_build can sign"):
        kernel_build._sign_disk_cache(entry, b"k" * kernel_build.KEY_BYTES)
    assert not entry._cache.enabled


def test_a_kernel_module_loaded_again_is_signed_once():
    """A law whose module text is already loaded (the discovered law of a distillation composed
    twice: the same text, a new Law object) reuses its dispatcher; signing it again must not
    stack a second signed class on the first (an MRO error, seen on a residual search)."""
    class Files:
        pass
    for name in kernel_build._NUMBA_CACHE_FILE_API:
        setattr(Files, name, lambda self, *a: None)
    entry = type("Dispatcher", (), {"_cache": type("Cache", (), {"_cache_file": Files()})()})()
    for key in (b"k" * kernel_build.KEY_BYTES, b"j" * kernel_build.KEY_BYTES):
        kernel_build._sign_disk_cache(entry, key)
    files = entry._cache._cache_file
    assert type(files).__mro__.count(kernel_build._SignedCacheFile) == 1 and files._key == b"j" * kernel_build.KEY_BYTES
