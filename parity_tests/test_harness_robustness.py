"""The harness never crashes on a bad implementation, and its float32 verdict survives the machine.

Each scenario feeds ``harness.compare_impl`` an implementation written here (the NumPy reference with
one thing broken) and checks the failing row names what is wrong.  The last tests run the cases whose
float32 trajectories split under another BLAS kernel in subprocesses with every kernel this CPU runs
and 1 or 2 threads: an honest implementation must pass in all of them.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from nnparity import arbiter, drift, grid, harness
from nnparity.testing import reference_run
from reference import model as reference_model

SMALL64 = grid.case_for(2, "tanh", "float64", True, epochs=6)  # 7 mini-batches an epoch: 42 steps
SMALL32 = SMALL64.replace(dtype="float32", name="l2-tanh-float32-minibatch-small")
SOFTMAX = grid.training_case("gd", "none", "softmax", "float64", False).replace(epochs=5, name="softmax-small")


class Broken:
    """The reference as an implementation, with ``forward_backward``, ``train`` or ``predictions`` replaced."""

    name = "broken"

    def __init__(self, forward_backward=None, train=None, predictions=None):
        self._fb, self._train, self._pred = forward_backward, train, predictions

    def forward_backward(self, parameters, X, Y, case, masks=None):
        result = reference_model.forward_backward(parameters, X, Y, case, masks)
        return self._fb(result) if self._fb else result

    def train(self, parameters, X, Y, case, schedule=None, masks=None):
        if self._train:
            return self._train(parameters, X, Y, case, schedule, masks)
        return reference_model.train(parameters, X, Y, case, schedule, masks)

    def predictions(self, parameters, X, case):
        if self._pred:
            return self._pred(parameters, X, case)
        return reference_model.predictions(parameters, X, case)


def first_failure(frame):
    bad = harness.failures(frame)
    assert not bad.empty, "the broken implementation passed"
    return bad.iloc[0]


def test_the_reference_as_an_implementation_passes_everywhere_with_checkpoints():
    ref = reference_run(SMALL64)
    frame = harness.compare_impl(ref, Broken())
    assert frame["passed"].all(), harness.describe_failures(frame)
    steps = 42
    captured = set(frame.loc[frame["phase"] == "backward", "step"])
    assert {0, 1, 2, 5, steps // 2, steps - 1} <= captured
    found = captured - {0, 1, 2, 5, steps // 2, steps - 1}  # saturation and gradient peak, where not already there
    assert all(ref.checkpoints[t].why in harness.FOUND_CHECKPOINTS for t in found)
    assert (frame["phase"] == "trajectory").sum() == steps
    assert set(frame["classification"]) == {"identical"}


def test_a_trajectory_of_another_length_is_a_failing_row_and_reports_still_build(tmp_path):
    def short(parameters, X, Y, case, schedule, masks):
        final, costs = reference_model.train(parameters, X, Y, case, schedule, masks)
        return final, costs[:-1]

    frame = harness.compare_impl(reference_run(SMALL64), Broken(train=short))
    row = first_failure(frame)
    assert (row["phase"], row["quantity"]) == ("trajectory", "cost")
    assert row["note"] == "train returned 41 costs, one per gradient step is 42"
    # Everything downstream of the harness takes such a frame.
    from reports.summary import summarize

    assert drift.horizon_table(frame).empty or len(drift.horizon_table(frame)) == 1
    summary = summarize(frame)
    assert summary["status"].tolist() == ["fail"] and "41 costs" in summary["first_failure"].iloc[0]


@pytest.mark.parametrize("change, note", [
    (lambda r: {**r, "dW1": r["dW1"].T}, "dW1 from forward_backward has shape (2, 4), the reference's is (4, 2)"),
    (lambda r: {**r, "dW2": r["dW2"].astype(np.float32)}, "dW2 from forward_backward is float32, the case is float64"),
    (lambda r: {k: v for k, v in r.items() if k != "db1"}, "db1 is missing from forward_backward's result"),
    (lambda r: {**r, "A1": [[object()]]}, "A1 from forward_backward has shape (1, 1), the reference's is (4, 64)"),
    (lambda r: list(r.values()), "forward_backward returned list, not a dict of arrays"),
])
def test_wrong_shapes_dtypes_and_missing_quantities_are_failing_rows(change, note):
    frame = harness.compare_impl(reference_run(SMALL64), Broken(forward_backward=change))
    assert note in set(harness.failures(frame)["note"])


def test_nan_where_the_reference_is_finite_fails_at_that_quantity():
    def nan_dW2(r):
        dW2 = r["dW2"].copy()
        dW2[0, 1] = np.nan
        return {**r, "dW2": dW2}

    row = first_failure(harness.compare_impl(reference_run(SMALL64), Broken(forward_backward=nan_dW2)))
    assert (row["phase"], row["quantity"], row["layer"], row["step"]) == ("backward", "dW", 2, 0)
    assert row["note"].startswith("non-finite values differ from the reference's: Mismatched elements: 1 / 4 (25%); "
                                  "worst difference inf at index (0, 1) (actual nan, expected ")


def test_exceptions_become_failing_rows_naming_the_function_and_the_line():
    def boom(*args):
        raise ValueError("shapes (4,2) and (3,64) not aligned")

    frame = harness.compare_impl(reference_run(SMALL64), Broken(train=boom))
    row = harness.failures(frame).iloc[0]
    assert row["phase"] == "trajectory"
    assert row["note"].startswith("train raised ValueError: shapes (4,2) and (3,64) not aligned")
    assert "(test_harness_robustness.py:" in row["note"]
    # forward_backward raising: every quantity of every captured step fails, the rest still runs.
    frame = harness.compare_impl(reference_run(SMALL64), Broken(forward_backward=boom))
    captured = frame[frame["phase"].isin(["forward", "backward"])]
    assert not captured["passed"].any()
    assert frame.loc[frame["phase"] == "trajectory", "passed"].all()


def test_train_returning_garbage_is_a_failing_row():
    frame = harness.compare_impl(reference_run(SMALL64), Broken(train=lambda *a: None))
    row = first_failure(frame)
    assert row["phase"] == "trajectory" and "train's result cannot be compared" in row["note"]


def test_predictions_are_the_implementations_own_softmax_argmax_over_the_wrong_axis_fails():
    """The blind spot found by injection: an argmax over the classes' axis is right, over the examples' is not."""
    def wrong_axis(parameters, X, case):
        AL, _ = reference_model.model_forward(X, parameters, case)
        return np.argmax(AL, axis=1).reshape(1, -1)

    ref = reference_run(SOFTMAX)
    assert harness.compare_impl(ref, Broken())["passed"].all()
    row = first_failure(harness.compare_impl(ref, Broken(predictions=wrong_axis)))
    assert (row["phase"], row["quantity"]) == ("predictions", "pred")
    assert "shape (1, 10)" in row["note"]

    def flipped(parameters, X, case):  # the right shape, wrong classes for a few examples
        labels = reference_model.predictions(parameters, X, case).copy()
        labels[0, :5] = (labels[0, :5] + 1) % 10
        return labels

    row = first_failure(harness.compare_impl(ref, Broken(predictions=flipped)))
    assert row["note"] == f"5 of {ref.X.shape[1]} predictions differ, 5 of them not at a tie"


def _perturbed_costs(step, factor):
    def train(parameters, X, Y, case, schedule, masks):
        final, costs = reference_model.train(parameters, X, Y, case, schedule, masks)
        costs = costs.copy()
        costs[step:] = costs[step:] * case_dtype(case)(factor)
        return final, costs
    return train


def case_dtype(case):
    return np.dtype(case.dtype).type


def test_float32_trajectory_is_gated_at_steps_0_and_1_and_by_the_float64_arbiter_after():
    ref = reference_run(SMALL32)
    big = 1 + 1e-3  # far beyond one pass's float32 rounding (bound ~1e-6 relative here)
    at_step_1 = harness.compare_impl(ref, Broken(train=_perturbed_costs(1, big)))
    row = first_failure(at_step_1)
    assert (row["phase"], row["step"]) == ("trajectory", 1)
    # Later, the float64 arbiter: 1e-3 is far beyond what rounding carries honest float32 runs from the float64 run
    later = harness.compare_impl(ref, Broken(train=_perturbed_costs(5, big)))
    row = first_failure(later)
    assert (row["phase"], row["step"], row["criterion"]) == ("trajectory", 5, "arbiter_ratio<=1")
    floor = arbiter.floor(ref.arbiter.costs64, "float32")
    assert row["fp64_dist"] > arbiter.FACTOR * max(row["fp64_envelope"], floor[5])
    # Four times what honest runs are off by, from step 5 on: within the arbiter's limit (FACTOR 8), passes
    shift = 4 * np.maximum(ref.arbiter.cost_envelope, np.maximum.accumulate(floor))

    def shifted(parameters, X, Y, case, schedule, masks):
        final, costs = reference_model.train(parameters, X, Y, case, schedule, masks)
        costs = costs.astype(np.float64)
        costs[5:] += shift[5:costs.size]
        return final, costs.astype(case.dtype)

    within = harness.compare_impl(ref, Broken(train=shifted))
    assert within["passed"].all(), harness.describe_failures(within)
    traj = within[within["phase"] == "trajectory"].set_index("step")
    assert traj.loc[5, "criterion"] == "arbiter_ratio<=1" and 0.3 < traj.loc[5:, "arbiter_ratio"].max() <= 1
    # A NaN where the reference is finite is never drift.
    nan_later = harness.compare_impl(ref, Broken(train=_perturbed_costs(7, np.nan)))
    row = first_failure(nan_later)
    assert (row["phase"], row["step"]) == ("trajectory", 7) and row["note"].startswith("cost nan where")


def test_a_float32_update_fault_is_caught_at_the_first_update():
    """A learning rate off by 1e-3 in a float32 update changes the step-1 cost by less than float32 rounding,
    but the parameters after the first update (from the reference's own) by 11-36 times their bound."""
    def off(parameters, X, Y, case, schedule, masks):
        return reference_model.train(parameters, X, Y, case.replace(learning_rate=case.learning_rate * (1 + 1e-3)),
                                     schedule, masks)

    row = first_failure(harness.compare_impl(reference_run(SMALL32), Broken(train=off)))
    assert (row["phase"], row["quantity"], row["layer"], row["step"]) == ("update", "W", 1, 0)
    assert row["bound_ratio"] > 10  # measured: 36 for W1
    assert row["note"].startswith("Mismatched elements: ") and "; allowed 2E = " in row["note"]


# ----------------------------------------------------------------------------------- the machine

#: Cases whose float32 trajectory splits from the others' under another OpenBLAS kernel (found on this
#: project's machines): torch and NumPy 3.5e-4 apart at step 100 of sigmoid-momentum-none-float32-minibatch.
SENSITIVE = ("sigmoid-momentum-none-float32-minibatch", "l4-relu-float32-minibatch")

KERNELS = ("", "SkylakeX", "Haswell", "Zen", "Sandybridge", "Nehalem", "Prescott")

_RUN = """
import json, sys, threadpoolctl
import numpy as np
for dtype in ("float32", "float64"):  # the kernels themselves: an instruction the CPU lacks dies here
    np.ones((96, 96), dtype) @ np.ones((96, 96), dtype)
sys.path.insert(0, {root!r})
from nnparity import data, grid, harness
arch = sorted({{i.get("architecture") for i in threadpoolctl.threadpool_info() if i.get("internal_api") == "openblas"}})
out = {{"architecture": arch, "results": {{}}}}
if {run!r}:
    for case in grid.training_grid() + grid.test_grid() + grid.power_grid():
        if case.name in {names!r}:
            case = case.replace(epochs={epochs!r} or case.epochs)
            frame = harness.compare_impl(harness.run_reference(case, data.load_data(case.data)), "torch")
            out["results"][case.name] = harness.describe_failures(frame) if not frame["passed"].all() else "pass"
            out["checkpoints"] = sorted(int(t) for t in frame.loc[frame["phase"] == "backward", "step"].unique())
print(json.dumps(out))
"""


def _subprocess(kernel, threads, run, names=SENSITIVE, epochs=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    if kernel:
        env["OPENBLAS_CORETYPE"] = kernel
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    code = _RUN.format(root=ROOT, run=run, names=list(names), epochs=epochs)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)


def _result(done):
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _kernels_this_cpu_runs():
    """One OPENBLAS_CORETYPE per kernel OpenBLAS really runs here (threadpoolctl names it; Zen runs Haswell's,
    Prescott Katmai's); one the CPU lacks the instructions for dies of SIGILL (SkylakeX's AVX-512 on an
    AVX2 CPU) and is left out."""
    runs = {}
    for kernel in KERNELS:
        done = _subprocess(kernel, 1, False)
        if done.returncode != 0:
            continue
        runs.setdefault(tuple(_result(done)["architecture"]), kernel)
    return list(runs.values())


@pytest.mark.tiers("full")  # every OpenBLAS kernel this CPU runs x 1 and 2 threads, each a fresh process: CI's
def test_float32_verdicts_survive_every_blas_kernel_and_thread_count():
    kernels = _kernels_this_cpu_runs()
    assert len(kernels) >= 2, "this CPU should run at least two OpenBLAS kernels"
    for kernel in kernels:
        for threads in (1, 2):
            result = _result(_subprocess(kernel, threads, True))
            assert result["results"] == {name: "pass" for name in SENSITIVE}, (kernel or "default", threads, result)


#: A case of ``grid.power_grid`` (float32, He initialisation, learning rate 0.3), cut to 45 steps: its checkpoints
#: include the gradient peak (step 39, as in the full run), where the gradients are largest.
LARGE_GRADIENTS = "l4-relu-large-gradients-float32-fullbatch"


@pytest.mark.parametrize("kernel, threads", [("Sandybridge", 1), ("", 2)])
def test_checkpoint_bounds_hold_with_another_blas_kernel_and_thread_count(kernel, threads):
    result = _result(_subprocess(kernel, threads, True, names=[LARGE_GRADIENTS], epochs=45))
    assert result["results"] == {LARGE_GRADIENTS: "pass"}, (kernel or "default", threads, result)
    assert {0, 1, 2, 5, 22, 39, 44} <= set(result["checkpoints"])
