"""nnparity.catalogue: every entry runs, and its measurements show the documented difference.

Expected values are computed here, independently of the catalogue's code (NumPy formulas,
or the frameworks' own objects read back); nothing the catalogue produced is hard-coded.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest

from nnparity import catalogue as cat
from nnparity import impls
from nnparity.tolerances import FLOAT64_NORMWISE

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

#: One xdist worker runs this module: the catalogue runs once (its module fixture), not once per xdist worker.
pytestmark = pytest.mark.xdist_group("test_catalogue")


IDS = [e.id for e in cat.ENTRIES]
JAX_CAT = impls.sibling("jax_impl", "catalogue")  # JAX's, flax's and optax's entries, beside jax_impl's code


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return cat.run_catalogue()


@pytest.fixture(scope="module")
def measured(catalogue):
    return {row.id: row.measured for row in catalogue.itertuples()}


def test_every_entry_runs_and_fills_its_record(catalogue):
    assert list(catalogue.columns) == cat.COLUMNS
    assert list(catalogue["id"]) == IDS and len(IDS) >= 8
    for row in catalogue.to_dict("records"):
        if not all(importlib.util.find_spec(name) for name in row["framework"].split(", ")):
            assert row["status"].startswith("unavailable: cannot import"), (row["id"], row["status"])
            continue
        assert row["status"] == "ok", (row["id"], row["status"])
        for column in ("title", "framework", "framework_version", "what_differs", "case", "default_result",
                       "aligned_result", "effect", "how_aligned", "verified_in"):
            assert isinstance(row[column], str) and row[column], (row["id"], column)
        assert row["measured"], row["id"]
        # the versions recorded are the installed ones
        for name in row["framework"].split(", "):
            module = importlib.import_module(name)
            assert f"{module.__name__} {module.__version__}" in row["framework_version"], row["id"]



def test_records_are_strict_json(catalogue):
    rows = cat.records(catalogue)
    text = json.dumps(rows, allow_nan=False)
    assert json.loads(text)[0]["id"] == IDS[0]
    back = cat.csv_frame(catalogue)
    assert all(isinstance(json.loads(v), dict) for v in back["measured"])


# --------------------------------------------------------------------------- saturated cross-entropy


def _notes_cost(AL, Y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.mean(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))


def test_saturated_cross_entropy_keras_clips(measured):
    m = measured["bce-saturated-keras"]
    eps = keras.config.epsilon()
    assert m["epsilon"] == eps
    AL, Y = np.array(cat.SATURATED_AL), np.array(cat.SATURATED_Y)
    assert math.isinf(_notes_cost(AL, Y))
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-6)):
        r = m[dtype]
        a = np.clip(AL.astype(dtype), np.asarray(eps, dtype), np.asarray(1 - eps, dtype))
        expected = float(np.mean(-(Y * np.log(a) + (1 - Y) * np.log(np.asarray(1, dtype) - a))))
        assert math.isfinite(r["keras_typed_cost"])
        assert r["keras_typed_cost"] == pytest.approx(expected, rel=rtol)
        assert math.isinf(r["notes_cost"]) and math.isinf(r["aligned_cost"])
        assert r["keras_grad"][0] == 0  # the clip passes no gradient
        assert r["keras_grad"][1] == pytest.approx(-1 / (0.3 * 2), rel=1e-6)
        assert math.isinf(r["aligned_grad"][0]) and math.isinf(r["notes_grad"][0])
    # the float64 case: -log(1e-7)-ish for the saturated example, (16.1 + 1.2) / 2
    assert measured["bce-saturated-keras"]["float64"]["keras_typed_cost"] == pytest.approx(
        (-math.log(eps) - math.log(0.3)) / 2, rel=1e-8)
    # the default loss object computes in floatx, even for float64 input
    assert m["loss_object_dtype"] == keras.config.floatx() == m["float64"]["keras_cost_dtype"]


def test_saturated_cross_entropy_keras_model_uses_the_logits(measured):
    m = measured["bce-saturated-keras"]["in_model"]
    z = np.array([40.0, math.log(0.3 / 0.7)])
    y = np.array(cat.SATURATED_Y[0])
    a = 1 / (1 + np.exp(-z))
    assert a[0] == 1.0  # saturated in float64
    assert m["AL"] == pytest.approx(a.tolist(), rel=1e-15) and m["AL"][0] == 1.0
    assert m["has_keras_logits"] is True
    # sigmoid_cross_entropy_with_logits of Z, no clip: mean(log(1 + e^z) - y z)
    exact = float(np.mean(np.logaddexp(0.0, z) - y * z))
    assert m["model_cost"] == pytest.approx(exact, rel=1e-14) and m["layers_cost"] == pytest.approx(exact, rel=1e-14)
    assert m["dJ_dZ"] == pytest.approx(((a - y) / 2).tolist(), rel=1e-14)  # (AL - Y) / m: 0.5 at the saturated one
    assert m["dW"] == pytest.approx(float(np.mean(z * (a - y))), rel=1e-14)  # x = z, w = 1
    assert m["db"] == pytest.approx(float(np.mean(a - y)), rel=1e-14)
    # the same probabilities as a bare tensor: clipped to [eps, 1 - eps], no gradient where clipped
    eps = keras.config.epsilon()
    clipped = np.clip(a, eps, 1 - eps)
    expected_bare = float(np.mean(-(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))))
    assert m["bare_cost"] == pytest.approx(expected_bare, rel=1e-12)
    assert m["bare_dJ_dAL"][0] == 0
    assert m["model_cost"] > 2 * m["bare_cost"]


def test_saturated_cross_entropy_torch_clamps_log_at_minus_100(measured):
    m = measured["bce-saturated-torch"]
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-6)):
        r = m[dtype]
        # the saturated example's log term is clamped at -100: it contributes 100 * 1 / m
        assert r["torch_cost"] == pytest.approx((100 - math.log(0.3)) / 2, rel=rtol)
        # backward: (a - y) / max(a (1 - a), 1e-12) / m
        assert r["torch_grad"][0] == pytest.approx(1 / 1e-12 / 2, rel=1e-6)
        assert math.isinf(r["notes_cost"]) and math.isinf(r["aligned_cost"])
        assert math.isinf(r["aligned_grad"][0])


# --------------------------------------------------------------------------- leaky ReLU


def test_leaky_relu_default_slopes_read_back_from_the_frameworks(measured):
    m = measured["leaky-relu-default-slope"]
    torch_slope = torch.nn.LeakyReLU().negative_slope
    keras_slope = keras.layers.LeakyReLU().negative_slope
    tf_slope = float(-tf.nn.leaky_relu(tf.constant(-1.0)).numpy())
    assert torch_slope == 0.01 and keras_slope == 0.3
    assert tf_slope == pytest.approx(0.2, rel=2.0**-23)
    assert m["torch F.leaky_relu"]["slope"] == torch_slope
    assert m["keras LeakyReLU()"]["slope"] == keras_slope
    assert m["tf.nn.leaky_relu"]["slope"] == pytest.approx(tf_slope, rel=2.0**-23)
    # the notes' slope 0.01 is torch's default: no difference; tf's and Keras' defaults change A1
    assert m["torch F.leaky_relu"]["A1_rel_err"] == 0
    assert m["tf.nn.leaky_relu"]["A1_rel_err"] > 0.01 and m["keras LeakyReLU()"]["A1_rel_err"] > 0.01
    assert m["torch_impl"]["A1_rel_err"] == 0 and m["tf_impl"]["A1_rel_err"] == 0


def test_tf_leaky_relu_alpha_is_rounded_to_float32_in_float64(measured):
    m = measured["tf-leaky-relu-float32-alpha"]
    assert m["slope_readback"] == float(np.float32(0.01)) != 0.01
    d = m["tf.nn.leaky_relu(alpha=0.01)"]
    expected = abs(float(np.float32(0.01)) - 0.01) / 0.01
    assert 1e-9 < d["max_elementwise_rel_diff"] < 1e-7
    assert d["max_elementwise_rel_diff"] == pytest.approx(expected, rel=1e-6)
    assert d["A1_rel_err"] > FLOAT64_NORMWISE and d["A1_bound_ratio"] > 1
    assert m["keras LeakyReLU(0.01, dtype=float64)"]["max_elementwise_rel_diff"] == pytest.approx(expected, rel=1e-6)
    aligned = m["tf_impl (tf.where)"]
    assert aligned["A1_rel_err"] <= FLOAT64_NORMWISE and aligned["A1_bound_ratio"] <= 1
    if m["op_attr_alpha"] is not None:
        assert m["op_attr_alpha"]["type"] == "float"
        assert m["op_attr_alpha"]["default"] == pytest.approx(0.2, rel=2.0**-23)


# --------------------------------------------------------------------------- layout, dtype, reduction


def test_forgotten_transpose_is_caught_by_the_bound_ratio(measured):
    m = measured["weight-layout"]
    assert m["shapes"]["torch nn.Linear(3, 2).weight"] == list(torch.nn.Linear(3, 2).weight.shape) == [2, 3]
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    assert m["shapes"]["keras Dense(2) built on 3 inputs, kernel"] == list(dense.kernel.shape) == [3, 2]
    assert m["keras kernel = W1 (transpose forgotten)"]["A1_bound_ratio"] > 1
    assert m["torch weight = W1.T (transposed as for Keras)"]["A1_bound_ratio"] > 1
    assert m["keras kernel = W1.T"]["A1_bound_ratio"] <= 1
    assert m["torch weight = W1"]["A1_bound_ratio"] <= 1


def test_silent_float32_is_off_at_float32_level(measured):
    m = measured["default-dtype"]
    r = m["readback"]
    assert r["torch.tensor([0.1]).dtype"] == str(torch.tensor([0.1]).dtype) == "torch.float32"
    assert r["torch.tensor(np.array([0.1])).dtype"] == "torch.float64"
    assert r["torch nn.Linear(2, 4).weight.dtype"] == "torch.float32"
    assert r["keras.config.floatx()"] == keras.config.floatx() == "float32"
    assert m["torch_default_dtype"] == "float32" and m["steps"] == 100
    u32, u64 = 2.0**-24, 2.0**-53
    assert u32 < m["default_trajectory_rel_err"] < 1e-4  # float32 rounding, not float64's
    assert m["aligned_trajectory_rel_err"] < 1e3 * u64


def test_sum_reduction_scales_the_gradient_by_m(measured):
    m = measured["loss-reduction"]
    from nnparity.data import load_data

    assert m["m"] == load_data("planar").X.shape[1]
    assert m["torch_default_reduction"] == torch.nn.BCELoss().reduction == "mean"
    assert m["keras_default_reduction"] == keras.losses.BinaryCrossentropy().reduction == "sum_over_batch_size"
    assert m["keras_has_Reduction_enum"] is hasattr(keras.losses, "Reduction")
    for ratio in m["torch_ratio"] + m["keras_ratio"]:
        assert ratio == pytest.approx(m["m"], rel=1e-12)
    assert m["torch_mean_rel_err"] <= FLOAT64_NORMWISE and m["keras_mean_rel_err"] <= FLOAT64_NORMWISE


def test_keras_sgd_learning_rate_is_float32(measured):
    m = measured["keras-sgd-learning-rate-float32"]
    assert m["lr_variable_dtype"] == keras.config.floatx()
    assert m["lr_value"] == float(np.float32(m["learning_rate"]))
    assert 1e-9 < m["lr_rel_diff"] < 1e-7
    assert m["default_trajectory_rel_err"] > m["tolerance"] > m["aligned_trajectory_rel_err"]


def test_bce_on_probabilities_vs_logits(measured):
    m = measured["bce-vs-logits"]
    for dtype in ("float64", "float32"):
        r = m[dtype]
        z = np.array([[40.0, 5.0]])
        y = np.array([[0.0, 1.0]])
        exact = float(np.mean(np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))))
        assert r["exact"] == pytest.approx(exact, rel=1e-14)
        assert r["sigmoid_of_first"] == 1.0
        assert r["bce"] == pytest.approx((100 + math.log1p(math.exp(-5.0))) / 2, rel=1e-6)
        assert r["bce_with_logits"] == pytest.approx(exact, rel=1e-6)
        assert r["notes"] == math.inf


# --------------------------------------------------------------------------- optimisers and dropout


def _quadratic_momentum(steps, lr_v, beta, first_buffer_is_gradient=False):
    """The course's momentum on J = 1/2 sum(c w^2), written out here: v = beta v + (1 - beta) g; w -= lr v."""
    w, c, v = np.array(cat.OPT_W0), np.array(cat.OPT_C), np.zeros(2)
    out = []
    for t in range(steps):
        g = c * w
        v = g.copy() if (first_buffer_is_gradient and t == 0) else beta * v + (1 - beta) * g
        w = w - lr_v * v
        out.append(w)
    return out


