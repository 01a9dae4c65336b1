"""The cost J in TF ops: the notes' formulas, mean over the m examples (see reference.losses)."""

import tensorflow as tf


def compute_cost(AL, Y, loss="cross_entropy"):
    """The cost J: the notes' formulas in TF ops (mean over the m examples)."""
    m = tf.cast(tf.shape(Y)[1], Y.dtype)
    zero = tf.zeros_like(AL)
    if loss == "cross_entropy":  # 0 log 0 = 0, as the reference: inf, not NaN, where AL saturated
        return -1 / m * tf.reduce_sum(tf.where(Y != 0, Y * tf.math.log(AL), zero)
                                      + tf.where(Y != 1, (1 - Y) * tf.math.log(1 - AL), zero))
    if loss == "categorical_cross_entropy":
        return -1 / m * tf.reduce_sum(tf.where(Y != 0, Y * tf.math.log(AL), zero))
    if loss == "l1":
        return tf.reduce_sum(tf.abs(Y - AL)) / m
    if loss == "l2":
        return tf.reduce_sum((Y - AL) ** 2) / m
    raise ValueError(f"unknown loss {loss!r}")


def logits_cost(ZL, Y, loss="cross_entropy"):
    """The same cross-entropy J from the logits ZL (examples as columns), by TensorFlow's fused losses.

    The tape's dJ/dZL is then ``(AL - Y) / m`` to rounding: ``tf.nn.sigmoid_cross_entropy_with_logits`` is
    ``max(z, 0) - z y + log1p(exp(-|z|))`` in elementary ops (``tensorflow/python/ops/nn_impl.py``), whose
    derivative is sigmoid(z) - y; ``tf.nn.softmax_cross_entropy_with_logits``'s kernel returns the backprop
    ``softmax(z) - y`` with the loss (``tensorflow/core/kernels/xent_op.h``).  Finite where AL saturated.
    """
    if loss == "cross_entropy":
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=ZL))
    if loss == "categorical_cross_entropy":
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=ZL, axis=0))
    raise ValueError(f"no logits form of loss {loss!r}")
