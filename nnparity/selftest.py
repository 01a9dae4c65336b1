"""``nnparity selftest``: inject realistic bugs into the torch implementation and check the suite catches them.

A parity suite that never fails proves little by itself: it might compare the
wrong things, or with tolerances too loose to see a real bug.  The self-test
answers "does the suite catch real bugs, and does it point at the right place?"
by running a catalogue of faults (``catalogue()``), each a small, realistic mistake
applied at run time to the equation-style ``torch`` implementation
(``torch_impl.model`` / ``activations`` / ``losses``): a changed constant, a
missing ``1/m``, a broadcast along the wrong axis, a transposed weight, a wrong
derivative, a clipped loss, a dtype cast, an off-by-one learning-rate schedule,
a reordered or truncated mini-batch schedule, an unstable softmax, ...  Each
fault is a context manager built on ``unittest.mock.patch`` (so it is always
undone, even on an exception), runs on a small, fast case (<= 60 gradient
steps), and states where it must show up first: (phase, quantity, layer[, step]).

Detection policy
----------------
For each fault the same case is run clean (reference, then torch) and faulty
(the same reference, torch under the fault), in the same process.

* **DETECTED**: the faulty comparison has a failing row, **or** a row whose
  classification (``identical`` < ``<=4 ulp`` < ``within bound`` < ``drifted`` < ``fail``) is
  worse than the same row's in the clean run.  The second clause is the
  regression view of the upgrade workflow (``nnparity compare``): a quantity
  that was bit-identical to the reference and stops being identical has moved,
  even if it still passes.  A perturbation of one ulp is below every rounding
  bound and every tolerance, so it is detected **only** by that classification
  change -- and only on a quantity that is bit-identical in the clean run (the
  ``one-ulp-Z1`` fault therefore runs on a one-feature network, whose ``Z1 = W1 x``
  is a single rounded product in every library).
* **LOCALISED**: the first such row in the order of computation (forward Z1, A1,
  ..., cost; backward dZL, dWL, dbL, dA(L-1), ..., db1; then the trajectory step
  by step, the final parameters, the predictions) is the fault's expected
  (phase, quantity, layer[, step]).
* A faulty run that raises is detected (it cannot run) but not localised.
* **Caught by**: every check with such a row (``harness.CHECKS``: step-0 quantity, first update, checkpoint
  quantity, trajectory, final parameters, predictions), the first one first.  ``sigmoid-through-tanh``,
  ``l2-on-biases`` and ``gradient-clip`` are caught by a checkpoint quantity and by nothing at step 0.

Conv faults
-----------
``conv_catalogue()``: bugs in torch's conv and pool layers (``torch_impl.conv``, patched the same way): the bias
left out, the kernel transposed, the padding on one side, the input rounded to float32, the max-pool gradient
sent to every cell, the average-pool gradient not divided by f f, stride 1 in the backward windows, dW over m.
Each runs on the conv grid's cases in order (``convspec.conv_grid``, float64 first; a case whose clean run fails
is skipped) until ``conv_harness`` catches it, by the same policy; it is localised when the catching case and its
first quantity (Z, A, dZ, dA_prev, dW, db) are the catalogue's.  The cases run rerun unaltered with the dense ones.

``run_selftest(repeats)`` also re-runs the unaltered cases ``repeats`` times
after all faults (reference and torch): every repetition must pass and give
bit-for-bit the same rows as the first clean run (so the faults were undone and
the clean runs are deterministic).  Requirements: detected fraction 1.0,
localised fraction >= 0.9, 0 clean failures.  Only NumPy and torch run here
(no TensorFlow), with torch on one intra-op thread: the whole self-test takes
about 20 s with 20 repetitions on a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable
from unittest import mock

import numpy as np
import pandas as pd

from nnparity import grid, harness
from nnparity.numbers import jsonable, number
from nnparity.spec import Case

IMPL = "torch"

#: Requirements of the self-test (``nnparity selftest`` exits 1 unless all hold).
REQUIRED_DETECTED = 1.0
REQUIRED_LOCALISED = 0.9

_RANK = {c: i for i, c in enumerate(harness.CLASSES)}


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class Location:
    """Where a divergence shows: phase, quantity stem, layer (None: no layer) and step (None: any step)."""

    phase: str
    quantity: str
    layer: int | None = None
    step: int | None = None

    def matches(self, phase, quantity, layer, step) -> bool:
        return (phase == self.phase and quantity == self.quantity and layer == self.layer
                and (self.step is None or step == self.step))

    def __str__(self) -> str:
        name = f"{self.quantity}{'' if self.layer is None else self.layer}"
        return f"{self.phase} {name}" + ("" if self.step is None else f" step {self.step}")


def _int_or_none(value):
    return None if value is None or pd.isna(value) else int(value)


def _key(row) -> tuple:
    return (row.phase, row.quantity, _int_or_none(row.layer), _int_or_none(row.step))


def _num(x) -> str:
    """Compact number: whole below 1000 in full (``3``, ``120``), else ``0.37``, ``1.2e6``, ``inf``, ``n/a``."""
    if isinstance(x, (int, float, np.integer)) and math.isfinite(x) and x == int(x) and abs(x) < 1000:
        return str(int(x))
    return number(x)


def describe_divergence(row, before: str | None = None, impl: str = IMPL) -> str:
    """One line for the first diverging row, e.g.
    ``first divergence: torch, forward step 0, layer 2, A2, 1.2e6 ulp, bound ratio 3.4e3 (within bound -> fail)``.

    ``row`` has the harness's columns (phase, quantity, layer, step, max_ulp, bound_ratio, classification);
    ``before`` is the row's classification in the clean run (None: the row is not in the clean run).
    """
    get = row.get if isinstance(row, dict) else (lambda k: getattr(row, k))
    layer, step = _int_or_none(get("layer")), _int_or_none(get("step"))
    parts = [f"first divergence: {impl}", get("phase") + ("" if step is None else f" step {step}")]
    if layer is not None:
        parts.append(f"layer {layer}")
    parts.append(f"{get('quantity')}{'' if layer is None else layer}")
    parts.append(f"{_num(get('max_ulp'))} ulp")
    parts.append(f"bound ratio {_num(get('bound_ratio'))}")
    text = ", ".join(parts)
    after = get("classification")
    text += f" ({before} -> {after})" if before is not None else f" ({after}; not in the clean run)"
    note = get("note") if "note" in (row if isinstance(row, dict) else row._fields) else ""
    if isinstance(note, str) and note and after == "fail":
        text += f" [{note}]"
    return text


def caught_by(faulty: pd.DataFrame, clean: pd.DataFrame) -> list[str]:
    """The checks (``harness.CHECKS``: step-0 quantity, first update, checkpoint quantity, trajectory, final
    parameters, predictions) with a row of ``faulty`` that fails or is classified worse than in ``clean``, in
    the order their first such row is computed (the first one caught the fault first)."""
    before = {_key(r): r.classification for r in clean.itertuples(index=False)}
    checks = []
    for r in faulty.itertuples(index=False):
        was = before.get(_key(r))
        if r.classification == "fail" or was is None or _RANK[r.classification] > _RANK[was]:
            check = harness.check_of(r.phase, r.step)
            if check not in checks:
                checks.append(check)
    return checks


def first_divergence(faulty: pd.DataFrame, clean: pd.DataFrame):
    """The first row of ``faulty`` (in the order of computation) that fails or is classified worse than in
    ``clean``: ``(row, clean classification or None, number of diverging rows)``; ``(None, None, 0)`` if none."""
    before = {_key(r): r.classification for r in clean.itertuples(index=False)}
    first, first_before, count = None, None, 0
    for r in faulty.itertuples(index=False):
        was = before.get(_key(r))
        if r.classification == "fail" or was is None or _RANK[r.classification] > _RANK[was]:
            count += 1
            if first is None:
                first, first_before = r, was
    return first, first_before, count


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One injected bug: a context manager factory, the case it runs on and where it must show first."""

    id: str
    description: str
    case: Case
    expected: Location
    patch: Callable[[], contextlib.AbstractContextManager]
    dataset: Callable[[], object] | None = None  # in-memory data; None: nnparity.data.load_data(case.data)
    biases: Callable[[int, int], np.ndarray] | None = None  # b[l] = biases(l, n[l]) at the start, clean and faulty
    why: str = field(default="", compare=False)  # why the expected location is where it is