def test_torch_sgd_momentum_first_step_is_undampened(measured):
    m = measured["torch-sgd-momentum-first-step"]
    beta, alpha = cat.OPT_BETA, cat.OPT_ALPHA
    assert m["default"]["step1_ratio"] == pytest.approx([1 / (1 - beta)] * 2, rel=1e-12)
    torch_like = _quadratic_momentum(3, alpha, beta, first_buffer_is_gradient=True)
    course = _quadratic_momentum(3, alpha, beta)
    assert m["default"]["w1"] == pytest.approx(torch_like[0].tolist(), rel=1e-15)
    assert m["course_w1"] == pytest.approx(course[0].tolist(), rel=1e-15)
    expected = [float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(torch_like, course)]
    assert m["default"]["rel_err_per_step"] == pytest.approx(expected, rel=1e-10)
    assert m["aligned"]["step1_ratio"] == pytest.approx([1.0, 1.0], rel=1e-14)
    assert max(m["aligned"]["rel_err_per_step"]) < 1e-15


def test_keras_sgd_momentum_needs_lr_alpha_one_minus_beta(measured):
    m = measured["keras-sgd-momentum-form"]
    beta, alpha, steps = cat.OPT_BETA, cat.OPT_ALPHA, m["steps"]
    course = _quadratic_momentum(steps, alpha, beta)
    # Keras with lr = alpha: m = beta m - alpha g; w += m  ==  the course with alpha / (1 - beta)
    naive = _quadratic_momentum(steps, alpha / (1 - beta), beta)
    n = m["naive lr = alpha"]
    assert n["step1_ratio"] == pytest.approx([1 / (1 - beta)] * 2, rel=1e-12)
    assert n["final"] == pytest.approx(naive[-1].tolist(), rel=1e-12)
    assert n["rel_err_per_step"][-1] == pytest.approx(
        float(np.abs(naive[-1] - course[-1]).max() / np.abs(course[-1]).max()), rel=1e-10)
    assert n["rel_err_per_step"][-1] > 0.5
    assert max(m["aligned lr = alpha (1 - beta)"]["rel_err_per_step"]) < 1e-14


