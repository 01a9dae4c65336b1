"""The course's convolutional networks (``reference.convnet``) against torch.nn, Keras and flax
(``torch_impl.convnet``, ``tf_impl.convnet``, ``jax_impl.convnet``): BatchNorm, then the "happy" and "signs" models.

How the tolerances are set:

* float64: norm-wise relative difference ``max |a - b| / max |b|`` at most ``FLOAT64_NORMWISE`` (1e-12), the
  project's promise: the rounding of these computations is 1e-16..1e-14.
* float32: each framework's float32 result is compared with the float64 reference (the truth), so only the
  framework's own rounding counts.  A first-order bound of a result computed through chained sums (Higham, ch. 3)
  is u times the sum of the sums' lengths, relative to the magnitudes: ``bn_bound`` evaluates it element by
  element for BatchNorm (every quantity is at most a sum over the N = m n_H n_W cells of a channel and under 10
  elementwise roundings); for the models ``chain_terms`` counts the terms summed along the forward and backward
  chain (K, in the thousands), and the norm-wise difference is held to ``K u`` (which takes the magnitudes to be
  of the order of max |result|: no quantity is a cancellation of its whole norm, true of these cases, except db1,
  below); a 5-step trajectory to ``(steps + 1) K u`` (each step adds at most its own rounding, and at learning
  rate 0.01 the step map does not amplify earlier errors, measured: the float32 reference's own trajectory
  error stays below its one-step error).
* ReLU and max-pool decisions: a decision that rounding flips moves a whole cell's gradient, which no first-order
  bound covers.  The signs model's decisions are checked to be more than 3 float32 roundings from flipping
  (``decisions_stable``); the happy model has too many (32 channels x every 2x2 window) for that, so its
  layer-1 gradients (dW1, dgamma1, dbeta1) get a ``kink_allowance``: the exact jump of every window within 3
  roundings of a flip (the float64 backward with that decision flipped, against the one computed), added to the
  K u bound (measured at 64x64: a single flip moves dbeta1 by 1.2%, in single-threaded torch and the float32
  reference alike).
* db1 of the happy model is zero by the math (BatchNorm removes any per-channel shift of Z1): every
  implementation computes rounding noise, held to ``(N + 20) u sum |dZ1|`` per channel (a sum of N terms each
  carrying under 20 roundings of BatchNorm's backward).

The models' helpers (``problem``, ``chain_terms``, the decisions, ``kink_allowance``, ``db1_bound``, the BatchNorm
convention of each implementation) and the judging itself (``step_rows``, ``training_rows``) are
``nnparity.conv_models``'s, shared with the report's conv section: a test fails where a report row fails.

The frameworks are imported when a test runs: a missing framework fails, never skips.
"""

import importlib

import numpy as np
import pytest

from nnparity import conv_models
from nnparity.conv_models import (
    AXES,
    COURSE,
    DTYPES,
    LEARNING_RATE,
    SMALL,
    STEPS,
    U32,
    normwise,
    problem,
    reference_step,
    reference_training,
    step_rows,
    training_rows,
)
from nnparity.impls import REGISTRY
from nnparity.tolerances import FLOAT64_NORMWISE
from reference import convnet as ref

#: The frameworks, by the tests' names, and the report's implementation of each (its ``convnet_module``).
IMPLS = {"torch": "torch-nn", "keras": "keras", "flax": "flax"}
MODULES = {name: REGISTRY[impl].convnet_module for name, impl in IMPLS.items()}
FRAMEWORKS = tuple(IMPLS)


def framework(name):
    return importlib.import_module(MODULES[name])


def convention(name):
    """The reference's BatchNorm convention a framework is configured to (``nnparity.conv_models.convention``):
    Keras' defaults (momentum 0.99 of the old value, epsilon 1e-3), with torch's running variance unbiased
    (nn.BatchNorm2d has no other)."""
    return conv_models.convention(IMPLS[name])


def gamma(n, u):
    return n * u / (1 - n * u)


# ----------------------------------------------------------------------------------------------- BatchNorm

BN_SHAPE = (4, 5, 5, 3)  # N = 100 cells per channel


