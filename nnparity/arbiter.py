"""The float64 arbiter of a float32 run (PyTorch's compiler accuracy checks, ``torch/_dynamo/utils.py`` ``same()``).

From step 2 on, a float32 free-running trajectory carries every earlier step's rounding forward and the network
may amplify it far beyond one step's bound, so comparing it with the float32 reference alone cannot tell
rounding from a fault.  The float64 run of the same case (same initial parameters, data, batches and masks,
every operation in float64) is the arbiter: it is what every float32 run approximates.

* ``distance``: how far a float32 run is from it, a running maximum up to each step (the step where a run
  *leaves* the float64 run stays visible at every later step).
* ``envelope``: how far honest float32 runs are from it -- the largest ``distance`` among the float32
  reference and ``PERTURBED_RUNS`` reruns of it from initial parameters each moved by one ulp (a random
  sign per element): one rounding of every parameter, what a different summation order gives, let the
  network amplify it as it amplifies every implementation's rounding.
* A float32 implementation passes a step when its distance is at most ``FACTOR`` times the envelope, floored
  (``floor``) at the float32 rounding of the float64 cost itself, u |J64| (no float32 cost can be nearer it;
  an envelope that happens to be smaller says nothing); for the final parameters at their accumulated
  rounding bound 2E (``harness.final_bounds``: every update's rounding, before any amplification).

``FACTOR`` = 8: an honest implementation is one more float32 run of the same equations, its rounding per
operation up to 4 ulp from the reference's (the ``<=4 ulp`` class of a reordered sum) where the perturbed reruns
inject one; times 2 for a draw beyond the largest of the envelope's three.  Measured on the default grid
(every float32 case, every implementation, a clean clone's report): honest trajectories are at most 3.5 times the
envelope so floored.  ``parity_tests/test_arbiter.py`` holds both sides: an honest run that rounding
carried beyond one step's bound passes, and the faults this gate exists for (a frozen Adam step counter, an
optimiser state reset every epoch, an L2 term over the wrong m) fail at the step where they leave the float64 run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A float32 step passes when its distance from the float64 run is at most FACTOR x the envelope (see above).
FACTOR = 8.0

#: One-ulp reruns of the float32 reference in the envelope (seeds 1..PERTURBED_RUNS).
PERTURBED_RUNS = 2

#: ``NNPARITY_PERTURB_ULP=SEED``: every case starts from its initial parameters moved by one ulp (``nudged``, the
#: signs drawn from SEED), reference and implementations alike.  ``upgrade-check`` runs its baseline's report so
#: (at the other thread count) to measure the baseline's own envelope: how far each row moves by rounding alone.
PERTURB = "NNPARITY_PERTURB_ULP"


@dataclass
class Arbiter:
    """The float64 run of a float32 case and the envelope of honest float32 runs around it."""

    costs64: np.ndarray  # the float64 run's cost at every step
    cost_envelope: np.ndarray  # the largest running distance of an honest float32 run, per step
    final64: dict  # the float64 run's final parameters
    final_envelope: dict  # the largest distance of an honest float32 run's final parameters, per parameter

    def cost_distance(self, costs) -> np.ndarray:
        """Running maximum of ``|costs - costs64|`` over the steps ``costs`` has (inf once a cost is not finite
        where the float64 run's is)."""
        return distance(costs, self.costs64[:np.size(costs)])

    def final_distance(self, key, value) -> float:
        diff = np.abs(np.asarray(value, dtype=np.float64) - self.final64[key])
        return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def distance(costs, costs64) -> np.ndarray:
    """``max_{s<=t} |costs[s] - costs64[s]|`` for every step t; a step where exactly one of them is not finite
    (or they are unequal infinities) counts as inf, equal infinities and NaN beside NaN as 0."""
    a, b = np.asarray(costs, dtype=np.float64), np.asarray(costs64, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, np.abs(a - b))
    d[np.isnan(d)] = np.inf
    return np.maximum.accumulate(d) if d.size else d


def nudged(parameters: dict, seed: int) -> dict:
    """Every element of every parameter moved by one ulp of its dtype, up or down at random (``seed``)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in sorted(parameters.items()):
        direction = np.where(rng.random(value.shape) < 0.5, -np.inf, np.inf).astype(value.dtype)
        out[key] = np.nextafter(value, direction)
    return out


def perturbed(parameters: dict, environ=None) -> dict:
    """``parameters``, or ``nudged`` by one ulp when ``PERTURB`` is set (to a non-negative integer, the seed)."""
    import os

    seed = (os.environ if environ is None else environ).get(PERTURB, "").strip()
    if not seed:
        return parameters
    if not seed.isdigit():
        from nnparity.errors import UsageError

        raise UsageError(f"{PERTURB}={seed!r} is not a seed; set it to a non-negative integer (e.g. {PERTURB}=1) "
                         "or unset it")
    return nudged(parameters, int(seed))


def perturbation_notice(environ=None) -> str:
    """The line a report prints when ``PERTURB`` is set (its runs start one ulp away), "" when it is not;
    ``UsageError`` for a value that is not a seed, before any work."""
    import os

    environ = os.environ if environ is None else environ
    perturbed({}, environ)
    seed = environ.get(PERTURB, "").strip()
    return (f"{PERTURB}={seed}: every case starts from its initial parameters moved by one ulp (a baseline's envelope "
            f"run, as upgrade-check makes it); unset {PERTURB} for an ordinary report") if seed else ""


def run(case, parameters, X, Y, schedule, masks, costs, final_parameters) -> Arbiter:
    """The float64 run of ``case`` (a float32 one) and the envelope: the float32 reference's own run (its
    ``costs`` and ``final_parameters``) and ``PERTURBED_RUNS`` one-ulp reruns (``nudged``), each's distance from
    the float64 run."""
    from reference.model import train

    case64 = case.replace(dtype="float64")
    with np.errstate(all="ignore"):
        final64, costs64 = train({k: v.astype(np.float64) for k, v in parameters.items()}, X.astype(np.float64),
                                 Y.astype(np.float64), case64, schedule, masks)
        runs = [(final_parameters, costs)]
        runs += [train(nudged(parameters, seed), X, Y, case, schedule, masks) for seed in range(1, PERTURBED_RUNS + 1)]
    costs64 = np.asarray(costs64, dtype=np.float64)
    envelope = np.max([distance(costs, costs64) for _, costs in runs], axis=0)
    final_envelope = {k: max(float(np.nan_to_num(np.abs(np.asarray(P[k], dtype=np.float64) - final64[k]),
                                                 nan=np.inf).max(initial=0.0)) for P, _ in runs)
                      for k in final64}
    return Arbiter(costs64, envelope, final64, final_envelope)


def floor(costs64, dtype) -> np.ndarray:
    """The trajectory's floor: ``u |J64|`` at every step (u the unit roundoff of ``dtype``), the float32 rounding
    of the float64 cost itself."""
    from nnparity.tolerances import UNIT_ROUNDOFF

    return UNIT_ROUNDOFF[dtype] * np.abs(np.asarray(costs64, dtype=np.float64))


def limit(envelope, floor) -> np.ndarray:
    """``FACTOR x max(envelope, floor)`` step by step; ``floor`` as a running maximum too, like the distances."""
    floor = np.fmax.accumulate(np.nan_to_num(np.asarray(floor, dtype=np.float64), nan=0.0)) if np.size(floor) else floor
    return FACTOR * np.maximum(envelope, floor)
