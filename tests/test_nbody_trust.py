"""Untrusted input on the nbody side: law text never runs code, a stored dataset is data,
and every refusal is a one-line InputError that leaves nothing behind (issue 9)."""
import ast
import dataclasses
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import sympy as sp

from nbody import laws
from nbody.config import SimConfig
from nbody.dataset import generate_dataset, load_dataset
from nbody.expr import M1, M2, MAX_NODES, Q1, Q2, R
from nbody.laws import Law, get_law, law_from_dict, parse_expression, register_law
from nbody.resources import estimate
from plumbing.errors import InputError
from plumbing.io import atomic_write_bytes, config_from_dict, remove_stale_temps, save_json
from plumbing.progress import LineProgress, progress_bar

TINY = dict(law="spring", n=4, dim=2, n_sims=10, n_test_sims=4, nt=30, keep_every=3, integrator="cpu")


def _refused(call, *args, match=None, **kwargs) -> str:
    """Run call(*args, **kwargs); it must raise a one-line InputError. Returns the message."""
    with pytest.raises(InputError, match=match) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message and "\r" not in message and len(message) < 500
    return message


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(proc.stdout)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_dataset(SimConfig(**TINY), tmp_path_factory.mktemp("trust") / "tiny", progress=False)


def _copy_with_meta(tiny, dest, **changes):
    shutil.copytree(tiny, dest)
    meta = json.loads((dest / "meta.json").read_text())
    meta.update(changes)
    (dest / "meta.json").write_text(json.dumps(meta))
    return dest


# --------------------------------------------------------------------------- #
# Law expressions                                                              #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("field", ["potential", "force"])
def test_code_in_a_law_never_runs(tmp_path, field):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    message = _refused(Law, "evil", **{field: payload})
    assert "not allowed" in message
    _refused(parse_expression, payload)
    _refused(parse_expression, lambda *symbols: payload)      # a callable's text is parsed safely too
    assert not marker.exists()


def test_a_tower_of_powers_is_refused_at_once():
    start = time.perf_counter()
    _refused(Law, "tower", potential="r + 9**9**9**9", match="exponent")
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text, why", [
    ("1/0", "not finite"),
    ("r + log(0)", "not finite"),
    ("lambda: 1", "lambda"),
    ("__import__", "unknown name"),
    ("__import__('os')", "calling '__import__'"),
    ("r.real", "attribute"),
    ("r.conjugate()", "method"),
    ("'r'", "str literal"),
    ("r[0]", "subscript"),
    ("exp(x=r)", "keyword"),
    ("exp(r, r)", "one argument"),
    ("eval(r)", "calling 'eval'"),
    ("[r for r in (1, 2)]", "comprehension"),
    ("r if r else 1", "if/else"),
    ("r < 2", "comparison"),
    ("True", "True/False"),
    ("r * z", "unknown name 'z'"),
    ("exp", "must be called"),
    ("1e999 * r", "not finite"),
    ("1e16 * r", "exceeds"),
    ("r**65", "exponent"),
    ("(1e15**20)**20 * r", "constant power"),
    ("1j * r", "complex"),
    ("r +* 2", "does not parse"),
    ("r\x00", "does not parse"),
    ("r" * 2001, "characters"),
    ("-" * 400 + "r", "syntax nodes"),
    ("Piecewise((r, r < 1 < 2), (0, True))", "condition"),
    ("Piecewise(r)", "pair"),
])
def test_anything_outside_the_whitelist_is_refused(text, why):
    assert why in _refused(parse_expression, text, "potential")


@pytest.mark.parametrize("kwargs, why", [
    (dict(potential="5"), "identically zero"),
    (dict(potential="sin(r)**2 + cos(r)**2"), "identically zero"),
    (dict(force="0"), "identically zero"),
    (dict(force="q1 / r"), "symmetric"),
    (dict(force="(-8)**(1/3) * r"), "not real"),
])
def test_laws_that_cannot_be_simulated_are_refused(kwargs, why):
    assert why in _refused(Law, "bad", **kwargs)


