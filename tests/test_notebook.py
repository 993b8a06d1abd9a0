"""A run made from Python is a run: docs/notebook.md's code runs as written, and the folder it
writes is the command line's (it loads, analyses, and `run.py all` with the same settings
skips every stage of it).

In:  the ```python blocks of docs/notebook.md, run in a temporary working directory.
Out: failures naming what the Python-made run lacks.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analysis import load_run
from pipeline import cli
from pipeline.flags import config_from_args
from pipeline.parser import build_parser
from plumbing.io import to_jsonable
from plumbing.rundir import stage_seconds

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "notebook.md"
# The flags that give the page's `with_values` settings on the command line.
FLAGS = ["--n-sims", "12", "--nt", "40", "--integrator", "reference", "--epochs", "1", "--batch-size", "16",
         "--hidden", "8", "--n-hidden-layers", "1", "--generations", "2", "--population-size", "16",
         "--max-time", "20", "--n-threads", "1", "--n-edges", "200", "--n-nodes", "200", "--n-eval-graphs", "10",
         "--n-ood-graphs", "10"]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory) -> tuple[Path, dict]:
    """The page's code run in a fresh folder: (that folder, the names the code defined)."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert blocks, f"{PAGE} holds no python block"
    where = tmp_path_factory.mktemp("notebook")
    names: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(where)
        exec(compile("\n".join(blocks), str(PAGE), "exec"), names)      # noqa: S102 (the docs' own code)
    return where, names


def test_the_docs_notebook_code_runs(notebook):
    where, names = notebook
    assert (where / "runs" / "notebook" / "message_fit_again.png").read_bytes()[:4] == b"\x89PNG"
    assert names["run"].label and "message_fit.png" in names["figures"]


def test_a_python_made_run_loads_and_analyses(notebook, capsys):
    where, names = notebook
    out = where / "runs" / "notebook"
    assert json.loads((out / "config.json").read_text()) == to_jsonable(names["cfg"])
    assert config_from_args(build_parser().parse_args(["all", *FLAGS, "--out", "x"])) == names["cfg"]
    assert {"simulate", "train", "distill"} <= set(stage_seconds(out))
    assert (out / "versions.json").is_file() and (out / "analysis" / "report.html").is_file()
    run = load_run(out)
    assert run.distill is not None and run.distill.edge_success == names["result"].edge_success
    assert cli.main(["analyse", "--run", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["all", "--preset", "tiny", *FLAGS, "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert all(f"[{stage}] {out / folder}: done already, skipped" in printed
               for stage, folder in (("simulate", "data"), ("train", "train"), ("distill", "distill"))), printed

