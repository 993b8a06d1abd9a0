"""`run.py halos`: catalogue (given, or synthetic) -> graph -> train -> distill, in one folder.

    python run.py halos                                   # small SYNTHETIC job, a few minutes
    python run.py halos --catalogue halos.npz --box 1000 --preset paper --out runs/quijote

In:  the flags below (every `HaloConfig` field, every `SyntheticConfig` field).
Out: OUT/config.json (both configs, the catalogue path), OUT/catalogue.npz (synthetic only),
     OUT/graph/ (indptr.npy, senders.npy, graph.json), OUT/train/ (`halos.train`),
     OUT/distill/ (`halos.distill`), OUT/timings.json (seconds and peak RSS after each
     stage), and for a synthetic catalogue OUT/SYNTHETIC.txt. A finished stage is skipped on
     a re-run, an interrupted training resumes, and a folder made with another config or
     catalogue is refused, and so is an existing OUT that this project did not make
     (`plumbing.rundir.check_ours`). Bad input: `InputError`, which run.py prints as one line (exit 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from pathlib import Path

import numpy as np

from plumbing import rundir
from plumbing.errors import InputError
from plumbing.io import load_json, save_json, save_npy, to_jsonable
from plumbing.resources import available_memory

from .catalogue import Catalogue, fingerprint, load_catalogue, save_catalogue
from .config import PRESETS, HaloConfig, preset
from .graph import HaloGraph, build_graph
from .synthetic import SyntheticConfig, make_catalogue

# A halos run folder from before folders carried the ownership marker (`plumbing.rundir.Layout`).
# Peak memory per mock halo: 200,000 halos (26.6M edges) peaked at 1.1 GB (benchmarks/RESULTS.md,
# "Dark-matter halos"), ~5.5 kB a halo; rounded up.
BYTES_PER_HALO = 6_000
LAYOUT = rundir.Layout(("config.json",), ("catalogue.npz", "SYNTHETIC.txt", "graph", "train", "distill",
                                          "timings.json"))
SYNTHETIC_NOTE = ("This run used a SYNTHETIC halo catalogue (halos.synthetic): clustered mock positions and\n"
                  "masses with delta planted from the paper's 'best, with mass' formula plus noise.\n"
                  "Nothing in this folder is a cosmology result.\n")


# HaloConfig's SR fields take the flag names that `run.py distill` gives the same settings
# (--generations, not --sr-generations; the old spellings stay accepted, unlisted).
FLAG_NAMES = {"sr_edges": "n_edges", "sr_nodes": "n_nodes", "sr_generations": "generations",
              "sr_population_size": "population_size", "sr_max_time": "max_time", "sr_max_length": "max_length",
              "sr_operators": "operators", "sr_threads": "n_threads"}


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the `halos` subcommand to run.py's subparsers."""
    from runconfig import add_config_flags, add_threads_flag, common_group, short_usage
    p = sub.add_parser("halos", help="dark-matter halo overdensity: train and distill a GN on a halo catalogue",
                       description=__doc__.split("\n\n")[0])
    common = common_group(p)
    common.add_argument("--catalogue", metavar="FILE", help="halo catalogue (.npz, .csv or text; columns x y z vx "
                                                            "vy vz M14 delta); default: a synthetic one")
    common.add_argument("--out", default="runs/halos", metavar="DIR", help="run folder (default: runs/halos)")
    common.add_argument("--preset", default="small", choices=PRESETS, metavar="PRESET",
                        help=f"starting values: {', '.join(PRESETS)} (default: small)")
    add_config_flags(p, [HaloConfig, SyntheticConfig], common, FLAG_NAMES)
    add_threads_flag(common)
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    p.usage = short_usage(common)
    return p


def _with_flags(cfg, values: dict):
    return dataclasses.replace(cfg, **{f.name: values[f.name] for f in dataclasses.fields(cfg) if f.name in values})


def run_halos(args: argparse.Namespace) -> dict:
    """The `halos` subcommand; returns halos_distill.json's contents."""
    from runconfig import with_sr_threads
    values = with_sr_threads(vars(args), "sr_threads")
    cfg = _with_flags(preset(args.preset), values)
    if args.catalogue:
        given = sorted(f.name for f in dataclasses.fields(SyntheticConfig) if f.name in values and f.name != "box")
        if given:
            raise InputError(f"--{given[0].replace('_', '-')} describes a synthetic catalogue; drop it or --catalogue")
        synthetic = None
        cat = load_catalogue(args.catalogue, values.get("box"))
    else:
        synthetic = _with_flags(SyntheticConfig(), values)
        _check_memory(synthetic.n_halos)
    out = rundir.output_path(args.out)
    with rundir.locked(out, layout=LAYOUT):
        wanted = {"halos": to_jsonable(cfg), "synthetic": to_jsonable(synthetic),
                  "catalogue": str(Path(args.catalogue).resolve()) if args.catalogue else None}
        if (out / "config.json").exists():
            rundir.check_record(load_json(out / "config.json"), wanted, out)
        else:
            save_json(out / "config.json", wanted)
        timings = load_json(out / "timings.json") if (out / "timings.json").exists() else {}
        if synthetic is not None:
            cat = _synthetic(out, synthetic, timings)
        graph = _timed(timings, out, "graph", lambda: _graph(out / "graph", cat, cfg))
        print(f"[halos] {len(cat)} halos{' (SYNTHETIC)' if cat.synthetic else ''}, box {cat.box:.4g} Mpc/h, "
              f"{graph.n_edges} edges ({graph.n_edges / len(cat):.1f} per halo)")
        trained = _timed(timings, out, "train", lambda: _train(out / "train", cat, graph, cfg, not args.quiet))
        result = _timed(timings, out, "distill", lambda: _distill(out / "distill", cat, graph, trained, cfg, synthetic))
    print("\n".join(summary_lines(result, out / "distill" / "table.md")))
    return result


