"""The L-layer network of the notes, forward and hand-written backward, in NumPy.

This is the source of truth for the math.  ``torch_impl.model`` and
``tf_impl.model`` have the same functions, in the same order, with the same
names; only the framework differs (and their backward comes from autodiff).

L = 1 is logistic regression (one sigmoid neuron); ``[2, 4, 1]`` with tanh is
the notes' 2-layer network; ``[n0, 20, 7, 5, 1]`` with relu is the L-layer one.
"""

import numpy as np

from reference.activations import activation_backward, activation_forward
from reference.losses import compute_cost as compute_loss_cost
from reference.losses import cost_backward, l2_regularization_cost
from reference.optimizers import initialize_optimizer_state, learning_rates, update


def linear_forward(A_prev, W, b):
    """Z = W A_prev + b."""
    return W @ A_prev + b


def linear_activation_forward(A_prev, W, b, activation, slope=0.01):
    """Z = W A_prev + b; A = g(Z).  Returns A and the cache (A_prev, W, b, Z)."""
    Z = linear_forward(A_prev, W, b)
    A = activation_forward(Z, activation, slope)
    return A, (A_prev, W, b, Z)


def model_forward(X, parameters, case, masks=None):
    """Forward through layers 1..L.  Returns AL and the per-layer caches.

    With ``masks`` (one boolean D[l] per hidden layer), inverted dropout follows
    each hidden activation: ``A = A * D; A = A / keep_prob``.  A cache is
    ``(A_prev, W, b, Z, A, D)``: A as the next layer sees it, and g(Z) is kept
    for the derivative when dropout changed it.
    """
    A = X
    caches = []
    for l, activation in enumerate(case.activations(), start=1):
        A, cache = linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"], activation, case.leaky_slope)
        D, gZ = None, A
        if masks is not None and l < case.L:
            D = masks[l - 1]
            A = A * D
            A = A / case.keep_prob
        caches.append(cache + (A, D, gZ))
    return A, caches


def linear_backward(dZ, cache, with_dA_prev=True):
    """dW = 1/m dZ A_prev.T; db = 1/m sum(dZ, axis=1); dA_prev = W.T dZ.

    ``with_dA_prev=False`` skips dA_prev (returns None): layer 1 has no use for dA0, the gradient
    with respect to the data X, which costs as much as layer 1's forward product.
    """
    A_prev, W, b, Z = cache[:4]
    m = A_prev.shape[1]
    dW = 1 / m * (dZ @ A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = W.T @ dZ if with_dA_prev else None
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation, slope=0.01, with_dA_prev=True):
    """dZ = dA * g'(Z), then the linear backward.  Returns dA_prev, dW, db and dZ."""
    A_prev, W, b, Z, A, D, gZ = cache
    dZ = activation_backward(dA, Z, gZ, activation, slope)
    dA_prev, dW, db = linear_backward(dZ, cache, with_dA_prev)
    return dA_prev, dW, db, dZ


def model_backward(AL, Y, caches, case, with_dA0=False):
    """Backward through layers L..1 from dAL = dL/dAL.  Returns {'dZl', 'dWl', 'dbl', 'dA(l-1)'}.

    ``dA0 = W1.T dZ1``, the gradient with respect to X, only ``with_dA0`` (the course's
    ``L_model_backward`` returns it; training has no use for it).

    dA(l) is the gradient with respect to A[l] as the next layer saw it (after
    dropout); with L2 regularisation dW gets ``lambda/m W``.  With
    ``case.output_gradient == "fused"`` layer L starts from ``dZL = AL - Y`` (the 2-layer
    notes: a sigmoid output with cross-entropy, a softmax with categorical cross-entropy),
    which stays finite where AL saturated to exactly 0 or 1 and dAL would be inf.
    """
    grads = {}
    fused = case.output_gradient == "fused"
    dA = None if fused else cost_backward(AL, Y, case.loss)
    activations = case.activations()
    m = Y.shape[1]
    for l in range(case.L, 0, -1):
        D = caches[l - 1][5]
        if D is not None:  # the same mask as the forward, and the same 1/keep_prob
            dA = dA * D
            dA = dA / case.keep_prob
        if fused and l == case.L:  # dZL = AL - Y: the loss's and the output activation's derivatives in one
            dZ = AL - Y
            dA, dW, db = linear_backward(dZ, caches[l - 1], with_dA_prev=l > 1 or with_dA0)
        else:
            dA, dW, db, dZ = linear_activation_backward(dA, caches[l - 1], activations[l - 1], case.leaky_slope,
                                                        with_dA_prev=l > 1 or with_dA0)
        if case.lambd:
            dW = dW + case.lambd / m * caches[l - 1][1]  # the L2 term's gradient, lambda/m W
        grads[f"dZ{l}"], grads[f"dW{l}"], grads[f"db{l}"] = dZ, dW, db
        if l > 1 or with_dA0:
            grads[f"dA{l - 1}"] = dA
    return grads


