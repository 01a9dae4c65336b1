"""Checkpoints through training and detection power (issue 15).

Every forward value and gradient is recomputed from the reference's own parameters at the checkpoints
(0, 1, 2, 5, the middle, the reference's most saturated step, its gradient peak, the last); each row of the
comparison carries ``detect_rel``, the smallest relative change its tolerance flags.  The faults that only
checkpoints catch are in the self-test (test_selftest.py).
"""

import numpy as np
import pandas as pd
import pytest

from nnparity import data, grid, harness, impls
from nnparity.testing import check_parity, parametrize_with_checks, reference_run
from reference import model as reference_model
from test_cli import nnparity

POWER = grid.power_grid()
SATURATING = POWER[0]  # logistic regression at learning rate 2: saturates by step 2, gradient peak at step 3


class Scaled:
    """The reference as an implementation, with one captured quantity scaled by ``1 + delta``."""

    name = "scaled"

    def __init__(self, key, delta):
        self.key, self.delta = key, delta

    def forward_backward(self, parameters, X, Y, case, masks=None):
        result = reference_model.forward_backward(parameters, X, Y, case, masks)
        return {**result, self.key: result[self.key] * np.asarray(1 + self.delta, dtype=case.dtype)}

    def train(self, parameters, X, Y, case, schedule=None, masks=None):
        return reference_model.train(parameters, X, Y, case, schedule, masks)

    def predictions(self, parameters, X, case):
        return reference_model.predictions(parameters, X, case)


def _per_step_grad_norm_and_saturation(case):
    """Independently of the harness: the reference's gradient norm and saturated fraction at every step."""
    X, Y, parameters, schedule = harness.prepare(case, data.load_data(case.data))
    seen = []
    reference_model.train(parameters, X, Y, case, schedule, before_update=lambda s, P, Xb, Yb: seen.append((P, Xb, Yb)))
    norms, saturated = [], []
    for P, Xb, Yb in seen:
        with np.errstate(all="ignore"):
            captured = reference_model.forward_backward(P, Xb, Yb, case)
        norms.append(np.sqrt(sum(np.sum(captured[f"d{k}"] ** 2) for k in P)))
        AL = captured[f"A{case.L}"]
        saturated.append(np.mean((AL <= 1e-3) | (AL >= 1 - 1e-3)))
    return np.array(norms), np.array(saturated)


