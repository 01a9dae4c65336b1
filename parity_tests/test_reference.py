"""The NumPy reference checked against independent computations (NumPy/SciPy only).

Every expected value here is computed in this file -- a formula written out, a
centred finite difference, ``scipy.special``, an independent re-draw from
``RandomState`` -- never taken from the output of the code under test.  The
reference's own ``gradient_check`` is used as the notes use it (and is itself
shown to catch a wrong backward).
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
from scipy import special

from nnparity.spec import Case
from reference import activations as act_mod
from reference import losses as loss_mod
from reference.gradient_check import gradient_check
from reference.initializers import initialize_parameters
from reference.losses import compute_cost, cost_backward, l1, l2
from reference.model import (
    forward_backward,
    model_backward,
    model_forward,
    predict,
    train,
    update_parameters,
)
from reference.utils import image2vector, minibatch_schedule, normalize_rows, step_count

HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu", "linear")
LOSSES = ("cross_entropy", "l1", "l2")
LEAKY_SLOPE = 0.05  # not the default 0.01: a slope that is ignored somewhere shows up
KINK_MARGIN = 1e-5
GRADCHECK_TOL = 1e-7


# --------------------------------------------------------------------------------------
# Independent helpers: the notes' formulas written out again, nothing from reference/.
# --------------------------------------------------------------------------------------

def indep_g(name, Z, slope=0.01):
    """g(Z) written out."""
    if name == "sigmoid":
        return special.expit(Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return Z * (Z > 0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, slope * Z)
    if name == "linear":
        return Z.copy()
    raise AssertionError(name)


def indep_gprime(name, Z, slope=0.01):
    """g'(Z) written out (relu'(0) = 0, leaky_relu'(0) = slope)."""
    if name == "sigmoid":
        s = special.expit(Z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(Z) ** 2
    if name == "relu":
        return (Z > 0).astype(Z.dtype)
    if name == "leaky_relu":
        return np.where(Z > 0, 1.0, slope).astype(Z.dtype)
    if name == "linear":
        return np.ones_like(Z)
    raise AssertionError(name)


def indep_forward(params, X, acts, slope=0.01):
    """[(Z1, A1), ..., (ZL, AL)] with Z = W A_prev + b written out."""
    out, A = [], X
    for l, name in enumerate(acts, start=1):
        Z = np.dot(params[f"W{l}"], A) + params[f"b{l}"]
        A = indep_g(name, Z, slope)
        out.append((Z, A))
    return out


def indep_cross_entropy(AL, Y):
    """-1/m sum(y log a + (1-y) log(1-a)), one example at a time with math.log."""
    a, y = AL.ravel().tolist(), Y.ravel().tolist()
    return -sum(yi * math.log(ai) + (1 - yi) * math.log(1 - ai) for ai, yi in zip(a, y)) / len(a)


def indep_step(params, X, Y, acts, lr, slope=0.01):
    """One gradient-descent step for sigmoid output + cross-entropy, backward written out."""
    L = len(acts)
    m = X.shape[1]
    fwd = indep_forward(params, X, acts, slope)
    cost = indep_cross_entropy(fwd[-1][1], Y)
    new = {}
    dZ = fwd[-1][1] - Y  # the notes' identity for sigmoid + cross-entropy
    for l in range(L, 0, -1):
        A_prev = X if l == 1 else fwd[l - 2][1]
        dW = dZ @ A_prev.T / m
        db = dZ.sum(axis=1, keepdims=True) / m
        if l > 1:
            dA_prev = params[f"W{l}"].T @ dZ
            dZ_next = dA_prev * indep_gprime(acts[l - 2], fwd[l - 2][0], slope)
        new[f"W{l}"] = params[f"W{l}"] - lr * dW
        new[f"b{l}"] = params[f"b{l}"] - lr * db
        if l > 1:
            dZ = dZ_next
    return new, cost


def random_params(layer_dims, seed, scale=1.0, bias_scale=0.5):
    """Parameters drawn here (not by the reference's initialiser), biases non-zero."""
    rng = np.random.RandomState(seed)
    params = {}
    for l in range(1, len(layer_dims)):
        params[f"W{l}"] = rng.randn(layer_dims[l], layer_dims[l - 1]) * scale
        params[f"b{l}"] = rng.randn(layer_dims[l], 1) * bias_scale
    return params


def random_data(n0, m, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(n0, m)
    Y = (rng.rand(1, m) > 0.5).astype(np.float64)
    if Y.min() == Y.max():  # make sure both labels occur
        Y[0, 0] = 1 - Y[0, 0]
    return X, Y


def finite_difference(f, x, h):
    """Centred difference of a scalar or elementwise function."""
    return (f(x + h) - f(x - h)) / (2 * h)


# --------------------------------------------------------------------------------------
# 1. Gradient checks: every hidden activation x every loss, and L = 1.
# --------------------------------------------------------------------------------------

GRADCHECK_CASES = (
    [
        pytest.param((3, 5, 4, 1), hidden, loss, id=f"l3-{hidden.replace('_', '')}-{loss.replace('_', '')}")
        for hidden in HIDDEN
        for loss in LOSSES
    ]
    + [pytest.param((3, 1), "relu", loss, id=f"l1-logreg-{loss.replace('_', '')}") for loss in LOSSES]
    + [pytest.param((4, 6, 5, 3, 1), "relu", "cross_entropy", id="l4-relu-crossentropy")]
)


def _gradcheck_setup(layer_dims, hidden, loss, m=7, seed=3):
    case = Case(layer_dims=tuple(layer_dims), hidden_activation=hidden, loss=loss, leaky_slope=LEAKY_SLOPE)
    X, Y = random_data(layer_dims[0], m, seed)
    params = random_params(layer_dims, seed + 100, scale=0.8)
    fwd = indep_forward(params, X, case.activations(), LEAKY_SLOPE)
    # Precondition: no pre-activation within KINK_MARGIN of 0 (relu / leaky_relu kink,
    # and sign(a - y) for l1 is smooth because a is strictly inside (0, 1)).
    for l, (Z, _) in enumerate(fwd, start=1):
        assert np.min(np.abs(Z)) > KINK_MARGIN, f"Z{l} too close to the kink; pick another seed"
    AL = fwd[-1][1]
    assert np.all((AL > 1e-3) & (AL < 1 - 1e-3)), "output saturated; pick another seed"
    if case.L > 1 and hidden in ("relu", "leaky_relu"):
        hidden_Z = np.concatenate([Z.ravel() for Z, _ in fwd[:-1]])
        # both branches of the kink are exercised (so the slope matters)
        assert (hidden_Z < 0).sum() >= 3 and (hidden_Z > 0).sum() >= 3
    return case, params, X, Y


@pytest.mark.parametrize("layer_dims, hidden, loss", GRADCHECK_CASES)
def test_gradient_check(layer_dims, hidden, loss):
    case, params, X, Y = _gradcheck_setup(layer_dims, hidden, loss)
    difference = gradient_check(params, X, Y, case)
    assert difference < GRADCHECK_TOL, f"{hidden}/{loss}: difference {difference:.3e}"


def test_gradient_check_leaky_uses_case_slope():
    """The gradient check is only meaningful for leaky_relu if the slope reaches the gradients:
    the analytic dW1 must match an independent backward with slope 0.05 (not 0.01)."""
    case, params, X, Y = _gradcheck_setup((3, 5, 4, 1), "leaky_relu", "cross_entropy")
    fb = forward_backward(params, X, Y, case)
    new, _ = indep_step(params, X, Y, case.activations(), lr=1.0, slope=LEAKY_SLOPE)
    for name in params:
        expected_grad = params[name] - new[name]  # lr = 1
        np.testing.assert_allclose(fb[f"d{name}"], expected_grad, rtol=1e-12, atol=1e-15, err_msg=name)


# --------------------------------------------------------------------------------------
# 2. Negative controls: the gradient check detects a wrong backward.
# --------------------------------------------------------------------------------------

def test_gradient_check_detects_tanh_backward_without_derivative(monkeypatch):
    case, params, X, Y = _gradcheck_setup((3, 5, 4, 1), "tanh", "cross_entropy")
    assert gradient_check(params, X, Y, case) < GRADCHECK_TOL  # right before the break
    monkeypatch.setitem(act_mod._BACKWARD, "tanh", lambda dA, Z, A: dA)  # drops (1 - A^2)
    difference = gradient_check(params, X, Y, case)
    assert difference > 1e-3, f"a wrong tanh backward went unnoticed: {difference:.3e}"


def test_gradient_check_detects_wrong_leaky_slope(monkeypatch):
    case, params, X, Y = _gradcheck_setup((3, 5, 4, 1), "leaky_relu", "cross_entropy")
    real = act_mod.leaky_relu_backward
    monkeypatch.setattr(act_mod, "leaky_relu_backward", lambda dA, Z, A, slope: real(dA, Z, A, 0.5))
    difference = gradient_check(params, X, Y, case)
    assert difference > 1e-3, f"a wrong leaky slope in the backward went unnoticed: {difference:.3e}"


def test_gradient_check_detects_wrong_loss_backward(monkeypatch):
    case, params, X, Y = _gradcheck_setup((3, 5, 4, 1), "tanh", "l2")
    monkeypatch.setitem(loss_mod._BACKWARD, "l2", lambda AL, Y: AL - Y)  # drops the factor 2
    difference = gradient_check(params, X, Y, case)
    assert difference > 1e-3, f"a wrong l2 backward went unnoticed: {difference:.3e}"


# --------------------------------------------------------------------------------------
# 3. Activations.
# --------------------------------------------------------------------------------------

EXTREME_Z = [-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_extremes_no_warnings_and_matches_expit(dtype):
    Z = np.array(EXTREME_Z, dtype=dtype)
    # Underflow of exp(-1000) to 0 is the exact, benign result (NumPy ignores it by
    # default); overflow, division by zero and invalid operations must not happen.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            A = act_mod.sigmoid(Z)
    assert A.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(A))
    expected = special.expit(np.array(EXTREME_Z, dtype=np.float64)).astype(dtype)
    rtol = 1e-15 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(A, expected, rtol=rtol, atol=0)
    assert A[0] == 0.0 and A[3] == 0.5 and A[-1] == 1.0


@pytest.mark.parametrize("name", HIDDEN + ("softmax",))
def test_activation_forward_matches_formula(name):
    rng = np.random.RandomState(5)
    Z = rng.randn(4, 6) * 3
    got = act_mod.activation_forward(Z, name, slope=LEAKY_SLOPE)
    if name == "softmax":
        expected = special.softmax(Z, axis=0)
    else:
        expected = indep_g(name, Z, LEAKY_SLOPE)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", HIDDEN + ("softmax",))
def test_activation_float32_in_float32_out(name):
    rng = np.random.RandomState(6)
    Z = (rng.randn(3, 5) * 2).astype(np.float32)
    dA = rng.randn(3, 5).astype(np.float32)
    A = act_mod.activation_forward(Z, name, slope=LEAKY_SLOPE)
    assert A.dtype == np.float32, f"{name} forward: {A.dtype}"
    dZ = act_mod.activation_backward(dA, Z, A, name, slope=LEAKY_SLOPE)
    assert dZ.dtype == np.float32, f"{name} backward: {dZ.dtype}"


def test_direct_activation_functions_float32():
    Z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]], dtype=np.float32)
    for out in (act_mod.sigmoid(Z), act_mod.tanh(Z), act_mod.relu(Z), act_mod.leaky_relu(Z, LEAKY_SLOPE),
                act_mod.linear(Z), act_mod.softmax(Z)):
        assert out.dtype == np.float32


