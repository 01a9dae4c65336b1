"""``nnparity.check.diagnosis``: every known mistake, written here as a learner would write it, is diagnosed.

``BUGGY`` holds the buggy course functions (plain NumPy, the course's names and signatures where it has
one), keyed by the signature id they must trigger (``id/variant`` for a second form of the same mistake),
so that end-to-end tests through the battery can reuse them.  ``SCENARIOS`` feeds each one the
reference's inputs and builds the ``Divergence`` the battery would: the reference's expected value, its
derived bound (``nnparity.tolerances.bounds`` for network quantities; for the optimisers' elementwise
updates ``_rounding_bound``), and the call's context.
"""

import functools
import re

import numpy as np
import pytest

from nnparity.check.diagnosis import SIGNATURES, Divergence, diagnose
from nnparity.spec import Case
from nnparity.tolerances import bounds
from reference.activations import relu
from reference.initializers import initialize_parameters
from reference.model import forward_backward, model_forward
from reference.optimizers import update_parameters_with_adam, update_parameters_with_gd, update_parameters_with_momentum
from reference.utils import one_hot

M = 5
LR, BETA, BETA1, BETA2, EPS, T, LAMBD, KEEP_PROB = 0.1, 0.9, 0.9, 0.999, 1e-8, 3, 0.7, 0.7


# ---------------------------------------------------------------------------------------------------
# The buggy functions, as a learner writes them.

def linear_backward_without_1_over_m(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    return np.dot(W.T, dZ), dW, db


def linear_backward_mean_over_m(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = np.mean(dZ, axis=1, keepdims=True) / m
    return np.dot(W.T, dZ), dW, db


def linear_backward_transposed(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(A_prev, dZ.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    return np.dot(W.T, dZ), dW, db


def linear_backward_without_keepdims(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1)
    return np.dot(W.T, dZ), dW, db


def linear_backward_sum_without_axis(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ)
    return np.dot(W.T, dZ), dW, db


def compute_cost_without_minus(AL, Y):
    m = Y.shape[1]
    return np.squeeze(1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)))


def compute_cost_log_twice(AL, Y):
    m = Y.shape[1]
    return np.squeeze(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(AL)))


def compute_cost_m_from_rows(AL, Y):
    m = Y.shape[0]
    return np.squeeze(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)))


