"""The self-test: injected bugs in the torch implementation are detected and localised; the faults are undone."""

import json

import pandas as pd
import pytest

pytest.importorskip("torch")

from nnparity import selftest  # noqa: E402

REQUIRED = {  # the twelve faults, by id
    "leaky-slope-0.02", "missing-1/m-in-dW", "bias-wrong-axis", "transposed-W2", "sigmoid-grad-from-Z",
    "cross-entropy-eps-clip", "relu-grad-1-at-0", "one-ulp-Z1", "float32-A1", "learning-rate-one-step-late",
    "first-epoch-reversed", "softmax-without-max",
}


#: Issue 15's faults that step 0 cannot see (unsaturated outputs, zero biases, small gradients there).
CHECKPOINT_ONLY = ("sigmoid-through-tanh", "l2-on-biases", "gradient-clip")


#: One xdist worker runs this module: the self-test runs once (its module fixture), not once per xdist worker.
pytestmark = pytest.mark.xdist_group("test_selftest")


@pytest.fixture(scope="module")
def result():
    return selftest.run_selftest(repeats=3)


def test_catalogue_has_the_required_faults_on_small_cases():
    faults = selftest.catalogue()
    ids = [f.id for f in faults]
    assert len(ids) == len(set(ids)) and len(ids) >= 12
    assert REQUIRED <= set(ids)
    from reference.utils import step_count

    runner = selftest._Runner()
    for fault in faults:
        m = runner.dataset(fault).m
        assert step_count(m, fault.case.batch_size, fault.case.epochs) <= 60, fault.id


def test_every_fault_detected_and_localised(result):
    faults, clean = result
    assert len(faults) == len(selftest.catalogue()) + len(selftest.conv_catalogue())  # the conv faults too
    assert (faults["grid"] == "conv").sum() == len(selftest.conv_catalogue())
    undetected = faults[~faults["detected"]]
    assert undetected.empty, undetected[["fault", "found"]].to_string()
    assert faults["localised"].mean() >= 0.9, faults[~faults["localised"]][["fault", "expected", "found"]].to_string()
    # no fault was detected by a crash, and every one changed at least one row of the comparison
    assert (faults["classification"] != "error").all()
    assert (faults["diverging_rows"] >= 1).all()
    # the clean run of every fault's case passed
    assert (faults["clean_failures"] == 0).all()
    one_ulp = faults.set_index("fault").loc["one-ulp-Z1"]
    assert one_ulp["classification"] == "<=4 ulp" and one_ulp["clean_classification"] == "identical"
    assert one_ulp["max_ulp"] == 1 and one_ulp["bound_ratio"] < 1  # below the bound: seen only as a class change


def test_faults_that_only_checkpoints_catch_fail_at_a_checkpoint_quantity(result):
    faults, _ = result
    table = faults.set_index("fault")
    for fault in CHECKPOINT_ONLY:
        row = table.loc[fault]
        assert row["classification"] == "fail", (fault, row["found"])
        assert row["phase"] in ("forward", "backward") and row["step"] > 0, (fault, row["found"])
        checks = row["caught_by"].split(", ")
        assert checks[0] == "checkpoint quantity", (fault, checks)
        assert "step-0 quantity" not in checks and "first update" not in checks, (fault, checks)
    md = selftest.selftest_markdown(*result)
    assert "| caught by |" in md and "| checkpoint quantity, trajectory |" in md


def test_unaltered_runs_after_the_faults_pass_and_are_bit_identical(result):
    faults, clean = result
    cases = clean["case"].nunique()
    assert len(clean) == cases * (1 + 3)  # the first clean run and 3 repetitions after every fault
    assert clean["ok"].all(), clean[~clean["ok"]].to_string()
    assert (clean["failures"] == 0).all() and (clean["classification_changes"] == 0).all()
    assert clean["bitwise_equal"].all()
    s = selftest.summary(faults, clean)
    assert s["ok"] and s["detected_fraction"] == 1.0 and s["clean_failures"] == 0


def _module_state():
    import reference.initializers
    import torch_impl.activations
    import torch_impl.losses
    import torch_impl.model

    mods = (torch_impl.model, torch_impl.activations, torch_impl.losses, reference.initializers)
    return {(m.__name__, k): v for m in mods for k, v in vars(m).items() if callable(v)}


