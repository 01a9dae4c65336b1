"""What changed between two report directories: the analysis behind ``nnparity compare`` and ``upgrade-check``.

The upgrade workflow: a report on the old versions (the baseline), the
upgrade, a report on the new versions (the candidate), then this.  Rows of
``details.csv`` are aligned by (case, impl, phase, quantity, layer, step) over
the (case, implementation) pairs that ran in both reports, and the drift report
(``reports.compare``) lists, in this order: what changed in the environment (``env.json``), the
comparisons that went from pass to fail, and every quantity whose
classification or error changed, worst first.

Two reports are compared only when they cover the same case × implementation
pairs, with the same dtypes and numbers of trajectory steps (``scope``;
otherwise ``NotComparable``, exit 4, naming what differs); ``intersection``
compares the pairs that match and the verdict says what was left out.  Both
directories must be complete reports of this format (``nnparity.outdir.verify``).

Definitions (also in ``nnparity compare --help`` and docs/upgrading.md):

* **class** of a row: ``identical`` (max_abs_err = 0), ``<=4 ulp`` (within 4
  units in the last place of the dtype: the ``max_ulp`` column where both reports
  have it, else ``max_abs_err <= 4 ulp(max|ref|)``, max|ref| = max_abs_err /
  max_rel_err), ``within bound`` (passed), ``fail``; reports whose rows carry the
  harness's ``classification`` are compared by that column instead (any class it
  knows, e.g. ``drifted``).
* **tolerance used** of a row: its error divided by its tolerance, as the
  row's ``criterion`` states (``bound_ratio<=1`` -> bound_ratio,
  ``max_rel_err<=1e-10`` -> max_rel_err / 1e-10, a bare column -> column / tol;
  the largest where several apply); a row passes when it is <= 1.
* **drift** of a row: candidate's tolerance used minus baseline's; 0 for an
  unchanged row, positive when the candidate moved towards (or past) failing.
* **error ratio**: candidate max_abs_err / baseline max_abs_err (0 -> nonzero
  is "identical → differs").

* **ulp growth**: candidate's error in ulp of the dtype minus the baseline's (``ulps``).

Gates (``Gates``): a row regresses when it goes from pass to fail, drifts more than
``max_drift``, or grows beyond the budget (error ratio > ``max_growth`` and ulp growth >
``max_ulp_growth``); with ``strict``, any class change.  The golden values
(``nnparity.golden``) are compared too: a changed data set or a reference moved beyond
``max_ulp_growth`` ulp regresses.

Exit codes (``Comparison.exit_code``): 0 no regression; 1 something went from pass to fail, drifted more than
``max_drift``, grew beyond the budget, or the reference or the data moved; 3 (nothing of 1) the candidate could not run
an implementation the baseline ran; 4 ``NotComparable``; ``UsageError`` (exit 2) for bad input.

``reports.compare`` renders a ``Comparison`` (drift.md, drift.csv, the terminal's headlines) and writes it;
everything it renders is computed here.  Nothing here imports a framework.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nnparity import golden, known_changes
from nnparity.environment import NUMERICS, VOLATILE, flatten
from nnparity.errors import UsageError
from nnparity.numbers import sci
from nnparity.outdir import verify
from nnparity.tiers import FULL

NUMERICS_DISTRIBUTIONS = {name.lower().replace("_", "-") for name in NUMERICS} | {"tensorflow-cpu"}
KEY = ["case", "impl", "phase", "quantity", "layer", "step"]
NEEDED = KEY + ["dtype", "max_abs_err", "max_rel_err", "bound_ratio", "tol", "criterion", "passed"]
#: The classes compare derives for reports without a ``classification`` column; reports with one are compared by
#: it, whatever classes the harness that wrote them knows (it adds ``drifted`` between ``within bound`` and ``fail``).
UNAVAILABLE = "unavailable"
DEFAULT_MAX_DRIFT = 0.5
#: The growth budget (``--max-growth``, ``--max-ulp-growth``): a row regresses when its error grows by more than
#: BOTH.  Chosen from measured noise (docs/upgrading.md): the same report with 1 vs 2 threads.
DEFAULT_MAX_GROWTH = 10.0
DEFAULT_MAX_ULP_GROWTH = 256.0

DRIFT_COLUMNS = [
    "case", "impl", "phase", "quantity", "layer", "step", "dtype", "change",
    "baseline_class", "candidate_class", "baseline_max_abs_err", "candidate_max_abs_err", "error_ratio",
    "baseline_max_rel_err", "candidate_max_rel_err", "baseline_tolerance_used", "candidate_tolerance_used", "drift",
    "baseline_passed", "candidate_passed", "baseline_ulp", "candidate_ulp", "ulp_growth",
    "baseline_fp64_dist", "candidate_fp64_dist", "fp64_ratio", "fp64_ulp_growth",
    "envelope_low", "envelope_high", "within_envelope", "cause",
]

EXIT_OK, EXIT_REGRESSION, EXIT_INCOMPLETE, EXIT_NOT_COMPARABLE = 0, 1, 3, 4


# --------------------------------------------------------------------------- reading


@dataclass
class Report:
    path: Path
    details: pd.DataFrame
    summary: pd.DataFrame
    env: dict | None
    meta: dict = field(default_factory=dict)


def load_report(path, role: str) -> Report:
    """Read one report directory; a one-line ``UsageError`` naming the problem and the fix if it is not a complete
    report of this format (``nnparity.outdir.verify``: missing, temporary, half-written, altered, older, foreign)."""
    path = Path(path)
    verify(path, "report", role)
    fix = f"pass a directory written by `nnparity report --out DIR` as {role}"
    try:
        details = pd.read_csv(path / "details.csv", keep_default_na=False, na_values=[""], low_memory=False)
        summary = pd.read_csv(path / "summary.csv", keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise UsageError(f"cannot read {role} {path}: {type(exc).__name__}: {exc}; {fix}") from None
    missing = [c for c in NEEDED if c not in details.columns]
    if missing:
        raise UsageError(f"{role} {path / 'details.csv'} lacks the columns {', '.join(missing)}; {fix}")
    if not {"case", "impl", "status"} <= set(summary.columns):
        raise UsageError(f"{role} {path / 'summary.csv'} lacks the columns case, impl, status; {fix}")
    env = _read_json(path / "env.json", role)
    document = _read_json(path / "summary.json", role) or {}
    return Report(path, _normalise(details), summary, env, document.get("meta") or {})


def _read_json(path: Path, role: str):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read {role} {path}: {exc}; regenerate the report with nnparity report") from None


def _normalise(details: pd.DataFrame) -> pd.DataFrame:
    details = details.copy()
    for column in ("case", "impl", "phase", "quantity", "criterion", "dtype", "note", "classification"):
        if column in details.columns:
            details[column] = details[column].map(lambda v: "" if pd.isna(v) else str(v)).astype(object)
    for column in ("layer", "step"):
        details[column] = pd.to_numeric(details[column], errors="coerce").astype("Int64")
    for column in ("max_abs_err", "max_rel_err", "bound_ratio", "tol") + (("max_ulp",) if "max_ulp" in details else ()):
        details[column] = pd.to_numeric(details[column], errors="coerce").astype(float)
    details["passed"] = details["passed"].map(lambda v: str(v).strip().lower() == "true")
    return details


# --------------------------------------------------------------------------- per-row measures


def ulps(details: pd.DataFrame, use_ulp_column: bool) -> np.ndarray:
    """Each row's error in units in the last place of its dtype: the ``max_ulp`` column, or (reports without it)
    max_abs_err / ulp(max|ref|), max|ref| = max_abs_err / max_rel_err; NaN where neither says (predictions)."""
    abs_err = details["max_abs_err"].to_numpy(dtype=float)
    if use_ulp_column:
        values = details["max_ulp"].to_numpy(dtype=float)
    else:
        rel_err = details["max_rel_err"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(rel_err > 0, abs_err / rel_err, np.nan)
        eps = np.array([np.finfo(d).eps if d in ("float32", "float64") else np.nan for d in details["dtype"]])
        tiny = np.array([np.finfo(d).smallest_subnormal if d in ("float32", "float64") else np.nan
                         for d in details["dtype"]])
        # ulp(x) = 2**floor(log2 |x|) * eps: exact for normal numbers
        with np.errstate(divide="ignore", invalid="ignore"):
            ulp = np.maximum(np.exp2(np.floor(np.log2(scale))) * eps, tiny)
            values = np.where(abs_err == 0, 0.0, np.where(np.isfinite(scale), abs_err / ulp, np.nan))
    return np.where(details["phase"].to_numpy() == "predictions", np.nan, values)


def classify(details: pd.DataFrame, use_ulp_column: bool) -> pd.Series:
    """``identical`` / ``<=4 ulp`` / ``within bound`` / ``fail`` (``unavailable`` for an implementation that did not
    run)."""
    abs_err = details["max_abs_err"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        within_4ulp = ulps(details, use_ulp_column) <= 4
    classes = np.where(~details["passed"].to_numpy(dtype=bool), "fail",
                       np.where(abs_err == 0, "identical", np.where(within_4ulp, "<=4 ulp", "within bound")))
    classes = np.where(details["phase"].to_numpy() == UNAVAILABLE, UNAVAILABLE, classes)
    return pd.Series(classes, index=details.index)


_TERM = re.compile(r"^\s*([A-Za-z_]+)\s*(?:<=\s*([-+0-9.eE]+|inf))?\s*$")


def tolerance_used(details: pd.DataFrame) -> pd.Series:
    """Each row's error as a fraction of its tolerance, read off its ``criterion`` (1 = at the limit).

    ``bound_ratio<=1`` -> bound_ratio; ``max_rel_err<=1e-10`` -> max_rel_err / 1e-10; a bare column name
    -> that column / ``tol``; ``a and b`` -> the larger; anything else -> bound_ratio.
    """
    cache: dict[str, list] = {}

    def terms(criterion: str):
        if criterion not in cache:
            parsed = []
            for part in criterion.split(" and "):
                match = _TERM.match(part)
                if match and match.group(1) in details.columns:
                    parsed.append((match.group(1), float(match.group(2)) if match.group(2) else None))
                else:
                    parsed = []
                    break
            cache[criterion] = parsed or [("bound_ratio", 1.0)]
        return cache[criterion]

    used = np.empty(len(details))
    for i, row in enumerate(details.itertuples(index=False)):
        values = []
        for column, limit in terms(row.criterion):
            limit = row.tol if limit is None else limit
            value = getattr(row, column)
            if pd.isna(value):
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                values.append(np.float64(value) / np.float64(limit) if limit else (0.0 if value == 0 else np.inf))
        used[i] = max(values) if values else np.nan
    return pd.Series(used, index=details.index)


def _difference(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """candidate − baseline, with equal infinities (both failing the same way) giving 0."""
    with np.errstate(invalid="ignore"):
        d = candidate - baseline
    return np.where(candidate == baseline, 0.0, d)


def _ratio(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = candidate / baseline
    r = np.where((candidate == 0) & (baseline == 0), 1.0, r)
    return np.where(candidate == baseline, 1.0, r)


# --------------------------------------------------------------------------- alignment


def _keyed(details: pd.DataFrame) -> pd.DataFrame:
    """Key columns as text (NA layer/step as ""), plus an occurrence counter so duplicate keys still align."""
    keyed = details.copy()
    keyed["layer_key"] = keyed["layer"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    keyed["step_key"] = keyed["step"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    keyed["occurrence"] = keyed.groupby(["case", "impl", "phase", "quantity", "layer_key", "step_key"]).cumcount()
    return keyed


def _pair_status(report: Report) -> dict:
    return {(row.case, row.impl): str(row.status) for row in report.summary.itertuples()}


# --------------------------------------------------------------------------- what can be compared


class NotComparable(Exception):
    """The reports cover different case × implementation pairs, dtypes or numbers of steps (exit 4)."""


@dataclass
class Scope:
    pairs: list  # the (case, impl) pairs compared, in the baseline's order
    left_out: str = ""  # with --intersection: what was not compared, as a sentence ("" when everything was)


def _pair_facts(report: Report) -> dict:
    """(case, impl) -> (dtype, number of trajectory steps) for every pair in the report's summary."""
    d = report.details
    trajectory = d[(d["phase"] == "trajectory") & d["step"].notna()]
    steps = trajectory.groupby(["case", "impl"])["step"].nunique()
    dtypes = d.groupby(["case", "impl"])["dtype"].first()
    return {pair: (dtypes.get(pair, ""), int(steps.get(pair, 0))) for pair in _pair_status(report)}


