"""``nnparity bench``: its options, the run (``run_bench``: the limits, one worker per implementation, the
suite-level figures), its table (``COLUMNS``, ``METHOD``) and the targets."""

from __future__ import annotations

import os
import sys
import time
from functools import partial

import numpy as np

from nnparity.bench.conv import CONV_NETWORKS, CONV_TIMING, conv_flops, offers_conv
from nnparity.bench.implementations import BENCH_IMPLS
from nnparity.bench.limits import _better_limits, matmul_flops
from nnparity.bench.networks import DEFAULT_REPEATS, NETWORKS, QUICK_REPEATS
from nnparity.bench.noise import UNRELIABLE_SPREAD, unreliable
from nnparity.bench.processes import _machine, _other_processes, _policy_words, _progress, _spawn, _step, _versions
from nnparity.bench.products import STEP_TARGET, TARGET_NETWORKS
from nnparity.bench.report_profile import harness_overheads, run_suite
from nnparity.bench.thread_study import THREAD_IMPLS, THREAD_NETWORKS
from nnparity.errors import UsageError
from nnparity.spec import DTYPES

COLUMNS = [
    "network", "layer_dims", "m", "dtype", "impl", "status",
    "steps", "repeats", "step_ms", "step_ms_min", "step_ms_max", "spread", "unreliable", "overhead_ms", "first_call_s",
    "matmul_gflop", "gflops", "peak_fraction", "floor_ms", "floor_op", "x_floor", "blas_floor_ms", "x_fastest",
    "capture_ms", "capture_steps", "import_s", "peak_rss_mib", "rss_increase_mib", "final_cost", "timing", "note",
]


def parse_options(networks="all", impl="all", dtype="all", steps=None, repeats=None, quick=False,
                  measure_threads=False):
    """Checked lists of networks, implementations and dtypes (``UsageError``, one line, for anything unknown);
    ``measure_threads``: those of ``--threads``' measurement (``THREAD_NETWORKS``, ``THREAD_IMPLS``)."""
    def parse(text, known, flag):
        names = list(known) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
        if not names:
            raise UsageError(f"{flag} is empty; use one or more of: {', '.join(known)} (comma-separated), or all")
        for name in names:
            if name not in known:
                raise UsageError(f"unknown {flag[2:].rstrip('s')} {name!r}; use {flag} with one or more of: "
                                 f"{', '.join(known)} (comma-separated), or all")
        return list(dict.fromkeys(names))

    nets = parse(networks, tuple(THREAD_NETWORKS) if measure_threads else tuple(NETWORKS) + tuple(CONV_NETWORKS),
                 "--networks")
    names = parse(impl, THREAD_IMPLS if measure_threads else BENCH_IMPLS, "--impl")
    dtypes = parse(dtype, DTYPES, "--dtype")
    if not measure_threads and not any(n in NETWORKS for n in nets):  # the conv row alone
        if not any(offers_conv(n) for n in names):
            conv_impls = ", ".join(n for n in BENCH_IMPLS if offers_conv(n))
            raise UsageError(f"--networks {','.join(nets)}: no implementation among {', '.join(names)} has conv "
                             f"layers; use --impl with one or more of: {conv_impls}")
        if steps is not None:
            raise UsageError("--steps sets the dense networks' steps per call; the conv row times one "
                             "forward_backward per call (set how many with --repeats)")
    if steps is not None and steps < 3:
        raise UsageError(f"--steps must be at least 3 (steps 0 and steps-1 are left out of the step time), got {steps}")
    if repeats is not None and repeats < 1:
        raise UsageError(f"--repeats must be a positive integer, got {repeats}")
    return nets, names, dtypes


