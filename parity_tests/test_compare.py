"""``nnparity compare``: the framework-upgrade workflow end to end, and the drift rules on synthetic reports.

End to end: two real reports of one small case, the second with ``torch.sigmoid``
perturbed by a relative 1e-9 — a stand-in for a framework upgrade that changed
one op.  The perturbation is injected from outside the product: a
``sitecustomize.py`` on the second run's ``PYTHONPATH`` (test-only; nothing in
nnparity reads it).  Both reports skip the self-test and the catalogue of framework
differences (``--no-selftest --no-catalogue``): they run torch and TF themselves and
are not what is compared here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnparity.outdir import atomic_directory
from reports import compare as compare_mod
from reports.summary import summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = "l1-logreg-float64-fullbatch"

PERTURB_SIGMOID = """\
# Test-only: every torch.sigmoid is off by a relative 1e-9, as if an upgrade had changed the op.
import torch

_sigmoid = torch.sigmoid


def sigmoid(input, *args, **kwargs):
    return _sigmoid(input, *args, **kwargs) * (1 + 1e-9)


torch.sigmoid = sigmoid
"""


def _env(pythonpath=ROOT):
    return dict(os.environ, PYTHONPATH=pythonpath, TF_CPP_MIN_LOG_LEVEL="2", CI="1")


#: One xdist worker runs this module: the two reports (module fixtures) run once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("test_compare")


def nnparity(*args, env=None):
    return subprocess.run([sys.executable, "-m", "nnparity", *map(str, args)], cwd=ROOT, env=env or _env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory):
    """(baseline, perturbed candidate): both reports run at once, to halve the wait."""
    root = tmp_path_factory.mktemp("upgrade")
    shims = {}
    for name, code in (("old", ""), ("new", PERTURB_SIGMOID)):
        shims[name] = root / f"shim-{name}"
        shims[name].mkdir()
        (shims[name] / "sitecustomize.py").write_text(code)
    runs = {}
    for name in ("old", "new"):
        pythonpath = f"{shims[name]}{os.pathsep}{ROOT}"
        command = [sys.executable, "-m", "nnparity", "report", "--cases", CASE, "--impl", "torch",
                   "--out", str(root / name), "--no-selftest", "--no-catalogue"]
        runs[name] = subprocess.Popen(command, cwd=ROOT, env=_env(pythonpath), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
    results = {name: (run.wait(timeout=300), run.communicate()) for name, run in runs.items()}
    assert results["old"][0] == 0, results["old"][1]
    assert results["new"][0] == 1, results["new"][1]  # the perturbed sigmoid fails the float64 tolerances
    return root / "old", root / "new"


def test_a_perturbed_op_is_named_and_exits_1(two_reports, tmp_path):
    old, new = two_reports
    out = tmp_path / "drift"
    result = nnparity("compare", old, new, "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("REGRESSION:")
    assert "forward A1" in result.stdout  # sigmoid's output, named on the terminal
    assert sorted(p.name for p in out.iterdir()) == ["drift.csv", "drift.md", "nnparity.json"]
    assert json.loads((out / "nnparity.json").read_text())["format"] == "nnparity-compare"

    text = (out / "drift.md").read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[:6] == ["## Environment differences", "## Pass → fail", "## Grown beyond the budget",
                            "## Known causes", "## Reference and data (golden values)", "## Changes, worst first"]
    regressions = text.split("## Pass → fail")[1].split("## ")[0]
    assert f"**{CASE}** / `torch` forward A1" in regressions
    assert "within bound → fail" in regressions or "<=4 ulp → fail" in regressions
    assert "forward cost" in regressions and "backward dW1" in regressions
    assert "trajectory cost" in regressions and "steps changed" in regressions

    drift = pd.read_csv(out / "drift.csv")
    a1 = drift[(drift["phase"] == "forward") & (drift["quantity"] == "A")].iloc[0]
    assert a1["change"] == "pass → fail" and a1["candidate_class"] == "fail"
    assert a1["candidate_max_rel_err"] == pytest.approx(1e-9, rel=0.05)
    assert a1["drift"] > 100  # 1e-9 against a 1e-12 limit: a thousand tolerances
    assert drift["change"].iloc[0] == "pass → fail"  # worst first
    z1 = drift[(drift["phase"] == "forward") & (drift["quantity"] == "Z")]
    assert z1.empty  # Z1 = W1 X + b1 comes before the sigmoid: unchanged, so not listed


def test_identical_reports_exit_0_with_no_changes(two_reports, tmp_path):
    old, _ = two_reports
    copy = tmp_path / "copy"
    shutil.copytree(old, copy)
    result = nnparity("compare", old, copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("No changes")
    out = copy / f"compare-vs-{old.name}"  # the default --out
    text = (out / "drift.md").read_text()
    assert "none: versions, BLAS, CPU, threads and determinism settings are the same" in text
    assert "## Pass → fail\n\nnone" in text and "largest drift**: 0" in text
    assert pd.read_csv(out / "drift.csv").empty

    # issue 25: the same comparison run again replaces its own output, no --force needed
    again = nnparity("compare", old, copy)
    assert again.returncode == 0 and again.stdout.startswith("No changes"), again.stderr
    assert (out / "drift.md").read_text() == text
    # another comparison's output, or a directory of the same kind written for other reports, needs --force
    other = tmp_path / "other"
    shutil.copytree(old, other)
    elsewhere = nnparity("compare", old, other, "--out", str(out))
    assert elsewhere.returncode == 2 and len(elsewhere.stderr.strip().splitlines()) == 1
    assert "--force" in elsewhere.stderr
    assert nnparity("compare", old, other, "--out", str(out), "--force").returncode == 0
    assert nnparity("compare", old, copy, "--out", str(out)).returncode == 2  # now it is the other one's
    assert not [p for p in copy.iterdir() if p.name.startswith(".tmp-") or p.name.endswith(".lock")]


def test_environment_differences_come_first(two_reports, tmp_path):
    old, _ = two_reports
    upgraded = tmp_path / "upgraded"
    env = json.loads((old / "env.json").read_text())
    env["versions"]["torch"] = "9.9.9"
    env["torch"]["float32_matmul_precision"] = "medium"
    with atomic_directory(upgraded, False, "report") as tmp:  # the same report, as if run after an upgrade
        shutil.copytree(old, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("nnparity.json"))
        (tmp / "env.json").write_text(json.dumps(env))
    comparison = compare_mod.compare(old, upgraded)
    assert comparison.exit_code == 0
    settings = dict((key, (b, c)) for key, b, c in comparison.environment)
    assert settings["versions.torch"][1] == "9.9.9"
    assert settings["torch.float32_matmul_precision"] == ("highest", "medium")
    assert "run.started" not in settings  # run details differ every time and are not differences
    text = comparison.markdown()
    assert text.index("versions.torch") < text.index("## Pass → fail")


@pytest.mark.parametrize("setup, expected", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "is not a report directory (no nnparity.json, no details.csv"),
    (lambda d: d.write_text("x"), "is not a directory"),
])
def test_bad_input_is_one_line_exit_2(setup, expected, tmp_path):
    good = _synthetic_report(tmp_path / "good", {})
    bad = tmp_path / "bad"
    setup(bad)
    for args in ((bad, good), (good, bad)):
        result = nnparity("compare", *args, "--out", tmp_path / "out")
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr and expected in lines[0]
        assert str(bad) in lines[0] and "nnparity report" in lines[0]  # names the problem and the fix
    assert not (tmp_path / "out").exists()


def test_help_documents_drift_and_exit_codes():
    result = nnparity("compare", "--help")
    assert result.returncode == 0
    for text in ("BASELINE", "CANDIDATE", "--max-drift", "tolerance used", "drift", "exit codes", "pass to fail"):
        assert text in result.stdout, text


# --------------------------------------------------------------------------- the rules, on synthetic reports


def _synthetic_report(path: Path, changes: dict, unavailable: bool = False, frame=None, drop=()) -> Path:
    """details.csv + summary.csv of one float32 case x torch (or of ``frame``), written as nnparity writes a
    report directory (with its marker); ``changes`` maps a row name to ``(max_abs_err, bound_ratio, passed)``.
    Unchanged rows: abs err 1e-8, bound ratio 0.25.  ``drop``: columns left out of details.csv."""
    from test_report import details as make_details
    from test_report import unavailable as make_unavailable

    if frame is None:
        frame = make_unavailable(impl="torch") if unavailable else make_details(impl="torch")
    names = frame["quantity"].astype(str) + frame["layer"].map(lambda l: "" if pd.isna(l) else str(int(l)))
    names = np.where(frame["phase"] == "trajectory", "step " + frame["step"].astype(str), names)
    for name, (abs_err, ratio, passed) in changes.items():
        mask = names == name
        assert mask.any(), name
        frame.loc[mask, ["max_abs_err", "max_rel_err", "bound_ratio", "passed"]] = [abs_err, abs_err * 2, ratio, passed]
    with atomic_directory(path, False, "report") as tmp:
        frame.drop(columns=list(drop)).to_csv(tmp / "details.csv", index=False)
        summarize(frame).to_csv(tmp / "summary.csv", index=False)
    return path


def test_drift_is_the_change_in_tolerance_used(tmp_path):
    base = _synthetic_report(tmp_path / "base", {})
    # 0.25 -> 0.9 of its bound, the error 0.8 -> 17 ulp: beyond rounding (ROUNDING_ULP), so the drift gate judges it
    moved = _synthetic_report(tmp_path / "moved", {"dW1": (1e-6, 0.9, True)})
    comparison = compare_mod.compare(base, moved)
    row = comparison.changed.iloc[0]
    assert len(comparison.changed) == 1 and row["quantity"] == "dW" and row["change"] == "changed"
    assert row["drift"] == pytest.approx(0.65) and row["baseline_tolerance_used"] == 0.25
    assert comparison.exit_code == 1  # 0.65 > the default 0.5, though still passing
    assert compare_mod.compare(base, moved, max_drift=0.7).exit_code == 0
    assert compare_mod.compare(base, base).largest_drift == 0


def test_identical_to_differs_and_pass_to_fail(tmp_path):
    base = _synthetic_report(tmp_path / "base", {"A1": (0.0, 0.0, True), "Z2": (4e-7, 0.3, True)})
    cand = _synthetic_report(tmp_path / "cand", {"A1": (3e-7, 0.2, True), "Z2": (4e-6, 3.4, False)})
    comparison = compare_mod.compare(base, cand)
    assert comparison.exit_code == 1
    changed = compare_mod.collapse(comparison.changed)
    assert list(changed["quantity"] + changed["layer"].astype(str)) == ["Z2", "A1"]  # worst first
    assert list(changed["change"]) == ["pass → fail", "changed"]
    text = comparison.markdown()
    assert "identical → differs (within bound)" in text and "0 → nonzero" in text
    assert "within bound → fail" in text


def test_an_implementation_lost_in_the_candidate_exits_3(tmp_path):
    base = _synthetic_report(tmp_path / "base", {})
    cand = _synthetic_report(tmp_path / "cand", {}, unavailable=True)
    comparison = compare_mod.compare(base, cand)
    assert comparison.exit_code == 3
    assert comparison.verdict().startswith("INCOMPLETE")
    assert "pass → unavailable: No module named 'tensorflow'" in comparison.markdown()


def test_within_4_ulp_without_a_max_ulp_column(tmp_path):
    """Reports without max_ulp: 4 ulp of max|ref| = max_abs_err / max_rel_err, in the row's dtype."""
    drop = ["max_ulp", "classification"]
    base = _synthetic_report(tmp_path / "base", {}, drop=drop)
    # float32, max|ref| = abs / rel = 0.5: ulp(0.5) = 2**-24, so 4 ulp = 2.4e-7
    cand = _synthetic_report(tmp_path / "cand", {"A1": (2e-7, 0.25, True), "A2": (3e-7, 0.25, True)}, drop=drop)
    changed = compare_mod.compare(base, cand).changed.set_index("quantity")
    assert changed.loc["A", "candidate_class"].tolist() == ["<=4 ulp", "within bound"]


