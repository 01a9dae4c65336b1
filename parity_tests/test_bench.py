"""nnparity bench: output files, FLOP counts of the matmul floor, derived columns, bad options.

No timing is asserted: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nnparity import bench, impls

ROOT = Path(__file__).resolve().parents[1]


def nnparity(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "nnparity", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def expected_flops(dims, m):
    """Independently: forward W[l] A[l-1], dW[l] = dZ[l] A[l-1].T for l = 1..L, dA[l-1] = W[l].T dZ[l] for l = 2..L."""
    L = len(dims) - 1
    forward = sum(2 * dims[l] * dims[l - 1] * m for l in range(1, L + 1))
    dW = sum(2 * dims[l] * m * dims[l - 1] for l in range(1, L + 1))
    dA = sum(2 * dims[l - 1] * dims[l] * m for l in range(2, L + 1))
    return forward + dW + dA


@pytest.mark.parametrize("dims, m", [((3, 5, 4, 2), 7), ((2, 4, 1), 400), ((64, 1), 267),
                                     ((12288, 20, 7, 5, 1), 209)])
def test_matmul_flops_of_one_step(dims, m):
    assert bench.matmul_flops(dims, m) == expected_flops(dims, m)
    products = bench.matmul_products(dims, m)
    L = len(dims) - 1
    assert len(products) == 3 * L - 1  # L forward, L dW, L - 1 dA
    # (3, 5, 4, 2) with m = 7 by hand: forward 2*7*(15+20+8) = 602, dW the same, dA 2*7*(20+8) = 392
    if dims == (3, 5, 4, 2):
        assert bench.matmul_flops(dims, m) == 602 + 602 + 392


def test_matmul_floor_times_exactly_those_products():
    floor = bench.matmul_floor((3, 5, 4, 2), 7, "float64", repeats=3)
    assert floor["flops"] == expected_flops((3, 5, 4, 2), 7)
    assert [p["product"] for p in floor["products"]] == [p[0] for p in bench.matmul_products((3, 5, 4, 2), 7)]
    assert all(p["layout"] in ("CC", "CF", "FC", "FF") for p in floor["products"])
    assert 0 < floor["floor_ms"] <= floor["floor_median_ms"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick"
    result = nnparity("bench", "--quick", "--networks", "planar", "--impl", "numpy,torch", "--dtype", "float64",
                      "--out", out)
    return result, out


def test_quick_bench_reports_progress_one_line_per_worker(quick_run):
    """Not a terminal: one plain line per worker (the limits, each implementation, the limits again)."""
    result, _ = quick_run
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line.split(":")[0] for line in lines if not line.startswith("[bench]")] == [
        "[1/4] limits (GEMM peak, matmul floors)", "[2/4] numpy", "[3/4] torch", "[4/4] limits again"]


def test_quick_bench_writes_csv_and_json(quick_run):
    result, out = quick_run
    assert result.returncode == 0, result.stderr
    assert "planar" in result.stdout and "x floor" in result.stdout
    table = pd.read_csv(out / "bench.csv")
    document = json.loads((out / "bench.json").read_text())
    assert list(table.columns) == bench.COLUMNS
    assert set(table["impl"]) == {"numpy", "torch"} and set(table["network"]) == {"planar"}
    assert set(table["dtype"]) == {"float64"}
    assert document["rows"] == json.loads(json.dumps(document["rows"]))  # strict JSON (no NaN)
    assert len(document["rows"]) == len(table)
    assert document["limits"]["gemm_peak"]["float64"]["gflops"] > 0
    (floor,) = document["limits"]["floors"]
    assert floor["flops"] == expected_flops((2, 4, 1), 400)
    assert (table["blas_floor_ms"] == floor["floor_ms"]).all()
    own = {f["impl"]: f for f in document["product_floors"]}  # each row's framework's products, in its worker
    assert set(own) == {"numpy", "torch"}
    for _, row in table.iterrows():
        passes = own[row["impl"]]
        assert row["floor_op"] == {"numpy": "NumPy BLAS: np.dot", "torch": "torch.mm"}[row["impl"]]
        assert row["floor_ms"] == min(passes["before"]["floor_ms"], passes["after"]["floor_ms"])
    assert document["suite"] is None  # --quick: no suite-level timings
    assert not list(out.parent.glob(".tmp-bench-*"))  # written atomically, nothing left behind


def test_quick_bench_ratios_are_consistent(quick_run):
    result, out = quick_run
    table = pd.read_csv(out / "bench.csv")
    ok = table[table["status"] == "ok"]
    assert "numpy" in set(ok["impl"])
    assert (ok["steps"] == bench.NETWORKS["planar"].quick_steps).all()
    assert (ok["step_ms_min"] <= ok["step_ms"]).all() and (ok["step_ms"] <= ok["step_ms_max"]).all()
    gflop = expected_flops((2, 4, 1), 400) / 1e9
    np.testing.assert_allclose(ok["matmul_gflop"], gflop)
    np.testing.assert_allclose(ok["gflops"], gflop / (ok["step_ms"] / 1e3))
    np.testing.assert_allclose(ok["x_floor"], ok["step_ms"] / ok["floor_ms"])
    np.testing.assert_allclose(ok["x_fastest"], ok["step_ms"] / ok["step_ms"].min())
    fastest = ok.loc[ok["step_ms"].idxmin()]
    assert fastest["x_fastest"] == 1
    assert (ok["peak_rss_mib"] > 0).all() and ok["final_cost"].map(math.isfinite).all()


@pytest.mark.parametrize("args, message", [
    (["--networks", "mnist"], "unknown network 'mnist'"),
    (["--networks", "conv,mnist"], "unknown network 'mnist'"),
    (["--networks", "conv", "--impl", "torch-compile"], "has conv layers; use --impl with one or more of: numpy"),
    (["--networks", "conv", "--steps", "5"], "the conv row times one forward_backward per call"),
    (["--impl", "mxnet"], "unknown impl 'mxnet'"),
    (["--dtype", "float16"], "unknown dtype 'float16'"),
    (["--steps", "2"], "--steps must be at least 3"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--repeats", "x"], "--repeats must be a positive integer"),
    (["--load"], "use it with --threads alone"),
    (["--threads", "2", "--load"], "use it with --threads alone"),
    (["--threads", "--suite"], "--suite does not apply to the thread measurement"),
    (["--threads", "--networks", "planar"], "unknown network 'planar'"),
    (["--threads", "--impl", "keras"], "unknown impl 'keras'"),
    (["--threads", "0"], "--threads must be a positive integer"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, message):
    out = tmp_path / "b"
    result = nnparity("bench", "--quick", "--out", out, *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_existing_out_needs_force(tmp_path):
    from nnparity.outdir import atomic_directory

    out = tmp_path / "b"
    with atomic_directory(out, False, "benchmark") as tmp:  # an earlier benchmark directory, marker and all
        (tmp / "bench.csv").write_text("x\n")
    before = sorted(p.name for p in out.iterdir())
    result = nnparity("bench", "--quick", "--networks", "planar", "--impl", "numpy", "--out", out)
    assert result.returncode == 2 and "exists; pass --force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and sorted(p.name for p in out.iterdir()) == before


def test_report_gets_a_benchmark_section(tmp_path, quick_run):
    from nnparity import data, harness
    from nnparity.spec import Case
    from reports.build import write_report

    _, out = quick_run
    case = Case(layer_dims=(2, 4, 1), hidden_activation="tanh", epochs=3, learning_rate=1.2, data="planar")
    details = harness.run_case(case, data.load_data("planar"), impls=("torch",))
    table = bench.report_table(pd.read_csv(out / "bench.csv"))
    written = write_report(details, tmp_path / "r", {"command": "test"}, bench=table)
    text = (written / "report.md").read_text()
    assert "## Benchmark" in text
    section = text[text.index("## Benchmark"):]
    assert "| network" in section and "planar" in section and "× floor" in section
    assert "--bench" in nnparity("report", "--help").stdout


# --------------------------------------------------------------------------- step timing through on_step


class FakeClock:
    """``time.perf_counter`` for bench's module: advanced only by the fake implementations below, so the step
    times are known exactly (nothing here measures real time)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def fake_impl(clock, calls_on_step=True, takes_on_step=True):
    """An implementation whose loop shares no function name with any real one: step 0 takes 2 s (tracing),
    every later step 1 s, and returning to NumPy 0.5 s, on ``clock``."""

    def loop(parameters, case, on_step):
        for step in range(case.epochs):
            clock.now += 2.0 if step == 0 else 1.0
            if calls_on_step and on_step is not None:
                on_step(step)
        clock.now += 0.5
        return dict(parameters), np.full(case.epochs, 0.25)

    def train_with(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
        return loop(parameters, case, on_step)

    def train_without(parameters, X, Y, case, schedule=None, masks=None):
        return loop(parameters, case, None)

    name = "fake-" + ("calls" if calls_on_step else "silent") + ("" if takes_on_step else "-old-protocol")
    return SimpleNamespace(name=name, train=train_with if takes_on_step else train_without, forward_backward=None)


def measure(monkeypatch, impl, clock, steps=5):
    monkeypatch.setattr(bench.steps, "time", SimpleNamespace(perf_counter=clock))  # _measure_row's module
    row, floor = bench._measure_row(impl, bench.NETWORKS["planar"], "float64", steps, repeats=2)
    assert floor["framework"] is None and math.isnan(floor["floor_ms"])  # a framework no floor knows: none
    return row


def test_step_time_comes_from_on_step_whatever_the_loop_calls(monkeypatch):
    clock = FakeClock()
    row = measure(monkeypatch, fake_impl(clock), clock)
    assert row["status"] == "ok", row["status"]
    assert row["timing"] == "per-step clock (on_step)"
    # steps 1..3 of 5, stamped after each update: 1 s each; the call (6.5 s) minus 5 steps: 1.5 s overhead
    assert row["step_ms"] == pytest.approx(1000.0) and row["step_ms_min"] == row["step_ms_max"] == row["step_ms"]
    assert row["overhead_ms"] == pytest.approx(1500.0)
    assert row["first_call_s"] == pytest.approx(6.5) and row["final_cost"] == 0.25


@pytest.mark.parametrize("takes_on_step", [True, False], ids=["never-calls-it", "no-on_step-keyword"])
def test_a_train_without_on_step_calls_falls_back_to_call_time_over_steps(monkeypatch, takes_on_step):
    clock = FakeClock()
    row = measure(monkeypatch, fake_impl(clock, calls_on_step=False, takes_on_step=takes_on_step), clock)
    assert row["status"] == "ok", row["status"]
    assert row["step_ms"] == pytest.approx(6500.0 / 5) and row["overhead_ms"] == pytest.approx(0.0)
    assert row["timing"].startswith("T(call)/steps") and "on_step 0 times" in row["timing"]


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_bench_leaves_the_implementation_modules_as_it_found_them(name):
    """Step times come from ``on_step`` alone: while bench measures a real implementation, and after, no function
    or class of the implementation's modules (or the reference's) is replaced (no timing hook patched in)."""
    import importlib
    import sys

    impl = impls.get(name)
    importlib.import_module(impl.module)  # every framework is installed here: a missing one fails, never skips
    prefixes = ("reference", impl.module.split(".")[0])
    modules = {m: sys.modules[m] for m in sorted(sys.modules) if m.split(".")[0] in prefixes}
    before = {m: dict(vars(module)) for m, module in modules.items()}

    def replaced():
        return sorted(f"{m}.{k}" for m, module in modules.items() for k in set(before[m]) | set(vars(module))
                      if before[m].get(k) is not vars(module).get(k)
                      and (callable(before[m].get(k)) or callable(vars(module).get(k))))

    seen = []

    def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
        def step(t):
            seen.append(replaced())  # inside the implementation's own loop, at every step
            if on_step is not None:
                on_step(t)

        return impl.train(parameters, X, Y, case, schedule, masks, on_step=step)

    watched = SimpleNamespace(name=impl.name, train=train, forward_backward=impl.forward_backward,
                              framework=impl.framework)
    row, floor = bench._measure_row(watched, bench.NETWORKS["planar"], "float64", 5, repeats=1)
    assert row["status"] == "ok" and row["timing"] == "per-step clock (on_step)", row
    assert row["floor_ms"] == floor["floor_ms"] > 0 and floor["before"]["op"] == floor["after"]["op"]
    assert len(seen) == 10 and all(r == [] for r in seen), seen  # the warm-up call and one timed call
    assert replaced() == []


# --------------------------------------------------------------------------- the report's profile


def test_report_phases_name_functions_that_exist():
    """Every phase of the report's profile names a function defined in its module's source: a rename is
    caught here (and in a profile, the row says it was not found instead of reporting 0)."""
    import importlib.util

    phases = bench.REPORT_PHASES + bench._impl_phases()
    assert {"torch_impl.model.train", "tf_impl.model.train", "tf_impl.idiomatic.forward_backward"} <= {
        f"{module}.{function}" for _, module, function in phases}
    for _, module, function in phases:
        source = Path(importlib.util.find_spec(module).origin).read_text()
        assert re.search(rf"^\s*def {function}\(", source, re.M), f"{module}.{function}"


def test_profile_phases_read_cumulative_time_and_flag_a_missing_function():
    import cProfile
    import pstats

    from nnparity.spec import Case
    from reference.initializers import initialize_parameters
    from reference.model import train

    case = Case(layer_dims=(2, 3, 1), hidden_activation="tanh", epochs=3).validate()
    X, Y = np.random.RandomState(0).randn(2, 5), np.ones((1, 5))
    parameters = initialize_parameters(case.layer_dims, case.init, case.init_scale, case.seed, case.dtype)
    profiler = cProfile.Profile()
    profiler.runcall(train, parameters, X, Y, case)
    phases = bench.profile_phases(pstats.Stats(profiler).stats, (
        ("training", "reference.model", "train"), ("forward passes", "reference.model", "model_forward"),
        ("a renamed one", "reference.model", "train_renamed"), ("another module's train", "torch_impl.model", "train")))
    train_row, forward_row, renamed, other = phases
    assert train_row["function"] == "reference.model.train" and train_row["calls"] == 1 and train_row["note"] == ""
    assert forward_row["calls"] == 3 and 0 <= forward_row["seconds"] <= train_row["seconds"]
    for row in (renamed, other):
        assert row["seconds"] is None and row["calls"] == 0 and row["note"] == bench.NOT_FOUND
    profile = {"phases": phases, "report_main_s": 1.0, "startup_s": 0.0}
    breakdown = dict(bench.report_breakdown(profile))
    assert breakdown["a renamed one [reference.model.train_renamed]"] is None


def test_document_shows_a_phase_not_found_and_the_overheads():
    phases = [
        {"phase": "reference: run_reference", "function": "nnparity.harness.run_reference", "seconds": 10.0},
        {"phase": "bounds", "function": "nnparity.harness.bound_step", "seconds": 3.0},
        {"phase": "torch: training (train)", "function": "torch_impl.model.train", "seconds": 8.0},
        {"phase": "torch: captures", "function": "torch_impl.model.forward_backward", "seconds": 0.4},
        {"phase": "write_report", "function": "reports.build.write_report", "seconds": None},
    ]
    profile = {"phases": phases, "report_main_s": 20.0, "startup_s": 1.0, "reference_train_in_run_reference_s": 5.0}
    overheads = bench.harness_overheads(profile)
    assert overheads["torch"]["capture_overhead"] == pytest.approx(0.05)
    # the plain loop is 5 - 3 = 2 s of run_reference's 10 s: 8 s of extra work, 4 times the loop
    assert overheads["numpy"]["plain_train_s"] == pytest.approx(2.0)
    assert overheads["numpy"]["run_reference_overhead"] == pytest.approx(4.0)
    lines = bench.format_document(
        {"meta": {"machine": {"cpu_model": "x", "cpus": 2, "load_average": [1.0]}, "threads": 2,
                  "other_running_processes_at_start": []},
         "limits": {"gemm_peak": {}, "floors": []}, "suite": {"imports": {}, "report_profile": profile}},
        pd.DataFrame({c: [] for c in bench.COLUMNS})).splitlines()
    assert any(bench.NOT_FOUND in line and "reports.build.write_report" in line for line in lines)
    assert any("torch: captures 5.0% of training" in line for line in lines)
    assert any("400% of its plain training loop" in line for line in lines)


# --------------------------------------------------------------------------- noise


def test_spread_is_range_over_median():
    assert bench.spread([1.0, 1.1, 1.3]) == pytest.approx(0.3 / 1.1)
    assert bench.spread([2.0]) == 0.0
    assert math.isnan(bench.spread([]))


@pytest.mark.parametrize("spreads, load, expected", [
    ([0.10, 0.20], 0.5, ""),  # 20 % is the limit, not over it
    ([0.10, 0.25], 0.5, "spread 25% > 20%"),
    ([0.05], 2.5, "load average 2.50 > 2 cores at start"),
    ([0.30], 3.0, "spread 30% > 20%; load average 3.00 > 2 cores at start"),
    ([math.nan, 0.01], 0.0, "spread unknown"),
])
def test_a_ratio_is_unreliable_when_a_spread_is_large_or_the_machine_busy(spreads, load, expected):
    assert bench.unreliable(spreads, load, cpus=2) == expected


def test_bench_rows_carry_their_spread_and_noise(quick_run):
    _, out = quick_run
    table = pd.read_csv(out / "bench.csv", keep_default_na=False, na_values=[""])
    document = json.loads((out / "bench.json").read_text())
    load, cpus = document["meta"]["machine"]["load_average"][0], document["meta"]["machine"]["cpus"]
    ok = table[table["status"] == "ok"]
    np.testing.assert_allclose(ok["spread"], (ok["step_ms_max"] - ok["step_ms_min"]) / ok["step_ms"])
    for spread, reason in zip(ok["spread"], ok["unreliable"].astype(object).fillna("")):
        assert bool(reason) == (spread > 0.20 or load > cpus)


# --------------------------------------------------------------------------- the conv row


CONV_IMPLS = [name for name in bench.BENCH_IMPLS if bench.offers_conv(name)]


def test_every_conv_implementation_has_its_frameworks_primitive():
    assert CONV_IMPLS == [name for name in impls.IMPLS if impls.REGISTRY[name].offers_conv]
    assert "torch-compile" not in CONV_IMPLS
    assert {impls.REGISTRY[name].framework for name in CONV_IMPLS} <= set(bench.FLOORS) | {"numpy"}
    assert "conv" in bench.parse_options()[0]  # part of the default


@pytest.mark.parametrize("changes", [{}, {"stride": 2, "pad": 0, "f": 3}, {"m": 3, "n_C_prev": 1, "n_C": 5}])
def test_conv_flops_count_forward_dW_and_dA_prev(changes):
    case = bench.CONV_NETWORKS["conv"].case.replace(**changes)
    forward = 2 * case.m * case.n_H * case.n_W * case.n_C * case.f * case.f * case.n_C_prev
    assert bench.conv_flops(case) == 3 * forward  # dW and dA_prev each cost what the forward does
    if not changes:  # the cat-sized step: 16 x 64 x 64 windows of 7 x 7 x 3 cells, 32 filters
        assert (case.n_H, case.n_W, case.n_H_pool, case.f, case.pad, case.n_C) == (64, 64, 32, 7, 3, 32)
        assert bench.conv_flops(case) == 3 * 2 * 16 * 64 * 64 * 32 * 147


def test_every_row_takes_its_floor_from_its_own_worker():
    """A row's floor is the one its worker measured (its framework's conv primitive, or its framework's matrix
    products); a dense row also shows the limits worker's NumPy floor of the same products (``blas_floor_ms``)."""
    limits = {"gemm_peak": {"float32": {"gflops": 100.0}}, "floors": [{"network": "planar", "dtype": "float32",
                                                                        "floor_ms": 0.5}]}
    rows = [{"network": "conv", "dtype": "float32", "impl": "torch", "status": "ok", "step_ms": 30.0,
             "step_ms_min": 29.0, "step_ms_max": 33.0, "floor_ms": 20.0, "floor_op": "torch F.conv2d",
             "note": "conv: torch_impl.conv"},
            {"network": "conv", "dtype": "float32", "impl": "numpy", "status": "ok", "step_ms": 150.0,
             "step_ms_min": 140.0, "step_ms_max": 160.0, "floor_ms": 50.0, "floor_op": bench.conv.NUMPY_FLOOR},
            {"network": "planar", "dtype": "float32", "impl": "torch", "status": "ok", "step_ms": 1.0,
             "step_ms_min": 1.0, "step_ms_max": 1.0, "floor_ms": 0.25, "floor_op": "torch.mm"}]
    table = bench.run._table(rows, limits, ["planar", "conv"], ["float32"], ["numpy", "torch"])
    assert list(table.columns) == bench.COLUMNS
    conv = table[table["network"] == "conv"].set_index("impl")
    np.testing.assert_allclose(conv["x_floor"], [3.0, 1.5])  # numpy first: the implementations' order
    np.testing.assert_allclose(conv["x_fastest"], [5.0, 1.0])
    gflop = bench.conv_flops(bench.CONV_NETWORKS["conv"].case) / 1e9
    np.testing.assert_allclose(conv["matmul_gflop"], gflop)
    np.testing.assert_allclose(conv["gflops"], gflop / (conv["step_ms"] / 1e3))
    assert conv.loc["torch", "floor_op"] == "torch F.conv2d" and conv.loc["torch", "note"] == "conv: torch_impl.conv"
    assert (conv["layer_dims"] == bench.CONV_NETWORKS["conv"].shape()).all() and (conv["m"] == 16).all()
    planar = table[table["network"] == "planar"].iloc[0]
    assert planar["floor_ms"] == 0.25 and planar["x_floor"] == 4.0 and planar["floor_op"] == "torch.mm"
    assert planar["blas_floor_ms"] == 0.5 and conv["blas_floor_ms"].isna().all()


@pytest.mark.parametrize("framework", sorted(bench.products.FRAMEWORK_PRODUCTS))
def test_each_frameworks_floor_runs_exactly_the_steps_products(framework):
    """Every way a framework's floor offers computes the step's products, in order, with their shapes and values:
    a wrongly stored transpose is a wrong product.  The operands are in [0, 1), so the terms of each dot product
    are non-negative and a computed one is within gamma_n = n u / (1 - n u) of the exact one, relative (n the inner
    dimension, u = 2**-53 in float64; Higham, Accuracy and Stability, 3.1); two computations of it are within twice
    that of each other."""
    dims, m = (6, 5, 4, 1), 9
    products = bench.matmul_products(dims, m)
    wanted = [a @ b for _, a, b in bench.limits.operands(products, "float64")]
    ways = bench.products.FRAMEWORK_PRODUCTS[framework](products, "float64")
    assert len(ways) == (2 if framework in ("tensorflow", "jax") else 1)  # eager and compiled, where both exist
    for way, run in ways.items():
        got = [np.asarray(x) for x in run()]
        assert [g.shape for g in got] == [w.shape for w in wanted], way
        for g, w, (name, _, inner, _) in zip(got, wanted, products):
            assert g.dtype == np.float64, (way, name)
            gamma = inner * 2.0**-53 / (1 - inner * 2.0**-53)
            np.testing.assert_allclose(g, w, rtol=2 * gamma, atol=0, err_msg=f"{way}: {name}")
    measured = bench.products.products_pass(framework, dims, m, "float64", repeats=2)
    assert measured["op"] in ways and set(measured["candidates"]) == set(ways)
    assert measured["floor_ms"] == min(measured["candidates"].values()) > 0


def test_a_framework_without_known_products_has_no_floor():
    measured = bench.products.products_pass("mxnet", (2, 4, 1), 5, "float64", repeats=1)
    assert math.isnan(measured["floor_ms"]) and measured["op"] == "no matrix products known for mxnet"


def _target_table(rows):
    columns = {"network": [], "dtype": [], "impl": [], "status": [], "x_floor": [], "unreliable": []}
    for network, dtype, impl, x_floor in rows:
        for key, value in zip(columns, (network, dtype, impl, "ok", x_floor, "")):
            columns[key].append(value)
    return pd.DataFrame(columns)


def test_every_implementation_is_held_to_its_frameworks_products_on_the_target_networks():
    """Issue 22: every implementation's step at most 1.3x its own framework's products, on the networks whose step
    is mostly products (not planar); a row not measured says so."""
    table = _target_table([("cat", "float64", "torch", 1.25), ("cat", "float64", "jax", 1.31),
                           ("cat", "float32", "jax", 1.3), ("planar", "float64", "torch", 40.0)])
    out = {t["target"]: t for t in bench.run.targets(table, None)}
    assert bench.products.STEP_TARGET == 1.3 and "planar" not in bench.products.TARGET_NETWORKS
    assert len(out) == 4 and all(t["limit"] == 1.3 for t in out.values())  # cat: 2 implementations x 2 dtypes
    assert out["torch cat float64: step <= 1.3 x its framework's matrix products"]["met"] is True
    assert out["jax cat float64: step <= 1.3 x its framework's matrix products"]["met"] is False
    assert out["jax cat float32: step <= 1.3 x its framework's matrix products"]["met"] is True
    assert out["torch cat float32: step <= 1.3 x its framework's matrix products"]["met"] is None
    (alone,) = bench.run.targets(_target_table([("planar", "float64", "torch", 40.0)]), None)
    assert alone["met"] is None and "on cat and wide (--networks)" in alone["target"]


def test_the_numpy_floor_times_the_convs_products():
    case = bench.CONV_NETWORKS["conv"].case.replace(m=1, n_H_prev=8, n_W_prev=8)
    floor = bench.products_floor(bench.conv_products(case), "float32", repeats=2)
    assert floor["flops"] == bench.conv_flops(case)
    assert [p["shape"] for p in floor["products"]] == ["64x147 @ 147x32", "147x64 @ 64x32", "64x32 @ 32x147"]
    assert 0 < floor["floor_ms"] <= floor["floor_median_ms"]


#: The quick tier's conv bench: one implementation per framework (a worker each; the full tier runs all nine).
CONV_QUICK = ["numpy", "torch", "tf", "jax"]


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory, request):
    out = tmp_path_factory.mktemp("bench") / "conv"
    names = CONV_IMPLS if request.config.getoption("--full") else CONV_QUICK
    result = nnparity("bench", "--quick", "--networks", "conv", "--dtype", "float32", "--repeats", "2",
                      "--impl", ",".join(names), "--out", out)
    return result, out, names


