"""``nnparity bench``: how fast each implementation trains, against this machine's limits, in one run.

For each implementation and each standard network (``NETWORKS``) in float32 and
float64, a fresh worker process (``python -m nnparity.bench --worker ...``)
imports the framework, builds the data and trains full-batch for a fixed number
of steps with the implementation's own ``train``: one warm-up call, then
``repeats`` timed calls.  Inside each timed call the end of every step is
stamped through the protocol's callback, ``train(..., on_step=)``, called right after
each step's update, so the steady-state step time leaves out what a call pays once
(converting the arrays, ``tf.function`` tracing at step 0, copying the results back),
which is reported apart (``overhead_ms``).

The limits are measured in the same run, through NumPy's BLAS:

* the **large-GEMM peak** per dtype: ``2048 x 2048 @ 2048 x 2048``, best of several;
* the **matmul floor** of each network and dtype: exactly the matrix products one
  training step needs (``W[l] A[l-1]`` per layer, ``dW[l] = dZ[l] A[l-1].T`` per
  layer, ``dA[l-1] = W[l].T dZ[l]`` for layers 2..L), each in the operand layout the
  BLAS runs fastest (C or Fortran order of each operand, chosen by timing; the
  transposes are made once, outside the timing), run alone and back to back,
  into preallocated outputs; best of several, in a process of its own, at the start
  and at the end of the run (the better of the two counts).  ``matmul_products`` lists them and
  their FLOPs (``2 m n k`` each).

Columns of ``bench.csv`` (one row per implementation x network x dtype): see ``COLUMNS``
and docs/performance.md ("Benchmark").  Suite-level figures (full runs only): the wall
time of ``nnparity report`` on the default grid split into import time (``-X importtime``)
and compute, a run of the same report under ``cProfile`` (in one process, ``--jobs 1``) whose phases are the cumulative
times of named functions (``REPORT_PHASES``: reference training, per-step bounds, captures,
each implementation module's training, comparisons, self-test, catalogue, writing).  Nothing is patched: a phase
whose function is not in the profile (renamed) says so.

``--suite`` (``run_suites``) instead says where the time of the quick report and of make test goes: seconds per
implementation and phase (``nnparity.timing``), from the report's ``timings.csv`` and from the files each pytest
process writes (``NNPARITY_TIMINGS_DIR``), with the JUnit durations per implementation.

Frameworks are imported only by the worker processes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from nnparity.errors import UsageError
from nnparity.numbers import json_default, jsonable, number
from nnparity.spec import DTYPES, Case

ROOT = Path(__file__).resolve().parents[1]

def _bench_impls():
    """The registry's implementations, and torch with ``torch.compile`` (bench only) after torch, then the
    implementations installed packages register (``nnparity.impls.plugins``)."""
    from nnparity import impls  # the registry imports no framework

    names = list(impls.IMPLS)
    names.insert(names.index("torch") + 1, "torch-compile")
    return tuple(names + [name for name in impls.plugins() if name not in names])


#: Implementations the benchmark knows.
BENCH_IMPLS = _bench_impls()
GEMM_N = 2048


@dataclass(frozen=True)
class Network:
    name: str
    layer_dims: tuple[int, ...]
    hidden_activation: str
    output_activation: str
    loss: str
    m: int
    data: str  # "random" (generated here, fixed seed) or an embedded data set
    learning_rate: float
    steps: int  # default steps per timed call
    quick_steps: int
    description: str

    def case(self, dtype: str, steps: int) -> Case:
        return Case(layer_dims=self.layer_dims, hidden_activation=self.hidden_activation,
                    output_activation=self.output_activation, loss=self.loss, dtype=dtype,
                    learning_rate=self.learning_rate, epochs=steps, data=self.data,
                    name=f"bench-{self.name}-{dtype}").validate()


NETWORKS = {
    "cat": Network("cat", (12288, 20, 7, 5, 1), "relu", "sigmoid", "cross_entropy", 209, "random", 0.0075, 30, 5,
                   "the notes' L-layer relu network on the cat task's shape: 209 random 64x64x3 'images'"),
    "planar": Network("planar", (2, 4, 1), "tanh", "sigmoid", "cross_entropy", 400, "planar", 1.2, 300, 20,
                      "the notes' 2-layer tanh network on the 400-point planar flower"),
    "wide": Network("wide", (784, 256, 128, 10), "relu", "softmax", "categorical_cross_entropy", 1000, "random",
                    0.05, 15, 4, "a wider relu/softmax network: 1000 random 28x28 'digits', 10 classes"),
}

COLUMNS = [
    "network", "layer_dims", "m", "dtype", "impl", "status",
    "steps", "repeats", "step_ms", "step_ms_min", "step_ms_max", "spread", "unreliable", "overhead_ms", "first_call_s",
    "matmul_gflop", "gflops", "peak_fraction", "floor_ms", "x_floor", "x_fastest",
    "capture_ms", "capture_steps", "import_s", "peak_rss_mib", "rss_increase_mib", "final_cost", "timing", "note",
]

QUICK_REPEATS = 3
DEFAULT_REPEATS = 5


# --------------------------------------------------------------------------- noise


#: A timing whose repetitions range over more than this fraction of their median, ``(max - min) / median``,
#: makes a ratio built on it unreliable: the choices read from these ratios (1 or 2 threads, a target of 1.5x the
#: floor) turn on differences of 20-50 %, which a timing that wanders by more than a fifth cannot resolve.
UNRELIABLE_SPREAD = 0.20


def spread(times) -> float:
    """The spread of repeated timings: ``(max - min) / median`` (0 for one timing, NaN for none)."""
    times = [t for t in times if t is not None and math.isfinite(t)]
    if not times:
        return math.nan
    middle = statistics.median(times)
    return (max(times) - min(times)) / middle if middle > 0 else math.nan


def unreliable(spreads, load_average, cpus) -> str:
    """Why a ratio of timings with these ``spreads`` is unreliable, '' when it is not: a spread over
    ``UNRELIABLE_SPREAD`` (or unknown), or a 1-minute load average at the start above the number of cores."""
    reasons = []
    spreads = list(spreads)
    if any(not math.isfinite(s) for s in spreads):
        reasons.append("spread unknown")
    elif spreads and max(spreads) > UNRELIABLE_SPREAD:
        reasons.append(f"spread {100 * max(spreads):.0f}% > {100 * UNRELIABLE_SPREAD:.0f}%")
    if load_average is not None and cpus and load_average > cpus:
        reasons.append(f"load average {load_average:.2f} > {cpus} cores at start")
    return "; ".join(reasons)


# --------------------------------------------------------------------------- the matmul floor


def matmul_products(layer_dims, m):
    """The matrix products of one full-batch training step, in the order the step computes them.

    Each is ``(name, rows, inner, cols)``: ``rows x inner`` times ``inner x cols``, ``2 rows inner cols``
    FLOPs.  Forward ``W[l] A[l-1]`` for l = 1..L; backward, for l = L..1, ``dZ[l] A[l-1].T`` (dW) and,
    for l >= 2, ``W[l].T dZ[l]`` (dA[l-1]).
    """
    n, L = list(layer_dims), len(layer_dims) - 1
    A = lambda l: "X" if l == 0 else f"A{l}"  # noqa: E731  (A[0] is X)
    products = [(f"W{l}·{A(l - 1)}", n[l], n[l - 1], m) for l in range(1, L + 1)]
    for l in range(L, 0, -1):
        products.append((f"dZ{l}·{A(l - 1)}.T", n[l], m, n[l - 1]))
        if l > 1:
            products.append((f"W{l}.T·dZ{l}", n[l - 1], n[l], m))
    return products


def matmul_flops(layer_dims, m) -> int:
    """FLOPs of the matrix products of one training step (``2 rows inner cols`` each)."""
    return sum(2 * r * k * c for _, r, k, c in matmul_products(layer_dims, m))


def _times(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def gemm_peak(dtype, n=GEMM_N, repeats=5):
    """Best GFLOP/s of ``n x n @ n x n`` through NumPy's BLAS (preallocated output)."""
    rng = np.random.RandomState(0)
    a, b = rng.rand(n, n).astype(dtype), rng.rand(n, n).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    times = _times(lambda: np.dot(a, b, out=c), repeats)
    return {"dtype": dtype, "n": n, "best_s": min(times), "median_s": statistics.median(times),
            "gflops": 2 * n**3 / min(times) / 1e9}


