"""Parameter updates in ``jax.numpy``: gradient descent, momentum, RMSprop, Adam (see reference.optimizers).

The same formulas, in the same order, as the reference.  Arrays are immutable:
every update returns new parameters and state.  The bias corrections
``1 - beta**t`` come from ``reference.optimizers.bias_corrections`` (Python floats)
and are passed in as arrays, so one ``jax.jit``-compiled step serves every t.
"""

import jax.numpy as jnp


def initialize_optimizer_state(parameters, optimizer):
    """Zeros shaped like each gradient: v (momentum, Adam) and s (RMSprop, Adam)."""
    zeros = {f"d{k}": jnp.zeros_like(P) for k, P in parameters.items()}
    if optimizer == "gd":
        return {}
    if optimizer == "momentum":
        return {"v": zeros}
    if optimizer == "rmsprop":
        return {"s": zeros}
    if optimizer == "adam":
        return {"v": zeros, "s": {k: jnp.zeros_like(v) for k, v in zeros.items()}}
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
    s = {d: beta2 * s[d] + (1 - beta2) * jnp.square(grads[d]) for d in s}
    return {k: P - learning_rate * grads[f"d{k}"] / (jnp.sqrt(s[f"d{k}"]) + epsilon)
            for k, P in parameters.items()}, s


def update_parameters_with_adam(parameters, grads, v, s, correction1, correction2, beta1, beta2, learning_rate,
                                epsilon):
    """v = beta1 v + (1 - beta1) dW;  s = beta2 s + (1 - beta2) dW^2;
    v_hat = v / (1 - beta1^t);  s_hat = s / (1 - beta2^t);  W = W - alpha v_hat / (sqrt(s_hat) + eps)."""
    v = {d: beta1 * v[d] + (1 - beta1) * grads[d] for d in v}
    s = {d: beta2 * s[d] + (1 - beta2) * jnp.square(grads[d]) for d in s}
    new = {}
    for k, P in parameters.items():
        v_hat = v[f"d{k}"] / correction1
        s_hat = s[f"d{k}"] / correction2
        new[k] = P - learning_rate * v_hat / (jnp.sqrt(s_hat) + epsilon)
    return new, v, s


def update(parameters, grads, state, case, corrections, learning_rate):
    """One update by ``case.optimizer``; returns (parameters, state).  ``corrections`` = (1 - beta1^t, 1 - beta2^t);
    ``learning_rate``: the step's rate (``reference.optimizers.learning_rates``), an array of the case's dtype."""
    if case.optimizer == "gd":
        return update_parameters_with_gd(parameters, grads, learning_rate), state
    if case.optimizer == "momentum":
        parameters, v = update_parameters_with_momentum(parameters, grads, state["v"], case.beta, learning_rate)
        return parameters, {"v": v}
    if case.optimizer == "rmsprop":
        parameters, s = update_parameters_with_rmsprop(parameters, grads, state["s"], case.beta2, learning_rate,
                                                       case.epsilon)
        return parameters, {"s": s}
    parameters, v, s = update_parameters_with_adam(parameters, grads, state["v"], state["s"], corrections[0],
                                                   corrections[1], case.beta1, case.beta2, learning_rate,
                                                   case.epsilon)
    return parameters, {"v": v, "s": s}