def test_reports_without_env_json_are_compared_and_say_so(tmp_path):
    base = _synthetic_report(tmp_path / "base", {})
    comparison = compare_mod.compare(base, base)
    assert isinstance(comparison.environment, str) and "no env.json" in comparison.environment
    assert comparison.exit_code == 0


# --------------------------------------------------------------------------- what can be compared

CASE_A, CASE_B = "l2-relu-float32-fullbatch", "l2-relu-float32-minibatch64"


def _pairs_report(path: Path, pairs) -> Path:
    """A synthetic report of the given (case, impl, steps), every row passing."""
    from test_report import details as make_details

    frame = pd.concat([make_details(case=case, impl=impl, steps=steps) for case, impl, steps in pairs],
                      ignore_index=True)
    return _synthetic_report(path, {}, frame=frame)


def test_reports_of_different_pairs_are_not_comparable_exit_4(tmp_path):
    base = _pairs_report(tmp_path / "base", [(CASE_A, "torch", 3)])
    cand = _pairs_report(tmp_path / "cand", [(CASE_A, "torch", 3), (CASE_A, "tf", 3), (CASE_B, "torch", 3)])
    out = tmp_path / "drift"
    result = nnparity("compare", base, cand, "--out", out)
    assert result.returncode == 4, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert "not comparable: the candidate has 2 case × implementation pairs the baseline lacks" in lines[0]
    assert f"{CASE_A}/tf" in lines[0] and f"{CASE_B}/torch" in lines[0]
    assert "the same --cases and --impl" in lines[0] and "--intersection" in lines[0]  # the fix
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["base", "cand"]

    reverse = nnparity("compare", cand, base, "--out", out)
    assert reverse.returncode == 4 and "the baseline has 2 case × implementation pairs the candidate lacks" \
        in reverse.stderr

    narrowed = nnparity("compare", base, cand, "--out", out, "--intersection")
    assert narrowed.returncode == 0, narrowed.stdout + narrowed.stderr
    verdict = narrowed.stdout.splitlines()[0]
    assert verdict.startswith("No changes") and verdict.endswith(
        "Compared the 1 pair common to both; 2 only in the candidate were not compared (--intersection).")
    text = (out / "drift.md").read_text()
    assert "compared**: 1 case × implementation pairs" in text and "2 only in the candidate were not" in text