def matmul_floor(layer_dims, m, dtype, repeats=20):
    """Time exactly the products of one step, each in its fastest operand layout, back to back.

    Returns the floor (best of ``repeats`` back-to-back sequences), the median, the FLOPs and,
    per product, the chosen layout (``CF``: first operand C order, second Fortran order) and its time.
    """
    rng = np.random.RandomState(0)
    chosen, details = [], []
    for name, r, k, c in matmul_products(layer_dims, m):
        a, b = rng.rand(r, k).astype(dtype), rng.rand(k, c).astype(dtype)
        out = np.empty((r, c), dtype=dtype)
        best = None
        for layout in ("CC", "CF", "FC", "FF"):  # a transpose made once is a change of order
            aa, bb = np.asarray(a, order=layout[0]), np.asarray(b, order=layout[1])
            t = min(_times(lambda: np.dot(aa, bb, out=out), 5))
            if best is None or t < best[0]:
                best = (t, layout, aa, bb)
        chosen.append((best[2], best[3], out))
        details.append({"product": name, "shape": f"{r}x{k} @ {k}x{c}", "gflop": 2 * r * k * c / 1e9,
                        "layout": best[1], "best_ms": best[0] * 1e3})

    def sequence():
        for aa, bb, out in chosen:
            np.dot(aa, bb, out=out)

    times = _times(sequence, repeats, warmup=2)
    flops = matmul_flops(layer_dims, m)
    return {"layer_dims": list(layer_dims), "m": m, "dtype": dtype, "flops": flops, "floor_ms": min(times) * 1e3,
            "floor_median_ms": statistics.median(times) * 1e3, "floor_gflops": flops / min(times) / 1e9,
            "products": details}


# --------------------------------------------------------------------------- data and implementations


def make_data(network: Network, dtype: str):
    """X, Y and the reference's initial parameters for ``network`` in ``dtype`` (random data: seed 0)."""
    from reference.initializers import initialize_parameters
    from reference.utils import one_hot

    if network.data == "random":
        rng = np.random.RandomState(0)
        X = rng.rand(network.layer_dims[0], network.m)  # pixel-like values in [0, 1)
        classes = 2 if network.output_activation == "sigmoid" else network.layer_dims[-1]
        labels = rng.randint(0, classes, size=(1, network.m))
    else:
        from nnparity import data as data_mod

        dataset = data_mod.load_data(network.data)
        X, labels = dataset.X, dataset.Y
    Y = labels if network.output_activation == "sigmoid" else one_hot(labels, network.layer_dims[-1])
    parameters = initialize_parameters(network.layer_dims, "inv-sqrt", 0.01, 1, dtype)
    return X.astype(dtype), Y.astype(dtype), parameters


_COMPILED = {}


def _forward_cost(parameters, X, Y, case):
    """``torch_impl.model``'s forward pass and cost: what ``torch-compile`` compiles."""
    from torch_impl import model as M

    AL, _ = M.model_forward(X, parameters, case)
    return M.compute_cost(AL, Y, parameters, case)