def test_softmax_columns_sum_to_one_and_shift_invariant():
    rng = np.random.RandomState(7)
    Z = rng.randn(5, 8) * 4
    S = act_mod.softmax(Z)
    np.testing.assert_allclose(S.sum(axis=0), np.ones(8), rtol=1e-15, atol=2e-16)
    assert np.all(S > 0)
    shift = rng.randn(1, 8) * 100  # one constant per column
    np.testing.assert_allclose(act_mod.softmax(Z + shift), S, rtol=1e-12, atol=1e-15)


def test_softmax_large_logits_no_overflow():
    Z = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, -999.0], [999.0, -1000.0, -1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            S = act_mod.softmax(Z)
    assert np.all(np.isfinite(S))
    e = math.exp(-1.0)
    expected = np.array(
        [[1 / (2 + e), 0.0, e / (1 + 2 * e)], [1 / (2 + e), 1.0, 1 / (1 + 2 * e)], [e / (2 + e), 0.0, e / (1 + 2 * e)]]
    )
    np.testing.assert_allclose(S, expected, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(S.sum(axis=0), np.ones(3), rtol=1e-15)


@pytest.mark.parametrize("name", HIDDEN)
def test_activation_backward_equals_finite_difference(name):
    """dZ = dA * g'(Z) against a centred difference of the forward, elementwise, away from kinks."""
    rng = np.random.RandomState(8)
    Z = np.linspace(-4, 4, 81).reshape(9, 9)
    Z = Z[np.abs(Z) > 1e-3].reshape(1, -1)  # away from the kink at 0
    Z = Z + rng.uniform(-0.01, 0.01, Z.shape)
    dA = rng.randn(*Z.shape)
    A = act_mod.activation_forward(Z, name, slope=LEAKY_SLOPE)
    dZ = act_mod.activation_backward(dA, Z, A, name, slope=LEAKY_SLOPE)
    h = 1e-6
    fd = finite_difference(lambda z: act_mod.activation_forward(z, name, slope=LEAKY_SLOPE), Z, h)
    np.testing.assert_allclose(dZ, dA * fd, rtol=1e-7, atol=1e-9)
    # and the written-out derivative
    np.testing.assert_allclose(dZ, dA * indep_gprime(name, Z, LEAKY_SLOPE), rtol=1e-12, atol=1e-15)


def test_softmax_backward_equals_finite_difference():
    """softmax_backward is the Jacobian-transpose product: dZ_j = d/dZ_j sum_k dA_k softmax(Z)_k."""
    rng = np.random.RandomState(9)
    Z = rng.randn(4, 3)
    dA = rng.randn(4, 3)
    A = act_mod.softmax(Z)
    dZ = act_mod.softmax_backward(dA, Z, A)
    h = 1e-6
    expected = np.empty_like(Z)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            E = np.zeros_like(Z)
            E[i, j] = h
            expected[i, j] = (np.sum(dA * special.softmax(Z + E, axis=0))
                              - np.sum(dA * special.softmax(Z - E, axis=0))) / (2 * h)
    np.testing.assert_allclose(dZ, expected, rtol=1e-6, atol=1e-9)


def test_kink_conventions():
    Z = np.zeros((1, 3))
    dA = np.array([[1.0, -2.0, 3.0]])
    A_relu = act_mod.relu(Z)
    np.testing.assert_array_equal(act_mod.relu_backward(dA, Z, A_relu), np.zeros((1, 3)))  # relu'(0) = 0
    np.testing.assert_array_equal(act_mod.activation_backward(dA, Z, A_relu, "relu"), np.zeros((1, 3)))
    A_leaky = act_mod.leaky_relu(Z, LEAKY_SLOPE)
    np.testing.assert_array_equal(act_mod.leaky_relu_backward(dA, Z, A_leaky, LEAKY_SLOPE), LEAKY_SLOPE * dA)
    np.testing.assert_array_equal(
        act_mod.activation_backward(dA, Z, A_leaky, "leaky_relu", slope=LEAKY_SLOPE), LEAKY_SLOPE * dA
    )
    # default slope of the by-name API is 0.01
    np.testing.assert_array_equal(act_mod.activation_backward(dA, Z, A_leaky, "leaky_relu"), 0.01 * dA)
    # just either side of the kink
    Zs = np.array([[-1e-300, 1e-300]])
    np.testing.assert_array_equal(act_mod.relu_backward(np.ones((1, 2)), Zs, act_mod.relu(Zs)), [[0.0, 1.0]])
    np.testing.assert_array_equal(
        act_mod.leaky_relu_backward(np.ones((1, 2)), Zs, None, LEAKY_SLOPE), [[LEAKY_SLOPE, 1.0]]
    )


# --------------------------------------------------------------------------------------
# 4. Losses.
# --------------------------------------------------------------------------------------

def test_l1_l2_notes_example():
    """The notes' example: yhat = [.9, .2, .1, .4, .9], y = [1, 0, 0, 1, 1] -> L1 = 1.1, L2 = 0.43."""
    yhat = np.array([0.9, 0.2, 0.1, 0.4, 0.9])
    y = np.array([1, 0, 0, 1, 1])
    assert l1(yhat, y) == pytest.approx(1.1, rel=1e-14)
    assert l2(yhat, y) == pytest.approx(0.43, rel=1e-14)


def test_l1_l2_equal_sums_random():
    rng = np.random.RandomState(10)
    yhat = rng.rand(1, 13)
    y = (rng.rand(1, 13) > 0.5).astype(float)
    expected_l1 = sum(abs(b - a) for a, b in zip(yhat.ravel().tolist(), y.ravel().tolist()))
    expected_l2 = sum((b - a) ** 2 for a, b in zip(yhat.ravel().tolist(), y.ravel().tolist()))
    assert float(l1(yhat, y)) == pytest.approx(expected_l1, rel=1e-14)
    assert float(l2(yhat, y)) == pytest.approx(expected_l2, rel=1e-14)
    # as training costs they enter divided by m
    assert float(compute_cost(yhat, y, "l1")) == pytest.approx(expected_l1 / 13, rel=1e-14)
    assert float(compute_cost(yhat, y, "l2")) == pytest.approx(expected_l2 / 13, rel=1e-14)


def test_cross_entropy_cost_formula():
    rng = np.random.RandomState(11)
    AL = rng.uniform(0.02, 0.98, (1, 9))
    Y = (rng.rand(1, 9) > 0.5).astype(float)
    J = compute_cost(AL, Y, "cross_entropy")
    assert np.ndim(J) == 0
    assert float(J) == pytest.approx(indep_cross_entropy(AL, Y), rel=1e-14)
    # default loss is cross-entropy
    assert float(compute_cost(AL, Y)) == pytest.approx(indep_cross_entropy(AL, Y), rel=1e-14)


@pytest.mark.parametrize("loss", LOSSES)
def test_compute_cost_keeps_dtype(loss):
    AL = np.array([[0.2, 0.7, 0.9]], dtype=np.float32)
    Y = np.array([[0.0, 1.0, 1.0]], dtype=np.float32)
    assert compute_cost(AL, Y, loss).dtype == np.float32


@pytest.mark.parametrize("loss", LOSSES)
def test_cost_backward_is_per_example_derivative(loss):
    """dAL[i] = d(m J)/d AL[i]: the documented convention, no 1/m."""
    rng = np.random.RandomState(12)
    m = 6
    AL = rng.uniform(0.05, 0.95, (1, m))
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]])
    dAL = cost_backward(AL, Y, loss)
    assert dAL.shape == AL.shape
    h = 1e-6
    expected = np.empty_like(AL)
    for i in range(m):
        E = np.zeros_like(AL)
        E[0, i] = h
        expected[0, i] = m * (float(compute_cost(AL + E, Y, loss)) - float(compute_cost(AL - E, Y, loss))) / (2 * h)
    np.testing.assert_allclose(dAL, expected, rtol=1e-6, atol=1e-8)
    # and the derivatives written out
    written = {
        "cross_entropy": -(Y / AL) + (1 - Y) / (1 - AL),
        "l1": np.where(AL > Y, 1.0, -1.0),
        "l2": 2 * (AL - Y),
    }[loss]
    np.testing.assert_allclose(dAL, written, rtol=1e-14)


