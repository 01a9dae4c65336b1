"""The course's convolutional networks as idiomatic PyTorch: ``nn.BatchNorm2d``, and the "happy" and "signs"
Keras models rebuilt as ``nn.Sequential`` with the reference's parameters copied in.

The same public functions as ``reference.convnet`` (``batchnorm``, ``forward_backward``, ``train``), NumPy in the
reference's layouts at the boundary.  Inside, PyTorch's own layout, where a learner sees the conversions:

================  ==========================================================================
reference         here
================  ==========================================================================
images NHWC       ``X.permute(0, 3, 1, 2)``: NCHW, torch's layout
``W (f,f,C',C)``  ``nn.Conv2d.weight`` is OIHW ``(C, C', f, f)``: ``W.transpose(3, 2, 0, 1)`` (``to_torch``);
                  a plain reshape of the HWIO array to that shape is *not* the kernel (the test shows it)
``b (1,1,1,C)``   ``nn.Conv2d.bias``, ``(C,)``
'same' padding    ``nn.ZeroPad2d((left, right, top, bottom))`` from ``reference.convnet.same_padding`` before a
                  valid ``nn.Conv2d`` (torch's ``padding="same"`` is symmetric when it can be, TF puts the odd
                  cell behind); a 'same' max pool pads with -inf (``nn.ConstantPad2d``), which never wins
BatchNorm         ``nn.BatchNorm2d(C, eps=epsilon, momentum=1 - momentum)``: torch's momentum is the weight of
                  the NEW value (``running = (1 - momentum) running + momentum batch``), and its running
                  variance is always the UNBIASED one (times N / (N - 1), ``aten/src/ATen/native/
                  Normalization.cpp``): the reference must be run with ``unbiased=True`` to match it.
                  Defaults: momentum 0.1 (0.9 in the reference's terms), eps 1e-5, unbiased
Flatten           ``nn.Flatten`` on NCHW orders the features (c, h, w); the reference's (Keras') Flatten on NHWC
                  orders them (h, w, c).  The Dense weights are permuted to match (``permute_dense``):
                  ``W.reshape(n, H, W, C).transpose(0, 3, 1, 2).reshape(n, -1)``
Dense ``W, b``    ``nn.Linear.weight`` ``(n_out, n_in)`` (the notes' layout, no transpose), ``bias = b.ravel()``
cost              happy: ``nn.Sigmoid`` then ``nn.BCELoss()``; signs: logits into ``nn.CrossEntropyLoss()`` with
                  the classes ``argmax(Y)`` (``AL = softmax(logits)`` for the output only); both the mean over m
gradients         ``.grad`` after ``loss.backward()``, converted back to the reference's layouts
update            ``torch.optim.SGD(lr=learning_rate)``; BatchNorm in ``train()`` mode, its buffers carried
================  ==========================================================================
"""

import numpy as np
import torch
from torch import nn

from reference.convnet import MODELS, output_shape, same_padding

DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: nn.BatchNorm2d's defaults in the reference's terms (momentum of the old value, epsilon, unbiased running var).
BN_DEFAULT = {"momentum": 0.9, "epsilon": 1e-5, "unbiased": True}


def setup(seed=0):
    """Seeds and determinism switches, set before every run."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def to_tensor(array, dtype):
    return torch.as_tensor(np.ascontiguousarray(array), dtype=DTYPES[dtype])


def to_numpy(tensor):
    return tensor.detach().cpu().numpy()


def nhwc_to_nchw(X):
    return X.permute(0, 3, 1, 2)


def nchw_to_nhwc(X):
    return X.permute(0, 2, 3, 1)


def batchnorm_layer(n_C, bn=None):
    """``nn.BatchNorm2d`` with torch's defaults (``bn=None``) or configured to the reference's convention ``bn``."""
    if bn is None:
        return nn.BatchNorm2d(n_C)
    if not bn["unbiased"]:
        raise ValueError("nn.BatchNorm2d's running variance is always the unbiased one: run the reference with "
                         "unbiased=True to compare with it")
    return nn.BatchNorm2d(n_C, eps=bn["epsilon"], momentum=1 - bn["momentum"])


def _channels(a):
    return to_numpy(a).reshape(1, 1, 1, -1)


def batchnorm(Z, gamma, beta, running, dout, training, dtype, bn=None):
    """The layer on Z (NHWC), in training or inference mode, and the gradients of ``sum(out * dout)``.

    Returns {"out", "dZ", "dgamma", "dbeta", "running" {"mean", "var"}} in the reference's layouts."""
    n_C = Z.shape[3]
    layer = batchnorm_layer(n_C, bn).to(DTYPES[dtype])
    with torch.no_grad():
        layer.weight.copy_(to_tensor(np.ravel(gamma), dtype))
        layer.bias.copy_(to_tensor(np.ravel(beta), dtype))
        layer.running_mean.copy_(to_tensor(np.ravel(running["mean"]), dtype))
        layer.running_var.copy_(to_tensor(np.ravel(running["var"]), dtype))
    layer.train(training)
    x = nhwc_to_nchw(to_tensor(Z, dtype)).requires_grad_()
    out = layer(x)
    torch.sum(out * nhwc_to_nchw(to_tensor(dout, dtype))).backward()
    return {"out": to_numpy(nchw_to_nhwc(out)), "dZ": to_numpy(nchw_to_nhwc(x.grad)),
            "dgamma": _channels(layer.weight.grad), "dbeta": _channels(layer.bias.grad),
            "running": {"mean": _channels(layer.running_mean), "var": _channels(layer.running_var)}}


