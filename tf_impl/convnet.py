"""The course's convolutional networks as idiomatic Keras 3: ``keras.layers.BatchNormalization(axis=3)``, and the
"happy" (``keras.Sequential``) and "signs" (functional ``keras.Model``) models exactly as the course writes them,
with the reference's parameters copied in by ``set_weights``.

The same public functions as ``reference.convnet`` (``batchnorm``, ``forward_backward``, ``train``), NumPy in the
reference's layouts at the boundary.  Keras is NHWC and HWIO already:

================  ==========================================================================
reference         here
================  ==========================================================================
images NHWC       as they are
``W (f,f,C',C)``  ``Conv2D.kernel``, the same HWIO array; ``b (1,1,1,C)`` -> ``Conv2D.bias`` ``(C,)``
'same' padding    ``Conv2D(..., padding="same")`` / ``MaxPool2D(..., padding="same")``: TF's own, which
                  ``reference.convnet.same_padding`` writes out (the odd cell behind; -inf for max pools)
BatchNorm         ``BatchNormalization(axis=3, momentum=momentum, epsilon=epsilon)``: ``moving = moving
                  momentum + batch (1 - momentum)`` (``keras/src/layers/normalization/batch_normalization.py``),
                  the batch's moments by ``tf.nn.moments`` (biased variance, two-pass ``squared_difference``),
                  normalised by ``tf.nn.batch_normalization``.  Defaults: momentum 0.99, epsilon 1e-3, biased:
                  the reference's ``KERAS_BN``.  An unbiased running variance is not available.
Flatten           ``Flatten()`` on NHWC: the reference's order, no permutation
Dense ``W, b``    ``Dense.kernel`` is ``(n_in, n_out)`` = ``W.T``; ``bias = b.ravel()``
cost              ``BinaryCrossentropy()`` / ``CategoricalCrossentropy()`` on the sigmoid / softmax outputs
                  (Keras takes the logits the activation recorded, ``_keras_logits``), mean over m
gradients         ``tf.GradientTape`` over ``model(X, training=True)`` (which also updates the moving statistics)
update            ``keras.optimizers.SGD(learning_rate)``; everything is built inside ``floatx(dtype)``
                  (``tf_impl.idiomatic``: Keras' optimiser and loss otherwise compute in float32)
================  ==========================================================================
"""

import numpy as np
import tensorflow as tf
from tensorflow import keras

from reference.convnet import MODELS
from tf_impl.idiomatic import floatx

DTYPES = {"float64": tf.float64, "float32": tf.float32}

#: keras.layers.BatchNormalization's defaults in the reference's terms.
BN_DEFAULT = {"momentum": 0.99, "epsilon": 1e-3, "unbiased": False}


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


def to_tensor(array, dtype):
    return tf.constant(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def batchnorm_layer(bn=None, name=None, dtype=None):
    """``BatchNormalization(axis=3)`` with Keras' defaults (``bn=None``) or the reference's convention ``bn``."""
    if bn is None:
        return keras.layers.BatchNormalization(axis=3, name=name, dtype=dtype)
    if bn["unbiased"]:
        raise ValueError("keras.layers.BatchNormalization's moving variance is the biased one: run the reference "
                         "with unbiased=False to compare with it")
    return keras.layers.BatchNormalization(axis=3, momentum=bn["momentum"], epsilon=bn["epsilon"], name=name,
                                           dtype=dtype)


def _channels(a):
    return np.asarray(a).reshape(1, 1, 1, -1)


def batchnorm(Z, gamma, beta, running, dout, training, dtype, bn=None):
    """The layer on Z (NHWC), in training or inference mode, and the gradients of ``sum(out * dout)``.

    Returns {"out", "dZ", "dgamma", "dbeta", "running" {"mean", "var"}} in the reference's layouts."""
    setup()
    with floatx(dtype):
        layer = batchnorm_layer(bn, dtype=dtype)
        layer.build(Z.shape)
        layer.set_weights([np.ravel(gamma), np.ravel(beta), np.ravel(running["mean"]), np.ravel(running["var"])])
        x = to_tensor(Z, dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, training=training)
            total = tf.reduce_sum(out * to_tensor(dout, dtype))
        dZ, dgamma, dbeta = tape.gradient(total, [x, layer.gamma, layer.beta])
    return {"out": out.numpy(), "dZ": dZ.numpy(), "dgamma": _channels(dgamma), "dbeta": _channels(dbeta),
            "running": {"mean": _channels(layer.moving_mean), "var": _channels(layer.moving_variance)}}


# ----------------------------------------------------------------------------------------------- the models

def happy_model(shape, dtype, bn=None):
    """The course's ``happyModel``: a ``keras.Sequential``.  Every layer gets ``dtype``: Keras fixes its default
    dtype policy from floatx the first time one is asked for (``keras/src/dtype_policies/dtype_policy.py``,
    ``dtype_policy()``), so a later ``floatx`` does not change the layers' dtype."""
    return keras.Sequential([
        keras.Input(shape=shape, dtype=dtype),
        keras.layers.ZeroPadding2D(padding=3, dtype=dtype),
        keras.layers.Conv2D(32, 7, strides=1, name="conv0", dtype=dtype),
        batchnorm_layer(bn, name="bn0", dtype=dtype),
        keras.layers.ReLU(dtype=dtype),
        keras.layers.MaxPool2D(dtype=dtype),
        keras.layers.Flatten(dtype=dtype),
        keras.layers.Dense(1, activation="sigmoid", name="fc", dtype=dtype),
    ])


def convolutional_model(shape, dtype):
    """The course's ``convolutional_model`` (the signs): the functional API, as the course writes it (plus
    ``dtype``, see ``happy_model``)."""
    input_img = keras.Input(shape=shape, dtype=dtype)
    Z1 = keras.layers.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding="same", dtype=dtype)(input_img)
    A1 = keras.layers.ReLU(dtype=dtype)(Z1)
    P1 = keras.layers.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding="same", dtype=dtype)(A1)
    Z2 = keras.layers.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding="same", dtype=dtype)(P1)
    A2 = keras.layers.ReLU(dtype=dtype)(Z2)
    P2 = keras.layers.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding="same", dtype=dtype)(A2)
    F = keras.layers.Flatten(dtype=dtype)(P2)
    outputs = keras.layers.Dense(units=6, activation="softmax", dtype=dtype)(F)
    return keras.Model(inputs=input_img, outputs=outputs)