# --------------------------------------------------------------------------------------
# 5. Initialisers.
# --------------------------------------------------------------------------------------

INIT_CASES = [
    pytest.param("zeros", 0.01, id="zeros"),
    pytest.param("small-random", 0.01, id="small-random-0.01"),
    pytest.param("small-random", 0.3, id="small-random-0.3"),
    pytest.param("inv-sqrt", 0.01, id="inv-sqrt"),
    pytest.param("he", 0.01, id="he"),
    pytest.param("xavier", 0.01, id="xavier"),
]


def indep_init(layer_dims, init, scale, seed):
    rng = np.random.RandomState(seed)
    out = {}
    for l in range(1, len(layer_dims)):
        n_prev, n = layer_dims[l - 1], layer_dims[l]
        if init == "zeros":
            W = np.zeros((n, n_prev))
        else:
            draw = rng.randn(n, n_prev)
            factor = {
                "small-random": scale,
                "inv-sqrt": 1 / math.sqrt(n_prev),
                "he": math.sqrt(2 / n_prev),
                "xavier": math.sqrt(2 / (n_prev + n)),
            }[init]
            W = draw * factor
        out[f"W{l}"] = W
        out[f"b{l}"] = np.zeros((n, 1))
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("init, scale", INIT_CASES)
def test_initializer(init, scale, dtype):
    layer_dims = (5, 4, 3, 1)
    seed = 3
    params = initialize_parameters(layer_dims, init=init, scale=scale, seed=seed, dtype=dtype)
    expected = indep_init(layer_dims, init, scale, seed)
    assert sorted(params) == sorted(expected)
    for l in range(1, len(layer_dims)):
        W, b = params[f"W{l}"], params[f"b{l}"]
        assert W.shape == (layer_dims[l], layer_dims[l - 1])
        assert b.shape == (layer_dims[l], 1)
        assert W.dtype == np.dtype(dtype) and b.dtype == np.dtype(dtype)
        assert np.all(b == 0)
        rtol = 1e-15 if dtype == "float64" else 1e-7
        np.testing.assert_allclose(W, expected[f"W{l}"].astype(dtype), rtol=rtol, atol=0, err_msg=f"W{l}")
        if init != "zeros":
            assert np.all(W != 0)


