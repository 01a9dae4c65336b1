"""Where the frameworks differ from the math: an executable catalogue.

Each entry runs one small case twice — with the framework's default behaviour
and with the behaviour this project aligns to the notes — and returns a record
whose every number was measured by that run, with the installed versions::

    id, title, framework, framework_version, what_differs, case,
    default_result, aligned_result, effect, how_aligned, verified_in,
    status, seconds, import_seconds, measured

``measured`` holds the raw numbers (a dict) behind the text columns; ``status``
is ``ok``, ``unavailable: <why>`` (a framework does not import) or
``error: <why>``; ``seconds`` is the entry's own run time and ``import_seconds``
the time spent importing a framework for the first time inside it.

Frameworks are imported inside the entries, never at module import.

The entries are declared by family.  This module holds the cross-framework family, the entries that measure two
frameworks in one run (torch's defaults beside TensorFlow's and Keras', torch's RMSprop and Adam as the course's form
beside Keras'; the conv entries that set torch, TensorFlow / Keras and JAX / flax side by side: 'same' padding,
padded average pools, tied max-pool gradients, flatten order, kernel layout, batch normalisation), and the measuring
helpers every family shares.  An entry that measures one framework family is
declared in that framework's folder, beside the code it measures: ``torch_impl/catalogue.py`` (PyTorch),
``tf_impl/catalogue.py`` (TensorFlow and Keras), ``jax_impl/catalogue.py`` (JAX, flax and optax).  Each folder's
descriptor (``<package>/framework.py``'s ``catalogue``, ``nnparity.impls.Framework``) hands them over; they join
``ENTRIES`` after this module's, in registry order (torch's, TensorFlow's, JAX's), and a plugin's the same way.
``run_catalogue()`` returns one row per entry as a pandas DataFrame;
``records()`` the same rows as strict-JSON-ready dicts.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from nnparity.metrics import bound_ratio, normwise_rel_err  # noqa: F401 (the harness's, for the entries)
from nnparity.numbers import jsonable, number

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COLUMNS = [
    "id", "title", "framework", "framework_version", "what_differs", "case",
    "default_result", "aligned_result", "effect", "how_aligned", "verified_in",
    "status", "seconds", "import_seconds", "measured",
]

#: The saturated cross-entropy case of the first entries: AL exactly 1 for a y = 0 example.
SATURATED_AL = [[1.0, 0.3]]
SATURATED_Y = [[0.0, 1.0]]


class Unavailable(RuntimeError):
    """A framework needed by an entry does not import."""


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    framework: str
    run: Callable[[], dict]


ENTRIES: list[Entry] = []

_import_seconds = [0.0]


def registrar(entries: list):
    """The decorator ``@_entry(id, title, framework)`` that declares an entry into ``entries``: this module's
    ``ENTRIES``, and each framework folder's ``catalogue.py`` its own."""
    def _entry(id: str, title: str, framework: str):
        def register(fn):
            entries.append(Entry(id, title, framework, fn))
            return fn
        return register
    return _entry


_entry = registrar(ENTRIES)


def _import(name: str):
    """Import a framework module; the time of a first import is counted apart from the entry's own."""
    start = time.perf_counter()
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, or a framework that breaks while importing
        raise Unavailable(f"cannot import {name} ({type(exc).__name__}: {exc})") from exc
    finally:
        _import_seconds[0] += time.perf_counter() - start


def _torch():
    torch = _import("torch")
    _import("torch.nn.functional")
    return torch


def _tf():
    return _import("tensorflow")


def _keras():
    _tf()
    return _import("keras")


def _version(*modules) -> str:
    return ", ".join(f"{m.__name__} {m.__version__}" for m in modules)


# --------------------------------------------------------------------------- measuring helpers


def fmt(x, digits: int = 3) -> str:
    """A measured number as short text: ``2.24e-8``, ``50.6``, ``inf``, ``0``, ``nan``."""
    return number(x, f".{digits}g", nan="nan")


def _vec(values, digits: int = 4) -> str:
    return "[" + ", ".join(fmt(v, digits) for v in np.ravel(values)) + "]"


def _planar():
    from nnparity.data import load_data

    dataset = load_data("planar")
    return dataset.X, dataset.Y


def _network(layer_dims, hidden, **case_args):
    """The planar data, a Case and its reference initial parameters (inv-sqrt, seed 1, float64)."""
    from nnparity.spec import Case
    from reference.initializers import initialize_parameters

    case = Case(layer_dims=tuple(layer_dims), hidden_activation=hidden, data="planar", **case_args)
    X, Y = _planar()
    P = initialize_parameters(case.layer_dims, case.init, case.init_scale, case.seed, case.dtype)
    return case, X, Y, P


def _notes_bce(AL, Y):
    """The notes' cost and dJ/dAL = dAL / m (reference.losses), warnings about log(0) silenced."""
    from reference.losses import compute_cost, cost_backward

    with np.errstate(divide="ignore", invalid="ignore"):
        return float(compute_cost(AL, Y)), cost_backward(AL, Y) / Y.shape[1]


def _saturated(dtype):
    return np.array(SATURATED_AL, dtype=dtype), np.array(SATURATED_Y, dtype=dtype)


def _notes_formula_result(package, f64, f32):
    """The saturated cross-entropy entries' aligned result: ``package``'s compute_cost (the notes' formula) in
    float64 and float32, beside the NumPy reference's."""
    return (f"{package}.losses.compute_cost (the notes' formula): cost {fmt(f64['aligned_cost'])} (float64), "
            f"{fmt(f32['aligned_cost'])} (float32), dJ/dAL = {_vec(f64['aligned_grad'])}; NumPy reference: cost "
            f"{fmt(f64['notes_cost'])}, dJ/dAL = {_vec(f64['notes_grad'])}")


def _max_rel_diff(costs, ref_costs) -> float:
    """A cost trajectory's largest relative difference from the reference's, step by step."""
    return float(np.max(np.abs(np.asarray(costs, np.float64) - ref_costs) / np.abs(ref_costs)))


# --------------------------------------------------------------------------- 1. leaky ReLU slopes


def _leaky_network():
    """2,4,1 leaky-ReLU network on the planar data: Z1 from the reference, and the rest of the forward pass."""
    from reference.activations import sigmoid
    from reference.losses import compute_cost
    from reference.model import forward_backward

    case, X, Y, P = _network((2, 4, 1), "leaky_relu", leaky_slope=0.01)
    ref = forward_backward(P, X, Y, case)
    ref["AL"] = ref[f"A{case.L}"]

    def finish(A1):
        A1 = np.asarray(A1, dtype=np.float64)
        AL = sigmoid(P["W2"] @ A1 + P["b2"])
        return AL, float(compute_cost(AL, Y))

    return case, X, Y, P, ref, finish


@_entry("leaky-relu-default-slope", "Default leaky ReLU slope: 0.01 (torch), 0.2 (tf.nn), 0.3 (Keras layer)",
        "torch, tensorflow, keras")