def _model():
    import torch_impl.model as tm

    return tm


@contextlib.contextmanager
def _replace(module, name, make):
    """Patch ``module.name`` with ``make(original)`` for the duration of the block (always undone)."""
    with mock.patch.object(module, name, make(getattr(module, name))):
        yield


def _activation(change):
    """Patch torch_impl.model.activation_forward: ``change(Z, activation, slope, original)`` or None to keep it."""
    tm = _model()

    def make(original):
        def activation_forward(Z, activation, slope=0.01):
            out = change(Z, activation, slope, original)
            return original(Z, activation, slope) if out is None else out
        return activation_forward

    return _replace(tm, "activation_forward", make)


def _forward_seen(seen):
    """A pass-through wrapper of torch_impl.model.model_forward that records, in ``seen``, the batch size ``m``
    and resets the layer counter ``l`` (1, 2, ... as linear_activation_forward is called for each layer)."""
    def make(original):
        def model_forward(X, *args, **kwargs):
            seen["m"], seen["l"] = X.shape[1], 0
            return original(X, *args, **kwargs)
        return model_forward
    return _replace(_model(), "model_forward", make)


def _layerwise(W=None, Z=None, A=None):
    """Patch torch_impl.model.linear_activation_forward with per-layer hooks: ``W(l, W)`` the weight used,
    ``Z(l, Z)`` the pre-activation, ``A(l, Z, g)`` the activation (``g`` computes it).  The layer number comes from
    the order of the calls within one model_forward."""
    tm = _model()
    seen = {"l": 0}

    def make(original):
        def linear_activation_forward(A_prev, W_l, b_l, activation, slope=0.01):
            seen["l"] += 1
            l = seen["l"]
            W_used = W(l, W_l) if W else W_l
            Z_l = tm.linear_forward(A_prev, W_used, b_l)
            if Z:
                Z_l = Z(l, Z_l)

            def g(Zx):
                return tm.activation_forward(Zx, activation, slope)

            return (A(l, Z_l, g) if A else g(Z_l)), (A_prev, W_used, b_l, Z_l)
        return linear_activation_forward

    return _stacked(_forward_seen(seen), _replace(tm, "linear_activation_forward", make))


def _grads(change):
    """Patch torch_impl.model.model_backward: ``change(grads, m)`` edits the gradient dict (m: batch size of the
    latest forward pass, recorded by a pass-through wrapper of model_forward)."""
    seen = {}

    def make(original):
        def model_backward(*args, **kwargs):
            grads = original(*args, **kwargs)
            change(grads, seen["m"])
            return grads
        return model_backward

    return _stacked(_forward_seen(seen), _replace(_model(), "model_backward", make))


@contextlib.contextmanager
def _stacked(*managers):
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield


def _schedule(change):
    """Patch the torch implementation's ``train`` entry point: it receives ``change(schedule, X, case)``."""
    tm = _model()

    def make(original):
        def train(parameters, X, Y, case, schedule=None, *args, **options):
            return original(parameters, X, Y, case, change(schedule, X, case), *args, **options)
        return train

    return _replace(tm, "train", make)


# -- the individual faults


def _leaky_slope():
    def change(Z, activation, slope, original):
        if activation == "leaky_relu":
            return original(Z, activation, 0.02)
    return _activation(change)


def _missing_one_over_m():
    def change(grads, m):
        for k in [k for k in grads if k.startswith("dW")]:
            grads[k] = grads[k] * m
    return _grads(change)


def _dropped_bias_gradient():
    import torch

    def change(grads, m):
        for k in [k for k in grads if k.startswith("db")]:
            grads[k] = torch.zeros_like(grads[k])
    return _grads(change)


def _bias_wrong_axis():
    tm = _model()
    return _replace(tm, "linear_forward", lambda original: (lambda A_prev, W, b: W @ A_prev + b.T))


def _transposed_weight():
    return _layerwise(W=lambda l, W: W.T if l == 2 else W)


def _float32_weight():
    import torch

    return _layerwise(W=lambda l, W: W.to(torch.float32).to(W.dtype) if l == 2 else W)


def _one_ulp():
    import torch

    def perturb(l, Z):
        if l != 1:
            return Z
        with torch.no_grad():
            delta = torch.zeros_like(Z)
            z = Z[0, 0]
            delta[0, 0] = torch.nextafter(z, torch.tensor(math.inf, dtype=Z.dtype)) - z  # exactly one ulp
        return Z + delta
    return _layerwise(Z=perturb)


def _cast_activation(dtype_name):
    import torch

    low = getattr(torch, dtype_name)
    return _layerwise(A=lambda l, Z, g: g(Z.to(low)).to(Z.dtype) if l == 1 else g(Z))


def _sigmoid_grad_from_z():
    import torch

    class SigmoidGradFromZ(torch.autograd.Function):
        """sigmoid forward; backward with Z (1 - Z) where A (1 - A) belongs."""

        @staticmethod
        def forward(ctx, Z):
            ctx.save_for_backward(Z)
            return torch.sigmoid(Z)

        @staticmethod
        def backward(ctx, grad):
            (Z,) = ctx.saved_tensors
            return grad * Z * (1 - Z)

    return _activation(lambda Z, act, slope, original: SigmoidGradFromZ.apply(Z) if act == "sigmoid" else None)


def _relu_grad_at_zero():
    import torch

    class ReluGradOneAtZero(torch.autograd.Function):
        """relu forward; backward with relu'(0) = 1 (``Z >= 0``) instead of 0."""

        @staticmethod
        def forward(ctx, Z):
            ctx.save_for_backward(Z)
            return torch.relu(Z)

        @staticmethod
        def backward(ctx, grad):
            (Z,) = ctx.saved_tensors
            return grad * (Z >= 0).to(grad.dtype)

    return _activation(lambda Z, act, slope, original: ReluGradOneAtZero.apply(Z) if act == "relu" else None)


