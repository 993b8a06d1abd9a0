"""Progress bars that stay readable in logs.

In:  a total count, a description, and whether progress is wanted at all.
Out: an object with tqdm's interface as the stages use it (`update`, `n`, `set_postfix`,
     `set_postfix_str`, `refresh`, `close`, use as a context manager): on a terminal a normal
     tqdm bar; written to a file or pipe (CI logs, `make run > log`) plain lines such as

         simulate spring: 40% 400/1000 [12 s, 33.1 sim/s, ETA 18 s] loss=0.12

     at most one every `interval` seconds, one on `refresh` and one at close, never a carriage
     return (tqdm there would write one multi-megabyte line of them). The ETA assumes the
     rate so far holds for the steps left; the line at close has none (a stage may stop early).
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

INTERVAL_S = 10.0


def progress_bar(total: int, desc: str, enabled: bool = True, initial: int = 0, unit: str = "it",
                 stream: TextIO | None = None, interval: float = INTERVAL_S):
    """A progress bar over `total` steps starting at `initial`, written to `stream` (stderr).

    A tqdm bar when `stream` is a terminal, a `LineProgress` otherwise, and a silent
    `LineProgress` (it still counts `n`) when `enabled` is False.
    """
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return LineProgress(total, desc, initial=initial, unit=unit, stream=None)
    if _isatty(stream):
        return tqdm(total=total, desc=desc, initial=initial, unit=unit, file=stream)
    return LineProgress(total, desc, initial=initial, unit=unit, stream=stream, interval=interval)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):       # no isatty, or a closed stream
        return False


class LineProgress:
    """Plain-line progress for non-terminals: a line per `interval` seconds, one at close;
    with `stream` None it only counts (a disabled bar).

    Attributes:
        n: steps done so far (as tqdm's `n`).
        total: the planned number of steps.
    """

    def __init__(self, total: int, desc: str, initial: int = 0, unit: str = "it",
                 stream: TextIO | None = None, interval: float = INTERVAL_S):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream
        self.interval, self.postfix, self.closed = interval, "", False
        self._initial = initial
        self._start = self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        """Advance by `n` steps; print a line if `interval` seconds passed since the last."""
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._print()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs) -> None:
        """Show `key=value` pairs after the counts (as tqdm), from a dict and/or keywords."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Show `s` after the counts."""
        self.postfix = str(s)

    def refresh(self) -> None:
        """Print a line now (as tqdm redraws its bar): e.g. when a long step starts."""
        self._print()

    def close(self) -> None:
        """Print the final line (once)."""
        if not self.closed:
            self.closed = True
            self._print()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _print(self) -> None:
        self._last = time.monotonic()
        if self.stream is None:
            return
        elapsed = self._last - self._start
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        share = f"{100 * self.n / self.total:.0f}% " if self.total else ""
        running = rate > 0 and self.total and self.n < self.total and not self.closed   # no ETA once done
        eta = f", ETA {(self.total - self.n) / rate:.0f} s" if running else ""
        line = f"{self.desc}: {share}{self.n}/{self.total} [{elapsed:.0f} s, {rate:.3g} {self.unit}/s{eta}]"
        self.stream.write(f"{line} {self.postfix}".rstrip() + "\n")
        self.stream.flush()