def train_torch_compile(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
    """``torch_impl.model.train`` with the forward pass and cost compiled by
    ``torch.compile(backend="inductor")`` (AOTAutograd compiles their backward too).
    ``torch.autograd.grad`` and the update stay eager: Dynamo does not trace
    ``torch.autograd.grad`` (a graph break), so the whole step does not compile as one graph."""
    import torch

    from torch_impl import model as M

    if schedule is not None or masks is not None:
        raise UsageError("torch-compile is benchmarked on full-batch runs without dropout only")
    M.setup(case.seed)
    key = case.replace(epochs=1, name="")
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(lambda P, X_, Y_: _forward_cost(P, X_, Y_, key), backend="inductor")
    forward_cost = _COMPILED[key]
    parameters = {k: M.to_tensor(v, case.dtype).requires_grad_() for k, v in parameters.items()}
    state = M.initialize_optimizer_state(parameters, case.optimizer)
    X, Y = M.to_tensor(X, case.dtype), M.to_tensor(Y, case.dtype)
    costs = torch.empty(case.epochs, dtype=M.DTYPES[case.dtype])
    for step in range(case.epochs):
        cost = forward_cost(parameters, X, Y)
        costs[step] = cost.detach()
        grads = M.model_backward(cost, parameters)
        parameters, state = M.update(parameters, grads, state, case, t=step + 1)
        if on_step is not None:
            on_step(step)
    return {k: M.to_numpy(v) for k, v in parameters.items()}, M.to_numpy(costs)


class _TorchCompile:
    name = "torch-compile"

    def _load(self):
        import torch
        import torch._dynamo

        import torch_impl.model  # noqa: F401  (imported here, so that its import is timed as the framework's)

        torch._dynamo.config.cache_size_limit = 64  # one graph per network x dtype in this worker
        return torch

    def train(self, parameters, X, Y, case, schedule=None, masks=None, on_step=None):
        return train_torch_compile(parameters, X, Y, case, schedule, masks, on_step)

    forward_backward = None


def _impl(name):
    if name == "torch-compile":
        return _TorchCompile()
    from nnparity import impls

    return impls.get(name)


# --------------------------------------------------------------------------- memory


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


# --------------------------------------------------------------------------- the worker


def _progress(text):
    print(f"[bench] {text}", file=sys.stderr, flush=True)


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
    """Time ``impl.train`` on ``network`` in ``dtype``: one warm-up call, then ``repeats`` timed calls.

    In each timed call ``on_step`` stamps the end of every step (right after its update); the call's step
    time is the mean over steps 1 .. steps-2, ``(t[steps-2] - t[0]) / (steps - 2)``: step 0 (tracing,
    first-call effects) and the last step (which ends with the return to NumPy) are left out and reported
    as the call's overhead, ``T(call) - steps x step``.  A ``train`` that does not call ``on_step`` exactly
    once per step: ``T(call) / steps``, and the row's ``timing`` says so.
    """
    import gc

    X, Y, parameters = make_data(network, dtype)
    case = network.case(dtype, steps)
    reset = _reset_peak()
    rss_before = _rss_mib()
    row = {"network": network.name, "dtype": dtype, "impl": impl.name, "steps": steps, "repeats": repeats}
    try:
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
    except Exception as exc:  # a framework that cannot import or cannot run this network
        reason = str(exc).splitlines()[0] if str(exc) else ""
        row["status"] = f"unavailable: {type(exc).__name__}: {reason}"[:300]
    row["peak_rss_mib"] = _maxrss_mib() if reset else math.nan
    row["rss_increase_mib"] = row["peak_rss_mib"] - rss_before
    return row


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
            row = _measure_row(impl, network, dtype, steps, spec["repeats"])
            row["import_s"] = result["import_s"]
            rows.append(row)
            _progress(f"{spec['impl']:>13}  {name:<6} {dtype}: " + (
                f"{row['step_ms']:.3f} ms/step" if row["status"] == "ok" else row["status"]))
    result.update(status="ok", rows=rows, maxrss_mib=_maxrss_mib(), seconds=time.perf_counter() - started,
                  threads=_threads(), load_average_end=list(os.getloadavg()))
    return result


def _worker_limits(spec):
    result = {"gemm_peak": {}, "floors": []}
    for dtype in spec["dtypes"]:
        result["gemm_peak"][dtype] = gemm_peak(dtype, repeats=3 if spec["quick"] else 5)
        _progress(f"GEMM peak {dtype}: {result['gemm_peak'][dtype]['gflops']:.1f} GFLOP/s")
        for name in spec["networks"]:
            network = NETWORKS[name]
            floor = matmul_floor(network.layer_dims, network.m, dtype, repeats=10 if spec["quick"] else 30)
            floor["network"] = name
            result["floors"].append(floor)
            _progress(f"matmul floor {name} {dtype}: {floor['floor_ms']:.3f} ms ({floor['floor_gflops']:.1f} GFLOP/s)")
    try:
        from threadpoolctl import threadpool_info

        result["threadpools"] = threadpool_info()
    except Exception as exc:  # pragma: no cover - threadpoolctl is a dependency
        result["threadpools"] = str(exc)
    return result


#: The phases of ``nnparity report``'s profile: (label, module, function).  A phase's time is the cumulative
#: time of the function in the profile (calls nested in another of its calls counted once); phases nest
#: (``compare_impl`` holds each implementation's training, the self-test reruns the harness), so they
#: overlap and do not sum to the total.
REPORT_PHASES = (
    ("reference: run_reference (its training, per-step bounds, captures, bounds)", "nnparity.harness",
     "run_reference"),
    ("reference: training loop (train, per-step bounds included)", "reference.model", "train"),
    ("reference: per-step rounding bound of the cost (run_reference's before_update)", "nnparity.harness",
     "bound_step"),
    ("reference: captures (forward_backward)", "reference.model", "forward_backward"),
    ("tolerances: rounding bounds of a capture", "nnparity.tolerances", "bounds"),
    ("tolerances: rounding bound of a cost", "nnparity.tolerances", "cost_bound"),
    ("implementations: compare_impl (their training, captures and comparison rows)", "nnparity.harness",
     "compare_impl"),
    ("self-test (run_selftest: faults and unaltered reruns)", "nnparity.selftest", "run_selftest"),
    ("catalogue (run_catalogue)", "nnparity.catalogue", "run_catalogue"),
    ("write_report (md, csv, json, figures, html)", "reports.build", "write_report"),
    ("env.json (environment.collect)", "nnparity.environment", "collect"),
    ("data loading (load_data)", "nnparity.data", "load_data"),
)

NOT_FOUND = "not found in profile (renamed?)"


def _policy_words() -> str:
    """The thread policy the workers inherit (``nnparity.threads``), e.g. ``numpy 1, torch 1, tensorflow 1, jax 1``."""
    from nnparity import threads as thread_policy

    return ", ".join(f"{framework} {n}" for framework, n in thread_policy.policy().items())


def _impl_phases():
    """Each implementation module's ``train`` and ``forward_backward``, labelled with the registry's names that
    use it (``tf_impl.model``: tf, tf-function): cProfile tells functions apart, not the options they ran with."""
    from nnparity import impls

    modules = {}
    for name in impls.IMPLS:
        impl = impls.get(name)
        if impl.module != "reference.model":
            modules.setdefault(impl.module, []).append(name)
    return tuple((f"{', '.join(names)}: {what}", module, function) for module, names in modules.items()
                 for function, what in (("train", "training (train)"), ("forward_backward", "captures")))


def _source_suffixes(module):
    path = module.replace(".", os.sep)
    return (os.sep + path + ".py", os.sep + os.path.join(path, "__init__.py"))


def profile_phases(stats, phases):
    """``[{phase, function, seconds, calls, note}]`` from ``pstats.Stats(...).stats`` for ``phases``
    ((label, module, function) each): the cumulative seconds and calls of every profiled function of that
    name in that module's file; ``seconds`` None and ``note`` ``NOT_FOUND`` where there is none."""
    out = []
    for label, module, function in phases:
        suffixes = _source_suffixes(module)
        found = [value for (filename, _, name), value in stats.items()
                 if name == function and filename.endswith(suffixes)]
        row = {"phase": label, "function": f"{module}.{function}", "seconds": None, "calls": 0, "note": NOT_FOUND}
        if found:
            row.update(seconds=sum(v[3] for v in found), calls=sum(v[1] for v in found), note="")
        out.append(row)
    return out


def _caller_seconds(stats, callee, caller):
    """Cumulative seconds of ``callee`` ((module, function)) when called directly by ``caller``; None if unseen."""
    seconds = None
    for (filename, _, name), value in stats.items():
        if name == callee[1] and filename.endswith(_source_suffixes(callee[0])):
            for (c_file, _, c_name), timing in value[4].items():
                if c_name == caller[1] and c_file.endswith(_source_suffixes(caller[0])):
                    seconds = (seconds or 0.0) + timing[3]
    return seconds


def _worker_report_profile(spec):
    """Run ``nnparity report`` (default grid, ``--jobs 1``: every piece in the profiled process) as a program under
    ``cProfile`` (``python -m cProfile -m nnparity report``: bench, a tool, never imports the command line above
    it); the phases are read from the
    saved profile (``REPORT_PHASES`` and each implementation module's functions).  Nothing is patched."""
    import pstats

    out, saved = Path(spec["tmp"]) / "report", Path(spec["tmp"]) / "report.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(saved), "-m", "nnparity", "report", "--out", str(out),
               "--force", "--jobs", "1"]  # one process: cProfile sees no worker's calls
    t = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=_env(spec.get("threads")), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if not saved.exists():
        raise RuntimeError(f"nnparity report under cProfile wrote no profile (exit {done.returncode}): "
                           + (done.stderr.strip().splitlines() or ["no output"])[-1])
    stats = pstats.Stats(str(saved)).stats
    main = next((v[3] for (filename, _, name), v in stats.items()
                 if name == "main" and filename.endswith(_source_suffixes("nnparity.cli"))), wall)
    return {"exit_code": done.returncode, "startup_s": wall - main, "report_main_s": main, "profiler": "cProfile",
            "phases": profile_phases(stats, REPORT_PHASES + _impl_phases()),
            "reference_train_in_run_reference_s": _caller_seconds(stats, ("reference.model", "train"),
                                                                  ("nnparity.harness", "run_reference"))}


