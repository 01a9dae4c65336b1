"""The L-layer network of the notes in ``jax.numpy``; gradients from ``jax.value_and_grad``.

Side by side with ``reference.model``: the same functions, in the same order,
with the same names and shapes (examples as columns, ``W[l]`` of shape
``(n[l], n[l-1])``).  What differs is the framework: immutable ``jax.Array``s
instead of arrays, no hand-written backward (``model_backward`` asks
``jax.value_and_grad``), and ``train`` runs eagerly (``jax``) or its step compiled
by ``jax.jit`` (``jax-jit``).

JAX differentiates functions, not a recorded graph: to get the notes' dZ[l] and dA[l]
the forward takes ``shifts``, zero arrays added to every Z[l] and A[l]; the gradient of
the cost with respect to a shift is its gradient with respect to that Z or A
(adding a zero changes no value).  JAX has no global random state, so there is nothing to
seed (the initial parameters and dropout masks come from the reference), and its CPU
kernels are deterministic.  float64 needs ``jax_enable_x64`` (``jax_impl/__init__.py``).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jax_impl.activations import activation_forward
from jax_impl.losses import compute_cost as compute_loss_cost
from jax_impl.losses import logits_cost
from jax_impl.optimizers import initialize_optimizer_state, update
from reference.optimizers import bias_corrections, learning_rates

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}


def to_tensor(array, dtype):
    return jnp.asarray(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(array):
    return np.asarray(array)


def linear_forward(A_prev, W, b):
    """Z = W A_prev + b."""
    return W @ A_prev + b


def linear_activation_forward(A_prev, W, b, activation, slope=0.01, shift=None):
    """Z = W A_prev + b (+ ``shift``, a zero whose gradient is dJ/dZ); A = g(Z).  Returns A and the cache
    (A_prev, W, b, Z)."""
    Z = linear_forward(A_prev, W, b)
    if shift is not None:
        Z = Z + shift
    A = activation_forward(Z, activation, slope)
    return A, (A_prev, W, b, Z)


def model_forward(X, parameters, case, masks=None, shifts=None):
    """Forward through layers 1..L, inverted dropout after the hidden ones.  Returns AL and the caches (with A).

    ``shifts`` (``zero_shifts``): zeros added to every Z[l] and to every hidden A[l] (after dropout, as the
    next layer sees it), so that ``jax.grad`` with respect to them gives dJ/dZ[l] and dJ/dA[l].
    """
    A = X
    caches = []
    for l, activation in enumerate(case.activations(), start=1):
        A, cache = linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"], activation, case.leaky_slope,
                                             None if shifts is None else shifts[f"Z{l}"])
        if masks is not None and l < case.L:
            A = A * masks[l - 1]
            A = A / case.keep_prob
        if shifts is not None and l < case.L:
            A = A + shifts[f"A{l}"]
        caches.append(cache + (A,))
    return A, caches


def zero_shifts(case, m, dtype):
    """Zeros shaped like Z1, ..., ZL and A1, ..., A(L-1): the points where ``model_backward`` reads dZ and dA."""
    shifts = {f"Z{l}": jnp.zeros((n, m), DTYPES[dtype]) for l, n in enumerate(case.layer_dims[1:], start=1)}
    shifts.update({f"A{l}": jnp.zeros((n, m), DTYPES[dtype]) for l, n in enumerate(case.layer_dims[1:-1], start=1)})
    return shifts


def model_backward(objective, parameters, shifts=None, m=1):
    """``jax.value_and_grad`` of ``objective(parameters, shifts) -> (J, aux)``.  Returns the gradients
    {'dWl', 'dbl'}, with ``shifts`` also {'dZl', 'dA(l-1)'}, and ``aux``.

    dZ and dA are scaled by m to the notes' per-example convention.
    """
    (_, aux), (dP, dS) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(parameters, shifts)
    grads = {f"d{k}": g for k, g in dP.items()}
    for name, g in (dS or {}).items():
        grads[f"d{name}"] = m * g
    return grads, aux


def compute_cost(AL, Y, parameters, case, ZL=None):
    """The cost J, plus ``lambda/(2m) sum ||W||^2`` when L2 regularisation is on (jax.grad adds lambda/m W).

    With ``ZL`` (``output_gradient="fused"``) J comes from the loss of the logits instead
    (``losses.logits_cost``), whose gradient is dZL = (AL - Y) / m: what ``model_backward`` differentiates
    then, while the recorded cost stays the notes' formula on AL (inf where AL saturated).
    """
    J = compute_loss_cost(AL, Y, case.loss) if ZL is None else logits_cost(ZL, Y, case.loss)
    if case.lambd:
        m = Y.shape[1]
        J = J + 1 / m * (case.lambd / 2) * sum(jnp.sum(jnp.square(P)) for k, P in parameters.items()
                                                if k.startswith("W"))
    return J


def update_parameters(parameters, grads, learning_rate):
    """W = W - alpha dW; b = b - alpha db (new arrays)."""
    return {name: P - learning_rate * grads[f"d{name}"] for name, P in parameters.items()}


def predict(X, parameters, case):
    """Sigmoid output: 1 where AL > 0.5, else 0, shape (1, m).  Softmax: the argmax class, shape (1, m)."""
    AL, _ = model_forward(X, parameters, case)
    if case.output_activation == "softmax":
        return jnp.argmax(AL, axis=0).reshape(1, -1)
    return (AL > 0.5).astype(jnp.int64)


def _arrays(parameters, dtype):
    return {k: to_tensor(v, dtype) for k, v in parameters.items()}


def _masks(masks):
    return None if masks is None else [jnp.asarray(D) for D in masks]


def _objective(parameters, shifts, X, Y, case, masks):
    """What ``jax.grad`` differentiates: the cost, or with the fused output gradient J from the logits ZL;
    the recorded cost and the caches ride along as ``aux``."""
    AL, caches = model_forward(X, parameters, case, masks, shifts)
    cost = compute_cost(AL, Y, parameters, case)
    J = cost if case.output_gradient == "chained" else compute_cost(AL, Y, parameters, case, ZL=caches[-1][3])
    return J, (cost, caches)


def capture(parameters, X, Y, masks, case):
    """One forward and backward pass: every Z, A, the cost and every gradient, as jax arrays."""
    objective = partial(_objective, X=X, Y=Y, case=case, masks=masks)
    grads, (cost, caches) = model_backward(objective, parameters, zero_shifts(case, X.shape[1], case.dtype),
                                           m=Y.shape[1])
    captured = {}
    for l, cache in enumerate(caches, start=1):
        captured[f"Z{l}"], captured[f"A{l}"] = cache[3], cache[4]
    captured["cost"] = cost
    captured.update(grads)
    return captured


#: ``capture`` compiled by ``jax.jit`` once per network and batch shape in a process (``case`` static, as in
#: ``compiled_step``): ``jax-jit``'s captures.  Eagerly, JAX compiles every operation of the pass for each new
#: shape, which cost ``jax-jit`` 60-170 compilations on a case's first comparison.
compiled_capture = jax.jit(capture, static_argnames="case")


def forward_backward(parameters, X, Y, case, masks=None, use_jit=False):
    """One forward and backward pass; every intermediate captured as NumPy arrays (see reference).
    ``use_jit=True`` runs ``compiled_capture``, the pass compiled by ``jax.jit`` (``jax-jit``)."""
    parameters = _arrays(parameters, case.dtype)
    X, Y = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    if use_jit:
        captured = compiled_capture(parameters, X, Y, _masks(masks), case=case.step_case())
    else:
        captured = capture(parameters, X, Y, _masks(masks), case)
    return {k: to_numpy(v) for k, v in captured.items()}


def train_step(parameters, state, X_batch, Y_batch, step_masks, corrections, learning_rate, case):
    """One gradient step: the gradients of the objective, then the optimiser's update.  Returns the new
    parameters and optimiser state, and the step's cost."""
    objective = partial(_objective, X=X_batch, Y=Y_batch, case=case, masks=step_masks)
    grads, (cost, _) = model_backward(objective, parameters)
    parameters, state = update(parameters, grads, state, case, corrections, learning_rate)
    return parameters, state, cost


