"""The L-layer network of the notes as idiomatic JAX: a ``flax.nnx`` module of ``nnx.Linear`` layers,
``optax`` losses and optimisers (``optax.sgd`` / ``rmsprop`` / ``adam``), one ``nnx.jit`` training step.

Side by side with ``jax_impl.model`` (the notes' equations in jax.numpy): the same
functions, in the same order, with the same names, but every parameter lives in a
flax object and examples are **rows**, flax's convention.  How each notes symbol maps
onto the framework object:

================  ==========================================================================
notes             here
================  ==========================================================================
``X (n0, m)``     ``X.T``: an ``(m, n0)`` array, one example per row (``Y`` -> ``Y.T``, ``(m, 1)``)
``W[l]``          ``model.linears[l-1].kernel``, ``(in, out) = (n[l-1], n[l])`` = ``W[l].T``
``b[l] (n[l],1)`` ``nnx.Linear.bias``, shape ``(n[l],)``: ``b[l].ravel()``
``Z[l]``          the ``nnx.Linear``'s output ``A_prev @ kernel + bias``, ``(m, n[l])`` = ``Z[l].T``
``A[l] = g(Z)``   ``jax.nn.relu``, ``jnp.tanh``, ``jax.nn.sigmoid``, ``jnp.where(Z > 0, Z, slope * Z)`` (leaky),
                  identity for linear
``D[l]`` dropout   ``DropoutMask(keep_prob)`` after every hidden activation: ``A * D / keep_prob`` with the
                  reference's mask ``D[l].T`` passed in every step (``nnx.Dropout`` draws its own masks
                  from an ``nnx.Rngs`` stream)
output ``AL``     the model ends with the last ``nnx.Linear``, the logits ``ZL``; the losses take them:
                  ``optax.sigmoid_binary_cross_entropy(ZL, Y)`` (``log_sigmoid`` forms: dZL = AL - Y) and
                  ``optax.softmax_cross_entropy(ZL, Y)`` (``log_softmax``), mean over the m rows;
                  ``AL = sigmoid(ZL)`` / ``softmax(ZL)`` for the capture, l1/l2 and predictions
fused ``dZL``     the same logits losses; the *recorded* cost is the notes' formula on ``AL``
                  (``jax_impl.losses.compute_cost``: inf where AL saturated)
cost ``J``        the loss's mean over the m examples (the notes' 1/m sum); l1 ``mean(|AL - Y|)``, l2
                  ``optax.squared_error(AL, Y).mean()``; with L2 ``+ lambda/(2m) sum ||kernel||^2``
                  over the kernels only (``l2_cost``): its gradient is the course's ``lambda/m W``
``dW[l]``         ``nnx.value_and_grad``'s gradient of the kernel, transposed
``db[l]``         its gradient of the bias, reshaped to ``(n[l], 1)``
``dZ[l], dA[l]``  its gradient of zero ``shifts`` added to every Z and hidden A (the module takes them),
                  transposed and times m
update            ``optimizer.update(model, grads)`` of an ``nnx.Optimizer(model, tx, wrt=nnx.Param)``
                  (``make_optimizer``):
                  gd: ``optax.sgd(alpha)``;
                  momentum: ``optax.sgd(alpha (1 - beta), momentum=beta)`` (optax's ``trace`` is
                  ``v = g + beta v``, undamped: ``1/(1 - beta)`` times the course's v);
                  rmsprop: ``optax.rmsprop(alpha, decay=beta2, eps=eps, eps_in_sqrt=False)``;
                  adam: ``optax.adam(alpha, b1=beta1, b2=beta2, eps=eps)``
decay             the learning rate is an optax schedule of the update count (``learning_rate_schedule``):
                  the rate of epoch ``count // epoch_steps``, from a table of the course's rates
                  (``reference.optimizers.learning_rate_at``); optax casts it to the gradient's dtype
batches           the project's schedule (``X[idx]`` per step), never a data loader's shuffling
================  ==========================================================================

optax semantics, read in the optax 0.2.8 sources (``optax/_src/...``) and flax 0.12.8's, and what
this module does about them:

* **RMSprop's epsilon is inside the square root by default.**  ``optax.rmsprop`` ->
  ``transform.scale_by_rms(decay, eps, initial_scale=0., eps_in_sqrt=True)``: ``rsqrt(nu + eps)``, Keras'
  form; ``eps_in_sqrt=False`` gives ``1 / (sqrt(nu) + eps)``, the course's (times g: one more rounding
  than a division).  ``nu`` starts at ``initial_scale = 0``, the course's s = 0.  Aligned here by
  ``eps_in_sqrt=False``; the default is measured by ``parity_tests/test_jax.py``
  (``optax-rmsprop-epsilon``).
* **Adam is the course's form.**  ``scale_by_adam``: ``mu = (1 - b1) g + b1 mu``, ``nu = (1 - b2) g^2 + b2 nu``
  (``tree_update_moment``), ``mu_hat = mu / (1 - b1^t)``, ``nu_hat = nu / (1 - b2^t)`` (``tree_bias_correction``,
  ``b^t`` computed in float64 under x64 and cast to the moment's dtype), ``mu_hat / (sqrt(nu_hat + eps_root)
  + eps)`` with ``eps_root = 0``: eps where the course adds it (unlike Keras).
* **SGD momentum is undamped.**  ``optax.sgd(lr, momentum)`` -> ``trace(decay)``: ``v = g + decay v``,
  update ``-lr v``; with ``lr = alpha (1 - beta)`` it is the course's ``v = beta v + (1 - beta) g;
  W -= alpha v`` up to rounding (``optax-sgd-momentum-form``; ``optax.ema(beta, debias=False)`` would be the
  course's v itself).
* **Updates are added.**  ``scale_by_learning_rate`` multiplies by ``-lr``, ``optax.apply_updates`` adds:
  ``W + (-alpha u)`` is ``W - alpha u`` exactly.
* **jax.nn.leaky_relu** is ``where(x >= 0, x, slope x)``: its derivative at Z = 0 is 1, the notes' the slope
  (``jax-leaky-relu-kink``), so leaky ReLU is ``jnp.where(Z > 0, Z, slope * Z)`` here, as in ``jax_impl.model``;
  ``jax.nn.relu``'s custom JVP gives relu'(0) = 0, as the notes.
* ``nnx.Linear`` computes ``lax.dot_general(X, kernel) + bias`` on rows: another summation order than
  ``W A_prev + b``, rounding-level.

The initial parameters come from the reference (``load_parameters``); the layers are built with zero
initialisers, so the ``nnx.Rngs(0)`` that ``nnx.Linear`` requires draws nothing that is used.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jax_impl.losses import compute_cost as notes_cost
from nnparity.errors import UsageError
from reference.optimizers import learning_rate_at, steps_per_epoch

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}
LOSS_NAMES = ("cross_entropy", "l1", "l2", "categorical_cross_entropy")
ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "linear": lambda Z: Z}


def to_tensor(array, dtype):
    return jnp.asarray(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(array):
    return np.asarray(array)


@functools.cache
def activation_function(activation, slope=0.01):
    """The JAX function of g: one object per (activation, slope) in a process, so that two models of one network
    have equal static attributes and share the compiled steps (``nnx.jit`` compares them)."""
    if activation == "leaky_relu":  # not jax.nn.leaky_relu: its derivative at Z = 0 is 1 (jax-leaky-relu-kink)
        return lambda Z: jnp.where(Z > 0, Z, slope * Z)
    if activation not in ACTIVATIONS:
        raise ValueError(f"flax has no function for activation {activation!r} here")
    return ACTIVATIONS[activation]


def output_activation(ZL):
    """AL = g(ZL) from the logits (rows): sigmoid for 1 unit, softmax for several."""
    return jax.nn.sigmoid(ZL) if ZL.shape[1] == 1 else jax.nn.softmax(ZL, axis=1)


def loss_function(loss):
    """J(ZL, Y) of the logits ZL and labels Y (rows), mean over the m examples."""
    if loss == "cross_entropy":
        return lambda ZL, Y: jnp.mean(optax.sigmoid_binary_cross_entropy(ZL, Y))
    if loss == "categorical_cross_entropy":
        return lambda ZL, Y: jnp.mean(optax.softmax_cross_entropy(ZL, Y))
    if loss == "l1":
        return lambda ZL, Y: jnp.mean(jnp.abs(output_activation(ZL) - Y))
    if loss == "l2":
        return lambda ZL, Y: jnp.mean(optax.squared_error(output_activation(ZL), Y))
    raise ValueError(f"unknown loss {loss!r}")


class DropoutMask(nnx.Module):
    """Inverted dropout with a given mask: ``A * D / keep_prob`` (the notes' ``A = A * D; A = A / keep_prob``).

    ``nnx.Dropout`` draws its own masks from an ``nnx.Rngs`` stream; parity needs the reference's ``D[l]``
    (rows: ``D[l].T``), passed in with every call."""

    def __init__(self, keep_prob):
        self.keep_prob = keep_prob

    def __call__(self, A, D):
        return A * D / self.keep_prob


class Network(nnx.Module):
    """``nnx.Linear`` layers 1..L with g[l] after the hidden ones; the output is the logits ZL."""

    def __init__(self, case):
        dtype = DTYPES[case.dtype]
        rngs = nnx.Rngs(0)  # required by nnx.Linear; the zero initialisers draw nothing
        self.linears = nnx.List([nnx.Linear(case.layer_dims[l - 1], case.layer_dims[l], dtype=dtype, param_dtype=dtype,
                                            kernel_init=nnx.initializers.zeros, bias_init=nnx.initializers.zeros,
                                            rngs=rngs) for l in range(1, case.L + 1)])
        self.activations = tuple(activation_function(activation, case.leaky_slope)  # the hidden g[l]; the output's
                                 for activation in case.activations()[:-1])  # is output_activation, of the logits
        self.dropout = DropoutMask(case.keep_prob) if case.dropout else None

    def __call__(self, X, masks=None, shifts=None):
        """ZL, and the caches ``[Z1, A1, ..., ZL, AL]`` (rows; AL = g(ZL)).  ``masks``: the dropout masks (rows);
        ``shifts``: zeros added to every Z and hidden A, whose gradients are dJ/dZ and dJ/dA."""
        A = X
        caches = []
        L = len(self.linears)
        for l, linear in enumerate(self.linears, start=1):
            Z = linear(A)
            if shifts is not None:
                Z = Z + shifts[f"Z{l}"]
            if l == L:
                caches += [Z, output_activation(Z)]
                return Z, caches
            A = self.activations[l - 1](Z)
            if masks is not None:
                A = self.dropout(A, masks[l - 1])
            if shifts is not None:
                A = A + shifts[f"A{l}"]
            caches += [Z, A]


def build_model(case):
    """The case's ``Network`` in the case's dtype (zero parameters; ``load_parameters`` sets them)."""
    return Network(case)


def load_parameters(model, parameters):
    """Notes' parameters -> the model's layers: ``kernel = W[l].T``, ``bias = b[l].ravel()`` (in place)."""
    dtype = model.linears[0].kernel[...].dtype
    for l, linear in enumerate(model.linears, start=1):
        linear.kernel[...] = jnp.asarray(np.ascontiguousarray(parameters[f"W{l}"].T), dtype)
        linear.bias[...] = jnp.asarray(np.ravel(parameters[f"b{l}"]), dtype)
    return model


def parameters_of(model):
    """The model's layers -> notes' parameters ``{W1: (n1, n0), b1: (n1, 1), ...}`` as NumPy."""
    parameters = {}
    for l, linear in enumerate(model.linears, start=1):
        parameters[f"W{l}"] = np.array(linear.kernel[...].T, order="C")
        parameters[f"b{l}"] = np.array(linear.bias[...]).reshape(-1, 1)
    return parameters


def linear_forward(A_prev, linear):
    """Z = W A_prev + b, on rows: ``linear(A_prev)`` = A_prev kernel + bias."""
    return linear(A_prev)


def linear_activation_forward(A_prev, linear, activation):
    """Z = linear(A_prev); A = activation(Z).  Returns A and the cache (A_prev, linear, Z)."""
    Z = linear_forward(A_prev, linear)
    A = activation(Z)
    return A, (A_prev, linear, Z)


def model_forward(X, model, masks=None, shifts=None):
    """ZL = model(X) (the logits) and the caches [Z1, A1, ..., ZL, AL] (rows)."""
    return model(X, masks, shifts)


def l2_cost(model, case, m):
    """``lambda/(2m) sum_l ||kernel[l]||^2``: the course's L2 term, kernels only (0 without L2)."""
    if not case.lambd:
        return 0
    return 1 / m * (case.lambd / 2) * sum(jnp.sum(jnp.square(linear.kernel[...])) for linear in model.linears)


def total_cost(model, X, Y, case, masks=None, shifts=None):
    """What ``nnx.value_and_grad`` differentiates: the loss of the logits plus L2; the caches ride along."""
    ZL, caches = model_forward(X, model, masks, shifts)
    return loss_function(case.loss)(ZL, Y) + l2_cost(model, case, X.shape[0]), caches


def model_backward(model, X, Y, case, masks=None, shifts=None):
    """``nnx.value_and_grad`` of ``total_cost``.  Returns (cost, caches, the model's gradients (an ``nnx.State``),
    the shifts' gradients)."""
    (cost, caches), (grads, dS) = nnx.value_and_grad(total_cost, argnums=(0, 5), has_aux=True)(
        model, X, Y, case, masks, shifts)
    return cost, caches, grads, dS


def notes_gradients(grads, dS, m):
    """The model's and the shifts' gradients in the notes' layout: dW = kernel's.T, db = bias's (n, 1), dZ and
    dA transposed and times m."""
    captured = {}
    for l, linear in enumerate(grads["linears"].values(), start=1):
        captured[f"dW{l}"] = linear["kernel"][...].T
        captured[f"db{l}"] = linear["bias"][...].reshape(-1, 1)
    for name, g in dS.items():
        captured[f"d{name}"] = m * g.T
    return captured


def learning_rate_schedule(case, epoch_steps, factor=1.0):
    """alpha times ``factor``, or with the course's decay an optax schedule: update ``count`` (from 0) -> the rate
    of its epoch times ``factor``, ``learning_rate_at(case, count // epoch_steps) * factor``, looked up in a
    table computed once in Python floats."""
    if case.decay == "none":
        return case.learning_rate * factor
    rates = jnp.asarray([learning_rate_at(case, epoch) * factor for epoch in range(case.epochs)], jnp.float64)
    return lambda count: rates[count // epoch_steps]


def make_optimizer(case, epoch_steps=1):
    """The case's optax optimiser: gd ``sgd(alpha)``; momentum ``sgd(alpha (1 - beta), momentum=beta)``
    (optax's ``trace`` is undamped); rmsprop ``rmsprop(alpha, decay=beta2, eps, eps_in_sqrt=False)`` (the
    course's ``sqrt(s) + eps``); adam ``adam(alpha, b1, b2, eps)``; alpha is ``learning_rate_schedule``'s."""
    lr = learning_rate_schedule(case, epoch_steps)
    if case.optimizer == "gd":
        return optax.sgd(lr)
    if case.optimizer == "momentum":
        return optax.sgd(learning_rate_schedule(case, epoch_steps, 1 - case.beta), momentum=case.beta)
    if case.optimizer == "rmsprop":
        return optax.rmsprop(lr, decay=case.beta2, eps=case.epsilon, eps_in_sqrt=False)
    if case.optimizer == "adam":
        return optax.adam(lr, b1=case.beta1, b2=case.beta2, eps=case.epsilon)
    raise ValueError(f"unknown optimizer {case.optimizer!r}")


def recorded_cost(cost, caches, Y, model, case):
    """The cost a step records: ``cost``, or with the fused output gradient the notes' formula on AL
    (``jax_impl.losses.compute_cost``, inf where AL saturated) plus the same L2 term."""
    if case.output_gradient == "chained":
        return cost
    return notes_cost(caches[-1].T, Y.T, case.loss) + l2_cost(model, case, Y.shape[0])


def update_parameters(optimizer, model, grads):
    """One update by the case's optimiser: ``optimizer.update(model, grads)`` (in place on the model)."""
    optimizer.update(model, grads)


def predict(X, model, case=None):
    """Sigmoid output: 1 where AL > 0.5, else 0; softmax: the argmax class; shape (1, m) (X in the notes' layout)."""
    _, caches = model_forward(X.T, model)
    AL = caches[-1]
    if case is not None and case.output_activation == "softmax":
        return jnp.argmax(AL, axis=1).reshape(1, -1)
    return (AL > 0.5).astype(jnp.int64).T


def _model(parameters, case):
    """The case's ``Network`` loaded with the notes' parameters."""
    return load_parameters(build_model(case), parameters)


def _check(case, masks=None):
    """The idiomatic model covers the sigmoid output with {cross_entropy, l1, l2} and the softmax output with
    categorical cross-entropy; dropout needs the reference's masks.  Anything else is refused."""
    if case.loss not in LOSS_NAMES:
        raise UsageError(f"--impl flax implements the losses {', '.join(LOSS_NAMES)}, not {case.loss}; "
                         f"use --impl jax or jax-jit")
    if case.dropout and masks is None:
        raise UsageError("--impl flax trains dropout with the reference's masks (DropoutMask); none were given")


def _row_masks(masks, case):
    return None if not case.dropout else [jnp.asarray(np.ascontiguousarray(D.T)) for D in masks]


def _zero_shifts(case, m):
    """Zeros shaped like Z1.T, ..., ZL.T and A1.T, ..., A(L-1).T: where the gradients dZ and dA are read."""
    dtype = DTYPES[case.dtype]
    shifts = {f"Z{l}": jnp.zeros((m, n), dtype) for l, n in enumerate(case.layer_dims[1:], start=1)}
    shifts.update({f"A{l}": jnp.zeros((m, n), dtype) for l, n in enumerate(case.layer_dims[1:-1], start=1)})
    return shifts


def forward_backward(parameters, X, Y, case, masks=None):
    """One forward and backward pass of the flax model, ``capture`` under ``nnx.jit`` as flax runs a model; every
    intermediate captured as NumPy arrays in the notes' layout (see reference)."""
    _check(case, masks)
    model = _model(parameters, case)
    m = X.shape[1]
    X, Y = to_tensor(X.T, case.dtype), to_tensor(Y.T, case.dtype)  # examples as rows
    captured = capture(model, X, Y, _row_masks(masks, case), _zero_shifts(case, m), case=step_case(case))
    return {k: to_numpy(v) for k, v in captured.items()}


@nnx.jit(static_argnames="case", graph=False)
def capture(model, X, Y, masks, shifts, case):
    """``model_backward`` and the captures in the notes' layout (every Z, A, the cost, every gradient), compiled
    once per network and batch shape in a process (``step_case``, as ``train_step``).  Eagerly, JAX compiled each
    operation of the pass for each new shape: 60-170 compilations on a case's first comparison."""
    m = X.shape[0]
    cost, caches, grads, dS = model_backward(model, X, Y, case, masks, shifts)
    captured = {}
    for l in range(1, case.L + 1):
        captured[f"Z{l}"], captured[f"A{l}"] = caches[2 * (l - 1)].T, caches[2 * l - 1].T
    captured["cost"] = recorded_cost(cost, caches, Y, model, case)
    captured.update(notes_gradients(grads, dS, m))
    return captured


def step_case(case):
    """The case as the compiled functions see it (their static argument): its name and batch size (which no step
    reads) set aside, and its length too unless the learning rate decays (the decay's table of rates is as long as
    the run), so that runs of one network share what is compiled, as ``jax_impl.model.compiled_step``'s."""
    return case.step_case(keep_epochs=case.decay != "none")


@functools.cache
def _transformation(make, case, epoch_steps):
    """``make(case, epoch_steps)``, one object per arguments in a process: the ``nnx.Optimizer``'s ``tx`` is a
    static attribute that ``nnx.jit`` compares by identity, so a new one would compile the step again.  ``make``
    (``make_optimizer`` as ``train`` finds it) is part of the key."""
    return make(case, epoch_steps)


@nnx.jit(static_argnames="case", graph=False)
def train_step(model, optimizer, X_batch, Y_batch, batch_masks, case):
    """One gradient step: ``nnx.value_and_grad`` of ``total_cost``, then ``optimizer.update`` (in place).  Returns
    the step's recorded cost, computed before the update.  Compiled once per network (``step_case``), optimiser
    and batch shape in a process; ``graph=False`` (tree mode: the model and optimizer as pytrees, which share no
    variables) skips the graph traversal that costs most of a step's time in graph mode."""
    cost, caches, grads, _ = model_backward(model, X_batch, Y_batch, case, batch_masks)
    J = recorded_cost(cost, caches, Y_batch, model, case)  # before the update
    update_parameters(optimizer, model, grads)
    return J


def clear_compiled():
    """Forget every compiled step and pass of this module.  What is compiled holds the code that was in place
    when it was traced: whoever changes that code in a process (a test's ``mock.patch``, an injected fault)
    clears before and after, or later runs of the network would reuse the changed code (or miss the change).
    ``nnparity.impls.clear_compiled`` clears every loaded implementation's."""
    train_step.jitted_fn.clear_cache()
    capture.jitted_fn.clear_cache()
    _transformation.cache_clear()
    activation_function.cache_clear()


def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
    """The flax/optax training loop on the reference's schedule, with its dropout masks: ``train_step`` (one
    ``nnx.jit`` step: ``nnx.value_and_grad``, ``optimizer.update``) per batch; a last, smaller mini-batch compiles
    once more for its shape (and L2's m).  The batches are taken in NumPy (an eager JAX gather costs more than
    the step).  Returns (parameters in the notes' layout, costs) as NumPy.

    ``on_step(step)``, if given, is called once per gradient step, right after the model's updated parameters
    are ready (``jax.block_until_ready``), with the step index 0..steps-1."""
    _check(case, masks)
    model = _model(parameters, case)
    steps = case.epochs if schedule is None else len(schedule)
    static = step_case(case)
    epoch_steps = 1 if case.decay == "none" else steps_per_epoch(case, steps)  # only the decay's schedule reads it
    optimizer = nnx.Optimizer(model, _transformation(make_optimizer, static, epoch_steps), wrt=nnx.Param)
    X, Y = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)  # examples as rows
    full_batch = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    costs = []
    for step in range(steps):
        if schedule is None:
            X_batch, Y_batch = full_batch
        else:
            X_batch, Y_batch = to_tensor(X[schedule[step]], case.dtype), to_tensor(Y[schedule[step]], case.dtype)
        costs.append(train_step(model, optimizer, X_batch, Y_batch,
                                _row_masks(masks[step], case) if case.dropout else None, case=static))
        if on_step is not None:
            jax.block_until_ready(nnx.state(model, nnx.Param))
            on_step(step)
    return parameters_of(model), np.array(costs, dtype=case.dtype)


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    return to_numpy(predict(to_tensor(X, case.dtype), _model(parameters, case), case))