def bn_inputs(seed=0):
    """Z with a mean of the order of its spread, gamma near 1, non-zero beta, a running state away from (0, 1)."""
    rng = np.random.RandomState(seed)
    Z = 2 * rng.randn(*BN_SHAPE) + 1.0
    gamma_ = 1 + 0.1 * rng.randn(1, 1, 1, 3)
    beta = 0.1 * rng.randn(1, 1, 1, 3)
    dout = rng.randn(*BN_SHAPE)
    running = {"mean": 0.1 * rng.randn(1, 1, 1, 3), "var": 1 + 0.1 * rng.rand(1, 1, 1, 3)}
    return Z, gamma_, beta, dout, running


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_batchnorm_backward_matches_finite_differences(training):
    """The hand-written backward against central differences of J = sum(out * dout), float64, every entry."""
    Z, gamma_, beta, dout, running = bn_inputs()

    def J(arrays):
        out = ref.batchnorm_forward(arrays["Z"], arrays["gamma"], arrays["beta"], running, 0.99, 1e-3, training)[0]
        return np.sum(out * dout)

    _, cache, _ = ref.batchnorm_forward(Z, gamma_, beta, running, 0.99, 1e-3, training)
    analytic = dict(zip(("Z", "gamma", "beta"), ref.batchnorm_backward(dout, cache)))
    arrays = {"Z": Z, "gamma": gamma_, "beta": beta}
    h = 1e-5
    for name, array in arrays.items():
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            plus, minus = {k: v.copy() for k, v in arrays.items()}, {k: v.copy() for k, v in arrays.items()}
            plus[name][index] += h
            minus[name][index] -= h
            numeric[index] = (J(plus) - J(minus)) / (2 * h)
        # truncation h^2 |J'''| and rounding u |J| / h are both near 1e-10 here
        assert normwise(analytic[name], numeric) < 1e-8, name


def bn_bound(Z, gamma_, dout, running, training, bn, u):
    """Element-wise first-order bounds of a float32 BatchNorm: gamma_{N+10} u times each quantity's expression on
    absolute values, the shift |mean| kept (the error of Z - mean is relative to |Z| + |mean|) and the variance's
    relative error (kappa = mean((|Z| + |mean|)^2) / var times its own) carried into xhat."""
    N = Z.shape[0] * Z.shape[1] * Z.shape[2]
    if training:
        mean, var = Z.mean(axis=AXES, keepdims=True), Z.var(axis=AXES, keepdims=True)
    else:
        mean, var = running["mean"], running["var"]
    invstd = 1 / np.sqrt(var + bn["epsilon"])
    shifted = np.abs(Z) + np.abs(mean)
    kappa = np.mean(shifted ** 2, axis=AXES, keepdims=True) / var
    xabs = shifted * invstd * (1 + kappa)
    a, g = np.abs(dout), np.abs(gamma_)
    magnitudes = {
        "out": g * xabs + 1,
        "dgamma": np.sum(a * xabs, axis=AXES, keepdims=True),
        "dbeta": np.sum(a, axis=AXES, keepdims=True),
        "dZ": g * invstd * (a + np.mean(a, axis=AXES, keepdims=True) + xabs * np.mean(a * xabs, axis=AXES,
                                                                                         keepdims=True))
        if training else g * invstd * a * (1 + kappa),
        "mean": np.abs(running["mean"]) + np.mean(np.abs(Z), axis=AXES, keepdims=True),
        "var": running["var"] + np.mean(shifted ** 2, axis=AXES, keepdims=True) * N / (N - 1),
    }
    return {k: gamma(N + 10, u) * v for k, v in magnitudes.items()}


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_batchnorm_matches_reference(name, dtype, training):
    """Each framework's layer, configured to the reference's convention: forward, gradients of sum(out * dout),
    running statistics."""
    Z, gamma_, beta, dout, running = bn_inputs()
    bn = convention(name)
    truth = ref.batchnorm(Z, gamma_, beta, running, dout, training, "float64", bn)
    got = framework(name).batchnorm(Z, gamma_, beta, running, dout, training, dtype, bn)
    pairs = {q: (got[q], truth[q]) for q in ("out", "dZ", "dgamma", "dbeta")}
    pairs.update({q: (got["running"][q], truth["running"][q]) for q in ("mean", "var")})
    bounds = bn_bound(Z, gamma_, dout, running, training, bn, U32)
    for q, (a, b) in pairs.items():
        assert a.dtype == np.dtype(dtype), q
        assert a.shape == b.shape, q
        if dtype == "float64":
            assert normwise(a, b) <= FLOAT64_NORMWISE, q
        else:
            assert np.all(np.abs(a - b) <= bounds[q]), (q, np.max(np.abs(a - b) / bounds[q]))
            assert np.max(np.abs(a - b)) > 0 or q == "mean"  # really float32 (the inference mean is copied)


#: Each framework's documented BatchNorm defaults, in its own terms (the weight of the NEW batch value).
DEFAULTS = {
    "torch": {"new": 0.1, "epsilon": 1e-5, "unbiased": True},  # nn.BatchNorm2d(C): momentum=0.1, eps=1e-5
    "keras": {"new": 0.01, "epsilon": 1e-3, "unbiased": False},  # BatchNormalization: momentum=0.99, epsilon=1e-3
    "flax": {"new": 0.01, "epsilon": 1e-5, "unbiased": False},  # nn.BatchNorm: momentum=0.99, epsilon=1e-5
}