def linear_backward_m_from_rows(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[0]
    return np.dot(W.T, dZ), 1 / m * np.dot(dZ, A_prev.T), 1 / m * np.sum(dZ, axis=1, keepdims=True)


def relu_backward_kink_passes(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z < 0] = 0
    return dZ


def update_parameters_skipping_the_last_layer(parameters, grads, learning_rate):
    out = dict(parameters)
    L = len(parameters) // 2
    for l in range(L - 1):
        out["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        out["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return out


def compute_cost_not_squeezed(AL, Y):
    m = Y.shape[1]
    return -1 / m * (np.dot(Y, np.log(AL).T) + np.dot(1 - Y, np.log(1 - AL).T))


def linear_activation_backward_sigmoid_for_relu(dA, cache, activation):
    """The relu branch calls sigmoid_backward."""
    (A_prev, W, b), Z = cache
    s = 1 / (1 + np.exp(-Z))
    dZ = dA * s * (1 - s) if activation in ("relu", "sigmoid") else dA * (1 - np.tanh(Z) ** 2)
    m = A_prev.shape[1]
    return np.dot(W.T, dZ), 1 / m * np.dot(dZ, A_prev.T), 1 / m * np.sum(dZ, axis=1, keepdims=True)


def L_model_backward_relu_at_output(AL, Y, caches):
    """The output layer's backward uses relu_backward: returns the grads of layer L."""
    (A_prev, W, b), Z = caches[-1]
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    dZ = np.array(dAL, copy=True)
    dZ[Z <= 0] = 0
    m = A_prev.shape[1]
    L = len(caches)
    return {f"dA{L - 1}": np.dot(W.T, dZ), f"dW{L}": 1 / m * np.dot(dZ, A_prev.T),
            f"db{L}": 1 / m * np.sum(dZ, axis=1, keepdims=True)}


def backward_propagation_sigmoid_derivative_for_tanh(parameters, cache, X, Y):
    """The 2-layer network's backward with A1 (1 - A1) for its tanh layer."""
    m = X.shape[1]
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dZ1 = np.dot(parameters["W2"].T, dZ2) * A1 * (1 - A1)
    return {"dW1": 1 / m * np.dot(dZ1, X.T), "db1": 1 / m * np.sum(dZ1, axis=1, keepdims=True)}


def backward_propagation_tanh_derivative_of_Z(parameters, cache, X, Y):
    """The 2-layer network's backward with 1 - Z1**2 for its tanh layer."""
    m = X.shape[1]
    Z1, A2 = cache["Z1"], cache["A2"]
    dZ2 = A2 - Y
    dZ1 = np.dot(parameters["W2"].T, dZ2) * (1 - np.power(Z1, 2))
    return {"dW1": 1 / m * np.dot(dZ1, X.T), "db1": 1 / m * np.sum(dZ1, axis=1, keepdims=True)}


def sigmoid_backward_plus(dA, cache):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 + s)


def L_model_forward_relu_output(X, parameters):
    A = X
    L = len(parameters) // 2
    for l in range(1, L + 1):
        Z = np.dot(parameters[f"W{l}"], A) + parameters[f"b{l}"]
        A = np.maximum(0, Z)
    return A


def L_model_forward_softmax_rows(X, parameters):
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A = np.maximum(0, np.dot(parameters[f"W{l}"], A) + parameters[f"b{l}"])
    Z = np.dot(parameters[f"W{L}"], A) + parameters[f"b{L}"]
    E = np.exp(Z)
    return E / np.sum(E, axis=1, keepdims=True)


def linear_activation_forward_tanh_for_relu(A_prev, W, b, activation):
    Z = np.dot(W, A_prev) + b
    A = np.tanh(Z) if activation in ("relu", "tanh") else 1 / (1 + np.exp(-Z))
    return A, ((A_prev, W, b), Z)


def update_parameters_ascent(parameters, grads, learning_rate):
    return {k: P + learning_rate * grads["d" + k] for k, P in parameters.items()}


def update_parameters_without_learning_rate(parameters, grads, learning_rate):
    return {k: P - grads["d" + k] for k, P in parameters.items()}


def update_parameters_learning_rate_twice(parameters, grads, learning_rate):
    step = {k: learning_rate * G for k, G in grads.items()}
    return {k: P - learning_rate * step["d" + k] for k, P in parameters.items()}


def update_parameters_with_momentum_after(parameters, grads, v, beta, learning_rate):
    parameters = {k: P - learning_rate * v["d" + k] for k, P in parameters.items()}
    v = {d: beta * V + (1 - beta) * grads[d] for d, V in v.items()}
    return parameters, v


def update_parameters_with_momentum_undamped(parameters, grads, v, beta, learning_rate):
    v = {d: beta * V + grads[d] for d, V in v.items()}
    return {k: P - learning_rate * v["d" + k] for k, P in parameters.items()}, v


def _adam(parameters, grads, v, s, learning_rate, beta1, beta2, epsilon, c1, c2):
    v = {d: beta1 * V + (1 - beta1) * grads[d] for d, V in v.items()}
    s = {d: beta2 * S + (1 - beta2) * grads[d] ** 2 for d, S in s.items()}
    v_corrected = {d: V / c1 for d, V in v.items()}
    s_corrected = {d: S / c2 for d, S in s.items()}
    parameters = {k: P - learning_rate * v_corrected["d" + k] / (np.sqrt(s_corrected["d" + k]) + epsilon)
                  for k, P in parameters.items()}
    return parameters, v, s, v_corrected, s_corrected


def update_parameters_with_adam_t_plus_1(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon):
    t = t + 1  # "the step counter is incremented first"
    return _adam(parameters, grads, v, s, learning_rate, beta1, beta2, epsilon, 1 - beta1**t, 1 - beta2**t)


def update_parameters_with_adam_t_minus_1(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon):
    return _adam(parameters, grads, v, s, learning_rate, beta1, beta2, epsilon, 1 - beta1 ** (t - 1),
                 1 - beta2 ** (t - 1))


def update_parameters_with_adam_swapped(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon):
    return _adam(parameters, grads, v, s, learning_rate, beta1, beta2, epsilon, 1 - beta2**t, 1 - beta1**t)


def update_parameters_with_adam_only_v(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon):
    return _adam(parameters, grads, v, s, learning_rate, beta1, beta2, epsilon, 1 - beta1**t, 1.0)


def update_parameters_with_adam_uncorrected(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon):
    return _adam(parameters, grads, v, s, learning_rate, beta1, beta2, epsilon, 1.0, 1.0)


def dropout_forward_not_rescaled(A, D, keep_prob):
    """forward_propagation_with_dropout's step after a hidden activation, without / keep_prob."""
    return A * D


def dropout_backward_not_rescaled(dA, D, keep_prob):
    """backward_propagation_with_dropout's step on dA[l], without / keep_prob."""
    return dA * D


def dropout_backward_fresh_mask(dA, D, keep_prob):
    """backward_propagation_with_dropout drawing a new mask instead of the forward's D."""
    D = np.random.RandomState(11).rand(*dA.shape) < keep_prob
    return dA * D / keep_prob


def compute_cost_with_regularization_missing(AL, Y, parameters, lambd):
    m = Y.shape[1]
    return np.squeeze(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)))


