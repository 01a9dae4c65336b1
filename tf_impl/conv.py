"""The course's convolutional layers in TensorFlow ops; the backward passes from ``tf.GradientTape``.

Side by side with ``reference.conv``: the same functions, in the same order, with the same names and the
course's symbols.  What differs is the framework: ``tf.nn.conv2d`` and ``tf.nn.max_pool2d`` / ``avg_pool2d``
instead of loops, and no hand-written backward (``conv_backward`` and ``pool_backward`` ask the tape for the
vector-Jacobian product of the forward at the cached inputs, ``output_gradients``), and ``forward_backward`` runs
eagerly or, with ``use_function=True``, the whole chain traced by ``tf.function`` (once per case in a process).
The reference's loop internals ``conv_single_step``, ``create_mask_from_window`` and ``distribute_value`` have
no counterpart: the ops do whole arrays at once.

``zero_pad`` is the course's function in the framework's op; ``conv_forward`` lets the convolution's own
padding add the same zeros.  One semantic difference from the course: where a pooling window holds tied
maxima, ``tf.nn.max_pool2d``'s gradient sends dA to one of them, the course's ``create_mask_from_window`` to
every one (it happens with blank image borders, not with the grid's generated images, whose ties have probability zero).

Layout: TensorFlow's default is the course's, examples first and channels last (NHWC), and ``tf.nn.conv2d``'s
filters are (f, f, n_C_prev, n_C) (HWIO), the course's W: ``to_tensor`` at the boundary is the only conversion.
"""

import functools

import numpy as np
import tensorflow as tf

DTYPES = {"float64": tf.float64, "float32": tf.float32}


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


def to_tensor(array, dtype):
    """A NumPy array in the course's layout -> a tensor in the same layout (TensorFlow's NHWC and HWIO)."""
    return tf.constant(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return tensor.numpy()


def zero_pad(X, pad):
    """Pad the height and width of every image of X (m, n_H, n_W, n_C) with ``pad`` zeros on each side."""
    return tf.pad(X, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="CONSTANT", constant_values=0)


def conv_forward(A_prev, W, b, hparameters):
    """Z = W * A_prev + b, every window at once (``tf.nn.conv2d`` is the course's cross-correlation); its explicit
    ``padding`` adds zero_pad's zeros.  Returns Z and the cache (A_prev, W, b, hparameters)."""
    stride, pad = hparameters["stride"], hparameters["pad"]
    Z = tf.nn.conv2d(A_prev, W, strides=stride, padding=[[0, 0], [pad, pad], [pad, pad], [0, 0]]) + b
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def pool_forward(A_prev, hparameters, mode="max"):
    """A = the max (or mean) of every f x f window, no padding.  Returns A and the cache (A_prev, hparameters)."""
    f, stride = hparameters["f"], hparameters["stride"]
    if mode == "max":
        A = tf.nn.max_pool2d(A_prev, ksize=f, strides=stride, padding="VALID")
    elif mode == "average":
        A = tf.nn.avg_pool2d(A_prev, ksize=f, strides=stride, padding="VALID")
    else:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'average'")
    cache = (A_prev, hparameters)
    return A, cache


def conv_backward(dZ, cache):
    """dA_prev, dW, db of conv_forward, given dZ: the tape's vector-Jacobian product at the cached inputs."""
    A_prev, W, b, hparameters = cache
    with tf.GradientTape() as tape:
        tape.watch([A_prev, W, b])
        Z, _ = conv_forward(A_prev, W, b, hparameters)
    dA_prev, dW, db = tape.gradient(Z, [A_prev, W, b], output_gradients=dZ)
    return dA_prev, dW, db


def pool_backward(dA, cache, mode="max"):
    """dA_prev of pool_forward: the tape's vector-Jacobian product at the cached input."""
    A_prev, hparameters = cache
    with tf.GradientTape() as tape:
        tape.watch(A_prev)
        A, _ = pool_forward(A_prev, hparameters, mode)
    dA_prev = tape.gradient(A, A_prev, output_gradients=dA)
    return dA_prev


def chain(A_prev, W, b, dA, case):
    """Conv, pool, then back with the upstream gradient dA: every quantity of the contract, as tensors."""
    Z, conv_cache = conv_forward(A_prev, W, b, case.conv_hparameters)
    A, pool_cache = pool_forward(Z, case.pool_hparameters, case.mode)
    dZ = pool_backward(dA, pool_cache, case.mode)
    dA_prev, dW, db = conv_backward(dZ, conv_cache)
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db}


@functools.cache
def compiled_chain(case):
    """``chain`` under ``tf.function`` for ``case`` (its hyper-parameters are constants of the graph), traced at
    its first call and kept for the process."""
    return tf.function(functools.partial(chain, case=case))


def clear_compiled():
    """Forget every traced chain of this module (see ``tf_impl.model.clear_compiled``)."""
    compiled_chain.cache_clear()


def forward_backward(A_prev, W, b, dA, case, use_function=False):
    """The contract's chain (``nnparity.convspec``), NumPy in and out in the course's layout.
    ``use_function=True`` runs ``compiled_chain``, the chain traced by ``tf.function``."""
    setup(case.seed)
    A_prev, W, b, dA = (to_tensor(x, case.dtype) for x in (A_prev, W, b, dA))
    captured = compiled_chain(case)(A_prev, W, b, dA) if use_function else chain(A_prev, W, b, dA, case)
    return {k: to_numpy(v) for k, v in captured.items()}
