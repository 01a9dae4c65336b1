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

Frameworks are imported inside the entries, never at module import.  A framework's folder may bring its own
entries (its descriptor's ``catalogue``, ``nnparity.impls.Framework``: JAX's, flax's and optax's are in
``jax_impl/catalogue.py``); they join ``ENTRIES`` after this module's, and a plugin's the same way.
``run_catalogue()`` returns one row per entry as a pandas DataFrame;
``records()`` the same rows as strict-JSON-ready dicts.
"""

from __future__ import annotations

import importlib
import json
import math
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


def _entry(id: str, title: str, framework: str):
    def register(fn):
        ENTRIES.append(Entry(id, title, framework, fn))
        return fn
    return register


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


# --------------------------------------------------------------------------- 1. saturated cross-entropy


#: The model case of ``bce-saturated-keras``: Z = [40, log(0.3/0.7)], so AL = sigmoid(Z) = [1.0, 0.3] in float64.
SATURATED_Z = [40.0, math.log(0.3 / 0.7)]


def _keras_bce_in_model(tf, keras):
    """A one-layer float64 Keras model (Dense(1) with w = 1, b = 0, then Activation('sigmoid')) on x = Z:
    AL, the BinaryCrossentropy cost, dJ/dZ per example and the model's gradients."""
    from tf_impl.idiomatic import floatx

    x = np.array(SATURATED_Z).reshape(-1, 1)  # examples as rows
    Y = np.array(SATURATED_Y, dtype=np.float64).T
    with floatx("float64"):
        model = keras.Sequential([keras.Input((1,), dtype="float64"), keras.layers.Dense(1, dtype="float64"),
                                  keras.layers.Activation("sigmoid", dtype="float64")])
        model.set_weights([np.ones((1, 1)), np.zeros(1)])
        loss = keras.losses.BinaryCrossentropy(dtype="float64")
        dense, act = model.layers
        with tf.GradientTape() as tape:
            Z = dense(tf.constant(x))
            AL = act(Z)
            J = loss(tf.constant(Y), AL)
        dZ = tape.gradient(J, Z)
        with tf.GradientTape() as tape:
            AL_model = model(tf.constant(x))
            J_model = loss(tf.constant(Y), AL_model)
        dW, db = tape.gradient(J_model, model.trainable_variables)
        bare = tf.Variable(AL_model.numpy())  # the same probabilities, without their logits
        with tf.GradientTape() as tape:
            J_bare = loss(tf.constant(Y), bare)
        d_bare = tape.gradient(J_bare, bare)
    return dict(
        Z=np.ravel(Z.numpy()).tolist(), AL=np.ravel(AL_model.numpy()).tolist(),
        has_keras_logits=hasattr(AL_model, "_keras_logits"),
        model_cost=float(J_model.numpy()), layers_cost=float(J.numpy()), dJ_dZ=np.ravel(dZ.numpy()).tolist(),
        dW=float(np.ravel(dW.numpy())[0]), db=float(np.ravel(db.numpy())[0]),
        bare_cost=float(J_bare.numpy()), bare_dJ_dAL=np.ravel(d_bare.numpy()).tolist(),
    )


@_entry("bce-saturated-keras",
        "Cross-entropy of saturated probabilities: Keras uses the logits after a sigmoid, clips bare probabilities",
        "keras")
def _bce_saturated_keras():
    tf, keras = _tf(), _keras()
    from tf_impl.losses import compute_cost

    eps = float(keras.config.epsilon())
    loss_dtype = str(keras.losses.BinaryCrossentropy().dtype)
    measured = {"epsilon": eps, "loss_object_dtype": loss_dtype, "in_model": _keras_bce_in_model(tf, keras)}
    for dtype in ("float64", "float32"):
        AL, Y = _saturated(dtype)
        notes_cost, notes_grad = _notes_bce(AL, Y)
        results = {}
        for label, loss in (("default", keras.losses.BinaryCrossentropy()),
                            ("typed", keras.losses.BinaryCrossentropy(dtype=dtype))):
            v = tf.Variable(AL.T)  # Keras: examples as rows
            with tf.GradientTape() as tape:
                J = loss(tf.constant(Y.T), v)
            results[label] = (float(J.numpy()), J.dtype.name, tape.gradient(J, v).numpy().T.ravel())
        v = tf.Variable(AL)
        with tf.GradientTape() as tape:
            J = compute_cost(v, tf.constant(Y))
        aligned_cost, aligned_grad = float(J.numpy()), tape.gradient(J, v).numpy().ravel()
        measured[dtype] = dict(
            notes_cost=notes_cost, notes_grad=notes_grad.ravel().tolist(),
            keras_cost=results["default"][0], keras_cost_dtype=results["default"][1],
            keras_grad=results["default"][2].tolist(),
            keras_typed_cost=results["typed"][0], keras_typed_grad=results["typed"][2].tolist(),
            aligned_cost=aligned_cost, aligned_grad=aligned_grad.tolist(),
        )
    f64, f32, mod = measured["float64"], measured["float32"], measured["in_model"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "The notes' J = -1/m sum(y log a + (1-y) log(1-a)) is inf when a is exactly 0 or 1 for the wrong label. "
            "keras.losses.BinaryCrossentropy has two paths (keras/src/backend/tensorflow/nn.py binary_crossentropy): "
            "an output of a sigmoid activation carries its input (output._keras_logits, set by "
            "keras/src/activations/activations.py sigmoid; found by _get_logits), and then the loss is "
            "tf.nn.sigmoid_cross_entropy_with_logits of Z, exact and unclipped (measured hasattr(AL, "
            f"'_keras_logits') = {mod['has_keras_logits']} for a model's sigmoid output); a bare probability tensor "
            f"is clipped to [epsilon, 1 - epsilon], epsilon = keras.config.epsilon() = {eps:g}, so its cost is "
            "finite and the clip's gradient is 0 where it clips. The loss object computes in its dtype, floatx "
            f"(measured: {loss_dtype}) unless dtype= is given."
        ),
        case=(f"the same saturated example both ways: a float64 one-layer Keras model (Dense(1), w = 1, b = 0, then "
              f"Activation('sigmoid')) on x = Z = {_vec(SATURATED_Z, 6)}, giving AL = {_vec(mod['AL'], 17)} (exactly 1 "
              f"for the y = 0 example), Y = {SATURATED_Y[0]}; and the bare tensor AL = {SATURATED_AL}, float64 and "
              "float32 (m = 2, examples as rows); gradients from tf.GradientTape"),
        default_result=(
            f"inside the model: cost {fmt(mod['model_cost'], 8)} = mean(log(1 + e^z) - y z) (no clip), dJ/dZ = "
            f"{_vec(mod['dJ_dZ'])} = (AL - Y)/m, dW = {fmt(mod['dW'], 6)}, db = {fmt(mod['db'], 6)}; bare "
            f"probabilities: float64 cost {fmt(f64['keras_typed_cost'], 6)} with dtype='float64' "
            f"({fmt(f64['keras_cost'], 6)} computed in {f64['keras_cost_dtype']} by default), float32 "
            f"{fmt(f32['keras_cost'], 6)}, dJ/dAL = {_vec(f64['keras_grad'])}"
        ),
        aligned_result=(
            f"tf_impl.losses.compute_cost (the notes' formula): cost {fmt(f64['aligned_cost'])} (float64), "
            f"{fmt(f32['aligned_cost'])} (float32), dJ/dAL = {_vec(f64['aligned_grad'])}; NumPy reference: cost "
            f"{fmt(f64['notes_cost'])}, dJ/dAL = {_vec(f64['notes_grad'])}"
        ),
        effect=(
            f"the same AL = [1, 0.3]: cost {fmt(mod['model_cost'])} in the model (logits), "
            f"{fmt(f64['keras_typed_cost'])} as a bare tensor (clipped), {fmt(f64['notes_cost'])} in the notes; at "
            f"the saturated example dJ/dZ {fmt(mod['dJ_dZ'][0])} in the model, dJ/dAL "
            f"{fmt(f64['keras_grad'][0])} bare"
            + (" (the clip passes no gradient)" if f64["keras_grad"][0] == 0 else "")
            + f" vs {fmt(f64['notes_grad'][0])} in the notes"
        ),
        how_aligned=(
            "tf_impl writes the notes' formula with tf.math.log (no clip), so it is inf exactly where the reference "
            "is; the harness accepts non-finite values only in the same places with the same value "
            "(nnparity/metrics.py errors). The idiomatic Keras model (tf_impl/idiomatic.py) takes the logits path; "
            "it is compared only on unsaturated cases, where the two formulas agree to rounding."
        ),
        verified_in=(
            "keras-team/keras keras/src/backend/tensorflow/nn.py (binary_crossentropy: \"if from_logits: return "
            "tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=output)\" after \"output, from_logits = "
            "_get_logits(output, from_logits, \"Sigmoid\", \"binary_crossentropy\")\"; otherwise \"output = "
            "tf.clip_by_value(output, backend.epsilon(), 1.0 - backend.epsilon())\"); keras/src/activations/"
            "activations.py (sigmoid: \"output._keras_logits = x\"); keras/src/backend/config.py (\"_EPSILON = "
            "1e-7\"); keras/src/losses/loss.py (\"self._dtype_policy = dtype_policies.get(dtype or "
            "backend.floatx())\"); https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class"
        ),
        measured=measured,
    )