def test_keras_casts_python_float_hyperparameters_through_float32(measured):
    m = measured["keras-float32-hyperparameter-cast"]
    r = m["readback"]
    assert r["ops.cast(0.9, 'float64')"] == float(np.float32(0.9)) == 0.8999999761581421
    assert r["ops.cast(np.float64(0.9), 'float64')"] == 0.9
    assert m["beta_rel_change"] == pytest.approx(abs(float(np.float32(0.9)) - 0.9) / 0.9, rel=1e-12)
    # the course with float32(beta) in the velocity, written out here, vs the course: the same order of difference
    steps = m["steps"]
    course = _quadratic_momentum(steps, cat.OPT_ALPHA, cat.OPT_BETA)
    w, c, v = np.array(cat.OPT_W0), np.array(cat.OPT_C), np.zeros(2)
    b32 = float(np.float32(cat.OPT_BETA))
    for _ in range(steps):
        v = b32 * v - cat.OPT_ALPHA * (1 - cat.OPT_BETA) * (c * w)  # Keras' m with the rounded momentum
        w = w + v
    expected = float(np.abs(w - course[-1]).max() / np.abs(course[-1]).max())
    got = m["momentum=0.9 (Python float)"]["rel_err_per_step"][-1]
    assert got == pytest.approx(expected, rel=1e-3)
    assert got > 1e-10  # above the float64 trajectory tolerance
    assert max(m["momentum=np.float64(0.9)"]["rel_err_per_step"]) < 1e-14
    # Adam casts its betas the same way; RMSprop's rho / epsilon and Adam's epsilon are used uncast
    others = m["others_python_vs_float64"]
    assert others["Adam(beta_1, beta_2)"] > 1e-10
    assert others["Adam(epsilon)"] < 1e-15 and others["RMSprop(rho, epsilon)"] < 1e-15


