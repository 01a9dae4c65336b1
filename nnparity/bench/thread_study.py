"""``nnparity bench --threads``: every implementation at 1 and at 2 threads, each in a fresh worker, quiet
or under load: the times, their ratio, and whether the results are bit-identical."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnparity.bench.implementations import _impl
from nnparity.bench.networks import DEFAULT_REPEATS, NETWORKS, QUICK_REPEATS, make_data
from nnparity.bench.noise import UNRELIABLE_SPREAD, spread, unreliable
from nnparity.bench.processes import _machine, _other_processes, _progress, _spawn, _step, _versions
from nnparity.bench.render import _fmt
from nnparity.bench.steps import _threads
from nnparity.spec import DTYPES


#: ``nnparity bench --threads``: the reference and the equation-style implementations of the registry.
def _thread_impls():
    from nnparity import impls

    return impls.names("reference", "equation")


THREAD_IMPLS = _thread_impls()
#: The thread counts compared, each in a fresh worker (a pool is sized when its library loads).
THREAD_SETTINGS = (1, 2)
#: The networks: the parity grid's three (``nnparity.grid.case_for(L, hidden, ...)``, full batch) and bench's cat
#: network; then the gradient steps of a timed call, by default and with ``--quick``.
THREAD_NETWORKS = {
    "l1-logreg": ((1, "relu"), 200, 50),
    "l2-tanh": ((2, "tanh"), 200, 50),
    "l4-relu": ((4, "relu"), 200, 50),
    "cat": (None, 30, 5),
}
THREAD_COLUMNS = [
    "impl", "network", "dtype", "condition", "steps", "repeats", "seconds_1", "seconds_2", "ratio", "spread_1",
    "spread_2", "unreliable", "bit_identical", "max_ulps", "differing", "repeatable_1", "repeatable_2", "status",
]
#: The busy loop of ``--load``: it also stops by itself within a moment when the process that started it is gone.
BUSY_LOOP = ("import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n"
             "    for _ in range(200000):\n        pass\n")


def thread_case(name, dtype, steps):
    """``(case, X, Y, parameters)`` of a thread-measurement network in ``dtype``: ``steps`` full-batch steps."""
    grid_network = THREAD_NETWORKS[name][0]
    if grid_network is None:
        X, Y, parameters = make_data(NETWORKS[name], dtype)
        return NETWORKS[name].case(dtype, steps), X, Y, parameters
    from nnparity import data, grid, harness

    case = grid.case_for(*grid_network, dtype, False, epochs=steps)
    X, Y, parameters, _ = harness.prepare(case, data.load_data(case.data))
    return case, X, Y, parameters


@contextlib.contextmanager
def busy_load(processes):
    """``processes`` busy-loop processes for the duration of the block, stopped when it ends, however it ends
    (an exception, Ctrl-C); yields their ``Popen`` objects."""
    started = []
    try:
        for _ in range(processes):
            started.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(os.getpid())],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        yield started
    finally:
        for proc in started:
            proc.kill()
        for proc in started:
            proc.wait()


def bit_identical(a, b) -> bool:
    """The same dtype, shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def max_ulps(a, b) -> float:
    """The largest distance between ``a`` and ``b`` (float32 or float64, the same dtype) in units in the last
    place (``harness.max_ulp``); inf for different dtypes or shapes."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape or a.dtype.name not in ("float32", "float64"):
        return math.inf
    from nnparity.harness import max_ulp

    return max_ulp(a, b, a.dtype.name)


def compare_runs(first: dict, second: dict) -> dict:
    """Two runs' arrays (parameters and costs by name): bit-identical or not, the largest distance in ulps and
    the arrays that differ, with theirs."""
    differing = {key: max_ulps(first[key], second.get(key)) if key in second else math.inf
                 for key in first if key not in second or not bit_identical(first[key], second[key])}
    differing.update({key: math.inf for key in second if key not in first})
    return {"bit_identical": not differing, "max_ulps": max(differing.values(), default=0.0),
            "differing": differing}


def _thread_row(impl, name, dtype, steps, repeats, arrays_dir, threads):
    """Time ``impl.train`` on a thread-measurement network (one warm-up call, ``repeats`` timed calls) and keep
    the last call's parameters and costs in ``arrays_dir``."""
    import gc

    case, X, Y, parameters = thread_case(name, dtype, steps)
    row = {"impl": impl.name, "network": name, "dtype": dtype, "threads": threads, "steps": steps}
    try:
        impl.train(parameters, X, Y, case)  # warm-up: tracing, compilation, caches
        seconds, runs = [], []
        for _ in range(repeats):
            gc.collect()
            t = time.perf_counter()
            trained, costs = impl.train(parameters, X, Y, case)
            seconds.append(time.perf_counter() - t)
            runs.append({**{k: np.asarray(v) for k, v in trained.items()}, "costs": np.asarray(costs)})
        np.savez(Path(arrays_dir) / f"{impl.name}-{threads}-{name}-{dtype}.npz", **runs[-1])
        row.update(status="ok", seconds=seconds,
                   repeatable=all(compare_runs(runs[0], run)["bit_identical"] for run in runs[1:]))
    except Exception as exc:  # a framework that cannot run this network
        reason = str(exc).splitlines()[0] if str(exc) else ""
        row["status"] = f"unavailable: {type(exc).__name__}: {reason}"[:300]
    return row


