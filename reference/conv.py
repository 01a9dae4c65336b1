"""The course's convolutional layers, forward and hand-written backward, in NumPy loops.

Written the way "Convolution model - Step by Step" derives them, one window at a time: this is the readable
definition and the source of truth.  ``reference.conv_vectorised`` has the same functions computed on whole
arrays, proven equal to these to rounding; ``torch_impl.conv``, ``tf_impl.conv`` and ``jax_impl.conv`` have the
same functions in the same order with the frameworks' own ops.

Layout (``nnparity.convspec``): examples first, channels last.  ``A_prev (m, n_H_prev, n_W_prev, n_C_prev)``,
``W (f, f, n_C_prev, n_C)``, ``b (1, 1, 1, n_C)``, ``hparameters`` a dict with ``stride`` and ``pad`` (conv) or
``f`` and ``stride`` (pool).  ``dW`` and ``db`` are sums over the examples, as the course writes them.
"""

import numpy as np

from nnparity.convspec import output_size


def zero_pad(X, pad):
    """Pad the height and width of every image of X (m, n_H, n_W, n_C) with ``pad`` zeros on each side."""
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)


def conv_single_step(a_slice_prev, W, b):
    """One window: Z = sum(a_slice_prev * W) + b, for a slice (f, f, n_C_prev) and one filter W (f, f, n_C_prev)."""
    s = a_slice_prev * W
    Z = np.sum(s)
    Z = Z + b.item()
    return Z


def conv_forward(A_prev, W, b, hparameters):
    """Z[i, h, w, c] = conv_single_step(window (h, w) of padded example i, W[..., c], b[..., c]).

    n_H = floor((n_H_prev + 2 pad - f) / stride) + 1, likewise n_W.  Returns Z and the cache (A_prev, W, b,
    hparameters)."""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, f, n_C_prev, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = output_size(n_H_prev, f, pad, stride)
    n_W = output_size(n_W_prev, f, pad, stride)
    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], b[:, :, :, c])
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def pool_forward(A_prev, hparameters, mode="max"):
    """A[i, h, w, c] = max (or mean) of the f x f window (h, w) of channel c; no padding.

    n_H = floor((n_H_prev - f) / stride) + 1.  Returns A and the cache (A_prev, hparameters)."""
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = output_size(n_H_prev, f, 0, stride)
    n_W = output_size(n_W_prev, f, 0, stride)
    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    elif mode == "average":
                        A[i, h, w, c] = np.mean(a_prev_slice)
                    else:
                        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    cache = (A_prev, hparameters)
    return A, cache


def conv_backward(dZ, cache):
    """dA_prev, dW, db of conv_forward, given dZ = dJ/dZ.

    Every window (h, w) of example i sends ``W[..., c] dZ[i, h, w, c]`` back to the cells it read, and adds
    ``a_slice dZ[i, h, w, c]`` to dW[..., c] and ``dZ[i, h, w, c]`` to db[..., c]."""
    A_prev, W, b, hparameters = cache
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, f, n_C_prev, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H, n_W, n_C = dZ.shape
    dA_prev = np.zeros(A_prev.shape, dtype=A_prev.dtype)
    dW = np.zeros(W.shape, dtype=W.dtype)
    db = np.zeros(b.shape, dtype=b.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = zero_pad(dA_prev, pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
        # The course writes da_prev_pad[pad:-pad, pad:-pad, :], which is empty for pad = 0.
        dA_prev[i, :, :, :] = da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]
    return dA_prev, dW, db


def create_mask_from_window(x):
    """True where x equals its maximum: every tied maximum gets the gradient (the course's choice)."""
    mask = x == np.max(x)
    return mask


def distribute_value(dz, shape):
    """Spread dz evenly over a window of ``shape``: each cell gets dz / (n_H n_W)."""
    n_H, n_W = shape
    average = dz / (n_H * n_W)
    a = np.ones(shape, dtype=np.asarray(dz).dtype) * average
    return a


def pool_backward(dA, cache, mode="max"):
    """dA_prev of pool_forward: max sends dA to the window's maximum (every tied one), average spreads it evenly."""
    A_prev, hparameters = cache
    stride, f = hparameters["stride"], hparameters["f"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros(A_prev.shape, dtype=A_prev.dtype)
    for i in range(m):
        a_prev = A_prev[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    if mode == "max":
                        a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]
                        mask = create_mask_from_window(a_prev_slice)
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += mask * dA[i, h, w, c]
                    elif mode == "average":
                        da = dA[i, h, w, c]
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += distribute_value(da, (f, f))
                    else:
                        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    return dA_prev


def forward_backward(A_prev, W, b, dA, case):
    """The contract's chain (``nnparity.convspec``): conv, pool, then back with the upstream gradient dA."""
    Z, conv_cache = conv_forward(A_prev, W, b, case.conv_hparameters)
    A, pool_cache = pool_forward(Z, case.pool_hparameters, case.mode)
    dZ = pool_backward(dA, pool_cache, case.mode)
    dA_prev, dW, db = conv_backward(dZ, conv_cache)
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db}
