"""``nnparity upgrade-check`` and what it stands on: the candidate lock, the cached environments, the
orchestration (with an injected environment builder and report runner: nothing is installed), and
``nnparity report``'s exit 5 when an implementation raises at run time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nnparity import cli, grid, upgrade
from nnparity.errors import UsageError
from nnparity.outdir import atomic_directory
from reports.summary import summarize

LOCK = "absl-py==2.5.1\nkeras==3.15.1\nnumpy==2.4.6\ntensorflow-cpu==2.21.0\ntorch==2.13.0\n"


def test_the_candidate_lock_changes_only_the_pins():
    text = upgrade.candidate_lock(LOCK, upgrade.parse_candidate("tensorflow_cpu==2.20.0,optax==0.2.4"))
    assert text.splitlines() == ["absl-py==2.5.1", "keras==3.15.1", "numpy==2.4.6", "tensorflow_cpu==2.20.0",
                                 "torch==2.13.0", "optax==0.2.4"]
    assert upgrade.parse_candidate("torch==2.13.0+cpu") == {"torch": "2.13.0+cpu"}


@pytest.mark.parametrize("bad", ["tensorflow-cpu", "tensorflow-cpu>=2.20", "numpy==2.0,scipy"])
def test_a_candidate_that_is_not_a_pin_is_one_line_exit_2(bad, capsys, tmp_path):
    with pytest.raises(UsageError, match="is not a pin; write NAME==VERSION"):
        upgrade.parse_candidate(bad)
    assert cli.main(["upgrade-check", bad, "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NAME==VERSION" in err and not (tmp_path / "u").exists()


def test_a_cached_environment_is_reused_without_pip(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARITY_ENVS", str(tmp_path))
    pins = {"tensorflow-cpu": "2.20.0"}
    wanted = upgrade.requirements(["tf"], pins)
    assert "tensorflow-cpu" in wanted and any(r.startswith("numpy") for r in wanted)
    lock = upgrade.candidate_lock(upgrade.LOCK.read_text(), pins)
    target = tmp_path / upgrade.environment_key(lock, wanted)
    (target / "bin").mkdir(parents=True)
    (target / ".complete").write_text("")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a cached environment ran a subprocess")

    monkeypatch.setattr(upgrade.subprocess, "run", no_subprocess)
    assert upgrade.build_environment(pins, ["tf"], log=lambda line: None) == target / "bin" / "python"
    other = upgrade.candidate_lock(upgrade.LOCK.read_text(), {"tensorflow-cpu": "2.19.0"})
    assert upgrade.environment_key(other, wanted) != target.name  # another pin, another environment


def _fake_report(out: Path, dW1_err: float) -> None:
    """A sealed report of one float64 case x torch: every row 1 ulp and 1e-6 of its tolerance, dW1 ``dW1_err``."""
    from test_compare import F64_CASE, ULP_AT_HALF
    from test_report import details

    frame = details(case=F64_CASE, impl="torch", L=1, dtype="float64")
    frame[["max_abs_err", "max_rel_err", "bound_ratio"]] = [ULP_AT_HALF, 2 * ULP_AT_HALF, 1e-6]
    dW1 = (frame["quantity"] == "dW") & (frame["layer"] == 1)
    frame.loc[dW1, ["max_abs_err", "max_rel_err"]] = [dW1_err, 2 * dW1_err]
    with atomic_directory(out, True, "report") as tmp:
        frame.to_csv(tmp / "details.csv", index=False)
        summarize(frame).to_csv(tmp / "summary.csv", index=False)


def test_upgrade_check_orchestrates_build_report_compare_with_one_verdict(tmp_path):
    """Three candidates: one the same as the baseline, one whose dW1 grew x1e3, one whose environment failed."""
    from test_compare import ULP_AT_HALF

    built, ran = [], []

    def builder(pins, impl_names, log):
        built.append((pins, impl_names))
        if "scipy" in pins:
            raise upgrade.EnvironmentFailed("pip install failed: ERROR: No matching distribution for scipy==0.0")
        return f"python-{pins['torch']}"

    def runner(python, out, cases, impl):
        ran.append((str(python), cases, impl))
        _fake_report(out, ULP_AT_HALF * (1000 if python == "python-9.9" else 1))
        return 0

    outcomes, code = upgrade.check(["torch==2.13.0", "torch==9.9", "scipy==0.0,torch==1"], tmp_path / "u",
                                   cases="l1-*", impl="torch", builder=builder, runner=runner, log=lambda line: None)
    assert code == upgrade.EXIT_REGRESSION
    assert [o.code for o in outcomes] == [0, 1, 6]
    assert built[0] == ({"torch": "2.13.0"}, ["torch"]) and len(built) == 3
    assert [r[1:] for r in ran] == [("l1-*", "torch")] * 3  # the same report here and in each candidate
    assert ran[0][0] == upgrade.sys.executable  # the baseline: the current environment
    assert outcomes[1].verdict.startswith("REGRESSION: 1 quantity grew beyond the budget")
    assert outcomes[2].verdict.startswith("NO ENVIRONMENT: pip install failed: ERROR: No matching distribution")
    assert (tmp_path / "u" / "torch==9.9" / "compare" / "drift.md").is_file()
    lines = upgrade.table(outcomes).splitlines()
    assert lines[0] == "| case | torch==2.13.0 | torch==9.9 | scipy==0.0,torch==1 |"
    assert lines[2] == "| l1-logreg-float64-fullbatch | unchanged | REGRESSION | — |"


GOOD = "from reference.model import forward_backward, predictions, train  # noqa: F401\n"
RAISES = GOOD + """

