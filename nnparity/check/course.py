"""The classic course's functions: their names, arguments and layouts, and what the reference says they return.

Each course function has a *probe*: given a generated network (``Net``: parameters, data, the float64
reference's every intermediate and the derived rounding bound of each), it builds the call a learner's
function receives -- the course's argument order, dict keys (``W1``, ``dW1``, ``dA0``) and cache layouts
(``((A_prev, W, b), Z)`` per layer) -- and the quantities its result must hold, each with its expected
value and bound.  The reference (``reference/``) computes every expected value; this module only lays
them out the way the course does.

Where the course's convention and the reference's differ, a quantity carries both (``Expect.alternatives``)
and the checker says which one the learner used: the gradient returned after dropout (the course's ``dA``
is taken after the mask and the 1/keep_prob, the reference's before), the seed and scale of the course's
initialisers (``np.random.seed(3)`` and 0.01 in the step-by-step notebook, ``seed(1)`` and
``1/sqrt(n[l-1])`` in the application).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from nnparity import tolerances as tol
from nnparity.spec import Case
from reference import initializers, optimizers, utils
from reference.losses import cost_backward
from reference.model import model_backward, model_forward

#: The interfaces ``nnparity check`` recognises, in the order it checks them, and their functions in the
#: order of computation (so that the first divergence is the first thing that went wrong).
INTERFACES = {
    "logistic": ("sigmoid", "initialize_with_zeros", "propagate", "optimize", "predict"),
    "two-layer": ("layer_sizes", "initialize_parameters", "forward_propagation", "compute_cost",
                  "backward_propagation", "update_parameters", "nn_model", "predict"),
    "deep": ("sigmoid", "relu", "initialize_parameters_deep", "linear_forward", "linear_activation_forward",
             "L_model_forward", "compute_cost", "sigmoid_backward", "relu_backward", "linear_backward",
             "linear_activation_backward", "L_model_backward", "update_parameters"),
    "optimisation": ("random_mini_batches", "initialize_velocity", "update_parameters_with_momentum",
                     "initialize_adam", "update_parameters_with_adam", "update_lr", "schedule_lr_decay",
                     "forward_propagation_with_dropout", "compute_cost_with_regularization",
                     "backward_propagation_with_regularization", "backward_propagation_with_dropout"),
    "gradient-checking": ("forward_propagation", "backward_propagation", "gradient_check"),
}

#: The functions that tell an interface apart (a shared name such as ``sigmoid`` or ``compute_cost`` alone
#: does not say which notebook a file follows).
DISTINCTIVE = {
    "logistic": ("initialize_with_zeros", "propagate", "optimize"),
    "two-layer": ("layer_sizes", "forward_propagation", "backward_propagation", "nn_model"),
    "deep": ("initialize_parameters_deep", "linear_forward", "linear_activation_forward", "L_model_forward",
             "linear_backward", "linear_activation_backward", "L_model_backward", "relu_backward",
             "sigmoid_backward"),
    "optimisation": INTERFACES["optimisation"],
    "gradient-checking": ("gradient_check",),
}

#: The gradient-checking notebook's 1-D functions share the 2-layer notebook's names; their arguments tell them
#: apart: ``forward_propagation(x, theta)``, ``backward_propagation(x, theta)``.
ONE_D = ("x", "theta")

#: The course's helpers (``dnn_utils``): checked wherever a module defines them, absent only from the deep notebook.
HELPERS = ("sigmoid", "relu", "softmax")

#: The notes' equation each function implements, for the checklist and the hints.
EQUATIONS = {
    "sigmoid": "A = 1 / (1 + exp(-Z))",
    "relu": "A = max(0, Z)",
    "softmax": "A = exp(Z) / sum(exp(Z), axis=0)",
    "sigmoid_backward": "dZ = dA * s * (1 - s), s = sigmoid(Z)",
    "relu_backward": "dZ = dA where Z > 0, else 0",
    "initialize_with_zeros": "w = zeros((dim, 1)), b = 0",
    "propagate": "A = sigmoid(w.T X + b); dw = 1/m X (A - Y).T; db = 1/m sum(A - Y)",
    "optimize": "w = w - alpha dw; b = b - alpha db, num_iterations times",
    "predict": "Y_prediction = 1 where A > 0.5, else 0",
    "layer_sizes": "n_x = X.shape[0], n_h = 4, n_y = Y.shape[0]",
    "initialize_parameters": "W[l] = randn(n[l], n[l-1]) * 0.01, b[l] = zeros((n[l], 1))",
    "initialize_parameters_deep": "W[l] = randn(n[l], n[l-1]) * 0.01 (or / sqrt(n[l-1])), b[l] = 0",
    "forward_propagation": "Z1 = W1 X + b1; A1 = tanh(Z1); Z2 = W2 A1 + b2; A2 = sigmoid(Z2)",
    "linear_forward": "Z[l] = W[l] A[l-1] + b[l]",
    "linear_activation_forward": "A[l] = g(W[l] A[l-1] + b[l])",
    "L_model_forward": "[LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID",
    "compute_cost": "J = -1/m sum(Y log AL + (1 - Y) log(1 - AL))",
    "backward_propagation": "dZ2 = A2 - Y; dW2 = 1/m dZ2 A1.T; dZ1 = W2.T dZ2 * (1 - A1^2); ...",
    "linear_backward": "dW = 1/m dZ A_prev.T; db = 1/m sum(dZ, axis=1, keepdims=True); dA_prev = W.T dZ",
    "linear_activation_backward": "dZ = dA * g'(Z), then linear_backward",
    "L_model_backward": "dAL = -(Y/AL - (1 - Y)/(1 - AL)), then layers L..1",
    "update_parameters": "W[l] = W[l] - alpha dW[l]; b[l] = b[l] - alpha db[l]",
    "nn_model": "initialize, then forward, cost, backward, update num_iterations times",
    "random_mini_batches": "shuffle with np.random.seed(seed), cut into batches of mini_batch_size",
    "initialize_velocity": "v[dW[l]] = zeros like W[l]",
    "update_parameters_with_momentum": "v = beta v + (1 - beta) dW; W = W - alpha v",
    "initialize_adam": "v = s = zeros like each parameter",
    "update_parameters_with_adam": "v = b1 v + (1-b1) dW; s = b2 s + (1-b2) dW^2; "
                                   "W = W - alpha v/(1-b1^t) / (sqrt(s/(1-b2^t)) + eps)",
    "forward_propagation_with_dropout": "D = rand < keep_prob; A = A * D / keep_prob",
    "compute_cost_with_regularization": "J = cross-entropy + lambda/(2m) sum ||W[l]||^2",
    "backward_propagation_with_regularization": "dW[l] = 1/m dZ[l] A[l-1].T + lambda/m W[l]",
    "backward_propagation_with_dropout": "dA[l] = dA[l] * D[l] / keep_prob",
    "update_lr": "alpha = alpha0 / (1 + decay_rate * epoch_num)",
    "schedule_lr_decay": "alpha = alpha0 / (1 + decay_rate * floor(epoch_num / time_interval))",
    "forward_propagation (1-D)": "J = theta x",
    "backward_propagation (1-D)": "dtheta = x",
    "gradient_check": "gradapprox = (J(theta + eps) - J(theta - eps)) / (2 eps); "
                      "difference = |grad - gradapprox| / (|grad| + |gradapprox|)",
    "forward_backward": "every Z, A, cost, dZ, dW, db, dA of one pass",
    "train": "the parameters after the first update, the cost of every step, the final parameters",
    "predictions": "predict on the reference's final parameters",
}


@dataclass(frozen=True)
class Expect:
    """One quantity a call must return: the float64 value, the per-element bound of the call's dtype, the
    shapes accepted (the first is the course's), and other conventions' values it may match instead."""

    value: np.ndarray
    bound: np.ndarray
    layer: int | None = None
    shapes: tuple = ()
    alternatives: dict = field(default_factory=dict)  # convention -> value, or (value, its own bound)
    convention: str = ""  # what the primary value is, when alternatives exist
    exact: bool = False  # integers, masks, shuffles, sizes: must be equal
    check_dtype: bool = True
    optional: bool = False  # compared when the result holds it (the course's grads may or may not keep dZ)
    ties: np.ndarray | None = None  # predictions: where AL is within its bound of 0.5 either class is right
    slips: dict = field(default_factory=dict)  # convention -> value: recognised, named, and still a failure


@dataclass
class Probe:
    """One call of a learner's function and what it must return."""

    function: str
    scenario: str
    dtype: str
    args: tuple
    kwargs: dict
    expected: dict  # quantity -> Expect, in the order of computation
    extract: object  # result -> {quantity: value}; raises LayoutError when the result is not laid out as expected
    context: dict
    seed: int | None = None
    driver: str | None = None  # "nnparity.check.drivers:name" run in the worker instead of the function itself


class LayoutError(Exception):
    """The result is not laid out as the course's (a tuple of the wrong length, a missing key)."""


# ---------------------------------------------------------------------------------------------- networks

@dataclass
class Net:
    """A generated network: parameters and data in ``dtype``, the float64 reference's intermediates ``C``
    (forward, cost, backward with dA0) computed from exactly those values, and their bounds ``B`` in dtype."""

    label: str
    case: Case
    P: dict
    X: np.ndarray
    Y: np.ndarray
    C: dict
    B: dict
    masks: list | None = None

    @property
    def dtype(self):
        return self.case.dtype

    @property
    def m(self):
        return self.X.shape[1]

    def cast(self, array):
        return np.asarray(array, dtype=self.dtype)

    def params(self):
        return {k: v.copy() for k, v in self.P.items()}


def make_net(label, layer_dims, dtype, m, seed, hidden="relu", output_gradient="chained", lambd=0.0,
             keep_prob=1.0, kink=False, labels=None) -> Net:
    """Parameters ~ N(0, 0.5^2) (large enough that the output is not a constant 0.5), biases ~ N(0, 0.1^2),
    X ~ N(0, 1), labels of both classes (or all equal to ``labels``); ``kink`` zeroes example 0 and b1's first
    entry, so that Z1 is exactly 0 there and relu's kink is hit."""
    rng = np.random.RandomState(seed)
    dims = tuple(layer_dims)
    P = {}
    for l in range(1, len(dims)):
        P[f"W{l}"] = (rng.randn(dims[l], dims[l - 1]) * 0.5).astype(dtype)
        P[f"b{l}"] = (rng.randn(dims[l], 1) * 0.1).astype(dtype)
    X = rng.randn(dims[0], m).astype(dtype)
    Y = (np.arange(m) % 2 == 0).astype(dtype).reshape(1, m)
    if labels is not None:
        Y[:] = labels
    if kink:
        X[:, 0] = 0
        P["b1"][0, 0] = 0
    case = Case(layer_dims=dims, hidden_activation=hidden, dtype=dtype, output_gradient=output_gradient,
                lambd=lambd, keep_prob=keep_prob, dropout_seed=1)
    masks = utils.dropout_masks(case, None, m)
    masks = None if masks is None else masks[0]
    P64 = {k: v.astype(np.float64) for k, v in P.items()}
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    case64 = case.replace(dtype="float64")
    AL, caches = model_forward(X64, P64, case64, masks)
    C = {}
    for l, cache in enumerate(caches, start=1):
        C[f"Z{l}"], C[f"A{l}"] = cache[3], cache[4]
    from reference.model import compute_cost
    C["cost"] = compute_cost(AL, Y64, P64, case64)
    C.update(model_backward(AL, Y64, caches, case64, with_dA0=True))
    B = tol.bounds(P64, X64, Y64, case, captured=C, masks=masks, with_dA0=True)
    return Net(label, case, P, X, Y, C, B, masks)


def nets(kind, dtypes=("float64", "float32")) -> list[Net]:
    """The shapes every function meets: one example (m = 1), a one-unit layer, and relu's kink."""
    shapes = {
        "logistic": [("m = 1", (3, 1), 1, {}), ("one feature", (1, 1), 5, {}), ("4 features", (4, 1), 7, {})],
        "two-layer": [("m = 1", (2, 4, 1), 1, {}), ("one hidden unit", (3, 1, 1), 5, {}),
                      ("4 hidden units", (2, 4, 1), 7, {})],
        "deep": [("m = 1", (3, 4, 2, 1), 1, {}), ("one-unit layer", (4, 1, 3, 1), 5, {}),
                 ("relu kink", (5, 4, 3, 1), 6, {"kink": True})],
        "regularised": [("m = 1", (3, 5, 3, 1), 1, {}), ("relu kink", (4, 5, 3, 1), 6, {"kink": True})],
    }[kind]
    extra = {"logistic": {"output_gradient": "fused"},
             "two-layer": {"hidden": "tanh", "output_gradient": "fused"},
             "deep": {},
             "regularised": {"output_gradient": "fused"}}[kind]
    out = []
    for dtype in dtypes:
        for i, (label, dims, m, more) in enumerate(shapes):
            out.append(make_net(label, dims, dtype, m, seed=10 + i, **extra, **more))
    return out


def _u(dtype):
    return tol.UNIT_ROUNDOFF[dtype]


def _update_bound(dtype, *terms, roundings=3):
    """gamma_k (sum |term|): an elementwise formula of k roundings (constants cast to the dtype included)."""
    return tol.gamma(roundings, _u(dtype)) * sum(np.abs(t) for t in terms) + tol.UNDERFLOW[dtype]


# ------------------------------------------------------------------------------------------ extraction

def _item(result, index, what):
    if not isinstance(result, (tuple, list)) or len(result) <= index:
        got = f"a {type(result).__name__}" if not isinstance(result, (tuple, list)) else f"{len(result)} values"
        raise LayoutError(f"returned {got}; the course returns {what}")
    return result[index]


def _key(d, key, what):
    if not isinstance(d, dict):
        raise LayoutError(f"{what} is a {type(d).__name__}, not a dict keyed {key!r} as the course's")
    if key not in d:
        raise LayoutError(f"{what} has no key {key!r} (keys: {', '.join(map(str, d)) or 'none'})")
    return d[key]


def _gradients(result, expected):
    """The course's gradients dict: every expected key, the optional ones (``dZ``) only when it has them."""
    return {k: _key(result, k, "gradients") for k, e in expected.items()
            if not (e.optional and isinstance(result, dict) and k not in result)}


def _dict_of(d, keys, what):
    return {k: _key(d, k, what) for k in keys}


# ------------------------------------------------------------------------------------------ the probes

def probe_sigmoid(net: Net):
    """sigmoid(Z) on the output layer's Z, and on values that saturate: the course's helper returns (A, Z)."""
    L = net.case.L
    Zs = [(net.C[f"Z{L}"], net.C[f"A{L}"], net.B[f"A{L}"])]
    if net.label == "m = 1":  # saturation: exp(-Z) below u, and exp(Z) near the dtype's range
        Z = np.array([[-30.0, -12.0, -1e-3, 0.0, 1e-3, 12.0, 30.0]])
        from reference.activations import sigmoid
        A = sigmoid(Z)
        Zs.append((Z, A, tol.C_G * _u(net.dtype) * A + tol.UNDERFLOW[net.dtype]))
    probes = []
    for Z, A, B in Zs:
        def extract(result):
            return {"A": result[0] if isinstance(result, (tuple, list)) else result}
        label = net.label if Z.shape != (1, 7) else "saturation"
        probes.append(Probe("sigmoid", label, net.dtype, (net.cast(Z),), {},
                            {"A": Expect(A, B, layer=L)}, extract, {"Z": Z, "activation": "sigmoid"}))
    return probes


def probe_relu(net: Net):
    def extract(result):
        return {"A": result[0] if isinstance(result, (tuple, list)) else result}
    Z = net.C["Z1"]
    return [Probe("relu", net.label, net.dtype, (net.cast(Z),), {},
                  {"A": Expect(np.maximum(Z, 0), tol.C_G * _u(net.dtype) * np.abs(net.C["A1"]), layer=1)},
                  extract, {"Z": Z, "activation": "relu"})]


def probe_softmax(_net=None):
    """softmax(Z) in the notes' layout: Z of shape (classes, examples), each column normalised (axis 0)."""
    from reference.activations import softmax

    out = []
    for dtype in ("float64", "float32"):
        rng = np.random.RandomState(4)
        for label, Z in (("3 classes, m = 5", rng.randn(3, 5) * 2), ("large logits", np.array([[30.0, -5.0],
                                                                                              [0.0, 2.0]]))):
            Z = Z.astype(dtype).astype(np.float64)
            A = softmax(Z)
            C = Z.shape[0]  # exp(Z - max): C_G u each; the sum of C terms; the division (see tolerances)
            B = (tol.C_G + C + 1) * _u(dtype) * A + tol.UNDERFLOW[dtype]
            out.append(Probe("softmax", label, dtype, (Z.astype(dtype),), {}, {"A": Expect(A, B)},
                             lambda r: {"A": r[0] if isinstance(r, (tuple, list)) else r},
                             {"Z": Z, "activation": "softmax"}))
    return out


def _dAL(net):
    L = net.case.L
    return cost_backward(net.C[f"A{L}"], net.Y.astype(np.float64), net.case.loss)


def probe_sigmoid_backward(net: Net):
    L = net.case.L
    dA, Z = _dAL(net), net.C[f"Z{L}"]
    return [Probe("sigmoid_backward", net.label, net.dtype, (net.cast(dA), net.cast(Z)), {},
                  {"dZ": Expect(net.C[f"dZ{L}"], net.B[f"dZ{L}"], layer=L)}, lambda r: {"dZ": r},
                  {"dA": dA, "Z": Z, "A": net.C[f"A{L}"], "activation": "sigmoid"})]


def probe_relu_backward(net: Net):
    out = []
    for l in range(1, net.case.L):
        dA, Z = net.C[f"dA{l}"], net.C[f"Z{l}"]
        out.append(Probe("relu_backward", net.label, net.dtype, (net.cast(dA), net.cast(Z)), {},
                         {"dZ": Expect(net.C[f"dZ{l}"], net.B[f"dZ{l}"], layer=l)}, lambda r: {"dZ": r},
                         {"dA": dA, "Z": Z, "A": net.C[f"A{l}"], "activation": "relu"}))
    if net.label == "relu kink":
        out.append(probe_relu_kink(net))
    return out


KINK = "Z = 0 exactly (relu's kink)"
COURSE_KINK, OTHER_KINK = "relu'(0) = 0 (the course's)", "relu'(0) = 1"


def probe_relu_kink(net: Net):
    """relu_backward where a third of Z is exactly 0 and dA is nonzero everywhere: dZ is dA or 0, so it is
    compared exactly, and the two conventions of the kink (relu'(0) = 0, the course's; or 1) differ there."""
    rng = np.random.RandomState(8)
    Z = net.cast(net.C["Z1"]).astype(np.float64)
    Z.flat[::3] = 0.0
    dA = net.cast(rng.uniform(0.5, 1.5, Z.shape) * np.where(rng.rand(*Z.shape) < 0.5, -1.0, 1.0)).astype(np.float64)
    expect = Expect(np.where(Z > 0, dA, 0.0), np.zeros(Z.shape), layer=1, exact=True, convention=COURSE_KINK,
                    slips={OTHER_KINK: np.where(Z >= 0, dA, 0.0)})
    return Probe("relu_backward", KINK, net.dtype, (net.cast(dA), net.cast(Z)), {}, {"dZ": expect},
                 lambda r: {"dZ": r}, {"dA": dA, "Z": Z, "activation": "relu"})


def _init_expect(layer_dims, conventions, dtype="float64"):
    """The course's initialisers: each convention (seed, scale) drawn by the reference's initialiser."""
    values = {}
    for name, (seed, init) in conventions.items():
        values[name] = initializers.initialize_parameters(layer_dims, init=init, scale=0.01, seed=seed)
    return values


def _init_probe(function, label, args, layer_dims, conventions, seed):
    values = _init_expect(layer_dims, conventions)
    names = list(values)
    first = values[names[0]]
    expected = {}
    for k, V in first.items():
        # the draws are exact; randn * 0.01, randn / sqrt(n) or randn * sqrt(1/n): at most 3 roundings apart
        expected[k] = Expect(V, 3 * _u("float64") * np.abs(V), layer=int(k[1:]), convention=names[0],
                             alternatives={n: values[n][k] for n in names[1:]}, check_dtype=False)

    def extract(result):
        return _dict_of(result, list(first), "the returned parameters")
    return Probe(function, label, "float64", args, {}, expected, extract, {"layer_dims": layer_dims}, seed=seed)


def probe_initialize_parameters(_net=None):
    conventions = {"np.random.seed(2) and * 0.01 (the planar notebook)": (2, "small-random"),
                   "np.random.seed(1) and * 0.01 (the deep notebook's 2-layer model)": (1, "small-random")}
    return [_init_probe("initialize_parameters", f"n = {dims}", dims, list(dims), conventions, seed=2)
            for dims in ((2, 4, 1), (3, 1, 2))]


def probe_initialize_parameters_deep(_net=None):
    conventions = {"np.random.seed(3) and * 0.01 (the step-by-step notebook)": (3, "small-random"),
                   "np.random.seed(1) and / sqrt(n[l-1]) (the application notebook)": (1, "inv-sqrt"),
                   "np.random.seed(3) and / sqrt(n[l-1])": (3, "inv-sqrt")}
    return [_init_probe("initialize_parameters_deep", f"layer_dims = {list(dims)}", (list(dims),), list(dims),
                        conventions, seed=3) for dims in ((5, 4, 3), (3, 1, 2, 1))]


def probe_initialize_with_zeros(_net=None):
    out = []
    for dim in (1, 4):
        def extract(result):
            return {"w": _item(result, 0, "(w, b)"), "b": _item(result, 1, "(w, b)")}
        out.append(Probe("initialize_with_zeros", f"dim = {dim}", "float64", (dim,), {},
                         {"w": Expect(np.zeros((dim, 1)), np.zeros((dim, 1)), exact=True, check_dtype=False),
                          "b": Expect(np.zeros(()), np.zeros(()), exact=True, shapes=((), (1,), (1, 1)),
                                      check_dtype=False)}, extract, {"dim": dim}))
    return out


def _zeros_probe(function, net, pairs):
    keys = [f"d{k}" for k in net.P]

    def extract(result):
        if len(pairs) == 1:
            return {f"v[{k}]": v for k, v in _dict_of(result, keys, "v").items()}
        out = {}
        for i, name in enumerate(pairs):
            d = _item(result, i, "(v, s)")
            out.update({f"{name}[{k}]": v for k, v in _dict_of(d, keys, name).items()})
        return out
    expected = {f"{name}[{k}]": Expect(np.zeros(net.P[k[1:]].shape), np.zeros(net.P[k[1:]].shape), exact=True,
                                       layer=int(k[2:]), check_dtype=False) for name in pairs for k in keys}
    return Probe(function, net.label, net.dtype, (net.params(),), {}, expected, extract, {"parameters": net.P})


def probe_initialize_velocity(net):
    return [_zeros_probe("initialize_velocity", net, ("v",))]


def probe_initialize_adam(net):
    return [_zeros_probe("initialize_adam", net, ("v", "s"))]


def probe_layer_sizes(net):
    n_x, n_y = net.X.shape[0], net.Y.shape[0]

    def extract(result):
        return {"n_x": _item(result, 0, "(n_x, n_h, n_y)"), "n_h": _item(result, 1, "(n_x, n_h, n_y)"),
                "n_y": _item(result, 2, "(n_x, n_h, n_y)")}
    sizes = {"n_x": n_x, "n_h": 4, "n_y": n_y}  # the notebook hard-codes n_h = 4
    return [Probe("layer_sizes", net.label, net.dtype, (net.X, net.Y), {},
                  {k: Expect(np.asarray(v), np.zeros(()), exact=True, check_dtype=False) for k, v in sizes.items()},
                  extract, {})]


def probe_linear_forward(net):
    out = []
    for l in range(1, net.case.L + 1):
        A_prev = net.X if l == 1 else net.C[f"A{l - 1}"]
        W, b = net.P[f"W{l}"], net.P[f"b{l}"]

        def extract(result):
            return {"Z": _item(result, 0, "(Z, cache)")}
        out.append(Probe("linear_forward", net.label, net.dtype, (net.cast(A_prev), W, b), {},
                         {"Z": Expect(net.C[f"Z{l}"], net.B[f"Z{l}"], layer=l)}, extract,
                         {"A_prev": A_prev, "W": W.astype(float), "b": b.astype(float), "m": net.m}))
    return out


def probe_linear_activation_forward(net):
    out = []
    for l, activation in enumerate(net.case.activations(), start=1):
        A_prev = net.X if l == 1 else net.C[f"A{l - 1}"]
        W, b = net.P[f"W{l}"], net.P[f"b{l}"]

        def extract(result):
            A = _item(result, 0, "(A, cache)")
            cache = _item(result, 1, "(A, cache)")
            return {"A": A, "Z": _item(cache, 1, "cache = (linear_cache, activation_cache)")}
        out.append(Probe("linear_activation_forward", f"{net.label}, layer {l}", net.dtype,
                         (net.cast(A_prev), W, b, activation), {},
                         {"Z": Expect(net.C[f"Z{l}"], net.B[f"Z{l}"], layer=l),
                          "A": Expect(net.C[f"A{l}"], net.B[f"A{l}"], layer=l)}, extract,
                         {"A_prev": A_prev, "W": W.astype(float), "b": b.astype(float), "Z": net.C[f"Z{l}"],
                          "activation": activation, "m": net.m}))
    return out


def probe_L_model_forward(net):
    L = net.case.L

    def extract(result):
        AL = _item(result, 0, "(AL, caches)")
        caches = _item(result, 1, "(AL, caches)")
        if not isinstance(caches, (list, tuple)) or len(caches) != L:
            raise LayoutError(f"caches holds {len(caches) if isinstance(caches, (list, tuple)) else 'no list'}; "
                              f"the course keeps one cache per layer ({L})")
        out = {}
        for l in range(1, L + 1):
            out[f"Z{l}"] = _item(caches[l - 1], 1, "each cache = (linear_cache, Z)")
            if l < L:
                out[f"A{l}"] = _item(_item(caches[l], 0, "each cache = (linear_cache, Z)"), 0,
                                     "linear_cache = (A_prev, W, b)")
        out[f"A{L}"] = AL
        return out
    expected = {}
    for l in range(1, L + 1):
        expected[f"Z{l}"] = Expect(net.C[f"Z{l}"], net.B[f"Z{l}"], layer=l)
        expected[f"A{l}"] = Expect(net.C[f"A{l}"], net.B[f"A{l}"], layer=l)
    return [Probe("L_model_forward", net.label, net.dtype, (net.X, net.params()), {}, expected, extract,
                  _net_context(net))]


def _net_context(net):
    return {"X": net.X.astype(float), "Y": net.Y.astype(float), "m": net.m,
            "parameters": {k: v.astype(float) for k, v in net.P.items()}, "activations": net.case.activations(),
            "AL": net.C[f"A{net.case.L}"], "lambd": net.case.lambd, "keep_prob": net.case.keep_prob,
            "D": None if net.masks is None else {l: D for l, D in enumerate(net.masks, start=1)},
            "cache": net.C}


def _cost_expect(net):
    return Expect(np.asarray(net.C["cost"]), np.asarray(net.B["cost"]), shapes=((),))


def probe_compute_cost(net, with_parameters=False):
    L = net.case.L
    AL = net.C[f"A{L}"]
    args = (net.cast(AL), net.Y) + ((net.params(),) if with_parameters else ())
    return [Probe("compute_cost", net.label, net.dtype, args, {}, {"cost": _cost_expect(net)},
                  lambda r: {"cost": r}, {"AL": AL, "Y": net.Y.astype(float), "m": net.m})]


#: The scenarios of one label: a cost term wrong only for Y = 0 (or only for Y = 1) fails exactly one of them.
EVERY_LABEL = {1: "every label 1", 0: "every label 0"}


def _linear_cache(net, l):
    A_prev = net.X if l == 1 else net.cast(net.C[f"A{l - 1}"])
    return (A_prev, net.P[f"W{l}"], net.P[f"b{l}"])


def _grad_expects(net, l, dA_key):
    return {dA_key: Expect(net.C[f"dA{l - 1}"], net.B[f"dA{l - 1}"], layer=l - 1),
            "dW": Expect(net.C[f"dW{l}"], net.B[f"dW{l}"], layer=l),
            "db": Expect(net.C[f"db{l}"], net.B[f"db{l}"], layer=l)}


def _backward_extract(result):
    what = "(dA_prev, dW, db)"
    return {"dA_prev": _item(result, 0, what), "dW": _item(result, 1, what), "db": _item(result, 2, what)}


def probe_linear_backward(net):
    out = []
    for l in range(1, net.case.L + 1):
        dZ = net.C[f"dZ{l}"]
        expected = _grad_expects(net, l, "dA_prev")
        out.append(Probe("linear_backward", f"{net.label}, layer {l}", net.dtype,
                         (net.cast(dZ), _linear_cache(net, l)), {},
                         {"dW": expected["dW"], "db": expected["db"], "dA_prev": expected["dA_prev"]},
                         _backward_extract,
                         {"dZ": dZ, "A_prev": _linear_cache(net, l)[0].astype(float),
                          "W": net.P[f"W{l}"].astype(float), "m": net.m}))
    return out


def probe_linear_activation_backward(net):
    out = []
    for l, activation in zip(range(net.case.L, 0, -1), reversed(net.case.activations())):
        dA = _dAL(net) if l == net.case.L else net.C[f"dA{l}"]
        Z = net.C[f"Z{l}"]
        cache = (_linear_cache(net, l), net.cast(Z))
        expected = _grad_expects(net, l, "dA_prev")
        out.append(Probe("linear_activation_backward", f"{net.label}, layer {l}", net.dtype,
                         (net.cast(dA), cache, activation), {},
                         {"dW": expected["dW"], "db": expected["db"], "dA_prev": expected["dA_prev"]},
                         _backward_extract,
                         {"dA": dA, "Z": Z, "A": net.C[f"A{l}"], "dZ": net.C[f"dZ{l}"], "activation": activation,
                          "A_prev": _linear_cache(net, l)[0].astype(float), "W": net.P[f"W{l}"].astype(float),
                          "m": net.m}))
    return out


def _course_caches(net):
    return [(_linear_cache(net, l), net.cast(net.C[f"Z{l}"])) for l in range(1, net.case.L + 1)]


def _grads_expected(net, layers, with_dZ=False, dA_convention=None):
    """The course's grads dict, in the order of computation: dW[l], db[l], dA[l-1] from layer L down."""
    expected = {}
    for l in layers:
        if with_dZ:
            expected[f"dZ{l}"] = Expect(net.C[f"dZ{l}"], net.B[f"dZ{l}"], layer=l, optional=True)
        expected[f"dW{l}"] = Expect(net.C[f"dW{l}"], net.B[f"dW{l}"], layer=l)
        expected[f"db{l}"] = Expect(net.C[f"db{l}"], net.B[f"db{l}"], layer=l)
        if f"dA{l - 1}" in net.C and (l > 1 or dA_convention is None):
            expected[f"dA{l - 1}"] = Expect(net.C[f"dA{l - 1}"], net.B[f"dA{l - 1}"], layer=l - 1,
                                            optional=dA_convention is not None)
    return expected


def probe_L_model_backward(net):
    probes = [_L_model_backward(net, net.label)]
    if net.label == "relu kink" and net.dtype == "float64":
        with np.errstate(all="ignore"):  # 1/(1 - AL) with AL = 1: the point of the scenario
            probes.append(_L_model_backward(saturated(net), "saturated output (AL rounds to 1)"))
    return probes


def saturated(net):
    """The same network with b[L] = 40: every output rounds to exactly 1.  The course's chained
    dAL = -(Y/AL - (1-Y)/(1-AL)) is then inf or NaN and so is every gradient below it; the shortcut
    dZL = AL - Y stays finite.  Both are the course's, so both pass, and the checklist says which was used."""
    L = net.case.L
    P = net.params()
    P[f"b{L}"] = P[f"b{L}"] + 40
    dims, m = net.case.layer_dims, net.m
    out = make_net(net.label, dims, net.dtype, m, seed=0)
    chained = _rebuild(out, P, net.X, net.Y, net.case)
    chained.fused = _rebuild(out, P, net.X, net.Y, net.case.replace(output_gradient="fused"))
    return chained


def _rebuild(template, P, X, Y, case):
    """A Net on given parameters and data (``make_net`` draws its own)."""
    P64 = {k: v.astype(np.float64) for k, v in P.items()}
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    AL, caches = model_forward(X64, P64, case.replace(dtype="float64"))
    C = {}
    for l, cache in enumerate(caches, start=1):
        C[f"Z{l}"], C[f"A{l}"] = cache[3], cache[4]
    C.update(model_backward(AL, Y64, caches, case.replace(dtype="float64"), with_dA0=True))
    C["cost"] = np.asarray(np.nan)
    B = tol.bounds(P64, X64, Y64, case, captured=C, with_dA0=True)
    return Net(template.label, case, P, X, Y, C, B)


def _L_model_backward(net, label):
    L = net.case.L
    expected = _grads_expected(net, range(L, 0, -1))
    fused = getattr(net, "fused", None)
    if fused is not None:
        expected = {k: dataclasses.replace(e, convention="dAL chained through sigmoid_backward (the course's)",
                                           alternatives={"dZL = AL - Y (the shortcut)": (fused.C[k], fused.B[k])})
                    for k, e in expected.items()}
    AL = net.C[f"A{L}"]

    def extract(result):
        return {k: _key(result, k, "grads") for k in expected}
    context = _net_context(net) | {"dAL": _dAL(net)}
    return Probe("L_model_backward", label, net.dtype, (net.cast(AL), net.Y, _course_caches(net)), {},
                 expected, extract, context)


def _grads_in(net, L):
    return {f"d{k}": net.cast(net.C[f"d{k}"]) for k in net.P if int(k[1:]) <= L}


def probe_update_parameters(net, learning_rate=1.2):
    P, grads = net.params(), _grads_in(net, net.case.L)
    expected = {}
    for k, W in P.items():
        W64, g64 = W.astype(np.float64), grads[f"d{k}"].astype(np.float64)
        step = learning_rate * g64
        # alpha cast to the dtype, the product and the subtraction: three roundings
        expected[k] = Expect(W64 - step, _update_bound(net.dtype, W64, step), layer=int(k[1:]))

    def extract(result):
        return _dict_of(result, list(P), "the returned parameters")
    return [Probe("update_parameters", net.label, net.dtype, (P, grads, learning_rate), {}, expected, extract,
                  {"parameters": {k: v.astype(float) for k, v in P.items()},
                   "grads": {k: v.astype(float) for k, v in grads.items()}, "learning_rate": learning_rate})]


def _moments(net, seed, positive=False):
    rng = np.random.RandomState(seed)
    out = {}
    for k, W in net.P.items():
        value = rng.randn(*W.shape) * 0.1
        out[f"d{k}"] = net.cast(np.abs(value) if positive else value)
    return out


def probe_update_parameters_with_momentum(net, beta=0.9, learning_rate=0.1):
    P, grads, v = net.params(), _grads_in(net, net.case.L), _moments(net, 5)
    g64 = {k: g.astype(np.float64) for k, g in grads.items()}
    v64 = {k: x.astype(np.float64) for k, x in v.items()}
    new_P, new_v = optimizers.update_parameters_with_momentum(
        {k: W.astype(np.float64) for k, W in P.items()}, g64, v64, beta, learning_rate)
    expected = {}
    for k, W in P.items():
        d = f"d{k}"
        Bv = _update_bound(net.dtype, beta * v64[d], (1 - beta) * g64[d], roundings=5)
        expected[f"v[{d}]"] = Expect(new_v[d], Bv, layer=int(k[1:]))
        expected[k] = Expect(new_P[k], _update_bound(net.dtype, W.astype(float), learning_rate * new_v[d])
                             + learning_rate * Bv, layer=int(k[1:]))
    order = [q for k in P for q in (f"v[d{k}]", k)]
    expected = {q: expected[q] for q in order}

    def extract(result):
        out = {k: v for k, v in _dict_of(_item(result, 0, "(parameters, v)"), list(P), "parameters").items()}
        vv = _dict_of(_item(result, 1, "(parameters, v)"), [f"d{k}" for k in P], "v")
        out.update({f"v[{k}]": x for k, x in vv.items()})
        return out
    return [Probe("update_parameters_with_momentum", net.label, net.dtype, (P, grads, v, beta, learning_rate), {},
                  expected, extract,
                  {"parameters": {k: W.astype(float) for k, W in P.items()}, "grads": g64, "v": v64, "beta": beta,
                   "learning_rate": learning_rate})]


def probe_update_parameters_with_adam(net, t=2, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8):
    P, grads = net.params(), _grads_in(net, net.case.L)
    v, s = _moments(net, 6), _moments(net, 7, positive=True)
    P64 = {k: W.astype(np.float64) for k, W in P.items()}
    g64 = {k: g.astype(np.float64) for k, g in grads.items()}
    v64 = {k: x.astype(np.float64) for k, x in v.items()}
    s64 = {k: x.astype(np.float64) for k, x in s.items()}
    c1, c2 = 1 - beta1**t, 1 - beta2**t
    new_P, new_v, new_s = optimizers.update_parameters_with_adam(P64, g64, v64, s64, c1, c2, beta1, beta2,
                                                                 learning_rate, epsilon)
    u = _u(net.dtype)
    expected = {}
    for k in P:
        d, layer = f"d{k}", int(k[1:])
        Bv = _update_bound(net.dtype, beta1 * v64[d], (1 - beta1) * g64[d], roundings=5)
        Bs = _update_bound(net.dtype, beta2 * s64[d], (1 - beta2) * g64[d] ** 2, roundings=6)
        v_hat, s_hat = new_v[d] / c1, new_s[d] / c2
        Bvh = Bv / c1 + tol.gamma(3, u) * np.abs(v_hat)  # 1 - beta1**t: its rounding, the cast, the division
        Bsh = Bs / c2 + tol.gamma(3, u) * np.abs(s_hat)
        root = np.sqrt(s_hat) + epsilon
        # the step alpha v_hat / (sqrt(s_hat) + eps): v_hat's relative error, half s_hat's through the root
        # (divided by the denominator), and the roundings of the root, the sum, the division, alpha and the product
        step = learning_rate * v_hat / root
        rel = Bvh / np.maximum(np.abs(v_hat), tol.UNDERFLOW["float64"]) + 0.5 * Bsh / (np.sqrt(s_hat) * root)
        Bstep = np.abs(step) * (rel + tol.gamma(6, u))
        expected[f"v[{d}]"] = Expect(new_v[d], Bv, layer=layer)
        expected[f"s[{d}]"] = Expect(new_s[d], Bs, layer=layer)
        expected[f"v_corrected[{d}]"] = Expect(v_hat, Bvh, layer=layer, optional=True)
        expected[f"s_corrected[{d}]"] = Expect(s_hat, Bsh, layer=layer, optional=True)
        expected[k] = Expect(new_P[k], Bstep + _update_bound(net.dtype, P64[k], step, roundings=1), layer=layer)

    def extract(result):
        what = "(parameters, v, s) or (parameters, v, s, v_corrected, s_corrected)"
        out = dict(_dict_of(_item(result, 0, what), list(P), "parameters"))
        for i, name in enumerate(("v", "s", "v_corrected", "s_corrected"), start=1):
            if name.endswith("corrected") and len(result) <= i:
                continue
            moments = _dict_of(_item(result, i, what), [f"d{k}" for k in P], name)
            out.update({f"{name}[{k}]": x for k, x in moments.items()})
        return out
    return [Probe("update_parameters_with_adam", net.label, net.dtype, (P, grads, v, s, t),
                  {"learning_rate": learning_rate, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}, expected,
                  extract, {"parameters": P64, "grads": g64, "v": v64, "s": s64, "t": t, "beta1": beta1,
                            "beta2": beta2, "learning_rate": learning_rate, "epsilon": epsilon})]


# --- the 2-layer notebook

def probe_forward_propagation(net):
    expected = {q: Expect(net.C[q], net.B[q], layer=int(q[1:])) for q in ("Z1", "A1", "Z2", "A2")}

    def extract(result):
        A2 = _item(result, 0, "(A2, cache)")
        cache = _dict_of(_item(result, 1, "(A2, cache)"), ["Z1", "A1", "Z2", "A2"], "cache")
        return cache | {"A2": A2}
    return [Probe("forward_propagation", net.label, net.dtype, (net.X, net.params()), {}, expected, extract,
                  _net_context(net))]


def probe_backward_propagation(net):
    expected = _grads_expected(net, (2, 1))
    expected = {k: e for k, e in expected.items() if not k.startswith("dA")}
    cache = {q: net.cast(net.C[q]) for q in ("Z1", "A1", "Z2", "A2")}

    def extract(result):
        return _dict_of(result, list(expected), "grads")
    return [Probe("backward_propagation", net.label, net.dtype, (net.params(), cache, net.X, net.Y), {}, expected,
                  extract, _net_context(net))]


def probe_predict_two_layer(net):
    return [_predict_probe(net, (net.params(), net.X), "predictions")]


def probe_predict_logistic(net):
    w, b = net.P["W1"].T.copy(), net.P["b1"][0, 0]
    return [_predict_probe(net, (w, b, net.X), "Y_prediction")]


def _predict_probe(net, args, name):
    AL = net.C[f"A{net.case.L}"]
    ties = np.abs(AL - 0.5) <= net.B[f"A{net.case.L}"]
    expected = {name: Expect((AL > 0.5).astype(float), np.zeros(AL.shape), exact=True, check_dtype=False,
                             ties=ties)}
    return Probe("predict", net.label, net.dtype, args, {}, expected, lambda r: {name: r}, {"AL": AL})


# --- logistic regression

def probe_propagate(net):
    w, b = net.P["W1"].T.copy(), net.P["b1"][0, 0]
    expected = {"cost": _cost_expect(net),
                "dw": Expect(net.C["dW1"].T, net.B["dW1"].T, layer=1),
                "db": Expect(net.C["db1"].reshape(()), net.B["db1"].reshape(()), layer=1, shapes=((), (1,), (1, 1)))}

    def extract(result):
        grads = _item(result, 0, "(grads, cost)")
        return {"cost": _item(result, 1, "(grads, cost)"), "dw": _key(grads, "dw", "grads"),
                "db": _key(grads, "db", "grads")}
    return [Probe("propagate", net.label, net.dtype, (w, b, net.X, net.Y), {}, expected, extract,
                  _net_context(net) | {"w": w.astype(float)})]


# --- the regularisation and dropout notebook (3 layers: relu, relu, sigmoid; dZ3 = A3 - Y)

def _course_cache_3(net):
    """(Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3); with dropout D1, D2 after each hidden Z."""
    out = []
    for l in range(1, net.case.L + 1):
        out.append(net.cast(net.C[f"Z{l}"]))
        if net.masks is not None and l < net.case.L:
            out.append(net.masks[l - 1].astype(int))
        out += [net.cast(net.C[f"A{l}"]), net.P[f"W{l}"], net.P[f"b{l}"]]
    return tuple(out)


def probe_compute_cost_with_regularization(net):
    L = net.case.L
    AL = net.C[f"A{L}"]
    return [Probe("compute_cost_with_regularization", net.label, net.dtype,
                  (net.cast(AL), net.Y, net.params(), net.case.lambd), {}, {"cost": _cost_expect(net)},
                  lambda r: {"cost": r}, _net_context(net))]


def probe_backward_propagation_with_regularization(net):
    expected = _grads_expected(net, range(net.case.L, 0, -1), with_dZ=True)
    expected.pop("dA0", None)

    def extract(result):
        return _gradients(result, expected)
    return [Probe("backward_propagation_with_regularization", net.label, net.dtype,
                  (net.X, net.Y, _course_cache_3(net), net.case.lambd), {}, expected, extract, _net_context(net))]


def probe_forward_propagation_with_dropout(net):
    L = net.case.L
    expected = {}
    for l in range(1, L + 1):
        expected[f"Z{l}"] = Expect(net.C[f"Z{l}"], net.B[f"Z{l}"], layer=l)
        if l < L:
            D = net.masks[l - 1]
            expected[f"D{l}"] = Expect(D.astype(float), np.zeros(D.shape), layer=l, exact=True, check_dtype=False)
        expected[f"A{l}"] = Expect(net.C[f"A{l}"], net.B[f"A{l}"], layer=l)

    def extract(result):
        AL = _item(result, 0, "(A3, cache)")
        cache = _item(result, 1, "(A3, cache)")
        if not isinstance(cache, (tuple, list)) or len(cache) != 4 * L + L - 1:
            raise LayoutError(f"cache holds {len(cache) if isinstance(cache, (tuple, list)) else 'no tuple'}; the "
                              "course's is (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)")
        out, i = {}, 0
        for l in range(1, L + 1):
            out[f"Z{l}"] = cache[i]
            i += 1
            if l < L:
                out[f"D{l}"], i = cache[i], i + 1
            out[f"A{l}"] = cache[i]
            i += 3
        out[f"A{L}"] = AL
        return out
    return [Probe("forward_propagation_with_dropout", net.label, net.dtype, (net.X, net.params(), net.case.keep_prob),
                  {}, expected, extract, _net_context(net), seed=1)]


def probe_backward_propagation_with_dropout(net):
    L = net.case.L
    expected = _grads_expected(net, range(L, 0, -1), with_dZ=True, dA_convention="course")
    for l in range(1, L):  # the course returns dA[l] after the mask and the 1/keep_prob; the reference before
        before = net.C[f"dA{l}"]
        after = before * net.masks[l - 1] / net.case.keep_prob
        expected[f"dA{l}"] = Expect(after, net.B[f"dA{l}"] / net.case.keep_prob + 2 * _u(net.dtype) * np.abs(after),
                                    layer=l, convention="after the mask and 1/keep_prob (the course's)",
                                    alternatives={"before the mask (the reference's)": before})
    order = [q for l in range(L, 0, -1) for q in (f"dZ{l}", f"dW{l}", f"db{l}", f"dA{l - 1}") if q in expected]
    expected = {q: expected[q] for q in order}

    def extract(result):
        return _gradients(result, expected)
    return [Probe("backward_propagation_with_dropout", net.label, net.dtype,
                  (net.X, net.Y, _course_cache_3(net), net.case.keep_prob), {}, expected, extract, _net_context(net))]


def probe_random_mini_batches(_net=None):
    out = []
    for m, size, seed in ((148, 64, 0), (128, 64, 3), (1, 64, 0)):
        rng = np.random.RandomState(42)
        X, Y = rng.randn(3, m), (rng.rand(1, m) > 0.5).astype(float)
        schedule = utils.minibatch_schedule(m, size, 1, shuffle_seed=seed) or [np.random.RandomState(seed)
                                                                               .permutation(m)]
        expected = {}
        for k, idx in enumerate(schedule):
            expected[f"mini_batch_X[{k}]"] = Expect(X[:, idx], np.zeros((3, len(idx))), exact=True)
            expected[f"mini_batch_Y[{k}]"] = Expect(Y[:, idx], np.zeros((1, len(idx))), exact=True)

        def extract(result, n=len(schedule)):  # noqa: B008 (the count bound now, as the closure is made)
            if not isinstance(result, (list, tuple)) or len(result) != n:
                got = len(result) if isinstance(result, (list, tuple)) else type(result).__name__
                raise LayoutError(f"returned {got} mini-batches; the course's cuts {n}: complete ones, then the rest")
            out = {}
            for k, pair in enumerate(result):
                out[f"mini_batch_X[{k}]"] = _item(pair, 0, "(mini_batch_X, mini_batch_Y) pairs")
                out[f"mini_batch_Y[{k}]"] = _item(pair, 1, "(mini_batch_X, mini_batch_Y) pairs")
            return out
        out.append(Probe("random_mini_batches", f"m = {m}, size {size}, seed {seed}", "float64", (X, Y, size, seed),
                         {}, expected, extract, {"m": m}))
    return out


def _scalar_probe(function, label, args, kwargs, value, bound, context):
    return Probe(function, label, "float64", args, kwargs,
                 {function: Expect(np.asarray(value, dtype=np.float64), np.asarray(bound), shapes=((), (1,), (1, 1)),
                                   check_dtype=False)}, lambda r: {function: r}, context)


def probe_update_lr(_net=None):
    """The course's decay of the learning rate, against the reference's ``update_lr`` (three roundings)."""
    out = []
    for rate0, epoch, decay in ((0.5, 0, 1.0), (0.5, 2, 1.0), (0.1, 10, 0.3)):
        value = optimizers.update_lr(rate0, epoch, decay)
        out.append(_scalar_probe("update_lr", f"alpha0 {rate0}, epoch {epoch}, decay {decay}", (rate0, epoch, decay),
                                 {}, value, tol.gamma(3, _u("float64")) * value,
                                 {"learning_rate": rate0, "epoch_num": epoch, "decay_rate": decay}))
    return out


def probe_schedule_lr_decay(_net=None):
    """The course's fixed-interval decay, against the reference's ``schedule_lr_decay``: the floor at the interval's
    edges (epoch 999 and 1000 of 1000) is where it goes wrong."""
    out = []
    for rate0, epoch, decay, interval in ((0.5, 999, 0.3, 1000), (0.5, 1000, 0.3, 1000), (0.1, 2500, 1.0, 1000),
                                          (0.1, 10, 1.0, 3)):
        value = optimizers.schedule_lr_decay(rate0, epoch, decay, interval)
        out.append(_scalar_probe("schedule_lr_decay", f"alpha0 {rate0}, epoch {epoch}, interval {interval}",
                                 (rate0, epoch, decay), {"time_interval": interval}, value,
                                 tol.gamma(3, _u("float64")) * value,
                                 {"learning_rate": rate0, "epoch_num": epoch, "decay_rate": decay}))
    return out


# --- the gradient-checking notebook (1-D: J = theta x)

ONE_D_POINTS = ((2.0, 4.0), (-0.5, 3.0), (3.0, -1e-3))


def probe_forward_propagation_1d(_net=None):
    return [_scalar_probe("forward_propagation", f"x = {x}, theta = {theta}", (x, theta), {}, theta * x,
                          _u("float64") * abs(theta * x), {"x": x, "theta": theta}) for x, theta in ONE_D_POINTS]


def probe_backward_propagation_1d(_net=None):
    return [_scalar_probe("backward_propagation", f"x = {x}, theta = {theta}", (x, theta), {}, x, 0.0,
                          {"x": x, "theta": theta}) for x, theta in ONE_D_POINTS]


def probe_gradient_check(_net=None, epsilon=1e-7):
    """The course's 1-D ``gradient_check(x, theta, epsilon)`` against the reference's ``gradient_check_function``.

    The difference is mostly rounding: J(theta + eps) - J(theta - eps) cancels, so each J's two roundings
    (gamma_2 |J|) divided by 2 eps is gradapprox's error E; the difference then moves by at most
    2 E / (|grad| + |gradapprox|) plus four roundings."""
    from reference.gradient_check import gradient_check_function

    out = []
    for x, theta in ONE_D_POINTS:
        value = gradient_check_function(lambda t: t * x, x, theta, epsilon)
        J = abs(x) * (abs(theta) + epsilon)
        E = (tol.gamma(2, _u("float64")) * 2 * J + _u("float64") * 2 * abs(x) * epsilon) / (2 * epsilon)
        bound = 2 * E / (2 * abs(x)) + 4 * _u("float64")
        out.append(_scalar_probe("gradient_check", f"x = {x}, theta = {theta}", (x, theta), {"epsilon": epsilon},
                                 value, bound, {"x": x, "theta": theta}))
    return out


# --- the composed runs: the learner's own functions driving training, against the reference's trajectory

def probe_optimize(net, num_iterations=101, learning_rate=0.009):
    if net.dtype != "float64":
        return []
    case = net.case.replace(learning_rate=learning_rate, epochs=num_iterations)
    P64 = {k: v.astype(np.float64) for k, v in net.P.items()}
    seen = []
    from reference.model import forward_backward, train
    final, costs = train(P64, net.X, net.Y, case, before_update=lambda step, P, Xb, Yb: seen.append(P))
    last = forward_backward(seen[-1], net.X, net.Y, case)
    trajectory = _trajectory_bound
    expected = {"costs": Expect(costs[::100], trajectory(costs[::100]), shapes=((len(costs[::100]),),)),
                "w": Expect(final["W1"].T, trajectory(final["W1"].T), layer=1),
                "b": Expect(final["b1"].reshape(()), trajectory(final["b1"].reshape(())), shapes=((), (1,), (1, 1))),
                "dw": Expect(last["dW1"].T, trajectory(last["dW1"].T), layer=1),
                "db": Expect(last["db1"].reshape(()), trajectory(last["db1"].reshape(())), shapes=((), (1,), (1, 1)))}

    def extract(result):
        what = "(params, grads, costs)"
        params, grads = _item(result, 0, what), _item(result, 1, what)
        costs_ = np.asarray([np.asarray(c, dtype=float).reshape(()) for c in _item(result, 2, what)])
        return {"costs": costs_, "w": _key(params, "w", "params"), "b": _key(params, "b", "params"),
                "dw": _key(grads, "dw", "grads"), "db": _key(grads, "db", "grads")}
    w, b = net.P["W1"].T.copy(), float(net.P["b1"][0, 0])
    return [Probe("optimize", f"{net.label}, {num_iterations} iterations", net.dtype,
                  (w, b, net.X, net.Y, num_iterations, learning_rate), {"print_cost": False}, expected, extract,
                  _net_context(net) | {"learning_rate": learning_rate})]


def _trajectory_bound(values):
    """The project's float64 trajectory gate: FLOAT64_TRAJECTORY relative to the largest magnitude."""
    values = np.asarray(values, dtype=np.float64)
    scale = np.max(np.abs(values)) if values.size else 0.0
    return np.full(values.shape, tol.FLOAT64_TRAJECTORY * scale + tol.UNDERFLOW["float64"])


def probe_nn_model(net, num_iterations=50, learning_rate=1.2):
    if net.dtype != "float64" or net.label != "4 hidden units":
        return []
    from reference.model import train
    n_x, n_h, n_y = net.case.layer_dims
    case = net.case.replace(learning_rate=learning_rate, epochs=num_iterations, init="small-random")
    conventions = {"np.random.seed(2) in initialize_parameters (the planar notebook)": 2,
                   "np.random.seed(3) in nn_model, none in initialize_parameters": 3,
                   "np.random.seed(1)": 1}
    finals = {}
    for name, seed in conventions.items():
        P0 = initializers.initialize_parameters([n_x, n_h, n_y], init="small-random", scale=0.01, seed=seed)
        finals[name], _ = train(P0, net.X.astype(float), net.Y.astype(float), case)
    names = list(finals)
    expected = {k: Expect(V, _trajectory_bound(V), layer=int(k[1:]), convention=names[0],
                          alternatives={n: finals[n][k] for n in names[1:]}) for k, V in finals[names[0]].items()}

    def extract(result):
        return _dict_of(result, list(expected), "the returned parameters")
    return [Probe("nn_model", f"{net.label}, {num_iterations} iterations", net.dtype, (net.X, net.Y, n_h),
                  {"num_iterations": num_iterations, "print_cost": False}, expected, extract, _net_context(net),
                  seed=3)]


def probe_deep_training(net, steps=30, learning_rate=0.1):
    """The learner's L_model_forward, compute_cost, L_model_backward and update_parameters composed, driven
    by ``nnparity.check.drivers.deep_training`` in the worker: the costs and the final parameters."""
    if net.dtype != "float64":
        return []
    from reference.model import train
    case = net.case.replace(learning_rate=learning_rate, epochs=steps)
    P64 = {k: v.astype(np.float64) for k, v in net.P.items()}
    final, costs = train(P64, net.X.astype(float), net.Y.astype(float), case)
    expected = {"costs": Expect(costs, _trajectory_bound(costs), shapes=((steps,),))}
    expected.update({k: Expect(V, _trajectory_bound(V), layer=int(k[1:])) for k, V in final.items()})

    def extract(result):
        params, costs_ = result
        return {"costs": np.asarray(costs_, dtype=float)} | _dict_of(params, list(final), "the parameters")
    return [Probe("training (composed)", f"{net.label}, {steps} steps", net.dtype,
                  (net.X, net.Y, net.params(), learning_rate, steps), {}, expected, extract, _net_context(net),
                  driver="nnparity.check.drivers:deep_training")]


#: What the composed checks call of the learner's functions (the drivers' loops).
COMPOSED_CALLS = {"training (composed)": ("L_model_forward", "compute_cost", "L_model_backward", "update_parameters")}

#: Arguments the course's own code updates in place (its older notebooks assign into the dict they are given):
#: function -> the positions of those arguments, never reported as changed in place.
UPDATED_IN_PLACE = {"update_parameters": {0}, "update_parameters_with_momentum": {0, 2},
                    "update_parameters_with_adam": {0, 2, 3}, "optimize": {0, 1}}

#: function -> (which networks, the probe), in the order of computation within each interface.
PROBES = {
    "sigmoid": ("deep", probe_sigmoid),
    "relu": ("deep", probe_relu),
    "softmax": (None, probe_softmax),
    "initialize_with_zeros": (None, probe_initialize_with_zeros),
    "layer_sizes": ("two-layer", probe_layer_sizes),
    "initialize_parameters": (None, probe_initialize_parameters),
    "initialize_parameters_deep": (None, probe_initialize_parameters_deep),
    "random_mini_batches": (None, probe_random_mini_batches),
    "propagate": ("logistic", probe_propagate),
    "forward_propagation": ("two-layer", probe_forward_propagation),
    "linear_forward": ("deep", probe_linear_forward),
    "linear_activation_forward": ("deep", probe_linear_activation_forward),
    "L_model_forward": ("deep", probe_L_model_forward),
    "forward_propagation_with_dropout": ("dropout", probe_forward_propagation_with_dropout),
    "compute_cost": ("deep", probe_compute_cost),
    "compute_cost_with_regularization": ("l2", probe_compute_cost_with_regularization),
    "sigmoid_backward": ("deep", probe_sigmoid_backward),
    "relu_backward": ("deep", probe_relu_backward),
    "linear_backward": ("deep", probe_linear_backward),
    "linear_activation_backward": ("deep", probe_linear_activation_backward),
    "L_model_backward": ("deep", probe_L_model_backward),
    "backward_propagation": ("two-layer", probe_backward_propagation),
    "backward_propagation_with_regularization": ("l2", probe_backward_propagation_with_regularization),
    "backward_propagation_with_dropout": ("dropout", probe_backward_propagation_with_dropout),
    "initialize_velocity": ("deep", probe_initialize_velocity),
    "initialize_adam": ("deep", probe_initialize_adam),
    "update_parameters": ("two-layer", probe_update_parameters),
    "update_parameters_with_momentum": ("deep", probe_update_parameters_with_momentum),
    "update_parameters_with_adam": ("deep", probe_update_parameters_with_adam),
    "update_lr": (None, probe_update_lr),
    "schedule_lr_decay": (None, probe_schedule_lr_decay),
    "gradient_check": (None, probe_gradient_check),
    "optimize": ("logistic", probe_optimize),
    "nn_model": ("two-layer", probe_nn_model),
    "predict": ("two-layer", probe_predict_two_layer),
}


def networks(kind) -> list[Net]:
    """The generated networks of a probe kind (cached per process: they cost a reference pass each)."""
    if kind not in _NETS:
        if kind == "l2":
            _NETS[kind] = [make_net(lbl, dims, dt, m, seed=20 + i, output_gradient="fused", lambd=0.7, kink=k)
                           for dt in ("float64", "float32")
                           for i, (lbl, dims, m, k) in enumerate((("m = 1", (3, 5, 3, 1), 1, False),
                                                                  ("relu kink", (4, 5, 3, 1), 6, True)))]
        elif kind == "labels":
            _NETS[kind] = [make_net(EVERY_LABEL[y], (5, 4, 3, 1), dt, 6, seed=40 + y, labels=y)
                           for dt in ("float64", "float32") for y in EVERY_LABEL]
        elif kind == "dropout":
            _NETS[kind] = [make_net(lbl, dims, dt, m, seed=30 + i, output_gradient="fused", keep_prob=0.8, kink=k)
                           for dt in ("float64", "float32")
                           for i, (lbl, dims, m, k) in enumerate((("m = 1", (3, 5, 3, 1), 1, False),
                                                                  ("relu kink", (4, 5, 3, 1), 6, True)))]
        else:
            _NETS[kind] = nets(kind)
    return _NETS[kind]


_NETS: dict = {}


def probes_for(function, parameters: tuple[str, ...]) -> list[Probe]:
    """Every probe of a course function; ``parameters`` (the learner's parameter names) pick between the
    course's signatures of one name (``predict(w, b, X)`` or ``predict(parameters, X)``; ``compute_cost(A2, Y)``
    or ``compute_cost(A2, Y, parameters)``)."""
    kind, probe = PROBES[function]
    if function == "predict" and len(parameters) >= 3 and parameters[:2] == ("w", "b"):
        kind, probe = "logistic", probe_predict_logistic
    if function == "predict" and parameters[:1] == ("X",):  # the application notebook's predict(X, y, parameters)
        return [_predict_probe(net, (net.X, net.Y, net.params()), "p") for net in networks("deep")]
    if function in ("forward_propagation", "backward_propagation") and tuple(parameters[:2]) == ONE_D:
        return (probe_forward_propagation_1d if function == "forward_propagation" else probe_backward_propagation_1d)()
    if kind is None:
        return probe()
    out = []
    for net in networks(kind) + (networks("labels") if function == "compute_cost" else []):
        if function == "compute_cost" and len(parameters) >= 3:
            out += probe_compute_cost(net, with_parameters=True)
        else:
            out += probe(net)
    return out


def recognise(functions) -> list[str]:
    """The interfaces a learner's module offers (by the functions that tell them apart), in check order."""
    one_d = tuple(functions.get("forward_propagation", ())[:2]) == ONE_D
    found = []
    for name, distinctive in DISTINCTIVE.items():
        present = [f for f in distinctive if f in functions]
        if name == "two-layer" and one_d:  # the gradient-checking notebook's 1-D functions, not the planar network's
            present = [f for f in present if f not in ("forward_propagation", "backward_propagation")]
        if name == "gradient-checking" and one_d:
            present.append("forward_propagation")
        if present:
            found.append(name)
    if "protocol" not in found and all(f in functions for f in ("forward_backward", "train")):
        found.append("protocol")
    if not found and any(f in functions for f in ("sigmoid", "compute_cost", "update_parameters", "predict")):
        found.append("deep" if "sigmoid" in functions and "predict" not in functions else "logistic")
    return found
