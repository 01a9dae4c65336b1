"""What the rest of nnparity asks about JAX, flax and optax (``jax``, ``jax-jit``, ``flax``): its env.json section
and versions, its thread variable (XLA_FLAGS), the code ``nnparity explain`` shows, its catalogue entries
(``jax_impl/catalogue.py``), bench's notes.

Read by the registry (``nnparity.impls.described``) from this file, without running ``jax_impl/__init__.py`` (which
imports jax and turns on ``jax_enable_x64``); nothing here imports jax: the probes read ``sys.modules``.
"""

from __future__ import annotations

import sys

from nnparity.impls import Framework, sibling


def settings() -> dict:
    """JAX computes in float32 unless ``jax_enable_x64`` is on; read only from a jax the run imported."""
    from nnparity.environment import NOT_IMPORTED, _probe, _version

    if "jax" not in sys.modules:
        return {"version": _version("jax"), "status": NOT_IMPORTED}
    jax = sys.modules["jax"]
    return {"version": _probe(lambda: jax.__version__), "status": "imported",
            "jax_enable_x64": _probe(lambda: bool(jax.config.jax_enable_x64))}


def thread_value(variable: str, threads: int) -> str:
    """XLA (JAX) takes its CPU threads from XLA_FLAGS; the value must start with "--": XLA reads any other value as
    the name of a file of flags (and aborts)."""
    eigen = "false" if threads == 1 else "true"
    return f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"


def curve(column, activation, Z, slope):
    """explain's activation figure: A = g(Z) and dA/dZ by jax_impl's activation_forward and jax.grad."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jax_impl.activations import activation_forward

    Zj = jnp.asarray(Z, jnp.float64)
    dA = jax.grad(lambda z: jnp.sum(activation_forward(z, activation, slope)))(Zj)
    return np.asarray(activation_forward(Zj, activation, slope)), np.asarray(dA)


def catalogue() -> list:
    """The catalogue's JAX, flax and optax entries (``jax_impl/catalogue.py``), read without importing jax."""
    return list(sibling("jax_impl", "catalogue").ENTRIES)


def divergences() -> tuple:
    """Its known divergences from the notes' math (nnparity.divergences checks them)."""
    from nnparity.divergences import maxpool_ties

    return (maxpool_ties(("jax", "jax-jit", "flax"), "jax"),)


def explain() -> dict:
    return EXPLAIN


FRAMEWORK = Framework(
    "jax",
    distributions=("jax", "jaxlib", "flax", "optax"),
    modules=("jax", "flax", "optax"),
    settings=settings,
    env_vars=("XLA_FLAGS",),
    thread_variables=("XLA_FLAGS",),
    thread_value=thread_value,
    columns=(("jax", ("jax", "jax-jit")), ("flax", ("flax",))),
    compiled={"jax": "jax-jit: the same code, its training step and its forward/backward pass compiled by jax.jit "
                     "(jax_impl.model.train and forward_backward, use_jit=True)"},
    autodiff=("jax", "flax"),
    explain=explain,
    curve=curve,
    divergences=divergences,
    catalogue=catalogue,
    notes={"jax": "eager jax.numpy: value_and_grad traced again at every step",
           "jax-jit": "one training step under jax.jit, compiled once per network, optimiser and batch shape",
           "flax": "flax.nnx layers and optax, one nnx.jit step per batch"},
    import_seconds=1.5,
    run_seconds={"jax": (0.4, 1.0, 2.0), "jax-jit": (0.55, 1.35, 0), "flax": (0.75, 1.7, 0)},
)

#: The line of each column that asks autodiff for the gradient (backward equations show it first).
GRADIENT_REQUEST = {
    'jax': ('jax_impl.model', 'model_backward', 'jax.value_and_grad'),
    'flax': ('jax_impl.idiomatic', 'model_backward', 'nnx.value_and_grad'),
}

