"""What the rest of nnparity asks about TensorFlow and Keras (``tf``, ``tf-function``, ``keras``): its env.json
section and versions, its thread variables, the code ``nnparity explain`` shows, Keras' known divergences from the
notes, its catalogue entries (``tf_impl/catalogue.py``; those that measure Keras beside torch stay in
``nnparity.catalogue``, the cross-framework family), bench's notes.

Read by the registry (``nnparity.impls.described``) from this file, without running ``tf_impl/__init__.py`` (which
imports TensorFlow); nothing here imports TensorFlow: the probes read ``sys.modules``.
"""

from __future__ import annotations

import sys

from nnparity.impls import Framework, sibling


def _version() -> str | None:
    from nnparity.environment import _version

    return _version("tensorflow-cpu") or _version("tensorflow")


def _op_determinism(tf):
    probe = getattr(tf.config.experimental, "is_op_determinism_enabled", None)
    if probe is None:  # not exported in every version; the implementation is
        from tensorflow.python.framework import config as tf_config

        probe = tf_config.is_op_determinism_enabled
    return probe()


def _onednn_enabled():
    """Whether TensorFlow runs its oneDNN custom ops: what it decided at start-up from ``TF_ENABLE_ONEDNN_OPTS``
    and the CPU (the "oneDNN custom operations are on" notice); TensorFlow exposes it only internally."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def settings() -> dict:
    """env.json's ``tensorflow`` section: read from a TensorFlow this process imported; ``"not imported"``
    otherwise."""
    from nnparity.environment import NOT_IMPORTED, _probe, env_var

    if "tensorflow" not in sys.modules:
        return {"version": _version(), "status": NOT_IMPORTED,
                "TF_ENABLE_ONEDNN_OPTS": env_var("TF_ENABLE_ONEDNN_OPTS")}
    tf = sys.modules["tensorflow"]
    return {
        "version": _probe(lambda: tf.__version__),
        "status": "imported",
        "intra_op_parallelism_threads": _probe(tf.config.threading.get_intra_op_parallelism_threads),
        "inter_op_parallelism_threads": _probe(tf.config.threading.get_inter_op_parallelism_threads),
        "op_determinism": _probe(lambda: _op_determinism(tf)),
        "tensor_float_32_execution": _probe(tf.config.experimental.tensor_float_32_execution_enabled),
        "TF_ENABLE_ONEDNN_OPTS": env_var("TF_ENABLE_ONEDNN_OPTS"),
        "onednn_enabled": _probe(_onednn_enabled),
        "devices": _probe(lambda: [d.name for d in tf.config.list_logical_devices()]),
    }


def thread_counts() -> dict:
    """bench's record of the worker's pools, where TensorFlow is imported."""
    if "tensorflow" not in sys.modules:
        return {}
    tf = sys.modules["tensorflow"]
    return {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default (cores)",
            "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default"}


def curve(column, activation, Z, slope):
    """explain's activation figure: A = g(Z) and dA/dZ by tf_impl's activation_forward and a GradientTape."""
    import tensorflow as tf

    from tf_impl.activations import activation_forward

    Zt = tf.constant(Z)
    with tf.GradientTape() as tape:
        tape.watch(Zt)
        A = activation_forward(Zt, activation, slope)
        total = tf.reduce_sum(A)
    return A.numpy(), tape.gradient(total, Zt).numpy()


def float32_slope(case):
    """tf.nn.leaky_relu's alpha is a float32 op attribute: the reference with that slope (an aligned reference)."""
    import contextlib

    import numpy as np

    return case.replace(leaky_slope=float(np.float32(case.leaky_slope))), contextlib.nullcontext()


def divergences() -> tuple:
    """TensorFlow's and Keras' known divergences from the notes' math (nnparity.divergences checks them)."""
    from nnparity.divergences import Divergence, keras_formula, maxpool_ties

    return (
        maxpool_ties(("tf", "tf-function", "keras"), "tensorflow"),
        Divergence(
            "keras-leaky-relu-float32-alpha", ("keras",), {"dtype": ("float64",), "activations": ("leaky_relu",)},
            ("forward", "A", 1, 0), "tf-leaky-relu-float32-alpha",
            "Keras' LeakyReLU layer runs tf.nn.leaky_relu, whose alpha is a float32 op attribute: in a float64 "
            "model the slope is float32(0.01) = 0.009999999776, 2e-8 relative; not alignable inside the layer",
            must_fail={"dtype": ("float64",)}, aligned=float32_slope),
        Divergence(
            "keras-rmsprop-epsilon", ("keras",), {"optimizer": ("rmsprop",)}, ("update", None, None, 0),
            "keras-rmsprop-epsilon",
            "keras.optimizers.RMSprop divides by sqrt(s + eps), the course by sqrt(s) + eps: the first update "
            "differs (in float32 it may stay inside the rounding bound where gradients are large against eps)",
            must_fail={"dtype": ("float64",)}, aligned=keras_formula, float32_later=True),
        Divergence(
            "keras-adam-epsilon", ("keras",), {"optimizer": ("adam",)}, ("update", None, None, 0),
            "keras-adam-epsilon",
            "keras.optimizers.Adam adds eps to the uncorrected sqrt(v) (eps / sqrt(1 - beta2^t) in the course's "
            "terms): the first update differs (in float32 it may stay inside the rounding bound)",
            must_fail={"dtype": ("float64",)}, aligned=keras_formula, float32_later=True),
        Divergence(
            "keras-sgd-momentum-decay", ("keras",),
            {"optimizer": ("momentum",), "decay": ("inverse-time", "scheduled")},
            ("trajectory", "cost", None, None), "keras-learning-rate-decay",
            "keras.optimizers.SGD's momentum accumulates rate-scaled gradients (m = beta m - lr g; w += m): under a "
            "learning-rate decay each past gradient keeps the rate of its own step, while the course scales the "
            "whole v by the current rate (W -= alpha_e v); the trajectories part from the first step after the "
            "rate changes",
            must_fail={"dtype": ("float64",)}, aligned=keras_formula, float32_later=True),
    )


