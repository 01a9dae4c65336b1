"""The convolution notebook's known mistakes, as data: ``CONV_SIGNATURES``, the table ``diagnosis.diagnose`` reads
for the functions of ``CONV_FUNCTIONS`` (instead of the dense layers' table, whose 1/m and transposes are not the
conv layers' mistakes).

Each matcher recomputes what the buggy code returns from the call's inputs (``context``: ``A_prev``, ``W``, ``b``,
``hparameters``, ``dZ``, ``dA``, ``mode``, ``x``, ``dz``, ``shape``), with ``reference.conv`` wherever it can express
the bug and with the window loops below (``_windows``: a separate stride per axis) where it cannot, and tests
whether the learner's value is that alternative, to the tolerance of ``diagnosis._View.close``.  Nothing reads the
learner's source.
"""

from __future__ import annotations

import itertools

import numpy as np

from nnparity.check.signature import Signature
from reference import conv as ref

CONV_FUNCTIONS = frozenset({"zero_pad", "conv_single_step", "conv_forward", "pool_forward", "conv_backward",
                            "create_mask_from_window", "distribute_value", "pool_backward"})

_AXES = ("examples", "height", "width", "channels")
_BACKWARD_INDEX = {"dA_prev": 0, "dW": 1, "db": 2}


def _f64(ctx, *keys):
    return tuple(np.asarray(ctx[k], dtype=np.float64) for k in keys)


def _windows(n_H, n_W, f, strides):
    """(h, w, vertical slice, horizontal slice) of every window, each axis with its own stride."""
    sv, sh = strides
    for h in range(n_H):
        for w in range(n_W):
            yield h, w, slice(h * sv, h * sv + f), slice(w * sh, w * sh + f)


def _conv_forward(A_prev, W, b, pad, strides, out_hw):
    A_pad = ref.zero_pad(A_prev, pad)
    f = W.shape[0]
    Z = np.zeros((A_prev.shape[0], *out_hw, W.shape[3]))
    for h, w, rows, cols in _windows(*out_hw, f, strides):
        Z[:, h, w, :] = np.tensordot(A_pad[:, rows, cols, :], W, axes=([1, 2, 3], [0, 1, 2])) + b.reshape(-1)
    return Z


def _pool_forward(A_prev, f, strides, mode, out_hw):
    A = np.zeros((A_prev.shape[0], *out_hw, A_prev.shape[3]))
    for h, w, rows, cols in _windows(*out_hw, f, strides):
        window = A_prev[:, rows, cols, :]
        A[:, h, w, :] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return A


def _conv_backward(dZ, A_prev, W, pad, strides):
    A_pad = ref.zero_pad(A_prev, pad)
    dA_pad = np.zeros(A_pad.shape)
    f = W.shape[0]
    dW, db = np.zeros(W.shape), dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, -1)
    for h, w, rows, cols in _windows(dZ.shape[1], dZ.shape[2], f, strides):
        dA_pad[:, rows, cols, :] += np.tensordot(dZ[:, h, w, :], W, axes=([1], [3]))
        dW += np.tensordot(A_pad[:, rows, cols, :], dZ[:, h, w, :], axes=([0], [0]))
    n_H, n_W = A_prev.shape[1:3]
    return dA_pad[:, pad:pad + n_H, pad:pad + n_W, :], dW, db


def _pool_backward(dA, A_prev, f, strides, route):
    """``route(window (f, f) of one channel, or (f, f, n_C) with route.channels, dA) -> what the window gets``."""
    dA_prev = np.zeros(A_prev.shape)
    for i in range(dA.shape[0]):
        for h, w, rows, cols in _windows(dA.shape[1], dA.shape[2], f, strides):
            for c in range(dA.shape[3]):
                if getattr(route, "channels", False):
                    dA_prev[i, rows, cols, :] += route(A_prev[i, rows, cols, :], dA[i, h, w, c])
                else:
                    dA_prev[i, rows, cols, c] += route(A_prev[i, rows, cols, c], dA[i, h, w, c])
    return dA_prev


def _max_mask(x, d):
    return (x == np.max(x)) * d


def _min_mask(x, d):
    return (x == np.min(x)) * d


def _everywhere(x, d):
    return np.ones(x.shape) * d


def _across_channels(x, d):
    return (x == np.max(x)) * d


_across_channels.channels = True


