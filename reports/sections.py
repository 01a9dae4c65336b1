"""Report sections beyond the results table: classifications, drift and divergence horizons, the float64 arbiter
of float32 runs, detection power, known divergences."""

from __future__ import annotations

import pandas as pd

from nnparity.harness import CLASSES
from reports.summary import sci


def classification_section(details: pd.DataFrame) -> str:
    """How many compared quantities fall in each class, per case and implementation."""
    rows = details[details["phase"].isin(["forward", "backward", "update", "final", "trajectory"])].copy()
    if rows.empty:
        return ""
    rows["where"] = rows["phase"].map({"trajectory": "trajectory steps", "final": "final parameters",
                                       "update": "first update"}).fillna("values and gradients (checkpoints)")
    table = (rows.groupby(["case", "impl", "where", "classification"], sort=False).size()
             .unstack("classification", fill_value=0).reindex(columns=list(CLASSES), fill_value=0).reset_index())
    intro = ("Every compared quantity is classified: `identical` (bit for bit), `<=4 ulp` (within 4 units in the "
             "last place of the dtype, what a reordered sum gives), `within bound` (within its derived rounding "
             "bound), `drifted` (a float32 free-running trajectory step after step 1 or a float32 final parameter "
             "beyond its one-pass bound: earlier differences carried and amplified, within the float64 "
             "arbiter's limit) or "
             "`fail`. Values and gradients are compared at every checkpoint step, recomputed from the reference's "
             "own parameters. `nnparity compare` reports any change of class between two reports.")
    return "## Classifications\n\n" + intro + "\n\n" + table.to_markdown(index=False) + "\n"


def drift_section(details: pd.DataFrame) -> str:
    """Relative cost difference at steps 1, 10, 100, 1000 and the divergence horizon of every pair."""
    from nnparity.drift import horizon_table

    # the conv models' 5-step trajectories have their own limits and their own table (conv_section)
    table = horizon_table(details[~details["case"].astype(str).str.startswith("convnet-")])
    if table.empty:
        return ""
    shown = table.drop(columns=["horizon"]).rename(
        columns=lambda c: c.replace("rel_err_last_step", "last step").replace("rel_err_step_", "step ")
        .replace("horizon_text", "divergence horizon").replace("max_rel_err", "largest"))
    shown = shown.dropna(axis=1, how="all")  # a step no run reached (step 1000 of a 200-step grid) is no column of n/a
    for column in shown.columns:
        if column.startswith(("step ", "last")) or column == "largest":
            shown[column] = shown[column].map(sci)
    intro = ("How the relative difference of the cost to the reference grows with the step, and the **divergence "
             "horizon**: the first step whose difference leaves its tolerance (float64: 1e-10 relative, a gate; "
             "float32: the rounding bound of that step's forward pass, a gate at steps 0 and 1; after them the "
             "float64 arbiter is the gate, see below). `nnparity drift --steps N` measures longer runs; the "
             "error-against-step plot shows every step.")
    return "## Trajectory drift and divergence horizons\n\n" + intro + "\n\n" + shown.to_markdown(index=False) + "\n"


def arbiter_section(details: pd.DataFrame) -> str:
    """Every float32 pair's free run against the float64 run of its case (``nnparity.arbiter``): where its distance
    came closest to the limit, that distance and the honest float32 runs' (the envelope)."""
    from nnparity.arbiter import FACTOR

    if "arbiter_ratio" not in details:
        return ""
    rows = details[details["arbiter_ratio"].notna()]
    if rows.empty:
        return ""
    worst = rows.loc[rows.groupby(["case", "impl"], sort=False)["arbiter_ratio"].idxmax()]
    shown = pd.DataFrame({
        "case": worst["case"], "impl": worst["impl"],
        "where": [f"{p} {q}{'' if pd.isna(layer) else int(layer)}" + ("" if pd.isna(t) else f" step {int(t)}")
                  for p, q, layer, t in zip(worst["phase"], worst["quantity"], worst["layer"], worst["step"])],
        "distance from float64": worst["fp64_dist"].map(sci),
        "honest float32's": worst["fp64_envelope"].map(sci),
        "arbiter ratio": worst["arbiter_ratio"].map(sci),
        "passed": worst["passed"].map({True: "yes", False: "**no**"}),
    })
    intro = ("A float32 run carries every step's rounding into the next, so after step 1 its trajectory, and its final "
             "parameters, are judged against the **float64 run** of the same case (same start, data, batches and "
             "masks): the run's distance from it (the largest so far) may be at most "
             f"{FACTOR:g} times that of honest float32 runs (the reference's own and two reruns from parameters moved "
             "by one ulp), floored at the float32 rounding of the float64 cost (final parameters: at their "
             "accumulated rounding bound); the **arbiter ratio** is distance / that limit, at "
             "most 1 to pass. Each pair's row closest to its limit:")
    return "## Float32 against the float64 run\n\n" + intro + "\n\n" + shown.to_markdown(index=False) + "\n"


