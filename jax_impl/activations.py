"""Activations A = g(Z) in ``jax.numpy``; their derivatives come from ``jax.grad``."""

import jax
import jax.numpy as jnp


def activation_forward(Z, activation, slope=0.01):
    """A = g(Z) in jax.numpy."""
    if activation == "sigmoid":
        return jax.nn.sigmoid(Z)
    if activation == "tanh":
        return jnp.tanh(Z)
    if activation == "relu":
        return jax.nn.relu(Z)  # relu'(0) = 0 (its custom JVP), as the notes
    if activation == "leaky_relu":
        # The notes' equation, not jax.nn.leaky_relu: that is jnp.where(Z >= 0, ...), whose derivative
        # at Z = 0 is 1, where the notes' (and torch's, TensorFlow's) is the slope.
        return jnp.where(Z > 0, Z, slope * Z)
    if activation == "softmax":
        return jax.nn.softmax(Z, axis=0)
    if activation == "linear":
        return Z
    raise ValueError(f"unknown activation {activation!r}")