@_entry("bce-saturated-torch", "Cross-entropy of saturated probabilities: torch clamps log at -100", "torch")
def _bce_saturated_torch():
    torch = _torch()
    from torch_impl.losses import compute_cost

    measured = {}
    for dtype in ("float64", "float32"):
        AL, Y = _saturated(dtype)
        notes_cost, notes_grad = _notes_bce(AL, Y)
        a = torch.tensor(AL, requires_grad=True)
        J = torch.nn.BCELoss()(a, torch.tensor(Y))
        (g,) = torch.autograd.grad(J, a)
        a2 = torch.tensor(AL, requires_grad=True)
        J2 = compute_cost(a2, torch.tensor(Y))
        (g2,) = torch.autograd.grad(J2, a2)
        measured[dtype] = dict(notes_cost=notes_cost, notes_grad=notes_grad.ravel().tolist(),
                               torch_cost=float(J.detach()), torch_grad=g.numpy().ravel().tolist(),
                               aligned_cost=float(J2.detach()), aligned_grad=g2.numpy().ravel().tolist())
    measured["reduction"] = torch.nn.BCELoss().reduction
    f64, f32 = measured["float64"], measured["float32"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The notes' cross-entropy is inf when a is exactly 0 or 1 for the wrong label. torch.nn.BCELoss / "
            "F.binary_cross_entropy clamp each log term at -100 (aten/src/ATen/native/Loss.cpp), so a saturated "
            "wrong example adds 100/m to the cost; its backward divides by max(a(1-a), EPSILON = 1e-12)."
        ),
        case=f"AL = {SATURATED_AL}, Y = {SATURATED_Y} (m = 2), float64 and float32; nn.BCELoss() "
             f"(reduction={measured['reduction']!r}); gradients dJ/dAL from torch.autograd",
        default_result=(
            f"float64: cost {fmt(f64['torch_cost'], 8)}, dJ/dAL = {_vec(f64['torch_grad'])}; "
            f"float32: cost {fmt(f32['torch_cost'], 8)}"
        ),
        aligned_result=(
            f"torch_impl.losses.compute_cost (the notes' formula): cost {fmt(f64['aligned_cost'])} (float64), "
            f"{fmt(f32['aligned_cost'])} (float32), dJ/dAL = {_vec(f64['aligned_grad'])}; NumPy reference: cost "
            f"{fmt(f64['notes_cost'])}, dJ/dAL = {_vec(f64['notes_grad'])}"
        ),
        effect=(
            f"cost {fmt(f64['torch_cost'])} vs {fmt(f64['notes_cost'])}; dJ/dAL at the saturated example "
            f"{fmt(f64['torch_grad'][0])} vs {fmt(f64['notes_grad'][0])}"
        ),
        how_aligned=(
            "torch_impl writes the notes' formula with torch.log (no clamp), so it is inf exactly where the "
            "reference is; the harness accepts non-finite values only in the same places with the same value."
        ),
        verified_in=(
            "pytorch/pytorch aten/src/ATen/native/Loss.cpp (binary_cross_entropy_out_cpu: \"std::max(scalar_t("
            "std::log(input_val)), scalar_t(-100))\"; backward: \"/ (scalar_t(std::max((scalar_t(1) - input_val) * "
            "input_val, scalar_t(EPSILON))))\", \"constexpr float EPSILON = 1e-12;\"); torch/nn/modules/loss.py "
            "(BCELoss: \"Our solution is that BCELoss clamps its log function outputs to be greater than or equal to "
            "-100\"); https://docs.pytorch.org/docs/stable/generated/torch.nn.BCELoss.html"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 2. leaky ReLU slopes


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


@_entry("tf-leaky-relu-float32-alpha", "tf.nn.leaky_relu keeps alpha as a float32 attribute (float64 runs)",
        "tensorflow, keras")
def _tf_leaky_float32_alpha():
    tf, keras = _tf(), _keras()
    from nnparity import tolerances as tol
    from tf_impl.activations import activation_forward as tf_act

    case, X, Y, P, ref, finish = _leaky_network()
    Z1, slope = ref["Z1"], case.leaky_slope
    neg = Z1 < 0
    exact = np.where(Z1 > 0, Z1, slope * Z1)
    B = tol.bounds(P, X, Y, case)["A1"]
    alpha_attr = _leaky_relu_alpha_attr(tf)
    outputs = {
        "tf.nn.leaky_relu(alpha=0.01)": tf.nn.leaky_relu(tf.constant(Z1), alpha=slope).numpy(),
        "keras LeakyReLU(0.01, dtype=float64)": np.asarray(
            keras.layers.LeakyReLU(negative_slope=slope, dtype="float64")(Z1)),
        "tf_impl (tf.where)": tf_act(tf.constant(Z1), "leaky_relu", slope).numpy(),
    }
    measured = {
        "slope": slope,
        "slope_readback": float(-tf.nn.leaky_relu(tf.constant(-1.0, tf.float64), alpha=slope).numpy()),
        "float32_of_slope": float(np.float32(slope)),
        "op_attr_alpha": alpha_attr,
        "float64_normwise_tolerance": tol.FLOAT64_NORMWISE,
    }
    for name, A1 in outputs.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            elem = float(np.max(np.abs(A1[neg] - exact[neg]) / np.abs(exact[neg])))
        AL, cost = finish(A1)
        measured[name] = dict(max_elementwise_rel_diff=elem, A1_rel_err=normwise_rel_err(A1, ref["A1"]),
                              A1_bound_ratio=bound_ratio(A1, ref["A1"], B),
                              AL_rel_err=normwise_rel_err(AL, ref["AL"]), output_dtype=str(A1.dtype))

    def line(name):
        r = measured[name]
        return (f"{name}: max rel diff on Z < 0 {fmt(r['max_elementwise_rel_diff'])}, A1 norm-wise rel err "
                f"{fmt(r['A1_rel_err'])}, bound ratio {fmt(r['A1_bound_ratio'])}")

    d = measured["tf.nn.leaky_relu(alpha=0.01)"]
    attr = (f"the installed LeakyRelu op declares alpha of type {alpha_attr['type']!r}, default "
            f"{fmt(alpha_attr['default'], 4)}" if alpha_attr else "the op definition could not be read")
    return dict(
        framework_version=_version(tf, keras),
        what_differs=(
            "The LeakyRelu op holds alpha as an attribute of type float (32-bit) whatever the tensor dtype "
            f"(tensorflow/core/ops/nn_ops.cc; measured: {attr}), so on float64 input the slope is float32(0.01) = "
            f"{measured['slope_readback']:.12g}, not 0.01. The Keras LeakyReLU layer calls tf.nn.leaky_relu, so it "
            "inherits this."
        ),
        case=("2,4,1 leaky_relu network on planar data (m = 400), float64: A1 = g(Z1) for the reference's Z1 "
              f"with slope {slope}; bounds from nnparity.tolerances.bounds as in the harness"),
        default_result="; ".join(line(n) for n in list(outputs)[:2]),
        aligned_result=line("tf_impl (tf.where)"),
        effect=(f"max rel diff {fmt(d['max_elementwise_rel_diff'])} on every negative entry; A1 norm-wise rel err "
                f"{fmt(d['A1_rel_err'])} > the float64 tolerance {tol.FLOAT64_NORMWISE:g}; bound ratio "
                f"{fmt(d['A1_bound_ratio'])}"
                + (" (> 1: rounding cannot explain it)" if d["A1_bound_ratio"] > 1 else "")),
        how_aligned=("tf_impl writes the notes' equation tf.where(Z > 0, Z, slope * Z) with slope a Python float "
                     "(float64); parity_tests/test_parity_grid.py::test_a_constant_rounded_to_float32_fails_in_float64 "
                     "shows the harness catches the rounded slope at A1."),
        verified_in=(
            "tensorflow/tensorflow tensorflow/core/ops/nn_ops.cc (REGISTER_OP(\"LeakyRelu\") ... "
            "\".Attr(\"alpha: float = 0.2\")\"); installed tensorflow/python/ops/gen_nn_ops.py (\"def "
            "leaky_relu(features, alpha:float=0.2, name=None)\"); read at run time from "
            "tensorflow.python.framework.op_def_registry.get('LeakyRelu'); keras-team/keras "
            "keras/src/backend/tensorflow/nn.py (\"return tf.nn.leaky_relu(x, alpha=negative_slope)\")"
        ),
        measured=measured,
    )


def _leaky_relu_alpha_attr(tf):
    """The installed LeakyRelu op's ``alpha`` attribute: its type and default, or None if unreadable."""
    try:
        from tensorflow.python.framework import op_def_registry

        op = op_def_registry.get("LeakyRelu")
        attr = next(a for a in op.attr if a.name == "alpha")
        return {"type": attr.type, "default": float(attr.default_value.f)}
    except Exception:  # an internal API; the entry does not depend on it
        return None


# --------------------------------------------------------------------------- 3. weight layout


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


# --------------------------------------------------------------------------- 4. default dtypes


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

    def traj(costs):
        return float(np.max(np.abs(np.asarray(costs, np.float64) - ref_costs) / np.abs(ref_costs)))

    measured = dict(readback=readback, steps=len(ref_costs), torch_default_dtype=default_dtype,
                    default_trajectory_rel_err=traj(costs_default), aligned_trajectory_rel_err=traj(costs_aligned),
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


# --------------------------------------------------------------------------- 5. reduction


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


# --------------------------------------------------------------------------- 6. extras


@_entry("keras-sgd-learning-rate-float32", "Keras SGD holds the learning rate in floatx (float32) in float64 runs",
        "keras")
def _keras_sgd_learning_rate():
    tf, keras = _tf(), _keras()
    from nnparity import tolerances as tol
    from reference.model import train
    from tf_impl.losses import compute_cost
    from tf_impl.model import train as tf_train

    case, X, Y, P = _network((2, 1), "relu", learning_rate=0.0075, epochs=100)
    _, ref_costs = train(P, X, Y, case)
    opt = keras.optimizers.SGD(learning_rate=case.learning_rate)
    W, b = tf.Variable(P["W1"]), tf.Variable(P["b1"])
    Xc, Yc = tf.constant(X), tf.constant(Y)
    costs = []
    for _ in range(case.epochs):
        with tf.GradientTape() as tape:
            J = compute_cost(tf.math.sigmoid(W @ Xc + b), Yc)
        costs.append(float(J.numpy()))
        opt.apply_gradients(zip(tape.gradient(J, [W, b]), [W, b]))
    _, aligned_costs = tf_train(P, X, Y, case)
    lr = float(np.asarray(opt.learning_rate))

    def traj(c):
        return float(np.max(np.abs(np.asarray(c, np.float64) - ref_costs) / np.abs(ref_costs)))

    measured = dict(learning_rate=case.learning_rate, lr_variable_dtype=str(opt.learning_rate.dtype),
                    lr_value=lr, lr_rel_diff=abs(lr - case.learning_rate) / case.learning_rate,
                    steps=case.epochs, default_trajectory_rel_err=traj(costs),
                    aligned_trajectory_rel_err=traj(aligned_costs), tolerance=tol.FLOAT64_TRAJECTORY)
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "Keras optimizers store the learning rate as a variable of dtype floatx (keras/src/optimizers/"
            "base_optimizer.py) and SGD casts it to the parameter's dtype at each step, so a float64 run steps "
            f"with float32(alpha): measured variable dtype {measured['lr_variable_dtype']}, value {lr:.12g}."
        ),
        case=(f"logistic regression (2,1) on planar data (m = 400), float64 variables, alpha = {case.learning_rate}, "
              f"{case.epochs} full-batch steps with keras.optimizers.SGD vs the reference"),
        default_result=(f"learning rate relative change {fmt(measured['lr_rel_diff'])}; cost trajectory max relative "
                        f"difference {fmt(measured['default_trajectory_rel_err'])}"),
        aligned_result=(f"tf_impl (W.assign(W - alpha * dW), alpha a Python float): cost trajectory max relative "
                        f"difference {fmt(measured['aligned_trajectory_rel_err'])}"),
        effect=(f"{fmt(measured['default_trajectory_rel_err'])} vs {fmt(measured['aligned_trajectory_rel_err'])}; "
                f"the float64 trajectory tolerance is {tol.FLOAT64_TRAJECTORY:g}"),
        how_aligned=("The update is written out, W - alpha * dW, with alpha a Python float (float64), "
                     "in every implementation."),
        verified_in=(
            "keras-team/keras keras/src/optimizers/base_optimizer.py (\"learning_rate = backend.Variable("
            "learning_rate, name=\"learning_rate\", dtype=backend.floatx(), ...)\"); keras/src/optimizers/sgd.py "
            "(\"learning_rate = ops.cast(learning_rate, variable.dtype)\")"
        ),
        measured=measured,
    )


