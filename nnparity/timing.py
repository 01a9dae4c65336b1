"""Where a process's time goes, per implementation and phase: what ``nnparity bench --suite`` reads.

``phase(impl, name)`` adds the wall seconds of its block to ``SECONDS[(impl, name)]``; nested blocks count once,
in the innermost phase (a compile inside a trajectory is the compile's).  The harness marks its phases:
``import`` (an implementation's first load), ``reference``, ``captures`` (step 0 and the checkpoints),
``first update``, ``trajectory`` (the free run) and ``predictions``; ``compile`` is what JAX reports compiling
(``jax.monitoring``) while an implementation's phase runs, moved out of that phase; the report's ``timings.csv``
adds each piece's ``other`` (its seconds outside every phase) and ``write_report``'s ``rendering``.  Nothing here
imports a framework; the cost is two clock reads per block.

``write(directory, label)`` saves a process's seconds as a JSON file (the parity tests' conftest does, at the end
of each pytest process, when ``NNPARITY_TIMINGS_DIR`` names a directory); ``read(directory)`` sums them back.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

SECONDS: dict[tuple[str, str], float] = defaultdict(float)
_STACK: list[list] = []  # [impl, name, started, seconds spent in nested phases]


@contextmanager
def phase(impl: str, name: str):
    """Count the block's wall time as ``impl``'s ``name`` (less what nested phases count)."""
    entry = [impl, name, time.perf_counter(), 0.0]
    _STACK.append(entry)
    try:
        yield
    finally:
        _STACK.pop()
        spent = time.perf_counter() - entry[2]
        SECONDS[impl, name] += spent - entry[3]
        if _STACK:
            _STACK[-1][3] += spent


def compiled(seconds: float) -> None:
    """``seconds`` of compiling inside the running phase: moved to its implementation's ``compile``."""
    if _STACK:
        impl = _STACK[-1][0]
        SECONDS[impl, "compile"] += seconds
        SECONDS[impl, _STACK[-1][1]] -= seconds


def listen_to_jax() -> None:
    """Count JAX's backend compilations (``jax.monitoring``'s duration events) as ``compile``; once per process,
    and only where JAX is imported already."""
    import sys

    if "jax" not in sys.modules or getattr(listen_to_jax, "done", False):
        return
    from jax import monitoring

    def on_duration(event: str, seconds: float, **_) -> None:
        if event.endswith("backend_compile_duration"):
            compiled(seconds)

    monitoring.register_event_duration_secs_listener(on_duration)
    listen_to_jax.done = True


def snapshot() -> dict[tuple[str, str], float]:
    return dict(SECONDS)


def since(before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """The seconds counted since ``before`` (a ``snapshot()``), per implementation and phase."""
    return {key: spent - before.get(key, 0.0) for key, spent in SECONDS.items() if spent != before.get(key, 0.0)}


def add(seconds: dict[tuple[str, str], float]) -> None:
    """Count ``seconds`` (another process's, e.g. a worker's piece) as this process's."""
    for key, spent in seconds.items():
        SECONDS[key] += spent


def reset() -> None:
    SECONDS.clear()


#: The environment variable naming the directory where each pytest process writes its seconds (``write``).
DIRECTORY = "NNPARITY_TIMINGS_DIR"


def write(directory, label: str) -> Path:
    """This process's seconds as ``timings-<label>-<pid>.json`` in ``directory`` (created if missing):
    ``{"label", "pid", "seconds": [{"impl", "phase", "seconds"}, ...]}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"timings-{label}-{os.getpid()}.json"
    rows = [{"impl": impl, "phase": name, "seconds": spent} for (impl, name), spent in sorted(SECONDS.items())]
    path.write_text(json.dumps({"label": label, "pid": os.getpid(), "seconds": rows}, indent=1) + "\n",
                    encoding="utf-8")
    return path


def read(directory) -> list[dict]:
    """Every file ``write`` left in ``directory``, as ``{"label", "pid", "seconds"}`` documents (by file name)."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(Path(directory).glob("timings-*.json"))]