def test_quick_conv_bench_times_every_conv_implementation_against_its_primitive(conv_run):
    result, out, names = conv_run
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "bench.csv")
    document = json.loads((out / "bench.json").read_text())
    assert list(table.columns) == bench.COLUMNS and len(document["rows"]) == len(table)
    assert list(table["impl"]) == names and set(table["network"]) == {"conv"}
    assert (table["status"] == "ok").all(), table[["impl", "status"]]
    assert (table["step_ms"] > 0).all() and (table["floor_ms"] > 0).all() and (table["repeats"] == 2).all()
    np.testing.assert_allclose(table["x_floor"], table["step_ms"] / table["floor_ms"])
    assert table["x_floor"].map(math.isfinite).all() and table["x_fastest"].min() == 1
    assert (table["matmul_gflop"] == bench.conv_flops(bench.CONV_NETWORKS["conv"].case) / 1e9).all()
    # the floor: each row's framework's own primitive, measured in this run, in that row's worker, twice
    floors = {f["impl"]: f for f in document["conv"]["floors"]}
    assert list(floors) == names
    for _, row in table.iterrows():
        floor = floors[row["impl"]]
        assert floor["framework"] == impls.REGISTRY[row["impl"]].framework
        assert floor["op"] == row["floor_op"] and floor["floor_ms"] == row["floor_ms"]
        assert row["floor_ms"] == min(floor["before"]["floor_ms"], floor["after"]["floor_ms"])
        assert row["floor_op"] in floor["before"]["candidates"]
    assert floors["numpy"]["op"] == bench.conv.NUMPY_FLOOR and "F.conv2d" in floors["torch"]["op"]
    assert "tf.nn.conv2d" in floors["tf"]["op"] and "conv_general_dilated" in floors["jax"]["op"]
    assert "reference.conv_vectorised" in table.set_index("impl").loc["numpy", "note"]
    # the loops: one call, a line of their own, not a row
    loops = document["conv"]["loops"]
    assert loops["m"] == 1 and loops["loops_s"] > 0 and loops["x_vectorised"] > 0
    assert "numpy loops (reference.conv)" in result.stdout and "floor ms" in result.stdout