@_entry("bce-vs-logits", "nn.BCELoss on sigmoid outputs vs nn.BCEWithLogitsLoss at large logits", "torch")
def _bce_vs_logits():
    torch = _torch()
    from reference.activations import sigmoid

    z_values, y_values = [[40.0, 5.0]], [[0.0, 1.0]]
    grid = np.arange(0.0, 60.0, 0.5)
    measured = {"sigmoid_saturates_at": {}}
    for dtype in ("float64", "float32"):
        s = torch.sigmoid(torch.from_numpy(grid.astype(dtype))).numpy()
        measured["sigmoid_saturates_at"][dtype] = float(grid[np.argmax(s == 1)])  # first z with sigmoid(z) == 1
        z, y = np.array(z_values, dtype), np.array(y_values, dtype)
        z64, y64 = z.astype(np.float64), y.astype(np.float64)
        exact = float(np.mean(np.logaddexp(0.0, z64) - y64 * z64))  # -y log s(z) - (1-y) log(1-s(z)), stably
        zt, yt = torch.from_numpy(z), torch.from_numpy(y)
        probs = torch.sigmoid(zt)
        bce = float(torch.nn.BCELoss()(probs, yt))
        logits = float(torch.nn.BCEWithLogitsLoss()(zt, yt))
        notes, _ = _notes_bce(sigmoid(z), y)
        measured[dtype] = dict(exact=exact, sigmoid_of_first=float(probs[0, 0]), bce=bce, bce_with_logits=logits,
                               notes=notes, bce_rel_err=abs(bce - exact) / exact,
                               logits_rel_err=abs(logits - exact) / exact)
    f64, f32 = measured["float64"], measured["float32"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "torch.sigmoid(z) rounds to exactly 1 from z = "
            f"{fmt(measured['sigmoid_saturates_at']['float64'])} (float64) and "
            f"{fmt(measured['sigmoid_saturates_at']['float32'])} (float32) on a 0.5 grid; the notes' two steps "
            "(sigmoid, then the log formula) then give inf, nn.BCELoss gives its clamp 100, and nn.BCEWithLogitsLoss, "
            "which takes z and uses the log-sum-exp form, gives the exact value."
        ),
        case=(f"z = {z_values}, Y = {y_values} (m = 2), float64 and float32; exact cost mean(log(1 + e^z) - y z) "
              "from numpy.logaddexp in float64"),
        default_result=(f"float64: BCELoss(sigmoid(z)) {fmt(f64['bce'], 6)} "
                        f"(sigmoid(40) = {f64['sigmoid_of_first']!r}), "
                        f"BCEWithLogitsLoss {fmt(f64['bce_with_logits'], 10)}, exact {fmt(f64['exact'], 10)}; float32: "
                        f"BCELoss {fmt(f32['bce'], 6)}, BCEWithLogitsLoss {fmt(f32['bce_with_logits'], 8)}"),
        aligned_result=(f"the notes' formula on sigmoid(z) (reference, torch_impl, tf_impl): {fmt(f64['notes'])} "
                        f"(float64), {fmt(f32['notes'])} (float32)"),
        effect=(f"relative error vs exact: BCELoss {fmt(f64['bce_rel_err'])}, BCEWithLogitsLoss "
                f"{fmt(f64['logits_rel_err'])}, notes' formula inf"),
        how_aligned=("Parity with the notes, not robustness: the equation-style implementations keep sigmoid then "
                     "the log formula exactly as the reference, so they saturate to inf where it does; a logits "
                     "loss is a different (better) formula and would not match the reference there."),
        verified_in=(
            "pytorch/pytorch torch/nn/modules/loss.py (BCEWithLogitsLoss: \"This version is more numerically stable "
            "than using a plain `Sigmoid` followed by a `BCELoss` as, by combining the operations into one layer, we "
            "take advantage of the log-sum-exp trick for numerical stability.\"); aten/src/ATen/native/Loss.cpp "
            "(binary_cross_entropy_with_logits)"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- 7. optimisers and dropout

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


def _keras_quadratic(keras, tf, optimizer, steps, dtype="float64"):
    """Keras ``apply_gradients`` on the quadratic inside floatx(dtype): w after each step."""
    w, c, out = tf.Variable(np.array(OPT_W0, dtype=dtype)), tf.constant(np.array(OPT_C, dtype=dtype)), []
    for _ in range(steps):
        optimizer.apply_gradients([(c * w, w)])
        out.append(w.numpy().astype(np.float64))
    return out


@_entry("torch-sgd-momentum-first-step",
        "torch SGD momentum: the first step takes the whole gradient (no dampening)", "torch")
def _torch_sgd_momentum_first_step():
    torch = _torch()

    steps = 3
    course = _course_momentum(steps)
    runs = {}
    for label in ("default", "aligned"):
        w = torch.tensor(OPT_W0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=OPT_ALPHA, momentum=OPT_BETA, dampening=OPT_BETA)
        if label == "aligned":
            opt.state[w]["momentum_buffer"] = torch.zeros_like(w)
        out = []
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (torch.tensor(OPT_C, dtype=torch.float64) * w * w).sum()).backward()
            opt.step()
            out.append(w.detach().numpy().copy())
        runs[label] = out
    w0 = np.array(OPT_W0)
    course_step = course[0] - w0
    measured = dict(alpha=OPT_ALPHA, beta=OPT_BETA, w0=OPT_W0, c=OPT_C, course_w1=course[0].tolist())
    for label, out in runs.items():
        measured[label] = dict(
            w1=out[0].tolist(), step1_ratio=((out[0] - w0) / course_step).tolist(),
            w1_diff=(out[0] - course[0]).tolist(),
            rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
    d, a = measured["default"], measured["aligned"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The course's momentum starts from v = 0: v1 = beta 0 + (1 - beta) dW. torch.optim.SGD creates the "
            "buffer on the first step as buf = grad.detach().clone(), without the (1 - dampening) factor, and "
            "dampens only from the second step (buf.mul_(momentum).add_(grad, alpha=1 - dampening)), so even with "
            "dampening=beta the first step is 1/(1 - beta) times the course's."
        ),
        case=(f"J(w) = 1/2 sum(c w^2), c = {OPT_C}, w0 = {OPT_W0}, float64; SGD(lr={OPT_ALPHA}, momentum={OPT_BETA}, "
              f"dampening={OPT_BETA}), {steps} steps vs the course's momentum (reference.optimizers)"),
        default_result=(f"step 1: w1 = {_vec(d['w1'], 6)} vs the course's {_vec(measured['course_w1'], 6)}, "
                        f"step / course step = {_vec(d['step1_ratio'], 6)}; relative error per step "
                        f"{_vec(d['rel_err_per_step'])}"),
        aligned_result=(f"state[w]['momentum_buffer'] = zeros before the first step: step / course step = "
                        f"{_vec(a['step1_ratio'], 15)}; relative error per step {_vec(a['rel_err_per_step'])}"),
        effect=(f"first step {fmt(d['step1_ratio'][0], 6)} times the course's (1/(1 - beta) = "
                f"{fmt(1 / (1 - OPT_BETA), 6)}); w1 off by {_vec(d['w1_diff'])}; aligned: "
                f"{fmt(max(a['rel_err_per_step']))} max relative error"),
        how_aligned=("torch_impl/idiomatic.py make_optimizer: SGD(lr=alpha, momentum=beta, dampening=beta) with "
                     "every state[p]['momentum_buffer'] pre-created as zeros, so every step is buf = beta buf + "
                     "(1 - beta) g; p -= lr buf."),
        verified_in=(
            "installed torch/optim/sgd.py (_single_tensor_sgd: \"if buf is None: buf = grad.detach().clone()\" ... "
            "\"else: buf.mul_(momentum).add_(grad, alpha=1 - dampening)\"; docstring: \"Dampening will be applied "
            "starting at the second step.\"); https://docs.pytorch.org/docs/stable/generated/torch.optim.SGD.html"
        ),
        measured=measured,
    )


