"""Trajectory drift: how the difference between an implementation and the reference grows with the step.

Every implementation starts from the same parameters and consumes the same
mini-batches, so at step 0 the costs differ only by one forward pass's
rounding.  Each update carries the difference forward; in a contractive descent
it stays at the rounding level, in an expansive phase (a large learning rate, a
saddle, a relu unit switching off) it grows until the trajectories split.  The
**divergence horizon** of a pair is the first step whose cost difference leaves
its tolerance (float64: 1e-10 relative; float32: the rounding bound of that
step's forward pass, which from step 2 on is measured as drift rather than
gated), or "none within N steps".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHECKPOINTS = (1, 10, 100, 1000, 10000)


def horizon_table(details: pd.DataFrame) -> pd.DataFrame:
    """One row per (case, impl): relative cost difference at checkpoint steps, the largest, and the horizon."""
    traj = details[(details["phase"] == "trajectory") & details["step"].notna()]
    rows = []
    for (case, impl), group in traj.groupby(["case", "impl"], sort=False):
        group = group.sort_values("step")
        steps = group["step"].to_numpy(dtype=np.int64)
        rel = group["max_rel_err"].to_numpy(dtype=np.float64)
        beyond = ~group["passed"].to_numpy(dtype=bool)
        if "classification" in group:  # float32 after step 1: beyond the one-pass bound is drift, not failure
            beyond |= (group["classification"] == "drifted").to_numpy()
        failing = np.flatnonzero(beyond)
        row = {"case": case, "impl": impl, "dtype": group["dtype"].iloc[0], "steps": int(steps.size)}
        for checkpoint in CHECKPOINTS:
            row[f"rel_err_step_{checkpoint}"] = float(rel[checkpoint]) if checkpoint < steps.size else np.nan
        row["rel_err_last_step"] = float(rel[-1]) if rel.size else np.nan
        row["max_rel_err"] = float(np.max(rel)) if rel.size else np.nan
        row["horizon"] = int(steps[failing[0]]) if failing.size else None
        row["horizon_text"] = (f"step {row['horizon']}" if failing.size else f"none within {steps.size} steps")
        rows.append(row)
    table = pd.DataFrame(rows)
    unused = [c for c in table.columns if c.startswith("rel_err_step_") and table[c].isna().all()]
    return table.drop(columns=unused)


def growth(details: pd.DataFrame) -> pd.DataFrame:
    """The per-step relative cost difference, wide: one column per (case, impl); for plots and CSV."""
    traj = details[details["phase"] == "trajectory"]
    return traj.pivot_table(index="step", columns=["case", "impl"], values="max_rel_err", aggfunc="max")