# --------------------------------------------------------------------------- threads: bit identity, load, rows


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_arrays_one_ulp_apart_are_not_bit_identical(dtype):
    a = np.array([[1.0, -2.5], [0.0, 3e-30]], dtype=dtype)
    b = a.copy()
    b[0, 1] = np.nextafter(b[0, 1], np.inf, dtype=dtype)  # -2.5 + 1 ulp
    assert bench.bit_identical(a, a.copy()) and bench.max_ulps(a, a.copy()) == 0
    assert not bench.bit_identical(a, b) and bench.max_ulps(a, b) == 1
    c = a.copy()
    c[1, 0] = -0.0  # equal as numbers, different bytes
    assert a[1, 0] == c[1, 0] and not bench.bit_identical(a, c) and bench.max_ulps(a, c) == 0
    d = a.copy()
    d[1, 1] = np.nextafter(np.nextafter(d[1, 1], -np.inf, dtype=dtype), -np.inf, dtype=dtype)
    assert bench.max_ulps(a, d) == 2


def test_the_same_numbers_in_another_dtype_are_not_bit_identical():
    a = np.array([0.5, 1.0])
    assert not bench.bit_identical(a, a.astype(np.float32)) and bench.max_ulps(a, a.astype(np.float32)) == math.inf


def test_compare_runs_names_each_array_that_differs():
    W = np.arange(6, dtype=np.float32).reshape(2, 3)
    first = {"W1": W, "b1": np.zeros((2, 1), np.float32), "costs": np.array([0.7, 0.6], np.float32)}
    second = {k: v.copy() for k, v in first.items()}
    assert bench.compare_runs(first, second) == {"bit_identical": True, "max_ulps": 0.0, "differing": {}}
    second["W1"][1, 2] = np.nextafter(W[1, 2], np.float32(0))
    assert bench.compare_runs(first, second) == {"bit_identical": False, "max_ulps": 1.0, "differing": {"W1": 1.0}}


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie no one has reaped yet has stopped
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_the_load_processes_are_stopped_after_an_exception(error):
    with pytest.raises(error):
        with bench.busy_load(2) as started:
            assert len(started) == 2 and all(p.poll() is None for p in started)
            raise error("stopped in the middle")
    assert all(p.returncode is not None for p in started)
    assert all(_gone(p.pid) for p in started)