#: ``train_step`` compiled by ``jax.jit`` once per network, optimiser and batch shape in a process: ``case`` is a
#: static argument, with its length and batch size (which no step reads) set aside so that runs of one network
#: share the compiled step.
compiled_step = jax.jit(train_step, static_argnames="case")


def clear_compiled():
    """Forget every compiled step and pass of this module.  What is compiled holds the code that was in place
    when it was traced: whoever changes that code in a process (a test's ``mock.patch``, an injected fault)
    clears before and after, or later runs of the network would reuse the changed code (or miss the change).
    ``nnparity.impls.clear_compiled`` clears every loaded implementation's."""
    compiled_step.clear_cache()
    compiled_capture.clear_cache()


def train(parameters, X, Y, case, schedule=None, masks=None, use_jit=False, on_step=None):
    """The reference's training loop in jax.numpy.  Returns (parameters, costs) as NumPy.

    ``use_jit=True`` runs ``compiled_step`` (masks, bias corrections and the learning rate are inputs, not
    constants; a last, smaller mini-batch compiles once more for its shape).  The batches are taken and the
    step's scalars made in NumPy: an eager JAX gather or conversion costs more than a compiled step.
    ``on_step(step)``, if given, is called once per gradient step, right after the updated
    parameters are ready (``jax.block_until_ready``), with the step index 0..steps-1.
    """
    parameters = _arrays(parameters, case.dtype)
    state = initialize_optimizer_state(parameters, case.optimizer)
    full_batch = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    step_function = partial(compiled_step, case=case.step_case()) if use_jit else partial(train_step, case=case)
    steps = case.epochs if schedule is None else len(schedule)
    costs = []
    rates = learning_rates(case, steps)
    for step in range(steps):
        if schedule is None:
            X_batch, Y_batch = full_batch
        else:
            X_batch, Y_batch = to_tensor(X[:, schedule[step]], case.dtype), to_tensor(Y[:, schedule[step]], case.dtype)
        step_masks = _masks(masks[step]) if masks is not None else None
        corrections = [np.asarray(c, case.dtype) for c in bias_corrections(case, step + 1)]
        learning_rate = np.asarray(rates[step], case.dtype)
        parameters, state, cost = step_function(parameters, state, X_batch, Y_batch, step_masks, corrections,
                                                learning_rate)
        costs.append(cost)
        if on_step is not None:
            jax.block_until_ready(parameters)
            on_step(step)
    return {k: to_numpy(v) for k, v in parameters.items()}, np.array(costs, dtype=case.dtype)


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    return to_numpy(predict(to_tensor(X, case.dtype), _arrays(parameters, case.dtype), case))
