"""The summary of a comparison: one row per case x implementation, its first failure in the order of
computation, and the verdict (numbers are formatted by ``nnparity.numbers``).  Below ``reports.build`` and
``reports.html``, which both read it; nothing here imports a framework."""

from __future__ import annotations

import math

import pandas as pd

from nnparity import tolerances as tol
from nnparity.arbiter import FACTOR
from nnparity.numbers import number, sci  # noqa: F401  (sci: the reports' number format, imported from here)
from nnparity.spec import REFERENCE_IMPL, backward_names, forward_names, param_names

UNAVAILABLE = "unavailable"

#: Phases in the order the harness computes them; a failure earlier in this order is reported first.
PHASE_ORDER = ("forward", "backward", "trajectory", "update", "final", "predictions")

SUMMARY_COLUMNS = [
    "case", "impl", "dtype",
    "max_forward_rel_err", "max_gradient_rel_err", "max_trajectory_rel_err", "max_final_rel_err",
    "max_bound_ratio_forward", "max_bound_ratio_backward", "max_bound_ratio_trajectory", "max_arbiter_ratio",
    "steps", "drifted", "first_failure", "passed", "status",
]


# --------------------------------------------------------------------------- summary


def summarize(details: pd.DataFrame) -> pd.DataFrame:
    """One row per (case, impl), in the order they first appear in ``details``.

    Errors are the maxima over each phase's rows (NaN where a phase has no
    rows); ``steps`` counts the trajectory rows; ``first_failure`` describes
    the earliest failing row in the order of computation; ``passed`` is true
    when every row passed; ``status`` is ``pass``, ``fail`` or
    ``unavailable: <reason>``.
    """
    groups = details.groupby(["case", "impl"], sort=False)
    rows = [_summary_row(case, impl, group) for (case, impl), group in groups]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _summary_row(case: str, impl: str, group: pd.DataFrame) -> dict:
    gated = group["classification"] != "drifted" if "classification" in group else True

    def worst(phase: str | None, column: str, rows=True) -> float:  # phase None: every phase
        mask = (group["phase"] == phase) if phase else pd.Series(True, index=group.index)
        values = group.loc[mask & rows, column]
        return float(values.max()) if values.notna().any() else math.nan

    passed = bool(group["passed"].eq(True).all())
    unavailable = group[group["phase"] == UNAVAILABLE]
    if len(unavailable):
        status = f"{UNAVAILABLE}: {unavailable['note'].iloc[0]}"
    else:
        status = "pass" if passed else "fail"
        known = _expected_divergence(group)
        if known and not passed:  # fails exactly as nnparity/divergences.py records, and passes against its alignment
            status = f"{EXPECTED}: {known}"
    return dict(
        case=case, impl=impl, dtype=group["dtype"].iloc[0],
        max_forward_rel_err=worst("forward", "max_rel_err"),
        max_gradient_rel_err=worst("backward", "max_rel_err"),
        max_trajectory_rel_err=worst("trajectory", "max_rel_err"),
        max_final_rel_err=worst("final", "max_rel_err"),
        max_bound_ratio_forward=worst("forward", "bound_ratio"),
        max_bound_ratio_backward=worst("backward", "bound_ratio"),
        max_bound_ratio_trajectory=worst("trajectory", "bound_ratio", gated),  # drifted rows: the arbiter's
        max_arbiter_ratio=worst(None, "arbiter_ratio") if "arbiter_ratio" in group else math.nan,
        steps=int((group["phase"] == "trajectory").sum()),
        drifted=int((~gated).sum()) if "classification" in group else 0,
        first_failure=first_failure(group),
        passed=passed,
        status=status,
    )


def first_failure(group: pd.DataFrame) -> str:
    """The earliest failing row of one (case, impl) in the order of computation, as one line; "" if none.

    Forward Z1, A1, ..., AL, cost; backward dZL, dWL, dbL, dA(L-1), ..., dW1, db1;
    the trajectory by step; final parameters W1, b1, ...; predictions.
    """
    failing = group[~group["passed"].eq(True) & (group["phase"] != UNAVAILABLE)]
    if failing.empty:
        return ""
    L = _depth(group)
    keys = [_computation_order(row, L) for row in failing.itertuples(index=False)]
    position = min(range(len(keys)), key=keys.__getitem__)
    return _describe(failing.iloc[position])


def _depth(group: pd.DataFrame) -> int:
    """L, the number of layers with parameters: the largest layer any row names."""
    layers = group["layer"].dropna()
    return int(layers.max()) if len(layers) else 0


def _name(quantity: str, layer) -> str:
    """``('dW', 2)`` -> ``'dW2'``; a row without a layer keeps its bare quantity (``cost``, ``pred``)."""
    return str(quantity) if pd.isna(layer) else f"{quantity}{int(layer)}"


