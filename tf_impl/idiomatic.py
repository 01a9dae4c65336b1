"""The L-layer network of the notes as idiomatic Keras 3: ``keras.Sequential`` of ``Dense`` layers,
``BinaryCrossentropy`` / ``CategoricalCrossentropy``, ``keras.optimizers.SGD`` / ``RMSprop`` / ``Adam``, L2 by a
kernel regulariser, dropout by ``DropoutMask``, trained step by step or with ``model.fit``.

Side by side with ``tf_impl.model`` (the notes' equations in TF ops): the same
functions, in the same order, with the same names, but every quantity lives in
a Keras object and examples are **rows**, Keras' convention.  How each notes
symbol maps onto the framework object:

================  ==========================================================================
notes             here
================  ==========================================================================
``X (n0, m)``     ``X.T``: an ``(m, n0)`` tensor, one example per row (``Y`` -> ``Y.T``, ``(m, 1)``)
``W[l]``          ``Dense.kernel.T``: the kernel is ``(in, out) = (n[l-1], n[l])``
``b[l] (n[l],1)`` ``Dense.bias``, shape ``(n[l],)``: ``b[l].ravel()``
``Z[l]``          the output of layer l's ``Dense`` (no activation), ``(m, n[l])`` = ``Z[l].T``
``A[l] = g(Z)``   the output of the layer after it: ``Activation("relu" | "tanh" | "sigmoid" |
                  "linear")`` or ``LeakyReLU(negative_slope)``
``D[l]`` dropout   ``DropoutMask(keep_prob)`` after every hidden activation: ``A * D / keep_prob`` with the
                  reference's mask ``D[l].T`` fed as a (bool) model input every step, in a functional
                  ``keras.Model([X, D1, ..., D(L-1)], AL)`` (``keras.layers.Dropout`` draws its own masks)
softmax ``AL``    ``Activation("softmax")`` on the last ``Dense``; ``CategoricalCrossentropy()`` with the
                  one-hot ``Y.T`` ``(m, C)`` (it takes the softmax's logits, ``_keras_logits``, and computes
                  ``softmax_cross_entropy_with_logits``); predictions are ``argmax(AL)``
fused ``dZL``     ``output_gradient="fused"``: ``BinaryCrossentropy(from_logits=True)`` /
                  ``CategoricalCrossentropy(from_logits=True)`` on the last ``Dense``'s output ``ZL`` (the
                  capture model's, in the training step too): dZL = AL - Y; the *recorded* cost is the
                  notes' formula on ``AL`` (``tf_impl.losses.compute_cost``: inf where AL saturated)
cost ``J``        ``keras.losses.BinaryCrossentropy()`` ("sum_over_batch_size": the notes' 1/m sum);
                  ``MeanAbsoluteError()``, ``MeanSquaredError()`` for l1/l2; with L2 plus ``model.losses``
                  (the kernels' regularisation terms, ``total_cost``): the course's ``+ lambda/(2m) sum ||W||^2``
``dW[l]``         the tape's gradient of the kernel, transposed (with L2 it includes ``lambda/m W``)
``db[l]``         the tape's gradient of the bias, reshaped to ``(n[l], 1)``
``dZ[l], dA[l]``  the tape's gradient of the Dense / activation outputs (a functional model over
                  the same layers returns them all), transposed and times m
update            ``optimizer.apply_gradients(zip(grads, model.trainable_variables))`` of (``make_optimizer``,
                  built inside ``floatx(case.dtype)``):
                  gd: ``SGD(learning_rate=alpha)``;
                  momentum: ``SGD(learning_rate=alpha (1 - beta), momentum=np.float64(beta))`` (Keras'
                  ``m = beta m - lr g; w += m`` is ``-alpha`` times the course's v);
                  rmsprop: ``RMSprop(learning_rate=alpha, rho=np.float64(beta2), epsilon=np.float64(eps))``;
                  adam: ``Adam(learning_rate=alpha, beta_1, beta_2, epsilon)``, all ``np.float64``;
                  or ``model.fit(X.T, Y.T, batch_size=m, shuffle=False)`` for full batches
decay             the learning rate is ``keras.optimizers.schedules.InverseTimeDecay(alpha, decay_steps,
                  decay_rate, staircase=True)`` (``learning_rate_schedule``), called with the optimizer's
                  ``iterations`` (steps from 0): ``alpha / (1 + decay_rate floor(step / decay_steps))``, with
                  ``decay_steps`` the steps of one epoch (``update_lr``) or of ``time_interval`` epochs
                  (``schedule_lr_decay``); alpha passed as ``np.float64`` (the schedule computes in its
                  dtype), cast to the variables' dtype by the optimiser
L2 ``lambda``     ``keras.regularizers.L2(lambda / (2m))`` as the kernels' ``kernel_regularizer`` (the biases
                  have none), its ``l2`` replaced by a non-trainable variable in the case's dtype that the
                  compiled step sets to ``lambda / (2 m_batch)`` (the remainder batch's m differs):
                  ``l2 * sum(square(W))``, whose gradient is the course's ``lambda/m W``
batches           the project's schedule (``tf.gather(X, idx)`` per step), never ``fit``'s shuffling
================  ==========================================================================

Keras semantics that differ from the notes, read in the Keras 3.15.1 sources
(``keras/src/...``) and TensorFlow 2.21's, and what this module does about them:

* **floatx is float32.**  Whatever the layers' dtype, these objects take ``backend.floatx()``:
  the optimizer's learning-rate variable (``optimizers/base_optimizer.py``, ``dtype=backend.floatx()``:
  0.05 becomes 0.0500000007), the loss's compute dtype (``losses/loss.py``,
  ``dtype_policies.get(dtype or backend.floatx())``; ``__call__`` casts ``y_pred`` to it), the
  ``fit`` loss tracker (``trainers/trainer.py``, ``metrics_module.Mean(name="loss")``, a metric of
  dtype floatx, ``metrics/metric.py``) and ``fit``'s input arrays (``trainers/data_adapters/
  array_slicing.py``, "Normalize floats to floatx": ``sliceable_class.cast(x, backend.floatx())``).  Each run
  therefore builds everything inside ``floatx(case.dtype)``, which sets floatx and restores it.
  Measured without it (l2-tanh float64, 100 full-batch steps): the float32 learning rate alone
  drifts the cost trajectory by 1.3e-9 relative (tolerance 1e-10); ``fit`` on float32-cast inputs
  is off by 3.8e-8 at step 0.
* **Python-float hyper-parameters go through float32.**  ``SGD``'s ``momentum`` and ``Adam``'s ``beta_1``,
  ``beta_2`` are cast per step (``ops.cast(self.momentum, variable.dtype)``); ``tf.cast`` of a Python float
  makes a float32 tensor first, so 0.9 becomes 0.8999999761581421 in float64 (``RMSprop``'s ``rho``,
  ``epsilon`` and ``Adam``'s ``epsilon`` enter the ops directly and keep float64).  ``make_optimizer`` passes
  every one of them as ``np.float64``.
* **Optimiser forms** (``optimizers/sgd.py``, ``rmsprop.py``, ``adam.py``): SGD momentum is
  ``m = momentum m - lr g; w += m``, the course's with ``lr = alpha (1 - beta)`` (aligned); RMSprop divides by
  ``sqrt(velocity + epsilon)``, the course by ``sqrt(s) + eps``; Adam uses ``alpha_t = lr sqrt(1 - beta2^t) /
  (1 - beta1^t)`` and adds ``epsilon`` to the uncorrected ``sqrt(v)``, the course to ``sqrt(s_hat)``.  Neither
  eps placement can be aligned through the arguments: the rmsprop / adam runs differ from the course by
  these documented amounts (``nnparity/catalogue.py``: ``keras-rmsprop-epsilon``, ``keras-adam-epsilon``).
* **Dropout** by ``keras.layers.Dropout`` is the same inverted dropout (scale ``1/(1 - rate)``, identity when
  not training) with its own ``stateless_dropout`` masks; ``DropoutMask`` takes the reference's instead.
* **BinaryCrossentropy after a sigmoid uses the logits.**  ``activations.sigmoid`` stores its
  input on the output (``output._keras_logits = x``, ``activations/activations.py``) and
  ``backend/tensorflow/nn.py`` ``binary_crossentropy`` takes it (``_get_logits``; in a graph also
  any output whose op is ``Sigmoid``) and returns ``tf.nn.sigmoid_cross_entropy_with_logits``:
  ``max(z, 0) - z y + log1p(exp(-|z|))`` of ``ZL``, not ``-(y log a + (1-y) log(1-a))`` of ``AL``.
  Mathematically the same cost and ``dZL = AL - Y``; only the rounding differs, and
  the cost does not depend on ``AL`` at all (the tape has no gradient for it).  The
  probability formula, used for any other output, clips ``AL`` to ``[1e-7, 1 - 1e-7]``
  (``backend.epsilon()``) with a zero gradient outside; it is not taken here.
* **LeakyReLU's slope is a float32 attribute.**  ``LeakyReLU`` -> ``activations.leaky_relu`` ->
  ``backend/tensorflow/nn.py`` ``tf.nn.leaky_relu(x, alpha=negative_slope)``, whose ``alpha`` is a
  ``float`` (32-bit) op attribute (``tensorflow/python/ops/gen_nn_ops.py``, ``_execute.make_float``):
  in float64 the slope is float32(0.01) = 0.009999999776, a 2e-8 relative change of every
  negative activation.  It cannot be aligned without leaving ``LeakyReLU``; the float64
  leaky-relu cases of the grid assert exactly this difference (``parity_tests/test_parity_grid.py``).
* ``Dense`` computes ``X kernel + bias`` on rows (``layers/core/dense.py``; ``ops.add`` becomes
  ``tf.nn.bias_add``, ``backend/tensorflow/numpy.py``), another summation order than ``W A_prev + b``;
  compiled steps may let grappler fuse MatMul/BiasAdd/activation: rounding-level, within the bounds.
* ``model.fit`` compiles with ``jit_compile="auto"``, which is off on CPU-only machines
  (``trainers/trainer.py`` ``_resolve_auto_jit_compile``); ``jit_compile=False`` says so explicitly.
  ``logs["loss"]`` in ``on_train_batch_end`` is the ``Mean`` of the epoch's batch losses so far,
  weighted by batch size: with one batch per epoch, ``fl(fl(J m) / m)``, the cost of that step's
  forward pass, before its update (``backend/tensorflow/trainer.py`` ``train_step``).

The initial parameters come from the reference (``model.set_weights(to_keras_weights(parameters))``);
the layers are built with zero initialisers, never used.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from nnparity.errors import UsageError
from reference.optimizers import steps_per_epoch
from tf_impl.losses import compute_cost as notes_cost

DTYPES = {"float64": tf.float64, "float32": tf.float32}
LOSSES = {
    "cross_entropy": keras.losses.BinaryCrossentropy,
    "l1": keras.losses.MeanAbsoluteError,
    "l2": keras.losses.MeanSquaredError,
    "categorical_cross_entropy": keras.losses.CategoricalCrossentropy,
}
LOSS_NAMES = tuple(LOSSES)


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def floatx(dtype):
    """``keras.backend.floatx()`` is ``dtype`` inside, and what it was before afterwards."""
    previous = keras.backend.floatx()
    keras.backend.set_floatx(dtype)
    try:
        yield
    finally:
        keras.backend.set_floatx(previous)


def to_tensor(array, dtype):
    return tf.constant(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return tensor.numpy()


def activation_layer(activation, slope=0.01, dtype=None):
    """The Keras layer of g."""
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=slope, dtype=dtype)
    if activation not in ("relu", "tanh", "sigmoid", "linear", "softmax"):
        raise ValueError(f"keras has no layer for activation {activation!r} here")
    return keras.layers.Activation(activation, dtype=dtype)


def loss_function(loss, dtype=None, output_gradient="chained"):
    """The Keras loss of J, reduction "sum_over_batch_size" (the notes' 1/m sum over the m examples); with
    the fused output gradient the cross-entropy of the logits ZL (``from_logits=True``)."""
    if output_gradient == "fused":
        return LOSSES[loss](from_logits=True, dtype=dtype)
    return LOSSES[loss](dtype=dtype)


class DropoutMask(keras.layers.Layer):
    """Inverted dropout with a given mask: ``[A, D] -> A * D / keep_prob``.

    ``keras.layers.Dropout`` draws its own masks (a seed generator); parity needs the reference's
    ``D[l]``, so the mask is a model input (``D[l].T``, rows), fed every step to the one compiled step."""

    def __init__(self, keep_prob, **kwargs):
        super().__init__(**kwargs)
        self.keep_prob = keep_prob

    def call(self, inputs, training=None):
        A, D = inputs
        if training is False:  # inference, as keras.layers.Dropout: the identity, no 1/keep_prob
            return A
        return A * keras.ops.cast(D, A.dtype) / self.keep_prob

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def build_model(case, l2=None):
    """``keras.Sequential([Input(n0), Dense(n1), g1, ..., Dense(n[L]), sigmoid | softmax])`` in the case's
    dtype.  With dropout, a functional model with inputs ``[X, D1, ..., D(L-1)]`` and a ``DropoutMask``
    after every hidden activation.  ``l2``: the kernels' ``keras.regularizers.L2`` (the biases have none)."""
    with floatx(case.dtype):
        dense = [keras.layers.Dense(case.layer_dims[l], kernel_initializer="zeros", kernel_regularizer=l2,
                                    dtype=case.dtype) for l in range(1, case.L + 1)]
        acts = [activation_layer(activation, case.leaky_slope, dtype=case.dtype)
                for activation in case.activations()]
        if not case.dropout:
            layers = [keras.Input(shape=(case.layer_dims[0],), dtype=case.dtype)]
            for d, g in zip(dense, acts):
                layers += [d, g]
            return keras.Sequential(layers)
        X = keras.Input(shape=(case.layer_dims[0],), dtype=case.dtype)
        Ds = [keras.Input(shape=(n,), dtype="bool") for n in case.layer_dims[1:-1]]
        A = X
        for l, (d, g) in enumerate(zip(dense, acts), start=1):
            A = g(d(A))
            if l < case.L:
                A = DropoutMask(case.keep_prob, dtype=case.dtype)([A, Ds[l - 1]])
        return keras.Model([X] + Ds, A)


def _layers(model):
    """The model's layers without its InputLayers."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def capture_model(model):
    """A functional model over the same layers returning every output: [Z1, A1, ..., ZL, AL]."""
    layers = _layers(model)
    outputs = []
    for i, layer in enumerate(layers):  # Z: the Dense's output; A: the last output before the next Dense
        if isinstance(layer, keras.layers.Dense) or i + 1 == len(layers) or isinstance(layers[i + 1],
                                                                                       keras.layers.Dense):
            outputs.append(layer.output)
    return keras.Model(model.inputs, outputs)


def denses(model):
    """The ``Dense`` layers 1..L of the model."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def to_keras_weights(parameters):
    """Notes' parameters -> ``model.get_weights()`` order: ``[W1.T, b1.ravel(), ..., WL.T, bL.ravel()]``."""
    L = len(parameters) // 2
    weights = []
    for l in range(1, L + 1):
        weights += [np.array(parameters[f"W{l}"].T, order="C"), np.array(parameters[f"b{l}"]).ravel()]  # copies
    return weights


def from_keras_weights(weights, L):
    """``model.get_weights()`` -> notes' parameters ``{W1: (n1, n0), b1: (n1, 1), ...}``."""
    parameters = {}
    for l in range(1, L + 1):
        kernel, bias = weights[2 * (l - 1)], weights[2 * l - 1]
        parameters[f"W{l}"] = np.array(np.asarray(kernel).T, order="C")
        parameters[f"b{l}"] = np.array(bias).reshape(-1, 1)
    return parameters


def linear_forward(A_prev, dense):
    """Z = W A_prev + b, on rows: ``dense(A_prev)`` = A_prev kernel + bias."""
    return dense(A_prev)


def linear_activation_forward(A_prev, dense, activation):
    """Z = dense(A_prev); A = activation(Z).  Returns A and the cache (A_prev, dense, Z)."""
    Z = linear_forward(A_prev, dense)
    A = activation(Z)
    return A, (A_prev, dense, Z)


def model_forward(X, model, capture=None, masks=None, training=None):
    """AL = model(X), or ``model([X, D1, ...])`` with dropout masks (rows).  With ``capture``
    (``capture_model(model)``), also every layer's Z and A [Z1, A1, ..., ZL, AL] as the caches.
    ``training=False`` is inference: ``DropoutMask`` is then the identity."""
    inputs = X if masks is None else [X, *masks]
    if capture is None:
        return model(inputs, training=training), []
    caches = capture(inputs)
    return caches[-1], caches


def model_backward(tape, cost, model, caches=(), m=1):
    """The tape's gradients of the cost with respect to the model's variables; with caches, the
    notes' {'dWl', 'dbl', 'dZl', 'dA(l-1)'} (transposed to the notes' layout; dZ, dA times m)."""
    variables = model.trainable_variables
    if not caches:
        return tape.gradient(cost, variables)
    L = len(caches) // 2
    Zs, As = caches[0::2], caches[1::2][:-1]
    grads_list = tape.gradient(cost, variables + list(Zs) + list(As))
    grads = {}
    for l in range(1, L + 1):
        grads[f"dW{l}"] = tf.transpose(grads_list[2 * (l - 1)])
        grads[f"db{l}"] = tf.reshape(grads_list[2 * l - 1], (-1, 1))
        grads[f"dZ{l}"] = m * tf.transpose(grads_list[2 * L + l - 1])
    for l in range(1, L):
        grads[f"dA{l}"] = m * tf.transpose(grads_list[3 * L + l - 1])
    return grads


def learning_rate_schedule(case, epoch_steps, factor=1.0):
    """alpha times ``factor`` (``case.learning_rate * factor``, as jax_impl.idiomatic's), or with the course's decay
    ``InverseTimeDecay(alpha, decay_steps, decay_rate, staircase=True)``:
    ``alpha / (1 + decay_rate floor(step / decay_steps))`` of the optimizer's step count is
    ``update_lr`` of the epoch with ``decay_steps`` = the steps of an epoch, and ``schedule_lr_decay`` with the
    steps of ``time_interval`` epochs.  The schedule computes in the dtype of its initial rate, a Python float's
    float32 even under floatx float64 (``ops.convert_to_tensor``), and casts ``decay_rate`` to it (a Python float
    through float32, ``keras-float32-hyperparameter-cast``): both are passed as ``np.float64``, and the optimiser
    casts the rate to each variable's dtype (``keras-learning-rate-decay``)."""
    learning_rate = case.learning_rate * factor
    if case.decay == "none":
        return learning_rate
    epochs = 1 if case.decay == "inverse-time" else case.time_interval
    return keras.optimizers.schedules.InverseTimeDecay(np.float64(learning_rate), decay_steps=epochs * epoch_steps,
                                                       decay_rate=np.float64(case.decay_rate), staircase=True)


def make_optimizer(case, epoch_steps=1):
    """The case's Keras optimiser (build it inside ``floatx(case.dtype)``: its hyper-parameters are floatx);
    with the course's decay its learning rate is ``learning_rate_schedule`` (an epoch: ``epoch_steps`` steps).

    gd: ``SGD(learning_rate=alpha)``; momentum: ``SGD(learning_rate=alpha (1 - beta), momentum=beta)``
    (Keras' ``m = beta m - lr g; w += m`` is ``-alpha`` times the course's v); rmsprop:
    ``RMSprop(learning_rate=alpha, rho=beta2, epsilon=eps)`` (eps *inside* the sqrt); adam:
    ``Adam(learning_rate=alpha, beta_1, beta_2, epsilon)`` (eps added to the uncorrected sqrt(v))."""
    f64 = np.float64  # a float subclass: Keras' ops.cast(self.momentum, float64) of a Python float goes through
    # a float32 tensor (tf.cast converts 0.9 to float32 first: 0.8999999761581421); a NumPy float64 does not
    if case.optimizer == "gd":
        return keras.optimizers.SGD(learning_rate=learning_rate_schedule(case, epoch_steps))
    if case.optimizer == "momentum":
        return keras.optimizers.SGD(learning_rate=learning_rate_schedule(case, epoch_steps, 1 - case.beta),
                                    momentum=f64(case.beta))
    if case.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate_schedule(case, epoch_steps), rho=f64(case.beta2),
                                        epsilon=f64(case.epsilon))
    if case.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate_schedule(case, epoch_steps), beta_1=f64(case.beta1),
                                     beta_2=f64(case.beta2), epsilon=f64(case.epsilon))
    raise ValueError(f"unknown optimizer {case.optimizer!r}")