def conv_section(details: pd.DataFrame) -> str:
    """The conv grid (``nnparity.conv_harness``): per case and implementation, the worst bound ratio over the chain's
    quantities (conv forward, pool forward, pool and conv backward); a recorded divergence by its record's id, any
    other failure in bold."""
    from nnparity.convspec import QUANTITIES

    every = details[details["case"].astype(str).str.startswith("conv") & (details["phase"] != "unavailable")]
    models = every[every["case"].astype(str).str.startswith("convnet-")]
    rows = every[~every["case"].astype(str).str.startswith("convnet-")]
    if rows.empty:
        return ("## Convolutional layers\n\n" + _models_table(models)) if len(models) else ""
    recorded = rows["divergence"].fillna("").astype(str) if "divergence" in rows else pd.Series("", rows.index)
    worst = rows.assign(recorded=recorded).groupby(["case", "impl"], sort=False).agg(
        ratio=("bound_ratio", "max"), passed=("passed", "all"), recorded=("recorded", "max"))
    cells = {key: (sci(r.ratio) if r.passed else "expected" if r.recorded else f"**{sci(r.ratio)}**")
             for key, r in worst.iterrows()}
    records = {}
    for (_, impl), r in worst.iterrows():
        if not r.passed and r.recorded:
            records.setdefault(r.recorded, []).append(impl)
    expected = "; ".join(f"`{record}` ({', '.join(dict.fromkeys(names))})" for record, names in records.items())
    cases, names = list(dict.fromkeys(rows["case"])), list(dict.fromkeys(rows["impl"]))
    table = pd.DataFrame([[case] + [cells.get((case, name), "") for name in names] for case in cases],
                         columns=["case"] + names)
    intro = ("The course's conv layer and pooling layer, chained (conv, pool, then back from an upstream gradient), "
             "in NHWC on the same inputs for every implementation; the worst **bound ratio** of its quantities ("
             + ", ".join(f"`{q}`" for q in QUANTITIES) + "): the error over twice the derived rounding bound of "
             "the chain (`nnparity.tolerances.conv_bounds`), at most 1 to pass; float64 also to 1e-12 norm-wise. "
             "Case names: filter, stride, padding, pooling, input to channels, examples, data, dtype. "
             "**expected**: the pair fails exactly as a known divergence records (below the table); any other "
             "failure is in bold.")
    after = f"\nexpected, as recorded: {expected}.\n" if expected else ""
    return ("## Convolutional layers\n\n" + intro + "\n\n" + table.to_markdown(index=False) + "\n" + after
            + ("\n" + _models_table(models) if len(models) else ""))


