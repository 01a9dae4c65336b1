"""Convolution model, step by step (the convolution notebook): zero_pad, conv_single_step, conv_forward,
pool_forward, conv_backward, create_mask_from_window, distribute_value and pool_backward, in the course's layout
(examples first, channels last; ``hparameters`` dicts with ``stride``/``pad`` for conv, ``f``/``stride`` for pool).

Every expected value is ``reference.conv``'s, computed in float64 from the very inputs the learner's function is
given (``nnparity.convspec.inputs`` of a few ``ConvCase``s, cast to float64 and float32).  The shapes are chosen
so that each typical mistake shows: non-square images, more input than output channels, stride 2, a 1x1 filter
first (where an output size one too large still runs: its extra windows are empty, not out of range), pooling
windows that overlap and windows that leave a remainder.

**Bounds.**  Until ``nnparity.tolerances.conv_bounds(inputs, case)`` exists, each quantity's bound is derived
here: a sum of n rounded terms is within ``gamma_n |.|`` of its exact value, ``gamma_n = n u / (1 - n u)``
evaluated on the same computation done on absolute values (``reference.conv`` on ``|A_prev|``, ``|W|``,
``|b|``, ``|dZ|``), with n the number of terms plus one, for the learner's dtype plus float64's for the
reference's own rounding (``_bound``).

**pad = 0 in conv_backward.**  The notebook's ``dA_prev[i, :, :, :] = da_prev_pad[pad:-pad, pad:-pad, :]`` is
empty for pad = 0, and the notebook only ever calls conv_backward with pad >= 1; so conv_backward is checked on
pad >= 1 only, and the answer says so (``interfaces.NOTES``).  conv_forward and zero_pad, which have no such slice, are
also checked with pad = 0.
"""

from __future__ import annotations

import math

import numpy as np

from nnparity import tolerances as tol
from nnparity.check.course.common import Expect, Probe, _item, _u
from nnparity.convspec import ConvCase, inputs
from reference import conv as ref

DTYPES = ("float64", "float32")

#: The conv layers' cases, the first one first checked: a 1x1 filter with stride 2 (a mistaken stride or output
#: size shows without raising), then the notebook's own test shape (A_prev (2, 5, 7, 4), W (3, 3, 4, 8), pad 1,
#: stride 2), then pad = 0 with one example (forward only: see the module's docstring).
CONV_CASES = (
    ("1x1 filter, stride 2", ConvCase(m=2, n_H_prev=5, n_W_prev=4, n_C_prev=3, f=1, n_C=2, stride=2, pad=1,
                                      pool_f=1, pool_stride=1, seed=3)),
    ("the notebook's shapes, stride 2, pad 1", ConvCase(m=2, n_H_prev=5, n_W_prev=7, n_C_prev=4, f=3, n_C=8,
                                                        stride=2, pad=1, pool_f=1, pool_stride=1, seed=4)),
    ("pad = 0, m = 1", ConvCase(m=1, n_H_prev=4, n_W_prev=5, n_C_prev=2, f=2, n_C=3, stride=1, pad=0,
                                pool_f=1, pool_stride=1, seed=5)),
)

#: The pooling layers' cases: (label, A_prev's shape, hparameters).  Stride 2 first (windows that leave a
#: remainder), then overlapping windows (stride 1 < f).
POOL_CASES = (
    ("f = 2, stride 2", (2, 5, 7, 3), {"f": 2, "stride": 2}),
    ("f = 3, stride 1 (overlapping)", (1, 4, 5, 2), {"f": 3, "stride": 1}),
)

def _bound(n, absolute, dtype):
    """gamma_n of the learner's dtype and of float64 (the reference's own rounding) times the computation on
    absolute values, plus the smallest normal number."""
    if n < 1:
        raise ValueError(f"a sum of {n} terms")
    absolute = np.abs(np.asarray(absolute, dtype=np.float64))
    return (tol.gamma(n, _u(dtype)) + tol.gamma(n, _u("float64"))) * absolute + tol.UNDERFLOW[dtype]


def _conv_inputs(case, dtype):
    x = inputs(case.replace(dtype=dtype))
    return x["A_prev"], x["W"], x["b"]