def _computation_order(row, L: int) -> tuple:
    """Sort key: step by step (a row without a step first), inside a step the phase, then the position of
    the quantity inside its phase; the final parameters and the predictions after every step."""
    phase_rank = PHASE_ORDER.index(row.phase) if row.phase in PHASE_ORDER else len(PHASE_ORDER)
    late = row.phase in ("final", "predictions") or row.phase not in PHASE_ORDER
    step = 0 if late else (-1 if pd.isna(row.step) else int(row.step))  # a whole-run mismatch has no step
    name = _name(row.quantity, row.layer)
    order = {
        "forward": forward_names(L) + ["cost"],
        "backward": backward_names(L),
        "update": param_names(L),
        "final": param_names(L),
    }.get(row.phase, [])
    return late, step, phase_rank, order.index(name) if name in order else len(order)


def _describe(row: pd.Series) -> str:
    """``tf step 0 backward dW2: bound ratio 3.4 (max rel 1.2e-7)``."""
    step = "" if pd.isna(row["step"]) else f" step {int(row['step'])}"
    text = (f"{row['impl']}{step} {row['phase']} {_name(row['quantity'], row['layer'])}: "
            f"bound ratio {number(row['bound_ratio'])} (max rel {number(row['max_rel_err'])})")
    note = row["note"]
    return text + (f" [{note}]" if isinstance(note, str) and note else "")


# --------------------------------------------------------------------------- report.md


def meta_text(key: str, value) -> str:
    """A meta entry as text: a dict (e.g. versions) ``name value, ...``; ``seconds`` says what it measured."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ("; " if key == "data_pins" else " ").join(map(str, value))
    if key == "seconds":
        return f"{value} (wall time: from the start of the command's run to just before writing the report)"
    return str(value)


#: The status of a pair that fails exactly as a record of ``nnparity/divergences.py`` says (checked by the report
#: command as the parity tests check it): not a failure of the verdict, and named as what it is.
EXPECTED = "expected divergence"


def _expected_divergence(group: pd.DataFrame) -> str:
    if "divergence" not in group:
        return ""
    ids = [d for d in group["divergence"].dropna().unique() if d]
    return ids[0] if ids else ""


def verdict(summary: pd.DataFrame) -> str:
    """The one-line answer: do all case x implementation comparisons pass?"""
    total = len(summary)
    if total == 0:
        return "No comparisons were run."
    failed = int((summary["status"] == "fail").sum())
    unavailable = int(summary["status"].str.startswith(UNAVAILABLE).sum())
    expected = int(summary["status"].str.startswith(EXPECTED).sum())
    if failed == 0 and unavailable == 0:
        if expected:
            return (f"No unexpected failure: {total - expected} of {total} case × implementation comparisons pass, "
                    f"{expected} {'diverges' if expected == 1 else 'diverge'} exactly as nnparity/divergences.py "
                    "records (and pass against its aligned "
                    "reference).")
        return f"All {total} case × implementation comparisons pass."
    parts = []
    if failed:
        parts.append(f"{failed} of {total} case × implementation comparisons fail")
    if unavailable:
        parts.append(f"{unavailable} of {total} could not run (implementation unavailable)")
    if expected:
        parts.append(f"{expected} diverge exactly as nnparity/divergences.py records")
    return "; ".join(parts) + "."


def _how_to_read() -> str:
    return (
        "## How to read this report\n\n"
        f"`{REFERENCE_IMPL}` is the reference: every other implementation runs the same network on the same "
        "data, parameters and mini-batches, and each captured quantity is compared with the reference's. "
        "The **norm-wise relative error** of a quantity is max|impl − ref| / max|ref|: the largest difference, "
        "measured against the largest reference value. The **bound ratio** is the difference divided by "
        "twice the derived rounding-error bound B (each implementation may be off by at most B from the exact "
        "result, so two may differ by 2B); a quantity passes when its bound ratio is ≤ 1. "
        f"In float64 forward values and gradients must in addition agree to ≤ {tol.FLOAT64_NORMWISE:g} "
        f"norm-wise relative, and the cost trajectory to ≤ {tol.FLOAT64_TRAJECTORY:g} relative at every step; "
        "float32 trajectories pass by their bound ratio at steps 0 and 1; after step 1, and for the final "
        "parameters, the **float64 arbiter** judges them: the run's distance from the float64 run of the case "
        f"may be at most {FACTOR:g} times that of honest float32 runs (the reference's and its one-ulp "
        "reruns; `arbiter_ratio` ≤ 1; class `drifted` where a row is beyond one step's bound but within it); "
        "every forward value and gradient is also compared at checkpoint steps, recomputed from the "
        "reference's own parameters, and the first update from them. "
        "Errors are the worst over all quantities (or steps) of a phase; 0 means bit-for-bit equal."
    )
