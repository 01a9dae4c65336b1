"""The course's convolutional layers computed on whole arrays: ``reference.conv``'s functions, vectorised.

The same functions, with the same names, signatures and semantics, in the same order as ``reference.conv``
(the loops, the source of truth), so that the two read side by side:

* the convolution loops over the f x f kernel offsets only: at offset (i, j) the cells every window reads there
  (one strided view of the padded images) times ``W[i, j]``, a product over the channels for all windows at once;
  the pooling reads every window at once (``sliding_window_view``, strided: the course's ``a_prev_slice`` for
  every example, h, w and channel);
* conv_backward loops over the kernel offsets too: at offset (i, j) every window's gradient goes back to
  the cell it read there with one strided ``+=`` (within one offset every window writes a different cell, so no
  update is lost), and ``dW[i, j]`` is one product of those cells with dZ, summed over examples and windows;
* max-pool backward sends dA to EVERY tied maximum of its window (the course's ``create_mask_from_window``),
  average-pool backward spreads dA / (f f) over the window; the offsets are visited last to first, so that every
  cell receives its windows' contributions in the loops' order (h, then w) and ``pool_backward`` is bit-for-bit
  the loops' result;
* the dtype of the inputs is kept (float32 in, float32 out), and pad = 0 works (no ``[pad:-pad]`` slice).

``parity_tests/test_conv_reference.py`` proves it equal to the loops on every ``nnparity.convspec.conv_grid``
case, within the derived rounding bound (``nnparity.tolerances.conv_bounds``: the two sum in different orders)
and to 1e-13 norm-wise in float64.  ``nnparity.tolerances`` uses it to evaluate those bounds.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnparity.convspec import output_size


def window_view(X, f, stride, n_H, n_W):
    """Every f x f window of X (m, H, W, C) at the given stride: a view (m, n_H, n_W, f, f, C), no copy.

    A helper of this module's functions (``nnparity.tolerances.conv_bounds`` reads the pooling windows with it
    too), not one of the course's functions."""
    view = sliding_window_view(X, (f, f), axis=(1, 2))  # (m, H - f + 1, W - f + 1, C, f, f)
    view = view[:, : (n_H - 1) * stride + 1 : stride, : (n_W - 1) * stride + 1 : stride]
    return view.transpose(0, 1, 2, 4, 5, 3)


def scatter_windows(target, contributions, stride):
    """target[:, h s + i, w s + j, :] += contributions[:, h, w, i, j, :] for every window (h, w) and offset (i, j).

    The offsets are visited last to first, so that every cell receives its windows in increasing (h, w), the
    loops' order.  A helper, like ``window_view``."""
    _, n_H, n_W, f, _, _ = contributions.shape
    for i in reversed(range(f)):
        for j in reversed(range(f)):
            target[:, i : i + (n_H - 1) * stride + 1 : stride, j : j + (n_W - 1) * stride + 1 : stride, :] += (
                contributions[:, :, :, i, j, :])
    return target


def zero_pad(X, pad):
    """Pad the height and width of every image of X (m, n_H, n_W, n_C) with ``pad`` zeros on each side."""
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)


def conv_single_step(a_slice_prev, W, b):
    """One window: Z = sum(a_slice_prev * W) + b, for a slice (f, f, n_C_prev) and one filter W (f, f, n_C_prev)."""
    Z = np.vdot(a_slice_prev, W)  # the whole window at once (vdot flattens both; real values: no conjugate)
    return Z + np.asarray(b).reshape(()).astype(Z.dtype)


