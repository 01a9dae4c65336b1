"""drift on the conv grid: each implementation's chain against the reference, run to run and at 1 and 2 threads."""

import numpy as np
import pytest

from nnparity import drift

CASE = "conv3x3s1p1-maxpool2s2-7x7x3to4-m2-generated-float32"


def test_variation_counts_ulps_and_the_bound():
    first = {"Z": np.array([1.0, 2.0], dtype=np.float32), "dW": np.array([0.5, -0.5], dtype=np.float32)}
    bounds = {"Z": np.array([1e-6, 1e-6]), "dW": np.array([1e-7, 1e-7])}
    same = drift._variation([dict(first), dict(first)], first, bounds, "float32")
    assert same == {"max_ulp": 0.0, "bound_ratio": 0.0, "quantity": None}
    assert drift._describe(same) == "identical"
    moved = dict(first, dW=np.array([0.5, np.nextafter(np.float32(-0.5), np.float32(0))], dtype=np.float32))
    var = drift._variation([dict(first), moved], first, bounds, "float32")
    assert var["max_ulp"] == 1 and var["quantity"] == "dW"
    assert var["bound_ratio"] == pytest.approx(2.0 ** -25 / 2e-7)  # one ulp of 0.5 below, over 2B
    assert drift._describe(var).startswith("1 ulp (dW), 0.15 of the bound")


def test_drift_command_reports_the_conv_cases(capsys):
    pytest.importorskip("torch")
    from nnparity import cli

    # one worker (2 threads) keeps the test short; the default runs 1 and 2
    code = cli.main(["drift", "--cases", CASE, "--impl", "torch", "--repeats", "2", "--threads", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert "this process: torch 1; 2 threads: torch 2" in lines[0]  # the policy here, the worker's count there
    header, row = lines[1].split(), lines[2]
    assert header == ["case", "impl", "vs", "reference", "repeats", "threads", "2"]
    assert row.split()[:2] == [CASE, "torch"]
    # passes against the reference; run to run: identical
    ratio = float(row.split("bound ratio ")[1].split()[0])
    assert 0 < ratio <= 1 and "FAIL" not in row
    at_two = row.split(" identical ", 1)[1].strip()
    # at 2 threads: identical or within a fraction of the rounding bound, and the line says which
    assert at_two == "identical" or (" ulp (" in at_two and float(at_two.split(", ")[1].split()[0]) < 1), at_two
    assert [line.split(" (")[0] for line in err.splitlines()] == [f"[1/2] {CASE} torch: done",
                                                                  "[2/2] conv chains at 2 threads: done"]
