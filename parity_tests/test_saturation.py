"""Saturated outputs: the fused output gradient ``dZL = AL - Y`` (``Case.output_gradient="fused"``).

The course's "large random initialisation" run (weights x10, 2-10-5-1 ReLU on circles, learning rate
0.01) rounds sigmoid outputs to exactly 0 or 1 from step 0.  Chained through ``dAL`` the gradient is
``inf * 0 = NaN`` and training is lost; fused it stays finite and the network learns.
"""

from functools import lru_cache

import numpy as np
import pytest

from nnparity import harness, tolerances
from nnparity.data import load_data
from nnparity.errors import UsageError
from nnparity.spec import Case
from reference.model import forward_backward, predict, train

LARGE_INIT = Case(layer_dims=(2, 10, 5, 1), init="small-random", init_scale=10, learning_rate=0.01, epochs=1000,
                  data="circles")


def _train_large_init(output_gradient, epochs=LARGE_INIT.epochs):
    case = LARGE_INIT.replace(output_gradient=output_gradient, epochs=epochs).validate()
    X, Y, P, _ = harness.prepare(case, load_data("circles"))
    finite_every_step = []
    with np.errstate(all="ignore"):
        capture = forward_backward(P, X, Y, case)
        final, costs = train(P, X, Y, case, before_update=lambda step, params, *_: finite_every_step.append(
            all(np.isfinite(v).all() for v in params.values())))
    return case, X, Y, capture, final, costs, finite_every_step


def _accuracy(case, P, X, Y):
    with np.errstate(all="ignore"):
        return float(np.mean(predict(X, P, case) == Y))


def test_fused_output_gradient_trains_through_saturation():
    case, X, Y, capture, final, costs, finite_every_step = _train_large_init("fused")
    AL = capture["A3"]
    assert np.any((AL == 1) & (Y == 0)), "the large initialisation saturates wrong outputs at step 0"
    assert costs[0] == np.inf and capture["cost"] == np.inf
    assert all(np.isfinite(capture[k]).all() for k in capture if k.startswith("d"))  # every gradient at step 0
    assert np.array_equal(capture["dZ3"], AL - Y)
    assert len(finite_every_step) == case.epochs and all(finite_every_step)  # parameters before every update
    assert all(np.isfinite(v).all() for v in final.values())
    assert not np.isnan(costs).any()
    # it keeps learning once the outputs leave saturation: the last cost is well below the first finite one
    finite = np.flatnonzero(np.isfinite(costs))
    assert finite.size and costs[-1] < 0.5 * costs[finite[0]]
    # the circles are not linearly separable: a logistic regression stays at the majority rate; the fused
    # network must beat it by far
    linear = Case(layer_dims=(2, 1), learning_rate=1.0, epochs=1000, data="circles")
    Xl, Yl, Pl, _ = harness.prepare(linear, load_data("circles"))
    linear_accuracy = _accuracy(linear, train(Pl, Xl, Yl, linear)[0], Xl, Yl)
    majority = max(Y.mean(), 1 - Y.mean())
    accuracy = _accuracy(case, final, X, Y)
    assert accuracy > max(linear_accuracy, majority) + 0.2 and accuracy > 0.75


def test_chained_output_gradient_gives_nan_on_the_same_run():
    case, X, Y, capture, final, costs, finite_every_step = _train_large_init("chained", epochs=20)
    AL = capture["A3"]
    saturated = (AL == 0) | (AL == 1)
    assert capture["cost"] == np.inf and costs[0] == np.inf
    # dAL = -(Y/AL - (1-Y)/(1-AL)) is inf or 0/0 where AL saturated; times g' = AL(1-AL) = 0: NaN exactly there
    assert saturated.any() and np.array_equal(np.isnan(capture["dZ3"]), saturated)
    assert np.isnan(capture["dW3"]).all() and np.isnan(capture["db3"]).all()
    assert finite_every_step[0] and not any(finite_every_step[1:])
    assert np.isnan(costs[1:]).all()
    assert all(np.isnan(v).all() for v in final.values())