def _f64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def probe_zero_pad():
    out = []
    for dtype in DTYPES:
        rng = np.random.RandomState(6)
        for label, shape, pad in (("pad = 2", (2, 3, 4, 5), 2), ("pad = 1, m = 1", (1, 3, 2, 1), 1),
                                  ("pad = 0", (2, 3, 4, 2), 0)):
            X = rng.randn(*shape).astype(dtype)
            X_pad = ref.zero_pad(X.astype(np.float64), pad)
            out.append(Probe("zero_pad", label, dtype, (X, pad), {},
                             {"X_pad": Expect(X_pad, np.zeros(X_pad.shape), exact=True)},
                             lambda r: {"X_pad": r}, {"X": X.astype(np.float64), "pad": pad, "m": shape[0]}))
    return out


def probe_conv_single_step():
    out = []
    for dtype in DTYPES:
        rng = np.random.RandomState(7)
        for label, shape in (("f = 3, n_C_prev = 4", (3, 3, 4)), ("f = 4, n_C_prev = 3", (4, 4, 3))):
            a, W, b = (rng.randn(*shape).astype(dtype), rng.randn(*shape).astype(dtype),
                       rng.randn(1, 1, 1).astype(dtype))
            a64, W64, b64 = _f64(a, W, b)
            Z = np.asarray(ref.conv_single_step(a64, W64, b64))
            B = _bound(a.size + 1, ref.conv_single_step(np.abs(a64), np.abs(W64), np.abs(b64)), dtype)
            out.append(Probe("conv_single_step", label, dtype, (a, W, b), {},
                             {"Z": Expect(Z, np.asarray(B), shapes=((), (1,), (1, 1, 1)))}, lambda r: {"Z": r},
                             {"a_slice_prev": a64, "W": W64, "b": b64}))
    return out


def _conv_forward_expect(A, W, b, hp, dtype):
    A64, W64, b64 = _f64(A, W, b)
    Z, _ = ref.conv_forward(A64, W64, b64, hp)
    absolute, _ = ref.conv_forward(np.abs(A64), np.abs(W64), np.abs(b64), hp)
    return Z, _bound(W.shape[0] * W.shape[1] * W.shape[2] + 1, absolute, dtype)


def probe_conv_forward():
    out = []
    for label, case in CONV_CASES:
        for dtype in DTYPES:
            A, W, b = _conv_inputs(case, dtype)
            hp = case.conv_hparameters
            Z, B = _conv_forward_expect(A, W, b, hp, dtype)

            def extract(result):
                return {"Z": _item(result, 0, "(Z, cache)")}
            out.append(Probe("conv_forward", label, dtype, (A, W, b, dict(hp)), {}, {"Z": Expect(Z, B)}, extract,
                             dict(zip(("A_prev", "W", "b"), _f64(A, W, b)), hparameters=dict(hp), m=case.m)))
    return out


def _pool_inputs(shape, dtype, seed):
    return np.random.RandomState(seed).randn(*shape).astype(dtype)


def probe_pool_forward():
    out = []
    for mode in ("max", "average"):
        for i, (label, shape, hp) in enumerate(POOL_CASES):
            for dtype in DTYPES:
                A_prev = _pool_inputs(shape, dtype, 8 + i)
                A64 = A_prev.astype(np.float64)
                A, _ = ref.pool_forward(A64, hp, mode)
                if mode == "max":  # a maximum is exact
                    B = np.zeros(A.shape)
                else:
                    B = _bound(hp["f"] ** 2 + 1, ref.pool_forward(np.abs(A64), hp, mode)[0], dtype)

                def extract(result):
                    return {"A": _item(result, 0, "(A, cache)")}
                out.append(Probe("pool_forward", f"{mode}, {label}", dtype, (A_prev, dict(hp), mode), {},
                                 {"A": Expect(A, B, exact=mode == "max")}, extract,
                                 {"A_prev": A64, "hparameters": dict(hp), "mode": mode, "m": shape[0]}))
    return out