def _average(x, d):
    return np.ones(x.shape) * d / x.size


# ---------------------------------------------------------------------------------------------------
# Matchers: each returns the message's and hint's fields, or None.

def _stride_forgotten(view):
    """vert_start = h (or horiz_start = w) without the stride: the windows move by one cell."""
    ctx, fn = view.ctx, view.div.function
    hp = ctx["hparameters"]
    s = hp["stride"]
    if s == 1:
        return None
    for strides, what in (((1, 1), "vert_start = h and horiz_start = w"), ((1, s), "vert_start = h"),
                          ((s, 1), "horiz_start = w")):
        if fn == "conv_forward":
            A_prev, W, b = _f64(ctx, "A_prev", "W", "b")
            alt = _conv_forward(A_prev, W, b, hp["pad"], strides, view.E.shape[1:3])
        elif fn == "pool_forward":
            alt = _pool_forward(_f64(ctx, "A_prev")[0], hp["f"], strides, ctx["mode"], view.E.shape[1:3])
        elif fn == "conv_backward":
            dZ, A_prev, W = _f64(ctx, "dZ", "A_prev", "W")
            alt = _conv_backward(dZ, A_prev, W, hp["pad"], strides)[_BACKWARD_INDEX[view.div.quantity]]
        elif fn == "pool_backward":
            dA, A_prev = _f64(ctx, "dA", "A_prev")
            alt = _pool_backward(dA, A_prev, hp["f"], strides, _max_mask if ctx["mode"] == "max" else _average)
        else:
            return None
        if view.explains(alt):
            return {"what": what, "stride": s}
    return None


def _output_size(view):
    """n_H, n_W one too few or one too many: the windows both compute hold the expected values."""
    G, E = view.G, view.E
    if G is None or G.ndim != 4 or E.ndim != 4 or G.shape[0] != E.shape[0] or G.shape[3] != E.shape[3]:
        return None
    dh, dw = G.shape[1] - E.shape[1], G.shape[2] - E.shape[2]
    if (dh, dw) == (0, 0) or abs(dh) > 1 or abs(dw) > 1:
        return None
    h, w = min(G.shape[1], E.shape[1]), min(G.shape[2], E.shape[2])
    if h == 0 or w == 0 or not view.close(G[:, :h, :w], E[:, :h, :w], scale=1.0):
        return None
    more = dh > 0 or dw > 0
    size = "int((n_H_prev - f) / stride)" if view.div.function == "pool_forward" else \
        "int((n_H_prev - f + 2 * pad) / stride)"
    return {"shape": G.shape, "expected": E.shape, "more": "one more" if more else "one fewer",
            "formula": f"{size} + 2" if more else f"{size}, without the + 1"}


def _bias(view):
    """b left out, added to every cell of the window, to every position, twice, or one channel's b for all."""
    ctx, fn = view.ctx, view.div.function
    if fn == "conv_single_step":
        a, W, b = _f64(ctx, "a_slice_prev", "W", "b")
        plain, bias = np.sum(a * W), b.reshape(())
        f, n_C_prev = W.shape[0], W.shape[2]
    else:
        A_prev, W, b = _f64(ctx, "A_prev", "W", "b")
        plain = ref.conv_forward(A_prev, W, np.zeros(b.shape), ctx["hparameters"])[0]
        bias = b
        f, n_C_prev = W.shape[0], W.shape[2]
    variants = [(0, "without b: the bias is never added"),
                (f * f * n_C_prev, f"with b added to each of the f*f*n_C_prev = {f * f * n_C_prev} products of the "
                                   "window (inside the sum), not once"),
                (f * f * n_C_prev + 1, f"with b added to each of the f*f*n_C_prev = {f * f * n_C_prev} products "
                                       "of the window (inside the sum), and once more"),
                (f * f, f"with b added at each of the f*f = {f * f} positions of the window, not once"),
                (2, "with b added twice")]
    for k, how in variants:
        if k != 1 and view.explains(plain + k * bias):
            return {"how": how}
    if fn == "conv_forward" and b.size > 1:
        for alt, how in ((plain + b.reshape(-1)[0], "with b[:, :, :, 0] for every channel, not the channel's own"),
                         (plain + b.sum(), "with every channel's b added at each position, not the channel's own")):
            if view.explains(alt):
                return {"how": how}
    return None


