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
    (["--impl", "jax"], "unknown impl 'jax'"),
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
