"""The catalogue's convolutional entries: each runs, and its measurements show the documented divergence.

Expected values are computed here, independently of the catalogue's code (NumPy formulas on the same seeded
inputs, or the frameworks' own objects read back); an expected divergence is asserted to diverge exactly as
documented, and to vanish once aligned.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math

import numpy as np
import pandas as pd
import pytest

from nnparity import catalogue as cat
from nnparity import impls
from nnparity.convspec import ConvCase, inputs

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
jax = pytest.importorskip("jax")
flax = pytest.importorskip("flax")

CONV_IDS = ["conv-same-padding", "avg-pool-padding", "maxpool-tied-gradient", "flatten-order", "conv-kernel-layout",
            "batchnorm-defaults", "torch-pool-ceil-mode"]
TORCH_CAT = impls.sibling("torch_impl", "catalogue")
POOLS = ("torch F.max_pool2d (autograd)", "tf.nn.max_pool2d (GradientTape)", "jax.lax.reduce_window max (jax.vjp)",
         "flax nn.max_pool (jax.vjp)")
ROUNDING = 1e-13  # float64 results that agree up to summation order


@pytest.fixture(scope="module")
def rows():
    frame = cat.run_catalogue(CONV_IDS)
    return {row["id"]: row for row in frame.to_dict("records")}


@pytest.fixture(scope="module")
def measured(rows):
    return {i: row["measured"] for i, row in rows.items()}


def test_the_conv_entries_are_declared_where_they_belong():
    ids = [e.id for e in cat.ENTRIES]
    assert all(ids.count(i) == 1 for i in CONV_IDS)
    assert "torch-pool-ceil-mode" in [e.id for e in TORCH_CAT.ENTRIES]


def test_every_conv_entry_runs_and_fills_its_record(rows):
    for i in CONV_IDS:
        row = rows[i]
        assert row["status"] == "ok", (i, row["status"])
        for column in ("title", "framework", "framework_version", "what_differs", "case", "default_result",
                       "aligned_result", "effect", "how_aligned", "verified_in"):
            assert isinstance(row[column], str) and row[column], (i, column)
        assert row["measured"], i
        for name in row["framework"].split(", "):
            module = importlib.import_module(name)
            assert f"{module.__name__} {module.__version__}" in row["framework_version"], (i, name)
    records = cat.records(pd.DataFrame(list(rows.values()), columns=cat.COLUMNS))
    assert [r["id"] for r in json.loads(json.dumps(records, allow_nan=False))] == list(rows)


def _np_conv(A_pad, W, b, stride):
    """Cross-correlation of an already padded NHWC batch with an HWIO kernel, written here with sliding windows."""
    f = W.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(A_pad, (f, f), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("mhwcij,ijcd->mhwd", win, W) + b.reshape(1, 1, 1, -1)


# --------------------------------------------------------------------------- 'same' padding


def test_same_padding_puts_the_odd_zero_at_the_end(measured):
    m = measured["conv-same-padding"]
    n = m["n"]
    for label, (f, s) in cat.SAME_CASES.items():
        n_out = math.ceil(n / s)
        total = max((n_out - 1) * s + f - n, 0)
        assert total % 2 == 1, label
        expected = [total // 2, total - total // 2]  # (1, 2) for f = 4, (0, 1) for f = 3, stride 2
        for name, p in m["placement"][label].items():
            if s > 1 and name.startswith("torch"):
                assert "not supported for strided convolutions" in p["error"]
                continue
            assert p == {"rows": expected, "cols": expected}, (label, name)
        c = m["cases"][label]
        assert c["same_shape"][1:3] == [n_out, n_out]
        for name, diff in c["aligned_max_abs_diff"].items():
            assert diff < ROUNDING, (label, name)
    assert m["placement"]["f=4, stride 1"]["tf.nn.conv2d 'SAME'"]["rows"] == [1, 2]
    assert m["placement"]["f=3, stride 2"]["tf.nn.conv2d 'SAME'"]["rows"] == [0, 1]


def test_same_padding_against_the_symmetric_pads(measured):
    m = measured["conv-same-padding"]["cases"]
    f4, f3 = m["f=4, stride 1"]["symmetric"], m["f=3, stride 2"]["symmetric"]
    assert f4["pad=1"]["shape"][1:3] == [7, 7] and f4["pad=2"]["shape"][1:3] == [9, 9]
    assert f4["pad=1"]["tf_max_abs_diff"] < ROUNDING  # the same windows: 'same' adds a row and a column at the end
    assert f3["pad=1"]["shape"][1:3] == [4, 4]  # the same shape, windows shifted by one cell
    # the two differences, recomputed here from the same seeded inputs
    for label, f, s, pad, key in (("f=4, stride 1", 4, 1, 2, f4), ("f=3, stride 2", 3, 2, 1, f3)):
        inp = inputs(ConvCase(n_H_prev=8, n_W_prev=8, f=f, stride=s, pad=1))
        A, W, b = inp["A_prev"], inp["W"], inp["b"]
        lo, hi = ((1, 2) if f == 4 else (0, 1))
        same = _np_conv(np.pad(A, ((0, 0), (lo, hi), (lo, hi), (0, 0))), W, b, s)
        sym = _np_conv(np.pad(A, ((0, 0), (pad, pad), (pad, pad), (0, 0))), W, b, s)
        k = min(same.shape[1], sym.shape[1])
        expected = float(np.abs(same[:, :k, :k] - sym[:, :k, :k]).max())
        assert expected > 0.5
        assert key[f"pad={pad}"]["tf_max_abs_diff"] == pytest.approx(expected, rel=1e-10), label


# --------------------------------------------------------------------------- average pooling with padding


def test_average_pool_padding_counts_differ(measured):
    m = measured["avg-pool-padding"]
    A = inputs(ConvCase())["A_prev"]
    corner = A[0, :2, :2, 0]
    d = m["defaults"]
    for name in ("torch F.avg_pool2d(padding=1)", "flax nn.avg_pool(padding='SAME')"):
        assert d[name]["corner"] == pytest.approx(corner.sum() / 9, rel=1e-12), name  # the padded zeros counted
    for name in ("tf.nn.avg_pool2d('SAME')", "keras AveragePooling2D(padding='same')"):
        assert d[name]["corner"] == pytest.approx(corner.mean(), rel=1e-12), name  # only the real cells
        assert d[name]["max_abs_diff_vs_tf"] == 0
    assert m["course_zero_pad_then_pool_corner"] == pytest.approx(corner.sum() / 9, rel=1e-12)
    for name in ("torch F.avg_pool2d(padding=1)", "flax nn.avg_pool(padding='SAME')"):
        assert d[name]["max_abs_diff_vs_tf"] > 0.1 and d[name]["interior_max_abs_diff_vs_tf"] < ROUNDING
        assert d[name]["max_abs_diff_vs_course_zero_pad"] < ROUNDING
    for name, r in m["aligned"].items():
        assert r["max_abs_diff_vs_tf"] < ROUNDING, name
    from flax import linen as nn

    defaults = {"torch F.avg_pool2d": inspect.signature(torch.nn.AvgPool2d).parameters["count_include_pad"].default,
                "flax nn.avg_pool": inspect.signature(nn.avg_pool).parameters["count_include_pad"].default}
    assert m["count_include_pad_defaults"] == defaults == {"torch F.avg_pool2d": True, "flax nn.avg_pool": True}


# --------------------------------------------------------------------------- ceil_mode


def test_torch_ceil_mode_adds_a_partial_window(measured):
    m = measured["torch-pool-ceil-mode"]
    n, f = m["n"], m["f"]
    assert m["defaults"] == {"ceil_mode": False, "AvgPool2d ceil_mode": False}
    assert m["course_output"] == (n - f) // f + 1 == 2
    for mode in ("max", "average"):
        r = m[mode]
        assert r["floor_shape"][1:3] == [2, 2] and r["ceil_shape"][1:3] == [math.ceil((n - f) / f) + 1] * 2 == [3, 3]
        assert r["floor_vs_course"] < ROUNDING and r["ceil_block_vs_course"] < ROUNDING
        assert r["edge_vs_real_cells"] < ROUNDING and r["corner_vs_real_cell"] < ROUNDING
        assert r["no_extra_window_at_4"][2:] == [2, 2]
    A = inputs(ConvCase())["A_prev"]
    assert m["max"]["edge_window"] == max(A[0, 0, 4, 0], A[0, 1, 4, 0])
    assert m["average"]["edge_divisor"] == pytest.approx(2, rel=1e-12)  # the cells inside, not f f = 4
    # TensorFlow, Keras and flax have no ceil_mode to set
    from flax import linen as nn

    for fn in (tf.nn.max_pool2d, tf.nn.avg_pool2d, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
               nn.max_pool, nn.avg_pool):
        assert "ceil_mode" not in inspect.signature(fn).parameters, fn


# --------------------------------------------------------------------------- max-pool ties


def test_maxpool_ties_route_to_one_cell_in_every_framework(measured):
    m = measured["maxpool-tied-gradient"]
    dA = cat.TIED_DA
    assert m["course"]["zero_window_sum"] == 4 * dA[0] and m["course"]["tie_window_sum"] == 3 * dA[1]
    for name in POOLS:
        r = m[name]
        assert r["zero_window_cells"] == 1 and r["zero_window_sum"] == dA[0], name
        assert r["tie_window_cells"] == 1 and r["tie_window_sum"] == dA[1], name
        assert r["dA_prev"] == [[dA[0], 0.0, dA[1], 0.0], [0.0, 0.0, 0.0, 0.0]], name  # the first, row-major


def test_maxpool_ties_on_relu_input(measured):
    r = measured["maxpool-tied-gradient"]["relu_case"]
    X = np.maximum(inputs(ConvCase(n_H_prev=8, n_W_prev=8))["A_prev"], 0)
    dX = np.random.RandomState(1).randn(2, 4, 4, 3)
    win = X.reshape(2, 4, 2, 4, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 4, 4, 3, 4)
    ties = (win == win.max(axis=-1, keepdims=True)).sum(axis=-1)
    assert r["tied_windows"] == int((ties > 1).sum()) > 0
    assert r["all_zero_windows"] == int((win.max(axis=-1) == 0).sum())
    assert r["course_total"] == pytest.approx(float((dX * ties).sum()), rel=1e-12)  # every tied cell gets dA
    for name in POOLS:
        assert r[name]["total"] == pytest.approx(float(dX.sum()), rel=1e-12), name  # one cell per window
        assert r[name]["nonzero_cells"] == dX.size, name
        assert r[name]["max_abs_diff"] > 0.1, name
    assert r["course_nonzero_cells"] == int(ties.sum())
    assert r["aligned"] == {"torch": 0.0, "tensorflow": 0.0, "jax": 0.0}


# --------------------------------------------------------------------------- flatten order and kernel layout


def test_flatten_order_needs_the_permutation(measured):
    m = measured["flatten-order"]
    n_H, n_W, n_C = m["features_shape_nhwc"][1:]
    perm = [h * n_W * n_C + w * n_C + c for c in range(n_C) for h in range(n_H) for w in range(n_W)]
    assert m["perm_first"] == perm[:12]
    assert all(m["flatten_matches"].values())
    assert m["torch_naive_max_abs_diff"] > 0.1
    assert m["torch_permuted_max_abs_diff"] < ROUNDING and m["keras_max_abs_diff"] < ROUNDING


def test_kernel_layout_and_no_flip(measured):
    m = measured["conv-kernel-layout"]
    assert m["torch_weight_shape"] == list(torch.nn.Conv2d(3, 4, 3).weight.shape) == [4, 3, 3, 3]
    layer = keras.layers.Conv2D(4, 3)
    layer.build((None, 7, 7, 3))
    assert m["keras_kernel_shape"] == list(layer.kernel.shape) == m["W_shape"] == [3, 3, 3, 4]
    r = m["runs"]
    assert r["torch weight = W.reshape(n_C, n_C_prev, f, f) (naive)"]["Z_rel_err"] > 0.1
    for name in ("torch weight = W.transpose(3, 2, 0, 1)", "keras Conv2D kernel = W", "tf.nn.conv2d(filters=W)",
                 "jax.lax.conv_general_dilated(HWIO, W)"):
        assert r[name]["Z_rel_err"] < ROUNDING, name
    flip = r["torch weight = flipped W, transposed (a true convolution)"]["Z_rel_err"]
    assert flip > 0.1  # a flipping framework would show here
    assert flip == pytest.approx(r["reference conv_forward with the flipped W"]["Z_rel_err"], rel=1e-10)


# --------------------------------------------------------------------------- batch normalisation


def test_batchnorm_defaults_and_running_statistics(measured):
    from flax import linen as nn

    m = measured["batchnorm-defaults"]
    x = np.random.RandomState(cat.BN_SEED).randn(*cat.BN_SHAPE) * 2 + 1
    n = x.size // x.shape[-1]
    mu, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    d = m["defaults"]
    t, k, f = d["torch nn.BatchNorm2d()"], d["keras BatchNormalization()"], d["flax nn.BatchNorm()"]
    bn = torch.nn.BatchNorm2d(2)
    kb = keras.layers.BatchNormalization()
    fb = nn.BatchNorm()
    assert (t["momentum"], t["eps"]) == (bn.momentum, bn.eps) == (0.1, 1e-5)
    assert (k["momentum"], k["eps"]) == (kb.momentum, kb.epsilon) == (0.99, 1e-3)
    assert (f["momentum"], f["eps"]) == (fb.momentum, fb.epsilon) == (0.99, 1e-5)
    # torch: 0.1 of the new batch, unbiased variance; Keras: 0.99 of the old value, biased variance
    assert t["running_mean"] == pytest.approx((0.1 * mu).tolist(), rel=1e-12)
    assert t["running_var"] == pytest.approx((0.9 + 0.1 * var * n / (n - 1)).tolist(), rel=1e-12)
    assert t["running_var"] != pytest.approx((0.9 + 0.1 * var).tolist(), rel=1e-6)
    assert k["running_mean"] == pytest.approx((0.01 * mu).tolist(), rel=1e-12)
    assert k["running_var"] == pytest.approx((0.99 + 0.01 * var).tolist(), rel=1e-14)
    # flax: Keras' form, but its float32 reductions leave float32 rounding in a float64 running variance
    assert 1e-12 < f["running_var_vs_course"] < 1e-6
    for r in (t, k, f):
        assert r["train_out_vs_biased"] < ROUNDING  # every framework normalises the batch with the biased variance
    # the inference outputs' differences, recomputed from the running statistics
    rt, rk = np.array(t["running_var"]), np.array(k["running_var"])
    out_t = (x - np.array(t["running_mean"])) / np.sqrt(rt + 1e-5)
    out_k = (x - np.array(k["running_mean"])) / np.sqrt(rk + 1e-3)
    assert d["inference_max_abs_diff"]["torch vs keras"] == pytest.approx(float(np.abs(out_t - out_k).max()),
                                                                           rel=1e-9)
    assert d["inference_max_abs_diff"]["torch vs keras"] > 0.1 and d["inference_max_abs_diff"]["keras vs flax"] > 1e-4
    # aligned: no difference left
    a = m["aligned"]
    assert all(v < ROUNDING for v in a["inference_max_abs_diff"].values()), a["inference_max_abs_diff"]
    for name, r in a.items():
        if name != "inference_max_abs_diff":
            assert r["running_var_vs_course"] < ROUNDING and r["running_mean_vs_course"] < ROUNDING, name