def run_bench(networks=None, impls=None, dtypes=None, steps=None, repeats=None, quick=False, report=None,
              echo=True, threads=None):
    """Measure everything; return the result document (``rows`` is the table as a list of records)."""
    networks = list(networks or (tuple(NETWORKS) + tuple(CONV_NETWORKS)))
    dense, conv = [n for n in networks if n in NETWORKS], [n for n in networks if n in CONV_NETWORKS]
    # an implementation with nothing to run (torch-compile on the conv row alone) gets no worker
    impls = [n for n in impls or BENCH_IMPLS if dense or offers_conv(n)]
    dtypes = list(dtypes or DTYPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    report = (not quick) if report is None else report
    started = time.time()
    machine = _machine()
    busy = _other_processes()
    spec = {"networks": dense, "conv": conv, "dtypes": dtypes, "steps": steps, "repeats": repeats, "quick": quick,
            "threads": threads}

    from nnparity.progress import interactive, progress

    bar = progress(len(impls) + 2).__enter__() if echo else None  # a bar on a terminal (then no worker lines)
    echo_lines = echo and not interactive()

    step = partial(_step, bar)
    limits, error = step("limits (GEMM peak, matmul floors)", lambda: _spawn(dict(spec, kind="limits"),
                                                                             echo=echo_lines))
    if limits is None:
        raise RuntimeError(error)
    rows, workers = [], []
    for name in impls:
        result, error = step(name, lambda: _spawn(dict(spec, kind="impl", impl=name), echo=echo_lines))
        if result is None or result["status"] != "ok":
            reason = error or result["status"]
            if not reason.startswith("unavailable"):
                reason = f"unavailable: {reason}"
            for dtype in dtypes:
                for net in dense + (conv if offers_conv(name) else []):
                    rows.append({"network": net, "dtype": dtype, "impl": name, "status": reason})
            if echo_lines:
                _progress(f"{name:>13}  {reason}")
            workers.append({"impl": name, "status": reason})
            continue
        rows += result.pop("rows")
        workers.append(result)

    # the limits again, after the implementations
    again, error = step("limits again", lambda: _spawn(dict(spec, kind="limits"), echo=echo_lines))
    if bar is not None:
        bar.__exit__(None, None, None)
    limits = _better_limits(limits, again) if again is not None else limits
    table = _table(rows, limits, networks, dtypes, impls, machine)
    document = {
        "meta": {"command": " ".join(["nnparity"] + sys.argv[1:]) if sys.argv else "nnparity bench",
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                 "machine": machine, "other_running_processes_at_start": busy,
                 "versions": _versions(), "quick": quick, "repeats": repeats,
                 "threads": threads or f"nnparity's policy ({_policy_words()})",
                 "steps": {**{n: steps or (NETWORKS[n].quick_steps if quick else NETWORKS[n].steps) for n in dense},
                           **{n: 1 for n in conv}},
                 "networks": {**{n: {"layer_dims": list(NETWORKS[n].layer_dims), "m": NETWORKS[n].m,
                                     "hidden_activation": NETWORKS[n].hidden_activation,
                                     "output_activation": NETWORKS[n].output_activation, "loss": NETWORKS[n].loss,
                                     "learning_rate": NETWORKS[n].learning_rate, "data": NETWORKS[n].data,
                                     "description": NETWORKS[n].description} for n in dense},
                              **{n: _conv_meta(n) for n in conv}},
                 "method": METHOD},
        "limits": limits,
        "conv": _conv_document(conv, workers),
        "product_floors": [f for w in workers for f in w.pop("product_floors", [])],
        "workers": workers,
        "rows": table.to_dict("records"),
        "suite": None,
    }
    if report:
        document["suite"] = run_suite(report=report, echo=echo, threads=threads)
    document["targets"] = targets(table, document["suite"])
    document["meta"]["seconds"] = round(time.time() - started, 1)
    document["meta"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return document, table


METHOD = {
    "step_ms": "median over repetitions of the mean time of steps 1 .. steps-2 of one call of the "
               "implementation's train (full batch), stamped by its on_step callback right after each step's "
               "update; min and max alongside. The conv row: median over repetitions of one call of the "
               f"implementation's conv forward_backward ({CONV_TIMING}; numpy: reference.conv_vectorised)",
    "spread": "(step_ms_max - step_ms_min) / step_ms: the spread of the repetitions",
    "unreliable": f"why the row's ratios (x_floor, x_fastest) cannot be trusted: a spread over "
                  f"{UNRELIABLE_SPREAD:.0%}, "
                  "or a 1-minute load average at the start above the number of cores ('' when neither)",
    "overhead_ms": "median of T(call) - steps x step_ms: what a call pays beyond its steps (array conversion, "
                   "setup, tf.function tracing at step 0, results back to NumPy)",
    "first_call_s": "the first train call in the worker (lazy initialisation, compilation for torch-compile)",
    "matmul_gflop": "FLOPs of the matrix products of one step (2 m n k each), 1e9; the conv row: the convolution's "
                    "forward, dW and dA_prev as im2col products (pooling and bias not counted)",
    "gflops": "matmul_gflop / step time",
    "peak_fraction": "gflops / the large-GEMM peak of the dtype (NumPy BLAS, 2048^3)",
    "floor_ms": "best time of exactly those products back to back through the implementation's own framework "
                "(torch.mm; tf.linalg.matmul, eager and under tf.function; jnp.matmul, eager and under jax.jit; "
                "numpy: np.dot through its BLAS), on operands already in the framework, each in its fastest "
                "layout, measured in the row's own worker before and after its timed calls, the better of the "
                "two (nnparity/bench/products.py). The conv row: the framework's own conv primitive on the same "
                "shapes, forward and backward (dA_prev, dW) from tensors already in the framework (for numpy the "
                "conv's im2col products through the BLAS), measured the same way",
    "floor_op": "what floor_ms timed (the faster way, where a framework has two)",
    "x_floor": f"step_ms / floor_ms: what the step costs over its own framework's products (target on the "
               f"{' and '.join(TARGET_NETWORKS)} networks: at most {STEP_TARGET})",
    "blas_floor_ms": "the same products through NumPy's BLAS in a process of its own (the limits worker, at the "
                     "start and at the end of the run, the better of the two): a framework's products against "
                     "OpenBLAS's; empty for the conv row",
    "x_fastest": "step_ms / the fastest implementation's step_ms on the same network and dtype",
    "capture_ms": "median time of one forward_backward call (the harness's per-layer capture)",
    "capture_steps": "capture_ms / step_ms: a capture costs this many training steps",
    "peak_rss_mib": "peak resident set (VmHWM, the high-water mark getrusage's ru_maxrss reports) of the "
                    "implementation's fresh worker process, reset (/proc/self/clear_refs) just before this row: "
                    "its peak resident memory while running the row, interpreter and framework included",
    "rss_increase_mib": "peak_rss_mib minus the resident set just before the row",
    "import_s": "time to import the framework (and the implementation module) in the fresh worker",
}


def _conv_meta(name):
    network = CONV_NETWORKS[name]
    return {"case": {k: v for k, v in vars(network.case).items() if k not in ("dtype", "name")},
            "shape": network.shape(), "m": network.case.m, "gflop": conv_flops(network.case) / 1e9,
            "description": network.description}


def _conv_document(conv, workers):
    """``bench.json``'s ``conv``: the conv row's floors, per row (both passes), and the loops' one-off line."""
    if not conv:
        return None
    return {"networks": {n: _conv_meta(n) for n in conv},
            "floors": [f for w in workers for f in w.get("conv_floors", [])],
            "loops": next((w["conv_loops"] for w in workers if "conv_loops" in w), None)}


def _shape(network):
    return CONV_NETWORKS[network].shape() if network in CONV_NETWORKS else ",".join(
        map(str, NETWORKS[network].layer_dims))


def _gflop(network):
    if network in CONV_NETWORKS:
        return conv_flops(CONV_NETWORKS[network].case) / 1e9
    return matmul_flops(NETWORKS[network].layer_dims, NETWORKS[network].m) / 1e9


def _table(rows, limits, networks, dtypes, impls, machine=None):
    import pandas as pd

    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table.columns:
            table[column] = np.nan if column not in ("status", "note", "floor_op") else ""
    floors = {(f["network"], f["dtype"]): f for f in limits["floors"]}
    peaks = {d: p["gflops"] for d, p in limits["gemm_peak"].items()}
    is_conv = table["network"].isin(list(CONV_NETWORKS))
    table["layer_dims"] = table["network"].map(_shape)
    table["m"] = table["network"].map(lambda n: (CONV_NETWORKS[n].case if n in CONV_NETWORKS else NETWORKS[n]).m)
    table["matmul_gflop"] = table["network"].map(_gflop)
    table["blas_floor_ms"] = [np.nan if c else floors[(n, d)]["floor_ms"]
                              for n, d, c in zip(table["network"], table["dtype"], is_conv)]
    table["floor_ms"] = pd.to_numeric(table["floor_ms"], errors="coerce")
    table["floor_op"] = table["floor_op"].fillna("")
    step = pd.to_numeric(table["step_ms"], errors="coerce")
    table["gflops"] = table["matmul_gflop"] / (step / 1e3)
    table["peak_fraction"] = table["gflops"] / table["dtype"].map(peaks)
    table["x_floor"] = step / table["floor_ms"]
    ok = table["status"] == "ok"
    fastest = step.where(ok).groupby([table["network"], table["dtype"]]).transform("min")
    table["x_fastest"] = step / fastest
    table["capture_steps"] = pd.to_numeric(table["capture_ms"], errors="coerce") / step
    table["spread"] = (table["step_ms_max"] - table["step_ms_min"]) / step
    machine = machine or {}
    load = (machine.get("load_average") or [None])[0]
    table["unreliable"] = [unreliable([s], load, machine.get("cpus")) if o else ""
                           for s, o in zip(table["spread"], ok)]
    table["note"] = [n if c and isinstance(n, str) and n else NOTES.get(i, "")
                     for i, c, n in zip(table["impl"], is_conv, table["note"])]
    order = {n: i for i, n in enumerate(networks)}, {d: i for i, d in enumerate(dtypes)}, \
        {n: i for i, n in enumerate(impls)}
    table = table.assign(_n=table["network"].map(order[0]), _d=table["dtype"].map(order[1]),
                         _i=table["impl"].map(order[2])).sort_values(["_n", "_d", "_i"], kind="stable")
    return table[COLUMNS].reset_index(drop=True)


def _notes() -> dict:
    """Each implementation's note in the table: its framework's descriptor's ``notes``."""
    from nnparity.impls import described

    return {name: note for framework in described() for name, note in framework.notes.items()}


NOTES = _notes()


def targets(table, suite):
    """The issue's targets with the measured values: met, missed, or not measured in this run."""
    out = []

    def row(impl, network, dtype):
        sel = table[(table["impl"] == impl) & (table["network"] == network) & (table["dtype"] == dtype)
                    & (table["status"] == "ok")]
        return None if sel.empty else sel.iloc[0]

    ran = [n for n in TARGET_NETWORKS if n in set(table["network"])]
    if not ran:
        out.append({"target": f"every step <= {STEP_TARGET} x its framework's matrix products, on "
                              f"{' and '.join(TARGET_NETWORKS)} (--networks)", "limit": STEP_TARGET,
                    "measured": None, "met": None})
    for network in ran:
        for impl in dict.fromkeys(table["impl"]):
            for dtype in DTYPES:
                r = row(impl, network, dtype)
                value = None if r is None or not np.isfinite(r["x_floor"]) else float(r["x_floor"])
                out.append({"target": f"{impl} {network} {dtype}: step <= {STEP_TARGET} x its framework's "
                                      "matrix products", "limit": STEP_TARGET, "measured": value,
                            "met": None if value is None else value <= STEP_TARGET,
                            "unreliable": "" if r is None else r["unreliable"]})
    if suite and "report" in suite:
        wall = suite["report"]["wall_s"]
        out.append({"target": "nnparity report (default grid) < 60 s, imports included", "limit": 60.0,
                    "measured": wall, "met": wall < 60})
    overheads = harness_overheads((suite or {}).get("report_profile"))
    for name, o in overheads.items():
        if "capture_overhead" in o:
            value = o["capture_overhead"]
            out.append({"target": f"{name}: harness capture (forward_backward) <= 10% of training, default grid, "
                                  "under cProfile", "limit": 0.10, "measured": value, "met": value <= 0.10})
    return out