def train(parameters, X, Y, case, schedule=None, masks=None):
    raise TypeError("Optimizer.__init__() got an unexpected keyword argument 'lr'")
"""


def test_an_implementation_raising_at_run_time_leaves_a_report_and_exits_5(tmp_path, monkeypatch, capsys):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "raises.py").write_text(RAISES)
    small = grid.case_for(2, "tanh", "float64", False, epochs=3)
    monkeypatch.setattr(grid, "every_case", lambda: [small])
    import reports.plots

    monkeypatch.setattr(reports.plots, "draw_all", lambda details, trajectories: {})  # figures: test_report_html's
    out = tmp_path / "r"
    code = cli.main(["report", "--out", str(out), "--cases", small.id, "--impl",
                     f"{tmp_path / 'good.py'},{tmp_path / 'raises.py'}", "--no-selftest", "--no-catalogue"])
    assert code == 5
    assert "CRASHED" in capsys.readouterr().out
    details = pd.read_csv(out / "details.csv")
    raised = details[details["impl"].str.endswith("raises.py")]
    good = details[details["impl"].str.endswith("good.py")]
    assert good["passed"].all() and len(good) > 10  # the others' results are all there
    trained = raised[raised["phase"].isin(["update", "trajectory"])]
    assert len(trained) and not trained["passed"].any()
    assert trained["note"].str.startswith("train raised TypeError: Optimizer.__init__() got an unexpected").all()
    assert json.loads((out / "nnparity.json").read_text())["files"]["details.csv"]


def test_report_cases_reach_every_grid_and_the_default_grid_trains_every_way(tmp_path, monkeypatch):
    from nnparity import harness

    chosen = grid.select(grid.every_case(), "sigmoid-adam-*")
    assert chosen and all(c.optimizer == "adam" and c.output_activation == "sigmoid" for c in chosen)
    ids = [c.id for c in grid.every_case()]
    assert len(ids) == len(set(ids)) and {c.id for c in grid.training_grid()} <= set(ids)
    default = grid.default_grid()
    for dtype in grid.DTYPES:
        typed = [c for c in default if c.dtype == dtype]
        assert {c.optimizer for c in typed} == set(grid.OPTIMIZER_RATES)
        assert any(c.lambd > 0 for c in typed) and any(c.keep_prob < 1 for c in typed)
        assert any(c.output_activation == "softmax" for c in typed) and any(c.decay != "none" for c in typed)
    assert {c.optimizer for c in default if c.decay != "none"} == set(grid.OPTIMIZER_RATES)

    class Chosen(Exception):
        pass

    def stop(case, dataset, checkpoints=None):
        raise Chosen(case.id)

    monkeypatch.setattr(harness, "run_reference", stop)  # the case report chose, before any work
    (tmp_path / "good.py").write_text(GOOD)
    with pytest.raises(Chosen, match="^sigmoid-adam-dropout-float64-fullbatch$"):
        cli.main(["report", "--out", str(tmp_path / "r"), "--cases", "sigmoid-adam-dropout-float64-full*", "--impl",
                  str(tmp_path / "good.py"), "--no-selftest", "--no-catalogue"])