def catalogue() -> list:
    """The catalogue's TensorFlow and Keras entries (``tf_impl/catalogue.py``), read without importing TensorFlow."""
    return list(sibling("tf_impl", "catalogue").ENTRIES)


def explain() -> dict:
    return EXPLAIN


FRAMEWORK = Framework(
    "tensorflow",
    distributions=("tensorflow-cpu", "tensorflow", "keras", "protobuf", "ml_dtypes"),
    modules=("tensorflow", "keras"),
    settings=settings,
    env_vars=("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL", "TF_DETERMINISTIC_OPS",
              "TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS"),
    thread_variables=("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"),
    thread_counts=thread_counts,
    columns=(("tf", ("tf", "tf-function")), ("keras", ("keras",))),
    compiled={"tf": "tf-function: the same code, its training step compiled by tf.function (tf_impl.model.train, "
                    "use_function=True)"},
    autodiff=("tf", "keras"),
    explain=explain,
    curve=curve,
    divergences=divergences,
    catalogue=catalogue,
    notes={"tf-function": "one training step under tf.function, traced once per network, optimiser and dtype in a "
                          "process and reused by later train calls",
           "keras": "Keras layers and SGD, one tf.function step per batch"},
    import_seconds=6.0,
    run_seconds={"tf": (0.1, 0.4, 0), "tf-function": (0.1, 0.5, 0), "keras": (0.2, 0.8, 0)},
)

#: The line of each column that asks autodiff for the gradient (backward equations show it first).
GRADIENT_REQUEST = {
    'tf': ('tf_impl.model', 'model_backward', 'tape.gradient'),
    'keras': ('tf_impl.idiomatic', 'model_backward', 'grads_list = tape.gradient'),
}