def _worker_threads(spec):
    impl = _impl(spec["impl"])
    result = {"impl": spec["impl"], "threads": spec["threads"], "load_average_start": list(os.getloadavg())}
    try:
        impl._load()
    except Exception as exc:
        result.update(status=f"unavailable: {exc}".splitlines()[0], rows=[])
        return result
    rows = []
    for dtype in spec["dtypes"]:
        for name in spec["networks"]:
            row = _thread_row(impl, name, dtype, spec["steps"][name], spec["repeats"], spec["arrays"],
                              spec["threads"])
            rows.append(row)
            _progress(f"{spec['impl']:>13}  {name:<9} {dtype} {spec['threads']} thread(s): " + (
                f"{statistics.median(row['seconds']):.3f} s a call" if row["status"] == "ok" else row["status"]))
    result.update(status="ok", rows=rows, threads_seen=_threads(), load_average_end=list(os.getloadavg()))
    return result


def _load_arrays(arrays_dir, impl, threads, name, dtype):
    with np.load(Path(arrays_dir) / f"{impl}-{threads}-{name}-{dtype}.npz") as saved:
        return {key: saved[key] for key in saved.files}


def _ulps_text(ulps) -> str:
    return "-0 vs +0" if ulps == 0 else f"{ulps:.0f} ulp"


def thread_rows(measured, arrays_dir, condition, load_average, cpus):
    """One row per implementation x network x dtype from the workers' rows (``measured[threads]``, each a list):
    median seconds at 1 and 2 threads, their ratio (2 threads over 1), each spread, why the ratio is unreliable,
    and whether the trained parameters and costs are bit-identical between the two settings."""
    one, two = THREAD_SETTINGS
    by_key = {t: {(r["impl"], r["network"], r["dtype"]): r for r in rows} for t, rows in measured.items()}
    out = []
    for key, first in by_key[one].items():
        second = by_key[two].get(key, {"status": "unavailable: not measured"})
        impl, name, dtype = key
        row = {"impl": impl, "network": name, "dtype": dtype, "condition": condition, "steps": first.get("steps")}
        bad = next((f"{r['status']} (at {t} thread{'s' * (t > 1)})" for t, r in ((one, first), (two, second))
                    if r["status"] != "ok"), None)
        if bad is not None:
            out.append(dict(row, status=bad))
            continue
        s1, s2 = statistics.median(first["seconds"]), statistics.median(second["seconds"])
        spreads = spread(first["seconds"]), spread(second["seconds"])
        same = compare_runs(_load_arrays(arrays_dir, impl, one, name, dtype),
                            _load_arrays(arrays_dir, impl, two, name, dtype))
        out.append(dict(row, repeats=len(first["seconds"]), seconds_1=s1, seconds_2=s2, ratio=s2 / s1,
                        spread_1=spreads[0], spread_2=spreads[1], unreliable=unreliable(spreads, load_average, cpus),
                        bit_identical=same["bit_identical"], max_ulps=same["max_ulps"],
                        differing=", ".join(f"{k} {_ulps_text(v)}" for k, v in same["differing"].items()),
                        repeatable_1=first["repeatable"], repeatable_2=second["repeatable"], status="ok"))
    return out