def test_a_pair_with_a_different_number_of_steps_is_not_comparable(tmp_path):
    base = _pairs_report(tmp_path / "base", [(CASE_A, "torch", 3), (CASE_B, "torch", 3)])
    cand = _pairs_report(tmp_path / "cand", [(CASE_A, "torch", 3), (CASE_B, "torch", 5)])
    with pytest.raises(compare_mod.NotComparable, match=rf"number of trajectory steps \({CASE_B}/torch: 3 vs 5\)"):
        compare_mod.compare(base, cand)
    narrowed = compare_mod.compare(base, cand, intersection=True)
    assert list(narrowed.drift[["case", "impl"]].drop_duplicates().itertuples(index=False, name=None)) == \
        [(CASE_A, "torch")]
    assert "1 with different numbers of steps was not compared" in narrowed.verdict()

    alone = _pairs_report(tmp_path / "alone", [(CASE_B, "torch", 3)])
    result = nnparity("compare", alone, cand, "--intersection", "--out", tmp_path / "drift")
    assert result.returncode == 4 and "nothing is left to compare" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "drift").exists()


def test_classes_are_read_from_the_reports_when_they_carry_them(tmp_path):
    """A class the harness adds (``drifted``) is compared as it is written, not re-derived."""
    from test_report import details as make_details

    frames = {}
    for name, cls in (("base", "within bound"), ("cand", "drifted")):
        frame = make_details(impl="torch")
        frame["max_ulp"] = 8.0
        frame["classification"] = "within bound"
        frame.loc[frame["step"].eq(2) & frame["phase"].eq("trajectory"), "classification"] = cls
        frames[name] = _synthetic_report(tmp_path / name, {}, frame=frame)
    changed = compare_mod.compare(frames["base"], frames["cand"]).changed
    assert len(changed) == 1 and changed.iloc[0]["step"] == 2
    assert (changed.iloc[0]["baseline_class"], changed.iloc[0]["candidate_class"]) == ("within bound", "drifted")