def compute_cost_with_regularization_lambd_over_m(AL, Y, parameters, lambd):
    m = Y.shape[1]
    L = len(parameters) // 2
    l2 = lambd / m * sum(np.sum(np.square(parameters[f"W{l}"])) for l in range(1, L + 1))
    return np.squeeze(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))) + l2


def dW_with_regularization_missing(dZ, A_prev, W, lambd):
    m = A_prev.shape[1]
    return 1 / m * np.dot(dZ, A_prev.T)


def dW_with_regularization_half(dZ, A_prev, W, lambd):
    m = A_prev.shape[1]
    return 1 / m * np.dot(dZ, A_prev.T) + lambd / (2 * m) * W


BUGGY = {
    "missing-1-over-m": linear_backward_without_1_over_m,
    "missing-1-over-m/float32": linear_backward_without_1_over_m,
    "extra-1-over-m": linear_backward_mean_over_m,
    "transposed": linear_backward_transposed,
    "sign-flipped": compute_cost_without_minus,
    "missing-keepdims": linear_backward_without_keepdims,
    "missing-keepdims/one-unit": linear_backward_sum_without_axis,
    "sum-over-all-axes": linear_backward_sum_without_axis,
    "wrong-activation-derivative": linear_activation_backward_sigmoid_for_relu,
    "wrong-activation-derivative/dA_prev": linear_activation_backward_sigmoid_for_relu,
    "wrong-activation-derivative/output": L_model_backward_relu_at_output,
    "wrong-activation-derivative/output-dA": L_model_backward_relu_at_output,
    "wrong-activation-derivative/output-float32": L_model_backward_relu_at_output,
    "wrong-activation-derivative/tanh-layer": backward_propagation_sigmoid_derivative_for_tanh,
    "sigmoid-derivative-plus": sigmoid_backward_plus,
    "derivative-of-z": backward_propagation_tanh_derivative_of_Z,
    "relu-output": L_model_forward_relu_output,
    "softmax-wrong-axis": L_model_forward_softmax_rows,
    "wrong-activation": linear_activation_forward_tanh_for_relu,
    "cost-log-twice": compute_cost_log_twice,
    "cost-not-squeezed": compute_cost_not_squeezed,
    "m-wrong-axis": compute_cost_m_from_rows,
    "m-wrong-axis/linear_backward": linear_backward_m_from_rows,
    "relu-kink-convention": relu_backward_kink_passes,
    "layer-not-updated": update_parameters_skipping_the_last_layer,
    "gradient-ascent": update_parameters_ascent,
    "learning-rate-missing": update_parameters_without_learning_rate,
    "learning-rate-twice": update_parameters_learning_rate_twice,
    "momentum-after-update": update_parameters_with_momentum_after,
    "momentum-undamped": update_parameters_with_momentum_undamped,
    "adam-t-off-by-one": update_parameters_with_adam_t_plus_1,
    "adam-t-off-by-one/t-1": update_parameters_with_adam_t_minus_1,
    "adam-correction-wrong-moment": update_parameters_with_adam_swapped,
    "adam-correction-wrong-moment/only-v": update_parameters_with_adam_only_v,
    "adam-correction-wrong-moment/neither": update_parameters_with_adam_uncorrected,
    "dropout-not-rescaled": dropout_forward_not_rescaled,
    "dropout-not-rescaled/backward": dropout_backward_not_rescaled,
    "dropout-fresh-mask": dropout_backward_fresh_mask,
    "l2-missing-in-cost": compute_cost_with_regularization_missing,
    "l2-missing-in-gradient": dW_with_regularization_missing,
    "l2-wrong-factor": compute_cost_with_regularization_lambd_over_m,
    "l2-wrong-factor/gradient": dW_with_regularization_half,
}