def test_a_load_process_stops_by_itself_when_its_parent_dies():
    """A parent killed outright (no finally runs): its busy loops notice that they were orphaned and stop."""
    import time

    code = ("import os; from nnparity import bench; p = bench.busy_load(1).__enter__(); "
            "print(p[0].pid, flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30  # a wait for an event, not a timing: it stops within a moment
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid)


def _fake_worker_rows(tmp_path, threads, seconds, W):
    """What a ``threads`` worker returns for numpy on l2-tanh float32, with its arrays saved as workers save them."""
    np.savez(tmp_path / f"numpy-{threads}-l2-tanh-float32.npz", W1=W, costs=np.array([0.69, 0.5], np.float32))
    return [{"impl": "numpy", "network": "l2-tanh", "dtype": "float32", "threads": threads, "steps": 2,
             "status": "ok", "seconds": seconds, "repeatable": True}]


def test_thread_rows_from_fake_timings_and_arrays(tmp_path):
    W = np.array([[0.25, -1.5]], np.float32)
    W2 = W.copy()
    W2[0, 0] = np.nextafter(W[0, 0], np.float32(1))
    measured = {1: _fake_worker_rows(tmp_path, 1, [1.0, 1.1, 1.05], W),
                2: _fake_worker_rows(tmp_path, 2, [0.5, 0.8, 0.6], W2)}
    (row,) = bench.thread_rows(measured, tmp_path, "quiet", load_average=0.3, cpus=2)
    assert row["seconds_1"] == 1.05 and row["seconds_2"] == 0.6 and row["ratio"] == pytest.approx(0.6 / 1.05)
    assert row["spread_1"] == pytest.approx(0.1 / 1.05) and row["spread_2"] == pytest.approx(0.3 / 0.6)
    assert row["unreliable"] == "spread 50% > 20%"
    assert row["bit_identical"] is False and row["max_ulps"] == 1 and row["differing"] == "W1 1 ulp"
    (busy,) = bench.thread_rows({1: measured[1], 2: _fake_worker_rows(tmp_path, 2, [1.0, 1.0, 1.0], W)}, tmp_path,
                                "load", load_average=4.0, cpus=2)
    assert busy["bit_identical"] is True and busy["differing"] == "" and busy["condition"] == "load"
    assert busy["unreliable"] == "load average 4.00 > 2 cores at start"

    table = pd.DataFrame([row, busy]).reindex(columns=bench.THREAD_COLUMNS)
    document = {"meta": {"machine": {"cpu_model": "x", "cpus": 2, "load_average": [0.3]}, "condition": "quiet",
                         "load_processes": 0, "load_average_end": [0.4], "other_running_processes_at_start": []}}
    text = bench.format_threads(document, table)
    assert "no (1 ulp)" in text and "unreliable" in text and "quiet" in text
    assert "numpy: bit-identical at 1 and 2 threads in 1 of 2; two threads faster in 0 of 0 reliable ratios" in text


