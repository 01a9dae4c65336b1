"""The optimisation notebook: random mini-batches, momentum and Adam (their initialisation and their updates), and the
decays of the learning rate."""

from __future__ import annotations

import numpy as np

from nnparity import tolerances as tol
from nnparity.check.course.common import (
    Expect,
    LayoutError,
    Probe,
    _dict_of,
    _grads_in,
    _item,
    _scalar_probe,
    _u,
    _update_bound,
)
from reference import optimizers, utils


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