@_entry("keras-sgd-momentum-form", "Keras SGD momentum: m = mu m - lr g; w += m, the course's v scaled by -lr/(1-beta)",
        "keras")
def _keras_sgd_momentum_form():
    tf, keras = _tf(), _keras()
    from tf_impl.idiomatic import floatx

    steps = 5
    course = _course_momentum(steps)
    runs = {}
    with floatx("float64"):
        for label, lr in (("naive lr = alpha", OPT_ALPHA),
                          ("aligned lr = alpha (1 - beta)", OPT_ALPHA * (1 - OPT_BETA))):
            opt = keras.optimizers.SGD(learning_rate=lr, momentum=np.float64(OPT_BETA))
            runs[label] = _keras_quadratic(keras, tf, opt, steps)
    w0 = np.array(OPT_W0)
    measured = dict(alpha=OPT_ALPHA, beta=OPT_BETA, steps=steps, course_final=course[-1].tolist())
    for label, out in runs.items():
        measured[label] = dict(final=out[-1].tolist(),
                               step1_ratio=((out[0] - w0) / (course[0] - w0)).tolist(),
                               rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
    n, a = measured["naive lr = alpha"], measured["aligned lr = alpha (1 - beta)"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "The course: v = beta v + (1 - beta) dW; W -= alpha v. Keras SGD: m = momentum m - lr g; w += m "
            "(keras/src/optimizers/sgd.py update_step), so m = -lr/(1 - beta) v: the same trajectory only with "
            "lr = alpha (1 - beta); lr = alpha takes 1/(1 - beta) times larger steps."
        ),
        case=(f"J(w) = 1/2 sum(c w^2), c = {OPT_C}, w0 = {OPT_W0}, float64 (floatx float64, momentum np.float64("
              f"{OPT_BETA})), alpha = {OPT_ALPHA}, {steps} apply_gradients steps vs the course's momentum"),
        default_result=(f"lr = alpha: step 1 / course step = {_vec(n['step1_ratio'], 6)}; w after {steps} steps "
                        f"{_vec(n['final'], 6)} vs {_vec(measured['course_final'], 6)}, relative error "
                        f"{fmt(n['rel_err_per_step'][-1])}"),
        aligned_result=(f"lr = alpha (1 - beta): relative error per step {_vec(a['rel_err_per_step'])}"),
        effect=(f"after {steps} steps {fmt(n['rel_err_per_step'][-1])} (lr = alpha) vs "
                f"{fmt(a['rel_err_per_step'][-1])} (lr = alpha (1 - beta))"),
        how_aligned=("tf_impl/idiomatic.py make_optimizer: keras.optimizers.SGD(learning_rate=alpha (1 - beta), "
                     "momentum=np.float64(beta)) inside floatx(case.dtype)."),
        verified_in=(
            "installed keras/src/optimizers/sgd.py (update_step: \"self.assign(m, ops.subtract(ops.multiply(m, "
            "momentum), ops.multiply(gradient, learning_rate)))\" then \"self.assign_add(variable, m)\"); "
            "https://keras.io/api/optimizers/sgd/"
        ),
        measured=measured,
    )