def test_keras_rmsprop_epsilon_inside_the_sqrt(measured):
    m = measured["keras-rmsprop-epsilon"]
    alpha, rho = m["alpha"], m["rho"]
    for key, r in m["cases"].items():
        g, eps = r["g"], r["eps"]
        s = (1 - rho) * g * g
        assert r["course_step"] == pytest.approx(alpha * g / (math.sqrt(s) + eps), rel=1e-14)
        assert r["keras_step"] == pytest.approx(alpha * g / math.sqrt(s + eps), rel=1e-12), key
        assert r["torch_rel_diff"] < 1e-14
    small = m["cases"]["g=0.0001, eps=1e-08"]
    assert small["keras_rel_diff"] == pytest.approx(1 - (math.sqrt(1e-9) + 1e-8) / math.sqrt(1e-9 + 1e-8), rel=1e-8)
    assert small["keras_rel_diff"] > 0.5 and m["cases"]["g=1, eps=1e-08"]["keras_rel_diff"] < 1e-7


def test_keras_adam_epsilon_on_the_uncorrected_sqrt(measured):
    m = measured["keras-adam-epsilon"]
    alpha, b1, b2 = m["alpha"], m["beta1"], m["beta2"]
    for key, r in m["cases"].items():
        g, eps = r["g"], r["eps"]
        assert r["course_step"] == pytest.approx(alpha * g / (abs(g) + eps), rel=1e-14)
        # alpha_t m / (sqrt(v) + eps) with alpha_t = lr sqrt(1 - b2) / (1 - b1), m = (1 - b1) g, v = (1 - b2) g^2
        keras_expected = alpha * math.sqrt(1 - b2) / (1 - b1) * (1 - b1) * g / (math.sqrt((1 - b2) * g * g) + eps)
        assert r["keras_step"] == pytest.approx(keras_expected, rel=1e-12), key
        assert r["torch_rel_diff"] < 1e-14
    assert 1e-3 < m["cases"]["g=0.0001, eps=1e-08"]["keras_rel_diff"] < 1e-2