# --------------------------------------------------------------------------- complete reports of this format only


@pytest.fixture(scope="module")
def complete_report(tmp_path_factory):
    from reports import write_report
    from test_report import details as make_details

    return write_report(make_details(impl="torch"), tmp_path_factory.mktemp("complete") / "r", {"command": "test"})


def _older(d: Path):
    """What nnparity wrote before the format marker: no nnparity.json, summary.json without a format."""
    (d / "nnparity.json").unlink()
    document = json.loads((d / "summary.json").read_text())
    del document["format"], document["format_version"]
    (d / "summary.json").write_text(json.dumps(document))


def _flip_a_digit(path: Path):
    text = path.read_text()
    i = text.index("1e-")  # same size, different content
    path.write_text(text[:i] + "2" + text[i + 1:])


def _set_marker(d: Path, **changes):
    marker = json.loads((d / "nnparity.json").read_text())
    (d / "nnparity.json").write_text(json.dumps({**marker, **changes}))


def test_the_undamaged_report_compares(complete_report, tmp_path):
    result = nnparity("compare", complete_report, complete_report, "--out", tmp_path / "ok")
    assert result.returncode == 0 and result.stdout.startswith("No changes"), result.stdout + result.stderr


@pytest.mark.parametrize("name, damage, expected", [
    ("r", lambda d: (d / "nnparity.json").unlink(), "is incomplete: it has no completion marker (nnparity.json)"),
    ("r", lambda d: (d / "details.csv").unlink(), "is incomplete: details.csv is missing (listed in nnparity.json)"),
    ("r", lambda d: os.truncate(d / "details.csv", 100), "is truncated or altered: details.csv has 100 bytes"),
    ("r", lambda d: _flip_a_digit(d / "details.csv"), "is altered: the SHA-256 of details.csv differs"),
    ("r", _older, "was written by an older nnparity (no format marker); re-run `nnparity report` with this version"),
    ("r", lambda d: _set_marker(d, format_version=1), "was written by an older nnparity (format version 1)"),
    ("r", lambda d: _set_marker(d, format_version=3), "was written by a newer nnparity (format version 3"),
    ("r", lambda d: _set_marker(d, format="nnparity-compare"), "is an nnparity compare directory, not a report"),
    ("r", lambda d: (d / "nnparity.json").write_text('{"name": "my project"}'), "nnparity.json is not nnparity's"),
    (".tmp-k1ll3d", lambda d: None, "is a temporary directory left by an interrupted nnparity run"),
])
def test_incomplete_altered_older_or_foreign_reports_are_refused(complete_report, tmp_path, name, damage, expected):
    damaged = tmp_path / name
    shutil.copytree(complete_report, damaged)
    damage(damaged)
    for args in ((damaged, complete_report), (complete_report, damaged)):
        result = nnparity("compare", *args, "--out", tmp_path / "drift")
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert expected in lines[0] and str(damaged) in lines[0]
    assert not (tmp_path / "drift").exists()