def predicted(defaults, Zs, gamma_, beta, running):
    """Two training steps and an inference step from the formulas alone: the outputs and running statistics."""
    a, eps = defaults["new"], defaults["epsilon"]
    outs = []
    for Z in Zs:
        N = Z.shape[0] * Z.shape[1] * Z.shape[2]
        mean = Z.sum(axis=AXES, keepdims=True) / N
        var = ((Z - mean) ** 2).sum(axis=AXES, keepdims=True) / N
        outs.append(gamma_ * (Z - mean) / np.sqrt(var + eps) + beta)
        var_running = var * N / (N - 1) if defaults["unbiased"] else var
        running = {"mean": (1 - a) * running["mean"] + a * mean, "var": (1 - a) * running["var"] + a * var_running}
    outs.append(gamma_ * (Zs[-1] - running["mean"]) / np.sqrt(running["var"] + eps) + beta)
    return outs, running


def three_steps(batchnorm, Zs, gamma_, beta, dout, running, bn):
    outs = []
    for Z in Zs:
        result = batchnorm(Z, gamma_, beta, running, dout, True, "float64", bn)
        outs.append(result["out"])
        running = result["running"]
    outs.append(batchnorm(Zs[-1], gamma_, beta, running, dout, False, "float64", bn)["out"])
    return outs, running


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_batchnorm_defaults_differ_as_the_formulas_predict(name):
    """With its DEFAULT momentum, epsilon and running variance, each framework's outputs and running statistics
    (two training steps, then inference) differ from the reference configured the Keras way by exactly the
    difference the formulas predict: torch (momentum 0.1 of the new value, eps 1e-5, unbiased) by a lot, flax
    (eps 1e-5) in the outputs only, Keras not at all."""
    Z, gamma_, beta, dout, running = bn_inputs()
    Zs = [Z, 0.5 * Z[::-1] - 0.3]
    fw_outs, fw_running = three_steps(framework(name).batchnorm, Zs, gamma_, beta, dout, running, None)
    ref_outs, ref_running = three_steps(ref.batchnorm, Zs, gamma_, beta, dout, running, ref.KERAS_BN)
    own_outs, own_running = predicted(DEFAULTS[name], Zs, gamma_, beta, running)
    keras_outs, keras_running = predicted(DEFAULTS["keras"], Zs, gamma_, beta, running)
    # the formulas reproduce each side...
    for q in ("mean", "var"):
        assert normwise(fw_running[q], own_running[q]) <= FLOAT64_NORMWISE, q
        assert normwise(ref_running[q], keras_running[q]) <= FLOAT64_NORMWISE, q
    for step in range(3):
        assert normwise(fw_outs[step], own_outs[step]) <= FLOAT64_NORMWISE, step
        assert normwise(ref_outs[step], keras_outs[step]) <= FLOAT64_NORMWISE, step
    # ...so the measured difference is the predicted one
    differences = {q: (fw_running[q] - ref_running[q], own_running[q] - keras_running[q]) for q in ("mean", "var")}
    differences.update({f"out{step}": (fw_outs[step] - ref_outs[step], own_outs[step] - keras_outs[step])
                        for step in range(3)})
    scale = max(np.max(np.abs(v)) for v in (*fw_outs, *fw_running.values()))
    for q, (measured, expected) in differences.items():
        assert np.max(np.abs(measured - expected)) <= 4 * FLOAT64_NORMWISE * scale, q
    size = {q: np.max(np.abs(expected)) for q, (_, expected) in differences.items()}
    if name == "torch":
        assert min(size.values()) > 1e-4, size
        assert size["mean"] > 1e-2 and size["var"] > 1e-2, size
    elif name == "flax":
        assert size["mean"] == 0 and size["var"] == 0, size
        assert min(size[f"out{step}"] for step in range(3)) > 1e-4, size
    else:
        assert max(size.values()) == 0, size


# ----------------------------------------------------------------------------------------------- the models

COURSE_MARKS = ()  # the course's 64x64 images run in both tiers: reference.convnet's conv layers are vectorised


def _unbiased(model, name):
    return conv_models.unbiased(model, IMPLS[name])