def test_fused_equals_chained_to_rounding_when_unsaturated():
    dataset = load_data("planar")
    for dtype in ("float64", "float32"):
        chained = Case(layer_dims=(2, 4, 1), hidden_activation="tanh", dtype=dtype, data="planar")
        fused = chained.replace(output_gradient="fused")
        X, Y, P, _ = harness.prepare(chained, dataset)
        C, F = forward_backward(P, X, Y, chained), forward_backward(P, X, Y, fused)
        assert np.all((C["A2"] > 0) & (C["A2"] < 1))
        Bc, Bf = tolerances.bounds(P, X, Y, chained), tolerances.bounds(P, X, Y, fused)
        assert not np.array_equal(C["dZ2"], F["dZ2"])  # two computations, not one
        for key in ("dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1"):
            diff = np.abs(F[key].astype(np.float64) - C[key])
            assert np.all(diff <= Bc[key] + Bf[key]), (dtype, key, float(np.max(diff / (Bc[key] + Bf[key]))))
        assert np.all(Bf["dZ2"] < Bc["dZ2"])  # no dAL, no g'(ZL): a tighter bound than the chained one


SMALL = {
    "sigmoid": Case(layer_dims=(2, 4, 1), hidden_activation="tanh", learning_rate=1.2, epochs=20, data="planar",
                    output_gradient="fused"),
    "softmax": Case(layer_dims=(2, 5, 3), output_activation="softmax", loss="categorical_cross_entropy",
                    learning_rate=0.1, epochs=20, data="blobs", output_gradient="fused"),
}


@lru_cache(maxsize=None)
def _reference(output, dtype):
    case = SMALL[output].replace(dtype=dtype).validate()
    return harness.run_reference(case, load_data(case.data))


@pytest.mark.parametrize("impl", ["torch", "torch-nn", "tf", "tf-function", "keras"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_every_implementation_matches_the_fused_reference(output, dtype, impl):
    ref = _reference(output, dtype)
    assert np.array_equal(ref.capture[f"dZ{ref.case.L}"], ref.capture[f"A{ref.case.L}"] - ref.Y0)
    frame = harness.compare_impl(ref, impl)
    assert not harness.failures(frame).size, harness.describe_failures(frame)
    dZL = frame[(frame["quantity"] == "dZ") & (frame["layer"] == ref.case.L)]
    assert len(dZL) and dZL["passed"].all()


@pytest.mark.parametrize("impl", ["torch", "tf"])
def test_saturated_fused_run_agrees_with_the_reference(impl):
    # 40 steps: all saturated (the cost is inf at each).  Later the run is expansive: a 1e-16 difference
    # grows to 1e-4 relative by step 300 in float64 (torch), which is drift, not an implementation error.
    case = LARGE_INIT.replace(output_gradient="fused", epochs=40).validate()
    with np.errstate(all="ignore"):
        ref = harness.run_reference(case, load_data("circles"))
        frame = harness.compare_impl(ref, impl)
    assert np.isinf(ref.costs).all()
    trajectory = frame[frame["phase"] == "trajectory"]
    assert len(trajectory) == case.epochs and np.isinf(trajectory["value"].astype(float)).all()
    assert not harness.failures(frame).size, harness.describe_failures(frame)


@pytest.mark.parametrize("loss", ["l1", "l2"])
def test_fused_needs_cross_entropy(loss):
    with pytest.raises(UsageError, match=r"--output-gradient fused .* not --loss " + loss + r"; use --loss"):
        Case(layer_dims=(2, 4, 1), loss=loss, output_gradient="fused").validate()
    with pytest.raises(UsageError, match="use --output-gradient with one of: chained, fused"):
        Case(layer_dims=(2, 4, 1), output_gradient="fuse").validate()


def test_case_id_marks_only_fused():
    case = Case(layer_dims=(2, 4, 1), hidden_activation="tanh")
    assert case.id == "l2-tanh-float64-fullbatch"
    assert case.replace(output_gradient="fused").id == "l2-tanh-fused-float64-fullbatch"