def test_torch_weight_decay_on_all_parameters_decays_the_bias(measured):
    m = measured["torch-weight-decay-biases"]
    extra = m["lambd"] / m["m"] * m["b"]
    assert m["default"]["db_diff"] == pytest.approx(extra, rel=1e-8)
    assert m["default"]["db_rel_err"] == pytest.approx(abs(extra / m["course_db"]), rel=1e-8)
    assert m["default"]["dW_rel_err"] < 1e-13
    assert m["aligned"]["db_rel_err"] < 1e-13 and m["aligned"]["dW_rel_err"] < 1e-13


def test_framework_dropout_draws_its_own_masks(measured):
    m = measured["framework-dropout-masks"]
    keep = m["keep_prob"]
    n = m["shape"][0] * m["shape"][1]
    sd = math.sqrt(keep * (1 - keep) / n)
    for name in ("torch", "keras"):
        r = m[name]
        assert abs(r["kept_fraction"] - keep) < 5 * sd, name
        assert r["kept_values"] == [1 / keep], name  # inverted dropout: kept entries scaled by 1/keep_prob
        # independent masks disagree with probability 2 keep (1 - keep)
        assert abs(r["mask_mismatch_fraction"] - 2 * keep * (1 - keep)) < 0.05, name
    D = np.random.RandomState(3).rand(*m["shape"][::-1]) < keep
    assert m["reference_kept_fraction"] == float(D.mean())
    assert m["aligned"]["mask_mismatch_fraction"] == 0 and m["aligned"]["kept_values"] == [1 / keep]
    assert m["torch_eval_identity"] and m["keras_eval_identity"]
    # the framework objects agree: torch's scale and Keras' layer read back
    t = torch.nn.Dropout(p=1 - keep)
    assert t.p == pytest.approx(1 - keep)
    assert keras.layers.Dropout(rate=1 - keep).rate == pytest.approx(1 - keep)