def l2_regularizer(case, m):
    """``keras.regularizers.L2(lambda / (2 m))`` for the kernels (``l2 * sum(square(W))``, whose gradient is
    ``lambda/m W``), its coefficient made a variable in the case's dtype so that the training step can set
    it to ``lambda / (2 m_batch)`` on every batch (the remainder batch's m differs).  None without L2."""
    if not case.lambd:
        return None
    regularizer = keras.regularizers.L2(case.lambd / (2 * m))
    regularizer.l2 = keras.Variable(case.lambd / (2 * m), dtype=case.dtype, trainable=False, name="l2")
    return regularizer


def total_cost(model, loss_fn, AL, Y, ZL=None):
    """The loss plus the model's regularisation losses (``model.losses``: the kernels' L2 terms); with ``ZL``
    (the fused output gradient) the loss takes the logits."""
    cost = loss_fn(Y, AL if ZL is None else ZL)
    if model.losses:
        cost = cost + keras.ops.sum(keras.ops.stack(model.losses))
    return cost


def recorded_cost(cost, AL, Y, model, case):
    """The cost a step records: ``cost``, or with the fused output gradient the notes' formula on AL
    (``tf_impl.losses.compute_cost``, inf where AL saturated) plus the same ``model.losses``."""
    if case.output_gradient == "chained":
        return cost
    J = notes_cost(tf.transpose(AL), tf.transpose(Y), case.loss)
    if model.losses:
        J = J + keras.ops.sum(keras.ops.stack(model.losses))
    return J