#: explain's excerpts: {equation id: {column: ((module, function or "", marker), ...)}}.
EXPLAIN = {
    'Z': {
        'jax': (('jax_impl.model', 'linear_forward'),),
        'flax': (('jax_impl.idiomatic', 'linear_forward'),),
    },
    'sigmoid': {
        'jax': (('jax_impl.activations', 'activation_forward', 'activation == "sigmoid"'),),
        'flax': (('jax_impl.idiomatic', 'output_activation'),),
    },
    'tanh': {
        'jax': (('jax_impl.activations', 'activation_forward', 'activation == "tanh"'),),
        'flax': (('jax_impl.idiomatic', '', 'ACTIVATIONS = '),),
    },
    'relu': {
        'jax': (('jax_impl.activations', 'activation_forward', 'activation == "relu"'),),
        'flax': (('jax_impl.idiomatic', '', 'ACTIVATIONS = '),),
    },
    'leaky-relu': {
        'jax': (('jax_impl.activations', 'activation_forward', 'activation == "leaky_relu"'),),
        'flax': (('jax_impl.idiomatic', 'activation_function', 'activation == "leaky_relu"'),),
    },
    'softmax': {
        'jax': (('jax_impl.activations', 'activation_forward', 'activation == "softmax"'),),
        'flax': (('jax_impl.idiomatic', 'output_activation'),),
    },
    'cross-entropy': {
        'jax': (('jax_impl.losses', 'compute_cost', 'loss == "cross_entropy"'),),
        'flax': (('jax_impl.idiomatic', 'loss_function', 'loss == "cross_entropy"'),),
    },
    'categorical-cross-entropy': {
        'jax': (('jax_impl.losses', 'compute_cost', 'loss == "categorical_cross_entropy"'),),
        'flax': (('jax_impl.idiomatic', 'loss_function', 'loss == "categorical_cross_entropy"'),),
    },
    'l1': {
        'jax': (('jax_impl.losses', 'compute_cost', 'loss == "l1"'),),
        'flax': (('jax_impl.idiomatic', 'loss_function', 'loss == "l1"'),),
    },
    'l2-loss': {
        'jax': (('jax_impl.losses', 'compute_cost', 'loss == "l2"'),),
        'flax': (('jax_impl.idiomatic', 'loss_function', 'loss == "l2"'),),
    },
    'dZ-sigmoid': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads[f"d{name}"]'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"d{name}"]'),),
    },
    'dZ-tanh': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads[f"d{name}"]'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"d{name}"]'),),
    },
    'dZ-relu': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads[f"d{name}"]'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"d{name}"]'),),
    },
    'dZ-leaky-relu': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads[f"d{name}"]'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"d{name}"]'),),
    },
    'dZ-softmax': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads[f"d{name}"]'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"d{name}"]'),),
    },
    'dW': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads = {f"d{k}"'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"dW{l}"]'),),
    },
    'db': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads = {f"d{k}"'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"db{l}"]'),),
    },
    'dA-prev': {
        'jax': (GRADIENT_REQUEST['jax'], ('jax_impl.model', 'model_backward', 'grads[f"d{name}"]'),),
        'flax': (GRADIENT_REQUEST['flax'], ('jax_impl.idiomatic', 'notes_gradients', 'captured[f"d{name}"]'),),
    },
    'update': {
        'jax': (('jax_impl.optimizers', 'update_parameters_with_gd'),),
        'flax': (
            ('jax_impl.idiomatic', 'make_optimizer', 'case.optimizer == "gd"'),
            ('jax_impl.idiomatic', 'update_parameters'),
        ),
    },
    'momentum': {
        'jax': (('jax_impl.optimizers', 'update_parameters_with_momentum'),),
        'flax': (('jax_impl.idiomatic', 'make_optimizer', 'case.optimizer == "momentum"'),),
    },
    'rmsprop': {
        'jax': (('jax_impl.optimizers', 'update_parameters_with_rmsprop'),),
        'flax': (('jax_impl.idiomatic', 'make_optimizer', 'case.optimizer == "rmsprop"'),),
    },
    'adam': {
        'jax': (('jax_impl.optimizers', 'update_parameters_with_adam'),),
        'flax': (('jax_impl.idiomatic', 'make_optimizer', 'case.optimizer == "adam"'),),
    },
    'l2-regularisation': {
        'jax': (('jax_impl.model', 'compute_cost', 'if case.lambd:'),),
        'flax': (('jax_impl.idiomatic', 'l2_cost'),),
    },
    'dropout': {
        'jax': (('jax_impl.model', 'model_forward', 'if masks is not None and l < case.L:'),),
        'flax': (('jax_impl.idiomatic', 'DropoutMask.__call__'),),
    },
    'initialisation': {
        'jax': (('jax_impl.model', '_arrays'),),
        'flax': (('jax_impl.idiomatic', 'load_parameters'),),
    },
    'mini-batches': {
        'jax': (('jax_impl.model', 'train', 'X[:, schedule[step]]'),),
        'flax': (('jax_impl.idiomatic', 'train', 'X[schedule[step]]'),),
    },
    'lr-decay': {
        'jax': (('jax_impl.model', 'train', 'rates = learning_rates(case, steps)'),),
        'flax': (('jax_impl.idiomatic', 'learning_rate_schedule'),),
    },
    # ---- the conv and pool layers (jax_impl.conv, jax_impl.conv_idiomatic); told the course's layout
    'conv-output-size': {
        'jax': (
            ('jax_impl.conv', 'conv_forward', 'Z = lax.conv_general_dilated('),
            ('jax_impl.conv', 'pool_forward', 'window, strides = '),
        ),
        'flax': (('jax_impl.conv_idiomatic', 'build_layers'),),
    },
    'zero-pad': {
        'jax': (('jax_impl.conv', 'zero_pad'), ('jax_impl.conv', 'conv_forward', 'Z = lax.conv_general_dilated('),),
        'flax': (('jax_impl.conv_idiomatic', 'build_layers', 'conv = nn.Conv('),),
    },
    'conv': {
        'jax': (('jax_impl.conv', 'conv_forward'), ('jax_impl.conv', '', 'DIMENSION_NUMBERS = '),),
        'flax': (
            ('jax_impl.conv_idiomatic', 'build_layers', 'conv = nn.Conv('),
            ('jax_impl.conv_idiomatic', 'forward_backward', 'params = '),
            ('jax_impl.conv_idiomatic', 'chain', 'Z, conv_vjp = jax.vjp('),
        ),
    },
    'pool': {
        'jax': (('jax_impl.conv', 'pool_forward'),),
        'flax': (
            ('jax_impl.conv_idiomatic', '', 'POOLS = '),
            ('jax_impl.conv_idiomatic', 'build_layers', 'pool = partial('),
            ('jax_impl.conv_idiomatic', 'chain', 'A, pool_vjp = jax.vjp('),
        ),
    },
    'conv-backward': {
        'jax': (('jax_impl.conv', 'conv_backward'),),
        'flax': (
            ('jax_impl.conv_idiomatic', 'chain', 'Z, conv_vjp = jax.vjp('),
            ('jax_impl.conv_idiomatic', 'chain', 'dA_prev, grads = conv_vjp(dZ)'),
        ),
    },
    'pool-backward': {
        'jax': (('jax_impl.conv', 'pool_backward'),),
        'flax': (
            ('jax_impl.conv_idiomatic', 'chain', 'A, pool_vjp = jax.vjp('),
            ('jax_impl.conv_idiomatic', 'chain', '(dZ,) = pool_vjp(dA)'),
        ),
    },
}