@_entry("keras-float32-hyperparameter-cast",
        "Keras casts Python-float hyper-parameters through float32 (float64 runs)", "keras")
def _keras_float32_hyperparameter_cast():
    tf, keras = _tf(), _keras()
    from tf_impl.idiomatic import floatx

    steps = 10
    course = _course_momentum(steps)
    readback = {
        "ops.cast(0.9, 'float64')": float(keras.ops.cast(OPT_BETA, "float64")),
        "ops.cast(np.float64(0.9), 'float64')": float(keras.ops.cast(np.float64(OPT_BETA), "float64")),
        "float(np.float32(0.9))": float(np.float32(OPT_BETA)),
    }
    runs = {}
    with floatx("float64"):
        for label, beta in (("momentum=0.9 (Python float)", OPT_BETA),
                            ("momentum=np.float64(0.9)", np.float64(OPT_BETA))):
            opt = keras.optimizers.SGD(learning_rate=OPT_ALPHA * (1 - OPT_BETA), momentum=beta)
            runs[label] = _keras_quadratic(keras, tf, opt, steps)
        others = {}  # the other optimisers: Python floats vs np.float64, 10 steps each
        for name, make in (
                ("Adam(beta_1, beta_2)", lambda f: keras.optimizers.Adam(0.01, beta_1=f(0.9), beta_2=f(0.999),
                                                                        epsilon=np.float64(1e-7))),
                ("Adam(epsilon)", lambda f: keras.optimizers.Adam(0.01, beta_1=np.float64(0.9),
                                                                 beta_2=np.float64(0.999), epsilon=f(0.1))),
                ("RMSprop(rho, epsilon)", lambda f: keras.optimizers.RMSprop(0.01, rho=f(0.9), epsilon=f(0.1)))):
            py, f64 = (_keras_quadratic(keras, tf, make(f), steps)[-1] for f in (float, np.float64))
            others[name] = normwise_rel_err(py, f64)
    measured = dict(readback=readback, steps=steps, others_python_vs_float64=others,
                    beta_rel_change=abs(readback["ops.cast(0.9, 'float64')"] - OPT_BETA) / OPT_BETA)
    for label, out in runs.items():
        measured[label] = dict(rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
    d, a = measured["momentum=0.9 (Python float)"], measured["momentum=np.float64(0.9)"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "Keras optimisers keep their hyper-parameters as given; SGD's momentum and Adam's beta_1, beta_2 are "
            "cast at each step with ops.cast(value, variable.dtype), and on the TensorFlow backend tf.cast of a "
            "Python float makes a float32 tensor first, so in float64 they are float32-rounded: measured "
            + ", ".join(f"{k} = {v!r}" for k, v in readback.items()) + ". Values used directly in ops (RMSprop's "
            "rho and epsilon, Adam's epsilon) keep float64. Measured, Python floats vs np.float64 after "
            f"{steps} steps (relative difference): "
            + ", ".join(f"{k} {fmt(v)}" for k, v in measured["others_python_vs_float64"].items()) + "."
        ),
        case=(f"float64 momentum run (floatx float64, lr = alpha (1 - beta)), J(w) = 1/2 sum(c w^2), c = {OPT_C}, "
              f"w0 = {OPT_W0}, alpha = {OPT_ALPHA}, beta = {OPT_BETA}, {steps} steps vs the course's momentum"),
        default_result=(f"momentum=0.9: relative error after {steps} steps {fmt(d['rel_err_per_step'][-1])} "
                        f"(max {fmt(max(d['rel_err_per_step']))}); beta itself changes by "
                        f"{fmt(measured['beta_rel_change'])} relative"),
        aligned_result=(f"momentum=np.float64(0.9): relative error after {steps} steps "
                        f"{fmt(a['rel_err_per_step'][-1])} (max {fmt(max(a['rel_err_per_step']))})"),
        effect=(f"{fmt(max(d['rel_err_per_step']))} vs {fmt(max(a['rel_err_per_step']))} max relative error: "
                "float32 level in a float64 run (the float64 tolerance is 1e-12 / 1e-10)"),
        how_aligned=("tf_impl/idiomatic.py make_optimizer passes every hyper-parameter but the learning rate as "
                     "np.float64 (a float subclass that converts to a float64 tensor); the learning rate is a "
                     "variable of dtype floatx, set to the case's dtype by floatx(case.dtype)."),
        verified_in=(
            "installed keras/src/optimizers/sgd.py (\"momentum = ops.cast(self.momentum, variable.dtype)\"), "
            "adam.py (\"ops.cast(self.beta_1, variable.dtype)\", \"ops.cast(self.beta_2, variable.dtype)\"), "
            "rmsprop.py (\"rho = self.rho\", no cast); keras/src/backend/tensorflow/core.py (cast: "
            "\"return tf.cast(x, dtype=dtype)\"; tf.cast converts a Python float to a float32 tensor first)"
        ),
        measured=measured,
    )