def update_parameters(optimizer, model, grads):
    """One update by the case's optimiser: ``optimizer.apply_gradients`` (in place on the variables)."""
    optimizer.apply_gradients(zip(grads, model.trainable_variables))


def predict(X, model, case=None):
    """Sigmoid output: 1 where AL > 0.5, else 0; softmax: the argmax class; shape (1, m) (X in the notes'
    layout; a dropout model is run in inference, ``training=False``: its mask inputs are fed but unused)."""
    X = tf.transpose(X)
    masks = None
    if case is not None and case.dropout:
        masks = [tf.ones((X.shape[0], n), tf.bool) for n in case.layer_dims[1:-1]]
    AL, _ = model_forward(X, model, masks=masks, training=False)
    if case is not None and case.output_activation == "softmax":
        return tf.reshape(tf.argmax(AL, axis=1), (1, -1))
    return tf.transpose(tf.cast(AL > 0.5, tf.int64))


class CostPerStep(keras.callbacks.Callback):
    """Records ``logs["loss"]`` after every training batch of ``model.fit``.

    It is the ``Mean`` of the epoch's batch losses so far, so it is the step's cost only with one
    batch per epoch (full batch): then ``fl(fl(J m) / m)``, within an ulp of the cost that step's
    forward pass computed before the update.
    """

    def __init__(self, on_step=None):
        super().__init__()
        self.costs = []
        self.on_step = on_step

    def on_train_batch_end(self, batch, logs=None):
        self.costs.append(logs["loss"])
        if self.on_step is not None:  # the step's update is done: fit's train function has returned
            self.on_step(len(self.costs) - 1)


