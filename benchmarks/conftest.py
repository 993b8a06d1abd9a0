"""Collect `bench_*.py` files as test modules, so `pytest benchmarks` finds them.

pytest's default `python_files` pattern only matches test_*.py / *_test.py, and the
project's ini settings point plain `pytest` at tests/ (benchmarks are not part of CI).
Files named on the command line are collected by pytest itself, so they are skipped here.
"""
import pytest


def pytest_collect_file(file_path, parent):
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