def test_a_setting_that_failed_is_a_row_that_says_so(tmp_path):
    measured = {1: _fake_worker_rows(tmp_path, 1, [1.0], np.ones((1, 2), np.float32)),
                2: [{"impl": "numpy", "network": "l2-tanh", "dtype": "float32", "status": "unavailable: boom"}]}
    (row,) = bench.thread_rows(measured, tmp_path, "quiet", 0.0, 2)
    assert row["status"] == "unavailable: boom (at 2 threads)" and "bit_identical" not in row
    table = pd.DataFrame([row]).reindex(columns=bench.THREAD_COLUMNS)
    document = {"meta": {"machine": {"cpu_model": "x", "cpus": 2, "load_average": [0.3]}, "condition": "quiet",
                         "load_processes": 0, "load_average_end": [0.4], "other_running_processes_at_start": []}}
    assert "numpy: 1 rows unavailable: boom (at 2 threads)" in bench.format_threads(document, table)


def test_every_thread_setting_gives_xla_flags_it_accepts():
    """XLA reads an XLA_FLAGS that does not start with "--" as a file name, and aborts the import of JAX."""
    for threads in (1, 2, 3):
        assert bench.worker_env(threads)["XLA_FLAGS"].startswith("--")


def test_worker_environment_sets_every_thread_variable(monkeypatch):
    from nnparity import threads

    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the user's own value (not one the policy set)
    monkeypatch.setenv(threads.MARK, "")
    monkeypatch.delenv(threads.OVERRIDE, raising=False)
    two = bench.worker_env(2)
    for variable in (v for names in threads.VARIABLES.values() for v in names):
        assert variable in two
    assert two["OMP_NUM_THREADS"] == two["OPENBLAS_NUM_THREADS"] == two["TF_NUM_INTRAOP_THREADS"] == "2"
    assert threads.policy(two) == {framework: 2 for framework in threads.POLICY}
    assert bench.worker_env()["OMP_NUM_THREADS"] == "7"  # without --threads the user's choice stands