def test_built_in_laws_parse_to_the_expected_sympy():
    expected = {
        "spring": (R - 1) ** 2,
        "r1": M1 * M2 * sp.log(R),
        "r2": -M1 * M2 / R,
        "charge": Q1 * Q2 / R,
        "superposition": Q1 * Q2 / R - M1 * M2 / R,
        "damped": (R - 1) ** 2,
        "discontinuous": sp.Piecewise((0, R < 2), ((R - 1) ** 2, True)),
        "string": (R - 1) ** 2,
    }
    forces = {"spring": 2 - 2 * R, "r1": -M1 * M2 / R, "r2": -M1 * M2 / R ** 2, "charge": Q1 * Q2 / R ** 2,
              "superposition": (Q1 * Q2 - M1 * M2) / R ** 2, "damped": 2 - 2 * R,
              "discontinuous": sp.Piecewise((0, R < 2), (2 - 2 * R, True)), "string": 2 - 2 * R}
    for name, potential in expected.items():
        law = get_law(name)
        assert parse_expression(law.potential) == potential, name
        assert law.potential_expr == potential, name
        assert sp.simplify(law.force_expr - forces[name]) == 0, name


def test_every_whitelisted_form_parses():
    text = ("+exp(-r) * log(r) * sqrt(r) * abs(r - 1) * Abs(q1*q2) / (m1*m2)**0.5 + sin(r)*cos(r)*tanh(r)"
            " + Heaviside(r - 1) + Piecewise((0, r < 1), (1, r <= 2), (2, r > 3), (3, r >= 4), (4, True))"
            " + pi*E - 2.5e-1*r**-2 + 1/2*r")
    expr = parse_expression(text)
    assert expr.free_symbols == {R, Q1, Q2, M1, M2}
    assert all(expr.has(f) for f in (sp.Heaviside, sp.Piecewise, sp.tanh, sp.Abs, sp.exp, sp.log, sp.pi))


def test_sympy_and_callable_inputs_still_work():
    assert parse_expression(-M1 * M2 / R) == -M1 * M2 / R
    assert parse_expression(lambda r, q1, q2, m1, m2: q1 * q2 / r) == Q1 * Q2 / R
    assert parse_expression(lambda r, q1, q2, m1, m2: "q1*q2/r") == Q1 * Q2 / R
    _refused(parse_expression, sp.Symbol("z") * R)
    _refused(parse_expression, 3.5)


def test_the_user_facing_api_still_registers_a_law():
    law = register_law(Law("test_trust_yukawa", potential="-m1*m2*exp(-r)/r", dt=1e-3))
    assert get_law("test_trust_yukawa") is law
    expected = -M1 * M2 * (1 + R) * sp.exp(-R) / R ** 2
    assert sp.simplify(law.force_expr - expected) == 0
    np.testing.assert_allclose(law.radial_numpy(2.0, 1, 1, 1, 1), -1.5 * math.exp(-2) / 2)


@pytest.mark.parametrize("field", ["potential", "force"])
def test_a_large_whitelisted_law_is_handled_in_seconds(field):
    # Close to the node bound, with powers at the exponent bound, symmetric in 1 <-> 2.
    terms = ["(r + q1 + q2 + m1 + m2)**64", "(r + m1*m2)**63", "exp(-sin(r*q1*q2)/(m1 + m2))",
             "Piecewise((q1*q2*(r - 1)**2, r < 2), (log(r + m1*m2), True))", "sqrt(r + m1 + m2)**-7",
             "tanh(r*q1*q2)**3", "Heaviside(r - m1 - m2)*abs(r - 3)"]
    text = ""
    for k, term in enumerate(terms * 3, 1):
        longer = f"{text} + {k}*{term}" if text else f"{k}*{term}"
        if sum(1 for _ in ast.walk(ast.parse(longer, mode="eval"))) > MAX_NODES:
            break
        text = longer
    assert len(text) > 250
    start = time.perf_counter()
    law = Law("test_trust_large", **{field: text})
    law.radial_numpy(np.linspace(0.1, 3, 5), 1, -1, 1, 2)
    assert time.perf_counter() - start < 3.0


