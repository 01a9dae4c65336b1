"""Worker processes for independent pieces of one command (``nnparity report``'s cases, self-test and catalogue).

Every framework here computes on one thread (:mod:`nnparity.threads`), so a 2-core machine runs two pieces at once
in two processes.  A worker is started by ``spawn`` (never ``fork``: a forked TensorFlow, torch or XLA runtime
is not safe to use) and inherits the parent's environment, the thread policy's variables included, so it computes
exactly as the parent would: a piece's result does not depend on which process ran it (``parity_tests``
compare a report made with one job with one made with two).  With one job, or one piece, nothing is spawned and
the pieces run in this process, in order.

A piece is ``(label, function, args)``: ``function`` is a module-level function (a worker imports it by name) and
its result is sent back by pickle.  A piece's own progress bars are silenced (:mod:`nnparity.progress`), in a
worker and in this process alike: the caller reports each piece as it finishes.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterable, Iterator

#: The environment variable that sets the default number of workers (``--jobs`` wins over it).
JOBS = "NNPARITY_JOBS"


def default_jobs(environ=None) -> int:
    """``NNPARITY_JOBS`` if set, else one worker per core this process may run on (its CPU affinity where the OS
    tells it)."""
    from nnparity.errors import UsageError

    environ = os.environ if environ is None else environ
    if environ.get(JOBS, "").strip():
        text = environ[JOBS].strip()
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"{JOBS}={text!r} is not a number of worker processes; set it to a whole number such "
                             f"as 1 or 2, or unset it for one per core")
        return int(text)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: How often the parent wakes while it waits for pieces (``run``): the longest a Ctrl-C waits to be seen.
WAKE_SECONDS = 0.25


def _silenced_worker() -> None:
    """A worker's start: its progress bars silenced, and Ctrl-C left to the parent, which ends the workers (a
    worker that caught it would hand the interrupt back as a piece's result and go on with the next piece)."""
    import signal

    from nnparity import progress

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    progress.silence()


def _end(pool) -> None:
    """End ``pool``'s worker processes now (Ctrl-C): terminate, then kill what has not ended within 3 s."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + 3
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1)


def _timed(function: Callable, args: tuple):
    """The piece's result, its wall seconds, and where they went (``nnparity.timing``: implementation and phase;
    the process's totals keep counting, so that a caller's own account, e.g. a pytest process's, stays whole)."""
    from nnparity import timing

    before = timing.snapshot()
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started, timing.since(before)


def run(pieces: Iterable[tuple[str, Callable, tuple]], jobs: int) -> Iterator[tuple[str, object, float, dict]]:
    """Run every piece and yield ``(label, result, seconds, phases)`` as each finishes (in order with one job);
    ``phases``: ``{(implementation, phase): seconds}`` of ``nnparity.timing`` while the piece ran (counted in
    this process's ``nnparity.timing.SECONDS`` too, whichever process ran it).  A piece
    that raises raises here, after the pool is shut down; a worker that dies (killed, out of memory) is a
    ``RuntimeError`` that names the piece."""
    pieces = list(pieces)
    jobs = min(jobs, len(pieces))
    if jobs <= 1:
        from nnparity.progress import silenced

        for label, function, args in pieces:
            with silenced():
                result, seconds, phases = _timed(function, args)
            yield label, result, seconds, phases
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from nnparity import timing

    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_silenced_worker)
    ended = False
    try:
        running = {pool.submit(_timed, function, args): label for label, function, args in pieces}
        while running:
            # a short timeout, not a blocking wait: the kernel may deliver Ctrl-C's SIGINT to one of the pool's
            # helper threads, and Python runs the handler (raising KeyboardInterrupt) only when the main thread
            # next executes code; blocked in a lock, it would not until a piece finished (a minute, measured)
            done, _ = wait(running, timeout=WAKE_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                label = running.pop(future)
                try:
                    result, seconds, phases = future.result()
                except BrokenProcessPool:
                    raise RuntimeError(f"a worker process died while running {label} (killed, or out of memory); "
                                       "run again with --jobs 1 to see it in this process") from None
                timing.add(phases)
                yield label, result, seconds, phases
    except (KeyboardInterrupt, GeneratorExit) as stop:
        # Ctrl-C here, or the caller stopped reading (Ctrl-C in the caller's code closes this generator): the
        # pieces still running will never be read, so their workers end now instead of being waited for
        if isinstance(stop, KeyboardInterrupt):
            print("stopping (Ctrl-C): ending the worker processes", file=sys.stderr, flush=True)
        ended = True
        _end(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if not ended:
            pool.shutdown(wait=True, cancel_futures=True)