def test_a_list_that_only_grew_says_so_without_an_empty_list():
    """drift.md once said "1 entries; only here: []" for a CPU flag list that gained one flag."""
    from reports.compare import environment_changes

    changes = environment_changes({"cpu": {"flags": ["sse4_2"]}}, {"cpu": {"flags": ["sse4_2", "avx2"]}})
    assert changes == [("cpu.flags", "1 entry", "2 entries; only here: avx2")]


# --------------------------------------------------------------------------- growth gates and golden values

F64_CASE = "l1-logreg-float64-fullbatch"
ULP_AT_HALF = np.finfo(np.float64).eps / 2  # ulp(0.5) in float64: the synthetic rows' max|ref| is abs / rel = 0.5


def _float64_report(path: Path, dW1_ulps: float, bound_ratio: float = 1e-6, golden_data=None) -> Path:
    """One float64 case x torch; every row 1 ulp and 1e-6 of its tolerance but dW1, ``dW1_ulps`` ulp at the
    same tolerance fraction (the bound ratio ~ error / tolerance, in float64 ~1e-6 of it: drift stays tiny).
    With ``golden_data`` (a Dataset), golden.npz and reference.json of the case on that data."""
    from nnparity import grid
    from reports import golden
    from test_report import details as make_details

    frame = make_details(case=F64_CASE, impl="torch", L=1, dtype="float64")
    frame["max_abs_err"] = ULP_AT_HALF
    frame["max_rel_err"] = ULP_AT_HALF * 2
    frame["bound_ratio"] = bound_ratio
    dW1 = (frame["quantity"] == "dW") & (frame["layer"] == 1)
    frame.loc[dW1, ["max_abs_err", "max_rel_err"]] = [dW1_ulps * ULP_AT_HALF, dW1_ulps * ULP_AT_HALF * 2]
    frame.loc[dW1, "bound_ratio"] = bound_ratio * dW1_ulps
    with atomic_directory(path, False, "report") as tmp:
        frame.to_csv(tmp / "details.csv", index=False)
        summarize(frame).to_csv(tmp / "summary.csv", index=False)
        if golden_data is not None:
            case = grid.case_for(1, "relu", "float64", False)
            assert case.id == F64_CASE
            import nnparity.data

            original = nnparity.data.load_data
            nnparity.data.load_data = lambda name: golden_data
            try:
                golden.write(tmp, [case])
            finally:
                nnparity.data.load_data = original
    return path


