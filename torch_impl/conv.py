"""The course's convolutional layers in PyTorch ops; the backward passes from ``torch.autograd``.

Side by side with ``reference.conv``: the same functions, in the same order, with the same names and the
course's symbols.  What differs is the framework: ``F.conv2d`` and ``F.max_pool2d`` / ``F.avg_pool2d`` instead of
loops, and no hand-written backward (``conv_backward`` and ``pool_backward`` ask autograd for the vector-Jacobian
product of the forward at the cached inputs).  The reference's loop internals ``conv_single_step``,
``create_mask_from_window`` and ``distribute_value`` have no counterpart: the ops do whole arrays at once.

``zero_pad`` is the course's function in the framework's op; ``conv_forward`` lets the convolution's own
padding add the same zeros.  One semantic difference from the course: where a pooling window holds tied
maxima, ``F.max_pool2d``'s backward sends dA to one of them, the course's ``create_mask_from_window`` to
every one (it happens with blank image borders, not with the grid's generated images, whose ties have probability zero).

Layout: torch puts channels before height and width (NCHW) and stores a filter bank as (n_C, n_C_prev, f, f)
(OIHW).  ``forward_backward`` converts the course's NHWC / HWIO arrays at the boundary (``to_nchw``,
``to_oihw``) and back (``to_nhwc``, ``to_hwio``); every function between works in torch's layout.
"""

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def to_tensor(array, dtype):
    return torch.as_tensor(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return np.ascontiguousarray(tensor.detach().cpu().numpy())


def to_nchw(X):
    """(m, n_H, n_W, n_C) -> (m, n_C, n_H, n_W): torch wants the channels before height and width."""
    return X.permute(0, 3, 1, 2)


def to_nhwc(X):
    """(m, n_C, n_H, n_W) -> (m, n_H, n_W, n_C): back to the course's layout."""
    return X.permute(0, 2, 3, 1)


def to_oihw(W):
    """(f, f, n_C_prev, n_C) -> (n_C, n_C_prev, f, f): torch stores a filter bank output channels first."""
    return W.permute(3, 2, 0, 1)


def to_hwio(W):
    """(n_C, n_C_prev, f, f) -> (f, f, n_C_prev, n_C): back to the course's layout."""
    return W.permute(2, 3, 1, 0)


def zero_pad(X, pad):
    """Pad the height and width of every image of X (m, n_C, n_H, n_W) with ``pad`` zeros on each side."""
    return F.pad(X, (pad, pad, pad, pad), mode="constant", value=0)


def conv_forward(A_prev, W, b, hparameters):
    """Z = W * A_prev + b, every window at once (``F.conv2d`` is the course's cross-correlation); its ``padding``
    adds zero_pad's zeros.  Returns Z and the cache (A_prev, W, b, hparameters)."""
    stride, pad = hparameters["stride"], hparameters["pad"]
    Z = F.conv2d(A_prev, W, stride=stride, padding=pad) + b
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def pool_forward(A_prev, hparameters, mode="max"):
    """A = the max (or mean) of every f x f window, no padding.  Returns A and the cache (A_prev, hparameters)."""
    f, stride = hparameters["f"], hparameters["stride"]
    if mode == "max":
        A = F.max_pool2d(A_prev, kernel_size=f, stride=stride)
    elif mode == "average":
        A = F.avg_pool2d(A_prev, kernel_size=f, stride=stride)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    cache = (A_prev, hparameters)
    return A, cache


def conv_backward(dZ, cache):
    """dA_prev, dW, db of conv_forward, given dZ: autograd's vector-Jacobian product at the cached inputs."""
    A_prev, W, b, hparameters = cache
    A_prev, W, b = (x.detach().requires_grad_() for x in (A_prev, W, b))
    with torch.enable_grad():
        Z, _ = conv_forward(A_prev, W, b, hparameters)
    dA_prev, dW, db = torch.autograd.grad(Z, (A_prev, W, b), grad_outputs=dZ)
    return dA_prev, dW, db


def pool_backward(dA, cache, mode="max"):
    """dA_prev of pool_forward: autograd's vector-Jacobian product at the cached input."""
    A_prev, hparameters = cache
    A_prev = A_prev.detach().requires_grad_()
    with torch.enable_grad():
        A, _ = pool_forward(A_prev, hparameters, mode)
    (dA_prev,) = torch.autograd.grad(A, A_prev, grad_outputs=dA)
    return dA_prev


def forward_backward(A_prev, W, b, dA, case):
    """The contract's chain (``nnparity.convspec``): conv, pool, then back with the upstream gradient dA.
    NumPy in and out, in the course's layout; torch's layout in between."""
    setup(case.seed)
    A_prev, b, dA = (to_nchw(to_tensor(x, case.dtype)) for x in (A_prev, b, dA))
    W = to_oihw(to_tensor(W, case.dtype))
    Z, conv_cache = conv_forward(A_prev, W, b, case.conv_hparameters)
    A, pool_cache = pool_forward(Z, case.pool_hparameters, case.mode)
    dZ = pool_backward(dA, pool_cache, case.mode)
    dA_prev, dW, db = conv_backward(dZ, conv_cache)
    Z, A, dZ, dA_prev, db = (to_numpy(to_nhwc(x)) for x in (Z, A, dZ, dA_prev, db))
    dW = to_numpy(to_hwio(dW))
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db}
