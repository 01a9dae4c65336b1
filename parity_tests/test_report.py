"""reports.build: summaries, computation-order first failures, and atomic report directories.

Synthetic detail frames in the harness's schema; no framework runs here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnparity.errors import UsageError
from nnparity.harness import COLUMNS
from nnparity.spec import Case, backward_names, forward_names, param_names, split_name
from reports import summarize, write_report
from reports.summary import sci

META = {"command": "nnparity report --out x", "date": "2025-01-01", "versions": {"numpy": np.__version__}}
#: What write_report writes without ``trajectories`` (report.html and the figures: test_report_html.py).
REPORT_FILES = ["bound_ratio_heatmap.png", "bound_ratio_vs_step.png", "details.csv", "env.json", "nnparity.json",
                "report.html", "report.md", "summary.csv", "summary.json"]


def _row(case, impl, dtype, phase, name, step, rel, ratio, passed, note=""):
    quantity, layer = split_name(name)
    return dict(case=case, impl=impl, dtype=dtype, phase=phase, quantity=quantity, layer=layer, step=step,
                max_abs_err=rel / 2, max_rel_err=rel, bound_ratio=ratio, tol=1.0, criterion="bound_ratio<=1",
                passed=passed, note=note)


def details(case="l2-relu-float32-fullbatch", impl="torch", L=2, dtype="float32", steps=3, fail=(), rel=None):
    """All rows of one (case, impl), in computation order; names in ``fail`` (``'A2'``, ``'step 1'``, ``'pred'``) fail.

    ``rel`` maps a name to its max_rel_err (default 1e-7); a failing row gets bound ratio 3.4.
    """
    rel = rel or {}

    def make(phase, name, step, key=None):
        key = key or name
        bad = key in fail
        return _row(case, impl, dtype, phase, name, step, rel.get(key, 1e-7), 3.4 if bad else 0.25, not bad)

    rows = [make("forward", n, 0) for n in forward_names(L) + ["cost"]]
    rows += [make("backward", n, 0) for n in backward_names(L)]
    rows += [make("trajectory", "cost", s, key=f"step {s}") for s in range(steps)]
    rows += [make("final", n, steps, key=f"final {n}") for n in param_names(L)]
    rows.append(make("predictions", "pred", None))
    return _frame(rows)


def unavailable(case="l2-relu-float32-fullbatch", impl="tf", reason="No module named 'tensorflow'"):
    return _frame([dict(case=case, impl=impl, dtype="float32", phase="unavailable", quantity="", passed=False,
                        note=reason)])


def _frame(rows):
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["layer"] = frame["layer"].astype("Int64")
    frame["step"] = frame["step"].astype("Int64")
    return frame


def first_failure_of(frame):
    return summarize(frame)["first_failure"].iloc[0]


# --------------------------------------------------------------------------- summarize


def test_summarize_takes_the_worst_of_each_phase():
    frame = details(rel={"A1": 3e-7, "dW2": 5e-7, "step 2": 8e-7, "final W1": 9e-7, "pred": 0.5})
    summary = summarize(frame)
    assert len(summary) == 1
    row = summary.iloc[0]
    assert (row["case"], row["impl"], row["dtype"]) == ("l2-relu-float32-fullbatch", "torch", "float32")
    assert row["max_forward_rel_err"] == 3e-7
    assert row["max_gradient_rel_err"] == 5e-7
    assert row["max_trajectory_rel_err"] == 8e-7
    assert row["max_final_rel_err"] == 9e-7
    assert row["max_bound_ratio_forward"] == row["max_bound_ratio_backward"] == 0.25
    assert row["steps"] == 3
    assert row["passed"] and row["status"] == "pass" and row["first_failure"] == ""


def test_summarize_one_row_per_case_and_impl_in_order_of_appearance():
    frame = pd.concat([details(impl="torch"), details(impl="tf", fail={"dW1"}),
                       details(case="l4-relu-float64-minibatch", L=4, dtype="float64", steps=5)])
    summary = summarize(frame)
    assert list(zip(summary["case"], summary["impl"])) == [
        ("l2-relu-float32-fullbatch", "torch"), ("l2-relu-float32-fullbatch", "tf"),
        ("l4-relu-float64-minibatch", "torch")]
    assert list(summary["status"]) == ["pass", "fail", "pass"]
    assert list(summary["passed"]) == [True, False, True]
    assert list(summary["steps"]) == [3, 3, 5]
    assert summary["max_bound_ratio_backward"].iloc[1] == 3.4


def test_unavailable_implementation_has_its_reason():
    summary = summarize(pd.concat([details(), unavailable()]))
    row = summary.iloc[1]
    assert row["impl"] == "tf"
    assert row["status"] == "unavailable: No module named 'tensorflow'"
    assert not row["passed"]
    assert np.isnan(row["max_forward_rel_err"]) and row["steps"] == 0 and row["first_failure"] == ""


# --------------------------------------------------------------------------- first failure


@pytest.mark.parametrize("failing, first", [
    ({"A2", "dW1"}, "step 0 forward A2"),  # forward before backward
    ({"dW2", "db1"}, "step 0 backward dW2"),  # backward runs from layer L down to 1
    ({"A1", "Z1"}, "step 0 forward Z1"),  # Z before A, not alphabetical
    ({"A1", "Z2"}, "step 0 forward A1"),
    ({"dA1", "db2"}, "step 0 backward db2"),  # dZ2, dW2, db2, then dA1
    ({"dZ1", "dA1"}, "step 0 backward dA1"),
    ({"cost", "dZ2"}, "step 0 forward cost"),  # the cost ends the forward pass
    ({"final W1", "step 2"}, "step 2 trajectory cost"),
    ({"final b1", "final W2"}, "step 3 final b1"),
    ({"pred", "final b2"}, "step 3 final b2"),
    ({"pred"}, "predictions pred"),
])
def test_first_failure_follows_the_order_of_computation(failing, first):
    frame = details(fail=failing)
    shuffled = frame.sample(frac=1, random_state=0)  # the answer must not depend on row order
    for f in (frame, shuffled):
        assert first_failure_of(f).startswith(f"torch {first}: bound ratio 3.4"), first_failure_of(f)


def test_first_failure_orders_trajectory_by_step_and_layers_numerically():
    frame = details(L=11, steps=12, fail={"step 11", "step 3"})
    assert first_failure_of(frame.iloc[::-1]).startswith("torch step 3 trajectory cost:")
    frame = details(L=11, fail={"A2", "Z10"})
    assert " A2:" in first_failure_of(frame)


def test_first_failure_format():
    frame = details(fail={"dW2"}, rel={"dW2": 1.2e-7})
    frame["impl"] = "tf"
    assert first_failure_of(frame) == "tf step 0 backward dW2: bound ratio 3.4 (max rel 1.2e-7)"


def test_number_format():
    assert sci(3.1e-16) == "3.1e-16"
    assert sci(0.0) == "0"
    assert sci(np.inf) == "inf"
    assert sci(np.nan) == "n/a"


# --------------------------------------------------------------------------- write_report


def _listing(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".tmp-")]


def test_write_report_writes_four_files_that_round_trip(tmp_path):
    frame = pd.concat([details(), details(impl="tf", fail={"dW2"}), unavailable(impl="tf-function")],
                      ignore_index=True)
    out = write_report(frame, tmp_path / "report", META)
    assert Path(out) == tmp_path / "report"
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    assert _leftovers(tmp_path) == []

    back = pd.read_csv(out / "details.csv", keep_default_na=False, na_values=[""])
    assert list(back.columns) == COLUMNS and len(back) == len(frame)
    assert list(back["quantity"].fillna("")) == list(frame["quantity"])
    assert np.allclose(back["max_rel_err"], frame["max_rel_err"], equal_nan=True)
    assert list(back["passed"]) == list(frame["passed"])

    summary = summarize(frame)
    back = pd.read_csv(out / "summary.csv")
    assert len(back) == len(summary) == 3
    assert list(back["status"]) == list(summary["status"])
    assert np.allclose(back["max_gradient_rel_err"], summary["max_gradient_rel_err"], equal_nan=True)

    document = json.loads((out / "summary.json").read_text())
    assert document["passed"] is False
    assert document["cases"] == 1 and document["failures"] == 1
    assert document["implementations"] == ["torch", "tf", "tf-function"]
    assert [r["status"] for r in document["summary"]] == list(summary["status"])
    assert document["meta"]["command"] == META["command"]


def test_report_md_has_verdict_table_failures_and_unavailable(tmp_path):
    frame = pd.concat([details(), details(impl="tf", fail={"A2", "dW1"}), unavailable(impl="tf-function")])
    case = Case(layer_dims=(2, 4, 1), dtype="float32", name="l2-relu-float32-fullbatch")
    text = (write_report(frame, tmp_path / "r", META, cases=[case]) / "report.md").read_text()
    assert "1 of 3 case × implementation comparisons fail" in text
    assert "## How to read this report" in text and "max|impl − ref| / max|ref|" in text
    assert META["command"] in text and META["date"] in text
    assert "| case" in text and "| PASS" in text and "| FAIL" in text and "| UNAVAILABLE" in text
    assert "1.0e-7" in text  # scientific notation, 2 significant digits
    assert "2, 4, 1" in text  # the case's parameters
    assert "tf step 0 forward A2: bound ratio 3.4" in text
    assert "## Unavailable implementations" in text and "No module named 'tensorflow'" in text


def test_all_pass_verdict_and_no_failures(tmp_path):
    frame = pd.concat([details(), details(impl="tf")])
    out = write_report(frame, tmp_path / "r", META)
    text = (out / "report.md").read_text()
    assert "All 2 case × implementation comparisons pass." in text
    assert "## Failures\n\nnone" in text and "Unavailable" not in text
    assert json.loads((out / "summary.json").read_text())["passed"] is True


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "r"
    write_report(details(), out, META)
    before = _listing(out)
    with pytest.raises(UsageError, match="exists; pass --force"):
        write_report(details(fail={"A1"}), out, META)
    assert _listing(out) == before
    assert _leftovers(tmp_path) == []


def test_force_replaces_a_report(tmp_path):
    out = tmp_path / "r"
    write_report(details(), out, META)
    (out / "notes.txt").write_text("inside the old report")
    write_report(details(fail={"A1"}), out, {**META, "force": True})
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    assert json.loads((out / "summary.json").read_text())["passed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary directory, no lock file left


def test_failure_mid_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_markdown", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(details(), tmp_path / "r", META)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    old = tmp_path / "old"
    write_report(details(), old, META)
    before = _listing(old)
    monkeypatch.setattr(pd.DataFrame, "to_markdown", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(details(fail={"A1"}), old, {**META, "force": True})
    assert _listing(old) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


# --------------------------------------------------------------------------- extra sections


def test_classification_and_drift_sections_in_md_and_html(tmp_path):
    from nnparity.harness import classify
    from reports.sections import classification_section, drift_section

    frame = details(steps=12, fail=("step 11",))
    frame["max_ulp"] = 0.0
    frame.loc[frame["quantity"] == "dW", "max_ulp"] = 3.0
    frame.loc[frame["quantity"] == "A", "max_ulp"] = 50.0
    frame["classification"] = [classify(u, p) for u, p in zip(frame["max_ulp"], frame["passed"])]
    text = classification_section(frame)
    # L = 2 at step 0: Z1 Z2 cost dZ2 db2 dA1 dZ1 db1 identical, dW2 dW1 within 4 ulp, A1 A2 within bound
    assert "| l2-relu-float32-fullbatch | torch  | values and gradients (checkpoints) |           8 |         2 |" \
           "              2 |         0 |      0 |" in text
    assert "trajectory steps                   |          11 |         0 |              0 |         0 |" \
           "      1 |" in text
    drift = drift_section(frame)
    assert "step 11" in drift and "step 10" in drift
    out = write_report(frame, tmp_path / "r", {}, sections=[text, drift])
    md = (out / "report.md").read_text()
    assert "## Classifications" in md and "## Trajectory drift and divergence horizons" in md
    html = (out / "report.html").read_text()
    assert '<h2 id="extra0">Classifications</h2>' in html and "divergence horizon</th>" in html


# --------------------------------------------------------------------------- the first screen


def _margin_frame():
    """torch on a float32 and a float64 case, tf failing dW2, tf-function unavailable; margins set by hand."""
    f32 = details(impl="torch")
    f32["classification"] = "within bound"
    f32.loc[f32["quantity"].isin(["A", "dW"]) & f32["layer"].eq(1), "bound_ratio"] = [0.6, 0.9]
    f32.loc[f32["phase"].eq("trajectory") & f32["step"].eq(1), "bound_ratio"] = 0.7
    f32.loc[f32["phase"].eq("trajectory") & f32["step"].eq(2),
            ["bound_ratio", "classification", "criterion", "arbiter_ratio"]] = [5.0, "drifted", "arbiter_ratio<=1", 0.4]
    f32.loc[f32["phase"].eq("final") & f32["quantity"].eq("W") & f32["layer"].eq(1), "bound_ratio"] = 0.3
    f64 = details(case="l2-relu-float64-fullbatch", impl="torch", dtype="float64")
    f64["classification"] = "identical"
    Z1 = f64["quantity"].eq("Z") & f64["layer"].eq(1)  # float64 values: the bound and 1e-12 norm-wise relative
    f64.loc[Z1, ["criterion", "bound_ratio", "max_rel_err"]] = ["bound_ratio<=1 and max_rel_err<=1e-12", 0.1, 8e-13]
    steps = f64["phase"].eq("trajectory")  # float64 trajectory: 1e-10 relative, whatever the bound ratio says
    f64.loc[steps, ["criterion", "bound_ratio"]] = ["max_rel_err<=1e-10", 2.0]
    f64.loc[steps, "max_rel_err"] = [0.0, 1e-11, 3e-11]
    tf = details(impl="tf", fail={"dW2"})
    tf["classification"] = tf["passed"].map({True: "<=4 ulp", False: "fail"})
    return pd.concat([f32, f64, tf, unavailable(impl="tf-function")], ignore_index=True)


def test_impl_summary_is_the_worst_error_over_limit_of_each_phase():
    from reports.margin import impl_summary

    table = impl_summary(_margin_frame()).set_index("impl")
    assert list(table.index) == ["torch", "tf", "tf-function"]
    # torch: forward max(A1 0.6, float64 Z1 max(0.1, 8e-13 / 1e-12) = 0.8); gradients dW1 0.9; trajectory: step 1
    # 0.7 (step 2 is drifted: its margin is the arbiter's 0.4, not its bound ratio 5.0; float64 steps
    # 3e-11 / 1e-10 = 0.3 though their bound ratio is 2);
    # final W1 0.3 (the others 0.25)
    assert table.loc["torch", ["forward", "gradients", "trajectory", "final parameters"]].tolist() == pytest.approx(
        [0.8, 0.9, 0.7, 0.3])
    assert table.loc["tf", ["forward", "gradients", "trajectory", "final parameters"]].tolist() == [0.25, 3.4, 0.25,
                                                                                                    0.25]
    assert table.loc["tf-function", ["forward", "gradients", "trajectory", "final parameters"]].isna().all()
    assert table.loc["torch", ["passed", "run", "unavailable"]].tolist() == [2, 2, 0]
    assert table.loc["tf", ["passed", "run", "unavailable"]].tolist() == [0, 1, 0]
    assert table.loc["tf-function", ["passed", "run", "unavailable"]].tolist() == [0, 0, 1]
    # torch's 40 rows (20 a case): float32 19 within bound + 1 drifted, float64 20 identical
    assert table.loc["torch", "classes"] == "identical 50% · within bound 48% · drifted 2%"
    assert table.loc["tf", "classes"] == "<=4 ulp 95% · fail 5%"  # 19 of 20, dW2 fails
    # issue 23: the first screen names where the worst is, not only its size
    assert table.loc["torch", "worst"] == "l2-relu-float32-fullbatch: backward dW1 step 0"  # 0.9
    assert table.loc["tf", "worst"].endswith(": backward dW2 step 0") and table.loc["tf-function", "worst"] == ""


def test_impl_summary_leaves_an_expected_divergence_out_of_the_margins():
    """Keras' recorded epsilon divergence fails by orders of magnitude, as recorded: it is counted under cases
    ("1 expected divergence"), while its error / limit columns show only the cases that must pass."""
    from reports.margin import cases_text, impl_summary

    diverging = details(impl="keras", fail={"dW2"})
    diverging["divergence"] = "keras-rmsprop-epsilon"
    diverging.loc[diverging["quantity"].eq("dW") & diverging["layer"].eq(2), "bound_ratio"] = 9e8
    passing = details(case="l2-relu-float64-fullbatch", impl="keras")
    passing["divergence"] = ""
    row = impl_summary(pd.concat([diverging, passing], ignore_index=True)).set_index("impl").loc["keras"]
    assert row["gradients"] == pytest.approx(passing.loc[passing["phase"] == "backward", "bound_ratio"].max())
    assert row["gradients"] < 1
    assert cases_text(row) == "1 / 2, 1 expected divergence"  # passed / run, then the recorded one


def test_report_md_opens_with_the_per_implementation_summary_and_links_every_figure(tmp_path):
    import re

    frame = _margin_frame()
    text = (write_report(frame, tmp_path / "r", META) / "report.md").read_text()
    out = tmp_path / "r"
    lines = text.splitlines()
    assert lines[2].startswith("**1 of 4 case × implementation comparisons fail")
    assert lines[4] == "## Per implementation (worst error / limit of each phase)"
    table = [line for line in lines if line.startswith("| torch ") or line.startswith("| tf ")]
    assert table[0].split("|")[2:8] == [" 0.8 ", " 0.9 ", " 0.7 ", " 0.3 ", " 2 / 2 ",
                                        " identical 50% · within bound 48% · drifted 2% "] or \
        [c.strip() for c in table[0].split("|")[2:8]] == ["0.8", "0.9", "0.7", "0.3", "2 / 2",
                                                          "identical 50% · within bound 48% · drifted 2%"]
    assert [c.strip() for c in table[1].split("|")[3:7]] == ["3.4", "0.25", "0.25", "0 / 1"]
    assert text.index("## Per implementation") < text.index("## Results (case × implementation)")
    linked = re.findall(r"\]\(([^)]+\.png)\)", text)
    written = sorted(p.name for p in out.glob("*.png"))
    assert sorted(linked) == written and len(written) == 2  # no trajectories given: no trajectory differences
    assert all((out / name).is_file() for name in linked)


def test_since_the_baseline_names_what_went_from_pass_to_fail(tmp_path):
    from reports.compare import load_report
    from reports.run import _since

    before = pd.concat([details(), details(impl="tf")], ignore_index=True)
    baseline = load_report(write_report(before, tmp_path / "old", META), "--baseline")
    lines = _since(baseline, pd.concat([details(), details(impl="tf", fail={"dW2"})], ignore_index=True), None,
                   tmp_path / "new")
    assert lines[0].startswith(f"`{tmp_path / 'old'}` (started")
    assert lines[1].startswith("REGRESSION: 1 quantity went from pass to fail")
    assert any("l2-relu-float32-fullbatch tf: pass → fail" == line for line in lines[2:])
    md = (write_report(before, tmp_path / "new", META, baseline=lines) / "report.md").read_text()
    assert md.index("## Since the baseline") < md.index("## Results") and "REGRESSION" in md


def test_the_detection_power_section_names_what_hides_under_rounding():
    """Two cases' dW rows: the section reports the smallest detect_rel over the cases (written here by hand) and,
    for float32 with nothing below 1e-6, the float64 case that has the power."""
    import pandas as pd

    from reports.sections import detection_power_section

    rows = [dict(case="c64", impl="torch", dtype="float64", phase="backward", quantity="dW", layer=1, step=0,
                 detect_rel=7.7e-14),
            dict(case="c32a", impl="torch", dtype="float32", phase="backward", quantity="dW", layer=1, step=0,
                 detect_rel=4.1e-5),
            dict(case="c32b", impl="torch", dtype="float32", phase="backward", quantity="dW", layer=2, step=0,
                 detect_rel=2.0e-5)]
    text = detection_power_section(pd.DataFrame(rows))
    assert text.startswith("## Detection power")
    line32 = next(line for line in text.splitlines() if line.startswith("| float32"))
    assert "2.0e-5" in line32 and "c32b" in line32 and "see c64 in float64 (7.7e-14)" in line32
    assert "changes `dW` by less than 2.0e-5 relative hides under rounding" in text


def test_summary_json_carries_the_coverage_manifest(tmp_path):
    """Rows per case, implementation and phase, counted here by hand from the frame written."""
    import json

    from reports.build import write_report

    frame = details(steps=3)
    write_report(frame, tmp_path / "r", {"force": False})
    document = json.loads((tmp_path / "r" / "summary.json").read_text())
    expected = {}
    for record in frame.to_dict("records"):
        phases = expected.setdefault(record["case"], {}).setdefault(record["impl"], {})
        phases[record["phase"]] = phases.get(record["phase"], 0) + 1
    assert document["coverage"] == expected


def test_an_expected_divergence_is_named_and_is_not_a_failure():
    """A pair whose rows carry a confirmed divergence id (set by ``report`` after the parity tests' check) has the
    status 'expected divergence: <id>'; the verdict does not count it as a failure, and an unconfirmed one fails."""
    from reports.summary import summarize, verdict

    frame = details(impl="keras", fail=("dW1",))
    frame["divergence"] = "keras-rmsprop-epsilon"
    summary = summarize(frame)
    assert summary["status"].iloc[0] == "expected divergence: keras-rmsprop-epsilon"
    assert verdict(summary).startswith("No unexpected failure: 0 of 1")
    frame["divergence"] = ""
    assert summarize(frame)["status"].iloc[0] == "fail"


def test_a_recorded_divergence_is_drawn_amber_and_named_never_as_a_red_failure(monkeypatch):
    """Issue 23: recorded divergences were red crosses under a green banner.  In the figures a pair that fails
    exactly as nnparity/divergences.py records is amber and named; an unexpected failure stays a red cross."""
    from reports import plots

    monkeypatch.setattr(plots, "_png", lambda fig: fig)
    recorded = details(case="sigmoid-adam-none-float64-fullbatch", impl="keras", dtype="float64", fail={"step 1"})
    recorded["divergence"] = "keras-adam-epsilon"
    unexpected = details(impl="tf", fail={"step 1"})
    unexpected["divergence"] = ""
    frame = pd.concat([recorded, unexpected], ignore_index=True)

    def marks(fig):
        return {collection.get_label() for ax in fig.axes for collection in ax.collections}

    figure = plots.bound_ratio_plot(frame)
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert {c.get_label() for c in panels["sigmoid-adam-none-float64-fullbatch"].collections} == {
        "recorded divergence (expected)"}
    assert "failing step" in {c.get_label() for c in panels["l2-relu-float32-fullbatch"].collections}
    heatmap = plots.bound_ratio_heatmap(frame)
    texts = [t.get_text() for t in heatmap.axes[0].texts]
    assert texts.count("recorded") == 1 and "recorded divergence" in [t.get_text() for t in heatmap.legends[0].texts]
    assert marks(figure)


def test_a_long_case_name_wraps_its_panel_title_at_hyphens_and_keeps_every_character():
    """The training cases' names (up to 70 characters) ran into the neighbouring panels' titles."""
    from reports.plots import TITLE_WIDTH, _panel_labels, _pyplot

    name = "softmax-leakyrelu-rmsprop-l2-inverse-time-decay-float32-minibatch"
    fig, (ax, short) = _pyplot().subplots(1, 2)
    _panel_labels(ax, name, "error / limit")
    _panel_labels(short, "l2-tanh-float64-minibatch", "error / limit")
    lines = ax.get_title().split("\n")
    assert len(lines) == 2 and all(len(line) <= TITLE_WIDTH for line in lines)
    assert "".join(lines) == name and lines[0].endswith("-")
    assert short.get_title() == "l2-tanh-float64-minibatch"
    _pyplot().close(fig)


LEGEND = ["torch", "torch-nn", "tf", "tf-function", "keras", "recorded divergence (expected)", "jax", "jax-jit", "flax",
          "float32 after step 1: judged by the float64 arbiter"]


@pytest.mark.parametrize("width, columns", [(7.8, 3), (15.6, 10), (4.0, 1)])
def test_a_legend_below_the_panels_takes_the_most_columns_that_fit_the_figure(width, columns):
    """An explain page's two-panel figure (7.8 inches) had its legend in ten rows, one label a row, squeezing its
    panels: the column count took every column as wide as the longest label.  Drawn by matplotlib, the legend with
    the chosen columns fits the figure, and one column more would fill at least 90 % of it (the estimate errs on
    the narrow side by less than that)."""
    from reports.plots import _pyplot, legend_columns

    assert legend_columns(LEGEND, width) == columns

    def legend_width(ncols):
        fig = _pyplot().figure(figsize=(width, 3))
        handles = [fig.gca().plot([0], [0], "o")[0] for _ in LEGEND]
        legend = fig.legend(handles, LEGEND, loc="lower center", ncols=ncols, fontsize=8, frameon=False,
                            markerscale=2.5)
        fig.canvas.draw()
        inches = legend.get_window_extent().width / fig.dpi
        _pyplot().close(fig)
        return inches

    assert columns == 1 or legend_width(columns) <= width
    assert columns == len(LEGEND) or legend_width(columns + 1) > width * 0.9