def test_a_float64_error_grown_1000_times_within_tolerance_is_a_regression(tmp_path):
    base = _float64_report(tmp_path / "base", 1)
    grown = _float64_report(tmp_path / "grown", 1000)  # x1e3, still 1e-3 of its tolerance
    comparison = compare_mod.compare(base, grown)
    assert comparison.largest_drift < 1e-2 and not len(comparison.regressions)  # the drift gate alone passes it
    assert comparison.exit_code == 1
    assert list(comparison.grown["quantity"]) == ["dW"]
    row = comparison.grown.iloc[0]
    assert row["error_ratio"] == pytest.approx(1000) and row["ulp_growth"] == pytest.approx(999)
    assert comparison.verdict().startswith("REGRESSION: 1 quantity grew beyond the budget")
    assert "## Grown beyond the budget" in comparison.markdown()
    # a budget above the growth lets it pass: the gate is the budget, nothing else
    wide = compare_mod.Gates(max_growth=2000)
    assert compare_mod.compare(base, grown, gates=wide).exit_code == 0


def test_a_thread_count_like_change_of_a_few_ulp_is_not_a_regression(tmp_path):
    base = _float64_report(tmp_path / "base", 1)
    few = _float64_report(tmp_path / "few", 3)  # x3, +2 ulp: rounding-level
    comparison = compare_mod.compare(base, few)
    assert len(comparison.changed) == 1 and not len(comparison.grown)
    assert comparison.exit_code == 0 and comparison.verdict().startswith("No regression")
    assert "largest growth +2.0e0 ulp (error ratio 3.0e0)" in comparison.verdict()
    # the worst float64 row of the measured 1- vs 2-thread reports (l4-relu-*, torch): x95, +95 ulp
    assert compare_mod.compare(base, _float64_report(tmp_path / "threads", 96)).exit_code == 0


def test_identical_to_a_few_ulp_passes_by_default_and_regresses_with_strict(tmp_path):
    base = _float64_report(tmp_path / "base", 0)
    cand = _float64_report(tmp_path / "cand", 3)  # identical -> <=4 ulp: ratio infinite, +3 ulp
    assert compare_mod.compare(base, cand).exit_code == 0
    strict = compare_mod.compare(base, cand, gates=compare_mod.Gates(strict=True))
    assert strict.exit_code == 1 and "changed class (--strict)" in strict.verdict()
    assert list(strict.class_changes["candidate_class"]) == ["<=4 ulp"]


def test_help_defaults_agree_with_the_gates():
    from nnparity.commands import compare as compare_cmd

    assert (compare_cmd.MAX_GROWTH, compare_cmd.MAX_ULP_GROWTH) == (compare_mod.DEFAULT_MAX_GROWTH,
                                                                    compare_mod.DEFAULT_MAX_ULP_GROWTH)