def _pair_list(pairs: list, facts=None, limit: int = 3) -> str:
    """``case/impl, case/impl, …`` (at most ``limit``); with ``facts`` ``{pair: text}`` each pair's text after it."""
    names = [f"{case}/{impl}" + (f": {facts[(case, impl)]}" if facts else "") for case, impl in pairs[:limit]]
    return ", ".join(names) + (", …" if len(pairs) > limit else "")


def scope(baseline: Report, candidate: Report, intersection: bool = False) -> Scope:
    """The pairs to compare.  Reports that differ in their case × implementation pairs, or pairs in both that
    differ in dtype or number of trajectory steps, are ``NotComparable`` (one line naming what differs);
    with ``intersection`` only the pairs that match are compared and ``Scope.left_out`` says what was not."""
    b, c = _pair_facts(baseline), _pair_facts(candidate)
    b_status, c_status = _pair_status(baseline), _pair_status(candidate)
    only_b = [p for p in b if p not in c]
    only_c = [p for p in c if p not in b]
    common = [p for p in b if p in c]
    dtypes = [p for p in common if b[p][0] != c[p][0]]
    steps = [p for p in common if p not in dtypes and b[p][1] != c[p][1]
             and not b_status[p].startswith(UNAVAILABLE) and not c_status[p].startswith(UNAVAILABLE)]
    compared = [p for p in common if p not in dtypes and p not in steps]
    pair = "case × implementation pair"
    problems, left_out = [], []
    tiers = [report.meta.get("tier", FULL) for report in (baseline, candidate)]  # older reports ran everything
    if tiers[0] != tiers[1]:
        problems.append(f"the baseline ran the {tiers[0]} tier, the candidate the {tiers[1]} tier (nnparity report "
                        "--full runs the full one)")
    if only_c:
        problems.append(f"the candidate has {_count(len(only_c), pair)} the baseline lacks ({_pair_list(only_c)})")
        left_out.append(f"{len(only_c)} only in the candidate")
    if only_b:
        problems.append(f"the baseline has {_count(len(only_b), pair)} the candidate lacks ({_pair_list(only_b)})")
        left_out.append(f"{len(only_b)} only in the baseline")
    if dtypes:
        problems.append(f"{_count(len(dtypes), pair)} in both differ in dtype "
                        f"({_pair_list(dtypes, {p: f'{b[p][0]} vs {c[p][0]}' for p in dtypes})})")
        left_out.append(f"{len(dtypes)} with different dtypes")
    if steps:
        problems.append(f"{_count(len(steps), pair)} in both differ in their number of trajectory steps "
                        f"({_pair_list(steps, {p: f'{b[p][1]} vs {c[p][1]}' for p in steps})})")
        left_out.append(f"{len(steps)} with different numbers of steps")
    if not problems:
        return Scope(compared)
    if intersection and compared and len(problems) == 1 and tiers[0] != tiers[1]:
        return Scope(compared, f"compared the {_count(len(compared), 'pair')} the {tiers[0]} and the {tiers[1]} tier "
                               "ran alike (--intersection)")
    if intersection and compared:
        total = len(only_b) + len(only_c) + len(dtypes) + len(steps)
        return Scope(compared, f"compared the {_count(len(compared), 'pair')} common to both; "
                               f"{', '.join(left_out)} {'was' if total == 1 else 'were'} not compared (--intersection)")
    fix = ("nothing is left to compare; rerun both with the same --cases and --impl" if intersection else
           "rerun both with the same --cases and --impl (and the same nnparity), or pass --intersection to compare "
           "only the pairs that match")
    raise NotComparable(f"not comparable: {'; '.join(problems)}; {fix}")