# ----------------------------------------------------------------------------------------------- the models

def zero_pad_same(n_H, n_W, f, stride, value=0.0):
    """TF's 'same' padding for an f x f window as a torch padding module ((left, right, top, bottom))."""
    top, bottom = same_padding(n_H, f, stride)
    left, right = same_padding(n_W, f, stride)
    if value == 0.0:
        return nn.ZeroPad2d((left, right, top, bottom))
    return nn.ConstantPad2d((left, right, top, bottom), value)


def build_model(model_name, shape, bn=None):
    """The course's model as ``nn.Sequential`` for images of ``shape`` (n_H, n_W, n_C); torch's default init is
    overwritten by ``load_parameters``."""
    n_H, n_W, n_C = shape
    if model_name == "happy":
        n_flat = int(np.prod(output_shape("happy", shape)))
        return nn.Sequential(nn.ZeroPad2d(3), nn.Conv2d(n_C, 32, 7), batchnorm_layer(32, bn), nn.ReLU(),
                             nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(n_flat, 1), nn.Sigmoid())
    if model_name == "signs":
        n_H1, n_W1 = -(-n_H // 8), -(-n_W // 8)
        n_flat = int(np.prod(output_shape("signs", shape)))
        return nn.Sequential(
            zero_pad_same(n_H, n_W, 4, 1), nn.Conv2d(n_C, 8, 4), nn.ReLU(),
            zero_pad_same(n_H, n_W, 8, 8, -np.inf), nn.MaxPool2d(8, 8),
            zero_pad_same(n_H1, n_W1, 2, 1), nn.Conv2d(8, 16, 2), nn.ReLU(),
            zero_pad_same(n_H1, n_W1, 4, 4, -np.inf), nn.MaxPool2d(4, 4),
            nn.Flatten(), nn.Linear(n_flat, 6))
    raise ValueError(f"unknown model {model_name!r}; use one of: {', '.join(MODELS)}")


#: parameter name -> (module index in build_model's nn.Sequential, attribute)
MODULES = {
    "happy": {"W1": (1, "weight"), "b1": (1, "bias"), "gamma1": (2, "weight"), "beta1": (2, "bias"),
              "W2": (6, "weight"), "b2": (6, "bias")},
    "signs": {"W1": (1, "weight"), "b1": (1, "bias"), "W2": (6, "weight"), "b2": (6, "bias"),
              "W3": (11, "weight"), "b3": (11, "bias")},
}
RUNNING = {"happy": {"running_mean1": (2, "running_mean"), "running_var1": (2, "running_var")}, "signs": {}}
DENSE = {"happy": "W2", "signs": "W3"}


def permute_dense(W, flat_shape):
    """Dense weights over NHWC-flattened features (h, w, c) -> over NCHW-flattened ones (c, h, w)."""
    H, W_, C = flat_shape
    return W.reshape(W.shape[0], H, W_, C).transpose(0, 3, 1, 2).reshape(W.shape[0], -1)


def unpermute_dense(W, flat_shape):
    H, W_, C = flat_shape
    return W.reshape(W.shape[0], C, H, W_).transpose(0, 2, 3, 1).reshape(W.shape[0], -1)


def to_torch(parameters, model_name, shape, kernel_layout=True, flatten_permutation=True):
    """The reference's parameters in torch's layouts (NumPy).  ``kernel_layout=False`` reshapes the HWIO kernels
    to OIHW without transposing, ``flatten_permutation=False`` leaves the Dense weights in NHWC order: both wrong,
    for the test that shows each conversion is needed."""
    out = {}
    for name, value in parameters.items():
        value = np.asarray(value)
        if name.startswith("W") and value.ndim == 4:
            f, _, n_prev, n = value.shape
            value = value.transpose(3, 2, 0, 1) if kernel_layout else value.reshape(n, n_prev, f, f)
        elif name == DENSE[model_name] and flatten_permutation:
            value = permute_dense(value, output_shape(model_name, shape))
        elif not name.startswith("W"):
            value = value.ravel()
        out[name] = value
    return out


def from_torch(values, model_name, shape, like):
    """Parameters or gradients in torch's layouts -> the reference's layouts (those of ``like``, the reference's
    parameters), under the same names."""
    out = {}
    for name, g in values.items():
        if name.startswith("W") and g.ndim == 4:
            g = g.transpose(2, 3, 1, 0)
        elif name == DENSE[model_name]:
            g = unpermute_dense(g, output_shape(model_name, shape))
        else:
            g = g.reshape(np.shape(like[name]))
        out[name] = g
    return out


def load_parameters(model, parameters, running, model_name, shape, dtype, **layouts):
    torch_parameters = to_torch(parameters, model_name, shape, **layouts)
    with torch.no_grad():
        for name, (index, attr) in MODULES[model_name].items():
            getattr(model[index], attr).copy_(to_tensor(torch_parameters[name], dtype))
        for name, (index, attr) in RUNNING[model_name].items():
            getattr(model[index], attr).copy_(to_tensor(np.ravel(running[name]), dtype))


def read_running(model, model_name):
    return {name: _channels(getattr(model[index], attr)) for name, (index, attr) in RUNNING[model_name].items()}


def loss_function(model_name):
    return nn.BCELoss() if model_name == "happy" else nn.CrossEntropyLoss()


def _cost(model, X, Y, model_name, loss_fn):
    out = model(X)
    if model_name == "happy":
        return loss_fn(out, Y), out
    return loss_fn(out, torch.argmax(Y, dim=1)), torch.softmax(out, dim=1)


def _model(parameters, running, model_name, shape, dtype, bn, **layouts):
    setup()
    model = build_model(model_name, shape, bn).to(DTYPES[dtype])
    load_parameters(model, parameters, running or {}, model_name, shape, dtype, **layouts)
    model.train()
    return model


def forward_backward(parameters, X, Y, model_name, dtype="float64", running=None, bn=None, **layouts):
    """One training-mode forward and ``loss.backward()``.  Returns {"cost", "AL", "grads", "running"} as
    ``reference.convnet.forward_backward`` does (``layouts``: ``to_torch``'s switches)."""
    shape = X.shape[1:]
    model = _model(parameters, running, model_name, shape, dtype, bn, **layouts)
    cost, AL = _cost(model, nhwc_to_nchw(to_tensor(X, dtype)), to_tensor(Y, dtype), model_name,
                     loss_function(model_name))
    cost.backward()
    grads = {name: to_numpy(getattr(model[index], attr).grad) for name, (index, attr) in MODULES[model_name].items()}
    grads = {"d" + name: g for name, g in from_torch(grads, model_name, shape, parameters).items()}
    return {"cost": float(cost.detach()), "AL": to_numpy(AL), "grads": grads,
            "running": read_running(model, model_name)}


def train(parameters, X, Y, model_name, dtype="float64", steps=5, learning_rate=0.01, running=None, bn=None):
    """Full-batch ``torch.optim.SGD`` for ``steps`` steps.  Returns {"costs", "parameters", "running"}."""
    shape = X.shape[1:]
    model = _model(parameters, running, model_name, shape, dtype, bn)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loss_fn = loss_function(model_name)
    Xt, Yt = nhwc_to_nchw(to_tensor(X, dtype)), to_tensor(Y, dtype)
    costs = []
    for _ in range(steps):
        optimizer.zero_grad()
        cost, _ = _cost(model, Xt, Yt, model_name, loss_fn)
        cost.backward()
        optimizer.step()
        costs.append(float(cost.detach()))
    final = {name: to_numpy(getattr(model[index], attr)) for name, (index, attr) in MODULES[model_name].items()}
    return {"costs": costs, "parameters": from_torch(final, model_name, shape, parameters),
            "running": read_running(model, model_name)}
