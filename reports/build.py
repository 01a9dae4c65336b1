"""Turn the harness's tidy comparison rows into a summary and a report directory.

``summarize`` folds the detail rows (schema in ``nnparity.harness``) into one
row per (case, implementation).  ``write_report`` writes, atomically::

    out_dir/
        details.csv    every comparison row, as the harness produced it
        summary.csv    one row per case x implementation
        summary.json   the same rows, a verdict block and the run's meta
        report.md      the same, for a person to read
        report.html    the same, self-contained: coloured tables, the figures embedded (``reports.html``)
        env.json       versions, BLAS, CPU, threads, determinism/TF32 settings (``nnparity.environment``)
        trajectories.png, error_vs_step.png, layer_errors.png   the figures (``reports.plots``)
        trajectories.csv   the cost at every step of every implementation (when ``trajectories`` is given)
        nnparity.json  written last: the format and version, and every file's size and SHA-256

Nothing here imports a framework.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from nnparity import tolerances as tol
from nnparity.outdir import FORMAT_VERSION, FORMATS, atomic_directory  # noqa: F401 (atomic_directory: re-exported)
from nnparity.spec import REFERENCE_IMPL, backward_names, forward_names, param_names

UNAVAILABLE = "unavailable"

#: Phases in the order the harness computes them; a failure earlier in this order is reported first.
PHASE_ORDER = ("forward", "backward", "trajectory", "update", "final", "predictions")

SUMMARY_COLUMNS = [
    "case", "impl", "dtype",
    "max_forward_rel_err", "max_gradient_rel_err", "max_trajectory_rel_err", "max_final_rel_err",
    "max_bound_ratio_forward", "max_bound_ratio_backward", "max_bound_ratio_trajectory",
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

    def worst(phase: str, column: str, rows=True) -> float:
        values = group.loc[(group["phase"] == phase) & rows, column]
        return float(values.max()) if values.notna().any() else math.nan

    passed = bool(group["passed"].eq(True).all())
    unavailable = group[group["phase"] == UNAVAILABLE]
    if len(unavailable):
        status = f"{UNAVAILABLE}: {unavailable['note'].iloc[0]}"
    else:
        status = "pass" if passed else "fail"
    return dict(
        case=case, impl=impl, dtype=group["dtype"].iloc[0],
        max_forward_rel_err=worst("forward", "max_rel_err"),
        max_gradient_rel_err=worst("backward", "max_rel_err"),
        max_trajectory_rel_err=worst("trajectory", "max_rel_err"),
        max_final_rel_err=worst("final", "max_rel_err"),
        max_bound_ratio_forward=worst("forward", "bound_ratio"),
        max_bound_ratio_backward=worst("backward", "bound_ratio"),
        max_bound_ratio_trajectory=worst("trajectory", "bound_ratio", gated),  # drifted rows are not gates
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
            f"bound ratio {_short(row['bound_ratio'])} (max rel {_short(row['max_rel_err'])})")
    note = row["note"]
    return text + (f" [{note}]" if isinstance(note, str) and note else "")


# --------------------------------------------------------------------------- number formatting


def _number(x, spec: str) -> str:
    """``x`` in the format ``spec`` with a tidy exponent; 0 as ``0``, missing as ``n/a``, infinities by name."""
    if x is None or pd.isna(x):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return _tidy_exponent(format(x, spec))


def _short(x) -> str:
    """2 significant digits, shortest form: ``3.4``, ``1.2e-7``, ``0``, ``inf``."""
    return _number(x, ".2g")


def sci(x) -> str:
    """Scientific notation, 2 significant digits: ``3.1e-16``, ``2.5e0``; 0 as ``0``; missing as ``n/a``."""
    return _number(x, ".1e")


def _tidy_exponent(text: str) -> str:
    """``1.2e-07`` -> ``1.2e-7``; ``3.4e+00`` -> ``3.4e0``."""
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


# --------------------------------------------------------------------------- report.md


def verdict(summary: pd.DataFrame) -> str:
    """The one-line answer: do all case x implementation comparisons pass?"""
    total = len(summary)
    if total == 0:
        return "No comparisons were run."
    failed = int((summary["status"] == "fail").sum())
    unavailable = int(summary["status"].str.startswith(UNAVAILABLE).sum())
    if failed == 0 and unavailable == 0:
        return f"All {total} case × implementation comparisons pass."
    parts = []
    if failed:
        parts.append(f"{failed} of {total} case × implementation comparisons fail")
    if unavailable:
        parts.append(f"{unavailable} of {total} could not run (implementation unavailable)")
    return "; ".join(parts) + "."


def _meta_lines(meta: dict) -> list[str]:
    """``- **key**: value`` per entry; a dict value (e.g. versions) becomes ``name value, ...``."""
    lines = []
    for key, value in meta.items():
        if key == "force":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = " ".join(map(str, value))
        lines.append(f"- **{key}**: {value}")
    return lines


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
        "float32 trajectories pass by their bound ratio at every step (the bound of that step's cost). "
        "Errors are the worst over all quantities (or steps) of a phase; 0 means bit-for-bit equal."
    )


def _main_table(summary: pd.DataFrame) -> str:
    bound_columns = ["max_bound_ratio_forward", "max_bound_ratio_backward", "max_bound_ratio_trajectory"]
    table = pd.DataFrame({
        "case": summary["case"],
        "impl": summary["impl"],
        "max forward rel err": summary["max_forward_rel_err"].map(sci),
        "max gradient rel err": summary["max_gradient_rel_err"].map(sci),
        "max cost-trajectory rel err": summary["max_trajectory_rel_err"].map(sci),
        "max bound ratio": summary[bound_columns].max(axis=1).map(sci),
        "result": summary["status"].map(lambda s: s.split(":")[0].upper()),
    })
    return _markdown(table, right=tuple(table.columns[2:6]))


def _markdown(table: pd.DataFrame, right: tuple[str, ...] = ()) -> str:
    """A markdown table of already formatted text, the ``right`` columns right-aligned.

    ``disable_numparse`` keeps tabulate from re-formatting ``2.8e-07`` strings as floats of its own.
    """
    align = ["right" if column in right else "left" for column in table.columns]
    return table.to_markdown(index=False, disable_numparse=True, colalign=align)


def _cases_table(cases: list, summary: pd.DataFrame) -> str:
    steps = summary.groupby("case")["steps"].max() if len(summary) else pd.Series(dtype=int)
    table = pd.DataFrame([{
        "case": case.id,
        "layer dims": ", ".join(map(str, case.layer_dims)),
        "activation": f"{case.hidden_activation} / {case.output_activation}" if case.L > 1 else case.output_activation,
        "loss": case.loss,
        "dtype": case.dtype,
        "batch": "full" if case.batch_size is None else str(case.batch_size),
        "learning rate": f"{case.learning_rate:g}",
        "epochs": case.epochs,
        "steps": int(steps[case.id]) if case.id in steps.index else "n/a",
        "data": case.data,
    } for case in cases])
    return _markdown(table.astype(str), right=("learning rate", "epochs", "steps"))


def _failures_section(summary: pd.DataFrame) -> str:
    failing = summary[summary["status"] == "fail"]
    lines = [f"- **{row.case}** / `{row.impl}`: {row.first_failure}" for row in failing.itertuples()]
    return "## Failures\n\n" + ("\n".join(lines) if lines else "none")


def _unavailable_section(summary: pd.DataFrame) -> str | None:
    missing = summary[summary["status"].str.startswith(UNAVAILABLE)]
    if missing.empty:
        return None
    lines = []
    for (impl, status), group in missing.groupby(["impl", "status"], sort=False):
        reason = status[len(UNAVAILABLE) + 2:]
        lines.append(f"- `{impl}` ({len(group)} cases): {reason}")
    return "## Unavailable implementations\n\n" + "\n".join(lines)


def render_markdown(summary: pd.DataFrame, meta: dict, cases: list | None = None) -> str:
    """The whole ``report.md``: verdict, meta, how to read, results, cases, failures, unavailable."""
    sections = [
        "# nnparity report",
        f"**{verdict(summary)}**",
        "\n".join(_meta_lines(meta)),
        _how_to_read(),
        "## Results (case × implementation)\n\n" + _main_table(summary),
    ]
    if cases:
        sections.append("## Cases\n\n" + _cases_table(cases, summary))
    sections.append(_failures_section(summary))
    sections.append(_unavailable_section(summary))
    return "\n\n".join(s for s in sections if s) + "\n"


# --------------------------------------------------------------------------- summary.json


def _json_value(value):
    """Strict JSON: numpy scalars to Python, NaN/NA to null, infinities to the strings ``inf``/``-inf``."""
    if value is None or (not isinstance(value, (str, list, dict, tuple)) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def summary_document(summary: pd.DataFrame, meta: dict) -> dict:
    """What ``summary.json`` holds: a verdict block, the summary rows as records, and ``meta``."""
    records = [{k: _json_value(v) for k, v in row.items()} for row in summary.to_dict("records")]
    unavailable = int(summary["status"].str.startswith(UNAVAILABLE).sum()) if len(summary) else 0
    return {
        "format": FORMATS["report"],
        "format_version": FORMAT_VERSION,
        "passed": bool(len(summary) and summary["passed"].all()),
        "cases": int(summary["case"].nunique()),
        "implementations": list(dict.fromkeys(summary["impl"])),
        "failures": int((summary["status"] == "fail").sum()),
        "unavailable": unavailable,
        "verdict": verdict(summary),
        "summary": records,
        "meta": meta,
    }


# --------------------------------------------------------------------------- writing


def write_report(details: pd.DataFrame, out_dir: str | Path, meta: dict, cases: list | None = None, *,
                 trajectories: pd.DataFrame | None = None, env: dict | None = None,
                 catalogue: pd.DataFrame | None = None, sections: list[str] | None = None,
                 bench: pd.DataFrame | None = None) -> Path:
    """Write ``details.csv``, ``summary.csv``, ``summary.json`` and ``report.md`` into ``out_dir``, atomically.

    Everything is written to a temporary sibling directory which then replaces
    ``out_dir`` by a rename: a reader sees the old report or the new one, never
    half of one (``nnparity.outdir.atomic_directory``; the marker ``nnparity.json``,
    listing every file with its size and SHA-256, is written last).  An existing
    ``out_dir`` is replaced only when it is a report directory nnparity wrote and
    ``meta['force']`` is true; an empty directory may be used; anything else is a
    ``UsageError`` before anything is written.  On any error the temporary
    directory is removed and the old report is left as it was.  Returns ``out_dir``.

    Also written (``reports.html.write_extras``): ``env.json`` (``env``, or collected now without importing
    a framework), the figures, ``report.html`` and, with ``trajectories`` (columns case, impl, step, cost;
    impl ``numpy`` for the reference), ``trajectories.csv`` and the trajectory plot.

    With ``catalogue`` (``nnparity.catalogue.run_catalogue()``): ``catalogue.csv`` and the section
    "Where the frameworks differ from the math".  ``sections``: further Markdown sections (each
    starting with a ``## Title`` line), appended to ``report.md`` and rendered into ``report.html``.
    """
    meta = dict(meta or {})
    with atomic_directory(out_dir, meta.get("force"), "report") as tmp:
        _write_files(tmp, details, meta, cases)
        sections = list(sections or [])
        if catalogue is not None:
            _write_catalogue(tmp, catalogue)
            sections.append(catalogue_section(catalogue))
        if bench is not None:  # nnparity.bench.report_table(...): already formatted text
            sections.append("## Benchmark\n\nTime per gradient step of each implementation (`nnparity bench "
                            "--quick`; see the README's Benchmark section for the columns).\n\n" + _markdown(bench))
        with open(tmp / "report.md", "a", encoding="utf-8") as f:
            for section in sections:
                f.write("\n" + section.strip() + "\n")
        from reports.html import write_extras

        write_extras(tmp, details, meta, cases, trajectories=trajectories, env=env, sections_md=sections)
    return Path(out_dir)


def _write_files(directory: Path, details: pd.DataFrame, meta: dict, cases: list | None) -> None:
    summary = summarize(details)
    details.to_csv(directory / "details.csv", index=False)
    summary.to_csv(directory / "summary.csv", index=False)
    document = summary_document(summary, meta)
    (directory / "summary.json").write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    (directory / "report.md").write_text(render_markdown(summary, meta, cases), encoding="utf-8")


def catalogue_section(catalogue: pd.DataFrame) -> str:
    """report.md's "Where the frameworks differ from the math": per entry, what differs, the measured
    effect, how this project aligns it, and the framework versions it was measured with."""
    lines = ["## Where the frameworks differ from the math", "",
             "Each entry ran a small case with the framework's default behaviour and with this project's "
             "aligned behaviour, in this run (`nnparity catalogue` prints the full records; `catalogue.csv` "
             "holds them with the raw measurements).", ""]
    for row in catalogue.itertuples(index=False):
        version = f", {row.framework_version}" if row.framework_version else ""
        lines.append(f"- **{row.title}** (`{row.id}`{version})")
        if row.status != "ok":
            lines.append(f"  - not measured: {row.status}")
            continue
        lines += [f"  - What differs: {row.what_differs}", f"  - Measured: {row.effect}",
                  f"  - Aligned: {row.how_aligned}"]
    return "\n".join(lines)


def _write_catalogue(directory: Path, catalogue: pd.DataFrame) -> None:
    from nnparity.catalogue import csv_frame

    csv_frame(catalogue).to_csv(directory / "catalogue.csv", index=False)
