"""The parity harness: run one case through the implementations and compare them with the reference.

Used by the tests and by the command line.  ``run_case`` returns a tidy pandas
DataFrame, one row per (case, implementation, quantity, layer, step):

=============  ==============================================================
column         meaning
=============  ==============================================================
case           the case's readable id, e.g. ``l4-relu-float32-minibatch64``
impl           ``torch``, ``tf``, ``tf-function`` (``numpy`` is the reference)
dtype          ``float64`` or ``float32``
phase          ``forward``, ``backward``, ``trajectory``, ``final``, ``predictions``
quantity       ``Z``, ``A``, ``cost``, ``dZ``, ``dW``, ``db``, ``dA``, ``W``, ``b``, ``pred``
layer          l of ``Z[l]`` ... (empty for the cost and predictions)
step           gradient step (trajectory rows; step 0 for the forward/backward capture)
max_abs_err    ``max |impl - reference|``
max_rel_err    norm-wise relative: ``max |impl - reference| / max |reference|``
max_ulp        largest distance in units in the last place of the compared dtype
bound_ratio    ``max |impl - reference| / (2 B)``, B the rounding bound (see tolerances)
tol            the tolerance the row's test used, ``criterion`` says on which column
passed         whether it met it
classification ``identical``, ``<=4 ulp``, ``within bound`` or ``fail`` (see ``CLASSES``)
note           why a row failed, or what was not compared
value          the implementation's cost at that step (trajectory rows; empty elsewhere): the data of
               the report's trajectory plot, with ``ReferenceRun.costs`` for the reference
detect_rel     detection power: the smallest relative change of the quantity (a bug scaling it by
               ``1 + delta``) that this row's tolerance flags (see ``detect_rel``); inf: no power;
               empty where it does not apply (predictions)
fp64_dist      float32 free run (trajectory after step 1, final parameters): the implementation's
               distance from the float64 run of the case (``nnparity.arbiter``; a running maximum
               over the steps so far); empty elsewhere
fp64_envelope  the same distance of honest float32 runs (the reference's and its one-ulp reruns)
arbiter_ratio  ``fp64_dist / (FACTOR x max(fp64_envelope, 2 B))``: the row fails above 1
=============  ==============================================================
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nnparity import arbiter as fp64_arbiter
from nnparity import impls as impl_registry
from nnparity import timing
from nnparity import tolerances as tol
from nnparity.checkpoints import (  # noqa: F401 (re-exported)
    DEFAULT_CHECKPOINTS,
    FOUND_CHECKPOINTS,
    NAMED_STEPS,
    SATURATED,
    fixed_checkpoints,
    parse_checkpoints,
)
from nnparity.metrics import bound_ratio as _bound_ratio
from nnparity.metrics import classify, detect_rel, max_ulp, mismatch, scale, ulp_distance  # noqa: F401 (re-exported)
from nnparity.metrics import errors as _errors
from nnparity.spec import REFERENCE_IMPL, Case, split_name

COLUMNS = [
    "case", "impl", "dtype", "phase", "quantity", "layer", "step",
    "max_abs_err", "max_rel_err", "max_ulp", "bound_ratio", "tol", "criterion", "passed", "classification", "note",
    "value", "detect_rel", "fp64_dist", "fp64_envelope", "arbiter_ratio",
]

#: Classes of a comparison, best first: bit-for-bit equal; within 4 units in the last place of the
#: compared dtype (typical of a reordered sum); within the derived bound; ``drifted``: a float32 free-run row
#: (a trajectory step after step 1, or a final parameter) beyond its one-pass rounding bound because earlier
#: steps' differences were carried and amplified, but within the float64 arbiter's limit (see
#: ``trajectory_criterion``); failing.
CLASSES = ("identical", "<=4 ulp", "within bound", "drifted", "fail")

#: Order of phases inside one step (forward values, then gradients, then that step's free-running cost, then
#: the update); the final parameters and the predictions come after every step.
PHASE_RANK = {"forward": 0, "backward": 1, "trajectory": 2, "update": 3, "final": 4, "predictions": 5}


def prepare(case: Case, dataset):
    """Data cast to the case's dtype, the reference's initial parameters, and the mini-batch schedule."""
    from reference.initializers import initialize_parameters
    from reference.utils import minibatch_schedule, one_hot

    Y = dataset.Y if case.output_activation == "sigmoid" else one_hot(dataset.Y, case.classes)
    X, Y = dataset.X.astype(case.dtype), Y.astype(case.dtype)
    parameters = fp64_arbiter.perturbed(initialize_parameters(case.layer_dims, case.init, case.init_scale, case.seed,
                                                              case.dtype, case.bias_scale))
    schedule = minibatch_schedule(X.shape[1], case.batch_size, case.epochs, case.shuffle_seed)
    return X, Y, parameters, schedule


def _failure_note(value, ref, B, note, normwise=False, name="2B") -> str:
    """The note of a failing elementwise row (a capture, the first update): ``note``, then how many elements
    are over the bound, the worst one's index and both values, and the bound there (``metrics.mismatch``)."""
    limit = dict(limit=tol.FLOAT64_NORMWISE * scale(ref), limit_name=f"{tol.FLOAT64_NORMWISE:g} max|ref|") \
        if normwise else {}
    message = mismatch(value, ref, 2 * np.asarray(B, dtype=np.float64), name, **limit).message
    return f"{note}: {message}" if note and message else (message or note)


#: float32 trajectory steps gated by their own rounding bound: step 0 (same parameters: one forward pass's
#: rounding) and step 1 (one update's rounding carried into one forward pass, bounded to first order in
#: ``run_reference``); later steps are judged by the float64 arbiter (``trajectory_criterion``).
GATED_FLOAT32_STEPS = 2


def default_checkpoints(steps: int) -> tuple[int, ...]:
    """The default checkpoints known before training (``DEFAULT_CHECKPOINTS`` without the ones found from the
    reference's run), as far as the run has them."""
    return tuple(sorted(fixed_checkpoints(DEFAULT_CHECKPOINTS, steps)))