def _has_classes(details: pd.DataFrame) -> bool:
    """Whether every row that ran carries the harness's classification (then compare reads it, not re-derives it)."""
    if "classification" not in details.columns:
        return False
    ran = details.loc[details["phase"] != UNAVAILABLE, "classification"]
    return bool(len(ran)) and bool(ran.ne("").all())


def align(baseline: Report, candidate: Report, pairs: list | None = None,
          envelope: Report | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """The row-level drift frame (``DRIFT_COLUMNS`` plus ``changed``) and the pair-level differences, over
    ``pairs`` (default: ``scope(baseline, candidate).pairs``, which refuses reports that are not comparable);
    ``envelope``: the baseline's own rerun (``envelope_band``)."""
    base_status, cand_status = _pair_status(baseline), _pair_status(candidate)
    if pairs is None:
        pairs = scope(baseline, candidate).pairs
    both_ran, pair_changes = set(), []
    for pair in pairs:
        b, c = base_status[pair], cand_status[pair]
        if not b.startswith(UNAVAILABLE) and not c.startswith(UNAVAILABLE):
            both_ran.add(pair)
        if b != c:
            pair_changes.append(dict(case=pair[0], impl=pair[1], baseline=b, candidate=c))

    use_ulp = all("max_ulp" in r.details.columns and r.details["max_ulp"].notna().any() for r in (baseline, candidate))
    use_classes = all(_has_classes(r.details) for r in (baseline, candidate))
    sides = {}
    for name, report in (("baseline", baseline), ("candidate", candidate)) + ((("envelope", envelope),)
                                                                              if envelope is not None else ()):
        d = report.details
        d = d[[pair in both_ran for pair in zip(d["case"], d["impl"])]]
        classes = (d["classification"].where(d["phase"] != UNAVAILABLE, UNAVAILABLE) if use_classes
                   else classify(d, use_ulp))
        d = d.assign(cls=classes, used=tolerance_used(d), ulp=ulps(d, use_ulp),
                     fp64=d["fp64_dist"] if "fp64_dist" in d.columns else np.nan,
                     fp64_envelope=d["fp64_envelope"] if "fp64_envelope" in d.columns else np.nan,
                     value=d["value"] if "value" in d.columns else np.nan)
        sides[name] = _keyed(d)
    on = ["case", "impl", "phase", "quantity", "layer_key", "step_key", "occurrence"]
    keep = on + ["layer", "step", "dtype", "cls", "max_abs_err", "max_rel_err", "used", "ulp", "passed", "fp64",
                 "value"]
    merged = sides["baseline"][keep + ["fp64_envelope"]].merge(sides["candidate"][keep], on=on, how="outer",
                                                               suffixes=("_b", "_c"), indicator=True, sort=False)
    rerun = sides.get("envelope", pd.DataFrame(columns=on + ["max_abs_err", "fp64"]))
    merged = merged.merge(rerun[on + ["max_abs_err", "fp64"]].rename(columns={"max_abs_err": "max_abs_err_e",
                                                                              "fp64": "fp64_e"}),
                          on=on, how="left", sort=False)
    drift = pd.DataFrame({
        "case": merged["case"], "impl": merged["impl"], "phase": merged["phase"], "quantity": merged["quantity"],
        "layer": merged["layer_b"].fillna(merged["layer_c"]), "step": merged["step_b"].fillna(merged["step_c"]),
        "dtype": merged["dtype_b"].fillna(merged["dtype_c"]),
        "baseline_class": merged["cls_b"], "candidate_class": merged["cls_c"],
        "baseline_max_abs_err": merged["max_abs_err_b"], "candidate_max_abs_err": merged["max_abs_err_c"],
        "baseline_max_rel_err": merged["max_rel_err_b"], "candidate_max_rel_err": merged["max_rel_err_c"],
        "baseline_tolerance_used": merged["used_b"], "candidate_tolerance_used": merged["used_c"],
        "baseline_passed": merged["passed_b"], "candidate_passed": merged["passed_c"],
        "baseline_ulp": merged["ulp_b"], "candidate_ulp": merged["ulp_c"],
        "baseline_fp64_dist": merged["fp64_b"], "candidate_fp64_dist": merged["fp64_c"],
    })
    # the float64 arbiter (issue 18): a float32 run judged by its distance from the float64 reference run; the
    # candidate's distance over the baseline's, where both reports measured it (float32 steps after the first)
    b_fp64 = drift["baseline_fp64_dist"].to_numpy(dtype=float)
    c_fp64 = drift["candidate_fp64_dist"].to_numpy(dtype=float)
    drift["fp64_ratio"] = _ratio(c_fp64, b_fp64)
    value = np.abs(merged["value_b"].fillna(merged["value_c"]).to_numpy(dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):  # the growth in units in the last place of the float32 value
        drift["fp64_ulp_growth"] = (c_fp64 - b_fp64) / np.spacing(value.astype(np.float32)).astype(float)
    drift["ulp_growth"] = _difference(drift["candidate_ulp"].to_numpy(dtype=float),
                                      drift["baseline_ulp"].to_numpy(dtype=float))
    b_abs = drift["baseline_max_abs_err"].to_numpy(dtype=float)
    c_abs = drift["candidate_max_abs_err"].to_numpy(dtype=float)
    drift["error_ratio"] = _ratio(c_abs, b_abs)
    drift["envelope_low"], drift["envelope_high"], drift["within_envelope"] = envelope_band(
        drift, merged["max_abs_err_e"].to_numpy(dtype=float), merged["fp64_e"].to_numpy(dtype=float),
        merged["fp64_envelope"].to_numpy(dtype=float))
    drift["drift"] = _difference(drift["candidate_tolerance_used"].to_numpy(dtype=float),
                                 drift["baseline_tolerance_used"].to_numpy(dtype=float))
    side = merged["_merge"].astype(str).to_numpy()
    b_pass = drift["baseline_passed"].to_numpy(dtype=object)
    c_pass = drift["candidate_passed"].to_numpy(dtype=object)
    change = np.full(len(drift), "changed", dtype=object)
    same_err = (b_abs == c_abs) | (np.isnan(b_abs) & np.isnan(c_abs))
    unchanged = (side == "both") & same_err & (drift["baseline_class"] == drift["candidate_class"]).to_numpy()
    change[unchanged] = "unchanged"
    change[(side == "both") & (b_pass == True) & (c_pass == False)] = "pass → fail"  # noqa: E712 (object arrays)
    change[(side == "both") & (b_pass == False) & (c_pass == True)] = "fail → pass"  # noqa: E712
    change[side == "left_only"] = "only in baseline"
    change[side == "right_only"] = "only in candidate"
    drift["change"] = change
    drift["changed"] = change != "unchanged"
    drift["cause"] = ""  # the known changes that explain a row: compare_reports, from the environments
    drift["layer"] = drift["layer"].astype("Int64")
    drift["step"] = drift["step"].astype("Int64")
    return drift[DRIFT_COLUMNS + ["changed"]], pair_changes


# --------------------------------------------------------------------------- environment


DISTRIBUTIONS = "installed.distributions."


def environment_changes(baseline: dict | None, candidate: dict | None) -> list[tuple[str, str, str]] | str:
    """``[(setting, baseline, candidate)]`` of every env.json entry that differs (volatile run details left out);
    a sentence instead when a report has no env.json.  Distributions installed on one side only, other than the
    numerics' own, are one row per side (``installed.distributions.(installed in the baseline only)``)."""
    if baseline is None or candidate is None:
        which = " and ".join(n for n, e in (("baseline", baseline), ("candidate", candidate)) if e is None)
        return (f"not compared: the {which} report has no env.json (written by an nnparity older than env.json); "
                "regenerate it with nnparity report to compare environments")
    flat_b, flat_c = flatten(baseline), flatten(candidate)
    changes, one_sided = [], {"baseline": [], "candidate": []}
    for key in list(dict.fromkeys(list(flat_b) + list(flat_c))):
        if key in VOLATILE:
            continue
        b, c = flat_b.get(key, "(absent)"), flat_c.get(key, "(absent)")
        if b == c:
            continue
        name = key.removeprefix(DISTRIBUTIONS)
        if key.startswith(DISTRIBUTIONS) and name not in NUMERICS_DISTRIBUTIONS and "(absent)" in (b, c):
            one_sided["candidate" if b == "(absent)" else "baseline"].append(f"{name} {c if b == '(absent)' else b}")
            continue
        if isinstance(b, list) and isinstance(c, list) and all(isinstance(v, (str, int, float)) for v in b + c):
            removed = [v for v in b if v not in c]
            added = [v for v in c if v not in b]
            if added or removed:
                changes.append((key, _list_side(b, removed), _list_side(c, added)))
                continue
        changes.append((key, _brief(b), _brief(c)))
    # a distribution installed on one side only (a candidate environment holds the chosen frameworks alone): one row
    # per side, not a row each, unless it is one of the numerics' own (NUMERICS_DISTRIBUTIONS), listed above
    for side, names in one_sided.items():
        if names:
            listed = _brief(" ".join(names))
            shown = (listed, "(absent)") if side == "baseline" else ("(absent)", listed)
            changes.append((f"{DISTRIBUTIONS}(installed in the {side} only)", *shown))
    return sorted(changes, key=lambda change: _environment_rank(change[0]))


def _environment_rank(key: str) -> int:
    """The numerics-relevant versions first (python, numpy, the frameworks, scikit-learn, ...: ``NUMERICS``), then the
    other settings (BLAS, threads, CPU, ...), then the rest of the installed distributions."""
    if key.startswith("versions.") and key.removeprefix("versions.") in NUMERICS:
        return 0
    if key.startswith("installed.distributions."):
        return 1 if key.removeprefix("installed.distributions.") in NUMERICS_DISTRIBUTIONS else 3
    return 2


def _list_side(values: list, only: list) -> str:
    """``3 entries; only here: sse4_2 avx2`` -- or just the count when nothing is only on this side."""
    return _count(len(values), "entry", "entries") + (f"; only here: {_brief(only)}" if only else "")


def _brief(value, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        text = " ".join(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- the comparison


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _ratio_text(ratio, b, c) -> str:
    if b == 0 and c == 0:
        return "1"
    if b == 0:
        return "0 → nonzero"
    if c == 0:
        return "→ 0"
    return sci(ratio)


def _quantity(row) -> str:
    name = str(row["quantity"]) + ("" if pd.isna(row["layer"]) else str(int(row["layer"])))
    return f"{row['phase']} {name}".strip()


def growth_of(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's growth: (ratio, ulp growth, judged by the float64 arbiter).  A float32 free-running step that both
    reports measured against the float64 run (``fp64_dist``, and the cost's ``value`` for its ulp) grows by that
    distance (``fp64_ratio``, ``fp64_ulp_growth``); every other row by its error (``error_ratio``,
    ``ulp_growth``)."""
    judged = (rows["phase"].eq("trajectory") & rows["fp64_ratio"].notna() & rows["fp64_ulp_growth"].notna()).to_numpy()
    ratio = np.where(judged, rows["fp64_ratio"].to_numpy(dtype=float), rows["error_ratio"].to_numpy(dtype=float))
    ulp = np.where(judged, rows["fp64_ulp_growth"].to_numpy(dtype=float), rows["ulp_growth"].to_numpy(dtype=float))
    return ratio, ulp, judged


#: The envelope's width: FACTOR times the rerun's movement (one rerun samples rounding once, and another draw may land
#: beyond it: the float64 arbiter's own FACTOR, ``nnparity.arbiter``), and at least ROUNDING_ULP ulp either way (a
#: reordered sum moves its result by up to 4 ulp: the ``<=4 ulp`` class).
ENVELOPE_FACTOR = 8.0
ROUNDING_ULP = 4.0


def envelope_band(drift: pd.DataFrame, rerun_err, rerun_fp64, fp64_envelope):
    """The baseline's own envelope of each row, in the measure its growth is judged by (``growth_of``: the distance
    from the float64 run for a float32 free-running step the arbiter judges, else the error), and whether the
    candidate's lies inside it: ``(low, high, within)``.

    The envelope is centred on the baseline's value, ``ENVELOPE_FACTOR`` times as wide as the baseline's rerun
    moved it (``rerun_*``: the baseline's report again from initial parameters moved by one ulp at the other thread
    count, ``upgrade-check``'s envelope run; no width without one) and at least ``ROUNDING_ULP`` ulp of the row's
    error either way: what rounding alone moves the row by.  A judged step's envelope also reaches down to 0 and up
    to the distance from float64 of the baseline's own honest float32 runs (``fp64_envelope``: its reference and
    one-ulp reruns of it): a candidate no farther from float64 than those is one more honest run."""
    _, _, judged = growth_of(drift)
    base = np.where(judged, drift["baseline_fp64_dist"].to_numpy(dtype=float),
                    drift["baseline_max_abs_err"].to_numpy(dtype=float))
    cand = np.where(judged, drift["candidate_fp64_dist"].to_numpy(dtype=float),
                    drift["candidate_max_abs_err"].to_numpy(dtype=float))
    rerun = np.where(judged, rerun_fp64, rerun_err)
    with np.errstate(invalid="ignore"):
        width = ENVELOPE_FACTOR * np.nan_to_num(np.abs(rerun - base), nan=0.0, posinf=0.0)
        low = np.where(judged, 0.0, np.maximum(base - width, 0.0))
        high = np.fmax(base + width, np.where(judged, fp64_envelope, np.nan))
        rounding = ~judged & (np.abs(drift["ulp_growth"].to_numpy(dtype=float)) <= ROUNDING_ULP)
        within = ((cand >= low) & (cand <= high)) | (cand == base) | rounding
    return low, high, within


def _worst_first(rows: pd.DataFrame) -> pd.DataFrame:
    """pass → fail first, then by drift, then by growth (``growth_of``, largest first)."""
    key = pd.DataFrame({
        "regression": rows["change"].eq("pass → fail"),
        "drift": rows["drift"].fillna(-np.inf),
        "ratio": np.nan_to_num(growth_of(rows)[0], nan=-np.inf),
    }, index=rows.index)
    return rows.loc[key.sort_values(["regression", "drift", "ratio"], ascending=False, kind="stable").index]


def collapse(changed: pd.DataFrame) -> pd.DataFrame:
    """One entry per (case, impl, phase, quantity, layer): the changed steps of a quantity measured at several
    steps (a trajectory, checkpoints) become one line with its worst step."""
    if changed.empty:
        return changed.assign(steps="")
    groups = []
    for _, group in changed.groupby(["case", "impl", "phase", "quantity", "layer"], sort=False, dropna=False):
        worst = _worst_first(group).iloc[0].copy()
        if group["step"].nunique() > 1:
            steps = group["step"].dropna()
            regressions = int(group["change"].eq("pass → fail").sum())
            worst["steps"] = (f"{len(group)} steps changed ({int(steps.min())}–{int(steps.max())}), "
                              f"worst at step {'' if pd.isna(worst['step']) else int(worst['step'])}"
                              + (f"; {regressions} pass → fail" if regressions else ""))
        else:
            worst["steps"] = "" if pd.isna(worst["step"]) else f"step {int(worst['step'])}"
        groups.append(worst)
    return _worst_first(pd.DataFrame(groups))


@dataclass
class Comparison:
    baseline: Report
    candidate: Report
    drift: pd.DataFrame
    pair_changes: list
    environment: list | str
    max_drift: float
    left_out: str = ""  # with --intersection: the pairs not compared, as a sentence
    max_growth: float = DEFAULT_MAX_GROWTH
    max_ulp_growth: float = DEFAULT_MAX_ULP_GROWTH
    strict: bool = False
    golden: list = field(default_factory=list)  # nnparity.golden.compare's findings
    known: list = field(default_factory=list)  # the known changes (nnparity.known_changes) the environments show

    @property
    def changed(self) -> pd.DataFrame:
        return self.drift[self.drift["changed"]]

    @property
    def regressions(self) -> pd.DataFrame:
        return self.drift[self.drift["change"] == "pass → fail"]

    @property
    def pair_regressions(self) -> list:
        return [p for p in self.pair_changes if p["baseline"] == "pass" and p["candidate"] == "fail"]

    @property
    def lost(self) -> list:
        """Pairs the baseline ran that the candidate could not (unavailable)."""
        return [p for p in self.pair_changes if p["candidate"].startswith(UNAVAILABLE)
                and not p["baseline"].startswith(UNAVAILABLE)]

    @property
    def largest_drift(self) -> float:
        values = self.drift["drift"].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        return float(values.max()) if values.size else 0.0

    @property
    def drifted(self) -> pd.DataFrame:
        """Rows whose drift exceeds ``max_drift`` beyond the baseline's own envelope (``envelope_band``)."""
        d = self.drift
        return d[(d["drift"].fillna(0) > self.max_drift) & ~d["within_envelope"].astype(bool)]

    @property
    def attributed(self) -> pd.DataFrame:
        """Changed rows a known change explains (``cause``: its ids)."""
        return self.changed[self.changed["cause"].ne("")]

    @property
    def beyond_envelope(self) -> pd.DataFrame:
        """Changed rows that moved beyond the baseline's own envelope (``envelope_band``): more than rounding alone
        moves them."""
        d = self.drift
        return d[d["changed"] & ~d["within_envelope"].astype(bool)]

    @property
    def grown(self) -> pd.DataFrame:
        """Rows (not pass → fail) whose error grew beyond the budget: more than ``max_growth`` times the baseline's
        AND by more than ``max_ulp_growth`` ulp (both: a few ulp on an identical baseline is rounding, not growth),
        and beyond the baseline's own envelope (``envelope_band``: rounding alone moves it that far).
        A float32 row the float64 arbiter judges (both reports measured its distance from the float64 run) grows
        by that distance, as PyTorch's fp64 arbiter does: a candidate that took another rounding path, no farther
        from float64 than the baseline, has not grown, however far it moved from the float32 reference."""
        d = self.drift
        growth, ulp, _ = growth_of(d)
        with np.errstate(invalid="ignore"):
            beyond = (growth > self.max_growth) & (ulp > self.max_ulp_growth) & ~d["within_envelope"].to_numpy(bool)
        return d[beyond & (d["change"] != "pass → fail").to_numpy()]

    @property
    def class_changes(self) -> pd.DataFrame:
        """Rows (not pass → fail) whose class changed; regressions under ``strict``."""
        d = self.drift
        moved = (d["baseline_class"].notna() & d["candidate_class"].notna()
                 & (d["baseline_class"] != d["candidate_class"]))
        return d[moved & (d["change"] != "pass → fail")]

    @property
    def golden_problems(self) -> list:
        """The golden-value findings that are real movement (a data set changed, the reference moved beyond the
        rounding budget)."""
        return [g for g in self.golden if g["gates"]]

    @property
    def compared_less(self) -> pd.DataFrame:
        """Rows the baseline compared that the candidate did not (a phase, layer, step or checkpoint gone from a
        pair both ran): coverage is part of the verdict, so the candidate compared less is a regression."""
        return self.drift[self.drift["change"] == "only in baseline"]

    @property
    def exit_code(self) -> int:
        if (len(self.regressions) or self.pair_regressions or len(self.drifted) or len(self.grown)
                or (self.strict and len(self.class_changes)) or self.golden_problems or len(self.compared_less)):
            return EXIT_REGRESSION
        return EXIT_INCOMPLETE if self.lost else EXIT_OK

    def verdict(self) -> str:
        """One line; with ``--intersection`` it ends by saying what was not compared."""
        text = self._verdict()
        return f"{text} {self.left_out[0].upper()}{self.left_out[1:]}." if self.left_out else text

    def _verdict(self) -> str:
        parts = []
        n_reg = collapse(self.regressions)
        if len(n_reg) or self.pair_regressions:
            parts.append(f"{_count(len(n_reg), 'quantity', 'quantities')} went from pass to fail"
                         + (f" ({_count(len(self.pair_regressions), 'case × implementation comparison')} now "
                            f"{'fails' if len(self.pair_regressions) == 1 else 'fail'})"
                            if self.pair_regressions else ""))
        if len(self.drifted):
            parts.append(f"{_count(len(collapse(self.drifted)), 'quantity', 'quantities')} drifted more than "
                         f"{self.max_drift:g} "
                         f"(largest drift {sci(self.largest_drift)})")
        if len(self.grown):
            ratio, ulp, judged = growth_of(self.grown)
            worst = int(np.nanargmax(ratio))
            row = self.grown.iloc[worst]
            what = "distance from float64 " if judged[worst] else ""
            parts.append(f"{_count(len(collapse(self.grown)), 'quantity', 'quantities')} grew beyond the budget "
                         f"(error x{self.max_growth:g} and +{self.max_ulp_growth:g} ulp; largest: {what}x"
                         f"{sci(ratio[worst])}, +{sci(ulp[worst])} ulp: {row['case']} {row['impl']} "
                         f"{_quantity(row)})")
        if self.strict and len(self.class_changes):
            parts.append(f"{_count(len(collapse(self.class_changes)), 'quantity', 'quantities')} changed class "
                         "(--strict)")
        for finding in self.golden_problems:
            parts.append(finding["text"])
        if len(self.compared_less):
            less = self.compared_less
            pairs = less[["case", "impl"]].drop_duplicates()
            first = less.iloc[0]
            parts.append(f"the candidate compared less: {_count(len(less), 'row')} of "
                         f"{_count(len(pairs), 'case × implementation pair')} that the baseline compared are missing "
                         f"(first: {first['case']} {first['impl']} {first['phase']} {_quantity(first)})")
        if self.lost:
            parts.append(f"{_count(len(self.lost), 'case × implementation comparison')} could not run in the "
                         "candidate")
        if parts:
            label = "REGRESSION" if self.exit_code == EXIT_REGRESSION else "INCOMPLETE"
            return f"{label}: " + "; ".join(parts) + "."
        changed = len(collapse(self.changed))
        if changed:
            inside = changed - len(collapse(self.beyond_envelope))
            within = f" ({inside} within the baseline's own envelope)" if inside else ""
            return (f"No regression: {_count(changed, 'quantity', 'quantities')} changed{within}, none from pass to "
                    "fail, "
                    f"largest drift {sci(self.largest_drift)} (limit {self.max_drift:g}), largest growth "
                    f"{self._largest_growth()} (budget x{self.max_growth:g} and +{self.max_ulp_growth:g} ulp).")
        return "No changes: every compared quantity has the same class and the same error."

    def _largest_growth(self) -> str:
        d = self.drift[self.drift["changed"]]
        ulp = d["ulp_growth"].to_numpy(dtype=float)
        if not len(d) or np.isnan(ulp).all():
            return "none"
        worst = d.iloc[int(np.nanargmax(ulp))]
        ratio = _ratio_text(worst["error_ratio"], worst["baseline_max_abs_err"], worst["candidate_max_abs_err"])
        return f"+{sci(worst['ulp_growth'])} ulp (error ratio {ratio})"


@dataclass
class Gates:
    """What counts as a regression besides pass → fail (``--max-drift``, ``--max-growth``, ``--max-ulp-growth``,
    ``--strict``)."""

    max_drift: float = DEFAULT_MAX_DRIFT
    max_growth: float = DEFAULT_MAX_GROWTH
    max_ulp_growth: float = DEFAULT_MAX_ULP_GROWTH
    strict: bool = False


def compare(baseline_dir, candidate_dir, max_drift: float = DEFAULT_MAX_DRIFT,
            intersection: bool = False, gates: Gates | None = None, envelope_dir=None) -> Comparison:
    """Load both reports (``UsageError`` if one is not a complete report), check that they cover the same pairs
    (``NotComparable``, unless ``intersection``) and align them.  ``gates`` (when given) overrides ``max_drift``;
    ``envelope_dir``: the baseline's envelope run (``envelope_band``)."""
    envelope = load_report(envelope_dir, "--envelope") if envelope_dir is not None else None
    return compare_reports(load_report(baseline_dir, "BASELINE"), load_report(candidate_dir, "CANDIDATE"),
                           gates or Gates(max_drift), intersection, envelope)


def compare_reports(baseline: Report, candidate: Report, gates: Gates | float, intersection: bool,
                    envelope: Report | None = None) -> Comparison:
    """``compare`` of two loaded reports; ``gates``: the gates, or just a ``max_drift`` (the others at their
    defaults); ``envelope``: the baseline's envelope run (``envelope_band``), which must cover the same pairs as
    the baseline (``UsageError`` otherwise)."""
    gates = gates if isinstance(gates, Gates) else Gates(gates)

    pairs = scope(baseline, candidate, intersection)
    if envelope is not None and _pair_facts(envelope) != _pair_facts(baseline):
        raise UsageError("--envelope's report covers other case × implementation pairs, dtypes or steps than "
                         "BASELINE's; write it as the baseline's own rerun: the same nnparity report with "
                         "NNPARITY_PERTURB_ULP=1 set (docs/upgrading.md)")
    drift, pair_changes = align(baseline, candidate, pairs.pairs, envelope)
    cases = list(dict.fromkeys(case for case, _ in pairs.pairs))
    environment = environment_changes(baseline.env, candidate.env)
    known = known_changes.matching(environment)
    keys = list(zip(drift["impl"].astype(str), drift["dtype"].astype(str)))
    causes = {key: known_changes.cause_of(*key, known) for key in set(keys)}
    drift["cause"] = [causes[key] if changed else "" for key, changed in zip(keys, drift["changed"])]
    return Comparison(baseline, candidate, drift, pair_changes, environment, gates.max_drift, pairs.left_out,
                      gates.max_growth, gates.max_ulp_growth, gates.strict,
                      golden.compare(baseline.path, candidate.path, cases, gates.max_ulp_growth), known)
