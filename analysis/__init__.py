"""analysis: tables and figures that compare runs with the published results.

In:  run directories written by `pipeline` (run.py or `pipeline.run`: RUN/config.json,
     timings.json, data/, train/metrics.json, train/message_history.npz (through
     `gnn.history`), and distill/, read only through `distill.schema`; see `analysis.runs`),
     or a sweep directory holding many of them; plus the packaged `data/published.json`
     (paper Tables 1/3/5 and the Cambridge reproduction's Tables 1–9).
Out: `Run` records; comparison tables per "{law}-{dim}" row and strategy column, each cell
     "ours (paper P, repro R)", as long-form dict rows, Markdown and CSV; PNG figures (message
     vs force scatter grid, sparsity, trajectories, predictions, Pareto fronts, the message
     history during training and its animation); report.html, one self-contained page per
     run or sweep (`analysis.report`).
Assumes: nothing beyond the files present; a stage that has not run leaves its cells empty
     and its figures out. Bad paths and files that do not read raise
     `plumbing.errors.InputError` (run.py: exit 2).

Notebook use:
    from analysis import load_run, find_runs, build_tables, write_tables, make_figures, write_report, published
"""
from . import published
from .figures import make_figures, run_figures
from .report import write_report
from .runs import Run, find_runs, load_run
from .summary import summary_rows, to_summary_csv
from .tables import build_tables, write_tables

__all__ = ["Run", "build_tables", "find_runs", "load_run", "make_figures", "published", "run_figures",
           "summary_rows", "to_summary_csv", "write_report", "write_tables"]