def trajectory_criterion(case: Case, step: int | None = None) -> str:
    """How a step of the free-running cost trajectory passes.

    float64: relative difference <= ``FLOAT64_TRAJECTORY`` (1e-10, see tolerances) at every step.
    float32, steps 0 and 1: difference <= 2 B, B the rounding bound of that step's forward pass (step 1:
    plus, to first order, the rounding of the one update before it).  float32 from step 2 on: each update
    carries the previous difference forward and an expansive phase (a relu unit switching on, a saddle)
    amplifies a rounding-level difference far beyond one pass's bound -- a BLAS kernel or thread-count
    change moves the reference itself by that much.  Those steps are judged by the **float64 arbiter**
    (``nnparity.arbiter``): the implementation's distance from the float64 run of the case at most
    ``FACTOR`` times that of honest float32 runs; beyond one pass's bound but within it, a row is
    ``drifted``.  The checkpoints gate every forward value and gradient recomputed from the reference's own
    parameters (``DEFAULT_CHECKPOINTS``), where the per-step bound is a real bound.
    """
    if case.dtype == "float64":
        return f"max_rel_err<={tol.FLOAT64_TRAJECTORY:g}"
    if step is None or step < GATED_FLOAT32_STEPS:
        return "bound_ratio<=1"
    return ARBITER_CRITERION


#: The criterion of a float32 free-run row judged by the float64 arbiter.
ARBITER_CRITERION = "arbiter_ratio<=1"


def _failed(phase, quantity, layer, step, criterion, note) -> dict:
    """A row for something that could not be compared: it fails, and the note says why."""
    return dict(phase=phase, quantity=quantity, layer=layer, step=step, max_abs_err=np.inf, max_rel_err=np.inf,
                max_ulp=np.inf, bound_ratio=np.inf, tol=np.nan, criterion=criterion, passed=False, note=note)


def _fetch(result, key, ref, dtype, what):
    """``result[key]`` as a NumPy array checked against the reference's shape and the case's dtype,
    or (None, the reason it cannot be compared)."""
    if not isinstance(result, dict):
        return None, f"{what} returned {type(result).__name__}, not a dict of arrays"
    if key not in result:
        return None, f"{key} is missing from {what}'s result"
    try:
        value = np.asarray(result[key])
    except Exception as exc:  # a framework tensor that will not convert, an object, ...
        return None, f"{key} from {what} is not an array ({type(result[key]).__name__}: {exc})"
    if value.shape != np.shape(ref):
        return None, f"{key} from {what} has shape {value.shape}, the reference's is {np.shape(ref)}"
    if value.dtype != np.dtype(dtype):
        return None, f"{key} from {what} is {value.dtype}, the case is {dtype}"
    return value, ""


def compare_capture(case, impl, captured, reference, B, step=0, what="forward_backward"):
    """Every forward value and gradient of one pass against the reference's, at step ``step``.

    Every row: bound ratio <= 1.  At step 0, float64 also to ``FLOAT64_NORMWISE`` norm-wise relative (the
    project's promise).  At later checkpoints the bound ratio alone: near a stationary point a gradient is
    formed by cancellation (measured: dW1 of a linear 2-layer network at step 199 is ~1e-7 of the terms it
    sums), where a norm-wise relative error measures the cancellation, not the implementation; the derived
    bound accounts for it, and in float64 it is far tighter than 1e-12 of the terms."""
    rows = []
    normwise = case.dtype == "float64" and step == 0
    for key, ref in reference.items():
        stem, layer = split_name(key)
        phase = "forward" if stem in ("Z", "A", "cost") else "backward"
        criterion = "bound_ratio<=1"
        if normwise:
            criterion = f"bound_ratio<=1 and max_rel_err<={tol.FLOAT64_NORMWISE:g}"
        value, problem = _fetch(captured, key, ref, case.dtype, what)
        if problem:
            rows.append(_failed(phase, stem, layer, step, criterion, problem))
            continue
        abs_err, rel_err, note = _errors(value, ref)
        ratio = np.inf if note.startswith("non-finite values differ") else _bound_ratio(value, ref, B[key])
        ok = ratio <= 1 and (not normwise or rel_err <= tol.FLOAT64_NORMWISE)
        note = note if ok else _failure_note(value, ref, B[key], note, normwise)
        rows.append(dict(phase=phase, quantity=stem, layer=layer, step=step, max_abs_err=abs_err, max_rel_err=rel_err,
                         max_ulp=max_ulp(value, ref, case.dtype), bound_ratio=ratio, tol=1.0, criterion=criterion,
                         passed=bool(ok), note=note,
                         detect_rel=detect_rel(ref, B[key], tol.FLOAT64_NORMWISE if normwise else np.inf)))
    return rows


def final_bounds(case, capture_bounds, capture, path, steps, final_parameters) -> dict:
    """Rounding bound E of each final parameter (norm-wise, absolute), without feedback.

    Each update moves a parameter by a step whose relative rounding error is at most
    rho, the norm-wise relative bound of its gradient at step 0 (``max B_dW / max |dW|``;
    doubled for RMSprop and Adam, whose step is a ratio of two moments), and rounds the
    new value once.  Summed over the run: ``E = rho * max(path) + steps * u * max |theta|``,
    ``path`` the sum of the reference's |updates|.  How far an implementation's
    differences are *amplified* by later steps is not in E: that is the drift the
    divergence horizon measures (in float32 the final parameters are therefore measured, not gated).
    """
    u = tol.UNIT_ROUNDOFF[case.dtype]
    factor = 2 if case.optimizer in ("rmsprop", "adam") else 1
    E = {}
    for key, theta in final_parameters.items():
        g, Bg = np.abs(capture[f"d{key}"]), capture_bounds[f"d{key}"]
        rho = factor * float(np.max(Bg) / np.max(g)) if np.max(g) > 0 else 0.0
        E[key] = rho * float(np.max(path[key])) + steps * u * float(np.max(np.abs(theta)))
    return E


