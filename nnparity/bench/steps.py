"""Step timing of one implementation in its fresh worker (the ``impl`` worker): each row's step time from
``on_step``, its overhead, the captures, the peak memory, and the worker's thread counts."""

from __future__ import annotations

import math
import os
import resource
import statistics
import time

import numpy as np

from nnparity.bench.conv import CONV_NETWORKS, loops_once, measure_conv_row, offers_conv
from nnparity.bench.implementations import _impl
from nnparity.bench.limits import _times
from nnparity.bench.networks import NETWORKS, make_data
from nnparity.bench.processes import _progress
from nnparity.bench.products import products_pass


def _maxrss_mib() -> float:
    """The process's peak resident set in MiB: ``VmHWM`` of ``/proc/self/status`` on Linux, else
    ``getrusage(RUSAGE_SELF).ru_maxrss``.  They are the same high-water mark, except that ``ru_maxrss``
    never drops below the resident set of the parent at the child's ``exec`` (a worker started by a big
    ``nnparity report`` process would report the parent's size) and is not reset by ``clear_refs``."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return math.nan


def _reset_peak() -> bool:
    """Reset the peak resident set to the current one (Linux >= 4.0: ``5 > /proc/self/clear_refs``);
    ``VmHWM`` then reports the peak since the reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _timed_call(impl, parameters, X, Y, case):
    """One call of ``impl.train``: (total seconds, costs, the time stamps its ``on_step`` took after each step).

    A ``train`` without the ``on_step`` keyword (a user's implementation of the older protocol) is called
    without it: no stamps."""
    stamps = []
    t = time.perf_counter()
    try:
        _, costs = impl.train(parameters, X, Y, case, on_step=lambda step: stamps.append(time.perf_counter()))
    except TypeError as exc:
        if "on_step" not in str(exc):
            raise
        stamps = []
        t = time.perf_counter()
        _, costs = impl.train(parameters, X, Y, case)
    return time.perf_counter() - t, costs, stamps


def _measure_row(impl, network, dtype, steps, repeats):
    """Time ``impl.train`` on ``network`` in ``dtype``: one warm-up call, then ``repeats`` timed calls, between two
    passes of the step's matrix products through the implementation's own framework (``products.products_pass``;
    the better counts).  Returns the row and the floor's passes.

    In each timed call ``on_step`` stamps the end of every step (right after its update); the call's step
    time is the mean over steps 1 .. steps-2, ``(t[steps-2] - t[0]) / (steps - 2)``: step 0 (tracing,
    first-call effects) and the last step (which ends with the return to NumPy) are left out and reported
    as the call's overhead, ``T(call) - steps x step``.  A ``train`` that does not call ``on_step`` exactly
    once per step: ``T(call) / steps``, and the row's ``timing`` says so.
    """
    import gc

    X, Y, parameters = make_data(network, dtype)
    case = network.case(dtype, steps)
    row = {"network": network.name, "dtype": dtype, "impl": impl.name, "steps": steps, "repeats": repeats}
    framework = getattr(impl, "framework", None)
    floor = {"network": network.name, "dtype": dtype, "impl": impl.name, "framework": framework}
    reset, rss_before = False, math.nan
    try:
        floor["before"] = products_pass(framework, network.layer_dims, network.m, dtype, repeats)
        gc.collect()  # the floor's operands are freed: the peak below is the step's
        reset, rss_before = _reset_peak(), _rss_mib()
        t = time.perf_counter()
        impl.train(parameters, X, Y, case)  # warm-up: lazy set-up, compilation (torch-compile), caches
        row["first_call_s"] = time.perf_counter() - t
        per_step, overheads, calls = [], [], set()
        costs = None
        for _ in range(repeats):
            gc.collect()
            total, costs, stamps = _timed_call(impl, parameters, X, Y, case)
            calls.add(len(stamps))
            step = (stamps[steps - 2] - stamps[0]) / (steps - 2) if len(stamps) == steps else total / steps
            per_step.append(step)
            overheads.append(total - steps * step)
        row.update(status="ok", step_ms=statistics.median(per_step) * 1e3, step_ms_min=min(per_step) * 1e3,
                   step_ms_max=max(per_step) * 1e3, overhead_ms=statistics.median(overheads) * 1e3,
                   final_cost=float(np.asarray(costs)[-1]),
                   timing=_timing_note(calls, steps))
        if impl.forward_backward is not None:
            times = _times(lambda: impl.forward_backward(parameters, X, Y, network.case(dtype, 1)), repeats)
            row["capture_ms"] = statistics.median(times) * 1e3
        row["peak_rss_mib"] = _maxrss_mib() if reset else math.nan  # before the floor's second pass
        floor["after"] = products_pass(framework, network.layer_dims, network.m, dtype, repeats)
        better = min(floor["before"], floor["after"], key=lambda p: p["floor_ms"] if math.isfinite(p["floor_ms"])
                     else math.inf)
        floor.update(op=better["op"], floor_ms=better["floor_ms"])
        row.update(floor_ms=better["floor_ms"], floor_op=better["op"])
    except Exception as exc:  # a framework that cannot import or cannot run this network
        reason = str(exc).splitlines()[0] if str(exc) else ""
        row["status"] = f"unavailable: {type(exc).__name__}: {reason}"[:300]
        floor["error"] = row["status"]
    if "peak_rss_mib" not in row:
        row["peak_rss_mib"] = _maxrss_mib() if reset else math.nan
    row["rss_increase_mib"] = row["peak_rss_mib"] - rss_before
    return row, floor


