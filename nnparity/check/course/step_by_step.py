"""Building your deep neural network, step by step (the deep notebook): initialize_parameters_deep, the linear and
activation functions forward and backward, L_model_forward, compute_cost, L_model_backward (and its saturated
output), and the learner's functions composed into training."""

from __future__ import annotations

import dataclasses

import numpy as np

from nnparity import tolerances as tol
from nnparity.check.course.common import (
    Expect,
    LayoutError,
    Net,
    Probe,
    _cost_expect,
    _dict_of,
    _grads_expected,
    _init_probe,
    _item,
    _key,
    _net_context,
    _trajectory_bound,
    make_net,
)
from nnparity.check.course.dnn_utils import _dAL
from reference.model import model_backward, model_forward


def probe_initialize_parameters_deep(_net=None):
    conventions = {"np.random.seed(3) and * 0.01 (the step-by-step notebook)": (3, "small-random"),
                   "np.random.seed(1) and / sqrt(n[l-1]) (the application notebook)": (1, "inv-sqrt"),
                   "np.random.seed(3) and / sqrt(n[l-1])": (3, "inv-sqrt")}
    return [_init_probe("initialize_parameters_deep", f"layer_dims = {list(dims)}", (list(dims),), list(dims),
                        conventions, seed=3) for dims in ((5, 4, 3), (3, 1, 2, 1))]


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