# ---------------------------------------------------------------------------------------------------
# The reference's inputs and values.

@functools.lru_cache(maxsize=None)
def network(hidden="relu", output="sigmoid", dtype="float64", lambd=0.0, keep_prob=1.0, dims=(3, 4, 3, 1)):
    """A small network on random data: its parameters, course-style caches, the reference's values and bounds."""
    rng = np.random.RandomState(0)
    case = Case(layer_dims=dims, hidden_activation=hidden, output_activation=output, dtype=dtype, lambd=lambd,
                keep_prob=keep_prob, loss="categorical_cross_entropy" if output == "softmax" else "cross_entropy")
    P = initialize_parameters(dims, seed=2)
    P = {k: (V + 0.1 * rng.randn(*V.shape) if k.startswith("b") else V).astype(dtype) for k, V in P.items()}
    X = rng.randn(dims[0], M).astype(dtype)
    labels = rng.randint(0, dims[-1] if output == "softmax" else 2, (1, M))
    Y = one_hot(labels, dims[-1]) if output == "softmax" else labels.astype(np.float64)
    masks = ([np.random.RandomState(3).rand(n, M) < keep_prob for n in dims[1:-1]] if keep_prob < 1 else None)
    P64, X64 = {k: V.astype(np.float64) for k, V in P.items()}, X.astype(np.float64)
    C = forward_backward(P64, X64, Y, case.replace(dtype="float64"), masks)
    B = bounds(P64, X64, Y, case, C, masks)
    _, ref_caches = model_forward(X64, P64, case.replace(dtype="float64"), masks)
    caches = [((c[0], c[1], c[2]), c[3]) for c in ref_caches]
    D = {l: masks[l - 1] for l in range(1, case.L)} if masks else {}
    context = {"X": X64, "Y": Y, "parameters": P64, "activations": case.activations(), "m": M}
    if lambd:
        context["lambd"] = lambd
    if masks:
        context.update(D=D, keep_prob=keep_prob)
    return dict(case=case, P=P, X=X, Y=Y, C=C, B=B, caches=caches, D=D, context=context)


def _rounding_bound(*terms):
    """An elementwise update of a few operations: each result within 8 roundings of its operands' sizes."""
    return 8 * 2.0**-53 * sum(np.abs(T) for T in terms)


def _div(function, quantity, layer, expected, got, bound, context):
    return Divergence(function, quantity, layer, np.asarray(expected, dtype=np.float64), got,
                      np.asarray(bound, dtype=np.float64), context)


def _linear_backward(key, l=2, quantity="dW", dtype="float64"):
    net = network(dtype=dtype)
    C, dt = net["C"], np.dtype(dtype)
    A_prev = net["X"] if l == 1 else C[f"A{l - 1}"].astype(dt)
    dZ, W, b = C[f"dZ{l}"].astype(dt), net["P"][f"W{l}"], net["P"][f"b{l}"]
    dA_prev, dW, db = BUGGY[key](dZ, (A_prev, W, b))
    got = {"dW": dW, "db": db}[quantity]
    context = {"dZ": dZ.astype(np.float64), "A_prev": A_prev.astype(np.float64), "W": W.astype(np.float64), "m": M}
    return _div("linear_backward", f"{quantity}{l}", l, C[f"{quantity}{l}"], got, net["B"][f"{quantity}{l}"], context)


def _cost(key, lambd=0.0):
    net = network(lambd=lambd)
    AL, Y = net["C"]["A3"], net["Y"]
    got = BUGGY[key](AL, Y, net["P"], lambd) if lambd else BUGGY[key](AL, Y)
    context = {"AL": AL, "Y": Y, "m": M, **({"parameters": net["P"], "lambd": lambd} if lambd else {})}
    return _div("compute_cost", "cost", None, net["C"]["cost"], got, net["B"]["cost"], context)