def _model(parameters, case, l2=None):
    """The case's Keras model loaded with the notes' parameters."""
    model = build_model(case, l2)
    model.set_weights(to_keras_weights(parameters))
    return model


def _check(case, masks=None):
    """The idiomatic model covers the sigmoid output with {cross_entropy, l1, l2} and the softmax output with
    categorical cross-entropy; dropout needs the reference's masks.  Anything else is refused."""
    if case.loss not in LOSS_NAMES:
        raise UsageError(f"--impl keras implements the losses {', '.join(LOSS_NAMES)}, not {case.loss}; "
                         f"use --impl tf or tf-function")
    if case.dropout and masks is None:
        raise UsageError("--impl keras trains dropout with the reference's masks (DropoutMask); none were given")


def _logits(caches, case):
    """ZL, the last Dense's output, for the loss of a fused output gradient; None otherwise."""
    return caches[-2] if case.output_gradient == "fused" else None


def _row_masks(masks, case):
    return None if not case.dropout else [tf.constant(np.ascontiguousarray(D.T)) for D in masks]


def forward_backward(parameters, X, Y, case, masks=None):
    """One forward and backward pass through the Keras layers; every intermediate captured as NumPy
    arrays in the notes' layout (see reference)."""
    _check(case, masks)
    setup(case.seed)
    with floatx(case.dtype):
        model, capture, l2 = capture_network(case)
        model.set_weights(to_keras_weights(parameters))
        if l2 is not None:  # the course's m is this batch's size
            l2.l2.assign(case.lambd / (2 * X.shape[1]))
        loss_fn = loss_function(case.loss, case.dtype, case.output_gradient)
        X, Y = to_tensor(X.T, case.dtype), to_tensor(Y.T, case.dtype)  # examples as rows
        with tf.GradientTape() as tape:
            AL, caches = model_forward(X, model, capture, _row_masks(masks, case))
            cost = total_cost(model, loss_fn, AL, Y, _logits(caches, case))
        captured = {}
        for l in range(1, case.L + 1):
            captured[f"Z{l}"], captured[f"A{l}"] = tf.transpose(caches[2 * (l - 1)]), tf.transpose(caches[2 * l - 1])
        captured["cost"] = recorded_cost(cost, AL, Y, model, case)
        captured.update(model_backward(tape, cost, model, caches, m=Y.shape[0]))
    return {k: to_numpy(v) for k, v in captured.items()}


