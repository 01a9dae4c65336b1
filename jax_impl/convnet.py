"""The course's convolutional networks as idiomatic flax (``flax.linen``): ``nn.BatchNorm``, and the "happy" and
"signs" models as ``nn.Module`` s of ``nn.Conv`` with explicit padding, ``nn.max_pool`` and ``nn.Dense``, with the
reference's parameters copied into their variable dicts.

The same public functions as ``reference.convnet`` (``batchnorm``, ``forward_backward``, ``train``), NumPy in the
reference's layouts at the boundary.  float64 is float64 because ``jax_impl`` enables ``jax_enable_x64`` at import.
flax is NHWC and HWIO already:

================  ==========================================================================
reference         here
================  ==========================================================================
images NHWC       as they are
``W (f,f,C',C)``  ``nn.Conv``'s ``kernel``, the same HWIO array; ``b (1,1,1,C)`` -> ``bias`` ``(C,)``
padding           explicit ``((top, bottom), (left, right))`` pairs: happy's ZeroPadding2D(3) is ``nn.Conv``'s
                  ``padding=((3, 3), (3, 3))``; TF's 'same' is ``reference.convnet.same_padding``'s pair, for
                  ``nn.Conv`` (zeros) and ``nn.max_pool`` (which pads with -inf)
BatchNorm         ``nn.BatchNorm(use_running_average=not training, momentum=momentum, epsilon=epsilon,
                  use_fast_variance=False)``: ``ra = momentum ra + (1 - momentum) batch``, the biased variance
                  (``flax/linen/normalization.py``).  Defaults: momentum 0.99, epsilon 1e-5, biased, and
                  ``use_fast_variance=True`` (``E[x^2] - E[x]^2``, one pass, less accurate where the mean is large
                  against the spread); an unbiased running variance is not available.  The running statistics
                  are the ``batch_stats`` collection, updated by ``apply(..., mutable=["batch_stats"])``
Flatten           ``x.reshape(m, -1)`` on NHWC: the reference's order
Dense ``W, b``    ``nn.Dense``'s ``kernel`` is ``(n_in, n_out)`` = ``W.T``; ``bias = b.ravel()``
cost              the logits into ``optax.sigmoid_binary_cross_entropy`` / ``optax.softmax_cross_entropy``,
                  mean over m (``AL = sigmoid / softmax(logits)`` for the output)
gradients         ``jax.value_and_grad`` of the cost with respect to the ``params`` collection
update            ``optax.sgd(learning_rate)``, ``optax.apply_updates``
================  ==========================================================================
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from reference.convnet import MODELS, same_padding

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}

#: flax.linen.BatchNorm's defaults in the reference's terms (and use_fast_variance=True).
BN_DEFAULT = {"momentum": 0.99, "epsilon": 1e-5, "unbiased": False}


def to_tensor(array, dtype):
    return jnp.asarray(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def batchnorm_layer(training, dtype, bn=None, name=None):
    """``nn.BatchNorm`` over the last axis with flax's defaults (``bn=None``) or the reference's convention."""
    if bn is None:
        return nn.BatchNorm(use_running_average=not training, dtype=dtype, param_dtype=dtype, name=name)
    if bn["unbiased"]:
        raise ValueError("flax's nn.BatchNorm's running variance is the biased one: run the reference with "
                         "unbiased=False to compare with it")
    return nn.BatchNorm(use_running_average=not training, momentum=bn["momentum"], epsilon=bn["epsilon"],
                        use_fast_variance=False, dtype=dtype, param_dtype=dtype, name=name)


class BatchNormOnly(nn.Module):
    training: bool
    dtype: object
    bn: dict | None = None

    @nn.compact
    def __call__(self, x):
        return batchnorm_layer(self.training, self.dtype, self.bn, name="bn")(x)


def _channels(a):
    return np.asarray(a).reshape(1, 1, 1, -1)


def batchnorm(Z, gamma, beta, running, dout, training, dtype, bn=None):
    """The layer on Z (NHWC), in training or inference mode, and the gradients of ``sum(out * dout)``.

    Returns {"out", "dZ", "dgamma", "dbeta", "running" {"mean", "var"}} in the reference's layouts."""
    module = BatchNormOnly(training, DTYPES[dtype], None if bn is None else dict(bn))
    params = {"bn": {"scale": to_tensor(np.ravel(gamma), dtype), "bias": to_tensor(np.ravel(beta), dtype)}}
    stats = {"bn": {"mean": to_tensor(np.ravel(running["mean"]), dtype),
                    "var": to_tensor(np.ravel(running["var"]), dtype)}}
    x, d = to_tensor(Z, dtype), to_tensor(dout, dtype)

    def total(params, x):
        out, updates = module.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
        return jnp.sum(out * d), (out, updates)

    (_, (out, updates)), (dparams, dZ) = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(params, x)
    new = updates["batch_stats"]["bn"]
    return {"out": np.asarray(out), "dZ": np.asarray(dZ), "dgamma": _channels(dparams["bn"]["scale"]),
            "dbeta": _channels(dparams["bn"]["bias"]), "running": {"mean": _channels(new["mean"]),
                                                                    "var": _channels(new["var"])}}