def _first_update(tf, keras, optimizer, g, dtype="float64"):
    w = tf.Variable(np.array([0.0], dtype=dtype))
    optimizer.apply_gradients([(tf.constant(np.array([g], dtype=dtype)), w)])
    return float(-w.numpy()[0])


@_entry("keras-rmsprop-epsilon", "Keras RMSprop adds epsilon inside the square root", "keras, torch")
def _keras_rmsprop_epsilon():
    tf, keras, torch = _tf(), _keras(), _torch()
    from tf_impl.idiomatic import floatx

    alpha, rho = 0.01, 0.9
    measured = dict(alpha=alpha, rho=rho, cases={})
    for g in (1e-4, 1.0):
        for eps in (1e-8, 1e-7):
            course = alpha * g / (np.sqrt((1 - rho) * g * g) + eps)  # reference.optimizers on a zero s
            with floatx("float64"):
                opt = keras.optimizers.RMSprop(learning_rate=alpha, rho=np.float64(rho), epsilon=np.float64(eps))
                keras_step = _first_update(tf, keras, opt, g)
            w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            topt = torch.optim.RMSprop([w], lr=alpha, alpha=rho, eps=eps)
            w.grad = torch.tensor([g], dtype=torch.float64)
            topt.step()
            torch_step = float(-w.detach()[0])
            measured["cases"][f"g={g:g}, eps={eps:g}"] = dict(
                g=g, eps=eps, course_step=course, keras_step=keras_step, torch_step=torch_step,
                keras_rel_diff=abs(keras_step - course) / course, torch_rel_diff=abs(torch_step - course) / course)
    c = measured["cases"]
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
        default_result="; ".join(f"{k}: Keras step {fmt(c[k]['keras_step'], 6)} vs course {fmt(c[k]['course_step'], 6)}"
                                 f" (rel diff {fmt(c[k]['keras_rel_diff'])})" for k in c),
        aligned_result=("torch.optim.RMSprop(lr, alpha=beta2, eps): rel diff "
                        + ", ".join(f"{fmt(c[k]['torch_rel_diff'])} ({k})" for k in c)
                        + "; Keras cannot be aligned by its arguments"),
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
    from tf_impl.idiomatic import floatx

    alpha, b1, b2 = 0.01, 0.9, 0.999
    measured = dict(alpha=alpha, beta1=b1, beta2=b2, cases={})
    for g in (1e-4, 1.0):
        for eps in (1e-8, 1e-7):
            v, s = (1 - b1) * g, (1 - b2) * g * g
            course = alpha * (v / (1 - b1)) / (np.sqrt(s / (1 - b2)) + eps)
            with floatx("float64"):
                opt = keras.optimizers.Adam(learning_rate=alpha, beta_1=np.float64(b1), beta_2=np.float64(b2),
                                            epsilon=np.float64(eps))
                keras_step = _first_update(tf, keras, opt, g)
            w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            topt = torch.optim.Adam([w], lr=alpha, betas=(b1, b2), eps=eps)
            w.grad = torch.tensor([g], dtype=torch.float64)
            topt.step()
            torch_step = float(-w.detach()[0])
            measured["cases"][f"g={g:g}, eps={eps:g}"] = dict(
                g=g, eps=eps, course_step=course, keras_step=keras_step, torch_step=torch_step,
                keras_rel_diff=abs(keras_step - course) / course, torch_rel_diff=abs(torch_step - course) / course)
    c = measured["cases"]
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
        default_result="; ".join(f"{k}: Keras step {fmt(c[k]['keras_step'], 6)} vs course {fmt(c[k]['course_step'], 6)}"
                                 f" (rel diff {fmt(c[k]['keras_rel_diff'])})" for k in c),
        aligned_result=("torch.optim.Adam(lr, betas, eps): rel diff "
                        + ", ".join(f"{fmt(c[k]['torch_rel_diff'])} ({k})" for k in c)
                        + "; Keras cannot be aligned by its arguments"),
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


