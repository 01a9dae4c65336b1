"""Losses: the cost J and the gradient dAL that starts backpropagation.

Convention (the notes'): the cost is the mean over the m examples of a
per-example loss, ``J = 1/m sum_i L(a_i, y_i)``, and ``dAL = dL/da`` per example
(no 1/m); the 1/m is applied once, in ``dW = 1/m dZ A_prev.T`` and
``db = 1/m sum(dZ)``.  So the same backward serves every loss.

``l1`` and ``l2`` are the notes' snippets verbatim: sums over the examples
(``L1 = sum |y - yhat|``, ``L2 = sum (y - yhat)^2``); as training costs they enter
divided by m, like the cross-entropy.
"""

import numpy as np


def l1(yhat, y):
    """The notes' L1 loss: sum_i |y_i - yhat_i|."""
    return np.sum(np.abs(y - yhat))


def l2(yhat, y):
    """The notes' L2 loss: sum_i (y_i - yhat_i)^2."""
    return np.sum((y - yhat) ** 2)


def cross_entropy_cost(AL, Y):
    """J = -1/m sum (y log a + (1 - y) log(1 - a)), with 0 log 0 = 0 (a term whose label weight is 0 is 0).

    So a saturated output (a rounded to exactly 0 or 1) gives J = inf where its label is wrong and a
    finite term where it is right, as the course's ``np.nansum`` does, instead of NaN from ``0 * log 0``;
    every other value is bit for bit the plain formula's (the ``where`` only replaces a +-0 or NaN term by 0).
    """
    m = Y.shape[1]
    return -1 / m * np.sum(np.where(Y != 0, Y * np.log(AL), 0) + np.where(Y != 1, (1 - Y) * np.log(1 - AL), 0))


def cross_entropy_backward(AL, Y):
    """dAL = -(y / a - (1 - y) / (1 - a))."""
    return -(Y / AL - (1 - Y) / (1 - AL))


def categorical_cross_entropy_cost(AL, Y):
    """J = -1/m sum_i sum_k y_k log a_k, Y one-hot (C, m), AL the softmax output (0 log 0 = 0)."""
    m = Y.shape[1]
    return -1 / m * np.sum(np.where(Y != 0, Y * np.log(AL), 0))  # 0 log 0 = 0: a class underflowed to 0


def categorical_cross_entropy_backward(AL, Y):
    """dAL = -y / a (with the softmax backward this gives dZL = AL - Y)."""
    return -Y / AL


def l1_cost(AL, Y):
    """J = L1(AL, Y) / m."""
    return l1(AL, Y) / Y.shape[1]


def l1_backward(AL, Y):
    """dAL = sign(a - y) (0 where a == y)."""
    return np.sign(AL - Y)


def l2_cost(AL, Y):
    """J = L2(AL, Y) / m."""
    return l2(AL, Y) / Y.shape[1]


def l2_backward(AL, Y):
    """dAL = 2 (a - y)."""
    return 2 * (AL - Y)


def l2_regularization_cost(parameters, lambd, m):
    """lambda / (2 m) * sum_l ||W[l]||_F^2 (biases are not regularised)."""
    return 1 / m * (lambd / 2) * sum(np.sum(np.square(P)) for k, P in parameters.items() if k.startswith("W"))


def compute_cost(AL, Y, loss="cross_entropy"):
    """The cost J of the predictions AL (n[L], m) against the labels Y (n[L], m), as a 0-d array."""
    return np.asarray(_COST[loss](AL, Y), dtype=AL.dtype)


def cost_backward(AL, Y, loss="cross_entropy"):
    """dAL: the per-example derivative of the loss with respect to AL."""
    return _BACKWARD[loss](AL, Y)


_COST = {
    "cross_entropy": cross_entropy_cost,
    "categorical_cross_entropy": categorical_cross_entropy_cost,
    "l1": l1_cost,
    "l2": l2_cost,
}
_BACKWARD = {
    "cross_entropy": cross_entropy_backward,
    "categorical_cross_entropy": categorical_cross_entropy_backward,
    "l1": l1_backward,
    "l2": l2_backward,
}
