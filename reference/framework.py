"""What the rest of nnparity asks about the NumPy reference (``numpy``): its thread variables (OpenBLAS's, MKL's),
the code ``nnparity explain`` shows in its first column, its activation curve.  Its env.json section is the
``blas`` one (``nnparity.environment.blas_info``).

Read by the registry (``nnparity.impls.described``) from this file, without importing the ``reference`` package.
"""

from __future__ import annotations

from nnparity.impls import Framework


def curve(column, activation, Z, slope):
    """explain's activation figure: the reference's A = g(Z) and its hand-written g'(Z)."""
    import numpy as np

    from reference.activations import activation_backward, activation_forward

    A = activation_forward(Z, activation, slope)
    return A, activation_backward(np.ones_like(Z), Z, A, activation, slope)


def explain() -> dict:
    return EXPLAIN


FRAMEWORK = Framework(
    "numpy",
    distributions=("numpy",),
    modules=("numpy",),
    thread_variables=("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"),  # NumPy's BLAS
    columns=(("numpy", ("numpy",)),),
    explain=explain,
    curve=curve,
)

#: explain's excerpts: {equation id: {column: ((module, function or "", marker), ...)}}.
EXPLAIN = {
    'Z': {
        'numpy': (('reference.model', 'linear_forward'),),
    },
    'sigmoid': {
        'numpy': (('reference.activations', 'sigmoid'),),
    },
    'tanh': {
        'numpy': (('reference.activations', 'tanh'),),
    },
    'relu': {
        'numpy': (('reference.activations', 'relu'),),
    },
    'leaky-relu': {
        'numpy': (('reference.activations', 'leaky_relu'),),
    },
    'softmax': {
        'numpy': (('reference.activations', 'softmax'),),
    },
    'cross-entropy': {
        'numpy': (('reference.losses', 'cross_entropy_cost'),),
    },
    'categorical-cross-entropy': {
        'numpy': (('reference.losses', 'categorical_cross_entropy_cost'),),
    },
    'l1': {
        'numpy': (('reference.losses', 'l1'), ('reference.losses', 'l1_cost'),),
    },
    'l2-loss': {
        'numpy': (('reference.losses', 'l2'), ('reference.losses', 'l2_cost'),),
    },
    'dZ-sigmoid': {
        'numpy': (('reference.activations', 'sigmoid_backward'),),
    },
    'dZ-tanh': {
        'numpy': (('reference.activations', 'tanh_backward'),),
    },
    'dZ-relu': {
        'numpy': (('reference.activations', 'relu_backward'),),
    },
    'dZ-leaky-relu': {
        'numpy': (('reference.activations', 'leaky_relu_backward'),),
    },
    'dZ-softmax': {
        'numpy': (('reference.activations', 'softmax_backward'),),
    },
    'dW': {
        'numpy': (('reference.model', 'linear_backward', 'dW = 1 / m'),),
    },
    'db': {
        'numpy': (('reference.model', 'linear_backward', 'db = 1 / m'),),
    },
    'dA-prev': {
        'numpy': (('reference.model', 'linear_backward', 'dA_prev = W.T @ dZ'),),
    },
    'update': {
        'numpy': (('reference.optimizers', 'update_parameters_with_gd'),),
    },
    'momentum': {
        'numpy': (('reference.optimizers', 'update_parameters_with_momentum'),),
    },
    'rmsprop': {
        'numpy': (('reference.optimizers', 'update_parameters_with_rmsprop'),),
    },
    'adam': {
        'numpy': (
            ('reference.optimizers', 'update_parameters_with_adam'),
            ('reference.optimizers', 'bias_corrected'),
        ),
    },
    'l2-regularisation': {
        'numpy': (
            ('reference.losses', 'l2_regularization_cost'),
            ('reference.model', 'model_backward', 'if case.lambd:'),
        ),
    },
    'dropout': {
        'numpy': (
            ('reference.model', 'model_forward', 'if masks is not None and l < case.L:'),
            ('reference.model', 'model_backward', 'if D is not None:'),
        ),
    },
    'initialisation': {
        'numpy': (('reference.initializers', 'initialize_parameters'),),
    },
    'mini-batches': {
        'numpy': (('reference.utils', 'minibatch_schedule'), ('reference.model', 'train', 'X[:, schedule[step]]'),),
    },
    'lr-decay': {
        'numpy': (('reference.optimizers', 'update_lr'), ('reference.optimizers', 'schedule_lr_decay'),),
    },
    # ---- the conv and pool layers (reference.conv: the course's loops)
    'conv-output-size': {
        'numpy': (
            ('nnparity.convspec', 'output_size'),
            ('reference.conv', 'conv_forward', 'n_H = output_size'),
            ('reference.conv', 'pool_forward', 'n_H = output_size'),
        ),
    },
    'zero-pad': {
        'numpy': (('reference.conv', 'zero_pad'), ('reference.conv', 'conv_forward', 'A_prev_pad = zero_pad('),),
    },
    'conv': {
        'numpy': (('reference.conv', 'conv_single_step'), ('reference.conv', 'conv_forward', 'for i in range(m):'),),
    },
    'pool': {
        'numpy': (('reference.conv', 'pool_forward', 'for i in range(m):'),),
    },
    'conv-backward': {
        'numpy': (('reference.conv', 'conv_backward', 'for i in range(m):'),),
    },
    'pool-backward': {
        'numpy': (
            ('reference.conv', 'create_mask_from_window'),
            ('reference.conv', 'distribute_value'),
            ('reference.conv', 'pool_backward', 'for i in range(m):'),
        ),
    },
}
