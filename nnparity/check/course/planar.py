"""Planar data classification with one hidden layer (the 2-layer notebook): layer_sizes, initialize_parameters, forward
and backward propagation, update_parameters, nn_model and predict(parameters, X)."""

from __future__ import annotations

import numpy as np

from nnparity.check.course.common import (
    Expect,
    Probe,
    _dict_of,
    _grads_expected,
    _grads_in,
    _init_probe,
    _item,
    _net_context,
    _predict_probe,
    _trajectory_bound,
    _update_bound,
)
from reference import initializers


def probe_initialize_parameters(_net=None):
    conventions = {"np.random.seed(2) and * 0.01 (the planar notebook)": (2, "small-random"),
                   "np.random.seed(1) and * 0.01 (the deep notebook's 2-layer model)": (1, "small-random")}
    return [_init_probe("initialize_parameters", f"n = {dims}", dims, list(dims), conventions, seed=2)
            for dims in ((2, 4, 1), (3, 1, 2))]


def probe_layer_sizes(net):
    n_x, n_y = net.X.shape[0], net.Y.shape[0]

    def extract(result):
        return {"n_x": _item(result, 0, "(n_x, n_h, n_y)"), "n_h": _item(result, 1, "(n_x, n_h, n_y)"),
                "n_y": _item(result, 2, "(n_x, n_h, n_y)")}
    sizes = {"n_x": n_x, "n_h": 4, "n_y": n_y}  # the notebook hard-codes n_h = 4
    return [Probe("layer_sizes", net.label, net.dtype, (net.X, net.Y), {},
                  {k: Expect(np.asarray(v), np.zeros(()), exact=True, check_dtype=False) for k, v in sizes.items()},
                  extract, {})]


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
