"""The course's conv and pool layers as idiomatic Keras 3: ``ZeroPadding2D`` + ``Conv2D``, then ``MaxPool2D`` /
``AveragePooling2D``, gradients from ``tf.GradientTape``.

Side by side with ``tf_impl.conv`` (the course's functions in TF ops): the same chain, but W and b live in a
``Conv2D`` layer and the tape differentiates with respect to the input, Z and the layer's variables.

================  ==========================================================================
course            here
================  ==========================================================================
``A_prev``        as is: Keras' default ``data_format="channels_last"`` is the course's NHWC
``zero_pad``      ``ZeroPadding2D(pad)``
``W (f, f,        ``conv.kernel``, stored (f, f, n_C_prev, n_C) (HWIO): the course's layout, no transpose
n_C_prev, n_C)``
``b (1,1,1,n_C)`` ``conv.bias``, shape (n_C,): ``b.ravel()`` (``conv.set_weights([W, b.ravel()])``)
``Z``, ``A``      the outputs of ``Conv2D(n_C, f, strides, padding="valid")`` and of
                  ``MaxPool2D(f, strides)`` / ``AveragePooling2D(f, strides)`` (``padding="valid"``)
``dZ``, ``dA_prev``  the tape's gradients of A (``output_gradients=dA``) with respect to Z and A_prev
``dW``, ``db``    the tape's gradients of ``conv.kernel`` (already HWIO) and ``conv.bias``, the latter reshaped
================  ==========================================================================

Every layer is made with ``dtype=case.dtype``: a Keras 3 layer casts its floating inputs to its own compute
dtype, by default ``floatx()`` (float32), so a pooling layer without it would round a float64 Z to float32.
``Conv2D``'s own initialisation is overwritten by the contract's W and b.
"""

import keras
import tensorflow as tf

from tf_impl.conv import setup, to_numpy, to_tensor

POOLS = {"max": keras.layers.MaxPool2D, "average": keras.layers.AveragePooling2D}


def build_layers(case):
    """``ZeroPadding2D(pad)``, ``Conv2D(n_C, f, strides, padding="valid")`` and the case's pooling layer, every one
    in the case's dtype; the conv is built for the case's input shape."""
    padding = keras.layers.ZeroPadding2D(case.pad, dtype=case.dtype)
    conv = keras.layers.Conv2D(case.n_C, case.f, strides=case.stride, padding="valid", dtype=case.dtype)
    pool = POOLS[case.mode](case.pool_f, strides=case.pool_stride, padding="valid", dtype=case.dtype)
    conv.build((None, case.n_H_prev + 2 * case.pad, case.n_W_prev + 2 * case.pad, case.n_C_prev))
    return padding, conv, pool


def forward_backward(A_prev, W, b, dA, case):
    """The contract's chain (``nnparity.convspec``): Z = conv(padding(A_prev)), A = pool(Z), the tape's gradients
    with ``output_gradients=dA``.  NumPy in and out, in the course's layout."""
    setup(case.seed)
    padding, conv, pool = build_layers(case)
    conv.set_weights([W, b.ravel()])  # the kernel is HWIO, the course's W
    A_prev, dA = to_tensor(A_prev, case.dtype), to_tensor(dA, case.dtype)
    with tf.GradientTape() as tape:
        tape.watch(A_prev)
        Z = conv(padding(A_prev))
        A = pool(Z)
    dZ, dA_prev, dW, db = tape.gradient(A, [Z, A_prev, conv.kernel, conv.bias], output_gradients=dA)
    Z, A, dZ, dA_prev, dW, db = (to_numpy(x) for x in (Z, A, dZ, dA_prev, dW, db))
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db.reshape(1, 1, 1, -1)}
