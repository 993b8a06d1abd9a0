"""The halo experiment as a run: catalogue (given, or synthetic) -> graph -> train -> distill,
in one folder, under the run-folder protocol every command uses (`pipeline.runfolder`).

    python run.py halos                                   # small SYNTHETIC job, a few minutes
    python run.py halos --catalogue halos.npz --box 1000 --preset paper --out runs/quijote

In:  a `HaloConfig` (`pipeline.presets.halo_preset`), a catalogue file or a `SyntheticConfig`,
     an output folder.
Out: OUT/config.json ({"halos", "synthetic", "catalogue"}), versions.json, timings.json,
     OUT/catalogue.npz and SYNTHETIC.txt (synthetic only), OUT/graph/ (indptr.npy,
     senders.npy, graph.json), OUT/train/ (`halos.train`), OUT/distill/ (`halos.distill`);
     `run_halos` returns halos_distill.json's contents. A finished stage is skipped on a
     re-run, an interrupted training resumes, and a folder made with another config or
     catalogue is refused, and so is an existing OUT that this project did not make
     (`plumbing.rundir.check_ours`). Bad input: `InputError` (one line; the command line exits 2).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from halos.catalogue import Catalogue, fingerprint, load_catalogue, save_catalogue
from halos.config import HaloConfig
from halos.distill import distill_halos
from halos.graph import HaloGraph, build_graph
from halos.synthetic import SyntheticConfig, make_catalogue
from halos.train import Trained, load_trained, train_halos
from plumbing import rundir
from plumbing.errors import InputError
from plumbing.io import load_json, save_json, save_npy, to_jsonable
from plumbing.resources import available_memory, gib

from .runfolder import HALOS_LAYOUT, run_folder

# Peak memory per mock halo: 200,000 halos (26.6M edges) peaked at 1.1 GB (benchmarks/RESULTS.md,
# "Dark-matter halos"), ~5.5 kB a halo; rounded up.
BYTES_PER_HALO = 6_000
SYNTHETIC_NOTE = ("This run used a SYNTHETIC halo catalogue (halos.synthetic): clustered mock positions and\n"
                  "masses with delta planted from the paper's 'best, with mass' formula plus noise.\n"
                  "Nothing in this folder is a cosmology result.\n")


def run_halos(cfg: HaloConfig, out: str | Path, catalogue: str | Path | None = None,
              synthetic: SyntheticConfig | None = None, box: float | None = None, progress: bool = True) -> dict:
    """Every stage of the halo experiment into `out`; returns halos_distill.json's contents.

    Args:
        cfg: the graph, model, training and distillation settings.
        out: the run folder.
        catalogue: a catalogue file (`halos.catalogue.load_catalogue`); None: a synthetic one.
        synthetic: the synthetic catalogue (None: `SyntheticConfig()`); only without `catalogue`.
        box: the periodic box of `catalogue` in Mpc/h when the file does not carry it.
        progress: progress bars.
    """
    if catalogue is not None:
        cat, synthetic = load_catalogue(catalogue, box), None
    else:
        synthetic = synthetic or SyntheticConfig()
        _check_memory(synthetic.n_halos)
    out = rundir.output_path(out)
    config = {"halos": to_jsonable(cfg), "synthetic": to_jsonable(synthetic),
              "catalogue": str(Path(catalogue).resolve()) if catalogue is not None else None}
    with run_folder(out, config, HALOS_LAYOUT) as timings:
        if synthetic is not None:
            cat = timings.time("catalogue", out / "catalogue.npz", _synthetic, out, synthetic)
        graph = timings.time("graph", out / "graph" / "graph.json", _graph, out / "graph", cat, cfg)
        print(f"[halos] {len(cat)} halos{' (SYNTHETIC)' if cat.synthetic else ''}, box {cat.box:.4g} Mpc/h, "
              f"{graph.n_edges} edges ({graph.n_edges / len(cat):.1f} per halo)")
        trained = timings.time("train", out / "train" / "metrics.json", _train, out / "train", cat, graph, cfg,
                               progress)
        result = timings.time("distill", out / "distill" / "halos_distill.json", _distill, out / "distill", cat,
                              graph, trained, cfg, synthetic)
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


def _check_memory(n_halos: int) -> None:
    """InputError, before anything is written, when n_halos mock halos would not fit in the
    memory this process may use (`plumbing.resources.available_memory`) at BYTES_PER_HALO."""
    need, have = n_halos * BYTES_PER_HALO, available_memory()
    if have is not None and need > have:
        raise InputError(f"{n_halos} mock halos need about {gib(need)} (graph, training and distillation), "
                         f"more than the {gib(have)} available; use fewer --n-halos")


def _synthetic(out: Path, synthetic: SyntheticConfig) -> Catalogue:
    path = out / "catalogue.npz"
    if path.exists():
        return load_catalogue(path)
    cat = make_catalogue(synthetic)
    (out / "SYNTHETIC.txt").write_text(SYNTHETIC_NOTE)
    save_catalogue(path, cat)
    return cat


def _graph(folder: Path, cat: Catalogue, cfg: HaloConfig) -> HaloGraph:
    wanted = {"cutoff": cfg.cutoff, "box": cat.box, "catalogue": fingerprint(cat), "synthetic": cat.synthetic}
    if (folder / "graph.json").exists():
        held = load_json(folder / "graph.json")
        if {k: held.get(k) for k in wanted} == wanted:
            return HaloGraph(np.load(folder / "indptr.npy"), np.load(folder / "senders.npy"), cat.box, cfg.cutoff)
    graph = build_graph(cat.pos, cat.box, cfg.cutoff, cfg.chunk_size)
    save_npy(folder / "indptr.npy", graph.indptr)
    save_npy(folder / "senders.npy", graph.senders)
    save_json(folder / "graph.json", {**wanted, "n_nodes": graph.n_nodes, "n_edges": graph.n_edges})
    return graph


def _train(folder: Path, cat: Catalogue, graph: HaloGraph, cfg: HaloConfig, progress: bool) -> Trained:
    if (folder / "metrics.json").exists():       # config.json already matched this config
        print(f"[halos] {folder}: trained already, skipped")
        return load_trained(folder, cat)
    return train_halos(cat, graph, cfg, folder, progress=progress)


def _distill(folder: Path, cat: Catalogue, graph: HaloGraph, trained: Trained, cfg: HaloConfig,
             synthetic: SyntheticConfig | None) -> dict:
    if (folder / "halos_distill.json").exists():
        print(f"[halos] {folder}: distilled already, skipped")
        return load_json(folder / "halos_distill.json")
    return distill_halos(cat, graph, trained, cfg, folder, synthetic)

