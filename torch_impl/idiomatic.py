"""The L-layer network of the notes as idiomatic PyTorch: ``nn.Sequential``, ``nn.BCELoss`` /
``nn.CrossEntropyLoss``, ``torch.optim.SGD`` / ``RMSprop`` / ``Adam``, L2 by ``weight_decay``.

Side by side with ``torch_impl.model`` (the notes' equations in torch ops): the
same functions, in the same order, with the same names, but every quantity lives
in a ``torch.nn`` object and examples are **rows**, PyTorch's convention.  How each
notes symbol maps onto the framework object:

================  ==========================================================================
notes             here
================  ==========================================================================
``X (n0, m)``     ``X.T``: an ``(m, n0)`` tensor, one example per row (``Y`` -> ``Y.T``, ``(m, 1)``)
``W[l]``          ``model[2(l-1)].weight``, an ``nn.Linear``'s ``(out, in) = (n[l], n[l-1])``: no transpose
``b[l] (n[l],1)`` ``nn.Linear.bias``, shape ``(n[l],)``: ``b[l].ravel()``
``Z[l]``          the ``nn.Linear``'s output, ``(m, n[l])`` = ``Z[l].T`` (caught by a forward hook)
``A[l] = g(Z)``   the activation module's output: ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``,
                  ``nn.LeakyReLU(negative_slope)``, ``nn.Identity``
``D[l]`` dropout   ``DropoutMask(keep_prob)`` after the hidden activation: ``A * D / keep_prob`` with the
                  reference's mask ``D[l].T`` set before each step (``nn.Dropout`` draws its own masks)
softmax ``AL``    the last ``nn.Linear`` has no activation module: ``nn.CrossEntropyLoss()`` takes the
                  logits ``ZL`` and integer classes ``argmax(Y)`` (it applies ``log_softmax`` itself);
                  ``AL = softmax(ZL)`` is computed for the capture and predictions only
fused ``dZL``     ``output_gradient="fused"``: the last ``nn.Linear`` has no activation module and the loss
                  takes the logits, ``nn.BCEWithLogitsLoss()`` (backward ``(sigmoid(z) - y) / m``) or
                  ``nn.CrossEntropyLoss()``: dZL = AL - Y; the *recorded* cost is the notes' formula on
                  ``AL = g(ZL)`` (``torch_impl.losses.compute_cost``: inf where AL saturated)
cost ``J``        ``nn.BCELoss()`` (mean over the m x 1 outputs = the notes' 1/m sum);
                  ``nn.L1Loss()``, ``nn.MSELoss()`` for l1/l2 (mean of |y-a|, (y-a)^2 over m x 1);
                  ``nn.CrossEntropyLoss()`` for softmax; with L2, ``+ lambda/(2m) sum ||W||^2`` is added
                  to the *recorded* cost only (torch's ``weight_decay`` is in the update, not the loss)
``dW[l]``         ``linear.weight.grad`` after ``loss.backward()`` (already ``(n[l], n[l-1])``)
``db[l]``         ``linear.bias.grad``, reshaped to ``(n[l], 1)``
``dZ[l], dA[l]``  ``.grad`` of the retained Linear / activation outputs, transposed and times m
                  (autograd's gradient of the mean cost is 1/m the notes' per-example dZ, dA)
update            ``optimizer.step()`` of (``optimizer``):
                  gd: ``torch.optim.SGD(lr=alpha)``;
                  momentum: ``SGD(lr=alpha, momentum=beta, dampening=beta)`` with every
                  ``state[p]["momentum_buffer"]`` pre-created as zeros (see below);
                  rmsprop: ``RMSprop(lr=alpha, alpha=beta2, eps=epsilon)``;
                  adam: ``Adam(lr=alpha, betas=(beta1, beta2), eps=epsilon)``
decay             ``lr_scheduler.LambdaLR(optimizer, lambda epoch: alpha_epoch / alpha)`` (``make_scheduler``),
                  ``scheduler.step()`` after each epoch's last batch: every step of epoch e uses
                  ``alpha * (alpha_e / alpha)``, the course's ``update_lr`` / ``schedule_lr_decay`` rate
                  (``reference.optimizers.learning_rate_at``) to an ulp (LambdaLR multiplies the initial lr)
L2 ``lambda``     two param groups: weights with ``weight_decay = lambda / m_batch`` (set on the group
                  before every ``step()``: the course's m is the batch's size), biases with
                  ``weight_decay = 0`` (the course does not regularise b).  torch adds ``wd * p`` to the
                  gradient (``torch/optim/sgd.py`` ``grad.add(param, alpha=weight_decay)``, the same
                  in ``rmsprop.py`` / ``adam.py``): ``dW + lambda/m W``, the course's L2 gradient.
================  ==========================================================================

Semantic differences from the notes' equations, read in the PyTorch sources
(all rounding-level for the grid's cases; see ``parity_tests/test_idiomatic.py``):

* ``nn.Linear`` computes ``X W^T + b`` with ``addmm`` on the row layout (another summation
  order than ``W A_prev + b``).
* ``nn.BCELoss`` (``aten/src/ATen/native/Loss.cpp``, ``binary_cross_entropy_out_cpu``) clamps
  each log at -100 (``std::max(std::log(input), -100)``), and its backward
  (``binary_cross_entropy_backward_out_cpu``) is ``(a - y) / max((1 - a) a, 1e-12)`` divided by
  ``numel``: the notes' ``-(y/a - (1-y)/(1-a)) / m`` only while ``a (1-a) >= 1e-12``
  and ``log a > -100``, i.e. until AL saturates (the grid's runs never do).
* ``torch.optim.SGD`` on CPU tensors takes the single-tensor path (``foreach`` kernels are for
  accelerators, ``torch/optim/optimizer.py`` ``_default_to_fused_or_foreach``) and updates with
  ``param.add_(grad, alpha=-lr)`` (``torch/optim/sgd.py``), whose vectorised CPU kernel is
  ``vec::fmadd(grad, -lr, param)`` (``aten/src/ATen/native/ufunc/add.h``): ``W - alpha dW``
  with one rounding instead of two.

* **SGD momentum's first step** (``torch/optim/sgd.py`` ``_single_tensor_sgd``): with no buffer,
  ``buf = grad.detach().clone()`` (no dampening), afterwards ``buf.mul_(momentum).add_(grad,
  alpha=1 - dampening)``.  With ``dampening=beta`` and the buffer pre-created as zeros every step is
  ``buf = beta buf + (1 - beta) g; p -= lr buf``: the course's ``v``, from ``v = 0``.
* **RMSprop** (``torch/optim/rmsprop.py`` ``_single_tensor_rmsprop``): ``square_avg.mul_(alpha)
  .addcmul_(grad, grad, value=1 - alpha)``; ``avg = square_avg.sqrt().add_(eps)``;
  ``param.addcdiv_(grad, avg, value=-lr)``: the course's ``s`` and ``sqrt(s) + eps``.
* **Adam** (``torch/optim/adam.py`` ``_single_tensor_adam``, not capturable): ``exp_avg.lerp_(grad,
  1 - beta1)`` (``m + (1-beta1)(g - m)``), ``exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)``,
  bias corrections in Python floats (``step = _get_value(step_t)``), ``denom = sqrt(v) /
  sqrt(1 - beta2^t) + eps``, ``param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1^t))``:
  the course's ``v_hat / (sqrt(s_hat) + eps)`` with eps in the same place; rounding-level only.

The initial parameters come from the reference (``load_state_dict(to_state_dict(parameters))``);
``nn.Linear``'s own initialisation is overwritten.
"""

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from nnparity.errors import UsageError
from reference.optimizers import learning_rate_at, steps_per_epoch
from torch_impl.losses import compute_cost as notes_cost