def test_each_fault_patches_something_and_is_undone_even_on_error():
    before = _module_state()
    for fault in selftest.catalogue():
        with fault.patch():
            during = _module_state()
            assert during != before, f"{fault.id} patches nothing"
        assert _module_state() == before, f"{fault.id} was not undone"
        with pytest.raises(RuntimeError):
            with fault.patch():
                raise RuntimeError("boom")
        assert _module_state() == before, f"{fault.id} was not undone after an exception"


def test_describe_divergence_string():
    row = dict(phase="forward", quantity="A", layer=2, step=0, max_ulp=1.2e6, bound_ratio=3.4e3,
               classification="fail", note="")
    assert selftest.describe_divergence(row, "within bound") == \
        "first divergence: torch, forward step 0, layer 2, A2, 1.2e6 ulp, bound ratio 3.4e3 (within bound -> fail)"
    row = dict(phase="trajectory", quantity="cost", layer=pd.NA, step=1, max_ulp=3.0, bound_ratio=0.25,
               classification="<=4 ulp", note="")
    assert selftest.describe_divergence(row, "identical") == \
        "first divergence: torch, trajectory step 1, cost, 3 ulp, bound ratio 0.25 (identical -> <=4 ulp)"
    row = dict(phase="trajectory", quantity="cost", layer=None, step=None, max_ulp=float("nan"),
               bound_ratio=float("inf"), classification="fail", note="30 steps recorded, reference has 35")
    assert selftest.describe_divergence(row, None) == ("first divergence: torch, trajectory, cost, n/a ulp, "
                                                       "bound ratio inf (fail; not in the clean run) "
                                                       "[30 steps recorded, reference has 35]")


def _frame(classes):
    rows = [dict(phase="forward", quantity=q, layer=l, step=0, max_ulp=0.0, bound_ratio=0.0, classification=c,
                 passed=c != "fail", note="") for (q, l), c in zip([("Z", 1), ("A", 1), ("cost", None)], classes)]
    frame = pd.DataFrame(rows)
    frame["layer"] = frame["layer"].astype("Int64")
    frame["step"] = frame["step"].astype("Int64")
    return frame


def test_first_divergence_and_location():
    clean = _frame(["identical", "<=4 ulp", "within bound"])
    row, before, count = selftest.first_divergence(_frame(["identical", "<=4 ulp", "within bound"]), clean)
    assert row is None and count == 0
    # better classes are no divergence; a worse class is, even when it passes
    row, before, count = selftest.first_divergence(_frame(["identical", "identical", "fail"]), clean)
    assert (row.quantity, before, count) == ("cost", "within bound", 1)
    row, before, count = selftest.first_divergence(_frame(["<=4 ulp", "within bound", "fail"]), clean)
    assert (row.quantity, int(row.layer), before, count) == ("Z", 1, "identical", 3)
    loc = selftest.Location("forward", "Z", 1)
    assert loc.matches("forward", "Z", 1, 0) and not loc.matches("forward", "A", 1, 0)
    assert selftest.Location("trajectory", "cost", None, 1).matches("trajectory", "cost", None, 1)
    assert not selftest.Location("trajectory", "cost", None, 1).matches("trajectory", "cost", None, 0)
    assert str(selftest.Location("trajectory", "cost", None, 1)) == "trajectory cost step 1"
    assert str(selftest.Location("backward", "dW", 2)) == "backward dW2"


def test_markdown_and_cli_exit_codes(result, monkeypatch, capsys):
    faults, clean = result
    md = selftest.selftest_markdown(faults, clean)
    assert md.startswith("## Self-test: does the suite catch real bugs?")
    assert all(f"`{fault}`" in md for fault in faults["fault"])

    from nnparity import cli

    monkeypatch.setattr(selftest, "run_selftest", lambda repeats: (faults, clean))
    assert cli.main(["selftest", "--repeats", "3"]) == 0
    assert f"detected:  {len(faults)} of {len(faults)} faults (100%; required: all)" in capsys.readouterr().out
    assert cli.main(["selftest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["ok"] and len(out["faults"]) == len(faults)
    missed = faults.copy()
    missed.loc[0, "detected"] = False
    monkeypatch.setattr(selftest, "run_selftest", lambda repeats: (missed, clean))
    assert cli.main(["selftest"]) == 1
    assert "FAIL" in capsys.readouterr().out