def _relu_kink(key):
    """relu_backward of layer 2 where every other Z2 is exactly 0: dZ is dA or 0, compared exactly."""
    C = network()["C"]
    Z = np.where(np.arange(C["Z2"].size).reshape(C["Z2"].shape) % 2 == 0, 0.0, C["Z2"])
    dA = C["dA2"] + np.sign(C["dA2"]) + (C["dA2"] == 0)  # nonzero everywhere
    expected = np.where(Z > 0, dA, 0.0)
    context = {"dA": dA, "Z": Z, "activation": "relu"}
    return _div("relu_backward", "dZ", 2, expected, BUGGY[key](dA, Z), np.zeros(Z.shape), context)


def _not_updated(key):
    P, grads, _, _ = _optimizer_inputs()
    expected = update_parameters_with_gd(P, grads, LR)["W3"]
    got = BUGGY[key](P, grads, LR)["W3"]
    context = {"parameters": P, "grads": grads, "learning_rate": LR}
    return _div("update_parameters", "W3", 3, expected, got, _rounding_bound(P["W3"], LR * grads["dW3"]), context)


def _wrong_derivative_one_layer(key, quantity="dW"):
    """linear_activation_backward of layer 2; dA_prev is dA1, which the battery labels layer 1."""
    net = network()
    C, P = net["C"], net["P"]
    cache = ((C["A1"], P["W2"], P["b2"]), C["Z2"])
    got = dict(zip(("dA_prev", "dW", "db"), BUGGY[key](C["dA2"], cache, "relu")))[quantity]
    name, layer = {"dW": ("dW2", 2), "dA_prev": ("dA1", 1)}[quantity]
    context = {"dA": C["dA2"], "Z": C["Z2"], "A_prev": C["A1"], "W": P["W2"], "activation": "relu", "m": M}
    return _div("linear_activation_backward", quantity, layer, C[name], got, net["B"][name], context)


def _wrong_derivative_output(key, quantity="dW3", dtype="float64"):
    """L_model_backward on the course's caches (the learner's inputs in the case's dtype)."""
    net = network(dtype=dtype)
    dt = np.dtype(dtype)
    caches = [((A_prev.astype(dt), W.astype(dt), b.astype(dt)), Z.astype(dt)) for (A_prev, W, b), Z in net["caches"]]
    grads = BUGGY[key](net["C"]["A3"].astype(dt), net["Y"].astype(dt), caches)
    context = {"AL": net["C"]["A3"], "Y": net["Y"], "caches": net["caches"], "m": M}
    return _div("L_model_backward", quantity, None, net["C"][quantity], grads[quantity], net["B"][quantity], context)


def _two_layer(key):
    net = network(hidden="tanh", dims=(3, 4, 1))
    C = net["C"]
    grads = BUGGY[key](net["P"], {"Z1": C["Z1"], "A1": C["A1"], "A2": C["A2"]}, net["X"], net["Y"])
    return _div("backward_propagation", "dW1", 1, C["dW1"], grads["dW1"], net["B"]["dW1"], net["context"])


def _sigmoid_backward():
    net = network()
    C = net["C"]
    dAL = -(net["Y"] / C["A3"] - (1 - net["Y"]) / (1 - C["A3"]))
    got = BUGGY["sigmoid-derivative-plus"](dAL, C["Z3"])
    context = {"dA": dAL, "Z": C["Z3"], "activation": "sigmoid"}
    return _div("sigmoid_backward", "dZ", 3, C["dZ3"], got, net["B"]["dZ3"], context)


def _forward(key, output="sigmoid", dims=(3, 4, 3, 1)):
    net = network(output=output, dims=dims)
    L = len(dims) - 1
    got = BUGGY[key](net["X"], net["P"])
    return _div("L_model_forward", "AL", L, net["C"][f"A{L}"], got, net["B"][f"A{L}"], net["context"])


def _wrong_activation():
    net = network()
    C, P = net["C"], net["P"]
    A, _ = BUGGY["wrong-activation"](C["A1"], P["W2"], P["b2"], "relu")
    context = {"A_prev": C["A1"], "W": P["W2"], "b": P["b2"], "activation": "relu"}
    return _div("linear_activation_forward", "A", 2, C["A2"], A, net["B"]["A2"], context)


def _optimizer_inputs():
    rng = np.random.RandomState(5)
    P = network()["P"]
    grads = {f"d{k}": rng.randn(*V.shape) for k, V in P.items()}
    v = {d: 0.5 * rng.randn(*G.shape) for d, G in grads.items()}
    s = {d: rng.rand(*G.shape) for d, G in grads.items()}
    return P, grads, v, s