def test_initializer_seed_matters():
    a = initialize_parameters((4, 3, 1), init="he", seed=1)
    b = initialize_parameters((4, 3, 1), init="he", seed=2)
    assert not np.allclose(a["W1"], b["W1"])


# --------------------------------------------------------------------------------------
# 6. utils.
# --------------------------------------------------------------------------------------

def test_image2vector_c_order():
    image = np.arange(24, dtype=float).reshape(3, 4, 2) * 1.5 - 7
    v = image2vector(image)
    assert v.shape == (24, 1)
    expected = np.empty((24, 1))
    for i in range(3):
        for j in range(4):
            for k in range(2):
                expected[i * 4 * 2 + j * 2 + k, 0] = image[i, j, k]
    np.testing.assert_array_equal(v, expected)


def test_normalize_rows():
    x = np.array([[0.0, 3.0, 4.0], [1.0, 6.0, 4.0]])
    got = normalize_rows(x)
    expected = np.array([[0.0, 0.6, 0.8], [1 / math.sqrt(53), 6 / math.sqrt(53), 4 / math.sqrt(53)]])
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    rng = np.random.RandomState(13)
    x = rng.randn(6, 4) * 10
    got = normalize_rows(x)
    np.testing.assert_allclose(np.sqrt((got ** 2).sum(axis=1)), np.ones(6), rtol=1e-15)
    # same direction: every row is a positive multiple of the input row
    ratio = got / x
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 4)), rtol=1e-14)
    assert np.all(ratio > 0)