def _transposed_kernel(view):
    """W[j, i] where the course has W[i, j]: the filter's two spatial axes swapped."""
    ctx, fn = view.ctx, view.div.function
    q = view.div.quantity
    if fn == "conv_single_step":
        a, W, b = _f64(ctx, "a_slice_prev", "W", "b")
        alt = np.sum(a * W.swapaxes(0, 1)) + b.reshape(())
    elif fn == "conv_forward":
        A_prev, W, b = _f64(ctx, "A_prev", "W", "b")
        alt = ref.conv_forward(A_prev, W.swapaxes(0, 1), b, ctx["hparameters"])[0]
    elif fn == "conv_backward" and q == "dW":
        alt = view.E.swapaxes(0, 1)
    elif fn == "conv_backward" and q == "dA_prev":
        dZ, A_prev, W, b = _f64(ctx, "dZ", "A_prev", "W", "b")
        alt = ref.conv_backward(dZ, (A_prev, W.swapaxes(0, 1), b, ctx["hparameters"]))[0]
    else:
        return None
    return {} if view.explains(alt) else None


def _not_summed(view):
    """dW and db not summed over the examples: divided by m, the last example's alone, the last window's alone."""
    ctx, q = view.ctx, view.div.quantity
    if q not in ("dW", "db"):
        return None
    dZ, A_prev, W, b = _f64(ctx, "dZ", "A_prev", "W", "b")
    hp = ctx["hparameters"]
    m = A_prev.shape[0]
    index = _BACKWARD_INDEX[q]
    variants = []
    if m > 1:
        variants += [(view.E / m, f"is 1/m = 1/{m} of the expected: divided by the number of examples"),
                     (ref.conv_backward(dZ[-1:], (A_prev[-1:], W, b, hp))[index],
                      f"holds the last of the m = {m} examples' sums alone: overwritten for each example, not added")]
    A_pad = ref.zero_pad(A_prev, hp["pad"])
    f, s = W.shape[0], hp["stride"]
    h, w = dZ.shape[1] - 1, dZ.shape[2] - 1
    window = A_pad[-1, h * s:h * s + f, w * s:w * s + f, :]
    last = (window[..., None] * dZ[-1, h, w, :] if q == "dW" else dZ[-1, h, w, :].reshape(1, 1, 1, -1))
    variants.append((last, "holds the last window's term alone: assigned with = where the sum needs +="))
    for alt, what in variants:
        if view.explains(alt):
            return {"what": what}
    return None


def _average_not_divided(view):
    """distribute_value giving every cell the whole dz (or dividing by one side of the window only)."""
    ctx, fn = view.ctx, view.div.function
    if fn == "distribute_value":
        dz, shape = float(ctx["dz"]), tuple(ctx["shape"])
        n_H, n_W = shape
        variants = [(np.ones(shape) * dz, f"the whole dz, not dz / (n_H * n_W) = dz / {n_H * n_W}"),
                    (np.ones(shape) * dz / n_H, f"dz / n_H = dz / {n_H}, not dz / (n_H * n_W)"),
                    (np.ones(shape) * dz / n_W, f"dz / n_W = dz / {n_W}, not dz / (n_H * n_W)")]
    elif fn == "pool_backward" and ctx["mode"] == "average":
        dA, A_prev = _f64(ctx, "dA", "A_prev")
        f = ctx["hparameters"]["f"]
        variants = [(ref.pool_backward(dA * f * f, (A_prev, ctx["hparameters"]), "average"),
                     f"the whole dA, not dA / (f * f) = dA / {f * f}")]
    else:
        return None
    for alt, what in variants:
        if view.explains(alt):
            return {"what": what}
    return None


def _max_wrong_cell(view):
    """The gradient of a max-pool window routed to its minimum, to every cell, or to the maximum across channels."""
    ctx, fn = view.ctx, view.div.function
    if fn == "create_mask_from_window":
        x = _f64(ctx, "x")[0]
        variants = [((x == np.min(x)).astype(float), "marks the window's minimum (np.min), not its maximum")]
    elif fn == "pool_backward" and ctx["mode"] == "max":
        dA, A_prev = _f64(ctx, "dA", "A_prev")
        f, s = ctx["hparameters"]["f"], ctx["hparameters"]["stride"]
        variants = [(_pool_backward(dA, A_prev, f, (s, s), _min_mask),
                     "sends dA to each window's minimum, not its maximum"),
                    (_pool_backward(dA, A_prev, f, (s, s), _everywhere),
                     "sends dA to every cell of the window: the mask is not applied"),
                    (_pool_backward(dA, A_prev, f, (s, s), _across_channels),
                     "sends dA to the maximum of the window across all channels (a_prev[..., :]), not channel c's")]
    else:
        return None
    for alt, what in variants:
        if view.explains(alt):
            return {"what": what}
    return None