def compute_cost(AL, Y, parameters, case):
    """The cost J of the predictions, plus ``lambda/(2m) sum ||W||^2`` when L2 regularisation is on."""
    J = compute_loss_cost(AL, Y, case.loss)
    if case.lambd:
        J = J + l2_regularization_cost(parameters, case.lambd, Y.shape[1])
    return np.asarray(J, dtype=AL.dtype)


def update_parameters(parameters, grads, learning_rate):
    """W = W - alpha dW; b = b - alpha db (a new dict; the arguments are not changed)."""
    return {name: P - learning_rate * grads[f"d{name}"] for name, P in parameters.items()}


def predict(X, parameters, case):
    """Sigmoid output: 1 where AL > 0.5, else 0, shape (1, m).  Softmax: the argmax class, shape (1, m)."""
    AL, _ = model_forward(X, parameters, case)
    if case.output_activation == "softmax":
        return np.argmax(AL, axis=0).reshape(1, -1)
    return (AL > 0.5).astype(np.int64)


def forward_backward(parameters, X, Y, case, masks=None):
    """One forward and backward pass, every intermediate captured as NumPy arrays.

    Keys: Z1, A1, ..., ZL, AL, ``cost``, and dZl, dWl, dbl, dA(l-1).  dZ and dA
    are the notes' per-example quantities (dZL = AL - Y for cross-entropy, to rounding; exactly
    that with ``output_gradient="fused"``);
    dW and db are the gradients of the cost.
    """
    AL, caches = model_forward(X, parameters, case, masks)
    captured = {}
    for l, cache in enumerate(caches, start=1):
        captured[f"Z{l}"], captured[f"A{l}"] = cache[3], cache[4]
    captured["cost"] = compute_cost(AL, Y, parameters, case)
    captured.update(model_backward(AL, Y, caches, case))
    return captured


def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None, before_update=None):
    """Train from ``parameters`` by ``case.optimizer``: batch (``schedule=None``), mini-batch or SGD.

    ``schedule`` is the list of example indices of every step (from
    ``reference.utils.minibatch_schedule``); ``masks`` the dropout masks of every
    step (``reference.utils.dropout_masks``).  The cost of every step is taken in
    that step's forward pass, before the update.  ``on_step(step)``, if given, is
    called once per gradient step, right after that step's update, with the step
    index 0..steps-1 (the protocol's callback, the same in every implementation).
    ``before_update(step, parameters, X_batch, Y_batch)``, the reference's own, sees
    each step's parameters before the update (the harness bounds each step's rounding
    with it).  With ``case.decay`` every step of epoch e uses the course's decayed rate
    (``reference.optimizers.learning_rates``).  Returns (parameters, costs).
    """
    steps = case.epochs if schedule is None else len(schedule)
    costs = np.empty(steps, dtype=X.dtype)
    state = initialize_optimizer_state(parameters, case.optimizer)
    rates = learning_rates(case, steps)
    for step in range(steps):
        if schedule is None:
            X_batch, Y_batch = X, Y
        else:
            X_batch, Y_batch = X[:, schedule[step]], Y[:, schedule[step]]
        AL, caches = model_forward(X_batch, parameters, case, None if masks is None else masks[step])
        costs[step] = compute_cost(AL, Y_batch, parameters, case)
        if before_update is not None:
            before_update(step, parameters, X_batch, Y_batch)
        grads = model_backward(AL, Y_batch, caches, case)
        parameters, state = update(parameters, grads, state, case, t=step + 1, learning_rate=rates[step])
        if on_step is not None:
            on_step(step)
    return parameters, costs


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    return predict(X, parameters, case)
