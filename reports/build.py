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
        bound_ratio_vs_step.png, trajectory_differences.png, bound_ratio_heatmap.png   the figures (``reports.plots``)
        trajectories.csv   the cost at every step of every implementation (when ``trajectories`` is given)
        nnparity.json  written last: the format and version, and every file's size and SHA-256

Nothing here imports a framework.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from nnparity.numbers import jsonable, sci
from nnparity.outdir import FORMAT_VERSION, FORMATS, atomic_directory  # noqa: F401 (atomic_directory: re-exported)
from reports import golden
from reports.margin import MARGIN, PHASES, impl_summary, impl_table, with_margin  # noqa: F401 (re-exported)
from reports.summary import UNAVAILABLE, _how_to_read, meta_text, summarize, verdict

#: What a figure shows, for report.md's links and report.html's captions.
FIGURE_TITLES = {
    "bound_ratio_vs_step.png": "Margin of the cost at every step (error / limit, the limit at 1)",
    "trajectory_differences.png": "How far each cost trajectory is from the reference's",
    "bound_ratio_heatmap.png": "Worst error / limit of each case × implementation",
}

def _meta_lines(meta: dict) -> list[str]:
    """``- **key**: value`` per entry; a dict value (e.g. versions) becomes ``name value, ...``."""
    lines = []
    for key, value in meta.items():
        if key in ("force", "left_out"):
            continue
        lines.append(f"- **{key}**: {meta_text(key, value)}")
    return lines


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


def render_markdown(summary: pd.DataFrame, meta: dict, cases: list | None = None, *,
                    impls: pd.DataFrame | None = None, figures=(), baseline: list[str] | None = None) -> str:
    """The whole ``report.md``: verdict, the per-implementation summary, what changed since ``baseline``, links to
    the ``figures`` written, meta, how to read, results, cases, failures, unavailable."""
    sections = ["# nnparity report", f"**{verdict(summary)}**"]
    if meta.get("data_pins", "ok") != "ok":
        sections += [f"**data pin FAILS: {problem}**" for problem in meta["data_pins"]]
    if meta.get("left_out"):
        sections.append(meta["left_out"])
    if impls is not None and len(impls):
        sections.append("## Per implementation (worst error / limit of each phase)\n\n"
                        + _markdown(impl_table(impls), right=tuple(c for c, _ in PHASES)) + "\n\n" + MARGIN)
    if baseline:
        sections.append(baseline_markdown(baseline))
    if figures:
        sections.append("## Figures\n\n" + "\n".join(f"- [{FIGURE_TITLES.get(name, name)}]({name})"
                                                      for name in figures))
    sections += [
        "## This run\n\n" + "\n".join(_meta_lines(meta)) if _meta_lines(meta) else "",
        _how_to_read(),
        "## Results (case × implementation)\n\n" + _main_table(summary),
    ]
    if cases:
        sections.append("## Cases\n\n" + _cases_table(cases, summary))
    sections.append(_failures_section(summary))
    sections.append(_unavailable_section(summary))
    return "\n\n".join(s for s in sections if s) + "\n"


def baseline_markdown(lines: list[str]) -> str:
    """``--baseline``'s lines (``reports.run``): the first names the baseline, the rest what changed."""
    return "## Since the baseline\n\n" + lines[0] + "\n\n" + "\n".join(f"- {line}" for line in lines[1:])


# --------------------------------------------------------------------------- summary.json


def summary_document(summary: pd.DataFrame, meta: dict) -> dict:
    """What ``summary.json`` holds: a verdict block, the summary rows as records, and ``meta``."""
    records = jsonable(summary.to_dict("records"))
    unavailable = int(summary["status"].str.startswith(UNAVAILABLE).sum()) if len(summary) else 0
    return {
        "format": FORMATS["report"],
        "format_version": FORMAT_VERSION,
        "passed": bool(len(summary) and summary["passed"].all() and meta.get("data_pins", "ok") == "ok"),
        "tier": meta.get("tier", "full"),
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
                 bench: pd.DataFrame | None = None, baseline: list[str] | None = None,
                 timings: pd.DataFrame | None = None, summary: pd.DataFrame | None = None) -> Path:
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
    ``baseline``: what changed since a previous report, as lines (``nnparity report --baseline``), near the top.
    ``timings`` (columns piece, impl, phase, seconds; ``nnparity.timing``): ``timings.csv``, written last, with a
    row more: the seconds spent here writing everything else (piece and impl ``report``, phase ``rendering``).
    ``summary``: ``summarize(details)`` when the caller has it; computed here once otherwise, and handed to every
    file that reads it (summary.csv and .json, report.md, report.html, the per-implementation table).
    """
    meta = dict(meta or {})
    started = time.perf_counter()
    with atomic_directory(out_dir, meta.get("force"), "report") as tmp:
        from reports.plots import draw_all

        details = with_margin(details)  # error / limit of every row, computed once for the summary and figures
        summary = summarize(details) if summary is None else summary  # once per report
        figures = draw_all(details, trajectories)
        impls = impl_summary(details, summary=summary)
        _write_files(tmp, details.drop(columns="used"), meta, cases,
                     render=dict(impls=impls, figures=list(figures), baseline=baseline), summary=summary)
        golden.write(tmp, cases)  # golden.npz and reference.json: the reference's outputs, the data's fingerprints
        sections = list(sections or [])
        if catalogue is not None:
            _write_catalogue(tmp, catalogue)
            sections.append(catalogue_section(catalogue))
        if bench is not None:  # nnparity.bench.report_table(...): already formatted text
            sections.append("## Benchmark\n\nTime per gradient step of each implementation (`nnparity bench "
                            "--quick`; see docs/performance.md, Benchmark, for the columns).\n\n" + _markdown(bench))
        with open(tmp / "report.md", "a", encoding="utf-8") as f:
            for section in sections:
                f.write("\n" + section.strip() + "\n")
        from reports.html import write_extras

        write_extras(tmp, details, meta, cases, trajectories=trajectories, env=env, sections_md=sections,
                     figures=figures, impls=impls, baseline=baseline, summary=summary)
        if timings is not None:  # where each piece's seconds went, per implementation and phase, and the rendering
            rendering = {"piece": "report", "impl": "report", "phase": "rendering",
                         "seconds": round(time.perf_counter() - started, 4)}
            pd.DataFrame(timings.to_dict("records") + [rendering],
                         columns=list(dict.fromkeys(list(timings.columns) + list(rendering)))).to_csv(
                tmp / "timings.csv", index=False)
    return Path(out_dir)


def _write_files(directory: Path, details: pd.DataFrame, meta: dict, cases: list | None, render: dict,
                 summary: pd.DataFrame | None = None) -> None:
    summary = summarize(details) if summary is None else summary
    details.to_csv(directory / "details.csv", index=False)
    summary.to_csv(directory / "summary.csv", index=False)
    document = summary_document(summary, meta)
    document["coverage"] = coverage(details)
    (directory / "summary.json").write_text(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n",
                                            encoding="utf-8")
    (directory / "report.md").write_text(render_markdown(summary, meta, cases, **render), encoding="utf-8")


def coverage(details: pd.DataFrame) -> dict:
    """The report's coverage manifest: rows compared per case, implementation and phase (with the file checksums
    of ``nnparity.json`` and its completion marker, what ``nnparity compare`` checks a candidate against: a pair
    with fewer rows than its baseline compared less, and regresses)."""
    counts = details.groupby(["case", "impl", "phase"], sort=False).size()
    out: dict = {}
    for (case, impl, phase), n in counts.items():
        out.setdefault(case, {}).setdefault(impl, {})[phase] = int(n)
    return out


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