DTYPES = {"float64": torch.float64, "float32": torch.float32}
LOSSES = {"cross_entropy": nn.BCELoss, "l1": nn.L1Loss, "l2": nn.MSELoss,
          "categorical_cross_entropy": nn.CrossEntropyLoss}
LOSS_NAMES = tuple(LOSSES)


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def to_tensor(array, dtype):
    return torch.as_tensor(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return tensor.detach().cpu().numpy()


class DropoutMask(nn.Module):
    """Inverted dropout with a given mask: ``A * D / keep_prob`` (the notes' ``A = A * D; A = A / keep_prob``).

    ``nn.Dropout`` draws its own Bernoulli masks from torch's generator; parity needs the reference's
    ``D[l]``, so the training loop sets ``self.D`` (rows: ``D[l].T``) before every step.  With no mask
    set (``D is None``) or in ``eval()`` mode it is the identity, as ``nn.Dropout`` is."""

    def __init__(self, keep_prob):
        super().__init__()
        self.keep_prob = keep_prob
        self.D = None

    def forward(self, A):
        if self.D is None or not self.training:
            return A
        return A * self.D / self.keep_prob

    def extra_repr(self):
        return f"keep_prob={self.keep_prob}"


def activation_module(activation, slope=0.01):
    """The ``torch.nn`` module of g."""
    if activation == "leaky_relu":
        return nn.LeakyReLU(negative_slope=slope)
    modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}
    if activation not in modules:
        raise ValueError(f"torch-nn has no module for activation {activation!r}")
    return modules[activation]()