def build_model(model_name, shape, dtype, bn=None):
    with floatx(dtype):
        if model_name == "happy":
            return happy_model(tuple(shape), dtype, bn)
        if model_name == "signs":
            return convolutional_model(tuple(shape), dtype)
    raise ValueError(f"unknown model {model_name!r}; use one of: {', '.join(MODELS)}")


#: the reference's parameter names in the order of the trainable variables (kernel, bias per layer)
NAMES = {"happy": ("W1", "b1", "gamma1", "beta1", "W2", "b2"), "signs": ("W1", "b1", "W2", "b2", "W3", "b3")}


def to_keras(name, value):
    """One reference parameter in Keras' layout: conv kernels as they are, Dense ``W.T``, the rest flattened."""
    value = np.asarray(value)
    if name.startswith("W"):
        return value if value.ndim == 4 else value.T
    return value.ravel()


def from_keras(name, value, like):
    value = np.asarray(value)
    if name.startswith("W"):
        return value if value.ndim == 4 else value.T
    return value.reshape(np.shape(like))


def set_parameters(model, parameters, running, model_name):
    """``set_weights`` layer by layer: [kernel, bias], BatchNormalization's [gamma, beta, moving_mean,
    moving_variance]."""
    names = iter(NAMES[model_name])
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta = next(names), next(names)
            layer.set_weights([to_keras(gamma, parameters[gamma]), to_keras(beta, parameters[beta]),
                               np.ravel(running["running_mean1"]), np.ravel(running["running_var1"])])
        elif layer.weights:
            W, b = next(names), next(names)
            layer.set_weights([to_keras(W, parameters[W]), to_keras(b, parameters[b])])


def read_running(model):
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return {"running_mean1": _channels(bns[0].moving_mean), "running_var1": _channels(bns[0].moving_variance)} \
        if bns else {}


def loss_function(model_name):
    return keras.losses.BinaryCrossentropy() if model_name == "happy" else keras.losses.CategoricalCrossentropy()


def _model(parameters, running, model_name, shape, dtype, bn):
    setup()
    model = build_model(model_name, shape, dtype, bn)
    set_parameters(model, parameters, running or {}, model_name)
    return model


def forward_backward(parameters, X, Y, model_name, dtype="float64", running=None, bn=None):
    """One ``model(X, training=True)`` under a ``GradientTape``.  Returns {"cost", "AL", "grads", "running"} as
    ``reference.convnet.forward_backward`` does."""
    model = _model(parameters, running, model_name, X.shape[1:], dtype, bn)
    with floatx(dtype):
        loss_fn = loss_function(model_name)
        with tf.GradientTape() as tape:
            AL = model(to_tensor(X, dtype), training=True)
            cost = loss_fn(to_tensor(Y, dtype), AL)
        grads = tape.gradient(cost, model.trainable_variables)
    grads = {"d" + name: from_keras(name, g, parameters[name]) for name, g in zip(NAMES[model_name], grads)}
    return {"cost": float(cost), "AL": AL.numpy(), "grads": grads, "running": read_running(model)}


def train(parameters, X, Y, model_name, dtype="float64", steps=5, learning_rate=0.01, running=None, bn=None):
    """Full-batch ``keras.optimizers.SGD`` steps (tape, ``apply_gradients``).  Returns {"costs", "parameters",
    "running"}."""
    model = _model(parameters, running, model_name, X.shape[1:], dtype, bn)
    Xt, Yt = to_tensor(X, dtype), to_tensor(Y, dtype)
    costs = []
    with floatx(dtype):
        loss_fn = loss_function(model_name)
        optimizer = keras.optimizers.SGD(learning_rate=np.float64(learning_rate))
        for _ in range(steps):
            with tf.GradientTape() as tape:
                cost = loss_fn(Yt, model(Xt, training=True))
            optimizer.apply_gradients(zip(tape.gradient(cost, model.trainable_variables), model.trainable_variables))
            costs.append(float(cost))
    final = {name: from_keras(name, v.numpy(), parameters[name])
             for name, v in zip(NAMES[model_name], model.trainable_variables)}
    return {"costs": costs, "parameters": final, "running": read_running(model)}