def _timing_note(calls, steps):
    """The row's ``timing``: how its step time was measured, from the numbers of ``on_step`` calls seen."""
    if calls == {steps}:
        return "per-step clock (on_step)"
    seen = ", ".join(map(str, sorted(calls)))
    return f"T(call)/steps, overhead included: train called on_step {seen} times, not once per step ({steps})"


def _threads():
    """The thread counts this worker runs with (NumPy's BLAS; torch or TensorFlow where imported)."""
    out = {}
    try:
        from threadpoolctl import threadpool_info

        out["numpy_blas"] = [p.get("num_threads") for p in threadpool_info() if p.get("user_api") == "blas"]
    except Exception:  # pragma: no cover
        pass
    from nnparity.impls import described

    for framework in described():  # each framework's own pools, where it is imported (its descriptor says how)
        if framework.thread_counts is not None:
            out.update(framework.thread_counts())
    return out


def _worker_impl(spec):
    started = time.perf_counter()
    rss_start = _maxrss_mib()
    impl = _impl(spec["impl"])
    result = {"impl": spec["impl"], "rss_start_mib": rss_start, "load_average_start": list(os.getloadavg())}
    t = time.perf_counter()
    try:
        impl._load()
    except Exception as exc:
        result.update(import_s=time.perf_counter() - t, status=f"unavailable: {exc}".splitlines()[0], rows=[])
        return result
    result["import_s"] = time.perf_counter() - t
    result["rss_import_mib"] = _maxrss_mib()
    rows = []
    for dtype in spec["dtypes"]:
        for name in spec["networks"]:
            network = NETWORKS[name]
            steps = spec["steps"] or (network.quick_steps if spec["quick"] else network.steps)
            row, floor = _measure_row(impl, network, dtype, steps, spec["repeats"])
            row["import_s"] = result["import_s"]
            rows.append(row)
            result.setdefault("product_floors", []).append(floor)
            _progress(f"{spec['impl']:>13}  {name:<6} {dtype}: " + (
                f"{row['step_ms']:.3f} ms/step, {row['step_ms'] / row['floor_ms']:.2f} x {row['floor_op']}"
                if row["status"] == "ok" else row["status"]))
        for name in spec.get("conv", ()) if offers_conv(spec["impl"]) else ():
            row, floor = measure_conv_row(impl, CONV_NETWORKS[name], dtype, spec["repeats"],
                                          (_reset_peak, _rss_mib, _maxrss_mib))
            row["import_s"] = result["import_s"]
            rows.append(row)
            result.setdefault("conv_floors", []).append(floor)
            _progress(f"{spec['impl']:>13}  {name:<6} {dtype}: " + (
                f"{row['step_ms']:.3f} ms/step, {row['step_ms'] / row['floor_ms']:.2f} x {row['floor_op']}"
                if row["status"] == "ok" else row["status"]))
    if spec["impl"] == "numpy" and spec.get("conv"):  # the course's loops: once, on one example
        try:
            loops = loops_once(CONV_NETWORKS[spec["conv"][0]], spec["dtypes"][0])
            _progress(f"{'numpy loops':>13}  {loops['network']:<6} {loops['dtype']}: {loops['loops_s']:.2f} s, one "
                      f"example ({loops['x_vectorised']:.0f} x the vectorised twin)")
        except Exception as exc:  # the rows stand without it
            loops = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
        result["conv_loops"] = loops
    result.update(status="ok", rows=rows, maxrss_mib=_maxrss_mib(), seconds=time.perf_counter() - started,
                  threads=_threads(), load_average_end=list(os.getloadavg()))
    return result
