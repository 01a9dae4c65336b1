"""Progress of a long run: a bar on a terminal, plain lines everywhere else.

``nnparity report``, ``drift``, ``selftest`` and ``catalogue`` report each item
(a case, a fault, an entry) as it finishes; ``train`` counts its steps
(:meth:`PlainProgress.count`).  On an interactive
terminal (stderr is a TTY, ``CI`` is not set, ``TERM`` is not ``dumb`` and rich
is importable) that is a rich progress bar naming the case and implementation
being run, with one finished line per case kept above it.  Otherwise — a pipe,
a log file, a CI job — it is one plain line per case, exactly::

    [3/12] l2-tanh-float64-fullbatch: pass (4.1 s)

and, for counted steps, a line at most every ``interval`` seconds, the first
after ``interval`` seconds (short runs print nothing)::

    [train numpy] step 5000/20000 (10 s)
"""

from __future__ import annotations

import contextlib
import os
import sys
import time


def interactive(stream=None) -> bool:
    """Whether to draw a bar: a terminal, not CI, not a dumb terminal."""
    stream = stream if stream is not None else sys.stderr
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PlainProgress:
    """One line per finished item, ``[i/n] label: status (s)``, flushed at once."""

    interval = 10.0  # seconds between two plain ``count`` lines

    def __init__(self, total: int, stream=None):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self._started = self._shown = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def working(self, text: str) -> None:
        """What is running now (a bar shows it; plain lines do not)."""

    def finished(self, label: str, status: str, seconds: float) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {label}: {status} ({seconds:.1f} s)", file=self.stream, flush=True)

    def count(self, done: int, label: str) -> None:
        """``done`` of ``total`` units (steps) of one long item: a line every ``interval`` seconds."""
        now = time.monotonic()
        if now - self._shown >= self.interval:
            self._shown = now
            print(f"[{label}] step {done}/{self.total} ({now - self._started:.0f} s)", file=self.stream, flush=True)


class BarProgress(PlainProgress):
    """A rich progress bar on stderr; finished items printed above it in the same words as the plain lines."""

    def __init__(self, total: int, stream=None):
        super().__init__(total, stream)
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._escape = escape
        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
        self._task = None

    def __enter__(self):
        self._progress.__enter__()
        self._task = self._progress.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def working(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def finished(self, label: str, status: str, seconds: float) -> None:
        self.done += 1
        colour = "green" if status in ("pass", "ok") else "red" if status.startswith("FAIL") else "yellow"
        self._progress.console.print(f"[{self.done}/{self.total}] {self._escape(label)}: "
                                     f"[{colour}]{status}[/{colour}] ({seconds:.1f} s)", highlight=False)
        self._progress.update(self._task, completed=self.done)

    def count(self, done: int, label: str) -> None:
        now = time.monotonic()
        if now - self._shown >= 0.1 or done == self.total:  # a bar redraws ten times a second at most
            self._shown = now
            self._progress.update(self._task, description=label, completed=done)


class SilentProgress(PlainProgress):
    """Nothing at all: the progress of a worker process, whose parent reports each piece (``nnparity.workers``)."""

    def finished(self, label: str, status: str, seconds: float) -> None:
        self.done += 1

    def count(self, done: int, label: str) -> None:
        """Nothing."""


_silenced = False


def silence() -> None:
    """From now on :func:`progress` reports nothing in this process (a worker's)."""
    global _silenced
    _silenced = True


@contextlib.contextmanager
def silenced():
    """:func:`progress` reports nothing inside (a piece run in the process whose own bar reports it)."""
    global _silenced
    before, _silenced = _silenced, True
    try:
        yield
    finally:
        _silenced = before


def progress(total: int, stream=None) -> PlainProgress:
    """A bar where one is wanted and rich is installed; plain lines otherwise; nothing in a silenced worker."""
    if _silenced:
        return SilentProgress(total, stream)
    if interactive(stream):
        try:
            return BarProgress(total, stream)
        except ImportError:
            pass
    return PlainProgress(total, stream)
