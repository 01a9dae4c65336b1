"""Parameter updates in torch ops: gradient descent, momentum, RMSprop, Adam (see reference.optimizers).

The same formulas, in the same order, as the reference; the bias corrections
``1 - beta**t`` come from ``reference.optimizers.bias_corrections`` (Python floats).
"""

import torch

from reference.optimizers import bias_corrections


def initialize_optimizer_state(parameters, optimizer):
    """Zeros shaped like each gradient: v (momentum, Adam) and s (RMSprop, Adam)."""
    zeros = {f"d{k}": torch.zeros_like(P, requires_grad=False) for k, P in parameters.items()}
    if optimizer == "gd":
        return {}
    if optimizer == "momentum":
        return {"v": zeros}
    if optimizer == "rmsprop":
        return {"s": zeros}
    if optimizer == "adam":
        return {"v": zeros, "s": {k: torch.zeros_like(v) for k, v in zeros.items()}}
    raise ValueError(f"unknown optimizer {optimizer!r}")


def update_parameters_with_gd(parameters, grads, learning_rate):
    """W = W - alpha dW."""
    return {k: P - learning_rate * grads[f"d{k}"] for k, P in parameters.items()}


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """v = beta v + (1 - beta) dW;  W = W - alpha v."""
    v = {d: beta * v[d] + (1 - beta) * grads[d] for d in v}
    return {k: P - learning_rate * v[f"d{k}"] for k, P in parameters.items()}, v


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon):
    """s = beta2 s + (1 - beta2) dW^2;  W = W - alpha dW / (sqrt(s) + eps)."""
    s = {d: beta2 * s[d] + (1 - beta2) * torch.square(grads[d]) for d in s}
    return {k: P - learning_rate * grads[f"d{k}"] / (torch.sqrt(s[f"d{k}"]) + epsilon)
            for k, P in parameters.items()}, s


def update_parameters_with_adam(parameters, grads, v, s, correction1, correction2, beta1, beta2, learning_rate,
                                epsilon):
    """v = beta1 v + (1 - beta1) dW;  s = beta2 s + (1 - beta2) dW^2;
    v_hat = v / (1 - beta1^t);  s_hat = s / (1 - beta2^t);  W = W - alpha v_hat / (sqrt(s_hat) + eps)."""
    v = {d: beta1 * v[d] + (1 - beta1) * grads[d] for d in v}
    s = {d: beta2 * s[d] + (1 - beta2) * torch.square(grads[d]) for d in s}
    new = {}
    for k, P in parameters.items():
        v_hat = v[f"d{k}"] / correction1
        s_hat = s[f"d{k}"] / correction2
        new[k] = P - learning_rate * v_hat / (torch.sqrt(s_hat) + epsilon)
    return new, v, s


def update(parameters, grads, state, case, t, learning_rate=None):
    """One update by ``case.optimizer`` with the step's ``learning_rate`` (a Python float,
    ``reference.optimizers.learning_rates``; default ``case.learning_rate``); returns (parameters as new leaf
    tensors, state)."""
    learning_rate = case.learning_rate if learning_rate is None else learning_rate
    with torch.no_grad():
        if case.optimizer == "gd":
            parameters = update_parameters_with_gd(parameters, grads, learning_rate)
        elif case.optimizer == "momentum":
            parameters, v = update_parameters_with_momentum(parameters, grads, state["v"], case.beta, learning_rate)
            state = {"v": v}
        elif case.optimizer == "rmsprop":
            parameters, s = update_parameters_with_rmsprop(parameters, grads, state["s"], case.beta2, learning_rate,
                                                           case.epsilon)
            state = {"s": s}
        else:
            c1, c2 = bias_corrections(case, t)
            parameters, v, s = update_parameters_with_adam(parameters, grads, state["v"], state["s"], c1, c2,
                                                           case.beta1, case.beta2, learning_rate, case.epsilon)
            state = {"v": v, "s": s}
    return {k: P.requires_grad_() for k, P in parameters.items()}, state