def _rational_tanh():
    import torch

    def fast_tanh(Z, act, slope, original):
        if act == "tanh":  # the [3/2] Pade "fast tanh": x (27 + x^2) / (27 + 9 x^2), clipped to [-1, 1]
            return torch.clamp(Z * (27 + Z * Z) / (27 + 9 * Z * Z), -1.0, 1.0)
    return _activation(fast_tanh)


def _clipped_cross_entropy():
    import torch

    tm = _model()

    def make(original):
        def compute_cost(AL, Y, *args, **kwargs):
            return original(torch.clamp(AL, 1e-7, 1 - 1e-7), Y, *args, **kwargs)  # Keras' epsilon
        return compute_cost
    return _replace(tm, "compute_cost", make)


def _unstable_softmax():
    import torch

    def softmax(Z, act, slope, original):
        if act == "softmax":
            E = torch.exp(Z)  # no max subtracted: exp overflows to inf above 709.78 in float64
            return E / torch.sum(E, dim=0, keepdim=True)
    return _activation(softmax)


def _late_learning_rate():
    tm = _model()
    calls = [0]
    if hasattr(tm, "update"):  # update(parameters, grads, state, case, t): train's optimiser step
        def make(original):
            def update(parameters, grads, state, case, *args, **kwargs):
                calls[0] += 1
                if calls[0] == 1:
                    case = case.replace(learning_rate=0.0)
                    kwargs = {**kwargs, "learning_rate": 0.0} if "learning_rate" in kwargs else kwargs
                return original(parameters, grads, state, case, *args, **kwargs)
            return update
        return _replace(tm, "update", make)

    def make_gd(original):  # update_parameters(parameters, grads, learning_rate): plain gradient descent
        def update_parameters(parameters, grads, learning_rate):
            calls[0] += 1
            return original(parameters, grads, 0.0 if calls[0] == 1 else learning_rate)
        return update_parameters
    return _replace(tm, "update_parameters", make_gd)


def _sigmoid_through_tanh():
    """sigmoid(Z) written as 0.5 + 0.5 tanh(Z / 2): equal in exact arithmetic, but the sum cancels where the
    output is near 0 (a saturated output keeps only its absolute, not its relative, accuracy)."""
    import torch

    def change(Z, act, slope, original):
        if act == "sigmoid":
            return 0.5 + 0.5 * torch.tanh(Z / 2)
    return _activation(change)


def _l2_on_biases():
    """The L2 term summed over every parameter, biases included (``lambda/(2m) sum ||b||^2`` added)."""
    import torch

    def make(original):
        def compute_cost(AL, Y, parameters, case, *args, **kwargs):
            J = original(AL, Y, parameters, case, *args, **kwargs)
            if case.lambd:
                J = J + 1 / Y.shape[1] * (case.lambd / 2) * sum(torch.sum(torch.square(P))
                                                                for k, P in parameters.items() if k.startswith("b"))
            return J
        return compute_cost
    return _replace(_model(), "compute_cost", make)


#: The gradient clip of ``_clipped_gradients``: between the two largest gradient norms of ``_saturating()``'s
#: run (1.785 at step 3, 1.781 at step 2; step 0: 0.52), so it fires at one step, the reference's gradient peak.
CLIP_NORM = 1.783


def _clipped_gradients():
    """A gradient clip left in (``clip_grad_norm_``): the gradients scaled to norm ``CLIP_NORM`` where their norm
    exceeds it."""
    import torch

    def change(grads, m):
        keys = [k for k in grads if k.startswith(("dW", "db"))]
        norm = torch.sqrt(sum(torch.sum(grads[k] * grads[k]) for k in keys))
        if norm > CLIP_NORM:
            for k in keys:
                grads[k] = grads[k] * (CLIP_NORM / norm)
    return _grads(change)


