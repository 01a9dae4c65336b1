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
  rate 0.05 the step map does not amplify earlier errors, measured: the float32 reference's own trajectory
  error stays below its one-step error).
* db1 of the happy model is zero by the math (BatchNorm removes any per-channel shift of Z1): every
  implementation computes rounding noise, held to ``(N + 20) u sum |dZ1|`` per channel (a sum of N terms each
  carrying under 20 roundings of BatchNorm's backward).

The frameworks are imported when a test runs: a missing framework fails, never skips.
"""

import importlib

import numpy as np
import pytest

from nnparity.tolerances import FLOAT64_NORMWISE, UNIT_ROUNDOFF
from reference import convnet as ref

MODULES = {"torch": "torch_impl.convnet", "keras": "tf_impl.convnet", "flax": "jax_impl.convnet"}
FRAMEWORKS = tuple(MODULES)
DTYPES = ("float64", "float32")
U32 = UNIT_ROUNDOFF["float32"]
AXES = (0, 1, 2)


def framework(name):
    return importlib.import_module(MODULES[name])


def convention(name):
    """The reference's BatchNorm convention a framework is configured to: Keras' defaults (momentum 0.99 of the old
    value, epsilon 1e-3), with torch's running variance unbiased (nn.BatchNorm2d has no other)."""
    return dict(ref.KERAS_BN, unbiased=(name == "torch"))


def normwise(a, b):
    """max |a - b| / max |b| (max |a| where b is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a)))


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


@pytest.mark.parametrize("n, f, stride, expected", [
    (16, 4, 1, (1, 2)), (16, 8, 8, (0, 0)), (2, 2, 1, (0, 1)), (2, 4, 4, (1, 1)), (64, 8, 8, (0, 0)), (5, 3, 2, (1, 1)),
    (6, 3, 2, (0, 1)),
])
def test_same_padding(n, f, stride, expected):
    """TF's 'same': ceil(n / stride) outputs, the odd padding cell behind."""
    assert ref.same_padding(n, f, stride) == expected
    before, after = expected
    assert (n + before + after - f) // stride + 1 == -(-n // stride)
