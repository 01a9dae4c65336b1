"""The course's two Keras conv models ("happy" and "signs", ``reference.convnet``) against the idiomatic
implementations' twins (``Impl.convnet_module``: torch.nn, Keras, flax): one forward/backward pass and a 5-step
training trajectory, every quantity as a row with the harness's columns.  ``parity_tests/test_convnet.py`` judges
with these same helpers, so the report and the tests hold the models to one set of limits.

How the limits are set (the reasoning is the tests' module docstring, kept here in short):

* float64: norm-wise relative difference ``max |a - b| / max |b|`` at most ``FLOAT64_NORMWISE`` (1e-12).
* float32: each framework's float32 result against the float64 reference (the truth).  ``chain_terms`` counts the
  terms summed along the forward and backward chain (K, in the thousands); the norm-wise difference is held to
  ``K u``, a 5-step trajectory to ``(steps + 1) K u``.
* ReLU and max-pool decisions: the signs model's are checked to be more than 3 float32 roundings from flipping
  (``decisions_stable``, a row of its own); the happy model's layer-1 gradients (dW1, dgamma1, dbeta1) get a
  ``kink_allowance``, the exact jump of every window within 3 roundings of a flip, subtracted elementwise before
  the norm-wise difference is taken.
* db1 of the happy model is zero by the math: every implementation's is held to ``db1_bound`` per channel (and the
  float64 reference's to the same bound in float64's u).

Nothing here imports a framework: the implementations' modules are imported through the registry when compared.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nnparity import impls as impl_registry
from nnparity import timing
from nnparity.arbiter import perturbed
from nnparity.harness import COLUMNS, _deadline, _failed, _fetch, _raised, as_frame, max_ulp
from nnparity.spec import split_name
from nnparity.tolerances import FLOAT64_NORMWISE, UNIT_ROUNDOFF
from reference import convnet as ref

U32 = UNIT_ROUNDOFF["float32"]
AXES = (0, 1, 2)
SMALL = ((16, 16, 3), 8)  # the report's shape and the tests' quick one
COURSE = ((64, 64, 3), 4)  # the course's image shape (tests only)
STEPS, LEARNING_RATE = 5, 0.01
DTYPES = ("float64", "float32")

#: The BatchNorm convention each idiomatic implementation is configured to: Keras' (momentum 0.99 of the old
#: value, epsilon 1e-3), with torch's running variance unbiased (nn.BatchNorm2d has no other).
UNBIASED_RUNNING_VARIANCE = {"torch-nn": True, "keras": False, "flax": False}


def convention(impl_name):
    """The reference's BatchNorm convention ``impl_name`` is configured to (``UNBIASED_RUNNING_VARIANCE``)."""
    return dict(ref.KERAS_BN, unbiased=UNBIASED_RUNNING_VARIANCE[impl_name])


def unbiased(model, impl_name):
    """Whether the reference runs ``model`` with an unbiased running variance for ``impl_name`` (only happy has
    BatchNorm)."""
    return model == "happy" and UNBIASED_RUNNING_VARIANCE[impl_name]


def normwise(a, b):
    """max |a - b| / max |b| (max |a| where b is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a)))


# ----------------------------------------------------------------------------------------------- the problem

@functools.lru_cache(maxsize=None)
def problem(model, shape, m):
    """Seeded parameters, running statistics and data: (parameters, running, X, Y)."""
    parameters, running = ref.init_parameters(model, shape, seed=1)
    X, Y = ref.make_data(model, shape, m, seed=2)
    return perturbed(parameters), running, X, Y


@functools.lru_cache(maxsize=None)
def reference_step(model, shape, m, unbiased):
    """The float64 reference's forward/backward and its ``keep`` (dZ1 of the happy model)."""
    parameters, running, X, Y = problem(model, shape, m)
    keep = {}
    result = ref.forward_backward(parameters, X, Y, model, "float64", running, dict(ref.KERAS_BN, unbiased=unbiased),
                                  keep)
    return result, keep