# ----------------------------------------------------------------------------------------------- the models

def same_pads(n_H, n_W, f, stride):
    """TF's 'same' padding as flax's explicit ((top, bottom), (left, right))."""
    return same_padding(n_H, f, stride), same_padding(n_W, f, stride)


class Happy(nn.Module):
    """ZeroPadding2D(3) + Conv2D(32, 7) (one ``nn.Conv`` with padding 3), BatchNorm, ReLU, MaxPool 2x2, Flatten,
    Dense(1): the logits."""
    dtype: object
    bn: dict | None = None

    @nn.compact
    def __call__(self, X, training=True):
        kw = {"dtype": self.dtype, "param_dtype": self.dtype}
        Z1 = nn.Conv(32, (7, 7), padding=((3, 3), (3, 3)), name="conv1", **kw)(X)
        B1 = batchnorm_layer(training, self.dtype, self.bn, name="bn1")(Z1)
        A1 = nn.relu(B1)
        P1 = nn.max_pool(A1, (2, 2), strides=(2, 2))
        F = P1.reshape(P1.shape[0], -1)
        return nn.Dense(1, name="dense2", **kw)(F)


class Signs(nn.Module):
    """Conv 4x4 'same', ReLU, max pool 8/8 'same', conv 2x2 'same', ReLU, max pool 4/4 'same', Flatten, Dense(6):
    the logits.  Every 'same' is an explicit padding pair."""
    dtype: object

    @nn.compact
    def __call__(self, X, training=True):
        kw = {"dtype": self.dtype, "param_dtype": self.dtype}
        n_H, n_W = X.shape[1:3]
        Z1 = nn.Conv(8, (4, 4), padding=same_pads(n_H, n_W, 4, 1), name="conv1", **kw)(X)
        A1 = nn.relu(Z1)
        P1 = nn.max_pool(A1, (8, 8), strides=(8, 8), padding=same_pads(n_H, n_W, 8, 8))
        n_H1, n_W1 = P1.shape[1:3]
        Z2 = nn.Conv(16, (2, 2), padding=same_pads(n_H1, n_W1, 2, 1), name="conv2", **kw)(P1)
        A2 = nn.relu(Z2)
        P2 = nn.max_pool(A2, (4, 4), strides=(4, 4), padding=same_pads(n_H1, n_W1, 4, 4))
        F = P2.reshape(P2.shape[0], -1)
        return nn.Dense(6, name="dense3", **kw)(F)


#: the reference's parameter name -> (flax module name, variable)
VARIABLES = {
    "happy": {"W1": ("conv1", "kernel"), "b1": ("conv1", "bias"), "gamma1": ("bn1", "scale"),
              "beta1": ("bn1", "bias"), "W2": ("dense2", "kernel"), "b2": ("dense2", "bias")},
    "signs": {"W1": ("conv1", "kernel"), "b1": ("conv1", "bias"), "W2": ("conv2", "kernel"),
              "b2": ("conv2", "bias"), "W3": ("dense3", "kernel"), "b3": ("dense3", "bias")},
}


