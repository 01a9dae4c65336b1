"""A user's own implementation of the notes' L-layer network, checked by ``nnparity --impl``.

Plain NumPy, written from the notes (not from ``reference/``): forward with relu or tanh hidden layers
and a sigmoid output, the cross-entropy cost, the hand-written backward, and gradient descent.  It offers
the protocol's entry points (README: "Your own implementation"):

    nnparity report --impl examples/my_network.py --cases 'l2-tanh-float64-*' \
        --out /tmp/my-network
"""

import numpy as np


def _forward(parameters, X, case):
    """Z[l] = W[l] A[l-1] + b[l]; A[l] = g(Z[l]); returns the caches {Z1, A1, ...}."""
    L = len(case.layer_dims) - 1
    A, cache = X, {}
    for l in range(1, L + 1):
        Z = parameters[f"W{l}"] @ A + parameters[f"b{l}"]
        if l == L:
            A = 1 / (1 + np.exp(-Z))
        elif case.hidden_activation == "relu":
            A = np.maximum(0, Z)
        elif case.hidden_activation == "tanh":
            A = np.tanh(Z)
        else:
            raise NotImplementedError(f"my_network has no {case.hidden_activation} layer")
        cache[f"Z{l}"], cache[f"A{l}"] = Z, A
    return cache


def forward_backward(parameters, X, Y, case, masks=None):
    """Every Z, A, the cost, and dZ, dW, db, dA of one pass."""
    if case.optimizer != "gd" or case.lambd or masks is not None or case.loss != "cross_entropy":
        raise NotImplementedError("my_network trains plain gradient descent on the cross-entropy")
    L, m = len(case.layer_dims) - 1, X.shape[1]
    out = _forward(parameters, X, case)
    AL = out[f"A{L}"]
    out["cost"] = np.asarray(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)), dtype=AL.dtype)
    dA = -(Y / AL - (1 - Y) / (1 - AL))
    for l in range(L, 0, -1):
        A = out[f"A{l}"]
        if l == L:
            dZ = dA * (A * (1 - A))
        elif case.hidden_activation == "relu":
            dZ = dA * (out[f"Z{l}"] > 0)
        else:
            dZ = dA * (1 - A * A)
        A_prev = X if l == 1 else out[f"A{l - 1}"]
        out[f"dZ{l}"] = dZ
        out[f"dW{l}"] = 1 / m * (dZ @ A_prev.T)
        out[f"db{l}"] = 1 / m * np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA = out[f"dA{l - 1}"] = parameters[f"W{l}"].T @ dZ
    return out


def train(parameters, X, Y, case, schedule=None, masks=None):
    """Gradient descent on the project's schedule; the cost of every step, taken before its update."""
    parameters = dict(parameters)
    steps = case.epochs if schedule is None else len(schedule)
    costs = np.empty(steps, dtype=X.dtype)
    for step in range(steps):
        batch = slice(None) if schedule is None else schedule[step]
        grads = forward_backward(parameters, X[:, batch], Y[:, batch], case)
        costs[step] = grads["cost"]
        parameters = {k: P - case.learning_rate * grads[f"d{k}"] for k, P in parameters.items()}
    return parameters, costs


def predictions(parameters, X, case):
    """1 where AL > 0.5, else 0, shape (1, m)."""
    L = len(case.layer_dims) - 1
    return (_forward(parameters, X, case)[f"A{L}"] > 0.5).astype(np.int64)
