"""Gradient check: centred finite differences over the vector of all parameters."""

import numpy as np

from reference.model import compute_cost, model_backward, model_forward


def parameters_to_vector(parameters):
    """W1, b1, ..., WL, bL flattened and concatenated, and the keys in that order."""
    keys = sorted(parameters, key=lambda k: (int(k[1:]), k[0] != "W"))
    return np.concatenate([parameters[k].ravel() for k in keys]), keys


def vector_to_parameters(theta, like):
    """The inverse of ``parameters_to_vector`` for parameters shaped like ``like``."""
    _, keys = parameters_to_vector(like)
    out, start = {}, 0
    for k in keys:
        size = like[k].size
        out[k] = theta[start:start + size].reshape(like[k].shape)
        start += size
    return out


def numerical_gradient(J, theta, epsilon=1e-7):
    """Centred finite differences of a scalar function J of a vector theta (float64):
    g_num[i] = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)."""
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    g_num = np.empty_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += epsilon
        minus[i] -= epsilon
        g_num[i] = (float(J(plus)) - float(J(minus))) / (2 * epsilon)
    return g_num


def gradient_difference(grad, g_num):
    """difference = ||g - g_num|| / (||g|| + ||g_num||): below 1e-7 the gradient is right, above 1e-3 wrong."""
    grad, g_num = np.asarray(grad, dtype=np.float64).reshape(-1), np.asarray(g_num, dtype=np.float64).reshape(-1)
    denominator = np.linalg.norm(grad) + np.linalg.norm(g_num)
    return float(np.linalg.norm(grad - g_num) / denominator) if denominator else 0.0


def gradient_check_function(J, grad, theta, epsilon=1e-7):
    """The gradient check of any scalar function J at theta against its claimed gradient ``grad`` (the course's
    1-D ``gradient_check(x, theta)`` is ``gradient_check_function(lambda t: t * x, x, theta)``)."""
    shape = np.shape(theta)
    return gradient_difference(grad, numerical_gradient(lambda t: J(t.reshape(shape)), theta, epsilon))


def gradient_check(parameters, X, Y, case, epsilon=1e-7, masks=None):
    """difference = ||g - g_num|| / (||g|| + ||g_num||) for the hand-written backward of the network's cost.

    g_num by ``numerical_gradient`` over the vector of all parameters, in float64.
    Below 1e-7 the backward is right; above 1e-3 it is certainly wrong.  With
    dropout, ``masks`` (one D per hidden layer) is held fixed for every evaluation;
    with L2 on, J includes the regularisation term.
    """
    parameters = {k: v.astype(np.float64) for k, v in parameters.items()}
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    AL, caches = model_forward(X, parameters, case, masks)
    grads = model_backward(AL, Y, caches, case)
    g = parameters_to_vector({k: grads[f"d{k}"] for k in parameters})[0]
    theta, _ = parameters_to_vector(parameters)

    def J(vector):
        shifted = vector_to_parameters(vector, parameters)
        AL, _ = model_forward(X, shifted, case, masks)
        return compute_cost(AL, Y, shifted, case)
    return gradient_difference(g, numerical_gradient(J, theta, epsilon))
