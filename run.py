#!/usr/bin/env python3
"""The command line from a checkout: `python run.py COMMAND ...` is the installed
`symdistill COMMAND ...` (`pipeline.cli`); `python run.py --help` lists the commands."""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