@pytest.mark.parametrize("batch_size", [None, 10, 11, 1000])
def test_minibatch_schedule_full_batch_is_none(batch_size):
    assert minibatch_schedule(10, batch_size, epochs=3, shuffle_seed=0) is None
    assert step_count(10, batch_size, 3) == 3


@pytest.mark.parametrize("shuffle_seed", [0, 5])
def test_minibatch_schedule_batches_and_shuffles(shuffle_seed):
    m, batch, epochs = 10, 4, 2
    sched = minibatch_schedule(m, batch, epochs, shuffle_seed=shuffle_seed)
    assert [len(s) for s in sched] == [4, 4, 2, 4, 4, 2]
    per_epoch = 3
    for e in range(epochs):
        got = np.concatenate(sched[e * per_epoch:(e + 1) * per_epoch])
        np.testing.assert_array_equal(got, np.random.RandomState(shuffle_seed + e).permutation(m))
    # the two epochs are shuffled differently
    assert not np.array_equal(np.concatenate(sched[:3]), np.concatenate(sched[3:]))
    assert step_count(m, batch, epochs) == len(sched)


def test_minibatch_schedule_sgd():
    m, epochs = 10, 3
    sched = minibatch_schedule(m, 1, epochs, shuffle_seed=2)
    assert len(sched) == m * epochs
    assert all(len(s) == 1 for s in sched)
    for e in range(epochs):
        got = np.concatenate(sched[e * m:(e + 1) * m])
        np.testing.assert_array_equal(got, np.random.RandomState(2 + e).permutation(m))
    assert step_count(m, 1, epochs) == len(sched)


@pytest.mark.parametrize("m, batch, epochs", [(10, 3, 2), (10, 5, 4), (7, 2, 1), (64, 16, 3), (65, 16, 2), (9, 8, 2)])
def test_step_count_matches_schedule(m, batch, epochs):
    sched = minibatch_schedule(m, batch, epochs)
    assert step_count(m, batch, epochs) == len(sched) == epochs * math.ceil(m / batch)
    sizes = [len(s) for s in sched]
    assert sum(sizes) == m * epochs


# --------------------------------------------------------------------------------------
# 7. Model.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_shapes_and_values(hidden):
    layer_dims = (4, 3, 2, 1)
    m = 6
    case = Case(layer_dims=layer_dims, hidden_activation=hidden, leaky_slope=LEAKY_SLOPE)
    X, _ = random_data(4, m, 14)
    params = random_params(layer_dims, 15)
    AL, caches = model_forward(X, params, case)
    expected = indep_forward(params, X, case.activations(), LEAKY_SLOPE)
    assert len(caches) == case.L
    for l, (cache, (Z_exp, A_exp)) in enumerate(zip(caches, expected), start=1):
        A_prev, W, b, Z, A, D, gZ = cache
        assert Z.shape == (layer_dims[l], m) and A.shape == (layer_dims[l], m)
        np.testing.assert_allclose(Z, Z_exp, rtol=1e-13, atol=1e-15, err_msg=f"Z{l}")
        np.testing.assert_allclose(A, A_exp, rtol=1e-13, atol=1e-15, err_msg=f"A{l}")
    assert AL.shape == (1, m)
    np.testing.assert_allclose(AL, expected[-1][1], rtol=1e-13)


