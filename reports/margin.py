"""How close each comparison came to failing: every row's error / its limit (the **margin**; 1 is the limit) and
the report's first-screen summary, one row per implementation (``impl_summary``).  Read by ``reports.plots``,
``reports.build`` and ``reports.html``; nothing here imports a framework."""

from __future__ import annotations

import math

import pandas as pd

from nnparity.arbiter import FACTOR
from nnparity.harness import CLASSES
from nnparity.numbers import number
from nnparity.regression import tolerance_used
from reports.summary import EXPECTED, UNAVAILABLE, summarize


def with_margin(details: pd.DataFrame) -> pd.DataFrame:
    """``details`` with ``used``: each row's error / its limit as its criterion states (``nnparity.regression``'s
    tolerance used: the bound ratio; max_rel_err / 1e-10 for float64 trajectories and final parameters; the
    larger of both for float64 values and gradients); 1 is the limit.  Computed once, kept when present."""
    if "used" in details.columns:
        return details
    criteria = details["criterion"].map(lambda c: c if isinstance(c, str) else "")  # unavailable rows have none
    return details.assign(used=tolerance_used(details.assign(criterion=criteria)))


def gated(details: pd.DataFrame) -> pd.Series:
    """Rows that are gates: every row but ``unavailable`` ones (a float32 free-run row after step 1 is gated by
    the float64 arbiter: its margin is ``arbiter_ratio``)."""
    return details["phase"] != "unavailable"


#: The per-implementation summary's phases: (column, phase of the details rows).
PHASES = (("forward", "forward"), ("gradients", "backward"), ("trajectory", "trajectory"),
          ("final parameters", "final"))
MARGIN = ("**error / limit**: each compared quantity's difference from the reference divided by the most its "
          "criterion allows, the worst of the phase: the bound ratio (difference / twice the derived rounding "
          "bound), for float64 also max rel err / its limit (1e-10 for trajectories and final parameters); for a "
          f"float32 trajectory step after step 1 and float32 final parameters the float64 arbiter's ratio (the "
          f"distance from the float64 run / {FACTOR:g} times honest float32 runs'); ≤ 1 passes, 0 is bit for bit. "
          "A case that diverges exactly as nnparity/divergences.py records is counted under cases, not in these "
          "columns.")


def impl_summary(details: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per implementation, in order of appearance: the worst error / limit (``with_margin``)
    of each phase over its gated rows, but those of its expected divergences (NaN where it has none), cases passed /
    run / unavailable (from ``summary``, ``summarize(details)`` unless given), and ``classes``: the share of its
    compared rows in each class."""
    details = with_margin(details)
    summary = summarize(details) if summary is None else summary
    rows = []
    for impl, group in details.groupby("impl", sort=False):
        row = {"impl": impl}
        status = summary.loc[summary["impl"] == impl, "status"]
        diverging = summary.loc[(summary["impl"] == impl) & summary["status"].str.startswith(EXPECTED), "case"]
        gates = group[gated(group) & ~group["case"].isin(set(diverging))]  # a recorded divergence is not a margin
        for column, phase in PHASES:
            values = gates.loc[gates["phase"] == phase, "used"]
            row[column] = float(values.max()) if values.notna().any() else math.nan
        row["worst"] = _worst_row(gates[gates["phase"].isin([p for _, p in PHASES])])
        row["unavailable"] = int(status.str.startswith(UNAVAILABLE).sum())
        row["run"] = len(status) - row["unavailable"]
        row["passed"] = int((status == "pass").sum())
        row["expected"] = int(status.str.startswith(EXPECTED).sum())  # fail exactly as nnparity/divergences.py says
        row["classes"] = _classes(group)
        rows.append(row)
    return pd.DataFrame(rows, columns=["impl"] + [c for c, _ in PHASES] + ["worst", "passed", "run", "unavailable",
                                                                       "expected", "classes"])


def _worst_row(gates: pd.DataFrame) -> str:
    """Where the largest error / limit of ``gates`` is: ``case: phase quantity[layer] step s``; "" without one."""
    used = gates["used"].astype(float)
    if not used.notna().any():
        return ""
    row = gates.loc[used.idxmax()]
    layer = "" if pd.isna(row["layer"]) else str(int(row["layer"]))
    step = "" if pd.isna(row["step"]) else f" step {int(row['step'])}"
    return f"{row['case']}: {row['phase']} {row['quantity']}{layer}{step}"


def _classes(group: pd.DataFrame) -> str:
    """``identical 67% · <=4 ulp 17% · within bound 17%``: the share of the compared rows in each class."""
    if "classification" not in group.columns:
        return ""
    counts = group.loc[group["phase"] != UNAVAILABLE, "classification"].value_counts()
    total = int(counts.sum())
    parts = []
    for name in CLASSES:
        n = int(counts.get(name, 0))
        if n:
            share = 100 * n / total
            parts.append(f"{name} {'<1' if share < 0.5 else f'{share:.0f}'}%")
    return " · ".join(parts)


def cases_text(row) -> str:
    """``12 / 12`` passed / run, then ``, 3 unavailable`` when some could not run."""
    return (f"{row['passed']} / {row['run']}" + (f", {row['unavailable']} unavailable" if row["unavailable"] else "")
            + (f", {row['expected']} expected divergence{'s' if row['expected'] > 1 else ''}"
               if row.get("expected") else ""))


def impl_table(impls: pd.DataFrame) -> pd.DataFrame:
    """The per-implementation summary as text, for report.md and report.html."""
    table = pd.DataFrame({"implementation": impls["impl"]})
    for column, _ in PHASES:
        table[column] = impls[column].map(number)
    table["cases passed / run"] = [cases_text(row) for _, row in impls.iterrows()]
    table["classes of the compared rows"] = impls["classes"]
    if "worst" in impls:
        table["where the largest error / limit is"] = impls["worst"]
    return table.reset_index(drop=True)