def _models_table(rows: pd.DataFrame) -> str:
    """The course's conv models (``nnparity.conv_models``): per case, one step and the training trajectory, each
    implementation's worst bound ratio and the quantity that has it, failures in bold."""
    from nnparity.conv_models import STEPS

    rows = rows.assign(what=rows["phase"].map({"trajectory": f"{STEPS}-step training", "final": f"{STEPS}-step "
                                               "training"}).fillna("one step"))
    names = list(dict.fromkeys(rows["impl"]))
    lines = []
    for (case, what), group in rows.groupby(["case", "what"], sort=False):
        line = {"case": case, "compared": what}
        for name, own in group.groupby("impl", sort=False):
            worst = own.loc[own["bound_ratio"].astype(float).fillna(float("inf")).idxmax()]
            where = f"{worst['quantity']}{'' if pd.isna(worst['layer']) else int(worst['layer'])}"
            where += "" if pd.isna(worst["step"]) or worst["phase"] != "trajectory" else f" step {int(worst['step'])}"
            cell = f"{sci(worst['bound_ratio'])} ({where})"
            line[name] = cell if own["passed"].astype(bool).all() else f"**{cell}**"
        lines.append(line)
    table = pd.DataFrame(lines, columns=["case", "compared"] + names).fillna("")
    intro = ("The course's two Keras conv models (\"happy\": ZeroPadding2D, Conv2D 7x7, BatchNorm, ReLU, MaxPool, "
             "Dense sigmoid; \"signs\": two Conv2D 'same' + ReLU + MaxPool, Dense softmax), 16x16x3 images, m = 8, "
             "built of each idiomatic implementation's own layers against the NumPy reference run in float64: one "
             "training-mode step (cost, AL, every gradient, the running statistics) and "
             f"{STEPS} steps of gradient descent (the cost at each step, the final parameters and running "
             "statistics). Each cell: the worst **bound ratio**, the norm-wise difference over its limit "
             "(float64: 1e-12; float32: K u, K the terms summed along the chain, (steps + 1) K u for training; the "
             "happy model's layer-1 gradients less the exact jump of its near-flip ReLU/max-pool windows; its db1, "
             "zero by the math, to (N + 20) u sum|dZ1|), at most 1 to pass, and the quantity that has it "
             "(`nnparity.conv_models`, the limits of `parity_tests/test_convnet.py`).")
    return intro + "\n\n" + table.to_markdown(index=False) + "\n"


def detection_power_section(details: pd.DataFrame) -> str:
    """What size of bug each tolerance can hide: per dtype, check and quantity, the smallest relative change the
    tolerance in force flags (``nnparity.harness.detection_power``, from details.csv's ``detect_rel``)."""
    from nnparity.harness import SMALL_FAULT, detection_power

    table = detection_power(details)
    if table.empty:
        return ""
    hides = table[(table["dtype"] == "float32") & (table["min_detect_rel"] < float("inf"))
                  & (table["check"] != "trajectory")]
    sentence = ""
    if len(hides):
        worst = hides.sort_values("min_detect_rel").iloc[-1]
        sentence = (f" For example, in float32 a bug that changes `{worst['quantity']}` by less than "
                    f"{sci(worst['min_detect_rel'])} relative hides under rounding in every case of this report"
                    + (f" ({worst['note']})" if worst["note"] else "") + ".")
    shown = table.rename(columns={"min_detect_rel": "smallest flagged (rel.)", "median_detect_rel": "median over cases",
                                  "best_case": "most sensitive case"})
    for column in ("smallest flagged (rel.)", "median over cases"):
        shown[column] = shown[column].map(sci)
    intro = ("**Detection power**: the smallest relative change of each quantity that its tolerance flags "
             "(`detect_rel` in details.csv: the gate |impl - ref| <= 2B at its most sensitive element; the float64 "
             f"criteria's relative limits). A fault smaller than that hides under rounding; 'none below "
             f"{SMALL_FAULT:g}' names the case and dtype that do have the power." + sentence)
    return ("## Detection power\n\n" + intro + "\n\n" + shown.to_markdown(index=False, disable_numparse=True)
            + "\n")


def divergences_section(cases, impls) -> str:
    """The known divergences (nnparity/divergences.py) and, for this report's cases and implementations,
    which pairs they apply to: a failure there is expected, exactly at the recorded first row."""
    from nnparity.divergences import DIVERGENCES, records

    table = pd.DataFrame(records())
    table["pairs in this report"] = [
        sum(d.applies(case, impl) for case in cases for impl in impls) for d in DIVERGENCES]
    intro = ("Where a framework cannot match the notes' equation, the difference is one record of "
             "`nnparity/divergences.py`, read by the parity tests (the pair must fail exactly at the recorded "
             "first row and pass against the record's aligned reference) and by this report. The catalogue "
             "entry named measures it.")
    return "## Known divergences\n\n" + intro + "\n\n" + table.to_markdown(index=False) + "\n"