def test_a_reference_moved_by_a_changed_data_set_is_reported(tmp_path):
    from nnparity.data import load_data

    data = load_data("digits-3v8")
    changed = dataclasses.replace(data, X=data.X.copy())
    changed.X[10, 5] += 1 / 16  # one pixel of one image one grey level brighter
    base = _float64_report(tmp_path / "base", 1, golden_data=data)
    moved = _float64_report(tmp_path / "moved", 1, golden_data=changed)
    assert compare_mod.compare(base, base).golden == [] and compare_mod.compare(base, base).exit_code == 0
    comparison = compare_mod.compare(base, moved)
    kinds = {g["kind"] for g in comparison.golden}
    assert kinds == {"data", "reference"} and comparison.exit_code == 1
    text = " ".join(g["text"] for g in comparison.golden)
    assert "the data set digits-3v8 changed (X" in text and f"the reference moved on {F64_CASE}: costs" in text
    assert "the reference moved on" in comparison.markdown()


def test_a_candidate_that_compared_less_is_a_regression(tmp_path):
    """Coverage is part of the verdict: a pair both reports ran, whose candidate lacks rows the baseline compared
    (here every db row: an implementation that stopped returning db), regresses even though nothing else moved."""
    from test_report import details as make_details

    frame = make_details(impl="torch")
    base = _synthetic_report(tmp_path / "base", {}, frame=frame.copy())
    less = _synthetic_report(tmp_path / "less", {}, frame=frame[frame["quantity"] != "db"].copy())
    comparison = compare_mod.compare(base, less)
    assert len(comparison.compared_less) == int((frame["quantity"] == "db").sum()) > 0
    assert comparison.exit_code == 1
    assert "the candidate compared less" in comparison.verdict()
    # the other way round (the candidate compares more) is no regression
    assert compare_mod.compare(less, base).exit_code == 0


def test_a_float32_free_run_grows_by_its_distance_from_float64_the_arbiter(tmp_path):
    """Issue 25's fp64 arbiter: a float32 trajectory row whose error against the float32 reference grew x1000 but
    whose distance from the float64 run did not is changed, not grown; one whose distance from float64 grew x1000 is
    grown (and blocks an upgrade); drift.md shows the candidate's distance over the baseline's."""
    from test_report import details

    def report(out, far, farther):
        frame = details(case="l2-relu-float32-fullbatch", impl="torch", L=2, dtype="float32", steps=4)
        ulp = float(np.finfo(np.float32).eps) / 2
        frame["max_abs_err"], frame["max_rel_err"] = ulp, 2 * ulp
        frame["fp64_dist"], frame["value"] = np.nan, np.nan
        late = (frame["phase"] == "trajectory") & (frame["step"] >= 2)
        frame.loc[late, ["fp64_dist", "value"]] = [1e-5, 0.5]
        final = (frame["phase"] == "final") & (frame["quantity"] == "W") & (frame["layer"] == 1)
        frame.loc[final, "fp64_dist"] = 1e-5  # the harness's final rows: a distance, no value; judged by their error
        frame.loc[final, ["max_abs_err", "max_rel_err"]] = [far * ulp, 2 * far * ulp]
        step2, step3 = late & (frame["step"] == 2), late & (frame["step"] == 3)
        frame.loc[step2, ["max_abs_err", "max_rel_err"]] = [far * ulp, 2 * far * ulp]  # moved from float32 only
        frame.loc[step3, "fp64_dist"] = 1e-5 * farther  # moved away from float64
        with atomic_directory(out, True, "report") as tmp:
            frame.to_csv(tmp / "details.csv", index=False)
            summarize(frame).to_csv(tmp / "summary.csv", index=False)

    report(tmp_path / "before", 1, 1)
    report(tmp_path / "after", 1000, 1000)
    comparison = compare_mod.compare(tmp_path / "before", tmp_path / "after")
    rows = comparison.drift.set_index("step")
    assert rows.loc[2, "error_ratio"] == pytest.approx(1000) and rows.loc[2, "fp64_ratio"] == 1.0
    assert rows.loc[3, "fp64_ratio"] == pytest.approx(1000)
    grown = comparison.grown
    assert sorted(zip(grown["phase"], grown["step"])) == [("final", 4), ("trajectory", 3)]
    assert comparison.exit_code == 1
    markdown = comparison.markdown()
    assert "fp64 arbiter ratio" in markdown and "distance from the float64 run 1.0e-5 → 1.0e-2 (x1.0e3" in markdown


