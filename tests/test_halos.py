"""halos: catalogue validation, the periodic graph against brute force, chunked streaming,
the face mask, the synthetic generator and its planted law, and a small end-to-end CLI run."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from halos.catalogue import COLUMNS, from_columns, load_catalogue, save_catalogue
from halos.formulas import PAPER, PAPER_POSITION_STD
from halos.graph import brute_force_graph, build_graph, edges_of, interior
from halos.synthetic import PLANT_CUTOFF, SyntheticConfig, make_catalogue, planted_delta, planted_e, planted_pair
from pipeline import cli
from plumbing.errors import InputError
from plumbing.io import load_json


def _columns(n=20, seed=0, box=100.0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, box, (n, 3))
    cols = np.column_stack([pos, rng.normal(0, 300, (n, 3)), rng.uniform(0.1, 2, n), rng.normal(0, 1, n)])
    return {name: cols[:, k].copy() for k, name in enumerate(COLUMNS)}


@pytest.mark.parametrize("spoil, message", [
    (lambda c: c.pop("M14"), "missing columns M14"),
    (lambda c: c["vx"].__setitem__(3, np.nan), "NaN"),
    (lambda c: c["y"].__setitem__(5, 100.0), "outside the box"),
    (lambda c: c["z"].__setitem__(2, -0.5), "outside the box"),
    (lambda c: [c[k].__setitem__(7, c[k][4]) for k in ("x", "y", "z")], "duplicate halos"),
    (lambda c: c["M14"].__setitem__(0, 0.0), "M14 <= 0"),
])
def test_bad_catalogues_are_one_line_input_errors(spoil, message):
    cols = _columns()
    spoil(cols)
    with pytest.raises(InputError, match=message) as info:
        from_columns(cols, box=100.0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".txt"])
def test_catalogue_round_trips_in_every_format(tmp_path, suffix):
    cat = from_columns(_columns(), box=100.0, synthetic=True)
    back = load_catalogue(save_catalogue(tmp_path / f"c{suffix}", cat), box=100.0)
    np.testing.assert_allclose(back.pos, cat.pos, rtol=1e-8)
    np.testing.assert_allclose(back.delta, cat.delta, rtol=1e-8)
    assert back.synthetic == (suffix == ".npz")      # text formats carry no label


def test_cli_refuses_a_bad_catalogue_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("x,y,z,vx,vy,vz,M14\n1,2,3,0,0,0,1\n4,5,6,0,0,0,1\n")
    code = cli.main(["halos", "--catalogue", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "delta" in err
    assert not (tmp_path / "out").exists()


def _huge_member(path, cols):
    """An .npz whose delta member's header claims 10^12 rows (it holds the real 20)."""
    import io
    import zipfile
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)})
    with zipfile.ZipFile(path, "w") as archive:
        for name, column in cols.items():
            member = io.BytesIO()
            np.save(member, column)
            archive.writestr(f"{name}.npy", header.getvalue() + column.tobytes() if name == "delta"
                             else member.getvalue())


def _npz(**changes):
    def write(path, cols):
        np.savez(path, **{**cols, "box": np.float64(100.0), **changes})
    return write


def _column(name, convert):
    def write(path, cols):
        np.savez(path, **{**cols, name: convert(cols[name])}, box=np.float64(100.0))
    return write


