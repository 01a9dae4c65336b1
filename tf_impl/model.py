"""The L-layer network of the notes in TensorFlow ops; gradients from ``tf.GradientTape``.

Side by side with ``reference.model``: the same functions, in the same order,
with the same names and shapes (examples as columns, ``W[l]`` of shape
``(n[l], n[l-1])``).  What differs is the framework: tensors and variables
instead of arrays, no hand-written backward (``model_backward`` asks the tape),
and ``train`` runs eagerly (``tf``) or compiled by ``tf.function`` (``tf-function``).
"""

import numpy as np
import tensorflow as tf

from reference.optimizers import bias_corrections, learning_rates
from tf_impl.activations import activation_forward
from tf_impl.losses import compute_cost as compute_loss_cost
from tf_impl.losses import logits_cost
from tf_impl.optimizers import initialize_optimizer_state, update

DTYPES = {"float64": tf.float64, "float32": tf.float32}


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


def to_tensor(array, dtype):
    return tf.constant(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return tensor.numpy()


def linear_forward(A_prev, W, b):
    """Z = W A_prev + b."""
    return W @ A_prev + b


def linear_activation_forward(A_prev, W, b, activation, slope=0.01):
    """Z = W A_prev + b; A = g(Z).  Returns A and the cache (A_prev, W, b, Z)."""
    Z = linear_forward(A_prev, W, b)
    A = activation_forward(Z, activation, slope)
    return A, (A_prev, W, b, Z)


def model_forward(X, parameters, case, masks=None):
    """Forward through layers 1..L, inverted dropout after the hidden ones.  Returns AL and the caches (with A)."""
    A = X
    caches = []
    for l, activation in enumerate(case.activations(), start=1):
        A, cache = linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"], activation, case.leaky_slope)
        if masks is not None and l < case.L:
            A = A * masks[l - 1]
            A = A / case.keep_prob
        caches.append(cache + (A,))
    return A, caches


def model_backward(tape, cost, parameters, caches=(), m=1):
    """The tape's gradients of the cost: {'dWl', 'dbl'}, and with caches {'dZl', 'dA(l-1)'}.

    dZ and dA are scaled by m to the notes' per-example convention.
    """
    names = list(parameters)
    L = len(caches)
    sources = [parameters[k] for k in names] + [cache[3] for cache in caches] + [cache[4] for cache in caches[:-1]]
    grads_list = tape.gradient(cost, sources)
    grads = {f"d{k}": g for k, g in zip(names, grads_list)}
    for l in range(1, L + 1):
        grads[f"dZ{l}"] = m * grads_list[len(names) + l - 1]
    for l in range(1, L):
        grads[f"dA{l}"] = m * grads_list[len(names) + L + l - 1]
    return grads


def compute_cost(AL, Y, parameters, case, ZL=None):
    """The cost J, plus ``lambda/(2m) sum ||W||^2`` when L2 regularisation is on (the tape adds lambda/m W).

    With ``ZL`` (``output_gradient="fused"``) J comes from TensorFlow's loss on the logits instead
    (``losses.logits_cost``), whose gradient is dZL = (AL - Y) / m: what ``model_backward`` differentiates
    then, while the recorded cost stays the notes' formula on AL (inf where AL saturated).
    """
    J = compute_loss_cost(AL, Y, case.loss) if ZL is None else logits_cost(ZL, Y, case.loss)
    if case.lambd:
        m = tf.cast(tf.shape(Y)[1], Y.dtype)
        J = J + 1 / m * (case.lambd / 2) * sum(tf.reduce_sum(tf.square(P)) for k, P in parameters.items()
                                                if k.startswith("W"))
    return J


def update_parameters(parameters, grads, learning_rate):
    """W = W - alpha dW; b = b - alpha db (in place on the variables)."""
    for name, P in parameters.items():
        P.assign(P - learning_rate * grads[f"d{name}"])
    return parameters


def predict(X, parameters, case):
    """Sigmoid output: 1 where AL > 0.5, else 0, shape (1, m).  Softmax: the argmax class, shape (1, m)."""
    AL, _ = model_forward(X, parameters, case)
    if case.output_activation == "softmax":
        return tf.reshape(tf.argmax(AL, axis=0), (1, -1))
    return tf.cast(AL > 0.5, tf.int64)


def _variables(parameters, dtype):
    return {k: tf.Variable(to_tensor(v, dtype), name=k) for k, v in parameters.items()}


def _masks(masks, dtype):
    return None if masks is None else [to_tensor(D, dtype) for D in masks]


def _objective(cost, AL, Y, parameters, caches, case):
    """What the tape differentiates: the cost, or with the fused output gradient J from the logits ZL."""
    return cost if case.output_gradient == "chained" else compute_cost(AL, Y, parameters, case, ZL=caches[-1][3])


def forward_backward(parameters, X, Y, case, masks=None):
    """One forward and backward pass; every intermediate captured as NumPy arrays (see reference)."""
    setup(case.seed)
    parameters = _variables(parameters, case.dtype)
    X, Y = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    with tf.GradientTape(persistent=False) as tape:
        AL, caches = model_forward(X, parameters, case, _masks(masks, case.dtype))
        cost = compute_cost(AL, Y, parameters, case)
        objective = _objective(cost, AL, Y, parameters, caches, case)
    captured = {}
    for l, cache in enumerate(caches, start=1):
        captured[f"Z{l}"], captured[f"A{l}"] = cache[3], cache[4]
    captured["cost"] = cost
    captured.update(model_backward(tape, objective, parameters, caches, m=Y.shape[1]))
    return {k: to_numpy(v) for k, v in captured.items()}


def make_train_step(parameters, state, case):
    """One gradient step over the variables ``parameters`` and the optimiser's ``state``: the tape's gradients
    of the objective, then the update assigned to the variables.  The step returns the cost."""
    def train_step(X_batch, Y_batch, step_masks, corrections, learning_rate):
        with tf.GradientTape() as tape:
            AL, caches = model_forward(X_batch, parameters, case, step_masks if case.dropout else None)
            cost = compute_cost(AL, Y_batch, parameters, case)
            objective = _objective(cost, AL, Y_batch, parameters, caches, case)
        grads = model_backward(tape, objective, parameters)
        update(parameters, grads, state, case, corrections, learning_rate)
        return cost

    return train_step


#: ``tf-function``'s compiled steps: normalised case -> (variables, optimiser state, ``tf.function`` step).
_COMPILED = {}


def compiled_step(parameters, case):
    """``make_train_step`` under ``tf.function``, traced once per network, optimiser and dtype in a process
    (as ``jax_impl.model.compiled_step``): the key is the case with its length and batch size (which no step
    reads) set aside.  A ``tf.function`` captures the ``tf.Variable``s it reads by reference, so the
    variables are made once with the step, here, and every run assigns its initial ``parameters`` to them
    and zeroes the optimiser's state (``initialize_optimizer_state``'s values): a run starts exactly as with
    new variables.  The batch dimension is left unknown, so the last, smaller mini-batch does not retrace;
    masks, bias corrections and the learning rate are inputs, not constants.  The step is the traced graph
    itself (``get_concrete_function``): calling it skips ``tf.function``'s matching of the arguments to its
    traces, about 1 ms a step.  Returns (variables, state, step).
    """
    key = case.step_case()
    if key not in _COMPILED:
        variables = _variables(parameters, case.dtype)
        state = initialize_optimizer_state(variables, case.optimizer)
        dtype, n = DTYPES[case.dtype], case.layer_dims
        spec = [tf.TensorSpec([n[0], None], dtype), tf.TensorSpec([n[-1], None], dtype),
                [tf.TensorSpec([n_l, None], dtype) for n_l in n[1:-1]] if case.dropout else [],
                [tf.TensorSpec([], dtype), tf.TensorSpec([], dtype)], tf.TensorSpec([], dtype)]
        step = tf.function(make_train_step(variables, state, key), input_signature=spec).get_concrete_function()
        _COMPILED[key] = variables, state, step
    variables, state, step = _COMPILED[key]
    for k, P in variables.items():
        P.assign(to_tensor(parameters[k], case.dtype))
    for moments in state.values():
        for v in moments.values():
            v.assign(tf.zeros_like(v))
    return variables, state, step


def clear_compiled():
    """Forget every compiled step of this module.  What is compiled holds the code that was in place when it was
    traced: whoever changes that code in a process (a test's ``mock.patch``, an injected fault) clears before
    and after, or later runs of the network would reuse the changed code (or miss the change).
    ``nnparity.impls.clear_compiled`` clears every loaded implementation's."""
    _COMPILED.clear()


def train(parameters, X, Y, case, schedule=None, masks=None, use_function=False, on_step=None):
    """The reference's training loop in TF ops.  Returns (parameters, costs) as NumPy.

    ``use_function=True`` runs ``compiled_step``, the step under ``tf.function`` (traced once per network).
    ``on_step(step)``, if given, is called once per gradient step, right after the
    step (eager ops, or the compiled step's call) returns with the update done, with
    the step index 0..steps-1.
    """
    setup(case.seed)
    if use_function:
        parameters, state, train_step = compiled_step(parameters, case)
    else:
        parameters = _variables(parameters, case.dtype)
        state = initialize_optimizer_state(parameters, case.optimizer)
        train_step = make_train_step(parameters, state, case)
    X, Y = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    steps = case.epochs if schedule is None else len(schedule)
    costs = []
    rates = learning_rates(case, steps)
    for step in range(steps):
        if schedule is None:
            X_batch, Y_batch = X, Y
        else:
            idx = tf.constant(schedule[step])
            X_batch, Y_batch = tf.gather(X, idx, axis=1), tf.gather(Y, idx, axis=1)
        step_masks = _masks(masks[step], case.dtype) if masks is not None else []
        corrections = [tf.constant(c, DTYPES[case.dtype]) for c in bias_corrections(case, step + 1)]
        learning_rate = tf.constant(rates[step], DTYPES[case.dtype])
        costs.append(train_step(X_batch, Y_batch, step_masks, corrections, learning_rate))
        if on_step is not None:
            on_step(step)
    return {k: to_numpy(v) for k, v in parameters.items()}, np.array([c.numpy() for c in costs])


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    setup(case.seed)
    return to_numpy(predict(to_tensor(X, case.dtype), _variables(parameters, case.dtype), case))