def loss_function(loss, output_gradient="chained"):
    """The ``torch.nn`` loss of J, mean reduction (the notes' 1/m sum over the m examples); with the fused
    output gradient a sigmoid's cross-entropy takes the logits, ``nn.BCEWithLogitsLoss()``."""
    if output_gradient == "fused" and loss == "cross_entropy":
        return nn.BCEWithLogitsLoss()
    return LOSSES[loss]()


def logits_output(case):
    """Whether the model ends with the last ``nn.Linear`` (the loss takes the logits ZL): softmax, or fused."""
    return case.output_activation == "softmax" or case.output_gradient == "fused"


def output_activation(ZL):
    """AL = g(ZL) of a model that ends with its logits (rows): sigmoid for 1 unit, softmax for several."""
    return torch.sigmoid(ZL) if ZL.shape[1] == 1 else torch.softmax(ZL, dim=1)


def recorded_cost(cost, out, Y, case):
    """The cost a step records: the loss, or with the fused output gradient the notes' formula on
    ``AL = g(ZL)`` (``Y`` in the notes' layout), inf where AL saturated, as the reference's."""
    if case.output_gradient == "chained":
        return cost.detach()
    with torch.no_grad():
        return notes_cost(output_activation(out).T, Y, case.loss)


def build_model(case):
    """``nn.Sequential(Linear(n0, n1), g1, [DropoutMask], ..., Linear(n[L-1], n[L]), sigmoid)`` in the case's
    dtype; a softmax output, and any fused one, ends with the last Linear (the loss takes the logits)."""
    layers = []
    for l, activation in enumerate(case.activations(), start=1):
        layers.append(nn.Linear(case.layer_dims[l - 1], case.layer_dims[l]))
        if l < case.L or not logits_output(case):
            layers.append(activation_module(activation, case.leaky_slope))
        if case.dropout and l < case.L:
            layers.append(DropoutMask(case.keep_prob))
    return nn.Sequential(*layers).to(DTYPES[case.dtype])


def linears(model):
    """The ``nn.Linear`` layers 1..L of the model."""
    return [module for module in model if isinstance(module, nn.Linear)]


def to_state_dict(parameters, model=None):
    """Notes' parameters -> the ``nn.Sequential``'s state dict: ``W[l]`` as is, ``b[l].ravel()``.

    Layer l's Linear is module ``2 (l - 1)`` (each Linear is followed by its activation module); with
    ``model``, the Linears' own indices (dropout masks and a softmax output shift them)."""
    L = len(parameters) // 2
    if model is None:
        indices = [2 * (l - 1) for l in range(1, L + 1)]
    else:
        indices = [i for i, module in enumerate(model) if isinstance(module, nn.Linear)]
    state = OrderedDict()
    for l, index in enumerate(indices, start=1):
        state[f"{index}.weight"] = torch.from_numpy(np.array(parameters[f"W{l}"], order="C"))  # a copy
        state[f"{index}.bias"] = torch.from_numpy(np.array(parameters[f"b{l}"]).ravel())
    return state


def from_state_dict(state_dict):
    """The ``nn.Sequential``'s state dict -> notes' parameters ``{W1: (n1, n0), b1: (n1, 1), ...}`` as NumPy."""
    weights = [k for k in state_dict if k.endswith(".weight")]
    parameters = {}
    for l, key in enumerate(weights, start=1):
        bias = state_dict[key[: -len("weight")] + "bias"]
        parameters[f"W{l}"] = to_numpy(state_dict[key]).copy()
        parameters[f"b{l}"] = to_numpy(bias).reshape(-1, 1).copy()
    return parameters


def linear_forward(A_prev, linear):
    """Z = W A_prev + b, on rows: ``linear(A_prev)`` = A_prev W^T + b."""
    return linear(A_prev)


def linear_activation_forward(A_prev, linear, activation):
    """Z = linear(A_prev); A = activation(Z).  Returns A and the cache (A_prev, linear, Z)."""
    Z = linear_forward(A_prev, linear)
    A = activation(Z)
    return A, (A_prev, linear, Z)