def test_predict_threshold_strictly_greater():
    # L = 1: AL = sigmoid(X[0]) exactly, since W = [[1, 0]], b = 0.
    case = Case(layer_dims=(2, 1))
    params = {"W1": np.array([[1.0, 0.0]]), "b1": np.zeros((1, 1))}
    X = np.array([[-3.0, 0.0, 1e-9, -1e-9, 3.0], [5.0, -5.0, 7.0, 1.0, 0.0]])
    # sigmoid(0) == 0.5 exactly -> 0 (strictly greater), sigmoid(1e-9) > 0.5 -> 1
    assert special.expit(0.0) == 0.5 and special.expit(1e-9) > 0.5
    p = predict(X, params, case)
    assert p.shape == (1, 5)
    assert np.issubdtype(p.dtype, np.integer)
    np.testing.assert_array_equal(p, [[0, 0, 1, 0, 1]])


def test_predict_deep_network_exact():
    # Hidden layer is linear pass-through (relu of positive inputs); output logit = x0 - x1.
    case = Case(layer_dims=(2, 2, 1), hidden_activation="relu")
    params = {"W1": np.eye(2), "b1": np.zeros((2, 1)), "W2": np.array([[1.0, -1.0]]), "b2": np.zeros((1, 1))}
    X = np.array([[2.0, 1.0, 1.0, 3.0], [1.0, 1.0, 4.0, 0.5]])
    np.testing.assert_array_equal(predict(X, params, case), [[1, 0, 0, 1]])


def _train_setup(hidden="tanh", layer_dims=(3, 4, 1), m=10, lr=0.3, epochs=5):
    case = Case(layer_dims=layer_dims, hidden_activation=hidden, learning_rate=lr, epochs=epochs)
    X, Y = random_data(layer_dims[0], m, 16)
    params = random_params(layer_dims, 17, scale=0.7)
    return case, params, X, Y


def test_train_full_batch_costs():
    case, params, X, Y = _train_setup(epochs=5)
    final, costs = train(params, X, Y, case)
    assert costs.shape == (case.epochs,)
    # costs[0]: the cross-entropy at the initial parameters, written out
    assert float(costs[0]) == pytest.approx(indep_cross_entropy(indep_forward(params, X, case.activations())[-1][1], Y),
                                            rel=1e-13)
    # every step: independent gradient descent
    p = params
    for step in range(case.epochs):
        p, cost = indep_step(p, X, Y, case.activations(), case.learning_rate)
        assert float(costs[step]) == pytest.approx(cost, rel=1e-12), f"step {step}"
    for name in params:
        np.testing.assert_allclose(final[name], p[name], rtol=1e-12, atol=1e-14, err_msg=name)
    assert costs[-1] < costs[0]


def test_train_one_minibatch_step_uses_schedule():
    case, params, X, Y = _train_setup(m=10)
    sched = minibatch_schedule(10, 4, epochs=1, shuffle_seed=0)
    final, costs = train(params, X, Y, case, schedule=sched[:1])
    assert costs.shape == (1,)
    idx = sched[0]
    expected, cost = indep_step(params, X[:, idx], Y[:, idx], case.activations(), case.learning_rate)
    assert float(costs[0]) == pytest.approx(cost, rel=1e-13)
    for name in params:
        np.testing.assert_allclose(final[name], expected[name], rtol=1e-13, atol=1e-15, err_msg=name)
    # and it is not the full-batch step
    full, _ = indep_step(params, X, Y, case.activations(), case.learning_rate)
    assert not np.allclose(final["W1"], full["W1"], rtol=1e-6)


