"""What the rest of nnparity asks about PyTorch (``torch``, ``torch-nn``): its env.json section and versions, its
thread variables, the code ``nnparity explain`` shows, its catalogue entries (``torch_impl/catalogue.py``), bench's
notes.  PyTorch has no known divergence from the notes (the entries that measure it beside Keras stay in
``nnparity.catalogue``, the cross-framework family).

Read by the registry (``nnparity.impls.described``) without importing torch: the probes read ``sys.modules``.
"""

from __future__ import annotations

import sys

from nnparity.impls import Framework, sibling


def settings() -> dict:
    """env.json's ``torch`` section: read from a torch this process imported; ``"not imported"`` otherwise."""
    from nnparity.environment import NOT_IMPORTED, _probe, _version

    if "torch" not in sys.modules:
        return {"version": _version("torch"), "status": NOT_IMPORTED}
    torch = sys.modules["torch"]
    return {
        "version": _probe(lambda: torch.__version__),
        "status": "imported",
        "num_threads": _probe(torch.get_num_threads),
        "num_interop_threads": _probe(torch.get_num_interop_threads),
        "deterministic_algorithms": _probe(torch.are_deterministic_algorithms_enabled),
        "cuda_matmul_allow_tf32": _probe(lambda: torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": _probe(lambda: torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": _probe(torch.get_float32_matmul_precision),
        "mkldnn_enabled": _probe(lambda: torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "cuda_available": _probe(torch.cuda.is_available),
        "parallel_info": _probe(lambda: torch.__config__.parallel_info().strip().splitlines()),
    }


def thread_counts() -> dict:
    """bench's record of the worker's pools, where torch is imported."""
    return {"torch_intra_op": sys.modules["torch"].get_num_threads()} if "torch" in sys.modules else {}


def curve(column, activation, Z, slope):
    """explain's activation figure: A = g(Z) and dA/dZ by torch_impl's activation_forward and autograd."""
    import torch

    from torch_impl.activations import activation_forward

    Zt = torch.tensor(Z, requires_grad=True)
    A = activation_forward(Zt, activation, slope)
    A.sum().backward()
    return A.detach().numpy(), Zt.grad.numpy()


def catalogue() -> list:
    """The catalogue's PyTorch entries (``torch_impl/catalogue.py``), read without importing torch."""
    return list(sibling("torch_impl", "catalogue").ENTRIES)


def divergences() -> tuple:
    """Its known divergences from the notes' math (nnparity.divergences checks them)."""
    from nnparity.divergences import maxpool_ties

    return (maxpool_ties(("torch", "torch-nn"), "torch"),)


def explain() -> dict:
    return EXPLAIN


FRAMEWORK = Framework(
    "torch",
    distributions=("torch",),
    modules=("torch",),
    settings=settings,
    env_vars=("CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES"),
    thread_variables=("OMP_NUM_THREADS",),  # torch's intra-op pool
    thread_counts=thread_counts,
    columns=(("torch", ("torch",)), ("torch-nn", ("torch-nn",))),
    autodiff=("torch", "torch-nn"),
    explain=explain,
    curve=curve,
    divergences=divergences,
    catalogue=catalogue,
    notes={"torch-compile": "torch.compile(forward+cost, backend='inductor'); autograd.grad and update eager"},
    import_seconds=3.5,
    run_seconds={"torch": (0.1, 0.2, 0), "torch-nn": (0.1, 0.2, 0)},
)

#: The line of each column that asks autodiff for the gradient (backward equations show it first).
GRADIENT_REQUEST = {
    'torch': ('torch_impl.model', 'model_backward', 'torch.autograd.grad'),
    'torch-nn': ('torch_impl.idiomatic', 'model_backward', 'cost.backward()'),
}

#: explain's excerpts: {equation id: {column: ((module, function or "", marker), ...)}}.
EXPLAIN = {
    'Z': {
        'torch': (('torch_impl.model', 'linear_forward'),),
        'torch-nn': (('torch_impl.idiomatic', 'linear_forward'),),
    },
    'sigmoid': {
        'torch': (('torch_impl.activations', 'activation_forward', 'activation == "sigmoid"'),),
        'torch-nn': (('torch_impl.idiomatic', 'activation_module', 'modules = '),),
    },
    'tanh': {
        'torch': (('torch_impl.activations', 'activation_forward', 'activation == "tanh"'),),
        'torch-nn': (('torch_impl.idiomatic', 'activation_module', 'modules = '),),
    },
    'relu': {
        'torch': (('torch_impl.activations', 'activation_forward', 'activation == "relu"'),),
        'torch-nn': (('torch_impl.idiomatic', 'activation_module', 'modules = '),),
    },
    'leaky-relu': {
        'torch': (('torch_impl.activations', 'activation_forward', 'activation == "leaky_relu"'),),
        'torch-nn': (('torch_impl.idiomatic', 'activation_module', 'activation == "leaky_relu"'),),
    },
    'softmax': {
        'torch': (('torch_impl.activations', 'activation_forward', 'activation == "softmax"'),),
        'torch-nn': (('torch_impl.idiomatic', 'output_activation'),),
    },
    'cross-entropy': {
        'torch': (('torch_impl.losses', 'compute_cost', 'loss == "cross_entropy"'),),
        'torch-nn': (('torch_impl.idiomatic', '', 'LOSSES = '),),
    },
    'categorical-cross-entropy': {
        'torch': (('torch_impl.losses', 'compute_cost', 'loss == "categorical_cross_entropy"'),),
        'torch-nn': (('torch_impl.idiomatic', '', 'LOSSES = '),),
    },
    'l1': {
        'torch': (('torch_impl.losses', 'compute_cost', 'loss == "l1"'),),
        'torch-nn': (('torch_impl.idiomatic', '', 'LOSSES = '),),
    },
    'l2-loss': {
        'torch': (('torch_impl.losses', 'compute_cost', 'loss == "l2"'),),
        'torch-nn': (('torch_impl.idiomatic', '', 'LOSSES = '),),
    },
    'dZ-sigmoid': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'torch-nn': (GRADIENT_REQUEST['torch-nn'], ('torch_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-tanh': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'torch-nn': (GRADIENT_REQUEST['torch-nn'], ('torch_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-relu': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'torch-nn': (GRADIENT_REQUEST['torch-nn'], ('torch_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-leaky-relu': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'torch-nn': (GRADIENT_REQUEST['torch-nn'], ('torch_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dZ-softmax': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads[f"dZ{l}"]'),),
        'torch-nn': (GRADIENT_REQUEST['torch-nn'], ('torch_impl.idiomatic', 'model_backward', 'grads[f"dZ{l}"]'),),
    },
    'dW': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads = {f"d{k}"'),),
        'torch-nn': (
            GRADIENT_REQUEST['torch-nn'],
            ('torch_impl.idiomatic', 'model_backward', 'for l, linear in enumerate(linears(model)'),
        ),
    },
    'db': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads = {f"d{k}"'),),
        'torch-nn': (
            GRADIENT_REQUEST['torch-nn'],
            ('torch_impl.idiomatic', 'model_backward', 'for l, linear in enumerate(linears(model)'),
        ),
    },
    'dA-prev': {
        'torch': (GRADIENT_REQUEST['torch'], ('torch_impl.model', 'model_backward', 'grads[f"dA{l}"]'),),
        'torch-nn': (GRADIENT_REQUEST['torch-nn'], ('torch_impl.idiomatic', 'model_backward', 'grads[f"dA{l}"]'),),
    },
    'update': {
        'torch': (('torch_impl.optimizers', 'update_parameters_with_gd'),),
        'torch-nn': (
            ('torch_impl.idiomatic', 'make_optimizer', 'case.optimizer == "gd"'),
            ('torch_impl.idiomatic', 'update_parameters'),
        ),
    },
    'momentum': {
        'torch': (('torch_impl.optimizers', 'update_parameters_with_momentum'),),
        'torch-nn': (('torch_impl.idiomatic', 'make_optimizer', 'case.optimizer == "momentum"'),),
    },
    'rmsprop': {
        'torch': (('torch_impl.optimizers', 'update_parameters_with_rmsprop'),),
        'torch-nn': (('torch_impl.idiomatic', 'make_optimizer', 'case.optimizer == "rmsprop"'),),
    },
    'adam': {
        'torch': (('torch_impl.optimizers', 'update_parameters_with_adam'),),
        'torch-nn': (('torch_impl.idiomatic', 'make_optimizer', 'case.optimizer == "adam"'),),
    },
    'l2-regularisation': {
        'torch': (('torch_impl.model', 'compute_cost', 'if case.lambd:'),),
        'torch-nn': (('torch_impl.idiomatic', 'set_weight_decay'), ('torch_impl.idiomatic', 'l2_cost'),),
    },
    'dropout': {
        'torch': (('torch_impl.model', 'model_forward', 'if masks is not None and l < case.L:'),),
        'torch-nn': (('torch_impl.idiomatic', 'DropoutMask.forward'),),
    },
    'initialisation': {
        'torch': (('torch_impl.model', '_leaves'),),
        'torch-nn': (('torch_impl.idiomatic', 'to_state_dict'),),
    },
    'mini-batches': {
        'torch': (('torch_impl.model', 'train', 'X[:, batches[step]]'),),
        'torch-nn': (('torch_impl.idiomatic', 'train', 'X[batches[step]]'),),
    },
    'lr-decay': {
        'torch': (('torch_impl.model', 'train', 'rates = learning_rates(case, steps)'),),
        'torch-nn': (('torch_impl.idiomatic', 'make_scheduler'),),
    },
    # ---- the conv and pool layers (torch_impl.conv, torch_impl.conv_idiomatic); torch's layout is NCHW / OIHW
    'conv-output-size': {
        'torch': (
            ('torch_impl.conv', 'conv_forward', 'Z = F.conv2d('),
            ('torch_impl.conv', 'pool_forward', 'if mode == "max":'),
        ),
        'torch-nn': (('torch_impl.conv_idiomatic', 'build_layers'),),
    },
    'zero-pad': {
        'torch': (('torch_impl.conv', 'zero_pad'), ('torch_impl.conv', 'conv_forward', 'Z = F.conv2d('),),
        'torch-nn': (('torch_impl.conv_idiomatic', 'build_layers', 'conv = nn.Conv2d('),),
    },
    'conv': {
        'torch': (
            ('torch_impl.conv', 'conv_forward'),
            ('torch_impl.conv', 'forward_backward', 'A_prev, b, dA = (to_nchw('),
            ('torch_impl.conv', 'forward_backward', 'W = to_oihw('),
            ('torch_impl.conv', 'to_oihw'),
        ),
        'torch-nn': (
            ('torch_impl.conv_idiomatic', 'build_layers', 'conv = nn.Conv2d('),
            ('torch_impl.conv_idiomatic', 'load_weights'),
            ('torch_impl.conv_idiomatic', 'forward_backward', 'Z = conv(A_prev)'),
        ),
    },
    'pool': {
        'torch': (('torch_impl.conv', 'pool_forward'),),
        'torch-nn': (
            ('torch_impl.conv_idiomatic', '', 'POOLS = '),
            ('torch_impl.conv_idiomatic', 'build_layers', 'pool = POOLS['),
            ('torch_impl.conv_idiomatic', 'forward_backward', 'A = pool(Z)'),
        ),
    },
    'conv-backward': {
        'torch': (
            ('torch_impl.conv', 'conv_backward'),
            ('torch_impl.conv', 'forward_backward', 'dW = to_numpy(to_hwio(dW))'),
        ),
        'torch-nn': (
            ('torch_impl.conv_idiomatic', 'forward_backward', 'A.backward('),
            ('torch_impl.conv_idiomatic', 'forward_backward', 'dW, db = '),
        ),
    },
    'pool-backward': {
        'torch': (('torch_impl.conv', 'pool_backward'),),
        'torch-nn': (
            ('torch_impl.conv_idiomatic', 'forward_backward', 'Z.retain_grad()'),
            ('torch_impl.conv_idiomatic', 'forward_backward', 'A.backward('),
            ('torch_impl.conv_idiomatic', 'forward_backward', 'Z, A, dZ, dA_prev = '),
        ),
    },
}