def build_model(model_name, dtype, bn=None):
    if model_name == "happy":
        return Happy(DTYPES[dtype], None if bn is None else dict(bn))
    if model_name == "signs":
        return Signs(DTYPES[dtype])
    raise ValueError(f"unknown model {model_name!r}; use one of: {', '.join(MODELS)}")


def to_flax(name, value):
    value = np.asarray(value)
    if name.startswith("W"):
        return value if value.ndim == 4 else value.T
    return value.ravel()


def from_flax(name, value, like):
    value = np.asarray(value)
    if name.startswith("W"):
        return value if value.ndim == 4 else value.T
    return value.reshape(np.shape(like))


def load_variables(parameters, running, model_name, dtype):
    """The reference's parameters and running statistics as flax's ``params`` and ``batch_stats``."""
    params = {}
    for name, (module, variable) in VARIABLES[model_name].items():
        params.setdefault(module, {})[variable] = to_tensor(to_flax(name, parameters[name]), dtype)
    stats = {}
    if running:
        stats = {"bn1": {"mean": to_tensor(np.ravel(running["running_mean1"]), dtype),
                         "var": to_tensor(np.ravel(running["running_var1"]), dtype)}}
    return params, stats


def read_parameters(params, model_name, like):
    return {name: from_flax(name, params[module][variable], like[name])
            for name, (module, variable) in VARIABLES[model_name].items()}


def read_running(stats):
    if not stats:
        return {}
    return {"running_mean1": _channels(stats["bn1"]["mean"]), "running_var1": _channels(stats["bn1"]["var"])}


def cost_function(model, model_name):
    """(params, stats, X, Y) -> (cost, (AL, new stats)): training mode, the batch statistics updated."""
    def cost(params, stats, X, Y):
        if stats:
            logits, updates = model.apply({"params": params, "batch_stats": stats}, X, training=True,
                                          mutable=["batch_stats"])
            stats = updates["batch_stats"]
        else:
            logits = model.apply({"params": params}, X, training=True)
        if model_name == "happy":
            return optax.sigmoid_binary_cross_entropy(logits, Y).mean(), (jax.nn.sigmoid(logits), stats)
        return optax.softmax_cross_entropy(logits, Y).mean(), (jax.nn.softmax(logits, axis=1), stats)
    return cost


def forward_backward(parameters, X, Y, model_name, dtype="float64", running=None, bn=None):
    """``jax.value_and_grad`` of the training-mode cost.  Returns {"cost", "AL", "grads", "running"} as
    ``reference.convnet.forward_backward`` does."""
    model = build_model(model_name, dtype, bn)
    params, stats = load_variables(parameters, running, model_name, dtype)
    step = jax.jit(jax.value_and_grad(cost_function(model, model_name), has_aux=True))
    (cost, (AL, stats)), grads = step(params, stats, to_tensor(X, dtype), to_tensor(Y, dtype))
    grads = {"d" + name: value for name, value in read_parameters(grads, model_name, parameters).items()}
    return {"cost": float(cost), "AL": np.asarray(AL), "grads": grads, "running": read_running(stats)}


def train(parameters, X, Y, model_name, dtype="float64", steps=5, learning_rate=0.01, running=None, bn=None):
    """Full-batch ``optax.sgd`` steps, one jitted step function.  Returns {"costs", "parameters", "running"}."""
    model = build_model(model_name, dtype, bn)
    params, stats = load_variables(parameters, running, model_name, dtype)
    tx = optax.sgd(learning_rate)
    opt_state = tx.init(params)
    grad_fn = jax.value_and_grad(cost_function(model, model_name), has_aux=True)

    @jax.jit
    def step(params, stats, opt_state, X, Y):
        (cost, (_, stats)), grads = grad_fn(params, stats, X, Y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, cost

    Xt, Yt = to_tensor(X, dtype), to_tensor(Y, dtype)
    costs = []
    for _ in range(steps):
        params, stats, opt_state, cost = step(params, stats, opt_state, Xt, Yt)
        costs.append(float(cost))
    return {"costs": costs, "parameters": read_parameters(params, model_name, parameters),
            "running": read_running(stats)}