# --------------------------------------------------------------------------- JAX, flax and optax


def _planar_network(layer_dims):
    """The planar data and the reference's initial parameters (inv-sqrt, seed 1, float64), read here."""
    from nnparity.data import load_data
    from reference.initializers import initialize_parameters

    dataset = load_data("planar")
    return dataset.X, dataset.Y, initialize_parameters(layer_dims)


def _sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def test_jax_without_x64_computes_float64_in_float32(measured):
    jax = pytest.importorskip("jax")
    from nnparity.tolerances import FLOAT64_TRAJECTORY

    m = measured["jax-x64"]
    d, a = m["default"], m["aligned"]
    assert m["case"] == JAX_CAT.X64_CASE and m["steps"] == 1000
    assert d["jax_enable_x64"] is False and a["jax_enable_x64"] is True
    assert d["dtype"] == "float32" and a["dtype"] == "float64"
    assert any("will be truncated to dtype float32" in w for w in d["warnings"]) and a["warnings"] == []
    assert jax.config.jax_enable_x64  # the entry leaves x64 as jax_impl set it
    for q in JAX_CAT.X64_QUANTITIES:
        assert FLOAT64_NORMWISE < d["rel_err"][q] < 1e-5, q  # float32 rounding, not float64's
        assert a["rel_err"][q] <= FLOAT64_NORMWISE, q
    assert FLOAT64_TRAJECTORY < d["trajectory_rel_err"] < 1e-5 and a["trajectory_rel_err"] <= FLOAT64_TRAJECTORY
    # the same forward pass written out in NumPy float32: the same order of error as the x64-off run
    X, _, P = _planar_network((2, 4, 1))
    Z1 = P["W1"] @ X + P["b1"]
    Z1_32 = P["W1"].astype(np.float32) @ X.astype(np.float32) + P["b1"].astype(np.float32)
    for name, exact, single in (("Z1", Z1, Z1_32), ("A1", np.tanh(Z1), np.tanh(Z1_32))):
        numpy_err = np.abs(single - exact).max() / np.abs(exact).max()
        assert numpy_err / 10 < d["rel_err"][name] < 10 * numpy_err, name


def test_optax_rmsprop_epsilon_inside_the_sqrt_by_default(measured):
    pytest.importorskip("optax")
    m = measured["optax-rmsprop-epsilon"]
    alpha, rho = m["alpha"], m["rho"]
    for key, r in m["cases"].items():
        g, eps = r["g"], r["eps"]
        s = (1 - rho) * g * g
        assert r["course_step"] == pytest.approx(alpha * g / (math.sqrt(s) + eps), rel=1e-14)
        assert r["default_step"] == pytest.approx(alpha * g / math.sqrt(s + eps), rel=1e-12), key
        assert r["aligned_rel_diff"] < 1e-15, key
    small = m["cases"]["g=0.0001, eps=1e-08"]
    assert small["default_rel_diff"] == pytest.approx(1 - (math.sqrt(1e-9) + 1e-8) / math.sqrt(1e-9 + 1e-8), rel=1e-8)
    assert small["default_rel_diff"] > 0.5 and m["cases"]["g=1, eps=1e-08"]["default_rel_diff"] < 1e-7


