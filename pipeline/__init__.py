"""pipeline: run configs and presets, the stage runner, the run-folder protocol, the sweep and
its cluster back-end, and the command line that drives them (`run.py`, `symdistill`).

In:  a `RunConfig` (`preset(name, law, strategy)`: "tiny", the command line's default,
     "cpu" or "paper"; `with_values` changes fields) and an output folder; or argv.
Out: the run folder the command line writes (docs/architecture.md): config.json,
     versions.json, timings.json, data/, train/, distill/, analysis/ (with report.html),
     which `analysis.load_run` reads.

    config.py     RunConfig (four stage configs), Resources (a cluster job's), overrides
    presets.py    every preset: the runs' (tiny, cpu, paper), the halos' (small, paper),
                  the cluster resources per run preset
    flags.py      config fields as command-line flags
    runfolder.py  the one run-folder protocol: lock, config.json, versions.json, timings.json
    stages.py     simulate / train / distill / analyse, each skipped when done and refused
                  when made otherwise; `run` chains them
    sweep.py      laws x dims x strategies x seeds: jobs, a local pool, submission
    cluster.py    the sweep on Slurm (or locally) through submitit
    halos.py      the halo experiment into one run folder
    parser.py, cli.py   the command line

Notebook use (docs/notebook.md):
    import pipeline
    cfg = pipeline.with_values(pipeline.preset("tiny"), {"n_sims": 100, "epochs": 1})
    result = pipeline.run(cfg, "runs/mine")       # what `run.py all --out runs/mine` writes
"""
from .config import Resources, RunConfig, with_values
from .presets import HALO_PRESETS, PRESETS, config_from_values, halo_preset, preset

__all__ = ["HALO_PRESETS", "PRESETS", "Resources", "RunConfig", "config_from_values", "halo_preset", "preset",
           "run", "run_halos", "with_values"]


def __getattr__(name: str):
    """`run` (`pipeline.stages.run`) and `run_halos` (`pipeline.halos.run_halos`), loaded on first use."""
    # heavy (torch, numba, matplotlib): the command line imports this package before it parses its flags
    if name == "run":
        from .stages import run
        return run
    if name == "run_halos":
        from .halos import run_halos
        return run_halos
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
