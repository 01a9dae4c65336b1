"""Logistic regression with a neural network mindset: initialize_with_zeros, propagate, optimize and
predict(w, b, X)."""

from __future__ import annotations

import numpy as np

from nnparity.check.course.common import (
    Expect,
    Probe,
    _cost_expect,
    _item,
    _key,
    _net_context,
    _predict_probe,
    _trajectory_bound,
)


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


def probe_predict_logistic(net):
    w, b = net.P["W1"].T.copy(), net.P["b1"][0, 0]
    return [_predict_probe(net, (w, b, net.X), "Y_prediction")]


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