#: Roundings in one step-1 update, at most: Adam's two moments, two bias corrections, sqrt, + eps, division,
#: product with the learning rate (the other optimisers have fewer).
UPDATE_ROUNDINGS = 8


def first_update_bounds(case, parameters, grads, grad_bounds) -> dict:
    """Elementwise rounding bound E of the parameters after the first update, from the reference's.

    At step 1 every optimiser's update is an elementwise, monotone function of the gradient g (gd
    ``alpha g``, momentum ``alpha (1 - beta) g``, RMSprop and Adam ``alpha g / (|g| c + eps)``), so an
    implementation whose gradient is within ``B_g`` of the exact one lands within
    ``E = max |update(g +- B_g) - update(g)| + UPDATE_ROUNDINGS u |update| + u |theta_1|`` of the exact
    parameters.
    """
    from reference import model  # the update the reference's train calls

    u = tol.UNIT_ROUNDOFF[case.dtype]
    P = {k: np.asarray(v, dtype=np.float64) for k, v in parameters.items()}
    case64 = case.replace(dtype="float64")

    def step(g):
        return model.update(P, g, model.initialize_optimizer_state(P, case.optimizer), case64, t=1)[0]

    g = {f"d{k}": np.asarray(grads[f"d{k}"], dtype=np.float64) for k in P}
    exact = step(g)
    up = step({d: v + grad_bounds[d] for d, v in g.items()})
    down = step({d: v - grad_bounds[d] for d, v in g.items()})
    return {k: (np.maximum(np.abs(up[k] - exact[k]), np.abs(down[k] - exact[k]))
                + UPDATE_ROUNDINGS * u * np.abs(exact[k] - P[k]) + u * np.abs(exact[k]) + tol.UNDERFLOW[case.dtype])
            for k in P}


def step1_carried_bound(E, next_grads) -> float:
    """To first order, how much the first update's rounding (``E``, ``first_update_bounds``) moves the cost
    of step 1: ``sum |dJ/dtheta(theta_1)| E``."""
    return float(sum(np.sum(np.abs(np.asarray(next_grads[f"d{k}"], dtype=np.float64)) * E[k]) for k in E))


def compare_first_update(case, params, ref_params, E):
    """The parameters after one update from the reference's initial parameters (the same first batch and
    masks), elementwise against ``first_update_bounds``: in float32 the optimiser's formula is checked here,
    before any later step can amplify a difference."""
    rows = []
    for key, ref in ref_params.items():
        stem, layer = split_name(key)
        value, problem = _fetch(params, key, ref, case.dtype, "train")
        if problem:
            rows.append(_failed("update", stem, layer, 0, "bound_ratio<=1", problem))
            continue
        a, r, note = _errors(value, ref)
        ratio = np.inf if note.startswith("non-finite values differ") else _bound_ratio(value, ref, E[key])
        note = note if ratio <= 1 else _failure_note(value, ref, E[key], note, name="2E")
        rows.append(dict(phase="update", quantity=stem, layer=layer, step=0, max_abs_err=a, max_rel_err=r,
                         max_ulp=max_ulp(value, ref, case.dtype), bound_ratio=ratio, tol=1.0,
                         criterion="bound_ratio<=1", passed=bool(ratio <= 1), note=note,
                         detect_rel=detect_rel(ref, E[key])))
    return rows


def compare_training(ref: "ReferenceRun", costs, params, steps: int | None = None):
    """The free-running cost trajectory, step by step, against ``ref``'s, and the final parameters (see
    ``trajectory_criterion``).  ``steps``: a run cut to its first ``steps`` steps (``horizon_steps``), its costs
    compared up to there and no final parameters (a cut run has none to compare)."""
    n = len(ref.costs) if steps is None else steps
    rows = _compare_trajectory(ref.case, costs, np.asarray(ref.costs[:n], dtype=np.float64), ref.cost_bounds[:n],
                               ref.arbiter)
    if n < len(ref.costs):
        return rows
    return rows + _compare_final(ref.case, params, ref.final_parameters, ref.final_bounds, ref.arbiter)