def model_forward(X, model, caches=None):
    """AL = model(X) (for a softmax output: the logits ZL).  With a list ``caches``, forward hooks
    collect every layer's Z (the Linear's output) and A (the last module's output before the next
    Linear: after dropout, as the next layer sees it), keeping their gradients (``retain_grad``):
    ``caches = [Z1, A1, ..., ZL, AL]`` (a softmax output's AL is ``softmax(ZL)``, added here)."""
    if caches is None:
        return model(X), []
    outputs = []

    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append((module, output))

    handles = [module.register_forward_hook(keep) for module in model]
    try:
        AL = model(X)
    finally:
        for handle in handles:
            handle.remove()
    for i, (module, output) in enumerate(outputs):
        last_of_layer = i + 1 == len(outputs) or isinstance(outputs[i + 1][0], nn.Linear)
        if isinstance(module, nn.Linear):
            caches.append(output)
            if last_of_layer:  # a softmax or fused output: no activation module
                caches.append(output_activation(output))
        elif last_of_layer:
            caches.append(output)
    return AL, caches


def model_backward(cost, model=None, caches=(), m=1, weight_decay=0.0):
    """``cost.backward()``; with the model, the gradients in the notes' layout: {'dWl', 'dbl'},
    and with caches {'dZl', 'dA(l-1)'} (transposed, times m: the notes' per-example convention).
    ``weight_decay``: dW is the gradient torch's optimiser steps with, ``grad + weight_decay * W``."""
    cost.backward()
    if model is None:
        return {}
    grads = {}
    for l, linear in enumerate(linears(model), start=1):
        grads[f"dW{l}"] = linear.weight.grad
        if weight_decay:
            grads[f"dW{l}"] = linear.weight.grad.add(linear.weight.detach(), alpha=weight_decay)
        grads[f"db{l}"] = linear.bias.grad.reshape(-1, 1)
    L = len(caches) // 2
    for l in range(1, L + 1):
        grads[f"dZ{l}"] = m * caches[2 * (l - 1)].grad.T
    for l in range(1, L):
        grads[f"dA{l}"] = m * caches[2 * l - 1].grad.T
    return grads


def make_optimizer(model, case):
    """The case's optimiser over two parameter groups: the weights (L2's ``weight_decay``, set per step
    by ``set_weight_decay``) and the biases (``weight_decay = 0``)."""
    weights = [linear.weight for linear in linears(model)]
    biases = [linear.bias for linear in linears(model)]
    groups = [{"params": weights, "weight_decay": 0.0}, {"params": biases, "weight_decay": 0.0}]
    lr = case.learning_rate
    if case.optimizer == "gd":
        return torch.optim.SGD(groups, lr=lr)
    if case.optimizer == "momentum":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=case.beta, dampening=case.beta)
        for p in weights + biases:  # v = 0: otherwise torch's first step is buf = g, undamped
            optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return optimizer
    if case.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=case.beta2, eps=case.epsilon)
    if case.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(case.beta1, case.beta2), eps=case.epsilon)
    raise ValueError(f"unknown optimizer {case.optimizer!r}")


def make_scheduler(optimizer, case):
    """The course's learning-rate decay as ``LambdaLR``, stepped once per epoch: the rate of epoch e is the
    initial lr times ``learning_rate_at(case, e) / alpha`` (1 without decay)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer,
                                             lambda epoch: learning_rate_at(case, epoch) / case.learning_rate)


def set_weight_decay(optimizer, case, m):
    """L2: the weights' group decays by ``lambda / m`` (m: this batch's size), the biases' by 0."""
    optimizer.param_groups[0]["weight_decay"] = case.lambd / m if case.lambd else 0.0


def l2_cost(model, case, m):
    """``lambda/(2m) sum_l ||W[l]||^2`` (no gradient): the course's L2 term of the recorded cost."""
    with torch.no_grad():
        return 1 / m * (case.lambd / 2) * sum(torch.sum(torch.square(linear.weight)) for linear in linears(model))


def set_masks(model, masks):
    """Each ``DropoutMask`` gets its step's mask ``D[l].T`` (rows), or None."""
    modules = [module for module in model if isinstance(module, DropoutMask)]
    for l, module in enumerate(modules):
        module.D = None if masks is None else torch.as_tensor(np.ascontiguousarray(masks[l].T))


def targets(Y, case):
    """The loss's targets: Y.T, or for a softmax output the integer classes ``argmax(Y)`` (one-hot Y (C, m))."""
    if case.output_activation == "softmax":
        return torch.as_tensor(np.argmax(Y, axis=0))
    return to_tensor(Y.T, case.dtype)


def update_parameters(optimizer):
    """One update by the case's optimiser: ``optimizer.step()`` (in place on the model's parameters)."""
    optimizer.step()


def predict(X, model, case=None):
    """Sigmoid output: 1 where AL > 0.5, else 0; softmax: the argmax class; shape (1, m) (X in the notes' layout)."""
    model.eval()
    try:
        with torch.no_grad():
            AL, _ = model_forward(X.T, model)
    finally:
        model.train()
    if case is not None and case.output_activation == "softmax":
        return torch.argmax(AL, dim=1).reshape(1, -1)
    if case is not None and logits_output(case):
        AL = output_activation(AL)
    return (AL > 0.5).to(torch.int64).T