def _leaky_default_slope():
    torch, tf, keras = _torch(), _tf(), _keras()
    import torch.nn.functional as F

    from tf_impl.activations import activation_forward as tf_act
    from torch_impl.activations import activation_forward as torch_act

    case, X, Y, P, ref, finish = _leaky_network()
    Z1 = ref["Z1"]
    layer = keras.layers.LeakyReLU()
    keras_out = layer(Z1)
    variants = {
        "torch F.leaky_relu": (F.leaky_relu(torch.from_numpy(Z1)).numpy(), torch.nn.LeakyReLU().negative_slope),
        "tf.nn.leaky_relu": (tf.nn.leaky_relu(tf.constant(Z1)).numpy(),
                             float(-tf.nn.leaky_relu(tf.constant(-1.0, tf.float64)).numpy())),
        "keras LeakyReLU()": (np.asarray(keras_out), layer.negative_slope),
    }
    aligned = {
        "torch_impl": torch_act(torch.from_numpy(Z1), "leaky_relu", case.leaky_slope).numpy(),
        "tf_impl": tf_act(tf.constant(Z1), "leaky_relu", case.leaky_slope).numpy(),
    }
    measured = {"reference_slope": case.leaky_slope, "reference_cost": float(ref["cost"]),
                "keras_layer_output_dtype": keras_out.dtype.name,
                "tf_default_measured": float(-tf.nn.leaky_relu(tf.constant(-1.0)).numpy())}
    for name, (A1, slope) in {**variants, **{k: (v, case.leaky_slope) for k, v in aligned.items()}}.items():
        AL, cost = finish(A1)
        measured[name] = dict(slope=float(slope), A1_rel_err=normwise_rel_err(A1, ref["A1"]),
                              AL_rel_err=normwise_rel_err(AL, ref["AL"]), cost=cost)

    def line(name):
        r = measured[name]
        return (f"{name} slope {fmt(r['slope'], 4)}: A1 rel err {fmt(r['A1_rel_err'])}, AL rel err "
                f"{fmt(r['AL_rel_err'])}, cost {fmt(r['cost'], 6)}")

    return dict(
        framework_version=_version(torch, tf, keras),
        what_differs=(
            "The notes fix the leaky slope (0.01 here); the frameworks' defaults differ: torch nn.LeakyReLU / "
            "F.leaky_relu negative_slope=0.01, tf.nn.leaky_relu alpha=0.2 (the LeakyRelu op's default, "
            "tensorflow/core/ops/nn_ops.cc), Keras 3 keras.layers.LeakyReLU(negative_slope=0.3) (Keras 2: alpha=0.3; "
            "the function keras.activations.leaky_relu defaults to 0.2). The Keras layer also computes in floatx "
            f"(measured output dtype {measured['keras_layer_output_dtype']} for float64 input)."
        ),
        case=("2,4,1 network, leaky_relu hidden, sigmoid output, planar data (m = 400), inv-sqrt seed 1, float64: "
              "Z1 from the reference, A1 = each default g(Z1), then the reference's output layer; compared with the "
              f"reference at slope {case.leaky_slope}"),
        default_result="; ".join(line(n) for n in variants),
        aligned_result="; ".join(line(n) for n in aligned),
        effect=(f"cost {fmt(measured['tf.nn.leaky_relu']['cost'], 6)} (tf default) and "
                f"{fmt(measured['keras LeakyReLU()']['cost'], 6)} (Keras default) vs "
                f"{fmt(measured['reference_cost'], 6)}; torch's default "
                + ("equals" if measured["torch F.leaky_relu"]["slope"] == case.leaky_slope else "differs from")
                + f" the notes' {case.leaky_slope} (A1 rel err {fmt(measured['torch F.leaky_relu']['A1_rel_err'])})"),
        how_aligned=("The slope is explicit everywhere (Case.leaky_slope, default 0.01): torch_impl passes "
                     "negative_slope=slope, tf_impl writes tf.where(Z > 0, Z, slope * Z)."),
        verified_in=(
            "pytorch/pytorch torch/nn/modules/activation.py (LeakyReLU: \"def __init__(self, negative_slope: float "
            "= 1e-2, inplace: bool = False)\"), torch/nn/functional.py (\"negative_slope: float = 0.01\"); "
            "tensorflow/tensorflow tensorflow/core/ops/nn_ops.cc (REGISTER_OP(\"LeakyRelu\") "
            "\".Attr(\"alpha: float = 0.2\")\"), tensorflow/python/ops/nn_ops.py (\"def leaky_relu(features, "
            "alpha=0.2, name=None)\"); keras-team/keras keras/src/layers/activations/leaky_relu.py (\"def "
            "__init__(self, negative_slope=0.3, **kwargs)\"); https://keras.io/api/layers/activation_layers/leaky_relu/"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 2. weight layout


@_entry("weight-layout", "Weight layout: (out, in) in torch, (in, out) in Keras, (n[l], n[l-1]) in the notes",
        "keras, torch")
def _weight_layout():
    torch, tf, keras = _torch(), _tf(), _keras()
    from nnparity import tolerances as tol
    from reference.model import forward_backward

    case, X, Y, P = _network((2, 2, 1), "tanh")
    ref = forward_backward(P, X, Y, case)
    B = tol.bounds(P, X, Y, case, captured=ref)["A1"]
    W1, b1 = P["W1"], P["b1"]

    probe = keras.layers.Dense(2)
    probe.build((None, 3))
    shapes = {"notes W (n[l], n[l-1]) for 3 -> 2": [2, 3],
              "torch nn.Linear(3, 2).weight": list(torch.nn.Linear(3, 2).weight.shape),
              "keras Dense(2) built on 3 inputs, kernel": list(probe.kernel.shape)}

    dense = keras.layers.Dense(2, activation="tanh", dtype="float64")
    dense.build((None, 2))
    linear = torch.nn.Linear(2, 2, dtype=torch.float64)

    def keras_A1(kernel):
        dense.set_weights([kernel, b1.ravel()])
        return np.asarray(dense(X.T)).T

    def torch_A1(weight):
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            linear.bias.copy_(torch.from_numpy(b1.ravel()))
            return torch.tanh(linear(torch.from_numpy(np.ascontiguousarray(X.T)))).numpy().T

    runs = {
        "keras kernel = W1 (transpose forgotten)": keras_A1(W1),
        "keras kernel = W1.T": keras_A1(W1.T),
        "torch weight = W1.T (transposed as for Keras)": torch_A1(W1.T),
        "torch weight = W1": torch_A1(W1),
    }
    measured = {"shapes": shapes}
    for name, A1 in runs.items():
        measured[name] = dict(A1_rel_err=normwise_rel_err(A1, ref["A1"]), A1_bound_ratio=bound_ratio(A1, ref["A1"], B))

    def line(name):
        r = measured[name]
        return f"{name}: A1 rel err {fmt(r['A1_rel_err'])}, bound ratio {fmt(r['A1_bound_ratio'])}"

    wrong = measured["keras kernel = W1 (transpose forgotten)"]
    return dict(
        framework_version=_version(torch, keras, tf),
        what_differs=(
            "The notes store W[l] as (n[l], n[l-1]) and compute W A with examples as columns; torch nn.Linear.weight "
            "is (out_features, in_features) and computes x W^T with examples as rows; Keras Dense.kernel is "
            "(input_dim, units) and computes x K. Measured shapes for a 3 -> 2 layer: "
            + ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items()) + ". A square layer accepts a forgotten "
            "transpose silently."
        ),
        case=("2,2,1 tanh network on planar data (m = 400), inv-sqrt seed 1, float64: the reference's W1, b1 loaded "
              "into a float64 keras Dense(2, 'tanh') and torch nn.Linear(2, 2); A1 compared with the reference, "
              "bound ratio from nnparity.tolerances.bounds as in the harness"),
        default_result="; ".join(line(n) for n in runs if "forgotten" in n or "as for Keras" in n),
        aligned_result="; ".join(line(n) for n in ("keras kernel = W1.T", "torch weight = W1")),
        effect=(f"forgotten transpose: A1 max rel diff {fmt(wrong['A1_rel_err'])}, bound ratio "
                f"{fmt(wrong['A1_bound_ratio'])}"
                + (" (> 1): the parity comparison fails at A1, the first quantity it touches"
                   if wrong["A1_bound_ratio"] > 1 else " (not caught)")),
        how_aligned=("Equation-style implementations keep the notes' (n[l], n[l-1]) layout and W @ A_prev; anything "
                     "in another layout is converted once at load time (Keras: kernel = W.T; torch nn.Linear: "
                     "weight = W as is) and checked by the harness from A1 onward."),
        verified_in=(
            "pytorch/pytorch torch/nn/modules/linear.py (\"torch.empty((out_features, in_features), "
            "**factory_kwargs)\"); https://docs.pytorch.org/docs/stable/generated/torch.nn.Linear.html (\"weight ... "
            "of shape (out_features, in_features)\"); keras-team/keras keras/src/layers/core/dense.py "
            "(\"kernel_shape = (input_shape[-1], self.units)\")"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 3. default dtypes


@_entry("default-dtype", "Default dtypes: float32 in torch and Keras, float64 in NumPy", "torch, keras")
def _default_dtype():
    torch, tf, keras = _torch(), _tf(), _keras()
    from reference.model import forward_backward, train
    from torch_impl.model import train as torch_train

    case, X, Y, P = _network((2, 4, 1), "tanh", learning_rate=1.2, epochs=100)
    readback = {
        "numpy np.array([0.1]).dtype": str(np.array([0.1]).dtype),
        "torch.get_default_dtype()": str(torch.get_default_dtype()),
        "torch.tensor([0.1]).dtype": str(torch.tensor([0.1]).dtype),
        "torch.tensor(np.array([0.1])).dtype": str(torch.tensor(np.array([0.1])).dtype),
        "torch nn.Linear(2, 4).weight.dtype": str(torch.nn.Linear(2, 4).weight.dtype),
        "keras.config.floatx()": keras.config.floatx(),
    }
    dense = keras.layers.Dense(4, activation="tanh")
    A1_keras = dense(X.T)  # builds the layer in floatx
    readback["keras Dense(4).kernel.dtype"] = str(dense.kernel.dtype)
    readback["keras Dense(4)(float64 input).dtype"] = A1_keras.dtype.name
    dense.set_weights([P["W1"].T.astype(dense.kernel.dtype), P["b1"].ravel().astype(dense.kernel.dtype)])
    A1_keras = np.asarray(dense(X.T)).T
    ref = forward_backward(P, X, Y, case)

    default_dtype = str(torch.tensor([0.1]).dtype).removeprefix("torch.")
    _, ref_costs = train(P, X, Y, case)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 100 tiny steps: threads only add overhead (seconds on a busy machine)
    try:
        _, costs_default = torch_train(P, X, Y, case.replace(dtype=default_dtype))
        _, costs_aligned = torch_train(P, X, Y, case)
    finally:
        torch.set_num_threads(threads)

    measured = dict(readback=readback, steps=len(ref_costs), torch_default_dtype=default_dtype,
                    default_trajectory_rel_err=_max_rel_diff(costs_default, ref_costs),
                    aligned_trajectory_rel_err=_max_rel_diff(costs_aligned, ref_costs),
                    final_cost_reference=float(ref_costs[-1]), final_cost_default=float(costs_default[-1]),
                    keras_default_A1_rel_err=normwise_rel_err(A1_keras, ref["A1"]))
    return dict(
        framework_version=_version(torch, keras, tf),
        what_differs=(
            "NumPy computes in float64; torch's default dtype and Keras' floatx are float32. torch.tensor(ndarray) "
            "keeps the array's float64, but Python floats and new modules use the default: "
            + ", ".join(f"{k} -> {v}" for k, v in readback.items()) + "."
        ),
        case=(f"the notes' 2,4,1 tanh network on planar data (m = 400), learning rate 1.2, {len(ref_costs)} steps: "
              "the float64 reference vs torch_impl in the dtype torch gives Python floats by default "
              f"({default_dtype}) and in float64; and one Keras Dense(4, 'tanh') forward pass on float64 input"),
        default_result=(f"torch {default_dtype}: max relative cost difference over {len(ref_costs)} steps "
                        f"{fmt(measured['default_trajectory_rel_err'])} "
                        f"(final cost {fmt(measured['final_cost_default'], 8)}"
                        f" vs {fmt(measured['final_cost_reference'], 8)}); Keras default Dense: A1 rel err "
                        f"{fmt(measured['keras_default_A1_rel_err'])}, "
                        f"output {readback['keras Dense(4)(float64 input).dtype']}"),
        aligned_result=("torch_impl float64: max relative cost difference "
                        f"{fmt(measured['aligned_trajectory_rel_err'])}"),
        effect=(f"{fmt(measured['default_trajectory_rel_err'])} vs {fmt(measured['aligned_trajectory_rel_err'])} "
                "max relative cost difference: a float64 case run silently in float32 is off at float32 level"),
        how_aligned=("Every implementation converts once with an explicit dtype (torch.as_tensor(..., dtype=DTYPES"
                     "[case.dtype]), tf.constant(..., dtype=...)) from the case's dtype; float32 runs are judged by "
                     "their own rounding bounds, float64 runs by 1e-12 / 1e-10."),
        verified_in=(
            "pytorch/pytorch torch/__init__.py (set_default_dtype: \"When PyTorch is initialized its default "
            "floating point dtype is torch.float32\"); keras-team/keras keras/src/backend/config.py (\"_FLOATX = "
            "\"float32\"\"); https://keras.io/api/utils/config_utils/#floatx-function"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 4. reduction


@_entry("loss-reduction", "Loss reduction: mean over examples vs sum", "torch, keras")
def _loss_reduction():
    torch, tf, keras = _torch(), _tf(), _keras()
    from reference.model import forward_backward

    case, X, Y, P = _network((2, 1), "relu")  # L = 1: logistic regression
    m = X.shape[1]
    ref = forward_backward(P, X, Y, case)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    torch_dW = {}
    for reduction in ("mean", "sum"):
        W = torch.tensor(P["W1"], requires_grad=True)
        b = torch.tensor(P["b1"], requires_grad=True)
        J = torch.nn.BCELoss(reduction=reduction)(torch.sigmoid(W @ Xt + b), Yt)
        torch_dW[reduction] = torch.autograd.grad(J, W)[0].numpy()
    keras_dW = {}
    for reduction in ("sum_over_batch_size", "sum"):
        W, b = tf.Variable(P["W1"]), tf.Variable(P["b1"])
        with tf.GradientTape() as tape:
            AL = tf.math.sigmoid(W @ tf.constant(X) + b)
            J = keras.losses.BinaryCrossentropy(reduction=reduction, dtype="float64")(tf.constant(Y.T),
                                                                                      tf.transpose(AL))
        keras_dW[reduction] = tape.gradient(J, W).numpy()
    measured = dict(
        m=m,
        torch_default_reduction=torch.nn.BCELoss().reduction,
        keras_default_reduction=keras.losses.BinaryCrossentropy().reduction,
        keras_has_Reduction_enum=hasattr(keras.losses, "Reduction"),
        torch_ratio=(torch_dW["sum"] / torch_dW["mean"]).ravel().tolist(),
        keras_ratio=(keras_dW["sum"] / keras_dW["sum_over_batch_size"]).ravel().tolist(),
        torch_mean_rel_err=normwise_rel_err(torch_dW["mean"], ref["dW1"]),
        keras_mean_rel_err=normwise_rel_err(keras_dW["sum_over_batch_size"], ref["dW1"]),
    )
    return dict(
        framework_version=_version(torch, keras, tf),
        what_differs=(
            "The notes' cost is the mean over the m examples (dW = 1/m dZ A_prev^T). torch losses take "
            f"reduction='mean' (default, measured {measured['torch_default_reduction']!r}), 'sum' or 'none'; Keras 3 "
            "losses take the string reduction='sum_over_batch_size' (default, measured "
            f"{measured['keras_default_reduction']!r}), 'sum', 'mean', 'mean_with_sample_weight' or None — "
            "Keras 2's keras.losses.Reduction enum is gone (measured hasattr(keras.losses, 'Reduction') = "
            f"{measured['keras_has_Reduction_enum']}). A sum scales every gradient by m."
        ),
        case=f"logistic regression (2,1) on planar data (m = {m}), inv-sqrt seed 1, float64: dW1 of the cross-entropy "
             "with each reduction (torch nn.BCELoss, keras BinaryCrossentropy(dtype='float64'))",
        default_result=(f"torch: dW(sum) / dW(mean) = {_vec(measured['torch_ratio'], 15)}; keras: dW(sum) / "
                        f"dW(sum_over_batch_size) = {_vec(measured['keras_ratio'], 15)}"),
        aligned_result=(f"mean reduction: dW1 rel err vs the reference {fmt(measured['torch_mean_rel_err'])} (torch), "
                        f"{fmt(measured['keras_mean_rel_err'])} (keras)"),
        effect=(f"gradient ratio {fmt(max(measured['torch_ratio'] + measured['keras_ratio']), 15)} with m = {m}: "
                "a sum-reduced loss takes an m times larger step"),
        how_aligned=("The cost is the mean over the examples everywhere (reference, torch_impl, tf_impl: "
                     "-1/m sum(...)); batch size enters only through m of each mini-batch."),
        verified_in=(
            "pytorch/pytorch torch/nn/modules/loss.py (\"reduction: str = \"mean\"\"); aten/src/ATen/native/Loss.cpp "
            "(apply_loss_reduction: mean or sum); keras-team/keras keras/src/losses/loss.py (\"def __init__(self, "
            "name=None, reduction=\"sum_over_batch_size\", dtype=None)\", standardize_reduction allowed set); "
            "https://keras.io/api/losses/"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 5. optimisers and dropout

#: The optimiser entries' tiny case: J(w) = 1/2 sum(c w^2) (gradient c w), two float64 parameters.
OPT_W0 = [1.0, -2.0]
OPT_C = [1.0, 3.0]
OPT_ALPHA, OPT_BETA = 0.1, 0.9


def _course_momentum(steps, alpha=OPT_ALPHA, beta=OPT_BETA):
    """The course's momentum on the quadratic, from reference.optimizers: w after each step."""
    from reference.optimizers import update_parameters_with_momentum

    P, v, c = {"W": np.array(OPT_W0)}, {"dW": np.zeros(2)}, np.array(OPT_C)
    out = []
    for _ in range(steps):
        P, v = update_parameters_with_momentum(P, {"dW": c * P["W"]}, v, beta, alpha)
        out.append(P["W"].copy())
    return out


def _momentum_runs(runs, course):
    """The momentum-form entries' numbers for each run (w after each step) against the course's momentum: w at the
    end, the first step over the course's first step, and the relative error at each step."""
    w0 = np.array(OPT_W0)
    return {label: dict(final=out[-1].tolist(), step1_ratio=((out[0] - w0) / (course[0] - w0)).tolist(),
                        rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
            for label, out in runs.items()}


def _weight_decay_case():
    """The weight-decay entries' case: logistic regression (2,1) on planar data, inv-sqrt seed 1 with b = 0.5 (the
    course initialises b to 0), lambda = 0.7, one step of lr 0.1; and the course's gradients, dW + lambda/m W and
    db (the course regularises W only): ``X, Y, P, m, lambd, alpha, course_dW, course_db``."""
    from reference.model import forward_backward

    case, X, Y, P = _network((2, 1), "relu")  # L = 1: logistic regression
    P = dict(P, b1=np.full_like(P["b1"], 0.5))
    m, lambd, alpha = X.shape[1], 0.7, 0.1
    ref = forward_backward(P, X, Y, case)  # without L2: dW, db of the cross-entropy
    course_dW, course_db = ref["dW1"] + lambd / m * P["W1"], ref["db1"]
    return X, Y, P, m, lambd, alpha, course_dW, course_db


def _first_steps(tf, keras, torch, course_step, keras_optimizer, torch_optimizer):
    """The first update from w = 0, s = 0 (float64) for each gradient g in {1e-4, 1} and eps in {1e-8, 1e-7}: the
    course's step ``course_step(g, eps)``, Keras' (``keras_optimizer(eps)``, made and applied inside floatx float64)
    and torch's (``torch_optimizer([w], eps)``), each a positive step, and their relative differences."""
    from tf_impl.idiomatic import floatx

    cases = {}
    for g in (1e-4, 1.0):
        for eps in (1e-8, 1e-7):
            course = course_step(g, eps)
            with floatx("float64"):
                opt = keras_optimizer(eps)
                v = tf.Variable(np.array([0.0], dtype="float64"))
                opt.apply_gradients([(tf.constant(np.array([g], dtype="float64")), v)])
                keras_step = float(-v.numpy()[0])
            w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            topt = torch_optimizer([w], eps)
            w.grad = torch.tensor([g], dtype=torch.float64)
            topt.step()
            torch_step = float(-w.detach()[0])
            cases[f"g={g:g}, eps={eps:g}"] = dict(
                g=g, eps=eps, course_step=course, keras_step=keras_step, torch_step=torch_step,
                keras_rel_diff=abs(keras_step - course) / course, torch_rel_diff=abs(torch_step - course) / course)
    return cases


def _first_step_results(c, torch_call):
    """default_result (Keras' first steps against the course's) and aligned_result (torch's) of ``_first_steps``."""
    keras = "; ".join(f"{k}: Keras step {fmt(c[k]['keras_step'], 6)} vs course {fmt(c[k]['course_step'], 6)}"
                      f" (rel diff {fmt(c[k]['keras_rel_diff'])})" for k in c)
    torch = (f"{torch_call}: rel diff " + ", ".join(f"{fmt(c[k]['torch_rel_diff'])} ({k})" for k in c)
             + "; Keras cannot be aligned by its arguments")
    return keras, torch


@_entry("keras-rmsprop-epsilon", "Keras RMSprop adds epsilon inside the square root", "keras, torch")
def _keras_rmsprop_epsilon():
    tf, keras, torch = _tf(), _keras(), _torch()

    alpha, rho = 0.01, 0.9

    def course(g, eps):  # reference.optimizers on a zero s
        return alpha * g / (np.sqrt((1 - rho) * g * g) + eps)

    c = _first_steps(
        tf, keras, torch, course,
        lambda eps: keras.optimizers.RMSprop(learning_rate=alpha, rho=np.float64(rho), epsilon=np.float64(eps)),
        lambda params, eps: torch.optim.RMSprop(params, lr=alpha, alpha=rho, eps=eps))
    measured = dict(alpha=alpha, rho=rho, cases=c)
    default_result, aligned_result = _first_step_results(c, "torch.optim.RMSprop(lr, alpha=beta2, eps)")
    small = [k for k in c if k.startswith("g=0.0001")]
    return dict(
        framework_version=_version(keras, tf, torch),
        what_differs=(
            "The course: W -= alpha dW / (sqrt(s) + eps). Keras RMSprop: w -= lr g / sqrt(velocity + epsilon) "
            "(keras/src/optimizers/rmsprop.py, epsilon inside the sqrt). For |g| well above sqrt(eps) the two "
            "agree; for small gradients eps dominates. torch.optim.RMSprop writes sqrt(s) + eps, the course's form."
        ),
        case=(f"first update from w = 0, s = 0, alpha = {alpha}, rho = beta2 = {rho}, float64 (floatx float64, "
              "np.float64 hyper-parameters), g in {1e-4, 1} and eps in {1e-8, 1e-7}; the course's step "
              "alpha g / (sqrt((1 - beta2) g^2) + eps)"),
        default_result=default_result,
        aligned_result=aligned_result,
        effect=(f"g = 1e-4: Keras' first step is off by {fmt(c[small[0]]['keras_rel_diff'])} (eps 1e-8) and "
                f"{fmt(c[small[1]]['keras_rel_diff'])} (eps 1e-7) relative; g = 1: "
                f"{fmt(c['g=1, eps=1e-08']['keras_rel_diff'])}"),
        how_aligned=("Not alignable through RMSprop's arguments: the idiomatic Keras runs use RMSprop(rho=beta2, "
                     "epsilon=eps) and are compared as a documented difference; tf_impl (equation style) writes the "
                     "course's sqrt(s) + eps; torch's RMSprop matches the course."),
        verified_in=(
            "installed keras/src/optimizers/rmsprop.py (update_step: \"denominator = ops.add(velocity, "
            "self.epsilon)\" ... \"ops.divide(ops.multiply(lr, gradient), ops.sqrt(denominator))\"); "
            "torch/optim/rmsprop.py (_single_tensor_rmsprop: \"avg = square_avg.sqrt()\" ... \"avg = "
            "avg.add_(eps)\"); https://keras.io/api/optimizers/rmsprop/"
        ),
        measured=measured,
    )


@_entry("keras-adam-epsilon", "Keras Adam adds epsilon to the uncorrected sqrt(v)", "keras, torch")
def _keras_adam_epsilon():
    tf, keras, torch = _tf(), _keras(), _torch()

    alpha, b1, b2 = 0.01, 0.9, 0.999

    def course(g, eps):
        v, s = (1 - b1) * g, (1 - b2) * g * g
        return alpha * (v / (1 - b1)) / (np.sqrt(s / (1 - b2)) + eps)

    c = _first_steps(
        tf, keras, torch, course,
        lambda eps: keras.optimizers.Adam(learning_rate=alpha, beta_1=np.float64(b1), beta_2=np.float64(b2),
                                          epsilon=np.float64(eps)),
        lambda params, eps: torch.optim.Adam(params, lr=alpha, betas=(b1, b2), eps=eps))
    measured = dict(alpha=alpha, beta1=b1, beta2=b2, cases=c)
    default_result, aligned_result = _first_step_results(c, "torch.optim.Adam(lr, betas, eps)")
    return dict(
        framework_version=_version(keras, tf, torch),
        what_differs=(
            "The course: W -= alpha v_hat / (sqrt(s_hat) + eps), eps added to the corrected sqrt. Keras Adam: "
            "alpha_t = lr sqrt(1 - beta2^t) / (1 - beta1^t); w -= alpha_t m / (sqrt(v) + epsilon), eps added to "
            "the uncorrected sqrt(v), i.e. the course with eps / sqrt(1 - beta2^t) (31.6 eps at t = 1 for beta2 = "
            "0.999). torch.optim.Adam adds eps to sqrt(v) / sqrt(1 - beta2^t), the course's place."
        ),
        case=(f"first update from w = 0, alpha = {alpha}, beta1 = {b1}, beta2 = {b2}, float64 (floatx float64, "
              "np.float64 hyper-parameters), g in {1e-4, 1}, eps in {1e-8, 1e-7}; the course's step "
              "alpha g / (|g| + eps)"),
        default_result=default_result,
        aligned_result=aligned_result,
        effect=(f"g = 1e-4: {fmt(c['g=0.0001, eps=1e-08']['keras_rel_diff'])} (eps 1e-8), "
                f"{fmt(c['g=0.0001, eps=1e-07']['keras_rel_diff'])} (eps 1e-7) relative on the first step; g = 1: "
                f"{fmt(c['g=1, eps=1e-08']['keras_rel_diff'])}"),
        how_aligned=("Not alignable exactly through Adam's arguments (an eps scaled by sqrt(1 - beta2^t) would "
                     "change every step): the idiomatic Keras runs use Adam(beta_1, beta_2, epsilon) and are compared "
                     "as a documented difference; tf_impl and torch's Adam match the course."),
        verified_in=(
            "installed keras/src/optimizers/adam.py (update_step: \"alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - "
            "beta_1_power)\" ... \"ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon))\"); "
            "torch/optim/adam.py (_single_tensor_adam: \"denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt)"
            ".add_(eps)\"); https://keras.io/api/optimizers/adam/"
        ),
        measured=measured,
    )


@_entry("framework-dropout-masks", "Framework dropout draws its own masks (torch nn.Dropout, keras Dropout)",
        "torch, keras")
def _framework_dropout_masks():
    torch, tf, keras = _torch(), _tf(), _keras()
    from torch_impl.idiomatic import DropoutMask

    keep_prob, n, m, seed = 0.8, 5, 400, 3
    D_ref = np.random.RandomState(seed).rand(n, m) < keep_prob  # the reference's mask (reference.utils.dropout_masks)
    A = np.ones((m, n))  # examples as rows
    torch.manual_seed(seed)
    drop = torch.nn.Dropout(p=1 - keep_prob)
    drop.train()
    out_torch = drop(torch.from_numpy(A)).numpy()
    drop.eval()
    eval_torch = drop(torch.from_numpy(A)).numpy()
    layer = keras.layers.Dropout(rate=1 - keep_prob, seed=seed, dtype="float64")
    out_keras = np.asarray(layer(A, training=True))
    eval_keras = np.asarray(layer(A, training=False))
    aligned = DropoutMask(keep_prob)
    aligned.D = torch.from_numpy(D_ref.T.copy())
    out_aligned = aligned(torch.from_numpy(A)).detach().numpy()

    def stats(out):
        kept = out != 0
        return dict(kept_fraction=float(kept.mean()), kept_values=sorted(set(np.unique(out[kept]).tolist())),
                    mask_mismatch_fraction=float((kept != D_ref.T).mean()))

    measured = dict(keep_prob=keep_prob, shape=[m, n], reference_kept_fraction=float(D_ref.mean()),
                    inverse_keep_prob=1 / keep_prob, torch=stats(out_torch), keras=stats(out_keras),
                    aligned=stats(out_aligned),
                    torch_eval_identity=bool(np.array_equal(eval_torch, A)),
                    keras_eval_identity=bool(np.array_equal(eval_keras, A)))
    t, k, a = measured["torch"], measured["keras"], measured["aligned"]

    def line(name, r):
        return (f"{name}: kept {fmt(r['kept_fraction'], 4)}, kept values {_vec(r['kept_values'], 17)}, mask differs "
                f"from the reference's at {fmt(r['mask_mismatch_fraction'], 3)} of positions")

    return dict(
        framework_version=_version(torch, keras, tf),
        what_differs=(
            "The course's inverted dropout: D = rand(n, m) < keep_prob from the notes' RandomState, A * D / "
            "keep_prob. torch nn.Dropout(p=1 - keep_prob) and keras.layers.Dropout(rate=1 - keep_prob) implement "
            "the same inverted dropout (scale 1/(1 - p)) in training mode and the identity in eval / inference, but "
            "draw their masks from their own generators (torch's Bernoulli, Keras' stateless_dropout with a "
            "SeedGenerator): the masks cannot equal the reference's."
        ),
        case=(f"A = ones({m}, {n}) (rows = examples), keep_prob = {keep_prob}; torch.manual_seed({seed}), keras "
              f"Dropout(seed={seed}, dtype='float64'), float64; the reference's mask RandomState({seed}).rand({n}, "
              f"{m}) < keep_prob (kept {fmt(measured['reference_kept_fraction'], 4)})"),
        default_result=(line("torch nn.Dropout", t) + "; " + line("keras Dropout", k)
                        + f"; eval / training=False identity: torch {measured['torch_eval_identity']}, keras "
                        f"{measured['keras_eval_identity']}"),
        aligned_result=line("torch_impl DropoutMask with the reference's D.T", a),
        effect=(f"same kept fraction (~{keep_prob}) and scale 1/keep_prob = {fmt(1 / keep_prob, 6)}, but the masks "
                f"differ at {fmt(t['mask_mismatch_fraction'], 3)} (torch) and {fmt(k['mask_mismatch_fraction'], 3)} "
                f"(keras) of positions (independent masks: 2 p (1 - p) = {fmt(2 * keep_prob * (1 - keep_prob), 3)}); "
                "with the reference's masks 0"),
        how_aligned=("The idiomatic models replace the framework's dropout by DropoutMask (torch_impl/idiomatic.py, "
                     "tf_impl/idiomatic.py), A * D / keep_prob with the reference's D[l].T set (torch) or fed as a "
                     "model input (Keras) every step; the identity without a mask or in eval mode."),
        verified_in=(
            "installed torch/nn/modules/dropout.py (Dropout.forward: \"F.dropout(input, self.p, self.training, "
            "self.inplace)\"; docstring: \"the outputs are scaled by a factor of :math:`\\frac{1}{1-p}`\"); "
            "keras/src/layers/regularization/dropout.py (call: \"if training and self.rate > 0: return "
            "backend.random.dropout(...)\"), keras/src/backend/tensorflow/random.py (dropout: "
            "\"tf.nn.experimental.stateless_dropout(inputs, rate=rate, noise_shape=noise_shape, seed=seed)\")"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 6. convolutional networks


def _jax_flax():
    """jax with ``jax_impl`` imported (float64 is float64: ``jax_enable_x64``), and flax with ``flax.linen``."""
    jax = _import("jax")
    _import("jax_impl")
    flax = _import("flax")
    _import("flax.linen")
    return jax, flax


def _conv_inputs(**case_args):
    """A ``ConvCase`` (``nnparity.convspec``) and its seeded inputs: A_prev (NHWC), W (HWIO), b, dA; float64."""
    from nnparity.convspec import ConvCase, inputs

    case = ConvCase(**case_args)
    return case, inputs(case)


def _max_abs(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)))


#: The ``conv-same-padding`` cases: (f, stride) on an 8 x 8 image, the total padding odd in both.
SAME_CASES = {"f=4, stride 1": (4, 1), "f=3, stride 2": (3, 2)}
SAME_N = 8


def _same_pads(out, n, f, stride):
    """(top, bottom) and (left, right) zeros a 'same' conv put around an n x n image, read from its output on
    x = arange(1, n n + 1) with the kernel 1 at its top-left tap: the last output cell reads x[i, j], so
    top = (n_out - 1) stride - i, and bottom = the total (n_out - 1) stride + f - n less the top."""
    out = np.asarray(out, np.float64)[0, :, :, 0]
    n_out = out.shape[0]
    v = int(round(out[-1, -1])) - 1
    total = (n_out - 1) * stride + f - n
    top, left = (n_out - 1) * stride - v // n, (n_out - 1) * stride - v % n
    return [top, total - top], [left, total - left]


@_entry("conv-same-padding",
        "'same' padding puts the odd extra zero row and column at the end (bottom, right), not symmetrically",
        "tensorflow, keras, torch, jax")
def _conv_same_padding():
    tf, keras, torch = _tf(), _keras(), _torch()
    jax, _ = _jax_flax()
    import warnings

    import torch.nn.functional as F

    from reference.conv import conv_forward

    def tf_conv(x, k, s):
        return tf.nn.conv2d(x, k, s, "SAME").numpy()

    def keras_conv(x, k, s):
        layer = keras.layers.Conv2D(k.shape[-1], k.shape[0], strides=s, padding="same", use_bias=False,
                                    dtype="float64")
        layer.build(x.shape)
        layer.set_weights([k])
        return np.asarray(layer(x))

    def torch_conv(x, k, s):
        with warnings.catch_warnings():  # an even kernel: "may require a zero-padded copy of the input"
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")
            out = F.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                           torch.from_numpy(k.transpose(3, 2, 0, 1).copy()), stride=s, padding="same")
        return out.numpy().transpose(0, 2, 3, 1)

    def jax_conv(x, k, s):
        return np.asarray(jax.lax.conv_general_dilated(x, k, (s, s), "SAME",
                                                       dimension_numbers=("NHWC", "HWIO", "NHWC")))

    convs = {"tf.nn.conv2d 'SAME'": tf_conv, "keras Conv2D padding='same'": keras_conv,
             "torch F.conv2d padding='same'": torch_conv, "jax.lax.conv_general_dilated 'SAME'": jax_conv}
    x = np.arange(1.0, SAME_N * SAME_N + 1).reshape(1, SAME_N, SAME_N, 1)
    measured = {"n": SAME_N, "placement": {}, "cases": {}}
    for label, (f, s) in SAME_CASES.items():
        k = np.zeros((f, f, 1, 1))
        k[0, 0, 0, 0] = 1.0
        placement = {}
        for name, conv in convs.items():
            try:
                rows, cols = _same_pads(conv(x, k, s), SAME_N, f, s)
                placement[name] = dict(rows=rows, cols=cols)
            except Exception as exc:  # torch refuses 'same' with a stride
                placement[name] = dict(error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        measured["placement"][label] = placement

        case, inp = _conv_inputs(n_H_prev=SAME_N, n_W_prev=SAME_N, f=f, stride=s, pad=1)
        A_prev, W, b = inp["A_prev"], inp["W"], inp["b"]
        outs = {name: conv(A_prev, W, s) + b for name, conv in convs.items()
                if "error" not in placement[name]}
        tf_out = outs["tf.nn.conv2d 'SAME'"]
        (top, bottom), (left, right) = placement["tf.nn.conv2d 'SAME'"].values()
        explicit = np.pad(A_prev, ((0, 0), (top, bottom), (left, right), (0, 0)))
        aligned, _ = conv_forward(explicit, W, b, {"stride": s, "pad": 0})
        symmetric = {}
        for pad in sorted({(f - 1) // 2, f // 2}):  # the course's symmetric pads around the 'same' total
            Z, _ = conv_forward(A_prev, W, b, {"stride": s, "pad": pad})
            k_common = min(Z.shape[1], tf_out.shape[1])
            symmetric[f"pad={pad}"] = dict(
                shape=list(Z.shape), common_block=k_common,
                tf_max_abs_diff=_max_abs(tf_out[:, :k_common, :k_common], Z[:, :k_common, :k_common]))
        measured["cases"][label] = dict(
            f=f, stride=s, A_prev_shape=list(A_prev.shape), same_shape=list(tf_out.shape),
            max_abs_Z=float(np.abs(aligned).max()), symmetric=symmetric,
            aligned_max_abs_diff={name: _max_abs(out, aligned) for name, out in outs.items()})

    p4, p3 = measured["placement"]["f=4, stride 1"], measured["placement"]["f=3, stride 2"]
    c4, c3 = measured["cases"]["f=4, stride 1"], measured["cases"]["f=3, stride 2"]

    def pads(p):
        return f"rows {tuple(p['rows'])}, cols {tuple(p['cols'])}" if "rows" in p else p["error"]

    return dict(
        framework_version=_version(tf, keras, torch, jax),
        what_differs=(
            "The course pads symmetrically (zero_pad(X, pad): pad zeros on each side). 'same' padding (TF, Keras, "
            "JAX 'SAME', torch padding='same') pads a total of max((n_out - 1) stride + f - n, 0) with n_out = "
            "ceil(n / stride), and when that total is odd (an even f, or a stride > 1 on some sizes) puts the "
            "extra zero row and column at the end, (total // 2, total - total // 2); no symmetric pad reproduces "
            "it. torch's padding='same' does the same at stride 1 and refuses a stride."
        ),
        case=(f"placement: x = arange(1, {SAME_N * SAME_N + 1}) as an {SAME_N}x{SAME_N}x1 image, a kernel 1 at its "
              "top-left tap, the pads read back from the output; difference: ConvCase(8x8x3 -> 4 channels, m = 2, "
              "seed 1, float64) A_prev, W, b, each 'same' conv + b against reference.conv.conv_forward"),
        default_result=(
            "f = 4, stride 1 (total 3): " + "; ".join(f"{n}: {pads(p)}" for n, p in p4.items())
            + ". f = 3, stride 2 (total 1): " + "; ".join(f"{n}: {pads(p)}" for n, p in p3.items())
            + ". Against the course's symmetric pads (common top-left block): "
            + "; ".join(f"{label} {pad} (Z {tuple(r['shape'][1:3])}): max |diff| {fmt(r['tf_max_abs_diff'])}"
                        for label, c in measured["cases"].items() for pad, r in c["symmetric"].items())
        ),
        aligned_result=("the course's conv_forward with pad = 0 on np.pad(A_prev, the measured (top, bottom), "
                        "(left, right)): max |diff| " + "; ".join(
                            f"{label}: " + ", ".join(f"{n} {fmt(d)}" for n, d in c["aligned_max_abs_diff"].items())
                            for label, c in measured["cases"].items())),
        effect=(f"f = 4: 'same' gives Z {tuple(c4['same_shape'][1:3])}, the course's pad 1 "
                f"{tuple(c4['symmetric']['pad=1']['shape'][1:3])} (the same windows, plus the extra bottom row and "
                f"right column) and pad 2 {tuple(c4['symmetric']['pad=2']['shape'][1:3])} (windows one cell "
                f"shifted: max |diff| {fmt(c4['symmetric']['pad=2']['tf_max_abs_diff'])}); f = 3, stride 2: the "
                f"same shape as the course's pad 1 and max |diff| {fmt(c3['symmetric']['pad=1']['tf_max_abs_diff'])} "
                f"(max |Z| {fmt(c3['max_abs_Z'])})"),
        how_aligned=("Pad explicitly and convolve 'valid': the course's zero_pad for a symmetric pad, or the "
                     "measured (before, after) pads with np.pad / tf.pad / F.pad / jnp.pad for a 'same' layer; the "
                     "conv cases (nnparity.convspec) use the course's symmetric pad everywhere."),
        verified_in=(
            "tensorflow/tensorflow tensorflow/core/framework/kernel_shape_util.cc (SAME: \"For odd values of total "
            "padding, add more padding at the 'right' side of the given dimension.\" \"*padding_before = "
            "padding_needed / 2;\"); installed torch/nn/modules/conv.py (_ConvNd: \"padding='same' is not supported "
            "for strided convolutions\", \"total_padding = d * (k - 1)\", \"left_pad = total_padding // 2\"); "
            "https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding_2; "
            "https://docs.pytorch.org/docs/stable/generated/torch.nn.Conv2d.html"
        ),
        measured=measured,
    )


#: The ``avg-pool-padding`` case: a 3 x 3 window, stride 1, one zero on each side (a 'same' pool).
AVG_POOL = dict(f=3, stride=1, pad=1)


@_entry("avg-pool-padding", "Average pooling over padding: torch and flax count the padded zeros, TF and Keras do not",
        "torch, tensorflow, keras, jax, flax")
def _avg_pool_padding():
    torch, tf, keras = _torch(), _tf(), _keras()
    jax, flax = _jax_flax()
    import inspect

    import jax.numpy as jnp
    import torch.nn.functional as F
    from flax import linen as nn

    from reference.conv import pool_forward, zero_pad

    f, s, p = AVG_POOL["f"], AVG_POOL["stride"], AVG_POOL["pad"]
    _, inp = _conv_inputs()
    A = inp["A_prev"]  # (2, 7, 7, 3), N(0, 1)

    def nchw(fn, **kw):
        return fn(torch.from_numpy(A.transpose(0, 3, 1, 2).copy()), f, s, p, **kw).numpy().transpose(0, 2, 3, 1)

    keras_layer = keras.layers.AveragePooling2D(f, s, padding="same", dtype="float64")
    outs = {
        "torch F.avg_pool2d(padding=1)": nchw(F.avg_pool2d),
        "flax nn.avg_pool(padding='SAME')": np.asarray(nn.avg_pool(jnp.asarray(A), (f, f), (s, s), "SAME")),
        "tf.nn.avg_pool2d('SAME')": tf.nn.avg_pool2d(A, f, s, "SAME").numpy(),
        "keras AveragePooling2D(padding='same')": np.asarray(keras_layer(A)),
    }
    aligned = {
        "torch F.avg_pool2d(padding=1, count_include_pad=False)": nchw(F.avg_pool2d, count_include_pad=False),
        "flax nn.avg_pool('SAME', count_include_pad=False)": np.asarray(
            nn.avg_pool(jnp.asarray(A), (f, f), (s, s), "SAME", count_include_pad=False)),
    }
    course_padded, _ = pool_forward(zero_pad(A, p), {"f": f, "stride": s}, "average")  # zeros counted
    corner = A[0, :2, :2, 0]  # the real cells of the corner window (0, 0) of example 0, channel 0
    interior = (slice(None), slice(1, -1), slice(1, -1), slice(None))
    tf_out = outs["tf.nn.avg_pool2d('SAME')"]
    measured = dict(
        f=f, stride=s, pad=p, shape=list(A.shape),
        corner_real_cells=corner.ravel().tolist(), corner_sum_over_9=float(corner.sum() / (f * f)),
        corner_mean_of_real=float(corner.mean()), course_zero_pad_then_pool_corner=float(course_padded[0, 0, 0, 0]),
        defaults={name: dict(corner=float(out[0, 0, 0, 0]), max_abs_diff_vs_tf=_max_abs(out, tf_out),
                             interior_max_abs_diff_vs_tf=_max_abs(out[interior], tf_out[interior]),
                             max_abs_diff_vs_course_zero_pad=_max_abs(out, course_padded))
                  for name, out in outs.items()},
        aligned={name: dict(corner=float(out[0, 0, 0, 0]), max_abs_diff_vs_tf=_max_abs(out, tf_out))
                 for name, out in aligned.items()},
        count_include_pad_defaults={
            "torch F.avg_pool2d": inspect.signature(torch.nn.AvgPool2d).parameters["count_include_pad"].default,
            "flax nn.avg_pool": inspect.signature(nn.avg_pool).parameters["count_include_pad"].default},
    )
    d = measured["defaults"]
    torch_d, flax_d = d["torch F.avg_pool2d(padding=1)"], d["flax nn.avg_pool(padding='SAME')"]
    return dict(
        framework_version=_version(torch, tf, keras, jax, flax),
        what_differs=(
            "The course pools without padding. Where a pool is padded, the mean at a border window divides "
            "differently: torch F.avg_pool2d / nn.AvgPool2d (count_include_pad=True by default) and flax "
            "nn.avg_pool (count_include_pad=True by default) divide by f f, the padded zeros counted, as the "
            "course's zero_pad then pool_forward(mode='average') would; tf.nn.avg_pool2d 'SAME' and Keras "
            "AveragePooling2D(padding='same') divide by the number of real cells in the window (no option)."
        ),
        case=(f"ConvCase() A_prev (2, 7, 7, 3) N(0, 1) seed 2, float64; {f}x{f} average pool, stride {s}, "
              f"{p} zero on each side (torch padding={p}, 'SAME' elsewhere: the same pads); the corner window "
              "of example 0, channel 0 holds 4 real cells and 5 padded"),
        default_result=("corner: " + "; ".join(f"{n} {fmt(r['corner'], 6)}" for n, r in d.items())
                        + f" (real cells' sum / 9 = {fmt(measured['corner_sum_over_9'], 6)}, their mean "
                        f"{fmt(measured['corner_mean_of_real'], 6)}; the course's zero_pad + pool_forward "
                        f"{fmt(measured['course_zero_pad_then_pool_corner'], 6)}); max |diff| vs tf.nn.avg_pool2d "
                        "over the output: " + ", ".join(f"{n} {fmt(r['max_abs_diff_vs_tf'])}" for n, r in d.items())),
        aligned_result=("count_include_pad=False: " + "; ".join(
            f"{n}: corner {fmt(r['corner'], 6)}, max |diff| vs TF {fmt(r['max_abs_diff_vs_tf'])}"
            for n, r in measured["aligned"].items())
            + "; or, the other way, torch's and flax's defaults equal the course's zero_pad + pool_forward (max "
            f"|diff| {fmt(torch_d['max_abs_diff_vs_course_zero_pad'])}, "
            f"{fmt(flax_d['max_abs_diff_vs_course_zero_pad'])})"),
        effect=(f"border windows differ by up to {fmt(torch_d['max_abs_diff_vs_tf'])} between torch/flax and "
                f"TF/Keras (interior windows {fmt(torch_d['interior_max_abs_diff_vs_tf'])}); a corner mean is "
                f"scaled by 4/9"),
        how_aligned=("The conv cases pool without padding, as the course does, so no convention enters them; a "
                     "padded average pool is compared with torch's and flax's count_include_pad=False against TF / "
                     "Keras, or with zero_pad + pool_forward against torch's and flax's defaults."),
        verified_in=(
            "installed torch/nn/modules/pooling.py (AvgPool2d: \"count_include_pad: bool = True\"); "
            "flax/linen/pooling.py (\"def avg_pool(inputs, window_shape, strides=None, padding='VALID', "
            "count_include_pad=True)\"); "
            "https://www.tensorflow.org/api_docs/python/tf/nn/avg_pool2d; "
            "https://keras.io/api/layers/pooling_layers/average_pooling2d/"
        ),
        measured=measured,
    )


#: The ``maxpool-tied-gradient`` windows: a ReLU'd window of zeros and a three-way tie at 0.5, 2 x 2, stride 2.
TIED_X = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.1, 0.5]]
TIED_DA = [1.0, 2.0]


@_entry("maxpool-tied-gradient",
        "Max-pool backward with tied maxima: every framework sends dA to one cell, the course to every tied cell",
        "torch, tensorflow, jax, flax")
def _maxpool_tied_gradient():
    torch, tf = _torch(), _tf()
    jax, flax = _jax_flax()
    import jax.numpy as jnp
    import torch.nn.functional as F
    from flax import linen as nn

    from reference.conv import pool_backward, pool_forward

    f = 2

    def torch_grad(x, dA):
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
        F.max_pool2d(xt, f, f).backward(torch.from_numpy(dA.transpose(0, 3, 1, 2).copy()))
        return xt.grad.numpy().transpose(0, 2, 3, 1)

    def tf_grad(x, dA):
        xv = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xv)
            out = tf.nn.max_pool2d(xv, f, f, "VALID")
        return tape.gradient(out, xv, output_gradients=tf.constant(dA)).numpy()

    def jax_vjp(fn):
        def grad(x, dA):
            _, vjp = jax.vjp(fn, jnp.asarray(x))
            return np.asarray(vjp(jnp.asarray(dA))[0])
        return grad

    def lax_max(a):
        return jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, f, f, 1), (1, f, f, 1), "VALID")

    grads = {"torch F.max_pool2d (autograd)": torch_grad, "tf.nn.max_pool2d (GradientTape)": tf_grad,
             "jax.lax.reduce_window max (jax.vjp)": jax_vjp(lax_max),
             "flax nn.max_pool (jax.vjp)": jax_vjp(lambda a: nn.max_pool(a, (f, f), (f, f)))}

    def up(a, repeat):  # each window's value over its f x f cells (non-overlapping windows)
        return repeat(repeat(a, f, 1), f, 2)

    def course_mask_torch(x, dA):
        xt, dt = torch.from_numpy(x), torch.from_numpy(dA)
        out = F.max_pool2d(xt.permute(0, 3, 1, 2), f, f).permute(0, 2, 3, 1)
        return ((xt == up(out, torch.repeat_interleave)) * up(dt, torch.repeat_interleave)).numpy()

    def course_mask_tf(x, dA):
        out = tf.nn.max_pool2d(x, f, f, "VALID")
        return (tf.cast(x == up(out, tf.repeat), x.dtype) * up(dA, tf.repeat)).numpy()

    def course_mask_jax(x, dA):
        x, dA = jnp.asarray(x), jnp.asarray(dA)
        return np.asarray((x == up(lax_max(x), jnp.repeat)) * up(dA, jnp.repeat))

    aligned_fns = {"torch": course_mask_torch, "tensorflow": course_mask_tf, "jax": course_mask_jax}

    def course(x, dA):
        _, cache = pool_forward(x, {"f": f, "stride": f}, "max")
        return pool_backward(dA, cache, "max")

    # the two windows written out
    x = np.array(TIED_X).reshape(1, 2, 4, 1)
    dA = np.array(TIED_DA).reshape(1, 1, 2, 1)
    ref = course(x, dA)
    measured = dict(x=TIED_X, dA=TIED_DA, course=dict(dA_prev=ref[0, :, :, 0].tolist(),
                                                      zero_window_sum=float(ref[0, :, :2, 0].sum()),
                                                      tie_window_sum=float(ref[0, :, 2:, 0].sum())))
    for name, grad in grads.items():
        g = grad(x, dA)[0, :, :, 0]
        measured[name] = dict(dA_prev=g.tolist(), zero_window_sum=float(g[:, :2].sum()),
                              zero_window_cells=int(np.count_nonzero(g[:, :2])),
                              tie_window_sum=float(g[:, 2:].sum()), tie_window_cells=int(np.count_nonzero(g[:, 2:])))

    # a ReLU'd conv-sized input: many all-zero windows
    case, inp = _conv_inputs(n_H_prev=8, n_W_prev=8)
    X = np.maximum(inp["A_prev"], 0.0)  # (2, 8, 8, 3)
    dX = np.random.RandomState(case.seed).randn(2, 4, 4, 3)
    windows = X.reshape(2, 4, f, 4, f, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 4, 4, 3, f * f)
    ties = (windows == windows.max(axis=-1, keepdims=True)).sum(axis=-1) > 1
    ref = course(X, dX)
    relu = dict(shape=list(X.shape), windows=int(ties.size), tied_windows=int(ties.sum()),
                all_zero_windows=int((windows.max(axis=-1) == 0).sum()),
                course_total=float(ref.sum()), course_nonzero_cells=int(np.count_nonzero(ref)))
    for name, grad in grads.items():
        g = grad(X, dX)
        relu[name] = dict(max_abs_diff=_max_abs(g, ref), total=float(g.sum()),
                          nonzero_cells=int(np.count_nonzero(g)))
    relu["aligned"] = {name: _max_abs(fn(X, dX), ref) for name, fn in aligned_fns.items()}
    measured["relu_case"] = relu

    def where(name):
        r = measured[name]
        return (f"{name}: zero window {r['zero_window_cells']} cell(s) get {fmt(r['zero_window_sum'])}, tie window "
                f"{r['tie_window_cells']} cell(s) get {fmt(r['tie_window_sum'])}, dA_prev {r['dA_prev']}")

    c = measured["course"]
    return dict(
        framework_version=_version(torch, tf, jax, flax),
        what_differs=(
            "The course's max-pool backward (create_mask_from_window: mask = x == max(x)) gives dA to every cell "
            "tied at the window's maximum, so a window of f f zeros after a ReLU passes f f dA back. torch "
            "(max_pool2d's saved indices), TensorFlow (MaxPoolGrad) and JAX (select_and_scatter_add with select ge, "
            "also under flax nn.max_pool) route dA to one cell only, the first maximum in row-major order here "
            "(measured on CPU): the gradient is a subgradient either way, but not the course's."
        ),
        case=(f"two 2x2 windows (stride 2) x = {TIED_X}, dA = {TIED_DA}: an all-zero window and a three-way tie "
              "at 0.5; then ReLU(ConvCase 8x8x3 A_prev, m = 2, seed 2) max-pooled 2x2 stride 2 with dA ~ N(0, 1) "
              "(seed 1), float64; against reference.conv.pool_backward"),
        default_result=(f"course: dA_prev {c['dA_prev']} (zero window total {fmt(c['zero_window_sum'])} = 4 dA, tie "
                        f"window {fmt(c['tie_window_sum'])} = 3 dA); " + "; ".join(where(n) for n in grads)),
        aligned_result=("the course's mask written with each framework's ops ((x == the window max repeated "
                        "over its cells) * dA repeated): max |diff| vs pool_backward on the ReLU case "
                        + ", ".join(f"{n} {fmt(v)}" for n, v in relu["aligned"].items())),
        effect=(f"ReLU case: {relu['tied_windows']} of {relu['windows']} windows tied ({relu['all_zero_windows']} all "
                f"zero); dA_prev max |diff| " + ", ".join(f"{fmt(relu[n]['max_abs_diff'])} ({n.split()[0]})"
                                                        for n in grads)
                + f"; cells receiving a gradient {relu['course_nonzero_cells']} (course) vs "
                f"{relu['torch F.max_pool2d (autograd)']['nonzero_cells']} (torch)"),
        how_aligned=("No framework has an option for it: the conv implementations write the course's "
                     "pool_backward (the mask x == window max) with their own ops instead of differentiating the "
                     "framework's max pool; a harness comparing autograd against the course must expect the "
                     "difference wherever a window ties (ReLU zeros, the digits' blank borders)."),
        verified_in=(
            "pytorch/pytorch aten/src/ATen/native/cpu/MaxPoolKernel.cpp (\"if ((val > maxval) || std::isnan(val))\": "
            "the first maximum's index); tensorflow/tensorflow tensorflow/core/kernels/maxpooling_op.cc "
            "(MaxPoolingGradOp); installed jax/_src/lax/windowed_reductions.py (_reduce_window_chooser_jvp_rule: "
            "\"select_prim = lax.ge_p if prim is lax.max_p else lax.le_p\", _select_and_gather_add; the gradient's "
            "jaxpr is select_and_scatter_add[select_prim=ge])"
        ),
        measured=measured,
    )


@_entry("flatten-order", "Flatten before a Dense layer: NHWC order (course, Keras, flax) vs NCHW (torch)",
        "torch, keras")
def _flatten_order():
    torch, tf, keras = _torch(), _tf(), _keras()

    _, inp = _conv_inputs()
    A = inp["A_prev"][:, :3, :3, :]  # (2, 3, 3, 3): conv features, NHWC
    m, n_H, n_W, n_C = A.shape
    n_out = 2
    W = np.random.RandomState(5).randn(n_out, n_H * n_W * n_C) / np.sqrt(n_H * n_W * n_C)  # on the NHWC flatten
    b = np.random.RandomState(6).randn(n_out)
    course = A.reshape(m, -1) @ W.T + b  # the course: A.reshape(m, -1), then the dense layer

    flat = keras.layers.Flatten(dtype="float64")
    dense = keras.layers.Dense(n_out, dtype="float64")
    dense.build((None, n_H * n_W * n_C))
    dense.set_weights([W.T, b])
    keras_out = np.asarray(dense(flat(A)))

    # position k of torch's (C, H, W) flatten holds the NHWC flatten's perm[k]
    perm = np.arange(n_H * n_W * n_C).reshape(n_H, n_W, n_C).transpose(2, 0, 1).ravel()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_H * n_W * n_C, n_out, dtype=torch.float64))
    x_nchw = torch.from_numpy(A.transpose(0, 3, 1, 2).copy())

    def torch_out(weight):
        with torch.no_grad():
            model[1].weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            model[1].bias.copy_(torch.from_numpy(b))
            return model(x_nchw).numpy()

    naive, permuted = torch_out(W), torch_out(W[:, perm])
    measured = dict(
        features_shape_nhwc=list(A.shape), dense_units=n_out, perm_first=perm[:12].tolist(),
        flatten_matches={"keras Flatten = A.reshape(m, -1)": bool(np.array_equal(np.asarray(flat(A)),
                                                                                 A.reshape(m, -1))),
                         "torch nn.Flatten(NCHW) = A_nhwc.reshape(m, -1)[:, perm]": bool(np.array_equal(
                             torch.nn.Flatten()(x_nchw).numpy(), A.reshape(m, -1)[:, perm]))},
        max_abs_out=float(np.abs(course).max()),
        keras_max_abs_diff=_max_abs(keras_out, course), torch_naive_max_abs_diff=_max_abs(naive, course),
        torch_permuted_max_abs_diff=_max_abs(permuted, course))
    return dict(
        framework_version=_version(torch, keras, tf),
        what_differs=(
            "The course flattens NHWC conv features with A.reshape(m, -1) (index (h, w, c), channels fastest), as "
            "Keras Flatten and a flax x.reshape(m, -1) do; torch's conv features are NCHW and nn.Flatten gives "
            "(c, h, w) order. Dense weights copied between the two must have their input columns permuted: "
            "torch weight = W[:, perm] with perm = arange(n_H n_W n_C).reshape(n_H, n_W, n_C).transpose(2, 0, 1)"
            ".ravel(); copied as they are, the shapes agree and the outputs are silently wrong."
        ),
        case=(f"conv features A (2, 3, 3, 3) NHWC (ConvCase seed 2, cropped), a dense layer of {n_out} units with "
              "W (2, 27) defined on the course's flatten, float64; Keras Flatten + Dense(kernel = W.T) and torch "
              "nn.Flatten + nn.Linear on the same features in NCHW, against A.reshape(m, -1) @ W.T + b"),
        default_result=(f"torch weight = W (copied as is): output max |diff| "
                        f"{fmt(measured['torch_naive_max_abs_diff'])} (max |output| {fmt(measured['max_abs_out'])}); "
                        f"Keras: {fmt(measured['keras_max_abs_diff'])}; flatten orders measured: "
                        f"{measured['flatten_matches']}"),
        aligned_result=(f"torch weight = W[:, perm] (perm starts {measured['perm_first']}): output max |diff| "
                        f"{fmt(measured['torch_permuted_max_abs_diff'])}"),
        effect=(f"a naive weight copy changes the logits by up to {fmt(measured['torch_naive_max_abs_diff'])}, "
                f"with no shape error; permuted, {fmt(measured['torch_permuted_max_abs_diff'])}"),
        how_aligned=("Weights for a dense layer after a conv are kept in the course's NHWC flatten order; a torch "
                     "model gets W[:, perm] (or permutes its features to NHWC before nn.Flatten: "
                     "x.permute(0, 2, 3, 1).flatten(1))."),
        verified_in=(
            "installed torch/nn/modules/flatten.py (Flatten: \"start_dim: int = 1, end_dim: int = -1\", "
            "input.flatten(start_dim, end_dim)); keras/src/layers/reshaping/flatten.py (Flatten: data_format "
            "channels_last keeps the order; channels_first transposes to channels last first); "
            "https://keras.io/api/layers/reshaping_layers/flatten/"
        ),
        measured=measured,
    )


@_entry("conv-kernel-layout",
        "Conv kernel layout: HWIO (course, Keras, TF, JAX) vs OIHW (torch); all cross-correlate, none flips",
        "torch, tensorflow, keras, jax")
def _conv_kernel_layout():
    torch, tf, keras = _torch(), _tf(), _keras()
    jax, _ = _jax_flax()
    import torch.nn.functional as F

    from reference.conv import conv_forward

    case, inp = _conv_inputs()  # 7x7x3 -> 4 channels, f = 3, pad 1, stride 1
    A, W, b = inp["A_prev"], inp["W"], inp["b"]
    f, _, n_C_prev, n_C = W.shape
    Z_ref, _ = conv_forward(A, W, b, case.conv_hparameters)
    p = case.pad

    def torch_Z(weight):
        out = F.conv2d(torch.from_numpy(A.transpose(0, 3, 1, 2).copy()),
                       torch.from_numpy(np.ascontiguousarray(weight)), torch.from_numpy(b.ravel()), padding=p)
        return out.numpy().transpose(0, 2, 3, 1)

    def keras_Z(kernel):
        layer = keras.layers.Conv2D(n_C, f, padding="valid", dtype="float64")
        layer.build((None, case.n_H_prev + 2 * p, case.n_W_prev + 2 * p, n_C_prev))
        layer.set_weights([kernel, b.ravel()])
        return np.asarray(layer(np.pad(A, ((0, 0), (p, p), (p, p), (0, 0)))))

    def jax_Z(kernel):
        return np.asarray(jax.lax.conv_general_dilated(A, kernel, (1, 1), ((p, p), (p, p)),
                                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))) + b

    flipped = W[::-1, ::-1]  # a true convolution's kernel
    runs = {
        "torch weight = W.reshape(n_C, n_C_prev, f, f) (naive)": torch_Z(W.reshape(n_C, n_C_prev, f, f)),
        "torch weight = W.transpose(3, 2, 0, 1)": torch_Z(W.transpose(3, 2, 0, 1)),
        "keras Conv2D kernel = W": keras_Z(W),
        "tf.nn.conv2d(filters=W)": tf.nn.conv2d(A, W, 1, [[0, 0], [p, p], [p, p], [0, 0]]).numpy() + b,
        "jax.lax.conv_general_dilated(HWIO, W)": jax_Z(W),
        "torch weight = flipped W, transposed (a true convolution)": torch_Z(flipped.transpose(3, 2, 0, 1)),
        "reference conv_forward with the flipped W": conv_forward(A, np.ascontiguousarray(flipped), b,
                                                                  case.conv_hparameters)[0],
    }
    probe = keras.layers.Conv2D(n_C, f)
    probe.build((None, case.n_H_prev, case.n_W_prev, n_C_prev))
    measured = dict(W_shape=list(W.shape), torch_weight_shape=list(torch.nn.Conv2d(n_C_prev, n_C, f).weight.shape),
                    keras_kernel_shape=list(probe.kernel.shape), max_abs_Z=float(np.abs(Z_ref).max()),
                    runs={name: dict(Z_rel_err=normwise_rel_err(Z, Z_ref), Z_max_abs_diff=_max_abs(Z, Z_ref))
                          for name, Z in runs.items()})
    r = measured["runs"]
    naive = r["torch weight = W.reshape(n_C, n_C_prev, f, f) (naive)"]
    flip = r["torch weight = flipped W, transposed (a true convolution)"]
    aligned = [n for n in runs if "naive" not in n and "flip" not in n]
    return dict(
        framework_version=_version(torch, tf, keras, jax),
        what_differs=(
            f"The course's W is (f, f, n_C_prev, n_C) (HWIO), as Keras Conv2D.kernel "
            f"{tuple(measured['keras_kernel_shape'])}, tf.nn.conv2d's filters and JAX's 'HWIO' use it; torch "
            f"nn.Conv2d.weight is (n_C, n_C_prev, f, f) (OIHW; measured {tuple(measured['torch_weight_shape'])}): "
            "W.transpose(3, 2, 0, 1), not a reshape, which has the right shape and scrambles the kernel. All of "
            "them compute cross-correlation (no kernel flip), like the course's conv_single_step."
        ),
        case=(f"{case.name}: A_prev, W, b from nnparity.convspec.inputs; Z of each framework against "
              "reference.conv.conv_forward (normwise relative error)"),
        default_result=(f"naive reshape: Z rel err {fmt(naive['Z_rel_err'])} (max |diff| "
                        f"{fmt(naive['Z_max_abs_diff'])}, max |Z| {fmt(measured['max_abs_Z'])}); a flipped kernel "
                        f"(true convolution) in torch: Z rel err {fmt(flip['Z_rel_err'])}, the course's loops with "
                        "the flipped W: "
                        f"{fmt(r['reference conv_forward with the flipped W']['Z_rel_err'])}"),
        aligned_result="; ".join(f"{n}: Z rel err {fmt(r[n]['Z_rel_err'])}" for n in aligned),
        effect=(f"a reshaped kernel gives Z off by {fmt(naive['Z_rel_err'])} relative, with no shape error; "
                f"transposed, every framework matches the course to {fmt(max(r[n]['Z_rel_err'] for n in aligned))}"
                f" (cross-correlation everywhere: a flip would be off by {fmt(flip['Z_rel_err'])})"),
        how_aligned=("Kernels stay in the course's HWIO layout; torch gets W.transpose(3, 2, 0, 1) (and dW back "
                     "with .permute(2, 3, 1, 0)); no framework flips the kernel, so none is flipped."),
        verified_in=(
            "installed torch/nn/modules/conv.py (_ConvNd: weight of shape (out_channels, in_channels // groups, "
            "*kernel_size)); keras/src/layers/convolutional/base_conv.py (kernel_shape = self.kernel_size + "
            "(input_channel // self.groups, self.filters)); "
            "https://docs.pytorch.org/docs/stable/generated/torch.nn.Conv2d.html (\"cross-correlation\")"
        ),
        measured=measured,
    )


#: The ``batchnorm-defaults`` batch: NHWC, 36 values per channel, mean ~1, variance ~4.
BN_SHAPE, BN_SEED = (4, 3, 3, 2), 0


@_entry("batchnorm-defaults",
        "BatchNorm defaults: momentum, epsilon and the running variance differ (torch, Keras, flax)",
        "torch, keras, jax, flax")
def _batchnorm_defaults():
    torch, tf, keras = _torch(), _tf(), _keras()
    jax, flax = _jax_flax()
    import jax.numpy as jnp
    from flax import linen as nn

    x = np.random.RandomState(BN_SEED).randn(*BN_SHAPE) * 2 + 1
    n = int(np.prod(BN_SHAPE[:3]))
    mu, var_b = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    var_u = var_b * n / (n - 1)

    def torch_run(correct_variance=False, **kw):
        bn = torch.nn.BatchNorm2d(BN_SHAPE[-1], dtype=torch.float64, **kw)
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        bn.train()
        train_out = bn(xt).detach().numpy().transpose(0, 2, 3, 1)
        if correct_variance:  # the batch's share, unbiased -> biased: the course's variance
            with torch.no_grad():
                bn.running_var -= bn.momentum * xt.var(dim=(0, 2, 3), unbiased=True) / n
        bn.eval()
        with torch.no_grad():
            out = bn(xt).numpy().transpose(0, 2, 3, 1)
        return dict(momentum=bn.momentum, eps=bn.eps, running_mean=bn.running_mean.tolist(),
                    running_var=bn.running_var.tolist(), train_out=train_out, out=out)

    def keras_run(**kw):
        layer = keras.layers.BatchNormalization(dtype="float64", **kw)
        train_out = np.asarray(layer(x, training=True))
        out = np.asarray(layer(x, training=False))
        return dict(momentum=layer.momentum, eps=layer.epsilon, running_mean=np.asarray(layer.moving_mean).tolist(),
                    running_var=np.asarray(layer.moving_variance).tolist(), train_out=train_out, out=out)

    def flax_run(**kw):
        bn = nn.BatchNorm(dtype=jnp.float64, param_dtype=jnp.float64, **kw)
        variables = bn.init(jax.random.PRNGKey(0), jnp.asarray(x), use_running_average=False)
        train_out, updated = bn.apply(variables, jnp.asarray(x), use_running_average=False, mutable=["batch_stats"])
        variables = {**variables, **updated}
        out = bn.apply(variables, jnp.asarray(x), use_running_average=True)
        stats = updated["batch_stats"]
        return dict(momentum=bn.momentum, eps=bn.epsilon, running_mean=np.asarray(stats["mean"]).tolist(),
                    running_var=np.asarray(stats["var"]).tolist(), train_out=np.asarray(train_out),
                    out=np.asarray(out))

    defaults = {"torch nn.BatchNorm2d()": torch_run(), "keras BatchNormalization()": keras_run(),
                "flax nn.BatchNorm()": flax_run()}
    aligned = {"torch nn.BatchNorm2d(momentum=0.01, eps=1e-3), batch variance share made biased": torch_run(
                   correct_variance=True, momentum=0.01, eps=1e-3),
               "keras BatchNormalization()": defaults["keras BatchNormalization()"],
               "flax nn.BatchNorm(epsilon=1e-3, force_float32_reductions=False)": flax_run(
                   epsilon=1e-3, force_float32_reductions=False)}
    # the course's exponentially weighted averages from mean 0, variance 1, with the batch's biased variance
    course_keras = dict(running_mean=(0.01 * mu).tolist(), running_var=(0.99 + 0.01 * var_b).tolist())

    def summary(runs):
        out = {}
        for name, r in runs.items():
            # the running statistics a framework's documented update would give, biased and unbiased
            keep = 1 - r["momentum"] if "torch" in name else r["momentum"]
            out[name] = dict(
                momentum=r["momentum"], eps=r["eps"], running_mean=r["running_mean"], running_var=r["running_var"],
                mean_if_ewa=((1 - keep) * mu).tolist(), var_if_biased=(keep + (1 - keep) * var_b).tolist(),
                var_if_unbiased=(keep + (1 - keep) * var_u).tolist(),
                train_out_vs_biased=_max_abs(r["train_out"], (x - mu) / np.sqrt(var_b + r["eps"])),
                running_var_vs_course=_max_abs(r["running_var"], course_keras["running_var"]),
                running_mean_vs_course=_max_abs(r["running_mean"], course_keras["running_mean"]))
        names = list(runs)
        out["inference_max_abs_diff"] = {f"{a.split()[0]} vs {b.split()[0]}": _max_abs(runs[a]["out"], runs[b]["out"])
                                         for i, a in enumerate(names) for b in names[i + 1:]}
        return out

    measured = dict(shape=list(BN_SHAPE), n_per_channel=n, batch_mean=mu.tolist(), batch_var_biased=var_b.tolist(),
                    batch_var_unbiased=var_u.tolist(), course=course_keras,
                    defaults=summary(defaults), aligned=summary(aligned))
    d, a = measured["defaults"], measured["aligned"]
    t, k, fl = (d[name] for name in defaults)

    def stats(name, r):
        return (f"{name}: momentum {fmt(r['momentum'])}, eps {fmt(r['eps'])}, running mean "
                f"{_vec(r['running_mean'], 6)}, running var {_vec(r['running_var'], 9)}")

    return dict(
        framework_version=_version(torch, keras, tf, jax, flax),
        what_differs=(
            "All three normalise a training batch with its biased variance (measured: train output vs "
            f"(x - mean) / sqrt(var_biased + eps) {fmt(max(r['train_out_vs_biased'] for r in (t, k, fl)))}), but "
            "their running statistics differ: torch BatchNorm2d momentum=0.1 is the weight of the NEW batch "
            "(running = 0.9 running + 0.1 batch), eps=1e-5, and running_var takes the UNBIASED batch variance "
            "(n/(n-1)); Keras BatchNormalization momentum=0.99 is the weight of the OLD value, epsilon=1e-3, biased "
            "variance (the course's exponentially weighted average); flax nn.BatchNorm momentum=0.99 (old value), "
            "epsilon=1e-5, biased variance, and by default (force_float32_reductions=True) computes the batch "
            "statistics in float32 even for float64 input."
        ),
        case=(f"x ~ 2 N(0, 1) + 1, shape {BN_SHAPE} NHWC (n = {n} per channel), RandomState({BN_SEED}), float64; "
              "one training-mode step from running mean 0, variance 1, then inference on x with the running "
              "statistics"),
        default_result=("; ".join(stats(name, d[name]) for name in defaults)
                        + "; the course (Keras' form) with the biased variance: var "
                        f"{_vec(course_keras['running_var'], 9)}, torch's update with the unbiased variance: "
                        f"{_vec(t['var_if_unbiased'], 9)}; inference output max |diff|: "
                        + ", ".join(f"{p} {fmt(v)}" for p, v in d["inference_max_abs_diff"].items())),
        aligned_result=("torch momentum=0.01, eps=1e-3 and its running_var's batch share made biased (no argument "
                        "does it); flax epsilon=1e-3, force_float32_reductions=False: inference output max |diff| "
                        + ", ".join(f"{p} {fmt(v)}" for p, v in a["inference_max_abs_diff"].items())
                        + "; running var vs the course's: " + ", ".join(
                            f"{name.split()[0]} {fmt(a[name]['running_var_vs_course'])}" for name in aligned)),
        effect=(f"after one step the running variance differs: torch {fmt(t['running_var_vs_course'])} from the "
                f"course's (momentum and n/(n-1)), flax {fmt(fl['running_var_vs_course'])} (float32 reductions); "
                "inference outputs differ by " + ", ".join(f"{fmt(v)} ({p})"
                                                            for p, v in d["inference_max_abs_diff"].items())),
        how_aligned=("Keras' form is the course's (beta = momentum = 0.99 on the old value, biased variance); torch "
                     "takes momentum = 1 - beta and eps explicitly, and its unbiased running variance cannot be "
                     "switched off by an argument (track the statistics by hand, or correct the batch share as "
                     "here); flax takes epsilon and force_float32_reductions=False for float64 parity."),
        verified_in=(
            "installed torch/nn/modules/batchnorm.py (_NormBase: \"eps: float = 1e-5, momentum: float | None = "
            "0.1\"; docstring: \"the value stored in the moving average of the variance is calculated via the "
            "unbiased estimator\", x_new = (1 - momentum) x_hat + momentum x_t); "
            "keras/src/layers/normalization/batch_normalization.py (\"momentum=0.99, epsilon=1e-3\"); "
            "flax/linen/normalization.py (BatchNorm: \"momentum: float = 0.99\", "
            "\"epsilon: float = 1e-5\", \"force_float32_reductions: bool = True\")"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- running


def run_entry(entry: Entry) -> dict:
    """Run one entry; a framework that does not import, or an error, becomes the row's status."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(id=entry.id, title=entry.title, framework=entry.framework, measured={})
    _import_seconds[0] = 0.0
    start = time.perf_counter()
    try:
        record = entry.run()
    except Unavailable as exc:
        row.update(status=f"unavailable: {exc}", effect=f"not measured: {exc}")
    except Exception as exc:  # the catalogue reports, it never takes the report down with it
        row.update(status=f"error: {type(exc).__name__}: {exc}", effect="not measured: the entry raised an error")
    else:
        row.update(record, status="ok")
    row["import_seconds"] = round(_import_seconds[0], 3)
    row["seconds"] = round(time.perf_counter() - start - _import_seconds[0], 3)
    return row


def run_catalogue(ids=None) -> pd.DataFrame:
    """Run every entry (or those named in ``ids``) and return one row per entry, columns ``COLUMNS``.

    Each entry reports on stderr as it finishes (:mod:`nnparity.progress`)."""
    from nnparity.progress import progress

    entries = [e for e in ENTRIES if ids is None or e.id in ids]
    rows = []
    with progress(len(entries)) as bar:
        for entry in entries:
            bar.working(f"catalogue: {entry.id}")
            rows.append(run_entry(entry))
            status = rows[-1]["status"].split(":")[0]  # ok, unavailable, error
            bar.finished(f"catalogue {entry.id}", "FAIL: error" if status == "error" else status,
                         rows[-1]["seconds"] + rows[-1]["import_seconds"])
    return pd.DataFrame(rows, columns=COLUMNS)


def records(catalogue: pd.DataFrame) -> list[dict]:
    """The rows as strict-JSON-ready dicts (``nnparity.numbers.jsonable``: NaN is null, an infinity ``"inf"``)."""
    return jsonable(catalogue.to_dict("records"))


def csv_frame(catalogue: pd.DataFrame) -> pd.DataFrame:
    """The catalogue with ``measured`` as JSON text, ready for ``to_csv``."""
    out = catalogue.copy()
    if "measured" in out.columns:
        out["measured"] = out["measured"].map(lambda v: json.dumps(jsonable(v), allow_nan=False))
    return out


def _framework_entries() -> None:
    """Each framework's own entries (its descriptor's ``catalogue()``), after this module's; an id twice is an error."""
    from nnparity.impls import described

    for framework in described():
        if framework.catalogue is not None:
            ENTRIES.extend(framework.catalogue())
    ids = [e.id for e in ENTRIES]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"catalogue entries declared twice: {', '.join(twice)}")


_framework_entries()