@pytest.fixture(scope="module")
def thread_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "threads"
    result = nnparity("bench", "--threads", "--load", "--impl", "numpy", "--networks", "l1-logreg,l2-tanh",
                      "--steps", "3", "--repeats", "2", "--out", out)
    return result, out


def test_thread_measurement_writes_its_table_and_json(thread_run):
    result, out = thread_run
    assert result.returncode == 0, result.stderr
    assert "bit-identical" in result.stdout and "under load: " in result.stdout
    table = pd.read_csv(out / "threads.csv")
    document = json.loads((out / "threads.json").read_text())
    assert list(table.columns) == bench.THREAD_COLUMNS and len(document["rows"]) == len(table) == 4
    assert set(table["network"]) == {"l1-logreg", "l2-tanh"} and set(table["dtype"]) == {"float32", "float64"}
    assert (table["status"] == "ok").all() and (table["condition"] == "load").all()
    np.testing.assert_allclose(table["ratio"], table["seconds_2"] / table["seconds_1"])
    assert table["bit_identical"].isin([True, False]).all() and (table["steps"] == 3).all()
    meta = document["meta"]
    assert meta["condition"] == "load" and meta["load_processes"] == os.cpu_count() == len(meta["load_pids"])
    assert all(_gone(pid) for pid in meta["load_pids"])  # stopped after the measurement
    assert len(meta["machine"]["load_average"]) == 3 and meta["unreliable_spread"] == bench.UNRELIABLE_SPREAD


def test_each_setting_ran_with_that_many_threads(thread_run):
    """Every BLAS loaded in each worker (NumPy's OpenBLAS, SciPy's) reports the setting (threadpoolctl reads it
    from the library)."""
    _, out = thread_run
    workers = json.loads((out / "threads.json").read_text())["workers"]
    assert [(w["threads"], set(w["threads_seen"]["numpy_blas"])) for w in workers] == [(1, {1}), (2, {2})]


# --------------------------------------------------------------------------- --suite: where the time goes

TINY_CASE = "l1-logreg-saturating-float64-fullbatch"
TORCH_PHASES = {"import", "captures", "first update", "trajectory", "predictions"}


def phases_of(table, impl):
    row = table[table["impl"] == impl].iloc[0]
    return {p for p in bench.SUITE_PHASES if p in table.columns and not pd.isna(row[p])}


@pytest.fixture(scope="module")
def suite_report(tmp_path_factory):
    """``bench --suite report`` on one small case and torch alone (the report as a user runs it, a subprocess)."""
    out = tmp_path_factory.mktemp("suite") / "report"
    result = nnparity("bench", "--suite", "report", "--cases", TINY_CASE, "--impl", "torch", "--markdown",
                      "--out", out)
    return result, out


def test_suite_report_counts_every_implementation_it_ran_with_its_phases(suite_report):
    result, out = suite_report
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "suite.csv")
    assert set(table["suite"]) == {"report"}
    assert list(table["impl"]) == ["torch", "numpy", "harness", "report", "total"]
    assert phases_of(table, "torch") >= TORCH_PHASES
    assert phases_of(table, "numpy") == {"reference"} and phases_of(table, "report") == {"rendering"}
    assert phases_of(table, "harness") == {"other"}
    phases = [c for c in table.columns if c not in ("suite", "impl", "total")]
    body = table[table["impl"] != "total"]
    np.testing.assert_allclose(body[phases].sum(axis=1, skipna=True), body["total"], rtol=1e-9)
    np.testing.assert_allclose(table.loc[table["impl"] == "total", "total"].iloc[0], body["total"].sum(), rtol=1e-9)


def test_suite_report_seconds_fit_in_its_wall_time_and_the_header_says_where(suite_report):
    result, out = suite_report
    document = json.loads((out / "suite.json").read_text())
    report = document["suites"]["report"]
    counted = sum(r["seconds"] for r in report["rows"])
    assert report["pieces"] == 1 and report["processes"] == 1  # one case: the report runs it in its own process
    assert 0 < counted <= report["wall_s"] * report["processes"]
    assert report["exit_code"] == 0 and len(report["load_start"]) == 3 and len(report["load_end"]) == 3
    header = result.stdout.strip().splitlines()[0]
    assert header.startswith(f"nnparity report (quick tier, --cases {TINY_CASE}, --impl torch): ")
    assert f"{os.cpu_count()} cores" in header and "load average" in header and "wall" in header
    assert "| impl | import |" in result.stdout  # --markdown: the table to paste
    markdown = (out / "suite.md").read_text()
    assert markdown.startswith(header) and "| torch |" in markdown and "| report |" in markdown