def summary_lines(result: dict, table: Path) -> list[str]:
    """A few readable lines, as run.py's other commands print: the distilled equations, the
    verdicts on a synthetic catalogue, mean |δ - δ̂| of the network and of the distilled
    formula per set of halos, and where the table of every formula is."""
    source = "a SYNTHETIC catalogue" if result["synthetic"] else "a catalogue"
    lines = [f"Distilled halo GN on {source} ({result['n_halos']} halos):",
             f"  edge e = {result['edge']['equation']}  [complexity {result['edge']['complexity']}]",
             f"  node δ̂ = {result['node']['equation']}  [complexity {result['node']['complexity']}]"]
    mae = {row["formula"]: row["mae"] for row in result["table"]}
    if "success" in result:
        found, beats = result["success"]["form_recovered"], result["success"]["beats_network_ood"]
        lines.append(f"  planted form {'FOUND' if found else 'not found'} "
                     f"(R² {result['planted']['e_r2_distilled']:.4f}); "
                     f"the formula {'beats' if beats else 'does not beat'} the network out of distribution")
    sets = ", ".join(f"{s} {mae['network'][s]:.4g} vs {mae['distilled'][s]:.4g}" for s in mae["network"])
    return lines + [f"  mean |δ - δ̂|, network vs formula: {sets}", f"  every formula: {table}"]


def _timed(timings: dict, out: Path, name: str, stage):
    start = time.perf_counter()
    value = stage()
    timings[name] = {"seconds": round(time.perf_counter() - start, 2),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    save_json(out / "timings.json", timings)
    return value


def _check_memory(n_halos: int) -> None:
    """InputError, before anything is written, when n_halos mock halos would not fit in the
    memory this process may use (`plumbing.resources.available_memory`) at BYTES_PER_HALO."""
    need, have = n_halos * BYTES_PER_HALO, available_memory()
    if have is not None and need > have:
        raise InputError(f"{n_halos} mock halos need about {need / 2**30:.3g} GiB (graph, training and "
                         f"distillation), more than the {have / 2**30:.3g} GiB available; use fewer --n-halos")


def _synthetic(out: Path, synthetic: SyntheticConfig, timings: dict) -> Catalogue:
    path = out / "catalogue.npz"
    if path.exists():
        return load_catalogue(path)
    cat = _timed(timings, out, "catalogue", lambda: make_catalogue(synthetic))
    (out / "SYNTHETIC.txt").write_text(SYNTHETIC_NOTE)
    save_catalogue(path, cat)
    return cat


def _graph(folder: Path, cat: Catalogue, cfg: HaloConfig) -> HaloGraph:
    wanted = {"cutoff": cfg.cutoff, "box": cat.box, "catalogue": fingerprint(cat), "synthetic": cat.synthetic}
    if (folder / "graph.json").exists():
        held = load_json(folder / "graph.json")
        if {k: held.get(k) for k in wanted} == wanted:
            return HaloGraph(np.load(folder / "indptr.npy"), np.load(folder / "senders.npy"), cat.box, cfg.cutoff)
    start = time.perf_counter()
    graph = build_graph(cat.pos, cat.box, cfg.cutoff, cfg.chunk_size)
    save_npy(folder / "indptr.npy", graph.indptr)
    save_npy(folder / "senders.npy", graph.senders)
    save_json(folder / "graph.json", {**wanted, "n_nodes": graph.n_nodes, "n_edges": graph.n_edges,
                                      "seconds": time.perf_counter() - start})
    return graph


def _train(folder: Path, cat, graph, cfg: HaloConfig, progress: bool):
    from .train import load_trained, train_halos
    if (folder / "metrics.json").exists():       # config.json already matched this config
        print(f"[halos] {folder}: trained already, skipped")
        return load_trained(folder, cat)
    return train_halos(cat, graph, cfg, folder, progress=progress)


def _distill(folder: Path, cat, graph, trained, cfg: HaloConfig, synthetic):
    from .distill import distill_halos
    if (folder / "halos_distill.json").exists():
        print(f"[halos] {folder}: distilled already, skipped")
        return load_json(folder / "halos_distill.json")
    return distill_halos(cat, graph, trained, cfg, folder, synthetic)