@_entry("torch-weight-decay-biases", "torch weight_decay on model.parameters() also decays the biases", "torch")
def _torch_weight_decay_biases():
    torch = _torch()
    from reference.model import forward_backward

    case, X, Y, P = _network((2, 1), "relu")  # L = 1: logistic regression
    P = dict(P, b1=np.full_like(P["b1"], 0.5))  # a non-zero bias (the course initialises b to 0)
    m, lambd, alpha = X.shape[1], 0.7, 0.1
    ref = forward_backward(P, X, Y, case)  # without L2: dW, db of the cross-entropy
    course_dW, course_db = ref["dW1"] + lambd / m * P["W1"], ref["db1"]  # the course regularises W only
    Xt, Yt = torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())
    runs = {}
    for label in ("default", "aligned"):
        model = torch.nn.Sequential(torch.nn.Linear(2, 1, dtype=torch.float64), torch.nn.Sigmoid())
        with torch.no_grad():
            model[0].weight.copy_(torch.from_numpy(P["W1"]))
            model[0].bias.copy_(torch.from_numpy(P["b1"].ravel()))
        if label == "default":
            opt = torch.optim.SGD(model.parameters(), lr=alpha, weight_decay=lambd / m)
        else:
            opt = torch.optim.SGD([{"params": [model[0].weight], "weight_decay": lambd / m},
                                   {"params": [model[0].bias], "weight_decay": 0.0}], lr=alpha)
        torch.nn.BCELoss()(model(Xt), Yt).backward()
        opt.step()
        with torch.no_grad():  # the gradient the step used: (p_before - p_after) / alpha
            dW = (torch.from_numpy(P["W1"]) - model[0].weight).numpy() / alpha
            db = (torch.from_numpy(P["b1"].ravel()) - model[0].bias).numpy() / alpha
        runs[label] = dict(db_step=db.tolist(), db_diff=float(db[0] - course_db[0, 0]),
                           db_rel_err=normwise_rel_err(db.reshape(course_db.shape), course_db),
                           dW_rel_err=normwise_rel_err(dW, course_dW))
    measured = dict(m=m, lambd=lambd, alpha=alpha, b=0.5, course_db=float(course_db[0, 0]),
                    expected_extra=lambd / m * 0.5, **runs)
    d, a = runs["default"], runs["aligned"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The course's L2 cost adds lambda/(2m) sum ||W[l]||^2: dW gains lambda/m W, db nothing. torch's "
            "weight_decay adds wd * p to the gradient of every parameter in its group (torch/optim/sgd.py "
            "grad.add(param, alpha=weight_decay); rmsprop.py and adam.py the same), so "
            "SGD(model.parameters(), weight_decay=lambda/m) also adds lambda/m b to db."
        ),
        case=(f"logistic regression (2,1) on planar data (m = {m}), inv-sqrt seed 1 with b = 0.5, float64, "
              f"lambda = {lambd}, one SGD step (lr = {alpha}); the gradient used recovered as (p0 - p1) / lr and "
              "compared with the course's dW + lambda/m W, db"),
        default_result=(f"weight_decay={fmt(lambd / m)} on model.parameters(): db used {fmt(d['db_step'][0], 8)} vs "
                        f"the course's {fmt(measured['course_db'], 8)} (difference {fmt(d['db_diff'])}, relative "
                        f"{fmt(d['db_rel_err'])}); dW rel err {fmt(d['dW_rel_err'])}"),
        aligned_result=(f"two param groups (weights weight_decay = lambda/m, biases 0): db rel err "
                        f"{fmt(a['db_rel_err'])}, dW rel err {fmt(a['dW_rel_err'])}"),
        effect=(f"db off by {fmt(d['db_diff'])} = lambda/m b ({fmt(measured['expected_extra'])}), "
                f"{fmt(d['db_rel_err'])} relative; aligned {fmt(a['db_rel_err'])}"),
        how_aligned=("torch_impl/idiomatic.py make_optimizer: two param groups, weights with weight_decay = "
                     "lambda / m_batch (set_weight_decay, before every step), biases with 0."),
        verified_in=(
            "installed torch/optim/sgd.py (_single_tensor_sgd: \"if weight_decay != 0: ... grad = grad.add(param, "
            "alpha=weight_decay)\"); torch/optim/optimizer.py (param groups: \"param_groups\" with per-group "
            "options); https://docs.pytorch.org/docs/stable/optim.html#per-parameter-options"
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


@_entry("keras-learning-rate-decay",
        "Keras learning-rate decay: InverseTimeDecay computes in its arguments' dtype; SGD momentum keeps each "
        "step's rate", "keras")
def _keras_learning_rate_decay():
    tf, keras = _tf(), _keras()
    from reference.optimizers import update_lr
    from tf_impl.idiomatic import floatx

    epochs, decay_rate = 6, 0.1
    course_rates = [update_lr(OPT_ALPHA, e, decay_rate) for e in range(epochs)]  # one step an epoch
    measured = dict(alpha=OPT_ALPHA, decay_rate=decay_rate, beta=OPT_BETA, epochs=epochs, course_rates=course_rates)
    with floatx("float64"):
        for label, alpha, rate in (("Python floats", OPT_ALPHA, decay_rate),
                                   ("np.float64", np.float64(OPT_ALPHA), np.float64(decay_rate))):
            schedule = keras.optimizers.schedules.InverseTimeDecay(alpha, decay_steps=1, decay_rate=rate,
                                                                   staircase=True)
            rates = [float(np.asarray(schedule(e))) for e in range(epochs)]
            measured[label] = dict(dtype=str(np.asarray(schedule(0)).dtype), rates=rates,
                                   max_rel_diff=max(abs(r - c) / c for r, c in zip(rates, course_rates)))
        # momentum under the decay, on the quadratic: the course's v = beta v + (1 - beta) dW; W -= alpha_e v
        w, v, c, course = np.array(OPT_W0), np.zeros(2), np.array(OPT_C), []
        for alpha_e in course_rates:
            v = OPT_BETA * v + (1 - OPT_BETA) * c * w
            w = w - alpha_e * v
            course.append(w.copy())
        schedule = keras.optimizers.schedules.InverseTimeDecay(np.float64(OPT_ALPHA * (1 - OPT_BETA)), decay_steps=1,
                                                               decay_rate=np.float64(decay_rate), staircase=True)
        opt = keras.optimizers.SGD(learning_rate=schedule, momentum=np.float64(OPT_BETA))
        keras_w = _keras_quadratic(keras, tf, opt, epochs)
    measured["momentum_rel_err_per_step"] = [normwise_rel_err(a, b) for a, b in zip(keras_w, course)]
    p, f = measured["Python floats"], measured["np.float64"]
    m = measured["momentum_rel_err_per_step"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "InverseTimeDecay (keras/src/optimizers/schedules/learning_rate_schedule.py) computes alpha / (1 + "
            "decay_rate floor(step / decay_steps)) in the dtype of ops.convert_to_tensor(initial_learning_rate), "
            "float32 for a Python float even under floatx float64, and casts decay_rate to it (through float32). "
            "And Keras' SGD momentum m = beta m - lr g; w += m folds each step's rate into m, so with a decaying "
            "rate each past gradient keeps its own step's rate, where the course scales the whole v by the current "
            "one (W -= alpha_e v): the same only while the rate is constant."
        ),
        case=(f"update_lr's rates, alpha = {OPT_ALPHA}, decay_rate = {decay_rate}, epochs 0..{epochs - 1} (one step "
              f"an epoch, staircase), floatx float64; momentum beta = {OPT_BETA} on J(w) = 1/2 sum(c w^2), c = "
              f"{OPT_C}, w0 = {OPT_W0}, {epochs} apply_gradients steps vs the course's momentum with the same rates"),
        default_result=(f"Python-float arguments: rates in {p['dtype']}, max relative difference from the course's "
                        f"{fmt(p['max_rel_diff'])}; momentum: relative error per step {_vec(m)}"),
        aligned_result=(f"np.float64 arguments: rates in {f['dtype']}, max relative difference "
                        f"{fmt(f['max_rel_diff'])}; momentum: not alignable through the arguments"),
        effect=(f"rates {fmt(p['max_rel_diff'])} vs {fmt(f['max_rel_diff'])}; momentum {fmt(max(m))} after "
                f"{epochs} steps (0 at step 1, before the rate first changes)"),
        how_aligned=("tf_impl/idiomatic.py learning_rate_schedule: InverseTimeDecay(np.float64(alpha), decay_steps = "
                     "the steps of an epoch (times time_interval for schedule_lr_decay), np.float64(decay_rate), "
                     "staircase=True). Momentum with a decay is the divergence record keras-sgd-momentum-decay "
                     "(nnparity/divergences.py), its aligned reference Keras' form written out (keras_update)."),
        verified_in=(
            "installed keras/src/optimizers/schedules/learning_rate_schedule.py (InverseTimeDecay.__call__: "
            "\"initial_learning_rate = ops.convert_to_tensor(self.initial_learning_rate)\", \"dtype = "
            "initial_learning_rate.dtype\", \"decay_rate = ops.cast(self.decay_rate, dtype)\", \"if self.staircase: "
            "p = ops.floor(p)\"); keras/src/optimizers/base_optimizer.py (_get_current_learning_rate: "
            "\"self._learning_rate(self._iterations)\"); keras/src/optimizers/sgd.py (update_step); "
            "https://keras.io/api/optimizers/learning_rate_schedules/inverse_time_decay/"
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
