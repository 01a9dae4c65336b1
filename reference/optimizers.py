"""Parameter updates: gradient descent, momentum, RMSprop and Adam, as the classic course writes them.

State keys follow the course: ``v['dW1']``, ``s['dW1']``, ...; ``t`` counts update
steps from 1 (Adam's bias correction).  Every implementation writes the same
formulas in the same order; the bias corrections ``1 - beta**t`` are computed
once in Python floats and handed to each (so no framework's ``pow`` differs).
So is the learning rate of every step under the course's decay (``update_lr``,
``schedule_lr_decay``, once per epoch): ``learning_rates``.
"""

import numpy as np


def initialize_optimizer_state(parameters, optimizer):
    """Zeros shaped like each gradient: v (momentum, Adam) and s (RMSprop, Adam)."""
    zeros = {f"d{k}": np.zeros_like(P) for k, P in parameters.items()}
    if optimizer == "gd":
        return {}
    if optimizer == "momentum":
        return {"v": zeros}
    if optimizer == "rmsprop":
        return {"s": zeros}
    if optimizer == "adam":
        return {"v": zeros, "s": {k: np.zeros_like(v) for k, v in zeros.items()}}
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
    s = {d: beta2 * s[d] + (1 - beta2) * np.square(grads[d]) for d in s}
    return {k: P - learning_rate * grads[f"d{k}"] / (np.sqrt(s[f"d{k}"]) + epsilon) for k, P in parameters.items()}, s


def update_parameters_with_adam(parameters, grads, v, s, correction1, correction2, beta1, beta2, learning_rate,
                                epsilon):
    """v = beta1 v + (1 - beta1) dW;  s = beta2 s + (1 - beta2) dW^2;
    v_hat = v / (1 - beta1^t);  s_hat = s / (1 - beta2^t);  W = W - alpha v_hat / (sqrt(s_hat) + eps).

    ``correction1 = 1 - beta1**t`` and ``correction2 = 1 - beta2**t``.
    """
    v = {d: beta1 * v[d] + (1 - beta1) * grads[d] for d in v}
    s = {d: beta2 * s[d] + (1 - beta2) * np.square(grads[d]) for d in s}
    v_corrected, s_corrected = bias_corrected(v, s, correction1, correction2)
    new = {k: P - learning_rate * v_corrected[f"d{k}"] / (np.sqrt(s_corrected[f"d{k}"]) + epsilon)
           for k, P in parameters.items()}
    return new, v, s


def bias_corrected(v, s, correction1, correction2):
    """Adam's bias-corrected moments v_hat = v / (1 - beta1^t), s_hat = s / (1 - beta2^t), keyed like v and s.

    ``correction1 = 1 - beta1**t`` and ``correction2 = 1 - beta2**t`` (``bias_corrections``).
    """
    return {d: v[d] / correction1 for d in v}, {d: s[d] / correction2 for d in s}


def bias_corrections(case, t):
    """(1 - beta1**t, 1 - beta2**t) in Python floats: t counts update steps from 1."""
    return 1 - case.beta1**t, 1 - case.beta2**t


def update_lr(learning_rate0, epoch_num, decay_rate):
    """The course's learning-rate decay: alpha = alpha0 / (1 + decay_rate * epoch_num)."""
    return learning_rate0 / (1 + decay_rate * epoch_num)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """The course's fixed-interval decay: alpha = alpha0 / (1 + decay_rate * floor(epoch_num / time_interval))."""
    return learning_rate0 / (1 + decay_rate * (epoch_num // time_interval))


def learning_rate_at(case, epoch):
    """The learning rate of every step of epoch ``epoch`` (from 0), in Python floats: ``case.learning_rate``
    decayed by ``case.decay`` (``update_lr`` or ``schedule_lr_decay``)."""
    if case.decay == "inverse-time":
        return update_lr(case.learning_rate, epoch, case.decay_rate)
    if case.decay == "scheduled":
        return schedule_lr_decay(case.learning_rate, epoch, case.decay_rate, case.time_interval)
    return case.learning_rate


def learning_rates(case, steps):
    """The learning rate of each of the run's ``steps`` gradient steps (``case.epochs`` epochs of equally many
    steps; every step of epoch e uses ``learning_rate_at(case, e)``): computed once, handed to every
    implementation."""
    per_epoch = steps_per_epoch(case, steps)
    return [learning_rate_at(case, step // per_epoch) for step in range(steps)]


def steps_per_epoch(case, steps):
    """Gradient steps per epoch of a run of ``steps`` steps (at least 1: a schedule cut short stays defined)."""
    return max(1, -(-steps // case.epochs))


def update(parameters, grads, state, case, t, learning_rate=None):
    """One update by ``case.optimizer`` with ``learning_rate`` (default ``case.learning_rate``); returns
    (parameters, state)."""
    alpha = case.learning_rate if learning_rate is None else learning_rate
    if case.optimizer == "gd":
        return update_parameters_with_gd(parameters, grads, alpha), state
    if case.optimizer == "momentum":
        parameters, v = update_parameters_with_momentum(parameters, grads, state["v"], case.beta, alpha)
        return parameters, {"v": v}
    if case.optimizer == "rmsprop":
        parameters, s = update_parameters_with_rmsprop(parameters, grads, state["s"], case.beta2, alpha,
                                                       case.epsilon)
        return parameters, {"s": s}
    c1, c2 = bias_corrections(case, t)
    parameters, v, s = update_parameters_with_adam(parameters, grads, state["v"], state["s"], c1, c2, case.beta1,
                                                   case.beta2, alpha, case.epsilon)
    return parameters, {"v": v, "s": s}
