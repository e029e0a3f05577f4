"""Plain progress lines on stdout, so a person (or CI log) sees what a long task is doing."""

from __future__ import annotations

import sys
import time


def say(message: str) -> None:
    """Print one progress line, flushed at once."""
    print(f"==> {message}", flush=True)


class Counter:
    """A single-line progress counter that redraws on a TTY and prints every ~10% otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._started = time.monotonic()
        self._next_mark = 0.1
        self._tty = sys.stdout.isatty()

    def advance(self, count: int = 1) -> None:
        """Record ``count`` more units of work."""
        self.done += count
        fraction = self.done / self.total
        if self._tty:
            print(f"\r    {self.label}: {self.done}/{self.total} ({fraction:.0%})", end="", flush=True)
        elif fraction >= self._next_mark:
            print(f"    {self.label}: {self.done}/{self.total} ({fraction:.0%})", flush=True)
            self._next_mark += 0.1

    def finish(self) -> float:
        """End the line; return the elapsed seconds."""
        if self._tty:
            print(flush=True)
        return time.monotonic() - self._started
