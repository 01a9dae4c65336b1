"""The course's convolutional layers in ``jax.lax``; the backward passes from ``jax.vjp``.

Side by side with ``reference.conv``: the same functions, in the same order, with the same names and the
course's symbols.  What differs is the framework: ``lax.conv_general_dilated`` and ``lax.reduce_window`` instead
of loops, and no hand-written backward (``conv_backward`` and ``pool_backward`` ask ``jax.vjp`` for the
vector-Jacobian product of the forward at the cached inputs), and ``forward_backward`` runs eagerly or, with
``use_jit=True``, the whole chain compiled by ``jax.jit`` (once per case in a process).  The reference's loop
internals ``conv_single_step``, ``create_mask_from_window`` and ``distribute_value`` have no counterpart: the ops
do whole arrays at once.

``zero_pad`` is the course's function in the framework's op; ``conv_forward`` lets the convolution's own
padding add the same zeros.  One semantic difference from the course: where a pooling window holds tied
maxima, ``lax.reduce_window``'s max gradient sends dA to one of them, the course's ``create_mask_from_window`` to
every one (it happens with blank image borders, not with the grid's generated images, whose ties have probability zero).

Layout: ``lax.conv_general_dilated`` is told the course's layout, ``dimension_numbers=("NHWC", "HWIO",
"NHWC")`` (``DIMENSION_NUMBERS``), so ``to_tensor`` at the boundary is the only conversion.  float64 needs
``jax_enable_x64``, set by ``jax_impl/__init__.py``.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}
#: The course's layout, named for lax: images (m, n_H, n_W, n_C), filters (f, f, n_C_prev, n_C), Z like images.
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def to_tensor(array, dtype):
    """A NumPy array in the course's layout -> a jax array in the same layout (``DIMENSION_NUMBERS``)."""
    return jnp.asarray(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(array):
    return np.asarray(array)


def zero_pad(X, pad):
    """Pad the height and width of every image of X (m, n_H, n_W, n_C) with ``pad`` zeros on each side."""
    return jnp.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)


def conv_forward(A_prev, W, b, hparameters):
    """Z = W * A_prev + b, every window at once (``conv_general_dilated`` is the course's cross-correlation); its
    ``padding`` adds zero_pad's zeros.  Returns Z and the cache (A_prev, W, b, hparameters)."""
    stride, pad = hparameters["stride"], hparameters["pad"]
    Z = lax.conv_general_dilated(A_prev, W, window_strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                                 dimension_numbers=DIMENSION_NUMBERS) + b
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def pool_forward(A_prev, hparameters, mode="max"):
    """A = the max (or mean: the sum over f^2) of every f x f window, no padding.  Returns A and the cache
    (A_prev, hparameters)."""
    f, stride = hparameters["f"], hparameters["stride"]
    window, strides = (1, f, f, 1), (1, stride, stride, 1)
    if mode == "max":
        A = lax.reduce_window(A_prev, -jnp.inf, lax.max, window, strides, "VALID")
    elif mode == "average":
        A = lax.reduce_window(A_prev, 0.0, lax.add, window, strides, "VALID") / (f * f)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    cache = (A_prev, hparameters)
    return A, cache


def conv_backward(dZ, cache):
    """dA_prev, dW, db of conv_forward, given dZ: ``jax.vjp``'s vector-Jacobian product at the cached inputs."""
    A_prev, W, b, hparameters = cache
    _, conv_vjp = jax.vjp(lambda A_prev, W, b: conv_forward(A_prev, W, b, hparameters)[0], A_prev, W, b)
    dA_prev, dW, db = conv_vjp(dZ)
    return dA_prev, dW, db


def pool_backward(dA, cache, mode="max"):
    """dA_prev of pool_forward: ``jax.vjp``'s vector-Jacobian product at the cached input."""
    A_prev, hparameters = cache
    _, pool_vjp = jax.vjp(lambda A_prev: pool_forward(A_prev, hparameters, mode)[0], A_prev)
    (dA_prev,) = pool_vjp(dA)
    return dA_prev


def chain(A_prev, W, b, dA, case):
    """Conv, pool, then back with the upstream gradient dA: every quantity of the contract, as jax arrays."""
    Z, conv_cache = conv_forward(A_prev, W, b, case.conv_hparameters)
    A, pool_cache = pool_forward(Z, case.pool_hparameters, case.mode)
    dZ = pool_backward(dA, pool_cache, case.mode)
    dA_prev, dW, db = conv_backward(dZ, conv_cache)
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db}


#: ``chain`` compiled by ``jax.jit``, once per case (a static argument: its hyper-parameters shape the program).
compiled_chain = jax.jit(chain, static_argnames="case")


def clear_compiled():
    """Forget every compiled chain of this module (see ``jax_impl.model.clear_compiled``)."""
    compiled_chain.clear_cache()


def forward_backward(A_prev, W, b, dA, case, use_jit=False):
    """The contract's chain (``nnparity.convspec``), NumPy in and out in the course's layout.
    ``use_jit=True`` runs ``compiled_chain``, the chain compiled by ``jax.jit``."""
    A_prev, W, b, dA = (to_tensor(x, case.dtype) for x in (A_prev, W, b, dA))
    run = partial(compiled_chain, case=case) if use_jit else partial(chain, case=case)
    captured = run(A_prev, W, b, dA)
    return {k: to_numpy(v) for k, v in captured.items()}
