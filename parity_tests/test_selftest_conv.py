"""The self-test's conv faults: each injected into torch's conv layers is caught by the conv harness on the conv
grid, first where the catalogue says; the unaltered conv runs pass, bit for bit; every fault is undone."""

import pytest

pytest.importorskip("torch")

from nnparity import selftest  # noqa: E402
from nnparity.convspec import conv_grid  # noqa: E402

#: fault -> (the grid case that catches it first, its first quantity): where docs/selftest.md says.
WHERE = {
    "conv-without-bias": (0, "Z"),
    "kernel-transposed": (0, "Z"),
    "padding-one-side": (0, "Z"),
    "float32-input": (0, "Z"),
    "max-pool-grad-every-cell": (0, "dZ"),
    "average-pool-grad-not-divided": (1, "dZ"),
    "stride-1-in-backward": (2, "dA_prev"),
    "dW-over-m": (0, "dW"),
}


@pytest.fixture(scope="module")
def result():
    return selftest.run_selftest(repeats=3, faults=[], conv_faults=selftest.conv_catalogue())


def test_every_conv_fault_is_caught_where_documented(result):
    faults, _ = result
    grid = conv_grid(("float64",))
    assert sorted(faults["fault"]) == sorted(WHERE)
    assert (faults["grid"] == "conv").all()
    for row in faults.itertuples(index=False):
        case, quantity = WHERE[row.fault]
        assert row.detected and row.localised, (row.fault, row.found)
        assert (row.case, row.quantity) == (grid[case].name, quantity), (row.fault, row.found)
        # a failing row far beyond the rounding bound, from a clean row that passed
        assert row.classification == "fail" and row.bound_ratio > 1e6, (row.fault, row.found)
        assert row.clean_classification in ("identical", "<=4 ulp", "within bound")
        assert row.cases_run == case + 1 and row.caught_by == "conv chain"
    s = selftest.summary(*result)
    assert s["ok"] and s["faults"] == len(WHERE) and s["localised_fraction"] == 1.0


def test_unaltered_conv_runs_pass_and_are_bit_identical(result):
    _, clean = result
    assert set(clean["grid"]) == {"conv"}
    assert clean["case"].nunique() == 3  # the grid's first three cases: every fault is caught by one of them
    assert len(clean) == 3 * (1 + 3)
    assert clean["ok"].all() and clean["bitwise_equal"].all(), clean[~clean["ok"]].to_string()


def test_conv_faults_in_the_output_and_markdown(result):
    faults, clean = result
    md = selftest.selftest_markdown(faults, clean)
    assert "Conv faults, injected into torch's conv and pool layers" in md
    for row in faults.itertuples(index=False):
        assert f"| `{row.fault}`: " in md and f"| {row.phase} {row.quantity} |" in md
    assert "(3 of them conv cases)" in md
    table = selftest.format_table(faults, clean)
    assert "stride-1-in-backward" in table and "backward dA_prev on conv2x2s2p0" in table
    assert "PASS" in table
    out = selftest.to_json(faults, clean)
    assert len(out["faults"]) == len(WHERE) and out["summary"]["ok"]


def test_a_fault_that_changes_nothing_is_reported_undetected():
    """float32-input rounds A_prev to float32: a no-op on the float32 cases, which must then see nothing; the
    other faults are caught on the float32 grid's first cases too."""
    grid32 = conv_grid(("float32",))[:3]
    by_id = {f.id: f for f in selftest.conv_catalogue()}
    missed = selftest.run_conv_fault(by_id["float32-input"], grid32)
    assert not missed["detected"] and missed["found"].startswith("no divergence on 3 conv cases")
    caught = selftest.run_conv_fault(by_id["stride-1-in-backward"], grid32)
    assert caught["detected"] and caught["case"] == grid32[2].name and caught["quantity"] == "dA_prev"


def _conv_state():
    import torch_impl.conv

    return {k: v for k, v in vars(torch_impl.conv).items() if callable(v)}


def test_each_conv_fault_patches_torch_conv_and_is_undone_even_on_error():
    before = _conv_state()
    for fault in selftest.conv_catalogue():
        with fault.patch():
            assert _conv_state() != before, f"{fault.id} patches nothing"
        assert _conv_state() == before, f"{fault.id} was not undone"
        with pytest.raises(RuntimeError):
            with fault.patch():
                raise RuntimeError("boom")
        assert _conv_state() == before, f"{fault.id} was not undone after an exception"
