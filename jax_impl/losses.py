"""The cost J in ``jax.numpy``: the notes' formulas, mean over the m examples (see reference.losses)."""

import jax
import jax.numpy as jnp


def compute_cost(AL, Y, loss="cross_entropy"):
    """The cost J: the notes' formulas in jax.numpy (mean over the m examples)."""
    m = Y.shape[1]
    if loss == "cross_entropy":  # 0 log 0 = 0, as the reference: inf, not NaN, where AL saturated
        return -1 / m * jnp.sum(jnp.where(Y != 0, Y * jnp.log(AL), 0)
                                + jnp.where(Y != 1, (1 - Y) * jnp.log(1 - AL), 0))
    if loss == "categorical_cross_entropy":
        return -1 / m * jnp.sum(jnp.where(Y != 0, Y * jnp.log(AL), 0))
    if loss == "l1":
        return jnp.sum(jnp.abs(Y - AL)) / m
    if loss == "l2":
        return jnp.sum((Y - AL) ** 2) / m
    raise ValueError(f"unknown loss {loss!r}")


def logits_cost(ZL, Y, loss="cross_entropy"):
    """The same cross-entropy J from the logits ZL (examples as columns), in the fused forms of the frameworks.

    ``jax.grad``'s dJ/dZL is then ``(AL - Y) / m`` to rounding: ``max(z, 0) - z y + log1p(exp(-|z|))``
    (TensorFlow's ``sigmoid_cross_entropy_with_logits``, written out) has the derivative sigmoid(z) - y;
    ``-sum(y log_softmax(z))`` (``jax.nn.log_softmax``) has softmax(z) - y for one-hot y.  Finite where
    AL saturated.
    """
    m = Y.shape[1]
    if loss == "cross_entropy":
        return jnp.sum(jnp.maximum(ZL, 0) - ZL * Y + jnp.log1p(jnp.exp(-jnp.abs(ZL)))) / m
    if loss == "categorical_cross_entropy":
        return -jnp.sum(Y * jax.nn.log_softmax(ZL, axis=0)) / m
    raise ValueError(f"no logits form of loss {loss!r}")
