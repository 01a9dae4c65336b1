"""Parameter updates in TF ops: gradient descent, momentum, RMSprop, Adam (see reference.optimizers).

The same formulas, in the same order, as the reference.  Parameters and state
are ``tf.Variable`` so one compiled step (``tf.function``) updates them in
place; the bias corrections ``1 - beta**t`` are computed in Python floats
(``reference.optimizers.bias_corrections``) and passed in as tensors.
"""

import tensorflow as tf


def initialize_optimizer_state(parameters, optimizer):
    """Zero variables shaped like each gradient: v (momentum, Adam) and s (RMSprop, Adam)."""
    def zeros(prefix):
        return {f"d{k}": tf.Variable(tf.zeros_like(P), name=f"{prefix}_d{k}") for k, P in parameters.items()}

    if optimizer == "gd":
        return {}
    if optimizer == "momentum":
        return {"v": zeros("v")}
    if optimizer == "rmsprop":
        return {"s": zeros("s")}
    if optimizer == "adam":
        return {"v": zeros("v"), "s": zeros("s")}
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
    s = {d: beta2 * s[d] + (1 - beta2) * tf.square(grads[d]) for d in s}
    return {k: P - learning_rate * grads[f"d{k}"] / (tf.sqrt(s[f"d{k}"]) + epsilon)
            for k, P in parameters.items()}, s


def update_parameters_with_adam(parameters, grads, v, s, correction1, correction2, beta1, beta2, learning_rate,
                                epsilon):
    """v = beta1 v + (1 - beta1) dW;  s = beta2 s + (1 - beta2) dW^2;
    v_hat = v / (1 - beta1^t);  s_hat = s / (1 - beta2^t);  W = W - alpha v_hat / (sqrt(s_hat) + eps)."""
    v = {d: beta1 * v[d] + (1 - beta1) * grads[d] for d in v}
    s = {d: beta2 * s[d] + (1 - beta2) * tf.square(grads[d]) for d in s}
    new = {}
    for k, P in parameters.items():
        v_hat = v[f"d{k}"] / correction1
        s_hat = s[f"d{k}"] / correction2
        new[k] = P - learning_rate * v_hat / (tf.sqrt(s_hat) + epsilon)
    return new, v, s


def update(parameters, grads, state, case, corrections, learning_rate):
    """One update by ``case.optimizer``, assigned to the variables.  ``corrections`` = (1 - beta1^t, 1 - beta2^t);
    ``learning_rate``: the step's rate (``reference.optimizers.learning_rates``), a tensor of the case's dtype."""
    new_state = {}
    if case.optimizer == "gd":
        new = update_parameters_with_gd(parameters, grads, learning_rate)
    elif case.optimizer == "momentum":
        new, new_state["v"] = update_parameters_with_momentum(parameters, grads, state["v"], case.beta,
                                                              learning_rate)
    elif case.optimizer == "rmsprop":
        new, new_state["s"] = update_parameters_with_rmsprop(parameters, grads, state["s"], case.beta2,
                                                             learning_rate, case.epsilon)
    else:
        new, new_state["v"], new_state["s"] = update_parameters_with_adam(
            parameters, grads, state["v"], state["s"], corrections[0], corrections[1], case.beta1, case.beta2,
            learning_rate, case.epsilon)
    for name, values in new_state.items():
        for d, value in values.items():
            state[name][d].assign(value)
    for k, value in new.items():
        parameters[k].assign(value)
    return parameters, state
