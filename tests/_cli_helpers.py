"""Calling the command line in-process: `run_main(args, capsys)` runs `pipeline.cli.main` (argparse's
own exits included) and returns (exit code, stdout, stderr)."""
from __future__ import annotations

from pipeline import cli


def run_main(args, capsys) -> tuple[int, str, str]:
    """cli.main on `args` -> (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