def _worker_main(argv):
    spec, out_path = json.loads(argv[0]), argv[1]
    kind = spec["kind"]
    result = {"impl": _worker_impl, "limits": _worker_limits, "report-profile": _worker_report_profile,
              "threads": _worker_threads}[kind](spec)
    # to the parent, which reads NaN back as NaN (bench.json is written strict, by write_outputs)
    Path(out_path).write_text(json.dumps(result, default=json_default), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- the parent


def _env(threads=None):
    """The workers' environment: this one, with nnparity's thread policy (``nnparity.threads``) where the user set
    no variable; with ``threads``, every framework's thread variables (``threads.VARIABLES``) set to that many,
    whatever they were (``NNPARITY_THREADS``)."""
    from nnparity import threads as thread_policy

    env = dict(os.environ)
    if threads:
        for variable in (v for names in thread_policy.VARIABLES.values() for v in names):
            env.pop(variable, None)
        env.pop(thread_policy.MARK, None)
        env[thread_policy.OVERRIDE] = str(threads)
    thread_policy.apply(env)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CI"] = "1"  # plain progress lines from a report run inside a worker
    return env


def _spawn(spec, timeout=3600, echo=True):
    """Run one worker in a fresh process; its ``[bench]`` lines go to stderr. Returns (result or None, error)."""
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-") as tmp:
        out = Path(tmp) / "result.json"
        spec = dict(spec, tmp=tmp)
        cmd = [sys.executable, "-m", "nnparity.bench", "--worker", json.dumps(spec), str(out)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(spec.get("threads")), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE,
                                text=True)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        tail = []
        try:
            for line in proc.stderr:
                if line.startswith("[bench]"):
                    if echo:
                        sys.stderr.write(line)
                        sys.stderr.flush()
                else:
                    tail = (tail + [line.rstrip()])[-20:]
            proc.wait()
        finally:
            killer.cancel()
        if proc.returncode != 0 or not out.exists():
            last = next((t for t in reversed(tail) if t.strip()), f"exit code {proc.returncode}")
            return None, f"worker failed ({spec['kind']} {spec.get('impl', '')}): {last.strip()}"[:300]
        return json.loads(out.read_text(encoding="utf-8")), ""


#: What ``nnparity report`` and the test suite import (TensorFlow through ``tf_impl``, Keras, torch, ...).
SUITE_IMPORTS = ("nnparity.cli", "nnparity.harness", "nnparity.catalogue", "nnparity.selftest", "reports.build",
                 "reports.html", "matplotlib.pyplot", "sklearn.datasets", "torch_impl.model", "torch_impl.idiomatic",
                 "tf_impl.model", "tf_impl.idiomatic")


def _imports_together(modules, threads=None):
    """Seconds to import ``modules`` together in a fresh interpreter (best of 2; None if one fails)."""
    code = ("import importlib, time; t = time.perf_counter(); "
            f"[importlib.import_module(m) for m in {list(modules)!r}]; "
            "print(time.perf_counter() - t)")
    best = math.inf
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(threads), capture_output=True, text=True)
        if proc.returncode == 0:
            best = min(best, float(proc.stdout.strip().splitlines()[-1]))
    return best if math.isfinite(best) else None


def _run_timed(cmd, timeout=3600, threads=None, imports=SUITE_IMPORTS):
    """Run ``cmd`` (a Python command line) and split its wall time into imports and the rest.

    ``import_s`` is the time to import ``imports`` together in a fresh interpreter: what the command
    pays to import them.  (``python -X importtime`` cannot give it: ``tf_impl`` points file descriptor 2
    at /dev/null while it imports TensorFlow, and importtime's lines go there too; the command still
    runs under ``-X importtime``, and ``largest_imports_s`` lists the top-level imports it did see.)
    Returns wall_s, import_s, compute_s, largest_imports_s, the exit code and the plain progress lines."""
    full = [sys.executable, "-X", "importtime"] + cmd
    t = time.perf_counter()
    proc = subprocess.run(full, cwd=ROOT, env=_env(threads), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    top = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match and match.group(3) == "":
            name = match.group(4).split(".")[0]
            top[name] = top.get(name, 0.0) + int(match.group(2)) / 1e6
    progress = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    largest = dict(sorted(top.items(), key=lambda kv: -kv[1])[:8])
    imported = _imports_together(imports, threads)
    import_s = imported if imported is not None else sum(top.values())
    return {"wall_s": wall, "import_s": import_s, "compute_s": wall - import_s, "imports_measured": list(imports),
            "largest_imports_s": largest, "exit_code": proc.returncode, "progress": progress,
            "stdout_tail": proc.stdout.strip().splitlines()[-3:]}


def _frameworks_imported() -> tuple:
    """The modules whose import bench times: nnparity's own dependencies, then each framework's first module (its
    descriptor's ``modules``: torch, tensorflow, jax...)."""
    from nnparity.impls import described

    return tuple(dict.fromkeys(("numpy", "pandas", "matplotlib.pyplot", "sklearn")
                               + tuple(f.modules[0] for f in described() if f.modules)))


def _import_times(modules=None, threads=None):
    """Each module's import time alone, in a fresh interpreter (best of 2), and a bare interpreter's start."""
    modules = _frameworks_imported() if modules is None else modules
    out = {}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=_env(threads), check=False)
    out["python start (bare interpreter)"] = time.perf_counter() - t
    for module in modules:
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        best = math.inf
        for _ in range(2):
            proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(threads), capture_output=True,
                                  text=True)
            if proc.returncode == 0:
                best = min(best, float(proc.stdout.strip().splitlines()[-1]))
        out[f"import {module}"] = best if math.isfinite(best) else None
    return out


def _machine():
    from nnparity.environment import cpu_info

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu_model": cpu_info()["model"], "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_average": list(load) if load else None}


def _other_processes():
    """Other busy processes at this moment (CPU time accrued recently is not known; listed by state R)."""
    busy = []
    me = {os.getpid(), os.getppid()}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in me:
            continue
        try:
            stat = open(f"/proc/{pid}/stat", encoding="utf-8").read()
            state = stat[stat.rindex(")") + 2]
            if state == "R":
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
                busy.append(cmd[:120])
        except (OSError, ValueError):
            continue
    return busy


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

    nets = parse(networks, tuple(THREAD_NETWORKS if measure_threads else NETWORKS), "--networks")
    names = parse(impl, THREAD_IMPLS if measure_threads else BENCH_IMPLS, "--impl")
    dtypes = parse(dtype, DTYPES, "--dtype")
    if steps is not None and steps < 3:
        raise UsageError(f"--steps must be at least 3 (steps 0 and steps-1 are left out of the step time), got {steps}")
    if repeats is not None and repeats < 1:
        raise UsageError(f"--repeats must be a positive integer, got {repeats}")
    return nets, names, dtypes