def _gd(key):
    P, grads, _, _ = _optimizer_inputs()
    expected = update_parameters_with_gd(P, grads, LR)["W1"]
    got = BUGGY[key](P, grads, LR)["W1"]
    context = {"parameters": P, "grads": grads, "learning_rate": LR}
    return _div("update_parameters", "W1", 1, expected, got, _rounding_bound(P["W1"], LR * grads["dW1"]), context)


def _momentum(key, quantity):
    P, grads, v, _ = _optimizer_inputs()
    new_P, new_v = update_parameters_with_momentum(P, grads, v, BETA, LR)
    got_P, got_v = BUGGY[key](P, grads, v, BETA, LR)
    values = {"W1": (new_P["W1"], got_P["W1"]), "v[dW1]": (new_v["dW1"], got_v["dW1"])}
    expected, got = values[quantity]
    bound = _rounding_bound(P["W1"], v["dW1"], grads["dW1"], new_v["dW1"])
    context = {"parameters": P, "grads": grads, "v": v, "beta": BETA, "learning_rate": LR}
    return _div("update_parameters_with_momentum", quantity, 1, expected, got, bound, context)


def _adam_case(key, quantity):
    P, grads, v, s = _optimizer_inputs()
    c1, c2 = 1 - BETA1**T, 1 - BETA2**T
    new_P, new_v, new_s = update_parameters_with_adam(P, grads, v, s, c1, c2, BETA1, BETA2, LR, EPS)
    reference = {**new_P, "v_corrected[dW1]": new_v["dW1"] / c1, "s_corrected[db1]": new_s["db1"] / c2}
    got_P, _, _, got_vc, got_sc = BUGGY[key](P, grads, v, s, T, LR, BETA1, BETA2, EPS)
    got = {**got_P, "v_corrected[dW1]": got_vc["dW1"], "s_corrected[db1]": got_sc["db1"]}[quantity]
    expected = reference[quantity]
    bound = _rounding_bound(expected)  # a moment divided by its correction: one rounding
    if quantity in P:  # the step's operands: v_corrected, sqrt(s_corrected) and their ratio
        d = f"d{quantity}"
        bound = _rounding_bound(P[quantity], new_v[d] / c1, np.sqrt(new_s[d] / c2), P[quantity] - expected)
    context = {"parameters": P, "grads": grads, "v": v, "s": s, "t": T, "learning_rate": LR, "beta1": BETA1,
               "beta2": BETA2, "epsilon": EPS}
    return _div("update_parameters_with_adam", quantity, None, expected, got, bound, context)


def _dropout(key, where):
    net = network(keep_prob=KEEP_PROB)
    C, D = net["C"], net["D"]
    if where == "forward":  # A1 = relu(Z1) with dropout
        got = BUGGY[key](relu(C["Z1"]), D[1], KEEP_PROB)
        return _div("forward_propagation_with_dropout", "A1", 1, C["A1"], got, net["B"]["A1"], net["context"])
    # the backward of layer 2: dA2 = W3.T dZ3, masked, then dZ2 = dA2 * relu'(Z2)
    dZ2 = np.where(C["Z2"] > 0, BUGGY[key](C["dA2"], D[2], KEEP_PROB), 0)
    return _div("backward_propagation_with_dropout", "dZ2", 2, C["dZ2"], dZ2, net["B"]["dZ2"], net["context"])


def _l2_gradient(key):
    net = network(lambd=LAMBD)
    C, P = net["C"], net["P"]
    got = BUGGY[key](C["dZ3"], C["A2"], P["W3"], LAMBD)
    return _div("backward_propagation_with_regularization", "dW3", 3, C["dW3"], got, net["B"]["dW3"],
                net["context"])