#: explain's excerpts: {equation id: {column: ((module, function or "", marker), ...)}}.
EXPLAIN = {
    'Z': {
        'tf': (('tf_impl.model', 'linear_forward'),),
        'keras': (('tf_impl.idiomatic', 'linear_forward'),),
    },
    'sigmoid': {
        'tf': (('tf_impl.activations', 'activation_forward', 'activation == "sigmoid"'),),
        'keras': (('tf_impl.idiomatic', 'activation_layer', 'return keras.layers.Activation'),),
    },
    'tanh': {
        'tf': (('tf_impl.activations', 'activation_forward', 'activation == "tanh"'),),
        'keras': (('tf_impl.idiomatic', 'activation_layer', 'return keras.layers.Activation'),),
    },
    'relu': {
        'tf': (('tf_impl.activations', 'activation_forward', 'activation == "relu"'),),
        'keras': (('tf_impl.idiomatic', 'activation_layer', 'return keras.layers.Activation'),),
    },
    'leaky-relu': {
        'tf': (('tf_impl.activations', 'activation_forward', 'activation == "leaky_relu"'),),
        'keras': (('tf_impl.idiomatic', 'activation_layer', 'activation == "leaky_relu"'),),
    },
    'softmax': {
        'tf': (('tf_impl.activations', 'activation_forward', 'activation == "softmax"'),),
        'keras': (('tf_impl.idiomatic', 'activation_layer', 'return keras.layers.Activation'),),
    },
    'cross-entropy': {
        'tf': (('tf_impl.losses', 'compute_cost', 'loss == "cross_entropy"'),),
        'keras': (('tf_impl.idiomatic', '', 'LOSSES = '),),
    },
    'categorical-cross-entropy': {
        'tf': (('tf_impl.losses', 'compute_cost', 'loss == "categorical_cross_entropy"'),),
        'keras': (('tf_impl.idiomatic', '', 'LOSSES = '),),
    },
    'l1': {
        'tf': (('tf_impl.losses', 'compute_cost', 'loss == "l1"'),),
        'keras': (('tf_impl.idiomatic', '', 'LOSSES = '),),
    },
    'l2-loss': {
        'tf': (('tf_impl.losses', 'compute_cost', 'loss == "l2"'),),
        'keras': (('tf_impl.idiomatic', '', 'LOSSES = '),),
    },
    'dZ-sigmoid': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-tanh': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-relu': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-leaky-relu': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-softmax': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dW': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads = {f"d{k}"'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dW{l}"]'),),
    },
    'db': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads = {f"d{k}"'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"db{l}"]'),),
    },
    'dA-prev': {
        'tf': (GRADIENT_REQUEST['tf'], ('tf_impl.model', 'model_backward', 'grads[f"dA{l}"]'),),
        'keras': (GRADIENT_REQUEST['keras'], ('tf_impl.idiomatic', 'model_backward', 'grads[f"dA{l}"]'),),
    },
    'update': {
        'tf': (('tf_impl.optimizers', 'update_parameters_with_gd'),),
        'keras': (
            ('tf_impl.idiomatic', 'make_optimizer', 'case.optimizer == "gd"'),
            ('tf_impl.idiomatic', 'update_parameters'),
        ),
    },
    'momentum': {
        'tf': (('tf_impl.optimizers', 'update_parameters_with_momentum'),),
        'keras': (('tf_impl.idiomatic', 'make_optimizer', 'case.optimizer == "momentum"'),),
    },
    'rmsprop': {
        'tf': (('tf_impl.optimizers', 'update_parameters_with_rmsprop'),),
        'keras': (('tf_impl.idiomatic', 'make_optimizer', 'case.optimizer == "rmsprop"'),),
    },
    'adam': {
        'tf': (('tf_impl.optimizers', 'update_parameters_with_adam'),),
        'keras': (('tf_impl.idiomatic', 'make_optimizer', 'case.optimizer == "adam"'),),
    },
    'l2-regularisation': {
        'tf': (('tf_impl.model', 'compute_cost', 'if case.lambd:'),),
        'keras': (('tf_impl.idiomatic', 'l2_regularizer'),),
    },
    'dropout': {
        'tf': (('tf_impl.model', 'model_forward', 'if masks is not None and l < case.L:'),),
        'keras': (('tf_impl.idiomatic', 'DropoutMask.call'),),
    },
    'initialisation': {
        'tf': (('tf_impl.model', '_variables'),),
        'keras': (('tf_impl.idiomatic', 'to_keras_weights'),),
    },
    'mini-batches': {
        'tf': (('tf_impl.model', 'train', 'tf.gather(X, idx, axis=1)'),),
        'keras': (('tf_impl.idiomatic', 'train', 'tf.gather(X, idx)'),),
    },
    'lr-decay': {
        'tf': (('tf_impl.model', 'train', 'rates = learning_rates(case, steps)'),),
        'keras': (('tf_impl.idiomatic', 'learning_rate_schedule'),),
    },
    # ---- the conv and pool layers (tf_impl.conv, tf_impl.conv_idiomatic); TensorFlow's layout is the course's
    'conv-output-size': {
        'tf': (
            ('tf_impl.conv', 'conv_forward', 'Z = tf.nn.conv2d('),
            ('tf_impl.conv', 'pool_forward', 'if mode == "max":'),
        ),
        'keras': (('tf_impl.conv_idiomatic', 'build_layers'),),
    },
    'zero-pad': {
        'tf': (('tf_impl.conv', 'zero_pad'), ('tf_impl.conv', 'conv_forward', 'Z = tf.nn.conv2d('),),
        'keras': (
            ('tf_impl.conv_idiomatic', 'build_layers', 'padding = keras.layers.ZeroPadding2D('),
            ('tf_impl.conv_idiomatic', 'forward_backward', 'Z = conv(padding(A_prev))'),
        ),
    },
    'conv': {
        'tf': (('tf_impl.conv', 'conv_forward'), ('tf_impl.conv', 'to_tensor'),),
        'keras': (
            ('tf_impl.conv_idiomatic', 'build_layers', 'conv = keras.layers.Conv2D('),
            ('tf_impl.conv_idiomatic', 'forward_backward', 'conv.set_weights('),
            ('tf_impl.conv_idiomatic', 'forward_backward', 'Z = conv(padding(A_prev))'),
        ),
    },
    'pool': {
        'tf': (('tf_impl.conv', 'pool_forward'),),
        'keras': (
            ('tf_impl.conv_idiomatic', '', 'POOLS = '),
            ('tf_impl.conv_idiomatic', 'build_layers', 'pool = POOLS['),
            ('tf_impl.conv_idiomatic', 'forward_backward', 'A = pool(Z)'),
        ),
    },
    'conv-backward': {
        'tf': (('tf_impl.conv', 'conv_backward'),),
        'keras': (('tf_impl.conv_idiomatic', 'forward_backward', 'dZ, dA_prev, dW, db = tape.gradient('),),
    },
    'pool-backward': {
        'tf': (('tf_impl.conv', 'pool_backward'),),
        'keras': (('tf_impl.conv_idiomatic', 'forward_backward', 'dZ, dA_prev, dW, db = tape.gradient('),),
    },
}