#: ``forward_backward``'s networks: normalised case -> (model, capture model, L2 regulariser or None).
_CAPTURES = {}


def capture_network(case):
    """The case's Keras model, its ``capture_model`` and its L2 regulariser, built once per network and dtype in a
    process (``case.step_case()``; building them cost more than the capture itself, measured): each caller loads its
    parameters (``set_weights``) and ``forward_backward`` sets L2's ``lambda / (2 m)`` before it runs, so they
    compute what new objects would (``predictions`` runs in inference, without the loss).  Call it inside
    ``floatx(case.dtype)``."""
    key = case.step_case()
    if key not in _CAPTURES:
        l2 = l2_regularizer(case, 1)  # its coefficient is set by every call
        model = build_model(case, l2)
        _CAPTURES[key] = model, capture_model(model), l2
    return _CAPTURES[key]


#: ``train``'s compiled steps: (normalised case, a decay's steps per epoch) -> (model, optimizer, step).
_COMPILED = {}


def compiled_step(parameters, case, epoch_steps):
    """The training step (``GradientTape``, the loss plus ``model.losses``, ``optimizer.apply_gradients``) under
    ``tf.function``, over a model and an optimiser built once per network, optimiser and dtype in a process, as
    ``tf_impl.model.compiled_step``: the key is the case with its length and batch size set aside (and, with a
    learning-rate decay, the steps of an epoch, which its schedule reads).  The traced step holds the model's and
    the optimiser's variables, so every run loads its initial ``parameters`` into the model and zeroes every
    optimiser variable but the learning rate (its step count and moments: a new optimiser's values); L2's
    coefficient is set by each step.  A run then starts exactly as with new objects.  The step is the traced graph
    itself (``get_concrete_function``).  Call it inside ``floatx(case.dtype)``.  Returns (model, step)."""
    key = case.step_case(), epoch_steps if case.decay != "none" else None
    if key not in _COMPILED:
        l2 = l2_regularizer(case, 1)  # its coefficient lambda / (2 m_batch) is set by every step
        model = build_model(case, l2)
        loss_fn = loss_function(case.loss, case.dtype, case.output_gradient)
        optimizer = make_optimizer(case, epoch_steps)
        optimizer.build(model.trainable_variables)
        capture = capture_model(model) if case.output_gradient == "fused" else None  # ZL for the loss
        n, hidden = case.layer_dims, list(case.layer_dims[1:-1]) if case.dropout else []
        signature = ([tf.TensorSpec([None, n[0]], DTYPES[case.dtype]), tf.TensorSpec([None, n[-1]], DTYPES[case.dtype])]
                     + [tf.TensorSpec([None, n_l], tf.bool) for n_l in hidden])

        @tf.function(input_signature=signature)
        def train_step(X_batch, Y_batch, *batch_masks):
            if l2 is not None:  # the course's m is this batch's size
                l2.l2.assign(case.lambd / (2 * tf.cast(tf.shape(X_batch)[0], X_batch.dtype)))
            with tf.GradientTape() as tape:
                AL, caches = model_forward(X_batch, model, capture, masks=list(batch_masks) or None)
                cost = total_cost(model, loss_fn, AL, Y_batch, _logits(caches, case))
            grads = model_backward(tape, cost, model)
            update_parameters(optimizer, model, grads)
            return recorded_cost(cost, AL, Y_batch, model, case)

        _COMPILED[key] = model, optimizer, train_step.get_concrete_function()
    model, optimizer, step = _COMPILED[key]
    model.set_weights(to_keras_weights(parameters))
    for v in optimizer.variables:
        if v.name != "learning_rate":
            v.assign(tf.zeros(v.shape, v.dtype))
    return model, step