def _pad_axes(view):
    """np.pad on other axes than height and width: the examples' or the channels' axis padded too, or instead."""
    ctx = view.ctx
    X, pad = _f64(ctx, "X")[0], int(ctx["pad"])
    if pad == 0 or view.G is None or view.G.ndim != 4:
        return None
    for n in range(1, 5):
        for axes in itertools.combinations(range(4), n):
            if axes == (1, 2):
                continue
            alt = np.pad(X, [(pad, pad) if a in axes else (0, 0) for a in range(4)])
            if view.explains(alt):
                names = [_AXES[a] for a in axes]
                return {"shape": view.G.shape, "axes": ", ".join(names[:-1]) + (" and " if n > 1 else "") + names[-1]}
    return None


_PAD_HINT = "pad height and width only: X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), " \
            "mode='constant', constant_values=(0, 0))"

#: The conv notebook's known mistakes, most specific first.
CONV_SIGNATURES: tuple[Signature, ...] = (
    Signature("conv-pad-wrong-axes", frozenset(), _pad_axes,
              "{q} has shape {shape}: X padded on its {axes} axes; the course pads height and width only",
              _PAD_HINT, frozenset({"zero_pad"})),
    Signature("conv-output-size-off-by-one", frozenset(), _output_size,
              "{q} has shape {shape}, {more} row and column than the expected {expected}, and the windows both "
              "compute hold the expected values: the output size is {formula}",
              "the course's output size: n_H = int((n_H_prev - f + 2 * pad) / stride) + 1, likewise n_W "
              "(pooling: pad = 0)", frozenset({"conv_forward", "pool_forward"})),
    Signature("conv-stride-forgotten", frozenset(), _stride_forgotten,
              "{q} is what windows that move by one cell give ({what}): the stride = {stride} is left out of the "
              "slice",
              "move each window by the stride: vert_start = h * stride, horiz_start = w * stride, "
              "vert_end = vert_start + f, horiz_end = horiz_start + f",
              frozenset({"conv_forward", "pool_forward", "conv_backward", "pool_backward"})),
    Signature("conv-bias-per-position", frozenset(), _bias,
              "{q} is the convolution {how}",
              "add each filter's bias once per output value: Z = np.sum(a_slice_prev * W) + b.item() in "
              "conv_single_step, with b[:, :, :, c] for channel c", frozenset({"conv_single_step", "conv_forward"})),
    Signature("conv-transposed-kernel", frozenset(), _transposed_kernel,
              "{q} is what the filter with its two spatial axes swapped gives (W[j, i] where the course has W[i, j])",
              "keep W's layout (f, f, n_C_prev, n_C), no transpose: Z = np.sum(a_slice_prev * W[:, :, :, c]) + b, "
              "dA_prev window += W[:, :, :, c] * dZ[i, h, w, c]",
              frozenset({"conv_single_step", "conv_forward", "conv_backward"})),
    Signature("conv-dw-not-summed", frozenset(), _not_summed,
              "{q} {what}",
              "dW and db are sums over every example and window, without 1/m: dW[:, :, :, c] += a_slice * "
              "dZ[i, h, w, c], db[:, :, :, c] += dZ[i, h, w, c]", frozenset({"conv_backward"})),
    Signature("conv-average-not-divided", frozenset(), _average_not_divided,
              "{q} gives every cell of the window {what}: the average pool's gradient is not averaged",
              "share dz evenly over the window: average = dz / (n_H * n_W); a = np.ones(shape) * average",
              frozenset({"distribute_value", "pool_backward"})),
    Signature("conv-max-pool-wrong-cell", frozenset(), _max_wrong_cell,
              "{q} {what}",
              "route dA to the maximum of channel c's window only: mask = (x == np.max(x)) with "
              "x = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]; "
              "dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += mask * dA[i, h, w, c]",
              frozenset({"create_mask_from_window", "pool_backward"})),
)