def test_the_conftest_writes_each_processes_seconds_when_asked(tmp_path):
    """A pytest process started with NNPARITY_TIMINGS_DIR writes its nnparity.timing seconds at its end."""
    from nnparity import timing

    test = "parity_tests/test_parity_grid.py::test_parity[l1-logreg-float32-fullbatch-torch]"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **{timing.DIRECTORY: str(tmp_path / "t")})
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", test],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    (document,) = timing.read(tmp_path / "t")
    assert document["label"] == "main" and document["pid"] != os.getpid()
    seconds = {(r["impl"], r["phase"]): r["seconds"] for r in document["seconds"]}
    assert {phase for impl, phase in seconds if impl == "torch"} >= TORCH_PHASES
    assert seconds["numpy", "reference"] > 0


def test_suite_tests_sums_the_workers_files_and_the_junit_durations(tmp_path):
    """``bench --suite tests`` narrowed to two tests on one xdist worker: the worker's seconds, the JUnit
    durations per implementation (the pair by its id), within the wall time."""
    out = tmp_path / "tests"
    tests = ("parity_tests/test_parity_grid.py::test_parity[l1-logreg-float32-fullbatch-torch] "
             "parity_tests/test_parity_grid.py::test_grid_covers_the_issue")
    result = nnparity("bench", "--suite", "tests", f"--pytest-args=-n 1 {tests}", "--out", out)
    assert result.returncode == 0, result.stderr
    run = json.loads((out / "suite.json").read_text())["suites"]["tests"]
    assert run["processes"] == 1 and run["exit_code"] == 0
    assert 0 < sum(r["seconds"] for r in run["rows"]) <= run["wall_s"] * run["processes"]
    junit = run["junit"]
    assert junit["tests"] == 2 and junit["failed"] == 0
    assert [(e["impl"], e["tests"]) for e in junit["per_impl"]] == [("torch", 1), ("other tests", 1)]
    assert junit["slowest"][0]["test"].endswith("[l1-logreg-float32-fullbatch-torch]")
    table = pd.read_csv(out / "suite.csv")
    assert phases_of(table, "torch") >= TORCH_PHASES and phases_of(table, "numpy") == {"reference"}
    assert "JUnit: 2 tests" in result.stdout and "slowest" in result.stdout


def test_phase_table_orders_rows_and_columns_and_totals_them():
    rows = [{"impl": "report", "phase": "rendering", "seconds": 2.0}, {"impl": "numpy", "phase": "reference",
                                                                      "seconds": 1.0},
            {"impl": "jax", "phase": "compile", "seconds": 0.5}, {"impl": "torch", "phase": "import", "seconds": 3.0},
            {"impl": "torch", "phase": "import", "seconds": 1.0}, {"impl": "mine.py", "phase": "warm-up",
                                                                   "seconds": 0.25}]
    table = bench.phase_table(rows)
    assert list(table["impl"]) == ["torch", "jax", "mine.py", "numpy", "report", "total"]
    assert list(table.columns) == ["impl", "import", "compile", "reference", "rendering", "warm-up", "total"]
    assert table.set_index("impl").loc["torch", "import"] == 4.0
    assert table.set_index("impl").loc["total", "total"] == 7.75