def clear_compiled():
    """Forget every compiled step of this module.  What is compiled holds the code that was in place when it was
    traced: whoever changes that code in a process (a test's ``mock.patch``, an injected fault) clears before
    and after, or later runs of the network would reuse the changed code (or miss the change).
    ``nnparity.impls.clear_compiled`` clears every loaded implementation's."""
    _COMPILED.clear()
    _CAPTURES.clear()


def train(parameters, X, Y, case, schedule=None, masks=None, use_fit=False, on_step=None):
    """Keras training on the reference's schedule.  Returns (parameters in the notes' layout, costs) as NumPy.

    The default runs one compiled step per batch (``compiled_step``, traced once per network), fed the project's
    schedule, the reference's dropout masks and L2's ``lambda / (2 m_batch)``.  ``use_fit=True`` trains full-batch
    runs with ``model.fit(X.T, Y.T, batch_size=m, epochs, shuffle=False)`` on new objects instead and records each
    step's cost with ``CostPerStep``; mini-batches and dropout never use ``fit`` (its shuffling is not the
    project's, its masks are not fed).
    ``on_step(step)``, if given, is called once per gradient step, right after the compiled step's call
    returns (``fit``: from ``CostPerStep.on_train_batch_end``), with the step index 0..steps-1.
    """
    _check(case, masks)
    if use_fit and (schedule is not None or case.dropout or case.output_gradient == "fused"):
        raise ValueError("use_fit trains full batches only, without dropout or a fused output gradient (fit "
                         "records the loss of its model's output); mini-batches follow the project's schedule step "
                         "by step")
    setup(case.seed)
    steps = case.epochs if schedule is None else len(schedule)
    epoch_steps = steps_per_epoch(case, steps)
    with floatx(case.dtype):
        if use_fit:
            model = _model(parameters, case, l2_regularizer(case, X.shape[1]))
            recorder = CostPerStep(on_step)
            model.compile(optimizer=make_optimizer(case, epoch_steps),
                          loss=loss_function(case.loss, case.dtype, case.output_gradient), jit_compile=False)
            model.fit(np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), batch_size=X.shape[1], epochs=case.epochs,
                      shuffle=False, verbose=0, callbacks=[recorder])
            return from_keras_weights(model.get_weights(), case.L), np.array(recorder.costs, dtype=case.dtype)

        model, train_step = compiled_step(parameters, case, epoch_steps)
        X, Y = to_tensor(X.T, case.dtype), to_tensor(Y.T, case.dtype)  # examples as rows
        costs = []
        for step in range(steps):
            if schedule is None:
                X_batch, Y_batch = X, Y
            else:
                idx = tf.constant(schedule[step])
                X_batch, Y_batch = tf.gather(X, idx), tf.gather(Y, idx)
            step_masks = _row_masks(masks[step], case) if case.dropout else []
            costs.append(train_step(X_batch, Y_batch, *step_masks))
            if on_step is not None:
                on_step(step)
        return from_keras_weights(model.get_weights(), case.L), np.array([c.numpy() for c in costs])


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    setup(case.seed)
    with floatx(case.dtype):
        model = capture_network(case)[0]
        model.set_weights(to_keras_weights(parameters))
        return to_numpy(predict(to_tensor(X, case.dtype), model, case))