def check_step(got, truth, keep, model, shape, m, dtype):
    """Cost, AL, every gradient and the running statistics of one step against the float64 reference, judged by
    ``nnparity.conv_models.step_rows`` (the report's rows); returns the measured norm-wise differences."""
    rows = step_rows(got, truth, keep, model, shape, m, dtype)
    failing = [(r["quantity"], r["layer"], r["bound_ratio"], r["note"]) for r in rows if not r["passed"]]
    assert not failing, failing
    compared = {(None, "cost"), (None, "AL")} | {("grads", k) for k in truth["grads"]} | {
        ("running", k) for k in truth["running"]}
    assert len([r for r in rows if r["quantity"] != "decision margins"]) == len(compared)
    return {f"{r['quantity']}{'' if r['layer'] is None else r['layer']}": r["max_rel_err"] for r in rows}


def run_step(name, model, shape, m, dtype):
    parameters, running, X, Y = problem(model, shape, m)
    truth, keep = reference_step(model, shape, m, _unbiased(model, name))
    got = framework(name).forward_backward(parameters, X, Y, model, dtype, running, convention(name))
    return check_step(got, truth, keep, model, shape, m, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", ref.MODELS)
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_model_step_matches_reference(name, model, dtype):
    """Forward (training mode), cost and every gradient, 16x16x3 images, m = 8."""
    run_step(name, model, *SMALL, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", ref.MODELS)
@pytest.mark.parametrize("name", [pytest.param(n, marks=COURSE_MARKS) for n in FRAMEWORKS])
def test_model_step_matches_reference_course_shape(name, model, dtype):
    """The same on the course's 64x64x3 images, m = 4."""
    run_step(name, model, *COURSE, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", ref.MODELS)
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_training_trajectory_matches_reference(name, model, dtype):
    """5 full-batch gradient-descent steps (BatchNorm in training mode, running statistics carried): the costs,
    the final parameters and running statistics."""
    shape, m = SMALL
    parameters, running, X, Y = problem(model, shape, m)
    truth = reference_training(model, shape, m, _unbiased(model, name))
    got = framework(name).train(parameters, X, Y, model, dtype, STEPS, LEARNING_RATE, running, convention(name))
    assert truth["costs"][-1] < truth["costs"][0]  # it learns
    rows = training_rows(got, truth, model, shape, m, dtype)
    failing = [(r["phase"], r["quantity"], r["layer"], r["step"], r["bound_ratio"], r["note"]) for r in rows
               if not r["passed"]]
    assert not failing, failing
    assert len(rows) == STEPS + len(truth["parameters"]) + len(truth["running"])


@pytest.mark.parametrize("model", ref.MODELS)
def test_torch_needs_the_kernel_layout(model):
    """torch's OIHW kernels must be the HWIO kernels transposed: a plain reshape breaks equality by far."""
    shape, m = SMALL
    parameters, running, X, Y = problem(model, shape, m)
    truth, _ = reference_step(model, shape, m, _unbiased(model, "torch"))
    torch_convnet = framework("torch")
    wrong = torch_convnet.forward_backward(parameters, X, Y, model, "float64", running, convention("torch"),
                                           kernel_layout=False)
    assert normwise(wrong["AL"], truth["AL"]) > 1e-2
    assert normwise(wrong["grads"]["dW1"], truth["grads"]["dW1"]) > 1e-1


def test_torch_needs_the_flatten_permutation():
    """torch flattens NCHW as (c, h, w), Keras NHWC as (h, w, c): the Dense weights must be permuted (happy's
    8 x 8 x 32 features; the small signs model flattens 1 x 1 x 16, where the orders agree)."""
    shape, m = SMALL
    parameters, running, X, Y = problem("happy", shape, m)
    truth, _ = reference_step("happy", shape, m, True)
    torch_convnet = framework("torch")
    wrong = torch_convnet.forward_backward(parameters, X, Y, "happy", "float64", running, convention("torch"),
                                           flatten_permutation=False)
    assert normwise(wrong["AL"], truth["AL"]) > 1e-2
    assert normwise(wrong["grads"]["dW2"], truth["grads"]["dW2"]) > 1e-1
    H, W, C = ref.output_shape("happy", shape)
    W2 = parameters["W2"]
    assert np.array_equal(torch_convnet.unpermute_dense(torch_convnet.permute_dense(W2, (H, W, C)), (H, W, C)), W2)


@pytest.mark.parametrize("n, f, stride, expected", [
    (16, 4, 1, (1, 2)), (16, 8, 8, (0, 0)), (2, 2, 1, (0, 1)), (2, 4, 4, (1, 1)), (64, 8, 8, (0, 0)), (5, 3, 2, (1, 1)),
    (6, 3, 2, (0, 1)),
])
def test_same_padding(n, f, stride, expected):
    """TF's 'same': ceil(n / stride) outputs, the odd padding cell behind."""
    assert ref.same_padding(n, f, stride) == expected
    before, after = expected
    assert (n + before + after - f) // stride + 1 == -(-n // stride)