def test_junit_durations_per_implementation_by_the_pairs_ids(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text('<testsuites><testsuite name="pytest">'
                   '<testcase classname="parity_tests.test_parity_grid" name="test_parity[l2-tanh-float64-torch-nn]" '
                   'time="3.5"/><testcase classname="parity_tests.test_parity_grid" '
                   'name="test_parity[l2-tanh-float64-torch]@l2-tanh-float64" time="1.5">'  # --dist loadgroup's
                   '<failure message="x"/></testcase>'
                   '<testcase classname="parity_tests.test_cli" name="test_help" time="0.25"/>'
                   '<testcase classname="parity_tests.test_parity_grid" '
                   'name="test_parity[l2-tanh-float64-tf-function]" '
                   'time="2"><skipped/></testcase></testsuite></testsuites>')
    summary = bench.junit_summary(bench.junit_tests(xml))
    assert [(e["impl"], e["tests"], e["seconds"]) for e in summary["per_impl"]] == [
        ("torch", 1, 1.5), ("torch-nn", 1, 3.5), ("tf-function", 1, 2.0), ("other tests", 1, 0.25)]
    assert summary["tests"] == 4 and summary["failed"] == 1 and summary["seconds"] == 7.25
    assert [t["seconds"] for t in summary["slowest"]] == [3.5, 2.0, 1.5, 0.25]
    assert summary["slowest"][2]["test"] == "parity_tests.test_parity_grid::test_parity[l2-tanh-float64-torch]"


@pytest.mark.parametrize("args, message", [
    (["--suite", "nightly"], "unknown suite 'nightly'"),
    (["--suite", "report", "--cases", "nothing-*"], "--cases 'nothing-*' matches no case"),
    (["--suite", "report", "--impl", "mxnet"], "unknown implementation 'mxnet'"),
    (["--suite", "report", "--impl", "numpy"], "compares nothing"),
    (["--suite", "tests", "--cases", "l1-*"], "--cases and --impl choose the report's"),
    (["--suite", "report", "--pytest-args=-x"], "--pytest-args applies to --suite tests or all"),
    (["--suite", "--networks", "cat"], "--networks does not apply to --suite"),
    (["--suite", "--quick"], "--quick does not apply to --suite"),
    (["--markdown"], "--markdown applies to nnparity bench --suite only"),
    (["--cases", "l1-*"], "--cases applies to nnparity bench --suite only"),
])
def test_bad_suite_options_exit_2_with_one_line_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "s"
    result = nnparity("bench", "--out", out, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and result.stdout == ""


def suite_document(rows, command="nnparity bench --suite report --readme README.md"):
    """A ``run_suites`` document of one report suite, as the bench writes it (for the README's block)."""
    return {"meta": {"command": command, "machine": {"platform": "Linux-x86_64", "cpu_model": "Xeon", "cores": 2}},
            "suites": {"report": {"cases": "*", "impl": "all", "processes": 2, "started": "2026-12-07T22:40:00+0000",
                                  "wall_s": 100.0, "load_start": [1.5, 1.0, 1.0], "load_end": [1.8, 1.2, 1.0],
                                  "exit_code": 0, "rows": rows}}}


ROWS = [{"impl": "torch", "phase": "import", "seconds": 2.25}, {"impl": "torch", "phase": "trajectory", "seconds": 5.0},
        {"impl": "numpy", "phase": "reference", "seconds": 15.0}, {"impl": "report", "phase": "rendering",
                                                                   "seconds": 16.0}]


def test_readme_block_replaces_only_what_lies_between_the_markers():
    text = f"# Title\n\nbefore\n\n{bench.README_BEGIN}\nold table\n{bench.README_END}\n\nafter\n"
    block = bench.readme_block(suite_document(ROWS))
    spliced = bench.splice_readme(text, block)
    head, rest = spliced.split(bench.README_BEGIN)
    inside, tail = rest.split(bench.README_END)
    assert head == "# Title\n\nbefore\n\n" and tail == "\n\nafter\n" and "old table" not in spliced
    assert inside.strip().startswith("nnparity report (quick tier, default grid): 2026-12-07 22:40, Linux-x86_64, "
                                     "Xeon, 2 cores; wall 100.0 s on 2 processes")
    assert "| torch | 2.2 |" in inside or "| torch | 2.3 |" in inside  # the phase table, Markdown
    assert "| total |" in inside and "`nnparity bench --suite report --readme README.md`" in inside
    assert bench.splice_readme(spliced, block) == spliced  # a second run changes nothing more


@pytest.mark.parametrize("text, found", [
    ("no markers at all\n", "(found 0 and 0)"),
    (f"{bench.README_END}\n{bench.README_BEGIN}\n", "(found 1 and 1)"),  # in the wrong order
    (f"{bench.README_BEGIN}\n{bench.README_BEGIN}\n{bench.README_END}\n", "(found 2 and 1)"),
])
def test_a_readme_without_its_two_markers_is_refused_before_any_work_and_left_as_it_was(tmp_path, text, found):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    result = nnparity("bench", "--suite", "report", "--readme", readme, "--out", tmp_path / "s")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and found in result.stderr
    assert f"--readme {readme}: the file needs the two marker lines" in result.stderr
    assert readme.read_text() == text and not (tmp_path / "s").exists()
    missing = nnparity("bench", "--suite", "report", "--readme", tmp_path / "absent.md", "--out", tmp_path / "s")
    assert missing.returncode == 2 and "no such file" in missing.stderr and not (tmp_path / "absent.md").exists()


def test_write_readme_rewrites_the_file_whole_and_keeps_its_mode(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_BEGIN}\n{bench.README_END}\n")
    readme.chmod(0o640)
    bench.write_readme(readme, bench.readme_block(suite_document(ROWS)))
    assert "| numpy |" in readme.read_text() and readme.read_text().startswith("intro\n")
    assert readme.stat().st_mode & 0o777 == 0o640 and [p.name for p in tmp_path.iterdir()] == ["README.md"]



def test_the_tests_own_implementations_are_one_row_of_the_tests_suite():
    files = [{"label": "gw0", "seconds": [{"impl": "torch", "phase": "captures", "seconds": 1.5},
                                          {"impl": "/tmp/pytest-of-root/x/hangs.py", "phase": "trajectory",
                                           "seconds": 2.0},
                                          {"impl": "faulty", "phase": "trajectory", "seconds": 0.5}]},
             {"label": "gw1", "seconds": [{"impl": "torch", "phase": "captures", "seconds": 0.5},
                                          {"impl": "numpy", "phase": "reference", "seconds": 3.0}]}]
    rows = {(r["impl"], r["phase"]): r["seconds"] for r in bench.tests_rows(files)}
    assert rows == {("torch", "captures"): 2.0, (bench.TESTS_OWN, "trajectory"): 2.5, ("numpy", "reference"): 3.0}


def test_the_readmes_coverage_block_is_make_coverages_output():
    """Both tiers' line coverage as ``.ci/coverage`` prints it, the difference their difference."""
    text = (ROOT / "README.md").read_text()
    start, stop = bench.readme_markers(text, "README.md", (bench.COVERAGE_BEGIN, bench.COVERAGE_END))
    block = text[start:stop]
    assert re.search(r"make coverage.*20\d\d-\d\d-\d\d.*\d+ cores, load average", block)
    quick = float(re.search(r"^\| quick \(make test\) \| ([\d.]+) % \| \d+ \|$", block, re.M).group(1))
    full = float(re.search(r"^\| full \(make test-all\) \| ([\d.]+) % \| \d+ \|$", block, re.M).group(1))
    assert float(re.search(r"^difference: (-?[\d.]+) points", block, re.M).group(1)) == pytest.approx(full - quick,
                                                                                                        abs=0.051)


WHEN_WHERE = (r": \d{4}-\d\d-\d\d \d\d:\d\d, .+, \d+ cores; wall [\d.]+ s on .+; "
              r"load average [\d.]+ at start, [\d.]+ at end; exit 0$")
README_HEADER = re.compile(r"^(nnparity report \(quick tier, default grid\)"
                           r"|make test \(python -m pytest -n auto --dist loadgroup, quick tier\))" + WHEN_WHERE)


def test_the_readmes_timing_table_is_the_benchs_output():
    """The README's table between its markers is what ``bench --suite --readme`` writes: each suite's header line
    (date, machine, cores, wall time, load, exit 0) above its table, whose rows and columns add up."""
    text = (ROOT / "README.md").read_text()
    start, stop = bench.readme_markers(text, "README.md")
    lines = [line for line in text[start:stop].splitlines() if line.strip()]
    assert lines[-1].startswith("Seconds per implementation and phase; generated by `nnparity bench --suite")
    suites = []  # (header line, the table's rows of cells)
    for line in lines[:-1]:
        if line.startswith("|"):
            suites[-1][1].append([cell.strip() for cell in line.strip().strip("|").split("|")])
        else:
            suites.append((line, []))
    assert suites and suites[0][0].startswith("nnparity report (quick tier, default grid)")
    for header, (columns, rule, *body) in suites:
        assert README_HEADER.match(header), header
        assert columns[0] == "impl" and columns[-1] == "total" and set(columns[1:4]) <= set(bench.SUITE_PHASES)
        assert [c for c in columns if c in bench.SUITE_PHASES] == [p for p in bench.SUITE_PHASES if p in columns]
        assert body[-1][0] == "total" and len(rule) == len(columns)
        numbers = np.array([[float(c) if c else 0.0 for c in row[1:]] for row in body])
        # each cell is rounded to 0.1 s: a sum of n cells is within n * 0.05 s of its rounded total
        assert np.all(np.abs(numbers[:, :-1].sum(axis=1) - numbers[:, -1]) <= 0.05 * numbers.shape[1] + 1e-9)
        assert np.all(np.abs(numbers[:-1].sum(axis=0) - numbers[-1]) <= 0.05 * len(body) + 1e-9)
