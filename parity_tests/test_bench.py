"""nnparity bench: output files, FLOP counts of the matmul floor, derived columns, bad options.

No timing is asserted: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nnparity import bench

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
    (["--impl", "mxnet"], "unknown impl 'mxnet'"),
    (["--dtype", "float16"], "unknown dtype 'float16'"),
    (["--steps", "2"], "--steps must be at least 3"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--repeats", "x"], "--repeats must be a positive integer"),
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
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))
    return bench._measure_row(impl, bench.NETWORKS["planar"], "float64", steps, repeats=2)


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


def test_bench_patches_no_implementation():
    source = Path(bench.__file__).read_text()
    for gone in ("_STEP_HOOKS", "_hooked", "_TFWithTickingFunction", "_step_started", "setattr("):
        assert gone not in source, gone


# --------------------------------------------------------------------------- the report's profile


def test_report_phases_name_functions_that_exist():
    """Every phase of the report's profile names a function defined in its module's source: a rename is
    caught here (and in a profile, the row says it was not found instead of reporting 0)."""
    import importlib.util
    import re

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