def test_checkpoints_include_the_saturated_step_and_the_gradient_peak():
    ref = reference_run(SATURATING)
    norms, saturated = _per_step_grad_norm_and_saturation(SATURATING)
    steps = len(norms)
    assert {1, 2, 5, steps // 2, steps - 1} <= set(ref.checkpoints)
    peak = int(np.argmax(norms))
    assert peak > 0 and "gradient-peak" in ref.checkpoints[peak].why
    most = int(np.argmax(saturated))  # the first step with the largest saturated fraction
    assert saturated[most] > saturated[0] and "saturation" in ref.checkpoints[most].why


def _short(dtype):
    return SATURATING.replace(dtype=dtype, epochs=10, name=f"saturating-{dtype}-10")


@pytest.mark.parametrize("dtype, step", [("float64", 0), ("float64", 3), ("float32", 5)])
def test_detect_rel_is_the_smallest_scaling_the_row_flags(dtype, step):
    """A quantity scaled by 2 x detect_rel fails its row; by detect_rel / 2 it passes."""
    ref = reference_run(_short(dtype))
    clean = harness.compare_impl(ref, Scaled("dW1", 0.0))
    at = clean[(clean["quantity"] == "dW") & (clean["step"] == step)].iloc[0]
    power = float(at["detect_rel"])
    assert 0 < power < 1e-3
    for factor, should_pass in ((2.0, False), (0.5, True)):
        frame = harness.compare_impl(ref, Scaled("dW1", factor * power))
        row = frame[(frame["quantity"] == "dW") & (frame["step"] == step)].iloc[0]
        assert bool(row["passed"]) == should_pass, (factor, row["bound_ratio"], power)


def test_detection_power_summary_names_the_float64_case_where_float32_has_none():
    frames = [harness.compare_impl(reference_run(c), Scaled("dW1", 0.0))
              for c in (_short("float64"), _short("float32"))]
    frame = pd.concat(frames, ignore_index=True)
    table = harness.detection_power(frame).set_index(["dtype", "check", "quantity"])
    row = table.loc[("float32", "checkpoint quantity", "dW")]
    rows = frame[(frame["dtype"] == "float32") & (frame["quantity"] == "dW") & (frame["step"] > 0)
                 & frame["phase"].eq("backward")]
    assert row["min_detect_rel"] == rows["detect_rel"].min() > 1e-6
    assert row["note"].startswith("none below 1e-06 relative in float32; see saturating-float64-10 in float64")
    assert table.loc[("float64", "checkpoint quantity", "dW"), "min_detect_rel"] < 1e-12
    # the float64 arbiter gates float32 final parameters: some power, however coarse (no longer "no power")
    final32 = table.loc[("float32", "final parameters", "W")]
    assert final32["min_detect_rel"] < np.inf and not final32["note"].startswith("no power")


def test_power_grid_cases_are_short():
    for case in POWER:
        assert case.steps(data.load_data(case.data).m) <= 200, case.name


# both tiers, each pair marked with its own; the quick tier: one cover of the three parity grids
@parametrize_with_checks(impls.frameworks(), POWER, tier=None, cover_of=grid.parity_cases())
def test_power_cases_pass_with_checkpoints(case, impl, tier):
    frame = check_parity(case, impl, tier=tier)
    captured = frame[frame["phase"].isin(["forward", "backward"])]
    assert set(captured["step"]) >= set(reference_run(case).checkpoints) | {0}


def test_report_checkpoints_option_errors_are_one_line(tmp_path):
    for value, words in (("0,x", "'x' is not a step"), ("0,5000", "has 1000 steps")):
        out = nnparity("report", "--checkpoints", value, "--cases", "l1-logreg-float64-fullbatch", "--out",
                       str(tmp_path / "r"))
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert words in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_tf_sigmoid_written_through_tanh_is_caught_at_a_checkpoint():
    """Issue 15's fault, in TensorFlow: sigmoid(Z) as 0.5 + 0.5 tanh(Z / 2) passes step 0 (unsaturated outputs)
    and fails at a checkpoint of the saturating case, from the reference's own saturated parameters."""
    pytest.importorskip("tensorflow")
    from unittest import mock

    import tensorflow as tf

    import tf_impl.model as tm

    original = tm.activation_forward

    def through_tanh(Z, activation, slope=0.01):
        return 0.5 + 0.5 * tf.math.tanh(Z / 2) if activation == "sigmoid" else original(Z, activation, slope)

    with mock.patch.object(tm, "activation_forward", through_tanh):
        frame = harness.compare_impl(reference_run(SATURATING), "tf")
    bad = harness.failures(frame)
    assert not bad.empty
    first = bad.iloc[0]
    assert first["phase"] in ("forward", "backward") and first["step"] > 0, harness.describe_failures(frame)
    step0 = frame[frame["phase"].isin(["forward", "backward"]) & (frame["step"] == 0)]
    assert step0["passed"].all()


def _first_failure_is_at_a_checkpoint(frame):
    """The first failing forward value or gradient is at a checkpoint (step > 0), and step 0 passes.  (In float32
    the float64 arbiter may see the fault earlier in the free run, between checkpoints: that row comes first in
    the order of computation and is not what this checks.)"""
    bad = harness.failures(frame)
    assert not bad.empty, "the fault was not caught"
    captures = bad[bad["phase"].isin(["forward", "backward"])]
    assert not captures.empty, harness.describe_failures(frame)
    first = captures.iloc[0]
    assert first["step"] > 0, harness.describe_failures(frame)
    step0 = frame[frame["phase"].isin(["forward", "backward"]) & (frame["step"] == 0)]
    assert step0["passed"].all()
    return first


def test_an_l2_term_on_keras_biases_is_caught_at_a_checkpoint():
    """Issue 15's fault, in Keras: the biases regularised too (``bias_regularizer``). The biases start at zero, so
    step 0 and the first update cannot see it; the cost at a checkpoint, from non-zero biases, does."""
    pytest.importorskip("tensorflow")
    from unittest import mock

    import keras

    case = next(c for c in grid.training_grid() if c.name == "sigmoid-momentum-l2-float64-fullbatch")

    class with_bias_l2(keras.layers.Dense):  # what the model builds: a Dense whose bias is regularised too
        def __init__(self, *args, **kwargs):
            super().__init__(*args, bias_regularizer=kwargs.get("kernel_regularizer"), **kwargs)

    with mock.patch.object(keras.layers, "Dense", with_bias_l2):
        frame = harness.compare_impl(reference_run(case), "keras")
    first = _first_failure_is_at_a_checkpoint(frame)
    assert first["quantity"] in ("cost", "dW", "db")


def test_a_gradient_clip_left_in_torch_nn_is_caught_at_the_gradient_peak():
    """Issue 15's fault, in torch.nn: ``clip_grad_norm_`` left in the step, at a norm between step 0's gradient
    and the peak's (measured here on the reference), so it fires only on large gradients."""
    pytest.importorskip("torch")
    from unittest import mock

    import torch

    import torch_impl.idiomatic as ti

    case = next(c for c in POWER if c.name == "l4-relu-large-gradients-float32-fullbatch")
    ref = reference_run(case)

    def norm(capture):
        return float(np.sqrt(sum(np.sum(np.square(v)) for k, v in capture.items() if k[:2] in ("dW", "db"))))

    peak = next(p for p in ref.checkpoints.values() if "gradient-peak" in p.why)
    limit = float(np.sqrt(norm(ref.capture) * norm(peak.capture)))
    assert norm(ref.capture) < limit < norm(peak.capture)
    backward, update = ti.model_backward, ti.update_parameters

    def clipped_backward(cost, model=None, *args, **kwargs):
        if model is None:
            return backward(cost, model, *args, **kwargs)
        cost.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), limit)
        with mock.patch.object(cost, "backward", lambda: None):
            return backward(cost, model, *args, **kwargs)

    def clipped_update(optimizer):
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], limit)
        return update(optimizer)

    with mock.patch.object(ti, "model_backward", clipped_backward), \
            mock.patch.object(ti, "update_parameters", clipped_update):
        frame = harness.compare_impl(ref, "torch-nn")
    first = _first_failure_is_at_a_checkpoint(frame)
    assert first["quantity"] in ("dW", "db")
    # the free run leaves the float64 run where the clip first fires, long before the peak's checkpoint
    leaves = harness.failures(frame).iloc[0]
    assert (leaves["phase"], leaves["criterion"]) == ("trajectory", harness.ARBITER_CRITERION)
    assert leaves["step"] < first["step"]