def _compare_trajectory(case, costs, ref_costs, cost_bounds, arbiter):
    criterion = trajectory_criterion(case)
    value, problem = _fetch({"costs": costs}, "costs", ref_costs, case.dtype, "train")
    if problem:
        if value is None and "shape" in problem:
            problem = f"train returned {np.size(costs)} costs, one per gradient step is {ref_costs.size}"
        return [_failed("trajectory", "cost", None, None, criterion, problem)]
    costs = value.astype(np.float64)
    both_nan = np.isnan(costs) & np.isnan(ref_costs)
    same = (costs == ref_costs) | both_nan  # equal infinities (saturated outputs) included
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        abs_err = np.where(same, 0.0, np.abs(costs - ref_costs))
        rel_err = np.where(same, 0.0, abs_err / np.abs(ref_costs))
        ratio = np.where(same, 0.0, abs_err / (2 * cost_bounds))
    for err in (abs_err, rel_err, ratio):
        err[np.isnan(err)] = np.inf
    steps = np.arange(costs.size)
    dist = envelope = arbiter_ratio = np.full(costs.size, np.nan)
    if case.dtype == "float64":
        passed, drifted = rel_err <= tol.FLOAT64_TRAJECTORY, np.zeros(costs.size, dtype=bool)
        power = np.full(costs.size, tol.FLOAT64_TRAJECTORY)
    else:
        gated = steps < GATED_FLOAT32_STEPS
        comparable = np.isfinite(abs_err)  # a non-finite cost where the reference's is finite (or the reverse)
        dist, envelope = arbiter.cost_distance(costs), arbiter.cost_envelope[:costs.size]
        limit = fp64_arbiter.limit(envelope, fp64_arbiter.floor(arbiter.costs64[:costs.size], case.dtype))
        with np.errstate(divide="ignore", invalid="ignore"):
            arbiter_ratio = np.where(dist == 0, 0.0, dist / limit)
        arbiter_ratio[np.isnan(arbiter_ratio)] = np.inf
        passed = np.where(gated, ratio <= 1, comparable & (arbiter_ratio <= 1))
        drifted = ~gated & passed & (ratio > 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            later = limit / np.abs(ref_costs)  # a change of the cost beyond the limit fails, to first order
        power = np.where(gated, [detect_rel(c, b) for c, b in zip(ref_costs, cost_bounds)],
                         np.nan_to_num(later, nan=np.inf))
        dist, envelope = np.where(gated, np.nan, dist), np.where(gated, np.nan, envelope)
        arbiter_ratio = np.where(gated, np.nan, arbiter_ratio)
    ulps = ulp_distance(costs, ref_costs, case.dtype)
    rows = []
    for step in steps:
        note = ""
        if both_nan[step]:
            note = "both NaN (saturated cross-entropy)"
        elif same[step] and np.isinf(costs[step]):
            note = "both inf: the outputs saturated (AL rounded to exactly 0 or 1)"
        elif not np.isfinite(abs_err[step]):
            note = f"cost {costs[step]:g} where the reference's is {ref_costs[step]:g}"
        rows.append(dict(phase="trajectory", quantity="cost", layer=None, step=int(step),
                         max_abs_err=float(abs_err[step]),
                         max_ulp=float(ulps[step]) if np.isfinite(ulps[step]) else np.inf,
                         max_rel_err=float(rel_err[step]), bound_ratio=float(ratio[step]),
                         tol=tol.FLOAT64_TRAJECTORY if case.dtype == "float64" else 1.0,
                         criterion=trajectory_criterion(case, int(step)), passed=bool(passed[step]),
                         drifted=bool(drifted[step]), note=note, value=float(costs[step]),
                         detect_rel=float(power[step]), fp64_dist=float(dist[step]),
                         fp64_envelope=float(envelope[step]), arbiter_ratio=float(arbiter_ratio[step])))
    return rows


def _compare_final(case, params, ref_params, E, arbiter):
    """Final parameters: float64 to 1e-10 norm-wise relative; float32 by the float64 arbiter (distance from
    the float64 run's at most ``FACTOR`` times honest float32 runs', floored at 2 E), ``drifted`` beyond their
    accumulated rounding bound E (``final_bounds``)."""
    rows = []
    float64 = case.dtype == "float64"
    criterion = f"max_rel_err<={tol.FLOAT64_TRAJECTORY:g}" if float64 else ARBITER_CRITERION
    for key, ref in ref_params.items():
        stem, layer = split_name(key)
        value, problem = _fetch(params, key, ref, case.dtype, "train")
        if problem:
            rows.append(_failed("final", stem, layer, None, criterion, problem))
            continue
        a, r, note = _errors(value, ref)
        ratio = a / (2 * E[key]) if E[key] > 0 else (0.0 if a == 0 else np.inf)
        comparable = not note.startswith("non-finite values differ")
        judged = dict(detect_rel=tol.FLOAT64_TRAJECTORY)
        ok = r <= tol.FLOAT64_TRAJECTORY
        if not float64:
            dist, envelope = arbiter.final_distance(key, value), arbiter.final_envelope[key]
            limit = fp64_arbiter.FACTOR * max(envelope, 2 * E[key])
            arbiter_ratio = 0.0 if dist == 0 else (dist / limit if limit > 0 else np.inf)
            scale = float(np.max(np.abs(arbiter.final64[key]), initial=0.0))
            ok = comparable and arbiter_ratio <= 1
            judged = dict(fp64_dist=dist, fp64_envelope=envelope, arbiter_ratio=arbiter_ratio,
                          detect_rel=limit / scale if scale > 0 else np.inf)
        rows.append(dict(phase="final", quantity=stem, layer=layer, step=None, max_abs_err=a, max_rel_err=r,
                         max_ulp=max_ulp(value, ref, case.dtype), bound_ratio=ratio,
                         tol=tol.FLOAT64_TRAJECTORY if float64 else 1.0, criterion=criterion, passed=bool(ok),
                         drifted=bool(not float64 and ok and ratio > 1), note=note, **judged))
    return rows


def compare_predictions(case, impl, ref: "ReferenceRun"):
    """The implementation's own ``predictions`` on the reference's final parameters, against the
    reference's ``predict``: they may differ only where the decision is within rounding of a tie (AL within
    its forward bound of 0.5; for softmax, the top two classes within the sum of their bounds)."""
    from reference.model import predict

    criterion = "differing predictions only at a tie"
    try:
        with timing.phase(getattr(impl, "name", "?"), "predictions"):
            with _deadline():
                got = impl.predictions(ref.final_parameters, ref.X, ref.case)
    except Exception as exc:  # noqa: BLE001 - any error of the implementation becomes a failing row
        return [_failed("predictions", "pred", None, None, criterion, _raised("predictions", exc))]
    expected = predict(ref.X, ref.final_parameters, case)
    try:
        value = np.asarray(got)
    except Exception as exc:  # noqa: BLE001
        value = None, f"predictions returned {type(got).__name__}, not an array ({exc})"
    if not isinstance(value, np.ndarray) or value.shape != expected.shape:
        problem = value[1] if isinstance(value, tuple) else \
            f"predictions has shape {value.shape}, the reference's is {expected.shape}"
        return [_failed("predictions", "pred", None, None, criterion, problem)]
    differ = (value != expected).reshape(-1)
    AL64, B = ref.output_bounds
    if case.output_activation == "softmax":
        order = np.argsort(AL64, axis=0)
        top, second = order[-1], order[-2]
        cols = np.arange(AL64.shape[1])
        tie = AL64[top, cols] - AL64[second, cols] <= B[top, cols] + B[second, cols]
    else:
        tie = (np.abs(AL64 - 0.5) <= B).reshape(-1)
    unexplained = int(np.sum(differ & ~tie))
    note = f"{int(differ.sum())} of {differ.size} predictions differ" if differ.any() else ""
    if unexplained:
        note += f", {unexplained} of them not at a tie"
    return [dict(phase="predictions", quantity="pred", layer=None, step=None, max_abs_err=float(differ.mean()),
                 max_ulp=0.0 if not differ.any() else np.nan, max_rel_err=float(differ.mean()),
                 bound_ratio=float(unexplained), tol=0.0, criterion=criterion, passed=unexplained == 0, note=note)]


@dataclass
class Checkpoint:
    """One step's inputs (the reference's parameters before that step's update, its batch and masks), the
    reference's capture there and the rounding bounds of every quantity."""

    X: np.ndarray
    Y: np.ndarray
    parameters: dict
    masks: list | None
    capture: dict
    bounds: dict
    why: str = "step"  # why this step: step, middle, last, saturation, gradient-peak (or several)


@dataclass
class ReferenceRun:
    """Everything the reference computed for one case, shared by every implementation's comparison."""

    case: Case
    X: np.ndarray
    Y: np.ndarray
    X0: np.ndarray  # the first step's batch: the step-0 capture runs on it
    Y0: np.ndarray
    parameters: dict
    schedule: list | None
    masks: list | None  # dropout masks of every step, or None
    capture: dict
    bounds: dict
    costs: np.ndarray
    cost_bounds: np.ndarray
    final_parameters: dict
    final_bounds: dict  # the rounding bound E of each final parameter (see final_bounds)
    checkpoints: dict = field(default_factory=dict)  # step (> 0) -> Checkpoint
    output_bounds: tuple = ()  # (AL in float64, its rounding bound) on the final parameters and all of X
    first_update: dict = field(default_factory=dict)  # the parameters after the first update
    first_update_bounds: dict = field(default_factory=dict)  # their elementwise bound (first_update_bounds)
    trajectory: bool = True  # False: no cost bounds (run_reference's trajectory=False)
    arbiter: fp64_arbiter.Arbiter | None = None  # float32 with a trajectory: the float64 run and the envelope


def _capture_with_bounds(case, parameters, X, Y, masks):
    """The reference's capture in the case's dtype, its float64 twin, and the bounds B of every quantity."""
    from reference.model import forward_backward

    capture = forward_backward(parameters, X, Y, case, masks)
    ref64 = forward_backward({k: v.astype(np.float64) for k, v in parameters.items()},
                             X.astype(np.float64), Y.astype(np.float64), case.replace(dtype="float64"), masks)
    return capture, ref64, tol.bounds(parameters, X, Y, case, captured=ref64, masks=masks)


def run_reference(case: Case, dataset, checkpoints=None, trajectory=True) -> ReferenceRun:
    """Run the reference on ``case``: the capture at step 0 and at every checkpoint, the rounding bounds,
    and training.  ``checkpoints``: steps and names to capture (``parse_checkpoints``; default
    ``DEFAULT_CHECKPOINTS``; step 0 is always compared).  ``trajectory=False`` leaves out the bound of every
    step's cost (half the reference's time), which only the free-running trajectory is compared with: such a
    run serves ``compare_impl`` without ``FREE_RUN`` only.  The found ones (``FOUND_CHECKPOINTS``) come from the
    reference's own run: its ``before_update`` hook sees every step's parameters, and the harness keeps the
    inputs of the best step so far (a forward pass per step for the saturation, the update for the gradient)."""
    with timing.phase(REFERENCE_IMPL, "reference"):
        return _run_reference(case, dataset, checkpoints, trajectory)


def _run_reference(case: Case, dataset, checkpoints, trajectory) -> ReferenceRun:
    from reference.model import model_forward, train
    from reference.optimizers import learning_rates
    from reference.utils import dropout_masks

    X, Y, parameters, schedule = prepare(case, dataset)
    masks = dropout_masks(case, schedule, X.shape[1])
    steps = case.epochs if schedule is None else len(schedule)
    spec = DEFAULT_CHECKPOINTS if checkpoints is None else tuple(checkpoints)
    requested = fixed_checkpoints(spec, steps, case.id) - {0}
    wanted = requested | ({1} if steps > 1 else set())  # step 1's gradients bound the first update's effect
    # The step-0 capture is the first training step itself: on the first mini-batch, if any.
    X0, Y0 = (X, Y) if schedule is None else (X[:, schedule[0]], Y[:, schedule[0]])
    masks0 = None if masks is None else masks[0]
    capture, ref64, B = _capture_with_bounds(case, parameters, X0, Y0, masks0)
    cost_bounds = np.full(steps, np.nan)
    path = {k: np.zeros(v.shape) for k, v in parameters.items()}  # sum of |update| per parameter
    rates = learning_rates(case, steps)
    inputs = {}  # step -> (X_batch, Y_batch, parameters, masks) of the checkpoints
    found = {name: (None, (-np.inf,), None) for name in FOUND_CHECKPOINTS if name in spec}  # (step, score, inputs)
    previous = [None]  # the previous step's inputs: its update is seen one step later

    def keep_best(name, step, score, step_inputs):
        if name in found and score > found[name][1]:
            found[name] = (step, score, step_inputs)

    def update_seen(params):  # the previous step's update |theta_t+1 - theta_t|, relative to its rate
        t, (_, _, before, _) = previous[0]
        size = 0.0
        for k in path:
            change = np.abs(params[k].astype(np.float64) - before[k])
            path[k] += change
            size += float(np.sum(change * change))
        keep_best("gradient-peak", t, (np.sqrt(size) / rates[t],), previous[0][1])

    def bound_step(step, params, X_batch, Y_batch):
        step_masks = None if masks is None else masks[step]
        step_inputs = (X_batch, Y_batch, params, step_masks)
        if trajectory:
            cost_bounds[step] = tol.cost_bound(params, X_batch, Y_batch, case, step_masks)
        if step in wanted:
            inputs[step] = step_inputs
        if "saturation" in found:
            AL = model_forward(X_batch, params, case, step_masks)[0].astype(np.float64)
            keep_best("saturation", step, (float(np.mean(np.minimum(AL, 1 - AL) <= SATURATED)),
                                           -float(np.min(AL * (1 - AL)))), step_inputs)
        if previous[0] is not None:
            update_seen(params)
        previous[0] = (step, step_inputs)

    with np.errstate(all="ignore"):  # a saturated output's log(0) is the reference's result, not a warning
        final_parameters, costs = train(parameters, X, Y, case, schedule, masks, before_update=bound_step)
        update_seen(final_parameters)
    reasons = {t: ("middle" if t == steps // 2 else "last" if t == steps - 1 else "step") for t in requested}
    for name, (t, _, step_inputs) in found.items():
        if t == 0:  # the step-0 capture compares it already
            continue
        requested.add(t)
        inputs[t] = step_inputs
        reasons[t] = name if t not in reasons or reasons[t] == "step" else f"{reasons[t]}, {name}"
    saved = {t: inputs[t] + _capture_with_bounds(case, inputs[t][2], inputs[t][0], inputs[t][1], inputs[t][3])
             for t in sorted(wanted | requested)}
    E = final_bounds(case, B, ref64, path, steps, final_parameters)
    E1 = first_update_bounds(case, parameters, ref64, B)
    if 1 in saved and case.dtype != "float64":  # step 1 carries one update's rounding (trajectory_criterion)
        cost_bounds[1] += step1_carried_bound(E1, saved[1][5])
    points = {t: Checkpoint(Xt, Yt, Pt, Dt, Ct, Bt, reasons[t]) for t, (Xt, Yt, Pt, Dt, Ct, _, Bt) in saved.items()
              if t in requested}
    arbiter = None
    if trajectory and case.dtype != "float64":
        arbiter = fp64_arbiter.run(case, parameters, X, Y, schedule, masks, costs, final_parameters)
    return ReferenceRun(case, X, Y, X0, Y0, parameters, schedule, masks, capture, B, costs, cost_bounds,
                        final_parameters, E, points, _output_bounds(case, final_parameters, X, Y),
                        saved[1][2] if 1 in saved else final_parameters, E1, trajectory, arbiter)


def _output_bounds(case, parameters, X, Y):
    """AL on the final parameters in float64 and its rounding bound in the case's dtype: what a prediction
    may legitimately flip on."""
    from reference.model import forward_backward

    P = {k: np.asarray(v, dtype=np.float64) for k, v in parameters.items()}
    case64 = case.replace(dtype="float64", lambd=0.0, keep_prob=1.0)
    with np.errstate(all="ignore"):
        captured = forward_backward(P, X.astype(np.float64), Y.astype(np.float64), case64)
        B = tol.bounds(P, X, Y, case.replace(lambd=0.0, keep_prob=1.0), captured=captured)
    return captured[f"A{case.L}"], B[f"A{case.L}"]


#: The longest an implementation's call (``train``, ``forward_backward``, ``predictions``) may take, in seconds, or
#: None: no limit (``nnparity report --timeout``).  Enforced by an interval timer in the main thread: a call stuck in
#: Python code (a loop that never ends) is stopped there and becomes a failing row; one stuck inside a C call is
#: stopped when that call returns.
CALL_TIMEOUT: float | None = None


class CallTimeout(Exception):
    """An implementation's call ran past ``CALL_TIMEOUT``."""


@contextlib.contextmanager
def call_timeout(seconds: float | None):
    """``CALL_TIMEOUT`` set to ``seconds`` inside the block, and back as it was after it (a report run in this
    process, a test's for instance, leaves no limit behind for later callers)."""
    global CALL_TIMEOUT
    previous, CALL_TIMEOUT = CALL_TIMEOUT, seconds
    try:
        yield
    finally:
        CALL_TIMEOUT = previous


@contextlib.contextmanager
def _deadline():
    """``CallTimeout`` in the block once ``CALL_TIMEOUT`` seconds have passed (main thread only; else no limit)."""
    import signal
    import threading

    if not CALL_TIMEOUT or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CallTimeout(CALL_TIMEOUT)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _raised(what, exc) -> str:
    """``train raised ValueError: ... (my_impl.py:42)``: the exception and the implementation's line."""
    import traceback

    if isinstance(exc, CallTimeout):
        return f"{what} did not return within {exc.args[0]:g} s (nnparity report --timeout)"
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f for f in reversed(frames) if "nnparity/harness" not in f.filename.replace("\\", "/")), None)
    place = f" ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{what} raised {type(exc).__name__}: {message}{place}"


def horizon_steps(case: Case, steps: int, horizon: int | None) -> int:
    """The steps of a free run cut to at least ``horizon`` steps, rounded up to whole epochs (a decaying rate
    changes per epoch, so a run of whole epochs has the rates of the full run's first epochs); ``steps`` when
    ``horizon`` is None or the run is that short already."""
    from reference.optimizers import steps_per_epoch

    if horizon is None or horizon >= steps:
        return steps
    per_epoch = steps_per_epoch(case, steps)
    return min(steps, -(-horizon // per_epoch) * per_epoch)


#: What ``compare_impl`` can compare, in the order it runs them: the forward values and gradients at step 0 and
#: at every checkpoint (from the reference's parameters), the parameters after the first update, the free run
#: (its trajectory and final parameters) and the predictions on the reference's final parameters.
CAPTURES, FIRST_UPDATE, FREE_RUN, PREDICTIONS = "captures", "first update", "free run", "predictions"
PARTS = (CAPTURES, FIRST_UPDATE, FREE_RUN, PREDICTIONS)


def compare_impl(ref: ReferenceRun, name, parts=None, horizon: int | None = None) -> pd.DataFrame:
    """Run implementation ``name`` (a registry name, or an object with the registry's entry points) on
    the reference's inputs and compare ``parts`` (``PARTS``; default: every part ``ref`` has -- the free run only
    when it was run with ``trajectory=True``).  Whatever the implementation does (raises, returns the wrong
    shapes, dtypes or lengths, NaNs), the result is rows: failing ones that say what is wrong.  Without
    ``FIRST_UPDATE``, ``FREE_RUN`` and ``PREDICTIONS`` ``train`` and ``predictions`` are never called (``nnparity
    explain``'s captures); the free run is most of an eager framework's time.  ``horizon``: the free run stops
    after that many steps (``horizon_steps``: whole epochs; the quick tier's eager twins, ``nnparity.tiers``), its
    costs compared step by step up to there, no final-parameter rows, and its last row's note says so."""
    case = ref.case
    wanted = set(PARTS if ref.trajectory else set(PARTS) - {FREE_RUN}) if parts is None else set(parts)
    if wanted - set(PARTS) or CAPTURES not in wanted:
        raise ValueError(f"compare_impl: parts {sorted(wanted)} must be among {PARTS} and include {CAPTURES!r}")
    if FREE_RUN in wanted and not ref.trajectory:
        raise ValueError(f"{case.id}: this reference run has no cost bounds (run_reference(trajectory=False)); "
                         "run it with trajectory=True to compare the free run")
    trajectory = FREE_RUN in wanted
    impl = impl_registry.get(name) if isinstance(name, str) else name
    label = getattr(impl, "name", str(name))
    rows = []
    try:
        with timing.phase(label, "import"):
            if hasattr(impl, "_load"):
                impl._load()  # the framework's import, once per process (then a dictionary look-up)
        timing.listen_to_jax()
        rows += _run_capture(impl, ref, 0, ref.X0, ref.Y0, ref.parameters, None if ref.masks is None else ref.masks[0],
                             ref.capture, ref.bounds)
        if FIRST_UPDATE in wanted:
            one_step = case.replace(epochs=1, batch_size=None)
            first_masks = None if ref.masks is None else ref.masks[:1]
            result = _run_train(impl, ref.parameters, ref.X0, ref.Y0, one_step, None, first_masks, "update", 0)
            if isinstance(result, list):
                rows += result
            else:
                rows += compare_first_update(case, result[0], ref.first_update, ref.first_update_bounds)
        if trajectory:
            steps = len(ref.costs)
            n = horizon_steps(case, steps, horizon)
            run_case, schedule, masks = case, ref.schedule, ref.masks
            if n < steps:  # whole epochs of the run: the same batches, masks and rates as its first n steps
                from reference.optimizers import steps_per_epoch

                run_case = case.replace(epochs=n // steps_per_epoch(case, steps))
                schedule = None if ref.schedule is None else ref.schedule[:n]
                masks = None if ref.masks is None else ref.masks[:n]
            result = _run_train(impl, ref.parameters, ref.X, ref.Y, run_case, schedule, masks, "trajectory", None)
            if isinstance(result, list):
                rows += result
            else:
                rows += compare_training(ref, result[1], result[0], n)
                if n < steps:
                    rows[-1]["note"] = (rows[-1]["note"] + "; " if rows[-1]["note"] else "") + (
                        f"free run cut to {n} of {steps} steps (quick tier; --full runs them all)")
        for t, point in sorted(ref.checkpoints.items()):
            rows += _run_capture(impl, ref, t, point.X, point.Y, point.parameters, point.masks, point.capture,
                                 point.bounds)
        if PREDICTIONS in wanted and getattr(impl, "offers_predictions", True):  # a user's may offer none
            rows += compare_predictions(case, impl, ref)
    except impl_registry.ImplUnavailable as exc:
        rows = [dict(phase="unavailable", quantity="", passed=False, note=str(exc))]
    except NotImplementedError as exc:  # the implementation says it does not support this case: not a crash
        rows = [dict(phase="unavailable", quantity="", passed=False,
                     note=f"{label}: not supported: {_raised('it', exc).split(': ', 1)[1]}")]
    return as_frame(rows, getattr(impl, "name", str(name)), case)


def as_frame(rows: list[dict], impl: str, case) -> pd.DataFrame:
    """One pair's rows as a frame of ``COLUMNS``: classified, labelled with the implementation, the case's id and
    dtype, in the order of computation.  ``case``: a ``Case``, or anything with ``id`` and ``dtype``."""
    frame = pd.DataFrame(rows, columns=COLUMNS + ["drifted"])
    frame["drifted"] = frame["drifted"].astype(object).where(frame["drifted"].notna(), False).astype(bool)
    frame["classification"] = [classify(u, p, d) for u, p, d in zip(frame["max_ulp"], frame["passed"],
                                                                     frame["drifted"])]
    frame = frame.drop(columns=["drifted"])
    frame["impl"] = impl
    frame["case"] = case.id
    frame["dtype"] = case.dtype
    frame["layer"] = frame["layer"].astype("Int64")
    frame["step"] = frame["step"].astype("Int64")
    return order_of_computation(frame)


def _run_train(impl, parameters, X, Y, case, schedule, masks, phase, step):
    """``impl.train``'s (parameters, costs), or the failing row that says why there are none."""
    criterion = trajectory_criterion(case) if phase == "trajectory" else "bound_ratio<=1"
    try:
        with timing.phase(getattr(impl, "name", "?"), "first update" if phase == "update" else "trajectory"):
            with _deadline():
                result = impl.train(parameters, X, Y, case, schedule, masks)
    except (impl_registry.ImplUnavailable, NotImplementedError):
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the implementation becomes a failing row
        return [_failed(phase, "cost" if phase == "trajectory" else "W", None, step, criterion, _raised("train", exc))]
    if not (isinstance(result, tuple) and len(result) == 2):
        return [_failed(phase, "cost" if phase == "trajectory" else "W", None, step, criterion,
                        f"train's result cannot be compared: it returned {type(result).__name__}, "
                        "not (parameters, costs)")]
    return result


def _run_capture(impl, ref, step, X, Y, parameters, masks, capture, bounds):
    try:
        with timing.phase(getattr(impl, "name", "?"), "captures"):
            with _deadline():
                captured = impl.forward_backward(parameters, X, Y, ref.case, masks)
    except (impl_registry.ImplUnavailable, NotImplementedError):
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the implementation becomes failing rows
        captured = _raised("forward_backward", exc)
        return [_failed("forward" if split_name(k)[0] in ("Z", "A", "cost") else "backward", *split_name(k), step,
                        "bound_ratio<=1", captured) for k in capture]
    return compare_capture(ref.case, impl, captured, capture, bounds, step=step)


def order_of_computation(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the order the quantities are computed: step by step (forward values, gradients, that
    step's free-running cost), then the final parameters and the predictions; a row without a step first."""
    rank = frame["phase"].map(PHASE_RANK).fillna(-1)
    after_training = rank >= PHASE_RANK["final"]
    step = frame["step"].astype("Float64").fillna(-1).astype(float)
    key = pd.DataFrame({"late": after_training.astype(int), "step": np.where(after_training, 0, step),
                        "rank": rank, "pos": np.arange(len(frame))})
    order = key.sort_values(["late", "step", "rank", "pos"], kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def run_case(case: Case, dataset, impls=("torch", "tf", "tf-function")) -> pd.DataFrame:
    """Run ``case`` through the reference and each implementation; return the comparison rows."""
    ref = run_reference(case, dataset)
    return pd.concat([compare_impl(ref, name) for name in impls if name != REFERENCE_IMPL], ignore_index=True)


#: Which check a row belongs to (the self-test's "caught by", the detection-power summary), in this order.
CHECKS = ("step-0 quantity", "first update", "checkpoint quantity", "trajectory", "final parameters", "predictions")
_QUANTITY_ORDER = ("Z", "A", "cost", "dZ", "dW", "db", "dA", "W", "b", "pred")

#: A fault of this relative size or smaller is "small" in ``detection_power``'s notes (the float64-only faults
#: of issue 15: ``1e-8`` inside a log, a float32 constant in a float64 run).
SMALL_FAULT = 1e-6


def check_of(phase, step) -> str | None:
    """The check a row of ``phase`` at ``step`` belongs to (one of ``CHECKS``; None for unavailable rows)."""
    if phase in ("forward", "backward"):
        return "step-0 quantity" if not pd.isna(step) and int(step) == 0 else "checkpoint quantity"
    return {"update": "first update", "trajectory": "trajectory", "final": "final parameters",
            "predictions": "predictions"}.get(phase)


def detection_power(frame: pd.DataFrame) -> pd.DataFrame:
    """Detection power per (dtype, check, quantity): the smallest relative change of the quantity that the
    tolerance in force flags (``detect_rel``), its minimum over the cases (the most sensitive case, named
    in ``best_case`` with its ``where``) and its median over the cases (each case's own minimum over layers,
    steps and implementations).  ``note`` says where a dtype gives no power for small faults: "none below
    1e-6 relative in float32; see <case> in float64 (<power>)" -- or "no power" where no row is a gate."""
    rows = frame[frame["detect_rel"].notna()].copy() if "detect_rel" in frame else frame.iloc[:0].copy()
    columns = ["dtype", "check", "quantity", "min_detect_rel", "median_detect_rel", "cases", "best_case", "where",
               "note"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["check"] = [check_of(p, t) for p, t in zip(rows["phase"], rows["step"])]
    rows["detect_rel"] = rows["detect_rel"].astype(float)
    per_case = rows.sort_values("detect_rel", kind="stable").groupby(["dtype", "check", "quantity", "case"],
                                                                      sort=False).head(1)
    out = []
    for (dtype, check, quantity), group in per_case.groupby(["dtype", "check", "quantity"]):
        best = group.iloc[0] if group["detect_rel"].iloc[0] < np.inf else None
        where = "" if best is None else " ".join(
            part for part in (f"{quantity}{'' if pd.isna(best['layer']) else int(best['layer'])}",
                              "" if pd.isna(best["step"]) else f"step {int(best['step'])}") if part)
        out.append(dict(dtype=dtype, check=check, quantity=quantity, min_detect_rel=float(group["detect_rel"].min()),
                        median_detect_rel=float(group["detect_rel"].median()), cases=len(group),
                        best_case="" if best is None else best["case"], where=where, note=""))
    table = pd.DataFrame(out, columns=columns)
    for i, r in table.iterrows():
        if r["min_detect_rel"] == np.inf:
            table.at[i, "note"] = f"no power: not a gate in {r['dtype']}"
        elif r["min_detect_rel"] > SMALL_FAULT:
            others = table[(table["check"] == r["check"]) & (table["quantity"] == r["quantity"])
                           & (table["min_detect_rel"] <= SMALL_FAULT)].sort_values("min_detect_rel")
            see = "" if others.empty else (f"; see {others.iloc[0]['best_case']} in {others.iloc[0]['dtype']} "
                                           f"({others.iloc[0]['min_detect_rel']:.1e})")
            table.at[i, "note"] = f"none below {SMALL_FAULT:g} relative in {r['dtype']}{see}"
    table["_c"] = table["check"].map({c: i for i, c in enumerate(CHECKS)})
    table["_q"] = table["quantity"].map({q: i for i, q in enumerate(_QUANTITY_ORDER)}).fillna(len(_QUANTITY_ORDER))
    return table.sort_values(["dtype", "_c", "_q"]).drop(columns=["_c", "_q"]).reset_index(drop=True)


def failures(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["passed"].astype(bool)]


def describe_failures(frame: pd.DataFrame, limit: int = 8) -> str:
    """assert_close-style message: what differs, where, by how much, against which tolerance."""
    bad = failures(frame)
    lines = []
    for row in bad.head(limit).itertuples():
        where = f"{row.quantity}{'' if pd.isna(row.layer) else int(row.layer)}"
        step = "" if pd.isna(row.step) else f" step {int(row.step)}"
        arbiter = "" if getattr(row, "criterion", "") != ARBITER_CRITERION else (
            f"distance from the float64 run {row.fp64_dist:.3g}, honest float32 runs' {row.fp64_envelope:.3g}, "
            f"arbiter ratio {row.arbiter_ratio:.3g}; ")
        lines.append(
            f"{row.case} {row.impl}: {row.phase} {where}{step}: {arbiter}max abs {row.max_abs_err:.3g}, "
            f"max rel {row.max_rel_err:.3g}, bound ratio {row.bound_ratio:.3g} "
            f"(needs {row.criterion}; tol {row.tol:.3g})"
            + (f" [{row.note}]" if row.note else "")
        )
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more failing rows")
    return "\n".join(lines)
