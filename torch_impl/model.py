"""The L-layer network of the notes in PyTorch ops; gradients from ``torch.autograd``.

Side by side with ``reference.model``: the same functions, in the same order,
with the same names and shapes (examples as columns, ``W[l]`` of shape
``(n[l], n[l-1])``).  What differs is the framework: tensors instead of arrays,
and no hand-written backward (``model_backward`` asks autograd).
"""

import numpy as np
import torch

from reference.optimizers import learning_rates
from torch_impl.activations import activation_forward
from torch_impl.losses import compute_cost as compute_loss_cost
from torch_impl.losses import logits_cost
from torch_impl.optimizers import initialize_optimizer_state, update

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def to_tensor(array, dtype):
    return torch.as_tensor(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return tensor.detach().cpu().numpy()


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


def model_backward(cost, parameters, caches=(), m=1):
    """Autograd's gradients of the cost: {'dWl', 'dbl'}, and with caches {'dZl', 'dA(l-1)'}.

    dZ and dA are scaled by m to the notes' per-example convention.
    """
    names = list(parameters)
    L = len(caches)
    inputs = [parameters[k] for k in names] + [cache[3] for cache in caches] + [cache[4] for cache in caches[:-1]]
    grads_list = torch.autograd.grad(cost, inputs)
    grads = {f"d{k}": g for k, g in zip(names, grads_list)}
    for l in range(1, L + 1):
        grads[f"dZ{l}"] = m * grads_list[len(names) + l - 1]
    for l in range(1, L):
        grads[f"dA{l}"] = m * grads_list[len(names) + L + l - 1]
    return grads


def compute_cost(AL, Y, parameters, case, ZL=None):
    """The cost J, plus ``lambda/(2m) sum ||W||^2`` when L2 regularisation is on (autograd adds lambda/m W).

    With ``ZL`` (``output_gradient="fused"``) J comes from torch's loss on the logits instead
    (``losses.logits_cost``), whose gradient is dZL = (AL - Y) / m: what ``model_backward`` differentiates
    then, while the recorded cost stays the notes' formula on AL (inf where AL saturated).
    """
    J = compute_loss_cost(AL, Y, case.loss) if ZL is None else logits_cost(ZL, Y, case.loss)
    if case.lambd:
        m = Y.shape[1]
        J = J + 1 / m * (case.lambd / 2) * sum(torch.sum(torch.square(P)) for k, P in parameters.items()
                                                if k.startswith("W"))
    return J


def update_parameters(parameters, grads, learning_rate):
    """W = W - alpha dW; b = b - alpha db (new leaf tensors)."""
    with torch.no_grad():
        return {name: (P - learning_rate * grads[f"d{name}"]).requires_grad_() for name, P in parameters.items()}


def predict(X, parameters, case):
    """Sigmoid output: 1 where AL > 0.5, else 0, shape (1, m).  Softmax: the argmax class, shape (1, m)."""
    with torch.no_grad():
        AL, _ = model_forward(X, parameters, case)
    if case.output_activation == "softmax":
        return torch.argmax(AL, dim=0).reshape(1, -1)
    return (AL > 0.5).to(torch.int64)


def _leaves(parameters, dtype):
    return {k: to_tensor(v, dtype).requires_grad_() for k, v in parameters.items()}


def _masks(masks):
    return None if masks is None else [torch.as_tensor(D) for D in masks]


def _objective(cost, AL, Y, parameters, caches, case):
    """What autograd differentiates: the cost, or with the fused output gradient J from the logits ZL."""
    return cost if case.output_gradient == "chained" else compute_cost(AL, Y, parameters, case, ZL=caches[-1][3])


def forward_backward(parameters, X, Y, case, masks=None):
    """One forward and backward pass; every intermediate captured as NumPy arrays (see reference)."""
    setup(case.seed)
    parameters = _leaves(parameters, case.dtype)
    X, Y = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    AL, caches = model_forward(X, parameters, case, _masks(masks))
    cost = compute_cost(AL, Y, parameters, case)
    captured = {}
    for l, cache in enumerate(caches, start=1):
        captured[f"Z{l}"], captured[f"A{l}"] = cache[3], cache[4]
    captured["cost"] = cost
    grads = model_backward(_objective(cost, AL, Y, parameters, caches, case), parameters, caches, m=Y.shape[1])
    captured.update(grads)
    return {k: to_numpy(v) for k, v in captured.items()}


def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
    """The reference's training loop in torch ops.  Returns (parameters, costs) as NumPy.

    ``on_step(step)``, if given, is called once per gradient step, right after that step's update
    (CPU ops have run when they return), with the step index 0..steps-1.
    """
    setup(case.seed)
    parameters = _leaves(parameters, case.dtype)
    state = initialize_optimizer_state(parameters, case.optimizer)
    X, Y = to_tensor(X, case.dtype), to_tensor(Y, case.dtype)
    batches = None if schedule is None else [torch.as_tensor(idx) for idx in schedule]
    steps = case.epochs if schedule is None else len(schedule)
    costs = torch.empty(steps, dtype=DTYPES[case.dtype])
    rates = learning_rates(case, steps)
    for step in range(steps):
        if batches is None:
            X_batch, Y_batch = X, Y
        else:
            X_batch, Y_batch = X[:, batches[step]], Y[:, batches[step]]
        AL, caches = model_forward(X_batch, parameters, case, None if masks is None else _masks(masks[step]))
        cost = compute_cost(AL, Y_batch, parameters, case)
        costs[step] = cost.detach()
        grads = model_backward(_objective(cost, AL, Y_batch, parameters, caches, case), parameters)
        parameters, state = update(parameters, grads, state, case, t=step + 1, learning_rate=rates[step])
        if on_step is not None:
            on_step(step)
    return {k: to_numpy(v) for k, v in parameters.items()}, to_numpy(costs)


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    setup(case.seed)
    parameters = {k: to_tensor(v, case.dtype) for k, v in parameters.items()}
    return to_numpy(predict(to_tensor(X, case.dtype), parameters, case))
