"""The regularisation and dropout notebook (3 layers: relu, relu, sigmoid; dZ3 = A3 - Y): L2's cost and backward
propagation, dropout's forward and backward propagation."""

from __future__ import annotations

import numpy as np

from nnparity.check.course.common import (
    Expect,
    LayoutError,
    Probe,
    _cost_expect,
    _gradients,
    _grads_expected,
    _item,
    _net_context,
    _u,
)


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