# --------------------------------------------------------------------------- #
# A law read from a dataset is data                                           #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("data, why", [
    ("spring", "JSON object"),
    ({"potential": "r"}, "no name"),
    ({"name": "x", "potential": "r", "code": "1"}, "unknown law fields"),
    ({"name": 5, "potential": "r"}, "law name"),
    ({"name": "x", "potential": 5}, "text"),
    ({"name": "x", "potential": "r", "dt": "0.01"}, "dt"),
    ({"name": "x", "potential": "r", "dt": math.inf}, "dt"),
    ({"name": "x", "potential": "r", "dt": 0}, "positive"),
    ({"name": "x", "potential": "r", "damping": math.nan}, "damping"),
    ({"name": "x", "potential": "r", "gravity": [1]}, "gravity"),
    ({"name": "x", "potential": "r", "default_n": 1.5}, "default_n"),
    ({"name": "x", "potential": "r", "default_n": True}, "default_n"),
    ({"name": "x", "potential": "r", "charges": ["sign"]}, "charges"),
    ({"name": "x", "potential": "r", "topology": None}, "topology"),
    ({"name": "x", "potential": "__import__('os').getcwd()"}, "not allowed"),
])
def test_a_stored_law_is_checked_field_by_field(data, why):
    assert why in _refused(law_from_dict, data)


def test_a_built_in_law_cannot_be_redefined():
    spring = get_law("spring")
    for call in (lambda: register_law(Law("spring", potential="(r - 2)**2"), overwrite=True),
                 lambda: law_from_dict({"name": "spring", "potential": "(r - 2)**2"})):
        assert "built-in" in _refused(call)
    assert get_law("spring") is spring
    assert register_law(Law("spring", potential="(r - 1)**2", dt=1e-2)) is not None    # the same law is fine
    assert law_from_dict(dataclasses.asdict(spring)) is spring


def test_a_payload_in_meta_json_is_refused_without_running(tiny, tmp_path):
    marker = tmp_path / "pwned"
    payload = {"name": "evil", "potential": f"__import__('os').system('touch {marker}')"}
    data = _copy_with_meta(tiny, tmp_path / "evil", law=payload)
    assert "meta.json" in _refused(load_dataset, data)
    assert not marker.exists() and "evil" not in laws.law_names()
    respring = _copy_with_meta(tiny, tmp_path / "respring", law={"name": "spring", "potential": "(r - 3)**2"})
    assert "built-in" in _refused(load_dataset, respring)


@pytest.mark.parametrize("key, value", [
    ("n", "four"), ("n", 1), ("dim", None), ("dim", 2.0), ("splits", []), ("splits", {}),
    ("splits", {"train": {"n_sims": "9", "n_steps": 10}}), ("splits", {"other": {}}), ("law", "spring"),
    ("config", []), ("n", 5),
])
def test_malformed_meta_fields_are_one_line_errors(tiny, tmp_path, key, value):
    _refused(load_dataset, _copy_with_meta(tiny, tmp_path / "bad", **{key: value}))


@pytest.mark.parametrize("key, value", [
    ("n_sims", "ten"), ("dt", "fast"), ("softening", None), ("official_quirks", "yes"), ("law", "nope"),
    ("law", 3), ("operators", 1), ("seed", 1.5), ("keep_every", True),
])
def test_malformed_stored_config_is_refused(tiny, tmp_path, key, value):
    meta = json.loads((tiny / "meta.json").read_text())
    _refused(load_dataset, _copy_with_meta(tiny, tmp_path / "bad", config={**meta["config"], key: value}))