def test_a_change_within_the_baselines_own_envelope_neither_grows_nor_drifts(tmp_path, capsys):
    """Issue 25's envelope: a float64 error grown x1000 (beyond the budget) is no regression when the baseline's own
    rerun (one ulp, the other thread count: ``--envelope``) moved it x2000, and is one when the rerun moved it x2;
    a float32 step whose distance from float64 grew x1000 is no regression while it stays within the baseline's
    own honest float32 runs' distance (``fp64_envelope``); a pass → fail is one wherever it lies."""
    from nnparity import cli
    from test_report import details

    def report(out, dW1=1.0, fp64=1.0, fp64_envelope=np.nan, fail=False):
        frame = details(case="l2-relu-float32-fullbatch", impl="torch", L=2, dtype="float32", steps=4)
        ulp = float(np.finfo(np.float32).eps) / 2
        frame["max_abs_err"], frame["max_rel_err"] = ulp, 2 * ulp
        frame["fp64_dist"], frame["fp64_envelope"], frame["value"] = np.nan, np.nan, np.nan
        late = (frame["phase"] == "trajectory") & (frame["step"] >= 2)
        frame.loc[late, ["fp64_dist", "fp64_envelope", "value"]] = [1e-5 * fp64, fp64_envelope, 0.5]
        dW = (frame["phase"] == "backward") & (frame["quantity"] == "dW") & (frame["layer"] == 1)
        frame.loc[dW, ["max_abs_err", "max_rel_err"]] = [dW1 * ulp, 2 * dW1 * ulp]
        if fail:
            frame.loc[dW, "passed"] = False
        with atomic_directory(out, True, "report") as tmp:
            frame.to_csv(tmp / "details.csv", index=False)
            summarize(frame).to_csv(tmp / "summary.csv", index=False)
        return out

    base = report(tmp_path / "base", fp64_envelope=1e-1)
    grown = report(tmp_path / "grown", dW1=1000, fp64=1000)
    wide, narrow = report(tmp_path / "wide", dW1=2000), report(tmp_path / "narrow", dW1=2)
    # without a rerun: dW1 grew beyond the budget; the float32 steps stayed within the honest runs' 1e-1
    comparison = compare_mod.compare(base, grown)
    assert list(comparison.grown["quantity"]) == ["dW"] and comparison.exit_code == 1
    steps = comparison.drift[comparison.drift["phase"] == "trajectory"].set_index("step")
    assert steps.loc[3, "fp64_ratio"] == pytest.approx(1000) and steps.loc[3, "within_envelope"]
    assert (steps.loc[3, "envelope_low"], steps.loc[3, "envelope_high"]) == (0.0, 1e-1)
    assert report(tmp_path / "far", fp64=1e5) and len(compare_mod.compare(base, tmp_path / "far").grown) == 2
    # the rerun moved dW1 x2000: x1000 is rounding; x2: x1000 is beyond it
    comparison = compare_mod.compare(base, grown, envelope_dir=wide)
    assert comparison.exit_code == 0 and comparison.beyond_envelope.empty
    assert "1 quantity changed (1 within the baseline's own envelope)" in comparison.verdict()
    assert compare_mod.compare(base, grown, envelope_dir=narrow).exit_code == 1
    failed = report(tmp_path / "fail", dW1=1000, fail=True)
    assert compare_mod.compare(base, failed, envelope_dir=wide).exit_code == 1
    # the command: --envelope, its column in drift.csv; a rerun of other pairs is bad input
    assert cli.main(["compare", str(base), str(grown), "--envelope", str(wide), "--out", str(tmp_path / "d")]) == 0
    drift = pd.read_csv(tmp_path / "d" / "drift.csv")
    assert drift["within_envelope"].all() and "baseline's envelope" in (tmp_path / "d" / "drift.md").read_text()
    other = details(case="l1-logreg-float64-fullbatch", impl="torch", L=1, dtype="float64")
    with atomic_directory(tmp_path / "other", True, "report") as tmp:
        other.to_csv(tmp / "details.csv", index=False)
        summarize(other).to_csv(tmp / "summary.csv", index=False)
    capsys.readouterr()
    assert cli.main(["compare", str(base), str(grown), "--envelope", str(tmp_path / "other"),
                     "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NNPARITY_PERTURB_ULP=1" in err and not (tmp_path / "e").exists()
