"""The course's conv layers: the loops (``reference.conv``), their vectorised twin and the derived bounds.

* the loops and ``reference.conv_vectorised`` agree on every ``conv_grid()`` case within the derived rounding
  bound (``nnparity.tolerances.conv_bounds``, bound ratio <= 1) and, in float64, to 1e-13 norm-wise;
* the loops' backward matches centred finite differences of their forward (float64);
* the course's definitions hold on values written out here by hand (both modules);
* the bounds have power: PyTorch's ``conv2d`` / ``max_pool2d`` / ``avg_pool2d`` and autograd pass every quantity
  within them, and the same chain with a bug injected is far beyond them (ratio > 100).

Every expected value is written out here, computed by finite differences or by PyTorch: never taken from the
code under test.  PyTorch is imported inside the tests that use it only.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from nnparity.convspec import QUANTITIES, ConvCase, conv_grid, inputs, output_size
from nnparity.metrics import bound_ratio, normwise_rel_err
from nnparity.tolerances import FLOAT64_NORMWISE, conv_bounds
from reference import conv, conv_vectorised

GRID = conv_grid()
MODULES = (conv, conv_vectorised)
LOOPS_VS_VECTORISED_FLOAT64 = 1e-13


@functools.lru_cache(maxsize=None)
def loops_run(case: ConvCase):
    """The case's inputs, the loops' chain and the bounds, once per case (the 64x64 loops take about a second)."""
    x = inputs(case)
    return x, conv.forward_backward(x["A_prev"], x["W"], x["b"], x["dA"], case), conv_bounds(x, case)


def chain_ratios(got: dict, expected: dict, B: dict) -> dict:
    """{quantity: max |got - expected| / (2 B)} (``nnparity.metrics.bound_ratio``)."""
    return {q: bound_ratio(got[q], expected[q], B[q]) for q in QUANTITIES}


def ids(cases):
    return [case.name for case in cases]


# --------------------------------------------------------------------------------------
# The loops and the vectorised twin.
# --------------------------------------------------------------------------------------

def test_the_vectorised_module_has_the_loops_functions_in_their_order():
    names = ["zero_pad", "conv_single_step", "conv_forward", "pool_forward", "conv_backward",
             "create_mask_from_window", "distribute_value", "pool_backward", "forward_backward"]
    for module in MODULES:
        public = [n for n, v in vars(module).items() if callable(v) and getattr(v, "__module__", "") == module.__name__
                  and n in names]
        assert public == names, module.__name__


@pytest.mark.parametrize("case", GRID, ids=ids(GRID))
def test_loops_and_vectorised_agree_within_the_bound(case):
    x, loops, B = loops_run(case)
    vec = conv_vectorised.forward_backward(x["A_prev"], x["W"], x["b"], x["dA"], case)
    shapes = case.shapes()
    expected_shapes = {"Z": shapes["Z"], "A": shapes["A"], "dZ": shapes["Z"], "dA_prev": shapes["A_prev"],
                       "dW": shapes["W"], "db": shapes["b"]}
    for q in QUANTITIES:
        for got in (loops[q], vec[q]):
            assert got.shape == expected_shapes[q], q
            assert got.dtype == np.dtype(case.dtype), q  # float32 in, float32 out
    ratios = chain_ratios(vec, loops, B)
    assert max(ratios.values()) <= 1, ratios
    # the vectorised pool backward adds each cell's windows in the loops' order: bit-for-bit the loops' dZ
    np.testing.assert_array_equal(vec["dZ"], loops["dZ"])
    if case.dtype == "float64":
        errs = {q: normwise_rel_err(vec[q], loops[q]) for q in QUANTITIES}
        assert max(errs.values()) <= LOOPS_VS_VECTORISED_FLOAT64, errs


def test_the_vectorised_64x64_case_is_fast():
    """The course's 64x64x3 image, forward and backward: the loops take about a second, the twin ~0.02 s here
    (the aim is well under 0.2 s; the limit leaves room for a loaded machine)."""
    (case,) = [c for c in GRID if c.n_H_prev == 64 and c.dtype == "float32"]
    x = inputs(case)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        conv_vectorised.forward_backward(x["A_prev"], x["W"], x["b"], x["dA"], case)
        best = min(best, time.perf_counter() - start)
    assert best < 0.5, f"{best:.3f} s"


# --------------------------------------------------------------------------------------
# The loops' backward against centred finite differences (float64).
# --------------------------------------------------------------------------------------

FD_CASES = [
    ConvCase(m=2, n_H_prev=5, n_W_prev=6, n_C_prev=2, f=3, n_C=3, stride=2, pad=1, pool_f=2, pool_stride=1),
    ConvCase(m=1, n_H_prev=6, n_W_prev=6, n_C_prev=2, f=2, n_C=2, stride=1, pad=0, pool_f=3, pool_stride=2),
]
FD_CASES = [c.replace(mode=mode) for c in FD_CASES for mode in ("max", "average")]
FD_EPS = 1e-6
FD_TOL = 1e-7  # relative to max(1, max |gradient|): the FD's truncation error is zero away from the max kink
KINK_MARGIN = 1e-4  # every max-pool window's leader is ahead of its runner-up by this, far beyond eps |W|


def numeric_gradient(J, arrays, name):
    X = arrays[name]
    grad = np.zeros_like(X)
    for index in np.ndindex(X.shape):
        saved = X[index]
        X[index] = saved + FD_EPS
        plus = J()
        X[index] = saved - FD_EPS
        minus = J()
        X[index] = saved
        grad[index] = (plus - minus) / (2 * FD_EPS)
    return grad


def assert_away_from_max_ties(Z, case):
    if case.mode != "max":
        return
    for i, h, w, c in np.ndindex(Z.shape[0], case.n_H_pool, case.n_W_pool, Z.shape[3]):
        rows = slice(h * case.pool_stride, h * case.pool_stride + case.pool_f)
        cols = slice(w * case.pool_stride, w * case.pool_stride + case.pool_f)
        window = np.sort(Z[i, rows, cols, c].ravel())
        assert window[-1] - window[-2] > KINK_MARGIN, "the case sits on a max-pool kink: pick another seed"


@pytest.mark.parametrize("case", FD_CASES, ids=ids(FD_CASES))
def test_the_chains_backward_matches_finite_differences(case):
    """J = sum(A * dA) with A = pool(conv(A_prev, W, b)): dJ/dA_prev, dJ/dW, dJ/db, and dJ/dZ of the pool."""
    x = {k: v.copy() for k, v in inputs(case).items()}
    got = conv.forward_backward(x["A_prev"], x["W"], x["b"], x["dA"], case)
    assert_away_from_max_ties(got["Z"], case)

    def J():
        Z, _ = conv.conv_forward(x["A_prev"], x["W"], x["b"], case.conv_hparameters)
        A, _ = conv.pool_forward(Z, case.pool_hparameters, case.mode)
        return float(np.sum(A * x["dA"]))

    for name, grad in (("A_prev", "dA_prev"), ("W", "dW"), ("b", "db")):
        numeric = numeric_gradient(J, x, name)
        scale = max(1.0, float(np.abs(numeric).max()))
        assert np.abs(numeric).max() > 0.1, name  # a gradient that is there to check
        np.testing.assert_allclose(got[grad], numeric, rtol=0, atol=FD_TOL * scale, err_msg=grad)

    Z = got["Z"].copy()
    pool = {"Z": Z}

    def J_pool():
        A, _ = conv.pool_forward(pool["Z"], case.pool_hparameters, case.mode)
        return float(np.sum(A * x["dA"]))

    np.testing.assert_allclose(got["dZ"], numeric_gradient(J_pool, pool, "Z"), rtol=0, atol=FD_TOL)


@pytest.mark.parametrize("case", FD_CASES[::2], ids=ids(FD_CASES[::2]))
def test_conv_backward_alone_matches_finite_differences(case):
    """J = sum(Z * G) for a random G: conv_backward(G) is its gradient, whatever the pooling does."""
    x = {k: v.copy() for k, v in inputs(case).items()}
    G = np.random.RandomState(7).randn(*case.shapes()["Z"])
    _, cache = conv.conv_forward(x["A_prev"], x["W"], x["b"], case.conv_hparameters)
    dA_prev, dW, db = conv.conv_backward(G, cache)

    def J():
        return float(np.sum(conv.conv_forward(x["A_prev"], x["W"], x["b"], case.conv_hparameters)[0] * G))

    for name, grad in (("A_prev", dA_prev), ("W", dW), ("b", db)):
        numeric = numeric_gradient(J, x, name)
        np.testing.assert_allclose(grad, numeric, rtol=0, atol=FD_TOL * max(1.0, float(np.abs(numeric).max())),
                                   err_msg=name)


# --------------------------------------------------------------------------------------
# The course's definitions on values written out by hand (both modules).
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n_prev", "f", "pad", "stride", "expected"), [
    (5, 3, 1, 2, 3),  # the course's conv_forward example: A_prev (10, 5, 7, 4), W (3, 3, 4, 8) -> Z (10, 3, 4, 8)
    (7, 3, 1, 2, 4),
    (5, 3, 0, 1, 3),  # the course's pool_forward example: (2, 5, 5, 3), f 3, stride 1 -> (2, 3, 3, 3)
    (5, 3, 0, 2, 2),  # ... stride 2 -> (2, 2, 2, 3)
    (64, 7, 3, 1, 64),  # "same" padding
    (7, 2, 0, 4, 2),  # floor((7 - 2) / 4) + 1: the last column is never read
    (6, 2, 0, 4, 2),
    (4, 4, 0, 1, 1),
])
def test_output_size(n_prev, f, pad, stride, expected):
    assert output_size(n_prev, f, pad, stride) == expected


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_zero_pad(module):
    x = np.random.RandomState(1).randn(4, 3, 3, 2).astype(np.float32)
    x_pad = module.zero_pad(x, 3)
    assert x_pad.shape == (4, 9, 9, 2)
    assert x_pad.dtype == np.float32
    np.testing.assert_array_equal(x_pad[:, 3:6, 3:6, :], x)
    border = np.ones((9, 9), dtype=bool)
    border[3:6, 3:6] = False
    assert (x_pad[:, border, :] == 0).all()
    np.testing.assert_array_equal(module.zero_pad(x, 0), x)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_conv_single_step_and_forward_on_hand_values(module):
    a = np.arange(8.0).reshape(2, 2, 2)  # window (f, f, n_C_prev)
    W = np.array([[[1.0, -1.0], [0.5, 0.0]], [[2.0, 0.0], [0.0, -0.25]]])
    # 0*1 - 1*1 + 2*0.5 + 4*2 - 7*0.25 = 6.25, + b
    assert float(module.conv_single_step(a, W, np.array([[[0.5]]]))) == 6.75
    A_prev = np.arange(9.0).reshape(1, 3, 3, 1)
    W = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)  # a[h, w] - a[h + 1, w + 1] = -4 everywhere
    Z, _ = module.conv_forward(A_prev, W, np.full((1, 1, 1, 1), 0.5), {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(Z[0, :, :, 0], np.full((2, 2), -3.5))
    Z, _ = module.conv_forward(A_prev, W, np.zeros((1, 1, 1, 1)), {"stride": 2, "pad": 1})
    # padded 5x5, windows at rows/cols 0 and 2: -a[0, 0], -a[0, 2]; -a[2, 0], a[1, 1] - a[2, 2]
    np.testing.assert_array_equal(Z[0, :, :, 0], [[0.0, -2.0], [-6.0, 4.0 - 8.0]])


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_create_mask_from_window_marks_every_tied_maximum(module):
    x = np.array([[1.62, -0.61, -0.53], [-1.07, 0.86, -2.30]])  # the course's example
    np.testing.assert_array_equal(module.create_mask_from_window(x), [[True, False, False], [False, False, False]])
    x = np.array([[1.0, 3.0], [3.0, 2.0]])
    np.testing.assert_array_equal(module.create_mask_from_window(x), [[False, True], [True, False]])
    np.testing.assert_array_equal(module.create_mask_from_window(np.zeros((2, 2))), np.ones((2, 2), dtype=bool))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_distribute_value(module):
    np.testing.assert_array_equal(module.distribute_value(2.0, (2, 2)), np.full((2, 2), 0.5))  # the course's
    a = module.distribute_value(np.float32(3.0), (3, 3))
    assert a.shape == (3, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, np.full((3, 3), np.float32(3.0) / np.float32(9.0)))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_conv_backward_with_pad_0_is_not_empty(module):
    """The course's ``da_prev_pad[pad:-pad, pad:-pad]`` is empty for pad = 0; the gradient must not be."""
    A_prev = np.arange(9.0).reshape(1, 3, 3, 1)
    W = np.ones((2, 2, 1, 1))
    _, cache = module.conv_forward(A_prev, W, np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": 0})
    dA_prev, dW, db = module.conv_backward(np.ones((1, 2, 2, 1)), cache)
    # each cell gets W (= 1) once per window that reads it
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # dW[i, j] = sum over the windows of a[h + i, w + j]: (0+1+3+4), (1+2+4+5), (3+4+6+7), (4+5+7+8)
    np.testing.assert_array_equal(dW[:, :, 0, 0], [[8, 12], [20, 24]])
    assert db.shape == (1, 1, 1, 1) and db.item() == 4


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_max_pool_backward_sends_dA_to_every_tied_maximum(module, dtype):
    Z = np.array([[5.0, 5.0, 1.0], [1.0, 5.0, 2.0], [0.0, 3.0, 3.0]], dtype=dtype).reshape(1, 3, 3, 1)
    hp = {"f": 2, "stride": 1}  # overlapping windows: the centre is the tied maximum of two
    A, cache = module.pool_forward(Z, hp, "max")
    np.testing.assert_array_equal(A[0, :, :, 0], [[5, 5], [5, 5]])
    dA = np.array([[1.0, 10.0], [100.0, 1000.0]], dtype=dtype).reshape(1, 2, 2, 1)
    dZ = module.pool_backward(dA, cache, "max")
    assert dZ.dtype == np.dtype(dtype)
    # window (0,0) ties three 5s, (0,1) ties two, (1,0) and (1,1) have the centre alone
    np.testing.assert_array_equal(dZ[0, :, :, 0], [[1, 1 + 10, 0], [0, 1 + 10 + 100 + 1000, 0], [0, 0, 0]])
    dZ = module.pool_backward(dA, cache, "average")
    np.testing.assert_array_equal(dZ[0, :, :, 0] * 4, [[1, 11, 10], [101, 1111, 1010], [100, 1100, 1000]])


# --------------------------------------------------------------------------------------
# The bounds: what they allow where, and their power against PyTorch with and without bugs.
# --------------------------------------------------------------------------------------

def test_the_max_pool_bound_allows_a_flip_only_between_near_ties():
    case = ConvCase(m=1, n_H_prev=2, n_W_prev=4, n_C_prev=1, f=1, n_C=1, pad=0, pool_f=2, pool_stride=2)
    x = {"A_prev": np.array([[1.0, np.nextafter(1.0, 2.0), 0.5, 2.0], [0.25, 0.0, 0.5, 1.0]]).reshape(1, 2, 4, 1),
         "W": np.ones((1, 1, 1, 1)), "b": np.zeros((1, 1, 1, 1)), "dA": np.array([3.0, -7.0]).reshape(1, 1, 2, 1)}
    B = conv_bounds(x, case)["dZ"][0, :, :, 0]
    # left window: 1 and its successor are within rounding: either may take dA, so both may be off by |dA|
    assert B[0, 0] >= 3 and B[0, 1] >= 3
    assert (B[1, :2] == 0).all()  # far below the maximum: exactly 0 in every computation
    # right window: 2 leads clearly; only rounding there, nothing elsewhere
    assert 0 < B[0, 3] < 1e-12 and (B[:, 2] == 0).all() and B[1, 3] == 0


def torch_chain(x, case, fault=None):
    """The chain with PyTorch: conv2d (NCHW/OIHW), max_pool2d or avg_pool2d, autograd; ``fault`` injects a bug."""
    import torch
    import torch.nn.functional as F

    def nchw(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    def nhwc(t):
        return np.ascontiguousarray(t.detach().permute(0, 2, 3, 1).numpy())

    A_prev = nchw(x["A_prev"]).requires_grad_()
    W = torch.from_numpy(np.ascontiguousarray(x["W"].transpose(3, 2, 0, 1))).requires_grad_()  # (n_C, n_C_prev, f, f)
    b = torch.from_numpy(x["b"].reshape(-1).copy()).requires_grad_()
    kernel = W.transpose(2, 3) if fault == "kernel transposed" else W
    if fault == "bias per position":  # b indexed by the flattened position instead of the channel
        index = torch.arange(case.n_H * case.n_W) % case.n_C
        Z = F.conv2d(A_prev, kernel, None, case.stride, case.pad) + b[index].view(1, 1, case.n_H, case.n_W)
    else:
        Z = F.conv2d(A_prev, kernel, b, case.stride, case.pad)
    Z_leaf = Z.detach().requires_grad_()
    pool = F.max_pool2d if case.mode == "max" else F.avg_pool2d
    A = pool(Z_leaf, case.pool_f, case.pool_stride)
    (dZ,) = torch.autograd.grad(A, Z_leaf, nchw(x["dA"]))
    if fault == "average backward not divided":
        dZ = dZ * case.pool_f**2
    dA_prev, dW, db = torch.autograd.grad(Z, (A_prev, W, b), dZ)
    if fault == "dW divided by m":
        dW = dW / case.m
    return {"Z": nhwc(Z), "A": nhwc(A), "dZ": nhwc(dZ), "dA_prev": nhwc(dA_prev),
            "dW": np.ascontiguousarray(dW.numpy().transpose(2, 3, 1, 0)), "db": db.numpy().reshape(1, 1, 1, -1)}


#: The grid's cases without tied max-pool windows: on the digits with max pooling the frameworks' routing of tied
#: maxima is a recorded divergence (nnparity.divergences.maxpool_ties; test_conv_parity asserts it diverges as
#: recorded, and this module's digits test that the bound catches it).
UNTIED = [c for c in GRID if not (c.mode == "max" and c.data == "digits")]


@pytest.mark.parametrize("case", UNTIED, ids=ids(UNTIED))
def test_torch_passes_within_the_bound(case):
    x, loops, B = loops_run(case)
    got = torch_chain(x, case)
    for q in QUANTITIES:
        assert got[q].dtype == np.dtype(case.dtype) and got[q].shape == loops[q].shape, q
    ratios = chain_ratios(got, loops, B)
    assert max(ratios.values()) <= 1, ratios
    if case.dtype == "float64":
        errs = {q: normwise_rel_err(got[q], loops[q]) for q in QUANTITIES}
        assert max(errs.values()) <= FLOAT64_NORMWISE, errs


#: fault -> (the case it is injected into, the quantity it must break, the quantities it must leave passing)
FAULTS = {
    "bias per position": (ConvCase(), "Z", ()),
    "kernel transposed": (ConvCase(), "Z", ()),
    "average backward not divided": (ConvCase(mode="average"), "dZ", ("Z", "A")),
    "dW divided by m": (ConvCase(), "dW", ("Z", "A", "dZ", "dA_prev", "db")),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_bounds_catch_injected_faults(fault, dtype):
    case, broken, passing = FAULTS[fault]
    case = case.replace(dtype=dtype)
    x, loops, B = loops_run(case)
    ratios = chain_ratios(torch_chain(x, case, fault), loops, B)
    assert ratios[broken] > 100, ratios
    assert all(ratios[q] <= 1 for q in passing), ratios


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_exact_max_pool_tie_is_no_ambiguity(dtype):
    """The digits' blank borders give Z = b exactly (every product an exact zero, bound 0): those tied windows
    must send dA to every tied cell (the course's mask).  PyTorch's max_pool2d sends it to one: caught."""
    case = ConvCase(m=4, n_H_prev=8, n_W_prev=8, n_C_prev=1, n_C=8, f=4, pad=2, mode="max", data="digits",
                    dtype=dtype)
    x, loops, B = loops_run(case)
    assert (B["Z"] == 0).any()
    ratios = chain_ratios(torch_chain(x, case), loops, B)
    assert ratios["dZ"] > 100, ratios
    assert ratios["Z"] <= 1 and ratios["A"] <= 1, ratios