def test_optax_sgd_momentum_needs_lr_alpha_one_minus_beta(measured):
    pytest.importorskip("optax")
    m = measured["optax-sgd-momentum-form"]
    beta, alpha, steps = cat.OPT_BETA, cat.OPT_ALPHA, m["steps"]
    course = _quadratic_momentum(steps, alpha, beta)
    # optax with lr = alpha: v = g + beta v; w -= alpha v  ==  the course with alpha / (1 - beta)
    naive = _quadratic_momentum(steps, alpha / (1 - beta), beta)
    n = m["naive lr = alpha"]
    assert n["step1_ratio"] == pytest.approx([1 / (1 - beta)] * 2, rel=1e-12)
    assert n["final"] == pytest.approx(naive[-1].tolist(), rel=1e-12)
    assert n["rel_err_per_step"][-1] == pytest.approx(
        float(np.abs(naive[-1] - course[-1]).max() / np.abs(course[-1]).max()), rel=1e-10)
    assert n["rel_err_per_step"][-1] > 0.5
    assert max(m["aligned lr = alpha (1 - beta)"]["rel_err_per_step"]) < 1e-14


def test_optax_adam_adds_epsilon_where_the_course_does(measured):
    pytest.importorskip("optax")
    m = measured["optax-adam"]
    alpha, b1, b2 = m["alpha"], m["beta1"], m["beta2"]
    for key, r in m["cases"].items():
        g, eps = r["g"], r["eps"]
        assert r["course_step"] == pytest.approx(alpha * g / (abs(g) + eps), rel=1e-14)
        assert r["optax_step"] == pytest.approx(alpha * g / (abs(g) + eps), rel=1e-14), key
        assert r["rel_diff"] < 1e-14
    assert len(m["trajectory_rel_err_per_step"]) == m["steps"] == 10
    assert max(m["trajectory_rel_err_per_step"]) < 1e-14
    # the check can fail: eps on the uncorrected sqrt(v) (Keras' placement) moves this trajectory far more
    eps, c = m["trajectory_eps"], np.array(cat.OPT_C)
    w_course, w_keras = np.array(cat.OPT_W0), np.array(cat.OPT_W0)
    state = {"course": [np.zeros(2), np.zeros(2)], "keras": [np.zeros(2), np.zeros(2)]}
    for t in range(1, m["steps"] + 1):
        for name in state:
            w = w_course if name == "course" else w_keras
            v, s = state[name]
            g = c * w
            v, s = b1 * v + (1 - b1) * g, b2 * s + (1 - b2) * g * g
            state[name] = [v, s]
            if name == "course":
                w_course = w - alpha * (v / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
            else:
                w_keras = w - alpha * math.sqrt(1 - b2**t) / (1 - b1**t) * v / (np.sqrt(s) + eps)
    assert np.abs(w_keras - w_course).max() / np.abs(w_course).max() > 1e-3


def test_optax_weight_decay_decays_the_bias_unless_masked(measured):
    pytest.importorskip("optax")
    m = measured["optax-weight-decay"]
    X, Y, P = _planar_network((2, 1))
    AL = _sigmoid(P["W1"] @ X + m["b"])
    course_db = float(np.mean(AL - Y))  # the cross-entropy's db, written out: L2 adds nothing to it
    assert m["m"] == X.shape[1] and m["course_db"] == pytest.approx(course_db, rel=1e-12)
    extra = m["lambd"] / m["m"] * m["b"]
    d = m["add_decayed_weights"]
    assert d["db_diff"] == pytest.approx(extra, rel=1e-8)
    assert d["db_rel_err"] == pytest.approx(abs(extra / course_db), rel=1e-8)
    assert d["dW_rel_err"] < 1e-13
    for aligned in ("masked", "l2 cost term"):
        assert m[aligned]["db_rel_err"] < 1e-13 and m[aligned]["dW_rel_err"] < 1e-13, aligned
    # adamw: the decoupled decay moves the bias lr * weight_decay * b further than adam
    assert m["adamw_bias_extra"] == pytest.approx(m["alpha"] * m["lambd"] / m["m"] * m["b"], rel=1e-8)


def test_jax_leaky_relu_derivative_at_zero_is_one(measured):
    pytest.importorskip("jax")
    m = measured["jax-leaky-relu-kink"]
    slope = m["slope"]
    assert m["derivative_at_0"] == {"jax.nn.leaky_relu": 1.0, "jax_impl": slope}
    X, Y, P = _planar_network((2, 4, 1))
    X = X.copy()
    X[:, :JAX_CAT.KINK_ZERO_COLUMNS] = 0.0
    Z1 = P["W1"] @ X + P["b1"]
    assert m["zero_entries"] == int((Z1 == 0).sum()) == 4 * JAX_CAT.KINK_ZERO_COLUMNS
    A1 = np.where(Z1 > 0, Z1, slope * Z1)
    dA1 = P["W2"].T @ (_sigmoid(P["W2"] @ A1 + P["b2"]) - Y)  # per example
    for name, positive in (("jax.nn.leaky_relu", Z1 >= 0), ("jax_impl (jnp.where(Z > 0, ...))", Z1 > 0)):
        db1 = np.mean(np.where(positive, dA1, slope * dA1), axis=1)
        assert m[name]["db1"] == pytest.approx(db1.tolist(), rel=1e-12), name
    assert m["jax.nn.leaky_relu"]["dZ1_at_0_over_reference"] == pytest.approx(1 / slope, rel=1e-12)
    assert m["jax.nn.leaky_relu"]["db1_rel_err"] > 1e-3
    assert m["jax_impl (jnp.where(Z > 0, ...))"]["dZ1_rel_err"] <= FLOAT64_NORMWISE
    assert m["jax_impl (jnp.where(Z > 0, ...))"]["db1_rel_err"] <= FLOAT64_NORMWISE


# --------------------------------------------------------------------------- without a framework


def test_an_entry_whose_framework_does_not_import_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    frame = cat.run_catalogue(["bce-saturated-torch"])
    row = frame.iloc[0]
    assert row["status"].startswith("unavailable: cannot import torch"), row["status"]
    assert row["effect"].startswith("not measured") and row["measured"] == {}


@pytest.mark.parametrize("module, entry", [("jax", "jax-leaky-relu-kink"), ("optax", "optax-adam")])
def test_a_jax_entry_whose_framework_does_not_import_says_so(monkeypatch, module, entry):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    row = cat.run_catalogue([entry]).iloc[0]
    assert row["status"].startswith(f"unavailable: cannot import {module}"), row["status"]
    assert row["effect"].startswith("not measured") and row["measured"] == {}


def test_cli_catalogue_json_and_text(capsys, monkeypatch, catalogue):
    from nnparity.cli import main

    monkeypatch.setattr(cat, "run_catalogue", lambda: catalogue)  # the catalogue has run once already
    assert main(["catalogue"]) == 0
    text = capsys.readouterr().out
    for i, row in enumerate(catalogue.itertuples(), start=1):
        assert f"[{i}] {row.id}: {row.title}" in text
    assert main(["catalogue", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == IDS and all(r["status"] == "ok" for r in rows)


def test_report_section_and_csv(tmp_path, catalogue):
    from nnparity.harness import COLUMNS
    from reports.build import write_report

    details = pd.DataFrame([dict(case="c", impl="torch", dtype="float64", phase="forward", quantity="A", layer=1,
                                 step=0, max_abs_err=0.0, max_rel_err=0.0, bound_ratio=0.0, tol=1.0,
                                 criterion="bound_ratio", passed=True, note="", max_ulp=0.0,
                                 classification="identical")], columns=COLUMNS)
    out = write_report(details, tmp_path / "r", {"command": "test"}, catalogue=catalogue)
    text = (out / "report.md").read_text()
    assert "## Where the frameworks differ from the math" in text
    for row in catalogue.itertuples():
        assert row.title in text and row.effect in text and row.framework_version in text
    back = pd.read_csv(out / "catalogue.csv")
    assert list(back["id"]) == IDS