def _model(parameters, case):
    """The case's ``nn.Sequential`` loaded with the notes' parameters."""
    model = build_model(case)
    model.load_state_dict(to_state_dict(parameters, model))
    return model


def _check(case, masks=None):
    """The idiomatic model covers the sigmoid output with {cross_entropy, l1, l2} and the softmax output with
    categorical cross-entropy; dropout needs the reference's masks.  Anything else is refused."""
    if case.loss not in LOSS_NAMES:
        raise UsageError(f"--impl torch-nn implements the losses {', '.join(LOSS_NAMES)}, not {case.loss}; "
                         f"use --impl torch")
    if case.dropout and masks is None:
        raise UsageError("--impl torch-nn trains dropout with the reference's masks (DropoutMask); none were given")


def forward_backward(parameters, X, Y, case, masks=None):
    """One forward and backward pass of the nn.Sequential; every intermediate captured as NumPy
    arrays in the notes' layout (see reference).  With L2, the cost adds ``lambda/(2m) sum ||W||^2``
    and dW is the gradient the optimiser steps with, ``grad + (lambda/m) W``."""
    _check(case, masks)
    setup(case.seed)
    model = _model(parameters, case)
    set_masks(model, masks if case.dropout else None)
    loss_fn = loss_function(case.loss, case.output_gradient)
    m = X.shape[1]
    T = targets(Y, case)
    X = to_tensor(X.T, case.dtype)  # examples as rows
    out, caches = model_forward(X, model, caches=[])
    cost = loss_fn(out, T)
    recorded = recorded_cost(cost, out, to_tensor(Y, case.dtype), case)
    recorded = recorded + l2_cost(model, case, m) if case.lambd else recorded
    captured = {}
    for l in range(1, case.L + 1):
        captured[f"Z{l}"], captured[f"A{l}"] = caches[2 * (l - 1)].T, caches[2 * l - 1].T
    captured["cost"] = recorded
    captured.update(model_backward(cost, model, caches, m=m, weight_decay=case.lambd / m if case.lambd else 0.0))
    return {k: to_numpy(v) for k, v in captured.items()}


def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
    """The PyTorch training loop: ``zero_grad``, forward, loss, ``backward``, ``step`` (``scheduler.step()`` after
    each epoch's last batch), on the reference's schedule and with its dropout masks.  Returns (parameters in the
    notes' layout, costs) as NumPy.

    ``on_step(step)``, if given, is called once per gradient step, right after ``optimizer.step()``,
    with the step index 0..steps-1."""
    _check(case, masks)
    setup(case.seed)
    model = _model(parameters, case)
    loss_fn = loss_function(case.loss, case.output_gradient)
    optimizer = make_optimizer(model, case)
    scheduler = make_scheduler(optimizer, case)
    T = targets(Y, case)
    Y = to_tensor(Y, case.dtype)  # the notes' layout, for the recorded cost of a fused output gradient
    X = to_tensor(X.T, case.dtype)  # examples as rows
    batches = None if schedule is None else [torch.as_tensor(idx) for idx in schedule]
    steps = case.epochs if schedule is None else len(schedule)
    costs = torch.empty(steps, dtype=DTYPES[case.dtype])
    for step in range(steps):
        if batches is None:
            X_batch, T_batch, Y_batch = X, T, Y
        else:
            X_batch, T_batch, Y_batch = X[batches[step]], T[batches[step]], Y[:, batches[step]]
        m = X_batch.shape[0]
        set_masks(model, masks[step] if case.dropout else None)
        optimizer.zero_grad()
        out, _ = model_forward(X_batch, model)
        cost = loss_fn(out, T_batch)
        J = recorded_cost(cost, out, Y_batch, case)
        costs[step] = J + l2_cost(model, case, m) if case.lambd else J  # before the update
        model_backward(cost)  # cost.backward()
        set_weight_decay(optimizer, case, m)
        update_parameters(optimizer)  # optimizer.step()
        if (step + 1) % steps_per_epoch(case, steps) == 0:  # the epoch's last batch
            scheduler.step()
        if on_step is not None:
            on_step(step)
    return from_state_dict(model.state_dict()), to_numpy(costs)


def predictions(parameters, X, case):
    """``predict`` on the notes' parameters, NumPy in and out: the harness's entry point for predictions."""
    setup(case.seed)
    return to_numpy(predict(to_tensor(X, case.dtype), _model(parameters, case), case))