def probe_conv_backward():
    out = []
    for label, case in CONV_CASES:
        if case.pad == 0:  # the notebook's [pad:-pad] is empty there (interfaces.NOTES)
            continue
        for dtype in DTYPES:
            A, W, b = _conv_inputs(case, dtype)
            hp = case.conv_hparameters
            dZ = np.random.RandomState(case.seed + 10).randn(*case.shapes()["Z"]).astype(dtype)
            A64, W64, b64, dZ64 = _f64(A, W, b, dZ)
            dA_prev, dW, db = ref.conv_backward(dZ64, (A64, W64, b64, hp))
            absolute = ref.conv_backward(np.abs(dZ64), (np.abs(A64), np.abs(W64), np.abs(b64), hp))
            windows = case.m * case.n_H * case.n_W
            cover = math.ceil(case.f / case.stride) ** 2 * case.n_C  # the terms that reach one cell of dA_prev
            expected = {"dA_prev": Expect(dA_prev, _bound(cover + 1, absolute[0], dtype)),
                        "dW": Expect(dW, _bound(windows + 1, absolute[1], dtype)),
                        "db": Expect(db, _bound(windows + 1, absolute[2], dtype))}

            def extract(result):
                what = "(dA_prev, dW, db)"
                return {"dA_prev": _item(result, 0, what), "dW": _item(result, 1, what), "db": _item(result, 2, what)}
            out.append(Probe("conv_backward", label, dtype, (dZ, (A, W, b, dict(hp))), {}, expected, extract,
                             {"dZ": dZ64, "A_prev": A64, "W": W64, "b": b64, "hparameters": dict(hp), "m": case.m}))
    return out


def probe_create_mask_from_window():
    out = []
    for dtype in DTYPES:
        rng = np.random.RandomState(9)
        for label, shape in (("2 x 3 window", (2, 3)), ("3 x 3 window", (3, 3))):
            x = rng.randn(*shape).astype(dtype)
            mask = ref.create_mask_from_window(x.astype(np.float64))
            out.append(Probe("create_mask_from_window", label, dtype, (x,), {},
                             {"mask": Expect(mask.astype(np.float64), np.zeros(shape), exact=True, check_dtype=False)},
                             lambda r: {"mask": r}, {"x": x.astype(np.float64)}))
    return out


def probe_distribute_value():
    out = []
    for dtype in DTYPES:
        for label, dz, shape in (("dz = 2, 2 x 2", 2.0, (2, 2)), ("dz = -0.7, 3 x 2", -0.7, (3, 2))):
            dz_ = np.asarray(dz, dtype=dtype)[()]
            a = ref.distribute_value(np.float64(dz_), shape)
            out.append(Probe("distribute_value", label, dtype, (dz_, shape), {},
                             {"a": Expect(a, _bound(2, a, dtype))}, lambda r: {"a": r},
                             {"dz": float(dz_), "shape": shape}))
    return out


def probe_pool_backward():
    out = []
    for mode in ("max", "average"):
        for i, (label, shape, hp) in enumerate(POOL_CASES):
            for dtype in DTYPES:
                A_prev = _pool_inputs(shape, dtype, 8 + i)
                A64 = A_prev.astype(np.float64)
                n_H, n_W = ((n - hp["f"]) // hp["stride"] + 1 for n in shape[1:3])
                dA = np.random.RandomState(12 + i).randn(shape[0], n_H, n_W, shape[3]).astype(dtype)
                dA64 = dA.astype(np.float64)
                dA_prev = ref.pool_backward(dA64, (A64, hp), mode)
                cover = math.ceil(hp["f"] / hp["stride"]) ** 2  # the windows that reach one cell
                B = _bound(cover + 2, ref.pool_backward(np.abs(dA64), (A64, hp), mode), dtype)
                out.append(Probe("pool_backward", f"{mode}, {label}", dtype, (dA, (A_prev, dict(hp)), mode), {},
                                 {"dA_prev": Expect(dA_prev, B)}, lambda r: {"dA_prev": r},
                                 {"dA": dA64, "A_prev": A64, "hparameters": dict(hp), "mode": mode, "m": shape[0]}))
    return out