@pytest.mark.parametrize("name", ["train_states", "val_accel"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_is_refused_at_load(tiny, tmp_path, name, bad):
    data = tmp_path / "damaged"
    shutil.copytree(tiny, data)
    array = np.load(data / f"{name}.npy")
    array[0, 1, 2, 0] = bad
    np.save(data / f"{name}.npy", array)
    assert f"{name}.npy" in _refused(load_dataset, data, match="NaN or infinite")


def test_damaged_files_are_one_line_errors(tiny, tmp_path):
    data = tmp_path / "damaged"
    shutil.copytree(tiny, data)
    np.save(data / "test_accel.npy", np.load(data / "test_accel.npy").astype(np.float64))
    assert "float64" in _refused(load_dataset, data)
    shutil.copy(tiny / "test_accel.npy", data / "test_accel.npy")
    (data / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "corrupt JSON" in _refused(load_dataset, data)
    (data / "meta.json").write_text('{"format_version": 1' + "0" * 5000 + "}")
    assert "corrupt JSON" in _refused(load_dataset, data)


# --------------------------------------------------------------------------- #
# Configs                                                                      #
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("field", ["dt", "softening", "rtol", "atol", "val_fraction", "test_fraction",
                                   "prune_percentile", "max_failed_fraction"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_sim_config_refuses_non_finite_numbers(field, value):
    assert field in _refused(SimConfig, **{field: value})


@pytest.mark.parametrize("kwargs", [dict(n_sims="4"), dict(n=4.0), dict(n=True), dict(official_quirks="yes"),
                                    dict(law=3), dict(dim="2"), dict(max_failed_fraction=1.5), dict(seed=-1),
                                    dict(max_substeps=0), dict(softening="0.01")])
def test_sim_config_refuses_wrong_types_and_ranges(kwargs):
    _refused(SimConfig, **kwargs)


def test_config_from_dict_checks_types():
    assert config_from_dict(SimConfig, {"n_sims": 5, "dt": 1}) == SimConfig(n_sims=5, dt=1.0)
    assert "n_sims" in _refused(config_from_dict, SimConfig, {"n_sims": "5"})
    _refused(config_from_dict, SimConfig, {"n": [4]})


# --------------------------------------------------------------------------- #
# Generation: failures, sizes, permissions, temporaries                       #
# --------------------------------------------------------------------------- #

def test_mostly_failing_simulations_are_reported_and_refused(tmp_path, capsys):
    register_law(Law("test_trust_sqrt", force="sqrt(r - 1)"), overwrite=True)
    cfg = dict(law="test_trust_sqrt", n_sims=40, n_test_sims=4, nt=10, integrator="reference")
    message = _refused(generate_dataset, SimConfig(**cfg), tmp_path / "d", progress=False,
                       match="max_failed_fraction")
    assert "simulations failed" in message
    assert list(tmp_path.iterdir()) == []
    assert "simulations failed (" in capsys.readouterr().out
    path = generate_dataset(SimConfig(**cfg, max_failed_fraction=1.0), tmp_path / "kept", progress=False)
    meta = load_dataset(path).meta
    assert 0 < meta["failed_sims"] < 44 and f"{meta['failed_sims']} of 44 simulations failed" in \
        capsys.readouterr().out


def test_no_failure_line_when_nothing_failed(capsys, tmp_path):
    generate_dataset(SimConfig(**{**TINY, "seed": 3}), tmp_path / "ok", progress=False)
    assert "failed" not in capsys.readouterr().out


@pytest.mark.parametrize("kwargs", [dict(n=100000), dict(n_sims=10 ** 9), dict(nt=10 ** 9, keep_every=1)])
def test_absurd_sizes_are_refused_before_allocating(tmp_path, kwargs):
    start = time.perf_counter()
    assert "GiB" in _refused(generate_dataset, SimConfig(**kwargs), tmp_path / "d", progress=False)
    assert time.perf_counter() - start < 2.0
    assert list(tmp_path.iterdir()) == []


def test_memory_and_disk_limits_are_checked(tmp_path, monkeypatch):
    from nbody import resources
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    assert "memory" in _refused(generate_dataset, SimConfig(**TINY), tmp_path / "d", progress=False)
    monkeypatch.setattr(resources, "available_memory", lambda: None)
    monkeypatch.setattr(resources, "free_disk", lambda path: 1000)
    assert "disk" in _refused(generate_dataset, SimConfig(**TINY), tmp_path / "d", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_size_estimate_covers_the_written_dataset(tiny):
    written = sum(f.stat().st_size for f in tiny.glob("*.npy"))
    disk = estimate(SimConfig(**TINY)).disk
    assert written <= disk <= 3 * written


def test_outputs_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = generate_dataset(SimConfig(**TINY), tmp_path / "d", progress=False)
        save_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o750
    for f in [*path.iterdir(), tmp_path / "x.json"]:
        assert f.stat().st_mode & 0o777 == 0o640, f


def test_json_is_strict(tmp_path):
    values = {"a": math.nan, "b": np.float32("inf"), "c": np.array([1.0, -np.inf]), "d": [math.inf], "e": 1.5}
    save_json(tmp_path / "x.json", values)
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text

    def strict(name):
        raise AssertionError(name)
    assert json.loads(text, parse_constant=strict) == {"a": None, "b": None, "c": [1.0, None], "d": [None],
                                                       "e": 1.5}


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    for name in (f".d.{dead}.abc.tmp", f".d.{live}.abc.tmp", f".e.{dead}.abc.tmp", f".d.e.{dead}.xyz.tmp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train_states.npy").write_bytes(b"half")
    (tmp_path / f".last.pt.{dead}.q1w2.tmp").write_bytes(b"half")
    (tmp_path / "keep.tmp").write_bytes(b"mine")
    assert [p.name for p in remove_stale_temps(tmp_path, "d")] == [f".d.{dead}.abc.tmp"]
    removed = {p.name for p in remove_stale_temps(tmp_path)}
    assert removed == {f".e.{dead}.abc.tmp", f".d.e.{dead}.xyz.tmp", f".last.pt.{dead}.q1w2.tmp"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".d.{live}.abc.tmp", "keep.tmp"]


def test_generate_removes_its_outputs_stale_temporaries(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".d.{dead}.abc.tmp").mkdir()
    (tmp_path / f".other.{dead}.abc.tmp").mkdir()
    generate_dataset(SimConfig(**TINY), tmp_path / "d", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".other.{dead}.abc.tmp", "d"]


def test_temporary_names_carry_the_pid(tmp_path, monkeypatch):
    seen = []

    def fail(src, dst):
        seen.append(os.path.basename(src))
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "last.pt", b"x")
    assert seen[0].startswith(f".last.pt.{os.getpid()}.") and seen[0].endswith(".tmp")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# Progress bars                                                                #
# --------------------------------------------------------------------------- #

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_is_tqdm():
    from tqdm import tqdm
    bar = progress_bar(10, "x", stream=_Terminal())
    assert isinstance(bar, tqdm)
    bar.close()
    silent = _Terminal()
    quiet = progress_bar(10, "x", enabled=False, initial=2, stream=silent)
    quiet.update(3)
    quiet.set_postfix(loss=1)
    quiet.close()
    assert quiet.n == 5 and silent.getvalue() == ""


def test_progress_in_a_log_is_plain_bounded_lines():
    out = io.StringIO()
    with progress_bar(1000, "train l1", initial=100, unit="step", stream=out) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(900):
            bar.set_postfix(loss=f"{0.5:.3g}", lr="1e-3")
            bar.update(1)
        assert bar.n == 1000
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 1
    assert lines[0].startswith("train l1: 100% 1000/1000 [") and lines[0].endswith("step/s] loss=0.5, lr=1e-3")
    every = io.StringIO()
    bar = progress_bar(5, "sim", stream=every, interval=0)
    for _ in range(5):
        bar.update()
    bar.set_postfix_str("done")
    bar.close()
    bar.close()
    lines = every.getvalue().splitlines()
    assert len(lines) == 6 and lines[0].startswith("sim: 20% 1/5") and lines[-1].endswith("done")


def test_generation_progress_in_a_log_has_no_carriage_returns(tmp_path, capsys):
    generate_dataset(SimConfig(**TINY), tmp_path / "d", progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") <= 3 and "simulate spring: 100%" in err