def run_bench(networks=None, impls=None, dtypes=None, steps=None, repeats=None, quick=False, report=None,
              echo=True, threads=None):
    """Measure everything; return the result document (``rows`` is the table as a list of records)."""
    networks = list(networks or NETWORKS)
    impls = list(impls or BENCH_IMPLS)
    dtypes = list(dtypes or DTYPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    report = (not quick) if report is None else report
    started = time.time()
    machine = _machine()
    busy = _other_processes()
    spec = {"networks": networks, "dtypes": dtypes, "steps": steps, "repeats": repeats, "quick": quick,
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
                for net in networks:
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
                 "steps": {n: steps or (NETWORKS[n].quick_steps if quick else NETWORKS[n].steps) for n in networks},
                 "networks": {n: {"layer_dims": list(NETWORKS[n].layer_dims), "m": NETWORKS[n].m,
                                  "hidden_activation": NETWORKS[n].hidden_activation,
                                  "output_activation": NETWORKS[n].output_activation, "loss": NETWORKS[n].loss,
                                  "learning_rate": NETWORKS[n].learning_rate, "data": NETWORKS[n].data,
                                  "description": NETWORKS[n].description} for n in networks},
                 "method": METHOD},
        "limits": limits,
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


def _step(bar, label, run):
    """``run()`` (a worker: ``(result or None, error)``), shown on the progress ``bar`` (None: not shown)."""
    if bar is not None:
        bar.working(label)
    t = time.perf_counter()
    out, error = run()
    if bar is not None:
        bar.finished(label, "ok" if out is not None and out.get("status", "ok") == "ok" else "unavailable",
                     time.perf_counter() - t)
    return out, error


def _better_limits(first, second):
    """The limits measured at the start and at the end of a run: per dtype and network, the better of the two
    (a peak or a floor is a best case), both kept in ``runs``."""
    out = {"gemm_peak": {}, "floors": [], "threadpools": first.get("threadpools"), "runs": [first, second]}
    for dtype, peak in first["gemm_peak"].items():
        out["gemm_peak"][dtype] = max(peak, second["gemm_peak"][dtype], key=lambda p: p["gflops"])
    later = {(f["network"], f["dtype"]): f for f in second["floors"]}
    for f in first["floors"]:
        out["floors"].append(min(f, later[(f["network"], f["dtype"])], key=lambda g: g["floor_ms"]))
    return out


METHOD = {
    "step_ms": "median over repetitions of the mean time of steps 1 .. steps-2 of one call of the "
               "implementation's train (full batch), stamped by its on_step callback right after each step's "
               "update; min and max alongside",
    "spread": "(step_ms_max - step_ms_min) / step_ms: the spread of the repetitions",
    "unreliable": f"why the row's ratios (x_floor, x_fastest) cannot be trusted: a spread over "
                  f"{UNRELIABLE_SPREAD:.0%}, "
                  "or a 1-minute load average at the start above the number of cores ('' when neither)",
    "overhead_ms": "median of T(call) - steps x step_ms: what a call pays beyond its steps (array conversion, "
                   "setup, tf.function tracing at step 0, results back to NumPy)",
    "first_call_s": "the first train call in the worker (lazy initialisation, compilation for torch-compile)",
    "matmul_gflop": "FLOPs of the matrix products of one step (2 m n k each), 1e9",
    "gflops": "matmul_gflop / step time",
    "peak_fraction": "gflops / the large-GEMM peak of the dtype (NumPy BLAS, 2048^3)",
    "floor_ms": "best time of exactly those products back to back through NumPy, each in its fastest layout, "
                "in a process of its own (never inside a framework's worker: TensorFlow's spinning thread pools "
                "slow NumPy's BLAS threads there); measured at the start and at the end of the run, the better "
                "of the two",
    "x_floor": "step_ms / floor_ms",
    "x_fastest": "step_ms / the fastest implementation's step_ms on the same network and dtype",
    "capture_ms": "median time of one forward_backward call (the harness's per-layer capture)",
    "capture_steps": "capture_ms / step_ms: a capture costs this many training steps",
    "peak_rss_mib": "peak resident set (VmHWM, the high-water mark getrusage's ru_maxrss reports) of the "
                    "implementation's fresh worker process, reset (/proc/self/clear_refs) just before this row: "
                    "its peak resident memory while running the row, interpreter and framework included",
    "rss_increase_mib": "peak_rss_mib minus the resident set just before the row",
    "import_s": "time to import the framework (and the implementation module) in the fresh worker",
}


def _versions():
    """Python's and the installed versions of nnparity's numerical dependencies and of every framework's
    distributions (its descriptor's ``distributions``: jax's too)."""
    from importlib import metadata

    from nnparity.impls import described

    versions = {"python": sys.version.split()[0]}
    for dist in dict.fromkeys(("numpy", "pandas") + tuple(d for f in described() for d in f.distributions)):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _table(rows, limits, networks, dtypes, impls, machine=None):
    import pandas as pd

    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table.columns:
            table[column] = np.nan if column not in ("status", "note") else ""
    floors = {(f["network"], f["dtype"]): f for f in limits["floors"]}
    peaks = {d: p["gflops"] for d, p in limits["gemm_peak"].items()}
    table["layer_dims"] = table["network"].map(lambda n: ",".join(map(str, NETWORKS[n].layer_dims)))
    table["m"] = table["network"].map(lambda n: NETWORKS[n].m)
    table["matmul_gflop"] = table["network"].map(lambda n: matmul_flops(NETWORKS[n].layer_dims, NETWORKS[n].m) / 1e9)
    table["floor_ms"] = [floors[(n, d)]["floor_ms"] for n, d in zip(table["network"], table["dtype"])]
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
    table["note"] = table["impl"].map(lambda i: NOTES.get(i, ""))
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


def run_suite(report=True, echo=True, threads=None):
    """Suite-level figures: import times; ``nnparity report`` wall time and its profile (the test suite:
    ``run_tests_suite``)."""
    out = {"imports": _import_times(threads=threads)}
    if echo:
        _progress("imports: " + ", ".join(f"{k} {v:.2f} s" for k, v in out["imports"].items() if v is not None))
    if report:
        with tempfile.TemporaryDirectory(prefix="nnparity-bench-report-") as tmp:
            out["report"] = _run_timed(["-m", "nnparity", "report", "--out", str(Path(tmp) / "report"), "--force"],
                                       threads=threads)
        if echo:
            r = out["report"]
            _progress(f"nnparity report: {r['wall_s']:.1f} s wall ({r['import_s']:.1f} s imports), "
                      f"exit {r['exit_code']}")
        profile, error = _spawn({"kind": "report-profile", "threads": threads}, echo=echo)
        out["report_profile"] = profile if profile is not None else {"error": error}
        if echo and profile is not None:
            _progress(f"report under cProfile: {profile['report_main_s']:.1f} s in main()")
    return out


def report_breakdown(profile):
    """Where ``nnparity report``'s time goes, from its profile: ``[(what, seconds), ...]`` in the phases' order,
    each the cumulative time of one function (phases nest, so they overlap and do not sum to the total);
    ``seconds`` is None where the function was not found in the profile."""
    if not profile or "phases" not in profile:
        return []
    return [(f"{p['phase']} [{p['function']}]", p["seconds"]) for p in profile["phases"]]


def harness_overheads(profile):
    """From the report's profile: each implementation module's captures (``forward_backward``) as a fraction of
    its training (``train``) over the default grid, and the reference's extra work in ``run_reference``
    (captures, bounds, per-step bounds: all but its plain training loop) against that loop."""
    if not profile or "phases" not in profile:
        return {}
    seconds = {p["function"]: p["seconds"] for p in profile["phases"]}
    out = {}
    for p in profile["phases"]:
        module, function = p["function"].rsplit(".", 1)
        train = seconds.get(f"{module}.train")
        if function == "forward_backward" and module != "reference.model" and train and p["seconds"] is not None:
            out[p["phase"].split(":")[0]] = {"capture_s": p["seconds"], "train_s": train,
                                             "capture_overhead": p["seconds"] / train}
    run_reference, bound = seconds.get("nnparity.harness.run_reference"), seconds.get("nnparity.harness.bound_step")
    train = profile.get("reference_train_in_run_reference_s")
    if None not in (run_reference, bound, train) and train > bound:
        plain = train - bound
        out["numpy"] = {"plain_train_s": plain, "per_step_bounds_s": bound, "run_reference_s": run_reference,
                        "run_reference_overhead": (run_reference - plain) / plain}
    return out


def targets(table, suite):
    """The issue's targets with the measured values: met, missed, or not measured in this run."""
    out = []

    def row(impl, network, dtype):
        sel = table[(table["impl"] == impl) & (table["network"] == network) & (table["dtype"] == dtype)
                    & (table["status"] == "ok")]
        return None if sel.empty else sel.iloc[0]

    for impl in ("numpy", "torch", "tf-function"):
        for dtype in DTYPES:
            r = row(impl, "cat", dtype)
            value = None if r is None else float(r["x_floor"])
            out.append({"target": f"{impl} cat {dtype}: step <= 1.5 x matmul floor", "limit": 1.5,
                        "measured": value, "met": None if value is None else value <= 1.5,
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


# --------------------------------------------------------------------------- output


#: A table cell: ``format(x, spec)``, empty for a missing value (``nnparity.numbers.number``).
_fmt = partial(number, nan="")


def format_table(table) -> str:
    """The terminal table: one line per implementation x network x dtype."""
    import pandas as pd

    shown = pd.DataFrame({
        "network": table["network"], "dtype": table["dtype"], "impl": table["impl"],
        "step ms (min-max)": [f"{_fmt(s, '.3f')} ({_fmt(a, '.3f')}-{_fmt(b, '.3f')})" if st == "ok" else st[:60]
                              for s, a, b, st in zip(table["step_ms"], table["step_ms_min"], table["step_ms_max"],
                                                     table["status"])],
        "GFLOP/s": table["gflops"].map(lambda x: _fmt(x, ".1f")),
        "%peak": table["peak_fraction"].map(lambda x: _fmt(100 * x, ".0f")),
        "spread": table["spread"].map(lambda x: _fmt(100 * x, ".0f") + "%" if math.isfinite(x) else ""),
        "x floor": table["x_floor"].map(lambda x: _fmt(x, ".2f")),
        "x fastest": table["x_fastest"].map(lambda x: _fmt(x, ".2f")),
        "noise": table["unreliable"].map(lambda u: "unreliable" if u else ""),
        "overhead ms": table["overhead_ms"].map(lambda x: _fmt(x, ".1f")),
        "capture ms": table["capture_ms"].map(lambda x: _fmt(x, ".2f")),
        "peak RSS MiB": table["peak_rss_mib"].map(lambda x: _fmt(x, ".0f")),
    })
    return shown.to_string(index=False)


def format_document(document, table) -> str:
    meta = document["meta"]
    machine, busy = meta["machine"], meta["other_running_processes_at_start"]
    load = machine.get("load_average") or [math.nan]
    end = (meta.get("load_average_end") or [math.nan])[0]
    lines = [f"{machine['cpu_model']}, {machine['cpus']} CPUs, threads: {meta['threads']}; load average "
             f"{load[0]:.2f} at start, {end:.2f} at end"
             + (f"; {len(busy)} other processes were running at start: timings are noisy" if busy else ""), "",
             format_table(table),
             f"spread: (max - min) / median over the repetitions; unreliable: a spread over {UNRELIABLE_SPREAD:.0%} "
             f"or a load average at start above the {machine['cpus']} cores (x floor and x fastest of that row)", ""]
    limits = document["limits"]
    lines.append("limits (NumPy BLAS): " + ", ".join(
        f"GEMM {p['n']}^3 {d} {p['gflops']:.1f} GFLOP/s" for d, p in limits["gemm_peak"].items()))
    for f in limits["floors"]:
        lines.append(f"  matmul floor {f['network']:<6} {f['dtype']}: {f['floor_ms']:.3f} ms for "
                     f"{f['flops'] / 1e9:.4f} GFLOP ({f['floor_gflops']:.1f} GFLOP/s)")
    suite = document.get("suite")
    if suite:
        lines.append("")
        lines.append("imports (fresh interpreter, each alone): " + ", ".join(
            f"{k.replace('import ', '')} {v:.2f} s" for k, v in suite["imports"].items() if v is not None))
        for key, label in (("report", "nnparity report (default grid)"),):
            if key in suite:
                r = suite[key]
                lines.append(f"{label}: {r['wall_s']:.1f} s wall = {r['import_s']:.1f} s imports + "
                             f"{r['compute_s']:.1f} s the rest (exit {r['exit_code']})")
        profile = suite.get("report_profile")
        if profile and "phases" in profile:
            main = profile["report_main_s"]
            lines.append(f"report under cProfile: {main:.1f} s in main() (+ {profile['startup_s']:.1f} s start-up "
                         "imports); cumulative time of named functions (phases nest, so they overlap):")
            for what, seconds in report_breakdown(profile):
                lines.append(f"  {NOT_FOUND}  {what}" if seconds is None
                             else f"  {seconds:7.1f} s {100 * seconds / main:5.1f}%  {what}")
            for name, o in harness_overheads(profile).items():
                lines.append(f"  {name}: captures {100 * o['capture_overhead']:.1f}% of training" if name != "numpy"
                             else f"  numpy: run_reference's extra work (captures, bounds, per-step bounds) "
                                  f"{100 * o['run_reference_overhead']:.0f}% of its plain training loop")
    if document.get("targets"):
        lines.append("")
        lines.append("targets:")
        for t in document["targets"]:
            verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
            value = "n/a" if t["measured"] is None else f"{t['measured']:.3g}"
            noise = f"; unreliable: {t['unreliable']}" if t.get("unreliable") else ""
            lines.append(f"  {verdict:>12}  {t['target']}: {value} (limit {t['limit']:g}{noise})")
    return "\n".join(lines)


def write_outputs(document, table, out_dir, force=False, stem="bench") -> Path:
    """``bench.csv`` and ``bench.json`` (``--threads``: ``threads.csv``, ``threads.json``) into ``out_dir``,
    atomically (a temporary sibling renamed into place)."""
    from nnparity.outdir import atomic_directory

    with atomic_directory(out_dir, force, "benchmark", prefix=".tmp-bench-") as tmp:
        table.to_csv(tmp / f"{stem}.csv", index=False)
        (tmp / f"{stem}.json").write_text(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n",
                                        encoding="utf-8")
    return Path(out_dir)


def report_table(table):
    """The columns of the parity report's "Benchmark" section, formatted."""
    import pandas as pd

    return pd.DataFrame({
        "network": table["network"], "dtype": table["dtype"], "impl": table["impl"],
        "step ms": table["step_ms"].map(lambda x: _fmt(x, ".3f")),
        "min-max": [f"{_fmt(a, '.3f')}-{_fmt(b, '.3f')}" for a, b in zip(table["step_ms_min"], table["step_ms_max"])],
        "GFLOP/s": table["gflops"].map(lambda x: _fmt(x, ".1f")),
        "% peak": table["peak_fraction"].map(lambda x: _fmt(100 * x, ".0f")),
        "× floor": table["x_floor"].map(lambda x: _fmt(x, ".2f")),
        "× fastest": table["x_fastest"].map(lambda x: _fmt(x, ".2f")),
        "spread": table["spread"].map(lambda x: _fmt(100 * x, ".0f") + "%" if math.isfinite(x) else ""),
        "noise": table["unreliable"].map(lambda u: "unreliable" if u else ""),
        "peak RSS MiB": table["peak_rss_mib"].map(lambda x: _fmt(x, ".0f")),
        "status": table["status"],
    })


# --------------------------------------------------------------------------- threads: 1 against 2


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


# --------------------------------------------------------------------------- --suite: where the time goes


#: ``nnparity bench --suite``'s suites: the quick report (``nnparity report``) and make test's pytest command.
SUITES = ("report", "tests")
SUITE_CHOICES = SUITES + ("all",)
#: The table's columns, ``nnparity.timing``'s phases in the order a piece runs them, then the report's own: a
#: piece's ``other`` (its seconds outside every phase) and ``rendering`` (``write_report``).  Others follow.
SUITE_PHASES = ("import", "compile", "reference", "captures", "first update", "trajectory", "predictions", "other",
                "rendering")
#: Rows after the implementations: the reference, the report's pieces outside every phase, its rendering.
SUITE_LAST_ROWS = ("numpy", "harness", "report")
#: make test's command (the Makefile's ``PARALLEL``), quiet and without pytest's cache.
TESTS_COMMAND = ("-m", "pytest", "-n", "auto", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider")
SLOWEST = 10


def parse_suite(text: str) -> list[str]:
    """``--suite``'s value: ``report``, ``tests`` or ``all`` (both), as the list of suites to run."""
    if text not in SUITE_CHOICES:
        raise UsageError(f"unknown suite {text!r}; use --suite report, tests or all (--suite alone: all)")
    return list(SUITES) if text == "all" else [text]


def _suite_machine() -> dict:
    import platform

    from nnparity.environment import cpu_info

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu_info()["model"],
            "cores": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def _load() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _run_streamed(cmd, env, timeout, echo, prefix):
    """Run ``cmd`` in the repository root, its output (stdout and stderr together) echoed to stderr line by line
    after ``prefix`` when ``echo``; returns (exit code, wall seconds, the last 20 lines)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    tail = []
    try:
        for line in proc.stdout:
            if echo:
                sys.stderr.write(prefix + line)
                sys.stderr.flush()
            tail = (tail + [line.rstrip()])[-20:]
        proc.wait()
    finally:
        killer.cancel()
    return proc.returncode, time.perf_counter() - started, tail


def _suite_run(label, cmd, env, timeout, echo):
    """The common record of one suite's run: its command, date, load average at start and end, wall time."""
    load_start, started = _load(), time.time()
    code, wall, tail = _run_streamed(cmd, env, timeout, echo, f"[bench] {label}: ")
    return {"command": " ".join(["python"] + cmd[1:]), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                                               time.localtime(started)),
            "load_start": load_start, "load_end": _load(), "wall_s": wall, "exit_code": code, "tail": tail}


def run_report_suite(cases: str = "*", impl: str = "all", echo: bool = True, threads=None, timeout=3600) -> dict:
    """``nnparity report`` as the user runs it (the quick tier, ``--jobs`` by default, in a temporary directory;
    ``cases``, ``impl``: its ``--cases`` and ``--impl``), and its ``timings.csv``: ``rows`` of impl, phase and
    seconds summed over its pieces (``report``'s ``rendering`` included), the command's wall time, the worker
    processes it ran on (``jobs``: its default, at most one per piece)."""
    import pandas as pd

    from nnparity import workers

    env = _env(threads)
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-suite-") as tmp:
        out = Path(tmp) / "report"
        cmd = [sys.executable, "-m", "nnparity", "report", "--out", str(out)] + \
              (["--cases", cases] if cases != "*" else []) + (["--impl", impl] if impl != "all" else [])
        record = _suite_run("report", cmd, env, timeout, echo)
        if not (out / "timings.csv").exists():  # exit 2 or a crash: no report, nothing to read
            last = next((t for t in reversed(record["tail"]) if t.strip()), "")
            raise RuntimeError(f"nnparity report wrote no timings.csv (exit {record['exit_code']}): "
                               f"{last.strip()}"[:300])
        timings = pd.read_csv(out / "timings.csv")
    pieces = sorted(set(timings["piece"]) - {"report"})
    jobs = workers.default_jobs(env)
    summed = timings.groupby(["impl", "phase"], sort=False)["seconds"].sum()
    return dict(record, suite="report", cases=cases, impl=impl, jobs=jobs, processes=min(jobs, len(pieces)) or 1,
                pieces=len(pieces),
                rows=[{"impl": i, "phase": p, "seconds": float(v)} for (i, p), v in summed.items()])


def impl_of_test(name: str, names=None) -> str | None:
    """The implementation a parity pair's test runs (its id ends in ``-<impl>]``), or None."""
    from nnparity.impls import IMPLS

    for impl in sorted(names or IMPLS, key=len, reverse=True):
        if name.endswith(f"-{impl}]"):
            return impl
    return None


def junit_tests(path) -> list[dict]:
    """Every test case of a JUnit XML file: ``{"test": "file::name", "seconds", "outcome"}``."""
    import xml.etree.ElementTree as ET

    tests = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        tests.append({"test": f"{case.get('classname', '')}::{case.get('name', '')}",
                      "seconds": float(case.get("time") or 0.0), "outcome": outcome})
    return tests


def junit_summary(tests: list[dict]) -> dict:
    """The tests' seconds summed per implementation (parity pairs by their id; every other test: ``other
    tests``), and the ``SLOWEST`` slowest tests."""
    per_impl: dict[str, dict] = {}
    for t in tests:
        key = impl_of_test(t["test"]) or "other tests"
        entry = per_impl.setdefault(key, {"impl": key, "tests": 0, "seconds": 0.0})
        entry["tests"] += 1
        entry["seconds"] += t["seconds"]
    order = _row_order(per_impl)
    return {"tests": len(tests), "seconds": sum(t["seconds"] for t in tests),
            "failed": sum(t["outcome"] in ("failure", "error") for t in tests),
            "per_impl": [per_impl[k] for k in order],
            "slowest": sorted(tests, key=lambda t: -t["seconds"])[:SLOWEST]}


def run_tests_suite(pytest_args=(), echo: bool = True, threads=None, timeout=7200) -> dict:
    """make test's pytest command (``TESTS_COMMAND``, the quick tier, ``pytest_args`` after it) with
    ``NNPARITY_TIMINGS_DIR`` set, so that each pytest process writes its seconds per implementation and phase
    (parity_tests/conftest.py), and ``--junitxml``: ``rows`` summed over the processes, the wall time, the
    processes that ran tests (xdist's workers, or the one process without xdist), and the JUnit durations."""
    from nnparity import timing

    env = _env(threads)
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-tests-") as tmp:
        env[timing.DIRECTORY] = str(Path(tmp) / "timings")
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, *TESTS_COMMAND, f"--junitxml={junit}", *pytest_args]
        record = _suite_run("tests", cmd, env, timeout, echo)
        files = timing.read(Path(tmp) / "timings") if (Path(tmp) / "timings").is_dir() else []
        if not junit.exists() or not files:
            last = next((t for t in reversed(record["tail"]) if t.strip()), "")
            raise RuntimeError(f"pytest left no JUnit XML or timings (exit {record['exit_code']}): "
                               f"{last.strip()}"[:300])
        tests = junit_tests(junit)
    summed: dict[tuple[str, str], float] = {}
    for document in files:
        for row in document["seconds"]:
            summed[row["impl"], row["phase"]] = summed.get((row["impl"], row["phase"]), 0.0) + row["seconds"]
    testing = [d for d in files if d["label"].startswith("gw")] or files  # xdist's controller runs no test
    return dict(record, suite="tests", processes=len(testing), pytest_args=list(pytest_args),
                rows=[{"impl": i, "phase": p, "seconds": v} for (i, p), v in summed.items()],
                junit=junit_summary(tests))


def run_suites(which, cases="*", impl="all", pytest_args=(), echo=True, threads=None) -> dict:
    """Run the chosen suites (``parse_suite``); the result document (``format_suites``, ``write_suite_outputs``)."""
    started = time.time()
    document = {"meta": {"command": " ".join(["nnparity"] + sys.argv[1:]) if sys.argv else "nnparity bench --suite",
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                         "machine": _suite_machine(), "versions": _versions(),
                         "threads": threads or f"nnparity's policy ({_policy_words()})"},
                "suites": {}}
    for name in which:
        if echo:
            _progress(f"--suite {name}: " + ("nnparity report (quick tier)" if name == "report" else
                                             "make test's pytest (quick tier; minutes)"))
        document["suites"][name] = (run_report_suite(cases, impl, echo, threads) if name == "report"
                                    else run_tests_suite(pytest_args, echo, threads))
    return document


def _row_order(names) -> list[str]:
    """The implementations in the registry's order, then ``SUITE_LAST_ROWS``, then the rest by name."""
    from nnparity.impls import IMPLS

    names = list(dict.fromkeys(names))
    first = [n for n in IMPLS if n in names and n not in SUITE_LAST_ROWS]
    last = [n for n in SUITE_LAST_ROWS if n in names]
    return first + sorted(n for n in names if n not in first + last) + last


def phase_table(rows):
    """Rows of impl, phase, seconds as one table: a row per implementation (``_row_order``), a column per phase
    (``SUITE_PHASES`` that occur, then others), ``total``; a last row ``total``.  Empty where nothing was
    counted."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["impl", "phase", "seconds"])
    wide = frame.pivot_table(index="impl", columns="phase", values="seconds", aggfunc="sum")
    phases = [p for p in SUITE_PHASES if p in wide.columns] + sorted(set(wide.columns) - set(SUITE_PHASES))
    wide = wide.reindex(index=_row_order(wide.index), columns=phases)
    wide["total"] = wide.sum(axis=1, skipna=True)
    wide.loc["total"] = wide.sum(axis=0, skipna=True)
    wide.columns.name = None
    return wide.rename_axis("impl").reset_index()


def suite_table(document):
    """Every suite's phase table, one after the other (column ``suite`` first): ``suite.csv``."""
    import pandas as pd

    tables = [phase_table(r["rows"]).assign(suite=name) for name, r in document["suites"].items()]
    table = pd.concat(tables, ignore_index=True)
    return table[["suite"] + [c for c in table.columns if c != "suite"]]


def suite_header(document, name) -> str:
    """The one line above a suite's table: what ran, when, where, the wall time and the load."""
    r, machine = document["suites"][name], document["meta"]["machine"]
    if name == "report":
        what = ("nnparity report (quick tier, " + ("default grid" if r["cases"] == "*" else f"--cases {r['cases']}")
                + ("" if r["impl"] == "all" else f", --impl {r['impl']}") + ")")
    else:
        what = ("make test (python -m pytest -n auto --dist loadgroup, quick tier"
                + "".join(" " + a for a in r["pytest_args"]) + ")")
    load = lambda values: "n/a" if not values else f"{values[0]:.2f}"  # noqa: E731
    processes = (f"{r['processes']} processes (seconds summed over them: the total can exceed the wall time)"
                 if r["processes"] > 1 else "1 process")
    return (f"{what}: {r['started'][:16].replace('T', ' ')}, {machine['platform']}, {machine['cpu_model']}, "
            f"{machine['cores']} cores; wall {r['wall_s']:.1f} s on {processes}; "
            f"load average {load(r['load_start'])} at start, "
            f"{load(r['load_end'])} at end; exit {r['exit_code']}")


def _cells(table):
    shown = table.copy()
    for column in shown.columns[1:]:
        shown[column] = shown[column].map(lambda x: _fmt(x, ".1f"))
    return shown


def _markdown_table(table) -> str:
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|---" + "|--:" * (len(columns) - 1) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


SUITE_NOTE = ("seconds per implementation and phase (nnparity.timing): import (the framework's first load), "
              "compile (JAX's backend compiles), reference (the numpy reference's run), captures (step 0 and the "
              "checkpoints), first update, trajectory (the free run), predictions; the report adds harness/other (a "
              "piece's seconds outside every phase: comparing, data) and report/rendering (write_report)")


def format_suites(document, markdown: bool = False) -> str:
    """Each suite's header line and phase table (``markdown``: as Markdown tables); the tests' JUnit durations
    per implementation and the slowest tests."""
    parts = []
    for name, r in document["suites"].items():
        table = _cells(phase_table(r["rows"]))
        parts.append(suite_header(document, name))
        parts.append(_markdown_table(table) if markdown else table.to_string(index=False))
        if name == "tests":
            junit = r["junit"]
            per_impl = [{"impl": e["impl"], "tests": e["tests"], "seconds": _fmt(e["seconds"], ".1f")}
                        for e in junit["per_impl"]]
            slowest = [{"seconds": _fmt(t["seconds"], ".1f"), "test": t["test"]} for t in junit["slowest"]]
            intro = (f"JUnit: {junit['tests']} tests, {junit['seconds']:.1f} s summed over the tests "
                     f"({junit['failed']} failed); per implementation (parity pairs by id):")
            if markdown:
                import pandas as pd

                parts += [intro, _markdown_table(pd.DataFrame(per_impl)), f"the {len(slowest)} slowest tests:",
                          _markdown_table(pd.DataFrame(slowest))]
            else:
                parts.append(intro + "\n" + "\n".join(f"  {e['impl']:>14}  {e['tests']:5d} tests  {e['seconds']:>8} s"
                                                       for e in per_impl))
                parts.append(f"the {len(slowest)} slowest tests:\n" + "\n".join(
                    f"  {t['seconds']:>8} s  {t['test']}" for t in slowest))
    if not markdown:
        parts.append(SUITE_NOTE)
    return "\n\n".join(parts)


def write_suite_outputs(document, out_dir, force=False) -> Path:
    """``suite.csv`` (``suite_table``), ``suite.json`` (the document) and ``suite.md`` (``format_suites``'
    Markdown) into ``out_dir``, atomically."""
    from nnparity.outdir import atomic_directory

    with atomic_directory(out_dir, force, "benchmark", prefix=".tmp-bench-") as tmp:
        suite_table(document).to_csv(tmp / "suite.csv", index=False)
        (tmp / "suite.json").write_text(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n",
                                        encoding="utf-8")
        (tmp / "suite.md").write_text(format_suites(document, markdown=True) + "\n\n" + SUITE_NOTE + ".\n",
                                      encoding="utf-8")
    return Path(out_dir)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--worker":
        from nnparity.bench import _worker_main as worker  # the module itself, not this __main__ copy

        sys.exit(worker(sys.argv[2:]))
    print("usage: nnparity bench --help (this module's entry point is for worker processes)", file=sys.stderr)
    sys.exit(2)