def test_train_minibatch_schedule_consumed_in_order():
    case, params, X, Y = _train_setup(m=10, epochs=99)  # epochs is ignored when a schedule is given
    sched = minibatch_schedule(10, 4, epochs=2, shuffle_seed=1)
    final, costs = train(params, X, Y, case, schedule=sched)
    assert costs.shape == (len(sched),) == (6,)
    p = params
    for step, idx in enumerate(sched):
        p, cost = indep_step(p, X[:, idx], Y[:, idx], case.activations(), case.learning_rate)
        assert float(costs[step]) == pytest.approx(cost, rel=1e-12), f"step {step}"
    for name in params:
        np.testing.assert_allclose(final[name], p[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_train_before_update_sees_parameters_before_update():
    case, params, X, Y = _train_setup(epochs=3)
    seen = []
    train(params, X, Y, case, before_update=lambda step, p, xb, yb: seen.append((step, copy.deepcopy(p), xb.shape)))
    assert [s for s, _, _ in seen] == [0, 1, 2]
    for name in params:
        np.testing.assert_array_equal(seen[0][1][name], params[name])
    p1, _ = indep_step(params, X, Y, case.activations(), case.learning_rate)
    for name in params:
        np.testing.assert_allclose(seen[1][1][name], p1[name], rtol=1e-13, atol=1e-15)


def test_update_parameters_does_not_mutate_and_is_correct():
    rng = np.random.RandomState(18)
    params = {"W1": rng.randn(3, 2), "b1": rng.randn(3, 1), "W2": rng.randn(1, 3), "b2": rng.randn(1, 1)}
    grads = {f"d{k}": rng.randn(*v.shape) for k, v in params.items()}
    grads["dA1"] = rng.randn(3, 4)  # extra keys are fine
    params_copy = copy.deepcopy(params)
    grads_copy = copy.deepcopy(grads)
    new = update_parameters(params, grads, 0.1)
    for k in params:
        np.testing.assert_array_equal(params[k], params_copy[k])
        np.testing.assert_array_equal(grads[f"d{k}"], grads_copy[f"d{k}"])
        assert new[k] is not params[k]
        np.testing.assert_allclose(new[k], params_copy[k] - 0.1 * grads_copy[f"d{k}"], rtol=1e-15)
    assert sorted(new) == sorted(params)


def test_zeros_init_symmetry_problem():
    case = Case(layer_dims=(2, 3, 1), hidden_activation="tanh", init="zeros", learning_rate=0.5, epochs=10)
    X, Y = random_data(2, 8, 19)
    params = initialize_parameters(case.layer_dims, init="zeros", seed=case.seed)
    final, costs = train(params, X, Y, case)
    W1 = final["W1"]
    for row in W1[1:]:
        np.testing.assert_array_equal(row, W1[0])
    np.testing.assert_array_equal(final["b1"], np.full_like(final["b1"], final["b1"][0, 0]))
    np.testing.assert_array_equal(final["W2"], np.full_like(final["W2"], final["W2"][0, 0]))
    # contrast: a random start breaks the symmetry
    rand = initialize_parameters(case.layer_dims, init="inv-sqrt", seed=case.seed)
    final_r, _ = train(rand, X, Y, case)
    assert not np.allclose(final_r["W1"][0], final_r["W1"][1])


def test_symmetric_nonzero_start_stays_symmetric():
    """Identical hidden units (same rows of W1, same b1, same W2 entries) get identical gradients."""
    case = Case(layer_dims=(2, 3, 1), hidden_activation="tanh", learning_rate=0.5, epochs=10)
    X, Y = random_data(2, 8, 20)
    params = {
        "W1": np.tile([[0.3, -0.2]], (3, 1)),
        "b1": np.full((3, 1), 0.1),
        "W2": np.full((1, 3), 0.4),
        "b2": np.zeros((1, 1)),
    }
    final, _ = train(params, X, Y, case)
    assert not np.allclose(final["W1"], params["W1"])  # it did learn something
    for row in final["W1"][1:]:
        np.testing.assert_allclose(row, final["W1"][0], rtol=1e-14, atol=1e-16)


# --------------------------------------------------------------------------------------
# 8. forward_backward.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer_dims", [(3, 1), (3, 4, 1), (3, 5, 4, 1), (2, 3, 3, 2, 1)],
                         ids=lambda d: "l%d" % (len(d) - 1))
def test_forward_backward_keys(layer_dims):
    L = len(layer_dims) - 1
    case = Case(layer_dims=layer_dims, hidden_activation="tanh")
    X, Y = random_data(layer_dims[0], 5, 21)
    params = random_params(layer_dims, 22)
    fb = forward_backward(params, X, Y, case)
    expected = {"cost"}
    for l in range(1, L + 1):
        expected |= {f"Z{l}", f"A{l}", f"dZ{l}", f"dW{l}", f"db{l}"}
        if l > 1:
            expected.add(f"dA{l - 1}")
    assert set(fb) == expected
    for l in range(1, L + 1):
        assert fb[f"dW{l}"].shape == params[f"W{l}"].shape
        assert fb[f"db{l}"].shape == params[f"b{l}"].shape
        assert fb[f"dZ{l}"].shape == (layer_dims[l], 5)
        if l > 1:
            assert fb[f"dA{l - 1}"].shape == (layer_dims[l - 1], 5)
    assert float(fb["cost"]) == pytest.approx(indep_cross_entropy(fb[f"A{L}"], Y), rel=1e-14)


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
@pytest.mark.parametrize("m", [1, 7, 50])
def test_dZL_equals_AL_minus_Y(hidden, m):
    layer_dims = (3, 4, 1)
    case = Case(layer_dims=layer_dims, hidden_activation=hidden, loss="cross_entropy")
    X, Y = random_data(3, m, 23 + m)
    if m == 1:
        Y = np.array([[1.0]])
    params = random_params(layer_dims, 24)
    fb = forward_backward(params, X, Y, case)
    AL = fb["A2"]
    expected = AL - Y
    assert np.all(expected != 0)
    np.testing.assert_allclose(fb["dZ2"], expected, rtol=1e-15, atol=0)
    # and the per-example convention for the rest of the backward (no 1/m in dZ, dA)
    np.testing.assert_allclose(fb["dA1"], params["W2"].T @ expected, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(fb["dW2"], expected @ fb["A1"].T / m, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(fb["db2"], expected.sum(axis=1, keepdims=True) / m, rtol=1e-13, atol=1e-16)


def test_bias_corrected_divides_each_moment_by_its_correction():
    from reference.optimizers import bias_corrected

    v = {"dW1": np.array([[0.3, -0.6]]), "db1": np.array([[0.09]])}
    s = {"dW1": np.array([[0.002, 0.004]]), "db1": np.array([[0.001]])}
    # t = 2, beta1 = 0.9, beta2 = 0.999: 1 - 0.9**2 = 0.19, 1 - 0.999**2 = 0.001999
    v_corrected, s_corrected = bias_corrected(v, s, 0.19, 0.001999)
    assert set(v_corrected) == {"dW1", "db1"} and set(s_corrected) == {"dW1", "db1"}
    np.testing.assert_allclose(v_corrected["dW1"], [[0.3 / 0.19, -0.6 / 0.19]], rtol=1e-15)
    np.testing.assert_allclose(v_corrected["db1"], [[0.09 / 0.19]], rtol=1e-15)
    np.testing.assert_allclose(s_corrected["dW1"], [[0.002 / 0.001999, 0.004 / 0.001999]], rtol=1e-15)
    np.testing.assert_allclose(s_corrected["db1"], [[0.001 / 0.001999]], rtol=1e-15)


def test_update_lr_is_the_courses_inverse_time_decay():
    from reference.optimizers import update_lr

    # alpha0 / (1 + decay_rate * epoch_num), worked by hand
    assert update_lr(0.5, 0, 1) == 0.5
    assert update_lr(0.5, 1, 1) == 0.25
    assert update_lr(0.5, 3, 1) == 0.125
    assert update_lr(0.2, 2, 0.5) == pytest.approx(0.1, rel=1e-15)  # 0.2 / (1 + 0.5 * 2) = 0.2 / 2
    assert update_lr(1.0, 10, 0.3) == pytest.approx(0.25, rel=1e-15)  # 1 / (1 + 3) = 0.25


def test_schedule_lr_decay_changes_only_every_time_interval():
    from reference.optimizers import schedule_lr_decay

    # alpha0 / (1 + decay_rate * floor(epoch_num / time_interval)), worked by hand
    assert schedule_lr_decay(0.5, 0, 1) == 0.5
    assert schedule_lr_decay(0.5, 999, 1) == 0.5  # floor(999 / 1000) = 0: the default interval is 1000
    assert schedule_lr_decay(0.5, 1000, 1) == 0.25
    assert schedule_lr_decay(0.5, 2999, 1) == pytest.approx(0.5 / 3, rel=1e-15)  # floor(2.999) = 2
    assert schedule_lr_decay(0.3, 25, 0.5, time_interval=10) == pytest.approx(0.15, rel=1e-15)  # 0.3 / (1 + 1)
    assert schedule_lr_decay(0.3, 9, 0.5, time_interval=10) == 0.3


def test_learning_rates_change_per_epoch_not_per_step():
    from reference.optimizers import learning_rates

    case = Case(layer_dims=(2, 1), learning_rate=0.6, epochs=3, decay="inverse-time", decay_rate=1.0)
    # 2 steps an epoch: epochs 0, 1, 2 use 0.6, 0.6 / 2, 0.6 / 3
    assert learning_rates(case, 6) == pytest.approx([0.6, 0.6, 0.3, 0.3, 0.2, 0.2], rel=1e-15)
    scheduled = case.replace(decay="scheduled", time_interval=2)
    assert learning_rates(scheduled, 3) == pytest.approx([0.6, 0.6, 0.3], rel=1e-15)
    assert learning_rates(case.replace(decay="none", decay_rate=0.0), 3) == [0.6, 0.6, 0.6]


def test_train_with_decay_steps_with_the_epochs_rate():
    """Logistic regression, two full-batch epochs with inverse-time decay: gradient steps with alpha0, then
    alpha0 / (1 + decay_rate) = 0.4 / 4, written out with the reference's forward, backward and update."""
    rng = np.random.RandomState(3)
    X, Y = rng.randn(2, 6), (rng.rand(1, 6) > 0.5).astype(float)
    case = Case(layer_dims=(2, 1), learning_rate=0.4, epochs=2, decay="inverse-time", decay_rate=3.0)
    P0 = initialize_parameters((2, 1), "inv-sqrt", seed=1)
    P = P0
    for alpha in (0.4, 0.4 / 4):
        AL, caches = model_forward(X, P, case)
        P = update_parameters(P, model_backward(AL, Y, caches, case), alpha)
    final, _ = train(P0, X, Y, case)
    for k in P:
        np.testing.assert_allclose(final[k], P[k], rtol=1e-14)
    constant, _ = train(P0, X, Y, case.replace(decay="none", decay_rate=0.0))
    assert not np.allclose(constant["W1"], final["W1"], rtol=1e-6)


@pytest.mark.parametrize("changes, message", [
    ({"decay": "linear"}, "unknown learning-rate decay 'linear'"),
    ({"decay": "inverse-time"}, "needs a --decay-rate above 0"),
    ({"decay": "scheduled", "decay_rate": float("nan")}, "--decay-rate must be a non-negative finite number"),
    ({"decay_rate": 0.5}, "--decay-rate 0.5 has no effect without a decay"),
    ({"decay": "scheduled", "decay_rate": 1.0, "time_interval": 0}, "--time-interval must be a positive integer"),
])
def test_decay_validation_is_one_line(changes, message):
    from nnparity.errors import UsageError

    with pytest.raises(UsageError) as info:
        Case(layer_dims=(2, 1), **changes).validate()
    assert message in str(info.value) and "\n" not in str(info.value)