@pytest.mark.parametrize("write, message", [
    (_npz(box=np.array([100.0, 200.0])), "box must be one real number"),
    (_npz(box=np.array("big")), "box must be one real number"),
    (_npz(synthetic=np.array([True, False])), "synthetic must be one true/false value"),
    (_huge_member, r"claims shape \(1000000000000,\)"),
    (_column("delta", lambda c: c + 1j), "column delta must hold real numbers"),    # ran, imaginary parts dropped
    (_column("M14", lambda c: c.astype(str)), "column M14 must hold real numbers"),  # numeric text was read
    (_column("x", lambda c: c > 50), "column x must hold real numbers"),
], ids=["box-array", "box-string", "synthetic-array", "header-1e12-rows", "complex", "text", "bool"])
def test_cli_refuses_a_hostile_npz_catalogue_in_one_line(write, message, tmp_path, capsys):
    path = tmp_path / "cat.npz"
    write(path, _columns())
    code = cli.main(["halos", "--catalogue", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_more_mock_halos_than_memory_holds_before_writing_anything(tmp_path, capsys):
    code = cli.main(["halos", "--n-halos", str(10**12), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "mock halos need about" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("cols, box, synthetic, message", [
    (dict(_columns(), vz=_columns()["vz"].astype(complex)), 100.0, False, "column vz must hold real numbers"),
    (dict(_columns(), vz=_columns()["vz"].astype(object)), 100.0, False, "column vz must hold real numbers"),
    (dict(_columns(), vz=[1.0, [2.0, 3.0]]), 100.0, False, "column vz is not an array of numbers"),
    (dict(_columns(), vz=_columns()["vz"][:-1]), 100.0, False, "columns of different lengths"),
    (_columns(), np.array([100.0, 200.0]), False, "box must be a positive number"),
    (_columns(), "100", False, "box must be a positive number"),
    (_columns(), True, False, "box must be a positive number"),
    (_columns(), 100.0, np.array([True, False]), "synthetic must be true or false"),
])
def test_from_columns_refuses_what_is_not_real_numbers(cols, box, synthetic, message):
    with pytest.raises(InputError, match=message) as info:
        from_columns(cols, box=box, synthetic=synthetic)
    assert "\n" not in str(info.value)


def _sets(graph):
    return [set(graph.senders[graph.indptr[i]:graph.indptr[i + 1]].tolist()) for i in range(graph.n_nodes)]


def test_periodic_graph_matches_brute_force_including_wraparound():
    rng = np.random.default_rng(1)
    box, cutoff = 100.0, 18.0
    pos = rng.uniform(0, box, (300, 3))
    pos[:2] = [[0.5, 50, 50], [99.0, 50, 50]]          # 1.5 apart across the x face
    fast, ref = build_graph(pos, box, cutoff, chunk_size=64), brute_force_graph(pos, box, cutoff)
    np.testing.assert_array_equal(fast.indptr, ref.indptr)
    np.testing.assert_array_equal(fast.senders, ref.senders)
    assert 1 in _sets(fast)[0] and 0 in _sets(fast)[1]
    assert fast.n_edges > 0 and all(i not in s for i, s in enumerate(_sets(fast)))


def test_chunked_streaming_equals_one_chunk_and_edges_of_reads_it():
    pos = np.random.default_rng(2).uniform(0, 200, (500, 3))
    one = build_graph(pos, 200.0, 30.0, chunk_size=500)
    for chunk in (1, 7, 128):
        many = build_graph(pos, 200.0, 30.0, chunk_size=chunk)
        np.testing.assert_array_equal(many.indptr, one.indptr)
        np.testing.assert_array_equal(many.senders, one.senders)
    receivers = np.array([5, 0, 499])
    local, send = edges_of(one, receivers)
    for k, i in enumerate(receivers):
        np.testing.assert_array_equal(send[local == k], one.senders[one.indptr[i]:one.indptr[i + 1]])


def test_face_mask_keeps_exactly_the_halos_a_cutoff_away_from_every_face():
    pos = np.array([[50, 50, 50], [10, 50, 50], [9.99, 50, 50], [50, 90, 50], [50, 90.01, 50], [50, 50, 0]])
    np.testing.assert_array_equal(interior(pos, 100.0, 10.0), [True, True, False, True, False, False])


def test_synthetic_catalogue_is_deterministic_labelled_and_carries_the_planted_law():
    cfg = SyntheticConfig(n_halos=1500, noise=0.0)
    a, b = make_catalogue(cfg), make_catalogue(cfg)
    assert a.synthetic and np.array_equal(a.pos, b.pos) and np.array_equal(a.delta, b.delta)
    assert not np.array_equal(make_catalogue(dataclasses.replace(cfg, catalogue_seed=1)).pos, a.pos)
    graph = build_graph(a.pos, a.box, PLANT_CUTOFF)
    # noiseless δ is the formula written out by hand from brute-force neighbours
    C = PAPER["best_with_mass"][0]
    i = 17
    nb = graph.senders[graph.indptr[i]:graph.indptr[i + 1]]
    d = a.pos[nb] - a.pos[i]
    r = np.linalg.norm(d - a.box * np.round(d / a.box), axis=1) / PAPER_POSITION_STD
    e = np.sum((C[3] + a.mass[nb]) / (C[4] + (C[5] * r) ** C[6]))
    assert a.delta[i] == pytest.approx(C[0] + e / (C[1] + C[2] * a.mass[i]), rel=1e-10)
    assert planted_e(a, graph)[i] == pytest.approx(e, rel=1e-10)
    np.testing.assert_allclose(planted_delta(a, graph), a.delta, rtol=1e-12)
    # the pair term is a step at ~20 Mpc/h: near pairs count, far pairs do not
    near, far = planted_pair(np.array([10.0, 30.0]) / PAPER_POSITION_STD, np.ones(2))
    assert near > 100 * far
    # masses grow with the local density; noise is added with the configured std
    counts = np.diff(graph.indptr)
    assert np.corrcoef(np.log(a.mass), counts)[0, 1] > 0.2
    noisy = make_catalogue(dataclasses.replace(cfg, noise=0.05))
    assert np.std(noisy.delta - a.delta) == pytest.approx(0.05, rel=0.1)


def test_small_end_to_end_cli_run_writes_a_labelled_table_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["halos", "--out", str(out), "--quiet", "--n-halos", "1500", "--epochs", "1", "--steps-per-epoch", "30",
            "--hidden", "16", "--n-hidden-layers", "1", "--msg-dim", "8", "--sr-generations", "3",
            "--sr-population-size", "20", "--sr-edges", "300", "--sr-nodes", "200", "--refit-halos", "200",
            "--eval-halos", "200", "--sr-max-time", "20", "--no-face-mask"]
    assert cli.main(args) == 0
    table = (out / "distill" / "table.md").read_text()
    assert "SYNTHETIC" in table and "best_with_mass" in table and "network" in table
    assert (out / "SYNTHETIC.txt").exists()
    for name in ("catalogue.npz", "graph/graph.json", "train/checkpoint.pt", "distill/halos_distill.json",
                 "timings.json", "config.json"):
        assert (out / name).exists(), name
    timings = load_json(out / "timings.json")                   # one run-folder protocol: a run's shape
    assert set(timings) == {"catalogue", "graph", "train", "distill"} and (out / "versions.json").is_file()
    assert all(set(entry) == {"seconds", "peak_rss_mb"} for entry in timings.values()), timings
    capsys.readouterr()
    assert cli.main(args) == 0                                  # everything done: skipped
    assert "skipped" in capsys.readouterr().out
    assert cli.main(args[:-1] + ["--face-mask"]) == 2           # another config into the same folder


def test_refitting_the_planted_shape_recovers_a_noiseless_planted_catalogue():
    from halos.features import formula_inputs
    from halos.formulas import best_with_mass, refit
    cat = make_catalogue(SyntheticConfig(n_halos=1500, noise=0.0))
    graph = build_graph(cat.pos, cat.box, PLANT_CUTOFF)
    inp = formula_inputs(cat, graph, np.arange(len(cat)), PAPER_POSITION_STD, 1.0, 1.0)
    start = np.array(PAPER["best_with_mass"][0]) * np.array([1.2, 0.8, 1.3, 1.1, 0.9, 1.02, 0.95])
    theta, err = refit(best_with_mass, inp, cat.delta, start)
    assert err < 1e-3 * np.mean(np.abs(cat.delta - np.median(cat.delta)))


def test_cleaning_an_equation_with_symbolic_powers_is_quick_and_keeps_its_values():
    # Operon wrote this for a halo message; sympy's factor ran for minutes on it before
    # distill.candidate.clean left polynomial transforms to rational expressions.
    from distill.candidate import lambdify, make_candidate, parse
    text = ("((-0.00005516) + (0.95116884 * ((0.12935881 ^ ((4.80606079 * r) ^ 6.15790081))"
            " * (0.02223688 + (0.03273665 * M2)))))").replace("^", "**")
    names = ["r", "M1", "M2", "dv"]
    X = np.random.default_rng(0).uniform(0.01, 0.5, (200, 4))
    y = lambdify(parse(text, names), names)(X)
    cand = make_candidate(text, X, y, names)
    np.testing.assert_allclose(lambdify(cand.expr, names)(X), y, rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_default_job_recovers_the_planted_form_and_beats_the_network_out_of_distribution(tmp_path):
    # The default `run.py halos` (about 7 minutes on 2 cores; benchmarks/RESULTS.md).
    assert cli.main(["halos", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    result = load_json(tmp_path / "run" / "distill" / "halos_distill.json")
    assert result["synthetic"] and result["top_share"] > 0.99
    assert result["planted"]["e_r2_distilled"] >= 0.99
    assert result["success"] == {"form_recovered": True, "beats_network_ood": True}