def run_threads(networks=None, impls=None, dtypes=None, steps=None, repeats=None, quick=False, load=False,
                echo=True):
    """``nnparity bench --threads``: every implementation on every network and dtype at 1 and at 2 threads, each
    setting in a fresh worker, quiet or (``load``) with ``os.cpu_count()`` busy-loop processes running; returns
    the result document and the table (``THREAD_COLUMNS``)."""
    import pandas as pd

    from nnparity.progress import interactive, progress

    networks, impls = list(networks or THREAD_NETWORKS), list(impls or THREAD_IMPLS)
    dtypes = list(dtypes or DTYPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    steps_of = {n: steps or THREAD_NETWORKS[n][2 if quick else 1] for n in networks}
    started, machine, busy = time.time(), _machine(), _other_processes()
    load_average = (machine["load_average"] or [None])[0]
    condition = "load" if load else "quiet"
    spec = {"kind": "threads", "networks": networks, "dtypes": dtypes, "steps": steps_of, "repeats": repeats}
    rows, workers = [], []
    bar = progress(len(impls) * len(THREAD_SETTINGS)) if echo else None
    echo_lines = echo and not interactive()
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-threads-") as arrays, \
            busy_load(os.cpu_count() if load else 0) as loaders, (bar or contextlib.nullcontext()):
        load_pids = [p.pid for p in loaders]
        if loaders and echo_lines:
            _progress(f"under load: {len(loaders)} busy-loop processes, pids "
                      + ", ".join(str(p.pid) for p in loaders))
        for name in impls:
            measured = {}
            for threads in THREAD_SETTINGS:
                result, error = _step(bar, f"{name} {threads} thread(s)", lambda: _spawn(
                    dict(spec, impl=name, threads=threads, arrays=arrays), echo=echo_lines))
                result = result or {"impl": name, "threads": threads, "status": f"unavailable: {error}", "rows": []}
                measured[threads] = result.pop("rows") or [
                    {"impl": name, "network": n, "dtype": d, "status": result["status"]}
                    for d in dtypes for n in networks]
                workers.append(result)
            rows += thread_rows(measured, arrays, condition, load_average, machine["cpus"])
    table = pd.DataFrame(rows).reindex(columns=THREAD_COLUMNS)
    document = {
        "meta": {"command": " ".join(["nnparity"] + sys.argv[1:]) if sys.argv else "nnparity bench --threads",
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                 "machine": machine, "other_running_processes_at_start": busy, "versions": _versions(),
                 "condition": condition, "load_processes": len(load_pids), "load_pids": load_pids,
                 "thread_settings": list(THREAD_SETTINGS), "quick": quick, "repeats": repeats, "steps": steps_of,
                 "unreliable_spread": UNRELIABLE_SPREAD, "method": THREAD_METHOD,
                 "seconds": round(time.time() - started, 1),
                 "load_average_end": list(os.getloadavg())},
        "workers": workers,
        "rows": table.to_dict("records"),
    }
    return document, table


THREAD_METHOD = {
    "seconds_1, seconds_2": "median wall time of one call of the implementation's train (full batch, the network's "
                            "steps) at 1 and at 2 threads, after one warm-up call; each thread setting in a fresh "
                            "worker whose environment sets every framework's thread variables (nnparity.threads."
                            "VARIABLES, through NNPARITY_THREADS)",
    "ratio": "seconds_2 / seconds_1: below 1, two threads are faster",
    "spread_1, spread_2": "(max - min) / median of the repetitions' times",
    "unreliable": f"why the ratio cannot be trusted: a spread over {UNRELIABLE_SPREAD:.0%}, or a 1-minute load average "
                  "at the start above the number of cores ('' when neither)",
    "bit_identical": "the last timed call's trained parameters and costs have the same bytes at 1 and at 2 threads",
    "max_ulps, differing": "the largest distance in units in the last place, and each array that differs",
    "repeatable_1, repeatable_2": "every repetition at that setting gave the same bytes",
    "condition": "quiet, or load: os.cpu_count() busy-loop processes ran for the whole measurement",
}


def format_threads(document, table) -> str:
    """The terminal table of ``nnparity bench --threads`` and, per implementation, the verdicts."""
    import pandas as pd

    meta = document["meta"]
    machine = meta["machine"]
    load = (machine.get("load_average") or [math.nan])[0]
    condition = (f"under load: {meta['load_processes']} busy-loop processes" if meta["condition"] == "load"
                 else "quiet (no load started)")
    lines = [f"{machine['cpu_model']}, {machine['cpus']} CPUs; {condition}; load average {load:.2f} at start, "
             f"{meta['load_average_end'][0]:.2f} at end"
             + (f"; {len(meta['other_running_processes_at_start'])} other processes were running at start"
                if meta["other_running_processes_at_start"] else ""), ""]
    ok = table["status"] == "ok"
    shown = pd.DataFrame({
        "impl": table["impl"], "network": table["network"], "dtype": table["dtype"],
        "1 thread s": table["seconds_1"].map(lambda x: _fmt(x, ".3f")),
        "2 threads s": table["seconds_2"].map(lambda x: _fmt(x, ".3f")),
        "2/1": [_fmt(r, ".2f") if o else "" for r, o in zip(table["ratio"], ok)],
        "spread 1/2": [f"{_fmt(100 * a, '.0f')}%/{_fmt(100 * b, '.0f')}%" if o else ""
                       for a, b, o in zip(table["spread_1"], table["spread_2"], ok)],
        "noise": ["unreliable" if o and u else "" for u, o in zip(table["unreliable"], ok)],
        "bit-identical": [("yes" if same else f"no ({_ulps_text(u)})") if o else ""
                          for same, u, o in zip(table["bit_identical"], table["max_ulps"], ok)],
    })
    lines.append(shown.to_string(index=False))
    for (impl, status), rows in table[~ok].groupby(["impl", "status"], sort=False):
        lines.append(f"{impl}: {len(rows)} rows {status}")
    lines += ["",
              f"2/1 = seconds at 2 threads / at 1 (below 1: two threads faster); unreliable: a spread over "
              f"{UNRELIABLE_SPREAD:.0%} or a load average at start above {machine['cpus']} cores"]
    for impl in dict.fromkeys(table["impl"]):
        mine = table[(table["impl"] == impl) & ok]
        if mine.empty:
            continue
        reliable = mine[mine["unreliable"] == ""]
        faster = int((reliable["ratio"] < 1).sum())
        same = int(mine["bit_identical"].astype(bool).sum())
        lines.append(f"  {impl:>11}: bit-identical at 1 and 2 threads in {same} of {len(mine)}; two threads faster "
                     f"in {faster} of {len(reliable)} reliable ratios")
    return "\n".join(lines)
