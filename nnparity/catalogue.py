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
beside Keras'), and the measuring helpers every family shares.  An entry that measures one framework family is
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
