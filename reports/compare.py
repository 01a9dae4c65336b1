"""``nnparity compare BASELINE CANDIDATE``: the drift report of two report directories, rendered and written.

What changed, the gates, the verdict and the exit code are ``nnparity.regression``'s (its docstring defines the
classes, the tolerance used, the drift, the error ratio and the ulp growth); here a ``Comparison`` becomes the
terminal's headlines and ``drift.md``, and ``run`` writes ``drift.md`` and ``drift.csv`` (the changed rows, worst
first) into the output directory.  The analysis' names are imported back from here by the commands and the tests.

Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from nnparity import regression
from nnparity.outdir import atomic_directory, claim, compare_out, comparison_of
from nnparity.regression import (  # noqa: F401  (the analysis: imported from here by the commands and the tests)
    DEFAULT_MAX_DRIFT,
    DEFAULT_MAX_GROWTH,
    DEFAULT_MAX_ULP_GROWTH,
    DRIFT_COLUMNS,
    EXIT_INCOMPLETE,
    EXIT_NOT_COMPARABLE,
    EXIT_OK,
    EXIT_REGRESSION,
    UNAVAILABLE,
    Gates,
    NotComparable,
    Report,
    _normalise,
    _quantity,
    _ratio_text,
    _worst_first,
    align,
    classify,
    collapse,
    environment_changes,
    load_report,
    scope,
    tolerance_used,
    ulps,
)
from reports.summary import sci

MD_ROW_LIMIT = 400


def _class_change(b, c) -> str:
    if pd.isna(b):
        return f"(absent) → {c}"
    if pd.isna(c):
        return f"{b} → (absent)"
    if b == c:
        return f"{b} (unchanged)"
    if b == "identical":
        return f"identical → differs ({c})"
    return f"{b} → {c}"


def _md_table(rows: pd.DataFrame) -> str:
    table = pd.DataFrame({
        "case": rows["case"], "impl": rows["impl"], "quantity": [_quantity(r) for _, r in rows.iterrows()],
        "steps": rows["steps"],
        "class (baseline → candidate)": [_class_change(b, c) for b, c in
                                         zip(rows["baseline_class"], rows["candidate_class"])],
        "baseline max abs err": rows["baseline_max_abs_err"].map(sci),
        "candidate max abs err": rows["candidate_max_abs_err"].map(sci),
        "error ratio": [_ratio_text(r, b, c) for r, b, c in
                        zip(rows["error_ratio"], rows["baseline_max_abs_err"], rows["candidate_max_abs_err"])],
        "tolerance used (baseline → candidate)": [f"{sci(b)} → {sci(c)}" for b, c in
                                                  zip(rows["baseline_tolerance_used"],
                                                      rows["candidate_tolerance_used"])],
        "drift": rows["drift"].map(sci),
        "ulp growth": rows["ulp_growth"].map(sci),
        "fp64 arbiter ratio": [sci(r) if judged else "" for r, judged in zip(rows["fp64_ratio"],
                                                                            regression.growth_of(rows)[2])],
        "baseline's envelope": ["within" if inside else f"beyond [{sci(lo)}, {sci(hi)}]"
                                for inside, lo, hi in zip(rows["within_envelope"].astype(bool),
                                                          rows["envelope_low"], rows["envelope_high"])],
        "known cause": rows["cause"],
    })
    if not table["known cause"].any():
        table = table.drop(columns="known cause")
    if not table["fp64 arbiter ratio"].any():  # no float32 row the float64 arbiter judges
        table = table.drop(columns="fp64 arbiter ratio")
    right = ("baseline max abs err", "candidate max abs err", "error ratio", "drift", "ulp growth",
             "fp64 arbiter ratio")
    align_ = ["right" if c in right else "left" for c in table.columns]
    return table.astype(str).to_markdown(index=False, disable_numparse=True, colalign=align_)


class Comparison(regression.Comparison):
    """``nnparity.regression.Comparison`` (the changes, the gates' findings, the verdict, the exit code) with its
    renderings: ``headlines`` for the terminal, ``markdown`` for drift.md."""

    @classmethod
    def of(cls, comparison: regression.Comparison) -> Comparison:
        return cls(**{f.name: getattr(comparison, f.name) for f in fields(comparison)})

    def headlines(self, limit: int = 10) -> list[str]:
        """The worst changes, one line each (pass → fail first), for the terminal."""
        changed = collapse(self.changed)
        lines = [f"{p['case']} {p['impl']}: {p['baseline']} → {p['candidate']}" for p in self.pair_changes]
        for _, row in changed.head(limit).iterrows():
            lines.append(f"{row['case']} {row['impl']} {_quantity(row)}"
                         + (f" ({row['steps']})" if row["steps"] else "")
                         + f": {_class_change(row['baseline_class'], row['candidate_class'])}, "
                           f"max abs err {sci(row['baseline_max_abs_err'])} → {sci(row['candidate_max_abs_err'])}, "
                           f"drift {sci(row['drift'])}")
        if len(changed) > limit:
            lines.append(f"... and {len(changed) - limit} more in drift.md")
        return lines

    def markdown(self) -> str:
        b, c = self.baseline, self.candidate
        lines = ["# nnparity compare", "", f"**{self.verdict()}**", ""]
        for role, report in (("baseline", b), ("candidate", c)):
            meta = report.meta
            run = (report.env or {}).get("run", {})
            started = meta.get("started") or run.get("started") or "?"
            command = meta.get("command") or run.get("command") or "?"
            lines.append(f"- **{role}**: `{report.path}` (started {started}; `{command}`)")
        compared = self.drift[["case", "impl"]].drop_duplicates()
        lines += [f"- **compared**: {len(compared)} case × implementation pairs, {len(self.drift)} rows"
                  + (f"; {self.left_out}" if self.left_out else ""),
                  f"- **largest drift**: {sci(self.largest_drift)} (limit `--max-drift {self.max_drift:g}`)",
                  f"- **largest growth**: {self._largest_growth()} (budget `--max-growth {self.max_growth:g}` and "
                  f"`--max-ulp-growth {self.max_ulp_growth:g}`"
                  f"{'; `--strict`: any class change' if self.strict else ''})",
                  ""]

        lines += ["## Environment differences", ""]
        if isinstance(self.environment, str):
            lines.append(self.environment)
        elif self.environment:
            table = pd.DataFrame(self.environment, columns=["setting", "baseline", "candidate"])
            lines.append(table.to_markdown(index=False, disable_numparse=True))
        else:
            lines.append("none: versions, BLAS, CPU, threads and determinism settings are the same")
        lines.append("")

        lines += ["## Pass → fail", ""]
        regressions = collapse(self.regressions)
        if len(regressions) or self.pair_regressions:
            for p in self.pair_regressions:
                lines.append(f"- **{p['case']}** / `{p['impl']}`: pass → fail")
            for _, row in regressions.iterrows():
                lines.append(f"- **{row['case']}** / `{row['impl']}` {_quantity(row)}"
                             + (f" ({row['steps']})" if row["steps"] else "")
                             + f": {_class_change(row['baseline_class'], row['candidate_class'])}, max abs err "
                               f"{sci(row['baseline_max_abs_err'])} → {sci(row['candidate_max_abs_err'])}, "
                               f"tolerance used {sci(row['baseline_tolerance_used'])} → "
                               f"{sci(row['candidate_tolerance_used'])}")
        else:
            lines.append("none")
        lines.append("")

        lines += ["## Grown beyond the budget", ""]
        grown = collapse(self.grown)
        judged = regression.growth_of(grown)[2] if len(grown) else []
        lines += [f"- **{row['case']}** / `{row['impl']}` {_quantity(row)}"
                  + (f" ({row['steps']})" if row["steps"] else "")
                  + (f": distance from the float64 run {sci(row['baseline_fp64_dist'])} → "
                     f"{sci(row['candidate_fp64_dist'])} (x{sci(row['fp64_ratio'])}, +{sci(row['fp64_ulp_growth'])} "
                     "ulp; the float64 arbiter)" if fp64 else
                     f": max abs err {sci(row['baseline_max_abs_err'])} → {sci(row['candidate_max_abs_err'])} "
                     f"(x{sci(row['error_ratio'])}, {sci(row['baseline_ulp'])} → {sci(row['candidate_ulp'])} ulp)")
                  for (_, row), fp64 in zip(grown.iterrows(), judged)] or ["none"]
        lines.append("")

        lines += ["## Known causes", ""]
        for record in self.known:
            explained = self.attributed[self.attributed["cause"].str.split(",").map(lambda ids: record.id in ids)]
            impls = ", ".join(dict.fromkeys(explained["impl"]))
            lines.append(f"- **{record.id}** ({record.link}): {record.what}; it explains "
                         f"{len(collapse(explained))} changed quantities" + (f" ({impls})" if impls else ""))
        if not self.known:
            lines.append("none: no documented cause (nnparity.known_changes) matches the environments' differences")
        lines.append("")

        lines += ["## Reference and data (golden values)", ""]
        lines += [f"- {g['text']}" for g in self.golden] or [
            "unchanged: the reference's outputs (cost trajectories, final parameters, predictions) and the "
            "fingerprints of the data sets are bit-identical"]
        lines.append("")

        lines += ["## Changes, worst first", ""]
        changed = collapse(self.changed)
        if len(changed):
            lines.append(_md_table(changed.head(MD_ROW_LIMIT)))
            if len(changed) > MD_ROW_LIMIT:
                lines.append(f"\n… and {len(changed) - MD_ROW_LIMIT} more; every changed row is in drift.csv")
        else:
            lines.append("none: every compared quantity has the same class and the same error")
        lines.append("")

        if self.pair_changes:
            lines += ["## Case × implementation status changes", ""]
            for p in self.pair_changes:
                lines.append(f"- **{p['case']}** / `{p['impl']}`: {p['baseline']} → {p['candidate']}")
            lines.append("")

        lines += ["## How to read this", "",
                  "Rows of the two `details.csv` are aligned by case, implementation, phase, quantity, layer "
                  "and step. **Class**: `identical` (max_abs_err = 0), `<=4 ulp` (within 4 units in the last "
                  "place of the dtype), `within bound` (passes its criterion), `fail`. **Error ratio**: candidate "
                  "max_abs_err / baseline max_abs_err. **Tolerance used**: the row's error divided by its "
                  "tolerance as its criterion states (bound ratio, or max_rel_err / its limit; the larger where "
                  "both apply) — a row passes when it is ≤ 1. **Drift**: candidate's tolerance used minus the "
                  "baseline's. **Ulp growth**: the candidate's error in units in the last place "
                  "of the dtype minus the baseline's. **Baseline's envelope**: the span of the row's error (its "
                  "distance from the float64 run, where the float64 arbiter judges it) that rounding alone gives "
                  "the baseline: its value, its rerun's from initial parameters moved by one ulp at the other "
                  "thread count (`--envelope`), and for a judged step the baseline's own honest float32 runs; a "
                  "row within it neither drifts nor grows. compare exits 1 when a row goes from pass to fail, drifts "
                  "by more than `--max-drift`, or grows beyond the budget (error ratio above `--max-growth` and ulp "
                  "growth above `--max-ulp-growth`), when the reference or the data moved, and with `--strict` "
                  "when any class changed. A trajectory's changed steps are one line, at its worst step; "
                  "`drift.csv` has every changed row."]
        return "\n".join(lines) + "\n"


def compare(baseline_dir, candidate_dir, max_drift: float = DEFAULT_MAX_DRIFT,
            intersection: bool = False, gates: Gates | None = None, envelope_dir=None) -> Comparison:
    """``nnparity.regression.compare``, rendered."""
    return Comparison.of(regression.compare(baseline_dir, candidate_dir, max_drift, intersection, gates,
                                            envelope_dir))


def _compare(baseline: Report, candidate: Report, gates: Gates | float, intersection: bool,
             envelope: Report | None = None) -> Comparison:
    """``nnparity.regression.compare_reports``, rendered."""
    return Comparison.of(regression.compare_reports(baseline, candidate, gates, intersection, envelope))


def write(comparison: Comparison, out_dir, force: bool = False, of: dict | None = None) -> Path:
    """``drift.md`` and ``drift.csv`` (the changed rows, worst first) into ``out_dir``, atomically; ``of``: the two
    reports it compares (``comparison_of``), so that the same comparison run again replaces its own output."""
    with atomic_directory(out_dir, force, "compare", of=of) as tmp:
        (tmp / "drift.md").write_text(comparison.markdown(), encoding="utf-8")
        _worst_first(comparison.changed)[DRIFT_COLUMNS].to_csv(tmp / "drift.csv", index=False)
    return Path(out_dir)


def run(baseline_dir, candidate_dir, out_dir=None, max_drift: float = DEFAULT_MAX_DRIFT,
        force: bool = False, intersection: bool = False, gates: Gates | None = None,
        envelope_dir=None) -> tuple[Comparison, Path]:
    """Check that ``out_dir`` may be written and lock it, compare, write; the comparison's ``exit_code`` is the
    command's (``NotComparable``: exit 4, nothing written).  ``envelope_dir``: the baseline's envelope run."""
    baseline, candidate = load_report(baseline_dir, "BASELINE"), load_report(candidate_dir, "CANDIDATE")
    envelope = load_report(envelope_dir, "--envelope") if envelope_dir is not None else None
    if out_dir is None:
        out_dir = compare_out(baseline_dir, candidate_dir)
    of = comparison_of(baseline_dir, candidate_dir, envelope_dir)
    with claim(out_dir, force, "compare", of):
        comparison = _compare(baseline, candidate, gates or Gates(max_drift), intersection, envelope)
        return comparison, write(comparison, out_dir, force, of)