SCENARIOS = {
    "missing-1-over-m": lambda: _linear_backward("missing-1-over-m"),
    "missing-1-over-m/float32": lambda: _linear_backward("missing-1-over-m/float32", dtype="float32"),
    "extra-1-over-m": lambda: _linear_backward("extra-1-over-m", quantity="db"),
    "transposed": lambda: _linear_backward("transposed"),
    "sign-flipped": lambda: _cost("sign-flipped"),
    "missing-keepdims": lambda: _linear_backward("missing-keepdims", quantity="db"),
    "missing-keepdims/one-unit": lambda: _linear_backward("missing-keepdims/one-unit", l=3, quantity="db"),
    "sum-over-all-axes": lambda: _linear_backward("sum-over-all-axes", quantity="db"),
    "wrong-activation-derivative": lambda: _wrong_derivative_one_layer("wrong-activation-derivative"),
    "wrong-activation-derivative/dA_prev": lambda: _wrong_derivative_one_layer(
        "wrong-activation-derivative/dA_prev", quantity="dA_prev"),
    "wrong-activation-derivative/output": lambda: _wrong_derivative_output("wrong-activation-derivative/output"),
    "wrong-activation-derivative/output-dA": lambda: _wrong_derivative_output(
        "wrong-activation-derivative/output-dA", quantity="dA2"),
    "wrong-activation-derivative/output-float32": lambda: _wrong_derivative_output(
        "wrong-activation-derivative/output-float32", dtype="float32"),
    "wrong-activation-derivative/tanh-layer": lambda: _two_layer("wrong-activation-derivative/tanh-layer"),
    "sigmoid-derivative-plus": _sigmoid_backward,
    "derivative-of-z": lambda: _two_layer("derivative-of-z"),
    "relu-output": lambda: _forward("relu-output"),
    "softmax-wrong-axis": lambda: _forward("softmax-wrong-axis", output="softmax", dims=(3, 4, 3)),
    "wrong-activation": _wrong_activation,
    "cost-log-twice": lambda: _cost("cost-log-twice"),
    "m-wrong-axis": lambda: _cost("m-wrong-axis"),
    "m-wrong-axis/linear_backward": lambda: _linear_backward("m-wrong-axis/linear_backward"),
    "relu-kink-convention": lambda: _relu_kink("relu-kink-convention"),
    "layer-not-updated": lambda: _not_updated("layer-not-updated"),
    "cost-not-squeezed": lambda: _cost("cost-not-squeezed"),
    "gradient-ascent": lambda: _gd("gradient-ascent"),
    "learning-rate-missing": lambda: _gd("learning-rate-missing"),
    "learning-rate-twice": lambda: _gd("learning-rate-twice"),
    "momentum-after-update": lambda: _momentum("momentum-after-update", "W1"),
    "momentum-undamped": lambda: _momentum("momentum-undamped", "v[dW1]"),
    "adam-t-off-by-one": lambda: _adam_case("adam-t-off-by-one", "v_corrected[dW1]"),
    "adam-t-off-by-one/t-1": lambda: _adam_case("adam-t-off-by-one/t-1", "W2"),
    "adam-correction-wrong-moment": lambda: _adam_case("adam-correction-wrong-moment", "W1"),
    "adam-correction-wrong-moment/only-v": lambda: _adam_case("adam-correction-wrong-moment/only-v",
                                                              "s_corrected[db1]"),
    "adam-correction-wrong-moment/neither": lambda: _adam_case("adam-correction-wrong-moment/neither", "b2"),
    "dropout-not-rescaled": lambda: _dropout("dropout-not-rescaled", "forward"),
    "dropout-not-rescaled/backward": lambda: _dropout("dropout-not-rescaled/backward", "backward"),
    "dropout-fresh-mask": lambda: _dropout("dropout-fresh-mask", "backward"),
    "l2-missing-in-cost": lambda: _cost("l2-missing-in-cost", lambd=LAMBD),
    "l2-missing-in-gradient": lambda: _l2_gradient("l2-missing-in-gradient"),
    "l2-wrong-factor": lambda: _cost("l2-wrong-factor", lambd=LAMBD),
    "l2-wrong-factor/gradient": lambda: _l2_gradient("l2-wrong-factor/gradient"),
}

REQUIRED = {"missing-1-over-m", "extra-1-over-m", "transposed", "sign-flipped", "missing-keepdims",
            "wrong-activation-derivative", "sigmoid-derivative-plus", "relu-output", "cost-log-twice",
            "cost-not-squeezed", "gradient-ascent", "adam-t-off-by-one", "adam-correction-wrong-moment",
            "momentum-after-update", "dropout-not-rescaled", "dropout-fresh-mask", "l2-missing-in-cost",
            "l2-missing-in-gradient", "l2-wrong-factor", "softmax-wrong-axis"}


# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_each_buggy_formula_is_diagnosed_first(key):
    found = diagnose(SCENARIOS[key]())
    assert found, f"{key}: no diagnosis"
    assert found[0].id == key.split("/")[0], [d.id for d in found]


@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_the_right_value_and_its_rounding_give_no_diagnosis(key):
    div = SCENARIOS[key]()
    assert diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, div.expected.copy(),
                               div.bound, div.context)) == []
    within = div.expected + 0.5 * div.bound * np.where(np.arange(div.expected.size) % 2, 1, -1).reshape(
        div.expected.shape)
    assert diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, within, div.bound,
                               div.context)) == []


@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_random_noise_gives_no_diagnosis(key):
    div = SCENARIOS[key]()
    rng = np.random.RandomState(7)
    noise = div.expected + (np.abs(div.expected).max() + 1) * rng.randn(*div.expected.shape)
    assert diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, noise, div.bound,
                               div.context)) == []


@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_messages_and_hints_are_one_line_and_hints_name_an_equation(key):
    for d in diagnose(SCENARIOS[key]()):
        assert d.message and d.hint and "\n" not in d.message + d.hint
        assert "{" not in d.message + d.hint  # every field filled
        assert re.search(r"\S = \S", d.hint), d.hint


def test_the_table_has_every_required_signature_each_proven_by_a_scenario():
    ids = [s.id for s in SIGNATURES]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)
    assert REQUIRED <= set(ids)
    assert {key.split("/")[0] for key in SCENARIOS} == set(ids)
    assert set(SCENARIOS) == set(BUGGY)


def test_messages_say_what_the_value_is():
    def first(key):
        return diagnose(SCENARIOS[key]())[0].message

    assert "m = 5 times" in first("missing-1-over-m")
    assert "Y.shape[0] = 1 instead of m = 5" in first("m-wrong-axis")
    assert "m/4 = 5/4 times" in first("m-wrong-axis/linear_backward")
    assert "relu'(0) = 1" in first("relu-kink-convention") and "W3 is unchanged" in first("layer-not-updated")
    assert "sigmoid" in first("wrong-activation-derivative")
    assert "relu" in first("wrong-activation-derivative/output")
    assert "sigmoid's derivative A (1 - A)" in first("wrong-activation-derivative/tanh-layer")
    assert "tanh(Z)" in first("wrong-activation")
    assert "t + 1" in first("adam-t-off-by-one") and "t - 1" in first("adam-t-off-by-one/t-1")
    assert "only v" in first("adam-correction-wrong-moment/only-v")
    assert "neither" in first("adam-correction-wrong-moment/neither")
    assert "lambd/m" in first("l2-wrong-factor") and "lambd/(2m) W" in first("l2-wrong-factor/gradient")
    assert "keep_prob = 0.7" in first("dropout-not-rescaled") and "backward" in first("dropout-not-rescaled/backward")
    assert "(4, 3), the transpose of the expected (3, 4), its transpose has the expected values" in first("transposed")


def test_a_transposed_shape_is_diagnosed_even_when_the_values_differ():
    div = SCENARIOS["transposed"]()
    found = diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, np.ones((4, 3)), div.bound,
                                div.context))
    assert [d.id for d in found] == ["transposed"]
    assert "its transpose" not in found[0].message


def test_a_ratio_is_exact_not_approximate():
    div = SCENARIOS["missing-1-over-m"]()
    nearly = M * div.expected * (1 + 1e-12)  # far above float64 rounding (1e-16), yet "about m"
    assert diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, nearly, div.bound,
                               div.context)) == []


@pytest.mark.parametrize("got", ["a string", None, [[1.0, 2.0], [3.0]], {"dW2": 1.0}, object()])
def test_values_that_are_not_numbers_give_no_diagnosis_and_no_error(got):
    div = SCENARIOS["wrong-activation-derivative/output"]()
    assert diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, got, div.bound,
                               div.context)) == []


def test_a_context_without_the_inputs_only_loses_the_signatures_that_need_them():
    div = SCENARIOS["adam-t-off-by-one/t-1"]()
    assert diagnose(Divergence(div.function, div.quantity, div.layer, div.expected, div.got, div.bound, {})) == []
    flipped = Divergence(div.function, div.quantity, div.layer, div.expected, -div.expected, div.bound, {})
    assert [d.id for d in diagnose(flipped)] == ["sign-flipped"]