@functools.lru_cache(maxsize=None)
def reference_training(model, shape, m, unbiased):
    """The float64 reference's ``STEPS`` steps of gradient descent at ``LEARNING_RATE``."""
    parameters, running, X, Y = problem(model, shape, m)
    return ref.train(parameters, X, Y, model, "float64", STEPS, LEARNING_RATE, running,
                     dict(ref.KERAS_BN, unbiased=unbiased))


# ----------------------------------------------------------------------------------------------- the limits

def chain_terms(model, shape, m):
    """K: the terms summed along the model's forward and backward chain (each sum's length, added up), plus 50
    elementwise roundings."""
    n_H, n_W, n_C = shape
    H, W, C = ref.output_shape(model, shape)
    n_flat = H * W * C
    if model == "happy":
        N = m * n_H * n_W
        forward = 7 * 7 * n_C + N + n_flat  # conv, BatchNorm's mean and variance, Dense
        backward = m + 1 + 2 * N + N  # Dense's dW and dF, BatchNorm's two means, dW1's sum over the cells
    else:
        n_H1, n_W1 = -(-n_H // 8), -(-n_W // 8)
        forward = 4 * 4 * n_C + 2 * 2 * 8 + n_flat + 6  # two convs, Dense, softmax's sum
        backward = m + 6 + 2 * 2 * 16 + m * n_H1 * n_W1 + m * n_H * n_W  # Dense, conv2's dA_prev and dW, conv1's dW
    return forward + backward + 50


def step_limit(model, shape, m, dtype):
    """The norm-wise limit of one step's quantities: ``FLOAT64_NORMWISE``, or ``K u`` in float32."""
    return FLOAT64_NORMWISE if dtype == "float64" else chain_terms(model, shape, m) * U32


def training_limit(model, shape, m, dtype, steps=STEPS):
    """The norm-wise limit of a trajectory's costs and final state: ``FLOAT64_NORMWISE``, or ``(steps + 1) K u``."""
    return FLOAT64_NORMWISE if dtype == "float64" else (steps + 1) * chain_terms(model, shape, m) * U32


def _limit_name(dtype, factor=""):
    return f"{FLOAT64_NORMWISE:g}" if dtype == "float64" else f"{factor}K u"


# ----------------------------------------------------------------------------------------------- decisions

def decisions(model, parameters, running, X, dtype):
    """Every ReLU + max-pool pair's input Z (the reference's forward, training mode), with the pool's f = stride."""
    P, R, X = ref.cast(parameters, dtype), ref.cast(running, dtype), np.asarray(X, dtype=dtype)
    _, caches, _ = ref.model_forward(X, P, R, model, ref.KERAS_BN, training=True)
    if model == "happy":
        return [(caches[3], 2)]
    return [(caches[1], 8), (caches[4], 4)]


def window_margins(Z, f):
    """How far each max-pool-after-ReLU decision is from flipping, in the shape of the pooled output: per window,
    the distance of its largest Z from 0 (ReLU's kink) and, where it is positive, from the runner-up after the ReLU
    (the arg max).  Windows do not overlap (f = stride) and 'same' pads with -inf, as the model."""
    Zp, _ = ref.pad_same(Z, f, f, value=-np.inf)
    m, H, W, C = Zp.shape
    windows = Zp.reshape(m, H // f, f, W // f, f, C).transpose(0, 1, 3, 5, 2, 4).reshape(m, H // f, W // f, C, -1)
    ordered = np.sort(windows, axis=-1)
    top, second = ordered[..., -1], np.maximum(ordered[..., -2], 0)
    return np.where(top > 0, np.minimum(top, top - second), np.abs(top))


def window_margin(Z, f):
    return float(np.min(window_margins(Z, f)))


@functools.lru_cache(maxsize=None)
def decision_error(model, shape, m):
    """Each decision layer's Z in float64 and its float32 rounding, measured: the float32 reference's Z against
    the float64 one's (an over-estimate for the frameworks: NumPy reduces BatchNorm's leading axes in float32 one
    row at a time)."""
    parameters, running, X, _ = problem(model, shape, m)
    pairs = zip(decisions(model, parameters, running, X, "float64"),
                decisions(model, parameters, running, X, "float32"))
    return [(Z64, f, float(np.max(np.abs(Z32[np.isfinite(Z64)] - Z64[np.isfinite(Z64)]))))
            for (Z64, f), (Z32, _) in pairs]


def decision_ratio(model, shape, m):
    """The largest of 3 x (float32 rounding of a decision layer's input) / (its smallest window margin): below 1
    when every ReLU and max-pool decision is more than 3 float32 roundings from flipping."""
    return max(3 * error / window_margin(Z64, f) for Z64, f, error in decision_error(model, shape, m))


def decisions_stable(model, shape, m):
    """float32's first-order bounds hold where no ReLU or max-pool decision flips: a flipped decision moves a whole
    cell's gradient, a jump no rounding bound covers.  The signs model's decisions are far enough: every margin
    (``window_margin``, float64) exceeds 3 times the float32 rounding of its input (``decision_error``)."""
    return all(window_margin(Z64, f) > 3 * error for Z64, f, error in decision_error(model, shape, m))


@functools.lru_cache(maxsize=None)
def kink_allowance(model, shape, m):
    """The happy model's 2x2 max-pool-after-ReLU decisions are many (m n_H n_W 32 / 4 windows) and some are within
    rounding of flipping (at 64x64 every data seed tried has some: a window whose only positive cell is B1 = 6e-7
    at seed 2, which single-threaded torch and the float32 reference both flip, moving dbeta1 by 1.2%).  A flipped
    decision routes the window's upstream gradient to another cell (or to none, or from none): the layer-1
    gradients jump by exactly what the float64 backward gives with that decision flipped, and since the backward
    is linear in the routed gradient, the flips of several windows add.  So the allowance is, elementwise, the sum
    over every window within 3 float32 roundings of a flip of |the backward with that window's decision flipped -
    the backward as computed| (each flipped decision built in the caches: the top cell's sign where the decision is
    the ReLU's, the top two cells swapped where it is the max-pool's).  Zero for every gradient where no window is
    near, and for W2 and b2 (a flip near 0 changes the forward by at most its margin).  {gradient: array}."""
    parameters, running, X, Y = problem(model, shape, m)
    (Z, f, error), = decision_error(model, shape, m)
    near = np.argwhere(window_margins(Z, f) <= 3 * error)  # (i, h, w, c) of each window within reach of a flip
    AL, caches, _ = ref.model_forward(X, parameters, running, model, ref.KERAS_BN, training=True)
    computed = ref.happy_backward(AL, Y, parameters, caches)
    allowance = {k: np.zeros_like(v) for k, v in computed.items()}
    for i, h, w, c in near:
        flipped = _flipped(caches, (i, slice(h * f, h * f + f), slice(w * f, w * f + f), c))
        for key, value in ref.happy_backward(AL, Y, parameters, flipped).items():
            if key in ("dW1", "dgamma1", "dbeta1"):
                allowance[key] = allowance[key] + np.abs(value - computed[key])
    return allowance


def _flipped(caches, window):
    """The happy model's caches with one ReLU + max-pool decision flipped in ``window`` (its index into B1)."""
    pad0, conv1, bn1, B1, ((A1, hparameters), pads), shape, dense2 = caches
    B1, A1 = B1.copy(), A1.copy()
    cells = B1[window]
    order = np.argsort(cells, axis=None)
    top, second = np.unravel_index(order[-1], cells.shape), np.unravel_index(order[-2], cells.shape)
    i, rows, cols, c = window
    top_at = (i, rows.start + top[0], cols.start + top[1], c)
    second_at = (i, rows.start + second[0], cols.start + second[1], c)
    if B1[top_at] > 0 and B1[second_at] > 0:  # the max-pool's choice between two positive cells
        B1[top_at], B1[second_at] = B1[second_at], B1[top_at]
    else:  # the ReLU's: the top cell passes its gradient or not
        B1[top_at] = -B1[top_at]
    A1[window] = np.maximum(B1[window], 0)
    return pad0, conv1, bn1, B1, ((A1, hparameters), pads), shape, dense2


def db1_bound(keep, N, u):
    """db1 of the happy model is zero but for rounding: a sum of N terms of dZ1, each with under 20 roundings."""
    return (N + 20) * u * np.sum(np.abs(keep["dZ1"]), axis=AXES, keepdims=True)


def _over(value, bound) -> float:
    """max |value| / bound elementwise (0 where both are 0, inf where only the bound is)."""
    value, bound = np.abs(np.asarray(value, dtype=np.float64)), np.broadcast_to(bound, np.shape(value))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(value == 0, 0.0, value / bound)
    return float(np.max(ratio, initial=0.0))


# ----------------------------------------------------------------------------------------------- the rows

def _row(phase, key, step, got, truth, measured, limit, criterion, dtype, note=""):
    """A compared quantity: ``measured`` (its norm-wise difference) against ``limit``."""
    stem, layer = split_name(key)
    passed = bool(measured <= limit)
    if not passed:
        note = note or f"{key}: norm-wise difference {measured:.3g} > limit {limit:.3g}"
    got64, truth64 = np.asarray(got, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    return dict(phase=phase, quantity=stem, layer=layer, step=step,
                max_abs_err=float(np.max(np.abs(got64 - truth64), initial=0.0)), max_rel_err=measured,
                max_ulp=max_ulp(got64, truth64, dtype), bound_ratio=measured / limit, tol=1.0, criterion=criterion,
                passed=passed, note=note, value=float(got64) if got64.ndim == 0 else np.nan)


def _fetch_all(result, truth, dtype, what, phases):
    """Each ``truth`` key's value from ``result`` (checked shape and dtype) and the failing rows of the others."""
    values, rows = {}, []
    for key, (phase, step, criterion) in phases.items():
        container, name = key
        if not isinstance(result, dict) or container and container not in result:
            problem = f"{what} returned no {container or 'dict'}"
            value = None
        elif container == "running":  # the running statistics: shape only (the tests never held their dtype)
            found = result[container].get(name) if isinstance(result[container], dict) else None
            value, problem = _fetch(result[container], name, truth[container][name],
                                    np.asarray(found).dtype if found is not None else dtype, what)
        elif container:
            value, problem = _fetch(result[container], name, truth[container][name], dtype, what)
        else:
            value, problem = _fetch(result, name, truth[name], dtype, what)
        if problem:
            stem, layer = split_name(name)
            rows.append(_failed(phase, stem, layer, step, criterion, problem))
        else:
            values[key] = value
    return values, rows


def step_rows(got, truth, keep, model, shape, m, dtype, what="forward_backward"):
    """One step's cost, AL, every gradient and the running statistics against the float64 reference, as rows:
    norm-wise difference (float32's less the kink allowance, where there is one) against ``step_limit``; the
    happy model's db1 against ``db1_bound``; the signs model's float32 decisions' margin, a row of its own."""
    limit = step_limit(model, shape, m, dtype)
    criterion = f"max_rel_err<={_limit_name(dtype)}"
    rows, allowance = [], {}
    if dtype == "float32" and model == "happy":
        allowance = kink_allowance(model, shape, m)
    elif dtype == "float32":
        ratio = decision_ratio(model, shape, m)
        rows.append(dict(phase="forward", quantity="decision margins", layer=None, step=0, max_abs_err=np.nan,
                         max_rel_err=np.nan, max_ulp=np.nan, bound_ratio=ratio, tol=1.0,
                         criterion="3 float32 roundings / smallest margin < 1", passed=bool(ratio < 1),
                         note="" if ratio < 1 else "a ReLU or max-pool decision is within 3 float32 roundings of "
                         "flipping: no rounding bound holds"))
    kink = " (less the kink allowance)" if allowance else ""
    phases = {(None, "AL"): ("forward", 0, criterion)}  # the cost is a Python float, as the reference's
    phases.update({("grads", k): ("backward", 0, criterion + (kink if k in ("dW1", "dgamma1", "dbeta1") else ""))
                   for k in truth["grads"]})
    phases.update({("running", k): ("forward", 0, criterion) for k in truth["running"]})
    values, failed = _fetch_all(got, truth, dtype, what, phases)
    if isinstance(got, dict) and np.ndim(got.get("cost")) == 0 and isinstance(got.get("cost"), (float, np.floating)):
        values[(None, "cost")] = got["cost"]
    else:
        failed.insert(0, _failed("forward", "cost", None, 0, criterion, f"{what} returned no scalar cost"))
    rows += failed
    extra = sorted(set(got.get("grads", {})) - set(truth["grads"])) if isinstance(got, dict) else []
    extra += sorted(set(got.get("running", {})) - set(truth["running"])) if isinstance(got, dict) else []
    for name in extra:
        rows.append(_failed("backward", name, None, 0, criterion, f"{name}: not one of the reference's quantities"))
    if (None, "cost") in values:
        cost, true_cost = float(values[(None, "cost")]), truth["cost"]
        rows.append(_row("forward", "cost", 0, cost, true_cost, abs(cost - true_cost) / abs(true_cost), limit,
                         criterion, dtype))
    if (None, "AL") in values:
        rows.append(_row("forward", "AL", 0, values[(None, "AL")], truth["AL"],
                         normwise(values[(None, "AL")], truth["AL"]), limit, criterion, dtype))
    for key, value in truth["grads"].items():
        if ("grads", key) not in values:
            continue
        mine = values[("grads", key)]
        if model == "happy" and key == "db1":
            rows.append(_db1_row(mine, value, keep, shape, m, dtype))
            continue
        excess = np.maximum(np.abs(mine - value) - allowance.get(key, 0), 0)
        rows.append(_row("backward", key, 0, mine, value, normwise(value + excess, value), limit,
                         phases[("grads", key)][2], dtype))
    for key, value in truth["running"].items():
        if ("running", key) in values:
            mine = values[("running", key)]
            rows.append(_row("forward", key, 0, mine, value, normwise(mine, value), limit, criterion, dtype))
    return rows


def _db1_row(mine, truth, keep, shape, m, dtype):
    """The happy model's db1, zero by the math: |db1| <= ``db1_bound`` per channel (the reference's in float64's u)."""
    N = m * shape[0] * shape[1]
    ratio = _over(mine, db1_bound(keep, N, UNIT_ROUNDOFF[dtype]))
    reference_ratio = _over(truth, db1_bound(keep, N, UNIT_ROUNDOFF["float64"]))
    passed = ratio <= 1 and reference_ratio <= 1
    note = "" if passed else (f"|db1| is {ratio:.3g} x its bound" if ratio > 1 else
                              f"the reference's |db1| is {reference_ratio:.3g} x its float64 bound")
    mine64 = np.asarray(mine, dtype=np.float64)
    return dict(phase="backward", quantity="db", layer=1, step=0,
                max_abs_err=float(np.max(np.abs(mine64 - truth))), max_rel_err=np.nan,
                max_ulp=max_ulp(mine64, truth, dtype), bound_ratio=ratio, tol=1.0,
                criterion="|db1|<=(N+20) u sum|dZ1| per channel (zero by the math)", passed=bool(passed), note=note)


def training_rows(got, truth, model, shape, m, dtype, steps=STEPS, what="train"):
    """A trajectory's costs (one row per step, phase ``trajectory``: together the norm-wise difference of the
    cost vector), its final parameters and running statistics (phase ``final``), against ``training_limit``."""
    limit = training_limit(model, shape, m, dtype, steps)
    criterion = f"max_rel_err<={_limit_name(dtype, f'({steps}+1) ')}"
    rows = []
    costs = got.get("costs") if isinstance(got, dict) else None
    try:
        costs = np.asarray(costs, dtype=np.float64)
    except (TypeError, ValueError):
        costs = None
    if costs is None or costs.shape != (steps,):
        rows.append(_failed("trajectory", "cost", None, None, criterion,
                            f"{what} returned costs of shape {getattr(costs, 'shape', None)}, not ({steps},)"))
    else:
        scale = np.max(np.abs(truth["costs"]))
        for step, (cost, true_cost) in enumerate(zip(costs, truth["costs"])):
            rows.append(_row("trajectory", "cost", step, cost, true_cost, abs(cost - true_cost) / scale, limit,
                             criterion + " (cost vector)", dtype))
    phases = {("parameters", k): ("final", steps, criterion) for k in truth["parameters"]}
    phases.update({("running", k): ("final", steps, criterion) for k in truth["running"]})
    values, failed = _fetch_all(got, truth, dtype, what, phases)
    rows += failed
    for (container, key), value in values.items():
        true = truth[container][key]
        rows.append(_row("final", key, steps, value, true, normwise(value, true), limit, criterion, dtype))
    return rows


# ----------------------------------------------------------------------------------------------- the report

@dataclass(frozen=True)
class ModelCase:
    """A conv model in the report: ``id`` like ``convnet-happy-16x16x3-m8-float64``, selected by ``--cases``."""

    model: str
    dtype: str
    shape: tuple = SMALL[0]
    m: int = SMALL[1]

    @property
    def id(self) -> str:
        return f"convnet-{self.model}-{'x'.join(map(str, self.shape))}-m{self.m}-{self.dtype}"


def model_cases() -> list[ModelCase]:
    """The report's model cases: both models, both dtypes, the small shape."""
    return [ModelCase(model, dtype) for model in ref.MODELS for dtype in DTYPES]


def model_impls(names) -> list[str]:
    """The implementations of ``names`` that have the conv models (``Impl.convnet_module``), in order."""
    return [n for n in names if n in impl_registry.REGISTRY and impl_registry.REGISTRY[n].convnet_module]


def _compare(case: ModelCase, impl_name, module=None, training=False) -> pd.DataFrame:
    """``impl_name``'s model (``module``, default its ``convnet_module``) on ``case``, as rows; whatever it does,
    rows (an import failure one ``unavailable`` row, an exception failing rows)."""
    model, shape, m, dtype = case.model, case.shape, case.m, case.dtype
    what = "train" if training else "forward_backward"
    parameters, running, X, Y = problem(model, shape, m)
    bn = convention(impl_name)
    try:
        impl = impl_registry.get(impl_name)
        if module is None and not getattr(impl, "convnet_module", None):
            raise NotImplementedError("it has no conv models (Impl.convnet_module)")
        with timing.phase(impl_name, "import"):
            loaded = impl._load(module or impl.convnet_module)
    except impl_registry.ImplUnavailable as exc:
        return as_frame([dict(phase="unavailable", quantity="", passed=False, note=str(exc))], impl_name, case)
    except NotImplementedError as exc:
        return as_frame([dict(phase="unavailable", quantity="", passed=False,
                              note=f"{impl_name}: not supported: {exc}")], impl_name, case)
    try:
        with timing.phase(impl_name, "training" if training else "captures"), _deadline():
            if training:
                got = loaded.train(parameters, X, Y, model, dtype, STEPS, LEARNING_RATE, running, bn)
            else:
                got = loaded.forward_backward(parameters, X, Y, model, dtype, running, bn)
    except Exception as exc:  # noqa: BLE001 - any error of the implementation becomes a failing row
        phase = "trajectory" if training else "forward"
        rows = [_failed(phase, "cost", None, None if training else 0, "", _raised(what, exc))]
        return as_frame(rows, impl_name, case)
    if training:
        truth = reference_training(model, shape, m, unbiased(model, impl_name))
        rows = training_rows(got, truth, model, shape, m, dtype, what=what)
    else:
        truth, keep = reference_step(model, shape, m, unbiased(model, impl_name))
        rows = step_rows(got, truth, keep, model, shape, m, dtype, what=what)
    return as_frame(rows, impl_name, case)


def compare_model_step(model, dtype, impl_name, module=None) -> pd.DataFrame:
    """One forward/backward pass of ``model`` (small shape) by ``impl_name`` against the float64 reference: rows
    of the harness's ``COLUMNS``.  ``module``: another module to run in its place (a fault, in the tests)."""
    return _compare(ModelCase(model, dtype), impl_name, module)


def compare_model_training(model, dtype, impl_name, module=None) -> pd.DataFrame:
    """``STEPS`` steps of training ``model`` (small shape) by ``impl_name`` against the float64 reference: the
    costs per step (phase ``trajectory``) and the final parameters and running statistics (phase ``final``)."""
    return _compare(ModelCase(model, dtype), impl_name, module, training=True)


def run_models(cases: list[ModelCase], names) -> pd.DataFrame:
    """Every implementation of ``names`` that has the models on every case: step and training rows."""
    frames = [frame for case in cases for name in model_impls(names)
              for frame in (_compare(case, name), _compare(case, name, training=True))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
