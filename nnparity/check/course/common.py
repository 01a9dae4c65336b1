"""What every notebook's probes share: the expected quantity (``Expect``) and the call (``Probe``), the generated
networks (``Net``, ``make_net``), the reading of a result in the course's layout, and the expectations several
notebooks build alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnparity import tolerances as tol
from nnparity.spec import Case
from reference import initializers, utils
from reference.model import model_backward, model_forward


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


def _net_context(net):
    return {"X": net.X.astype(float), "Y": net.Y.astype(float), "m": net.m,
            "parameters": {k: v.astype(float) for k, v in net.P.items()}, "activations": net.case.activations(),
            "AL": net.C[f"A{net.case.L}"], "lambd": net.case.lambd, "keep_prob": net.case.keep_prob,
            "D": None if net.masks is None else {l: D for l, D in enumerate(net.masks, start=1)},
            "cache": net.C}


def _cost_expect(net):
    return Expect(np.asarray(net.C["cost"]), np.asarray(net.B["cost"]), shapes=((),))


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


def _grads_in(net, L):
    return {f"d{k}": net.cast(net.C[f"d{k}"]) for k in net.P if int(k[1:]) <= L}


def _predict_probe(net, args, name):
    AL = net.C[f"A{net.case.L}"]
    ties = np.abs(AL - 0.5) <= net.B[f"A{net.case.L}"]
    expected = {name: Expect((AL > 0.5).astype(float), np.zeros(AL.shape), exact=True, check_dtype=False,
                             ties=ties)}
    return Probe("predict", net.label, net.dtype, args, {}, expected, lambda r: {name: r}, {"AL": AL})


def _scalar_probe(function, label, args, kwargs, value, bound, context):
    return Probe(function, label, "float64", args, kwargs,
                 {function: Expect(np.asarray(value, dtype=np.float64), np.asarray(bound), shapes=((), (1,), (1, 1)),
                                   check_dtype=False)}, lambda r: {function: r}, context)


def _trajectory_bound(values):
    """The project's float64 trajectory gate: FLOAT64_TRAJECTORY relative to the largest magnitude."""
    values = np.asarray(values, dtype=np.float64)
    scale = np.max(np.abs(values)) if values.size else 0.0
    return np.full(values.shape, tol.FLOAT64_TRAJECTORY * scale + tol.UNDERFLOW["float64"])