def _first_epoch_reversed(schedule, X, case):
    per_epoch = -(-X.shape[1] // case.batch_size)
    return list(schedule[:per_epoch])[::-1] + list(schedule[per_epoch:])


def _drop_last(schedule, X, case):
    return [idx for idx in schedule if len(idx) == case.batch_size]


# -- the data sets of the custom cases (in memory, with nnparity.data.Dataset's attributes)


def _planar_subset():
    from nnparity.data import Dataset, planar_dataset

    X, Y = planar_dataset()
    X, Y = X[:, ::10], Y[:, ::10]  # 40 examples, both classes
    return Dataset("planar-40", X, Y, None, None, "every 10th planar point: 40 examples")


def _planar_one_feature():
    from nnparity.data import Dataset, planar_dataset

    X, Y = planar_dataset()
    return Dataset("planar-x1", X[:1].copy(), Y, None, None, "planar, first feature only")


def _planar_zero_columns():
    from nnparity.data import Dataset, planar_dataset

    X, Y = planar_dataset()
    X = X.copy()
    # 7 all-zero examples (4 of class 0, 3 of class 1): Z1 = W1 0 + b1 = 0 exactly at step 0 (biases start at
    # zero).  With as many of each class (every 50th: 4 and 4) their wrong dZ1 columns would cancel in db1, and
    # dW1 never sees them (X is 0 there): the bug would change dZ1 only, not training.
    X[:, ::60] = 0.0
    return Dataset("planar-zero-columns", X, Y, None, None, "planar with every 60th example set to 0")


def _random_biases(l, n):
    """Non-zero, non-constant initial biases: 0.5 randn from RandomState(l)."""
    return 0.5 * np.random.RandomState(l).randn(n, 1)


def _logit_offset(l, n):
    """b2 = 720 (the output layer of the 2-layer softmax case), b1 = 0."""
    return np.full((n, 1), 720.0 if l == 2 else 0.0)


def _c2(**changes) -> Case:
    """The notes' 2-layer tanh network on planar, float64, full batch, 40 steps."""
    return grid.case_for(2, "tanh", "float64", False, epochs=40, **changes)


def _saturating(name, **changes) -> Case:
    """Logistic regression on digits 3 vs 8, float64, 20 steps at learning rate 2: unsaturated at step 0, its
    outputs saturate by step 2 (the saturation checkpoint) and its gradient peaks at step 3."""
    return grid.case_for(1, "relu", "float64", False, epochs=20, learning_rate=2.0, **changes).replace(name=name)


def catalogue() -> list[Fault]:
    """The faults, each with its case and expected first divergence."""
    mini = grid.case_for(2, "tanh", "float64", True, epochs=5)  # 7 mini-batches of <= 64 an epoch: 35 steps
    return [
        Fault("leaky-slope-0.02", "leaky_relu with slope 0.02 instead of 0.01",
              grid.case_for(2, "leaky_relu", "float64", False, epochs=40), Location("forward", "A", 1),
              _leaky_slope),
        Fault("missing-1/m-in-dW", "dW = dZ A_prev.T without the 1/m (every dW times m)", _c2(),
              Location("backward", "dW", 2), _missing_one_over_m,
              why="dWL is the first dW in the order of computation; dZL before it is untouched"),
        Fault("bias-wrong-axis", "Z = W A_prev + b.T: the bias broadcast along the examples axis "
              "(silent when the batch size equals n[1])",
              Case((2, 4, 1), "tanh", learning_rate=0.05, epochs=5, batch_size=4, data="planar-40",
                   name="l2-tanh-float64-planar40-minibatch4"),
              Location("backward", "db", 1), _bias_wrong_axis, dataset=_planar_subset,
              why="biases start at zero, so Z1 = W1 X + b1.T is exact at step 0; the wrong axis first shows "
                  "in db1, summed over units instead of examples"),
        Fault("bias-wrong-axis-nonzero-b", "the same bias broadcast, from non-zero initial biases",
              Case((2, 4, 1), "tanh", learning_rate=0.05, epochs=5, batch_size=4, data="planar-40",
                   name="l2-tanh-float64-planar40-minibatch4-bias"),
              Location("forward", "Z", 1), _bias_wrong_axis, dataset=_planar_subset, biases=_random_biases,
              why="with b1 != 0 (and not constant) the transposed bias changes Z1 itself"),
        Fault("transposed-W2", "W2.T used in a square layer (4 x 4)",
              Case((2, 4, 4, 1), "tanh", learning_rate=0.05, epochs=40, name="l3-tanh-float64-2-4-4-1"),
              Location("forward", "Z", 2), _transposed_weight),
        Fault("sigmoid-grad-from-Z", "sigmoid'(Z) computed as Z (1 - Z) instead of A (1 - A) (custom autograd "
              "Function as the output activation)", _c2(), Location("backward", "dZ", 2), _sigmoid_grad_from_z),
        Fault("cross-entropy-eps-clip", "cross-entropy with AL clipped to [1e-7, 1 - 1e-7] (as Keras does)",
              grid.case_for(1, "relu", "float64", False, epochs=40, init="small-random",
                            init_scale=3.0).replace(name="l1-logreg-float64-saturated"),
              Location("forward", "cost"), _clipped_cross_entropy,
              why="init_scale 3 saturates 14 outputs below 1e-7 (Z down to -20.5, none above 1)"),
        Fault("relu-grad-1-at-0", "relu'(0) = 1 (backward with Z >= 0) where a unit sits exactly at 0",
              Case((2, 4, 1), "relu", learning_rate=0.05, epochs=40, data="planar-zero-columns",
                   name="l2-relu-float64-zero-columns"),
              Location("backward", "dZ", 1), _relu_grad_at_zero, dataset=_planar_zero_columns,
              why="7 all-zero examples and zero biases give Z1 = 0 exactly at step 0"),
        Fault("one-ulp-Z1", "one element of Z1 = W1 X moved by one ulp (nextafter)",
              Case((1, 4, 1), "tanh", learning_rate=0.05, epochs=40, data="planar-x1",
                   name="l2-tanh-float64-one-feature"),
              Location("forward", "Z", 1), _one_ulp, dataset=_planar_one_feature,
              why="below every bound: detected only as identical -> <=4 ulp, so Z1 must be bit-identical "
                  "in the clean run (one input feature: Z1 is one rounded product everywhere)"),
        Fault("float32-A1", "A1 computed in float32 and cast back inside a float64 run", _c2(),
              Location("forward", "A", 1), lambda: _cast_activation("float32")),
        Fault("bfloat16-A1", "A1 computed in bfloat16 (autocast) inside a float32 run",
              grid.case_for(2, "tanh", "float32", False, epochs=40), Location("forward", "A", 1),
              lambda: _cast_activation("bfloat16")),
        Fault("float32-W2", "W2 stored in float32 inside a float64 run", _c2(), Location("forward", "Z", 2),
              _float32_weight),
        Fault("rational-tanh", "tanh replaced by the [3/2] Pade 'fast tanh' x (27 + x^2) / (27 + 9 x^2)", _c2(),
              Location("forward", "A", 1), _rational_tanh),
        Fault("dropped-db", "bias gradients dropped (db = 0: bias not registered as a parameter)", _c2(),
              Location("backward", "db", 2), _dropped_bias_gradient),
        Fault("learning-rate-one-step-late", "the first update uses learning rate 0, the rest are shifted",
              _c2(), Location("update", "W", 1, 0), _late_learning_rate,
              why="the step-0 capture and cost are before any update; the first update, from the reference's "
                  "parameters, is where the learning rate is applied"),
        Fault("first-epoch-reversed", "the first epoch's mini-batches in reverse order", mini,
              Location("trajectory", "cost", None, 0), lambda: _schedule(_first_epoch_reversed),
              why="the step-0 capture runs on the reference's first batch; train's step 0 on the last"),
        Fault("drop-last-batch", "the last, partial mini-batch of every epoch dropped (drop_last=True)", mini,
              Location("trajectory", "cost"), lambda: _schedule(_drop_last),
              why="the trajectory has 30 steps, not 35: one failing trajectory row says so"),
        Fault("softmax-without-max", "softmax as exp(Z) / sum exp(Z), without subtracting max Z, on logits "
              "near 720",
              Case((64, 16, 10), "relu", output_activation="softmax", loss="categorical_cross_entropy",
                   learning_rate=0.05, epochs=20, data="digits", name="l2-relu-softmax-float64-logits720"),
              Location("forward", "A", 2), _unstable_softmax, biases=_logit_offset,
              why="b2 starts at 720 for every class: logits 720 +- a few, beyond exp's overflow at 709.78, while "
                  "their differences stay small (the stable softmax's probabilities and the cost are ordinary); "
                  "gradient steps never move the common offset (dZ2 sums to 0 over the classes)"),
        Fault("sigmoid-through-tanh", "sigmoid written as 0.5 + 0.5 tanh(Z/2): a rounding-level change where the "
              "output is near 0.5, cancellation where it saturates",
              _saturating(name="l1-logreg-float64-saturating"), Location("forward", "A", 1, 2), _sigmoid_through_tanh,
              why="step 0's outputs are unsaturated (the change is below the bound there); by step 2, the "
                  "saturation checkpoint, outputs near 0 have lost their relative accuracy"),
        Fault("l2-on-biases", "the L2 term also over the biases (lambda/(2m) sum ||b||^2 in the cost)",
              _saturating(lambd=0.7, name="l1-logreg-l2-float64-saturating"), Location("forward", "cost", None, 1),
              _l2_on_biases,
              why="biases start at zero: step 0's cost and gradients and the first update are exact; from step 1 "
                  "(a checkpoint, from the reference's non-zero biases) the cost carries the extra term"),
        Fault("gradient-clip", f"gradients clipped to norm {CLIP_NORM} (clip_grad_norm_ left in): fires only on "
              "the largest gradient", _saturating(name="l1-logreg-float64-saturating"),
              Location("backward", "dW", 1, 3), _clipped_gradients,
              why="the clip fires at one step, 3, the reference's gradient peak (a checkpoint): dW1 there is "
                  "scaled; the trajectory shows it one step later"),
    ]


# --------------------------------------------------------------------------- conv faults


@dataclass(frozen=True)
class ConvFault:
    """One bug injected into torch's conv layers (``torch_impl.conv``): run on the conv grid's cases in order
    (``convspec.conv_grid``) until one catches it; ``expected_case`` (a grid case's name) and ``expected`` (phase,
    quantity) say where it must show first."""

    id: str
    description: str
    expected_case: str
    expected: Location
    patch: Callable[[], contextlib.AbstractContextManager]
    why: str = field(default="", compare=False)


def _conv():
    import torch_impl.conv as tc

    return tc


def _conv_forward(change):
    """Patch torch_impl.conv.conv_forward with ``change(A_prev, W, b, hparameters, original)``.  Its backward is
    autograd's at the cached inputs through the same (patched) function: forward and backward stay consistent,
    as a learner's faulty layer is."""
    def make(original):
        def conv_forward(A_prev, W, b, hparameters):
            return change(A_prev, W, b, hparameters, original)
        return conv_forward
    return _replace(_conv(), "conv_forward", make)


def _conv_without_bias():
    import torch.nn.functional as F

    def change(A_prev, W, b, hparameters, original):
        # 0 b keeps b in the graph, so that db is 0, as a bias-less layer's (nn.Conv2d(bias=False)) would be
        Z = F.conv2d(A_prev, W, stride=hparameters["stride"], padding=hparameters["pad"]) + 0 * b
        return Z, (A_prev, W, b, hparameters)
    return _conv_forward(change)


def _kernel_transposed():
    def change(A_prev, W, b, hparameters, original):
        Z, _ = original(A_prev, W.transpose(2, 3), b, hparameters)  # OIHW: the f x f window's rows and columns
        return Z, (A_prev, W, b, hparameters)
    return _conv_forward(change)


def _one_sided_padding():
    import torch.nn.functional as F

    def change(A_prev, W, b, hparameters, original):
        pad = hparameters["pad"]
        if pad == 0:
            return original(A_prev, W, b, hparameters)
        padded = F.pad(A_prev, (2 * pad, 0, 2 * pad, 0))  # every zero before the image: top and left only
        Z = F.conv2d(padded, W, stride=hparameters["stride"]) + b
        return Z, (A_prev, W, b, hparameters)
    return _conv_forward(change)


def _stride_one_in_backward():
    """conv_backward written as the course's loops with ``vert_start = h`` instead of ``h * stride``: the windows
    of dZ's cells placed one apart (a stride-1 convolution over the top-left part of the padded input)."""
    import torch
    import torch.nn.functional as F

    tc = _conv()

    def make(original):
        def conv_backward(dZ, cache):
            A_prev, W, b, hparameters = cache
            if hparameters["stride"] == 1:  # the same windows: nothing to get wrong
                return original(dZ, cache)
            pad, f = hparameters["pad"], W.shape[-1]
            n_H, n_W = dZ.shape[2], dZ.shape[3]
            A_pad = tc.zero_pad(A_prev.detach(), pad).requires_grad_()
            W_, b_ = W.detach().requires_grad_(), b.detach().requires_grad_()
            with torch.enable_grad():
                Z1 = F.conv2d(A_pad[:, :, :n_H + f - 1, :n_W + f - 1], W_) + b_
            dA_pad, dW, db = torch.autograd.grad(Z1, (A_pad, W_, b_), grad_outputs=dZ)
            dA_prev = dA_pad[:, :, pad:pad + A_prev.shape[2], pad:pad + A_prev.shape[3]]
            return dA_prev, dW, db
        return conv_backward
    return _replace(tc, "conv_backward", make)


def _pool_backward(change):
    """Patch torch_impl.conv.pool_backward with ``change(dA, cache, mode, original)`` (None: unchanged)."""
    def make(original):
        def pool_backward(dA, cache, mode="max"):
            out = change(dA, cache, mode, original)
            return original(dA, cache, mode) if out is None else out
        return pool_backward
    return _replace(_conv(), "pool_backward", make)


def _average_not_divided():
    def change(dA, cache, mode, original):
        if mode == "average":
            f = cache[1]["f"]
            return original(dA, cache, mode) * (f * f)  # distribute_value without the division by f f
    return _pool_backward(change)


def _max_to_every_cell():
    def change(dA, cache, mode, original):
        if mode == "max":
            f = cache[1]["f"]
            return original(dA, cache, "average") * (f * f)  # dA to every cell of the window, not the maximum's
    return _pool_backward(change)


def _dW_over_m():
    def make(original):
        def conv_backward(dZ, cache):
            dA_prev, dW, db = original(dZ, cache)
            return dA_prev, dW / dZ.shape[0], db
        return conv_backward
    return _replace(_conv(), "conv_backward", make)


def _float32_input():
    def make(original):
        def forward_backward(A_prev, W, b, dA, case, *args, **kwargs):
            A_prev = A_prev.astype(np.float32).astype(A_prev.dtype)
            return original(A_prev, W, b, dA, case, *args, **kwargs)
        return forward_backward
    return _replace(_conv(), "forward_backward", make)


def conv_catalogue() -> list[ConvFault]:
    """The conv faults, each with the conv grid case and the quantity where it must show first."""
    from nnparity.convspec import conv_grid

    first, average, strided = (c.name for c in conv_grid(("float64",))[:3])
    return [
        ConvFault("conv-without-bias", "Z = W * A_prev without + b (a bias-less layer: db = 0)", first,
                  Location("forward", "Z"), _conv_without_bias),
        ConvFault("kernel-transposed", "the f x f kernel transposed in its spatial axes (W[h, w] used as W[w, h])",
                  first, Location("forward", "Z"), _kernel_transposed),
        ConvFault("padding-one-side", "each axis's 2 pad zeros all on one side (top, left), none on the other",
                  first, Location("forward", "Z"), _one_sided_padding,
                  why="the shapes are the course's, the windows shifted by pad"),
        ConvFault("float32-input", "A_prev rounded to float32 inside a float64 run", first,
                  Location("forward", "Z"), _float32_input),
        ConvFault("max-pool-grad-every-cell", "max-pool backward sends dA to every cell of the window, not to its "
                  "maximum", first, Location("backward", "dZ"), _max_to_every_cell),
        ConvFault("average-pool-grad-not-divided", "average-pool backward without the division by f f", average,
                  Location("backward", "dZ"), _average_not_divided,
                  why="the first case is max pooling, where the fault changes nothing"),
        ConvFault("stride-1-in-backward", "conv_backward's windows at h, w instead of h stride, w stride",
                  strided, Location("backward", "dA_prev"), _stride_one_in_backward,
                  why="the first two cases have stride 1 (no difference); dZ is the pool's, before conv_backward"),
        ConvFault("dW-over-m", "dW divided by m (the cost's mean taken twice)", first, Location("backward", "dW"),
                  _dW_over_m, why="dA_prev, before dW in the order of computation, is untouched"),
    ]


# --------------------------------------------------------------------------- running


class _Runner:
    """Reference runs cached by (case, data, initial biases); data sets cached by name."""

    def __init__(self):
        self._data, self._refs = {}, {}

    def dataset(self, fault: Fault):
        from nnparity import data

        name = fault.case.data
        if name not in self._data:
            self._data[name] = fault.dataset() if fault.dataset else data.load_data(name)
        return self._data[name]

    def conv_reference(self, case, fresh: bool = False):
        from nnparity import conv_harness

        if fresh or case not in self._refs:
            self._refs[case] = conv_harness.run_reference(case)
        return self._refs[case]

    def reference(self, fault: Fault, fresh: bool = False):
        key = (fault.case, fault.biases)
        if fresh or key not in self._refs:
            with _initial_biases(fault.biases):
                self._refs[key] = harness.run_reference(fault.case, self.dataset(fault))
        return self._refs[key]


@contextlib.contextmanager
def _initial_biases(biases):
    """Start the run from ``b[l] = biases(l, n[l])`` instead of zeros (the reference's initialiser, hence every
    implementation); None: unchanged."""
    if biases is None:
        yield
        return
    import reference.initializers as init

    def make(original):
        def initialize_parameters(layer_dims, *args, **kwargs):
            parameters = original(layer_dims, *args, **kwargs)
            for l in range(1, len(layer_dims)):
                b = parameters[f"b{l}"]
                parameters[f"b{l}"] = np.asarray(biases(l, layer_dims[l]), dtype=b.dtype).reshape(b.shape)
            return parameters
        return initialize_parameters

    with _replace(init, "initialize_parameters", make):
        yield


def _compare(ref) -> pd.DataFrame:
    frame = harness.compare_impl(ref, IMPL)
    if (frame["phase"] == "unavailable").any():
        from nnparity.errors import UsageError

        raise UsageError(f"{frame['note'].iloc[0]}; the self-test needs torch (pip install -e '.[torch]')")
    return frame


def _compare_conv(ref) -> pd.DataFrame:
    from nnparity import conv_harness

    frame = conv_harness.compare_conv(ref, IMPL)
    if (frame["phase"] == "unavailable").any():
        from nnparity.errors import UsageError

        raise UsageError(f"{frame['note'].iloc[0]}; the self-test needs torch (pip install -e '.[torch]')")
    return frame


def _describe_conv(row, before, case) -> str:
    """``first divergence: torch conv chain on <case>, dW, 4.5e15 ulp, bound ratio 1.2e14 (within bound -> fail)``"""
    text = (f"first divergence: {IMPL} conv chain on {case}, {row.quantity}, {_num(row.max_ulp)} ulp, "
            f"bound ratio {_num(row.bound_ratio)}")
    text += f" ({before} -> {row.classification})" if before is not None else f" ({row.classification})"
    if isinstance(row.note, str) and row.note and row.classification == "fail" and not np.isfinite(row.bound_ratio):
        text += f" [{row.note}]"
    return text


def run_conv_fault(fault: ConvFault, cases, runner: _Runner | None = None, clean: dict | None = None) -> dict:
    """Run ``fault`` on ``cases`` (conv cases) in order until one catches it, as ``run_fault`` does a dense fault
    (a failing row, or a row classified worse than in the case's clean run); a case whose clean run fails (a
    recorded divergence) is skipped.  ``clean``: case -> its first clean frame, filled as cases are run."""
    from nnparity import impls

    runner = runner or _Runner()
    clean = {} if clean is None else clean
    start = time.perf_counter()
    result = dict(fault=fault.id, description=fault.description, grid="conv",
                  expected=str(fault.expected), expected_case=fault.expected_case, clean_failures=0)
    tried, skipped = 0, 0
    for case in cases:
        ref = runner.conv_reference(case)
        if case not in clean:
            clean[case] = _compare_conv(ref)
        if not clean[case]["passed"].astype(bool).all():
            skipped += 1
            continue
        tried += 1
        error = None
        try:
            with fault.patch():
                impls.clear_compiled()
                faulty = _compare_conv(ref)
        except Exception as exc:  # the faulty chain raised: caught (it cannot run), not localised
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        finally:
            impls.clear_compiled()
        if error is not None:
            return dict(result, case=case.name, detected=True, localised=False, found=f"the faulty run raised {error}",
                        caught_by="", phase=None, quantity=None, layer=None, step=None, max_ulp=np.nan,
                        bound_ratio=np.nan, classification="error", clean_classification=None,
                        diverging_rows=np.nan, cases_run=tried, seconds=time.perf_counter() - start)
        row, before, count = first_divergence(faulty, clean[case])
        if row is not None:
            return dict(result, case=case.name, detected=True,
                        localised=case.name == fault.expected_case and fault.expected.matches(
                            row.phase, row.quantity, None, 0),
                        found=_describe_conv(row, before, case.name), caught_by="conv chain", phase=row.phase,
                        quantity=row.quantity, layer=None, step=0, max_ulp=float(row.max_ulp),
                        bound_ratio=float(row.bound_ratio), classification=row.classification,
                        clean_classification=before, diverging_rows=count, cases_run=tried,
                        seconds=time.perf_counter() - start)
    note = f" ({skipped} skipped: their clean run fails)" if skipped else ""
    return dict(result, case="", detected=False, localised=False,
                found=f"no divergence on {tried} conv cases{note}: every row as in the clean run", caught_by="",
                phase=None, quantity=None, layer=None, step=None, max_ulp=np.nan, bound_ratio=np.nan,
                classification=None, clean_classification=None, diverging_rows=0, cases_run=tried,
                seconds=time.perf_counter() - start)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Bit-for-bit the same comparison: same rows, same errors, same classes."""
    if len(a) != len(b):
        return False
    cols = ["phase", "quantity", "layer", "step", "classification"]
    if not a[cols].astype(str).reset_index(drop=True).equals(b[cols].astype(str).reset_index(drop=True)):
        return False
    for col in ("max_abs_err", "max_ulp", "bound_ratio", "value"):
        x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
        if not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def run_fault(fault: Fault, runner: _Runner | None = None, clean: pd.DataFrame | None = None) -> dict:
    """Run one fault's case clean (unless ``clean`` is given) and faulty; return its row of the results."""
    runner = runner or _Runner()
    ref = runner.reference(fault)
    if clean is None:
        clean = _compare(ref)
    start = time.perf_counter()
    error = None
    try:
        with fault.patch():
            faulty = _compare(ref)
    except Exception as exc:  # a fault that makes the run raise is caught (it cannot run), not localised
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    seconds = time.perf_counter() - start
    result = dict(fault=fault.id, description=fault.description, grid="dense", case=fault.case.id,
                  expected=str(fault.expected), clean_failures=int((~clean["passed"].astype(bool)).sum()))
    if error is not None:
        return dict(result, detected=True, localised=False, found=f"the faulty run raised {error}", caught_by="",
                    phase=None,
                    quantity=None, layer=None, step=None, max_ulp=np.nan, bound_ratio=np.nan,
                    classification="error", clean_classification=None, diverging_rows=np.nan, seconds=seconds)
    row, before, count = first_divergence(faulty, clean)
    if row is None:
        return dict(result, detected=False, localised=False, found="no divergence: every row as in the clean run",
                    caught_by="", phase=None, quantity=None, layer=None, step=None, max_ulp=np.nan, bound_ratio=np.nan,
                    classification=None, clean_classification=None, diverging_rows=0, seconds=seconds)
    phase, quantity, layer, step = _key(row)
    return dict(result, detected=True, localised=fault.expected.matches(phase, quantity, layer, step),
                found=describe_divergence(row, before), caught_by=", ".join(caught_by(faulty, clean)), phase=phase,
                quantity=quantity, layer=layer, step=step,
                max_ulp=float(row.max_ulp), bound_ratio=float(row.bound_ratio), classification=row.classification,
                clean_classification=before, diverging_rows=count, seconds=seconds)


def run_selftest(repeats: int = 20, faults: list[Fault] | None = None, progress=None,
                 conv_faults: list[ConvFault] | None = None, conv_cases=None):
    """Run every fault, then the unaltered cases ``repeats`` more times.  Returns ``(faults_df, clean_df)``.

    ``faults``: the dense faults (default ``catalogue()``); ``conv_faults``: the conv faults (default
    ``conv_catalogue()`` when ``faults`` is not given either, none when it is), each run on ``conv_cases`` (default
    the conv grid, float64 then float32) in order until one catches it.  The conv cases a fault ran on rerun
    unaltered with the dense cases.

    ``faults_df``: one row per fault (fault, description, case, expected, found, detected, localised, the first
    diverging row's phase/quantity/layer/step/max_ulp/bound_ratio/classification and its clean classification,
    the number of diverging rows).  ``clean_df``: one row per (repetition, case); repetition 0 is the first clean
    run, each later one reruns reference and torch and must pass with bit-for-bit the same rows
    (``failures``, ``classification_changes``, ``bitwise_equal``, ``ok``).  ``faults_df.attrs['seconds']`` is the
    wall time.  ``progress(text)``, if given, is called before each run.  Each fault and each repetition
    also reports on stderr as it finishes (:mod:`nnparity.progress`: a bar on a terminal, plain lines otherwise).
    """
    from nnparity.progress import progress as progress_bar

    if conv_faults is None:
        conv_faults = conv_catalogue() if faults is None else []
    faults = catalogue() if faults is None else faults
    if conv_cases is None:
        from nnparity.convspec import conv_grid

        conv_cases = conv_grid()
    with _one_torch_thread(), progress_bar(len(faults) + len(conv_faults) + repeats) as bar:
        return _run_selftest(repeats, faults, progress, bar, conv_faults, list(conv_cases))


@contextlib.contextmanager
def _one_torch_thread():
    """One intra-op thread while the self-test runs (restored after).  Its tensors are small, and on a busy
    2-core machine a second spinning thread makes each run 10-40 times slower.  Clean and faulty runs share the
    setting; it can change the last bits of a large reduction (the 1347-example softmax case's final W2 is 5 ulp
    from the reference with one thread, 10 with two), never a verdict here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fault_status(row: dict) -> str:
    if not row["detected"]:
        return "FAIL: not detected"
    return "pass" if row["localised"] else "detected, not localised"


def _run_selftest(repeats, faults, progress, bar, conv_faults=(), conv_cases=()):
    started = time.perf_counter()
    runner = _Runner()
    first_clean: dict[tuple, pd.DataFrame] = {}
    fault_rows = []
    for fault in faults:
        key = (fault.case, fault.biases)
        t = time.perf_counter()
        if progress:
            progress(f"{fault.id} on {fault.case.id}")
        bar.working(f"self-test: {fault.id} on {fault.case.id}")
        if key not in first_clean:
            first_clean[key] = _compare(runner.reference(fault))
        fault_rows.append(run_fault(fault, runner, first_clean[key]))
        bar.finished(f"self-test fault {fault.id}", _fault_status(fault_rows[-1]), time.perf_counter() - t)
    conv_clean: dict = {}
    for fault in conv_faults:
        t = time.perf_counter()
        if progress:
            progress(f"{fault.id} on the conv grid")
        bar.working(f"self-test: {fault.id} on the conv grid")
        fault_rows.append(run_conv_fault(fault, conv_cases, runner, conv_clean))
        bar.finished(f"self-test conv fault {fault.id}", _fault_status(fault_rows[-1]), time.perf_counter() - t)
    cases = {}
    for fault in faults:
        cases.setdefault((fault.case, fault.biases), fault)
    clean_rows = []
    for key, frame in first_clean.items():
        clean_rows.append(_clean_row(0, cases[key].case.id, frame, frame))
    conv_clean = {case: frame for case, frame in conv_clean.items() if frame["passed"].astype(bool).all()}
    for case, frame in conv_clean.items():
        clean_rows.append(_clean_row(0, case.name, frame, frame, grid="conv"))
    runs = len(cases) + len(conv_clean)
    for repetition in range(1, repeats + 1):
        t = time.perf_counter()
        if progress:
            progress(f"unaltered cases, repetition {repetition} of {repeats}")
        bar.working(f"self-test: unaltered cases, repetition {repetition} of {repeats}")
        for key, fault in cases.items():
            frame = _compare(runner.reference(fault, fresh=True))
            clean_rows.append(_clean_row(repetition, fault.case.id, frame, first_clean[key]))
        for case, first in conv_clean.items():
            frame = _compare_conv(runner.conv_reference(case, fresh=True))
            clean_rows.append(_clean_row(repetition, case.name, frame, first, grid="conv"))
        bad = sum(not r["ok"] for r in clean_rows[-runs:]) if runs else 0
        bar.finished(f"self-test unaltered cases, repetition {repetition}",
                     f"FAIL: {bad} of {runs} runs changed" if bad else "pass", time.perf_counter() - t)
    faults_df = pd.DataFrame(fault_rows)
    faults_df["layer"] = faults_df["layer"].astype("Int64")
    faults_df["step"] = faults_df["step"].astype("Int64")
    clean_df = pd.DataFrame(clean_rows)
    faults_df.attrs["seconds"] = clean_df.attrs["seconds"] = time.perf_counter() - started
    faults_df.attrs["repeats"] = clean_df.attrs["repeats"] = repeats
    return faults_df, clean_df


def _clean_row(repetition, case_id, frame, first, grid="dense") -> dict:
    before = {_key(r): r.classification for r in first.itertuples(index=False)}
    changes = sum(before.get(_key(r)) != r.classification for r in frame.itertuples(index=False))
    failures = int((~frame["passed"].astype(bool)).sum())
    same = _same_rows(frame, first)
    return dict(repetition=repetition, case=case_id, grid=grid, rows=len(frame), failures=failures,
                classification_changes=int(changes), bitwise_equal=same, ok=failures == 0 and changes == 0 and same)


def summary(faults_df: pd.DataFrame, clean_df: pd.DataFrame) -> dict:
    """The three numbers and whether the requirements hold."""
    detected = float(faults_df["detected"].mean()) if len(faults_df) else 0.0
    localised = float(faults_df["localised"].mean()) if len(faults_df) else 0.0
    clean_failures = int((~clean_df["ok"].astype(bool)).sum()) if len(clean_df) else 0
    return dict(faults=len(faults_df), detected_fraction=detected, localised_fraction=localised,
                clean_failures=clean_failures, clean_runs=len(clean_df),
                repeats=int(faults_df.attrs.get("repeats", clean_df["repetition"].max() if len(clean_df) else 0)),
                seconds=round(float(faults_df.attrs.get("seconds", float("nan"))), 1),
                ok=detected >= REQUIRED_DETECTED and localised >= REQUIRED_LOCALISED and clean_failures == 0)


def _is_conv(faults_df: pd.DataFrame) -> np.ndarray:
    """Which rows are conv faults (a frame from before the conv faults has no ``grid`` column: none)."""
    if "grid" not in faults_df:
        return np.zeros(len(faults_df), dtype=bool)
    return (faults_df["grid"] == "conv").to_numpy()


def _yes(flag) -> str:
    return "yes" if bool(flag) else "**no**"


def selftest_markdown(faults_df: pd.DataFrame, clean_df: pd.DataFrame) -> str:
    """The self-test as a Markdown section: policy, the table of faults, the three numbers, determinism."""
    s = summary(faults_df, clean_df)
    lines = [
        "## Self-test: does the suite catch real bugs?",
        "",
        f"**{'PASS' if s['ok'] else 'FAIL'}**: {s['faults']} faults injected into the `torch` implementation; "
        f"detected {s['detected_fraction']:.0%} (required 100%), localised {s['localised_fraction']:.0%} "
        f"(required >= {REQUIRED_LOCALISED:.0%}), {s['clean_failures']} failures in {s['clean_runs']} unaltered "
        f"runs (required 0; {s['repeats']} repetitions of every case after the faults, bit-for-bit equal to the "
        f"first clean run); {s['seconds']} s.",
        "",
        "A fault is *detected* when its run has a failing row or a row classified worse than in the clean run "
        "of the same case (`identical` < `<=4 ulp` < `within bound` < `drifted` < `fail`: the regression view); "
        "a one-ulp change is below every rounding bound and is seen only that way. It is *localised* when the first "
        "such row in the order of computation is the expected (phase, quantity, layer[, step]).",
        "",
        "*Caught by*: the checks that saw it, first one first: step-0 quantity (every forward value and gradient "
        "at step 0), first update, checkpoint quantity (every forward value and gradient recomputed from the "
        "reference's parameters at a later step), trajectory, final parameters, predictions.",
        "",
        "| fault | case | detected | localised | caught by | expected | found |",
        "|---|---|---|---|---|---|---|",
    ]
    conv = _is_conv(faults_df)
    for r in faults_df[~conv].itertuples(index=False):
        found = str(r.found).replace("|", "\\|")
        lines.append(f"| `{r.fault}`: {r.description.replace('|', '/')} | `{r.case}` | {_yes(r.detected)} | "
                     f"{_yes(r.localised)} | {r.caught_by} | {r.expected} | {found} |")
    if conv.any():
        lines += ["", "Conv faults, injected into torch's conv and pool layers (`torch_impl.conv`) and run on the conv "
                      "grid's cases in order (float64 first) until one catches them: the case and quantity that "
                      "caught each first (`conv_harness`: Z, A, dZ, dA_prev, dW, db), with its bound ratio.", "",
                  "| fault | first caught on | quantity | ulp | bound ratio | class | detected | localised | "
                  "expected |", "|---|---|---|---|---|---|---|---|---|"]
        for r in faults_df[conv].itertuples(index=False):
            if r.quantity is None or pd.isna(r.quantity):  # not caught, or the faulty run raised: say so
                where, ulp, ratio, change = str(r.found).replace("|", "\\|"), "", "", ""
            else:
                where, ulp, ratio = f"{r.phase} {r.quantity}", _num(r.max_ulp), _num(r.bound_ratio)
                change = f"{r.clean_classification} -> {r.classification}"
            case = f"`{r.case}`" if r.case else "none"
            expected = r.expected if r.case == r.expected_case else f"{r.expected} on `{r.expected_case}`"
            lines.append(f"| `{r.fault}`: {r.description.replace('|', '/')} | {case} | {where} | {ulp} | {ratio} | "
                         f"{change} | {_yes(r.detected)} | {_yes(r.localised)} | {expected} |")
    if len(clean_df):
        bad = clean_df[~clean_df["ok"].astype(bool)]
        conv_cases = int(clean_df.loc[clean_df["grid"] == "conv", "case"].nunique()) if "grid" in clean_df else 0
        of_conv = f" ({conv_cases} of them conv cases)" if conv_cases else ""
        lines += ["", f"Unaltered runs: {clean_df['case'].nunique()} cases{of_conv} x "
                      f"{len(clean_df['repetition'].unique())} "
                      f"runs, {int(clean_df['failures'].sum())} failing rows, "
                      f"{int(clean_df['classification_changes'].sum())} classification changes, "
                      f"{int((~clean_df['bitwise_equal'].astype(bool)).sum())} runs not bit-for-bit equal to the "
                      "first."]
        for r in bad.head(10).itertuples(index=False):
            lines.append(f"* repetition {r.repetition}, `{r.case}`: {r.failures} failing rows, "
                         f"{r.classification_changes} classification changes, bitwise equal: {r.bitwise_equal}")
    return "\n".join(lines) + "\n"


def format_table(faults_df: pd.DataFrame, clean_df: pd.DataFrame) -> str:
    """Plain-text table for the terminal: fault, detected, localised, expected, found; then the three numbers."""
    s = summary(faults_df, clean_df)
    width = max([len("fault")] + [len(f) for f in faults_df["fault"]])
    conv = _is_conv(faults_df)
    expected_of = [f"{e} on {c}" if is_conv else e
                   for e, c, is_conv in zip(faults_df["expected"], faults_df.get("expected_case", [None] * len(conv)),
                                            conv)]
    exp_width = max([len("expected")] + [len(e) for e in expected_of])
    by_width = max([len("caught by")] + [len(c) for c in faults_df["caught_by"]])
    lines = [f"{'fault':<{width}}  detected  localised  {'caught by':<{by_width}}  {'expected':<{exp_width}}  found"]
    for r, expected in zip(faults_df.itertuples(index=False), expected_of):
        lines.append(f"{r.fault:<{width}}  {'yes' if r.detected else 'NO':<8}  {'yes' if r.localised else 'NO':<9}  "
                     f"{r.caught_by:<{by_width}}  {expected:<{exp_width}}  {r.found}")
    detected, localised = int(faults_df["detected"].sum()), int(faults_df["localised"].sum())
    lines += [
        "",
        f"detected:  {detected} of {s['faults']} faults ({s['detected_fraction']:.0%}; required: all)",
        f"localised: {localised} of {s['faults']} faults ({s['localised_fraction']:.0%}; "
        f"required: at least {REQUIRED_LOCALISED:.0%})",
        f"unaltered runs failing or changed: {s['clean_failures']} of {s['clean_runs']} "
        f"({s['repeats']} repetitions after the faults; required: none)",
        f"{'PASS' if s['ok'] else 'FAIL'} in {s['seconds']:.1f} s",
    ]
    return "\n".join(lines)


def to_json(faults_df: pd.DataFrame, clean_df: pd.DataFrame) -> dict:
    """``{"faults": [...], "clean": [...], "summary": {...}}``, strict JSON (``nnparity.numbers.jsonable``: the ulp
    distance of a NaN is null, an infinite bound ratio ``"inf"``); ``found`` spells them."""
    return jsonable({"faults": faults_df.to_dict("records"), "clean": clean_df.to_dict("records"),
                     "summary": summary(faults_df, clean_df)})