def conv_forward(A_prev, W, b, hparameters):
    """Z[i, h, w, c] = sum(window (h, w) of padded example i * W[..., c]) + b[..., c], all windows at once.

    One kernel offset (i, j) at a time: the cells every window reads there, times W[i, j] (a product over the
    channels), added to Z.  n_H = floor((n_H_prev + 2 pad - f) / stride) + 1, likewise n_W.  Returns Z and the
    cache (A_prev, W, b, hparameters)."""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, f, n_C_prev, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = output_size(n_H_prev, f, pad, stride)
    n_W = output_size(n_W_prev, f, pad, stride)
    A_prev_pad = zero_pad(A_prev, pad)
    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for i in range(f):
        rows = slice(i, i + (n_H - 1) * stride + 1, stride)  # the cells at offset i of every window
        for j in range(f):
            cols = slice(j, j + (n_W - 1) * stride + 1, stride)
            Z += A_prev_pad[:, rows, cols, :] @ W[i, j]
    Z += b.reshape(n_C)
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def pool_forward(A_prev, hparameters, mode="max"):
    """A[i, h, w, c] = max (or mean) of the f x f window (h, w) of channel c; no padding.

    n_H = floor((n_H_prev - f) / stride) + 1.  Returns A and the cache (A_prev, hparameters)."""
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = output_size(n_H_prev, f, 0, stride)
    n_W = output_size(n_W_prev, f, 0, stride)
    windows = window_view(A_prev, f, stride, n_H, n_W)
    if mode == "max":
        A = windows.max(axis=(3, 4))
    elif mode == "average":
        A = windows.mean(axis=(3, 4))
    else:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    A = np.ascontiguousarray(A, dtype=A_prev.dtype)
    cache = (A_prev, hparameters)
    return A, cache


def conv_backward(dZ, cache):
    """dA_prev, dW, db of conv_forward, given dZ = dJ/dZ.

    One kernel offset (i, j) at a time: every window (h, w) sends ``W[i, j] dZ[:, h, w]`` (a product over the
    channels, all windows at once) back to the cell it read at that offset, and dW[i, j] is the sum over the
    examples and windows of that cell's values times dZ; db is the sum of dZ."""
    A_prev, W, b, hparameters = cache
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, f, n_C_prev, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H, n_W, n_C = dZ.shape
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros(A_prev_pad.shape, dtype=A_prev.dtype)
    dW = np.zeros(W.shape, dtype=W.dtype)
    for i in range(f):
        rows = slice(i, i + (n_H - 1) * stride + 1, stride)  # the cells at offset i of every window
        for j in range(f):
            cols = slice(j, j + (n_W - 1) * stride + 1, stride)
            dA_prev_pad[:, rows, cols, :] += dZ @ W[i, j].T
            dW[i, j] = np.tensordot(A_prev_pad[:, rows, cols, :], dZ, axes=([0, 1, 2], [0, 1, 2]))
    db = dZ.sum(axis=(0, 1, 2)).reshape(b.shape).astype(b.dtype, copy=False)
    # Not the course's [pad:-pad], which is empty for pad = 0.
    dA_prev = np.ascontiguousarray(dA_prev_pad[:, pad : pad + n_H_prev, pad : pad + n_W_prev, :])
    return dA_prev, dW, db


def create_mask_from_window(x):
    """True where x equals its maximum: every tied maximum gets the gradient (the course's choice)."""
    return x == np.max(x)


def distribute_value(dz, shape):
    """Spread dz evenly over a window of ``shape``: each cell gets dz / (n_H n_W)."""
    n_H, n_W = shape
    return np.full(shape, dz / (n_H * n_W), dtype=np.asarray(dz).dtype)


def pool_backward(dA, cache, mode="max"):
    """dA_prev of pool_forward: max sends dA to the window's maximum (every tied one), average spreads it evenly."""
    A_prev, hparameters = cache
    stride, f = hparameters["stride"], hparameters["f"]
    m, n_H, n_W, n_C = dA.shape
    dA_b = dA[:, :, :, None, None, :]
    if mode == "max":
        windows = window_view(A_prev, f, stride, n_H, n_W)  # (m, n_H, n_W, f, f, n_C)
        mask = windows == windows.max(axis=(3, 4), keepdims=True)  # every window's create_mask_from_window
        contributions = mask * dA_b
    elif mode == "average":
        contributions = np.broadcast_to(dA_b / (f * f), (m, n_H, n_W, f, f, n_C))  # distribute_value, every window
    else:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    dA_prev = scatter_windows(np.zeros(A_prev.shape, dtype=A_prev.dtype), contributions, stride)
    return dA_prev


def forward_backward(A_prev, W, b, dA, case):
    """The contract's chain (``nnparity.convspec``): conv, pool, then back with the upstream gradient dA."""
    Z, conv_cache = conv_forward(A_prev, W, b, case.conv_hparameters)
    A, pool_cache = pool_forward(Z, case.pool_hparameters, case.mode)
    dZ = pool_backward(dA, pool_cache, case.mode)
    dA_prev, dW, db = conv_backward(dZ, conv_cache)
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db}
