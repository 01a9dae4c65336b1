"""``reports.run_report``: the report from Python, the same directory as ``nnparity report`` writes, its summary
computed once; bad input a UsageError before anything is written."""

from __future__ import annotations

import pandas as pd
import pytest

from nnparity import cli
from nnparity.errors import UsageError
from reports import ReportResult, run_report

CASE = "l1-logreg-float64-fullbatch"  # the smallest case of the default grid: about 1000 steps of a logistic unit


def test_run_report_writes_what_the_command_writes_and_summarizes_once(tmp_path, monkeypatch, capsys):
    from reports import build, margin, summary

    calls = []
    original = summary.summarize

    def counted(details):
        calls.append(len(details))
        return original(details)

    for module in (summary, build, margin):  # every name the report reads it by
        monkeypatch.setattr(module, "summarize", counted)
    result = run_report(CASE, ["numpy", "torch"], tmp_path / "lib", jobs=1)
    assert len(calls) == 1  # once per report: the files, the per-implementation table and the result share it
    assert isinstance(result, ReportResult) and result.passed and result.status == "pass"
    assert result.summary["passed"].all() and list(result.summary["impl"]) == ["torch"]
    assert result.first_divergence == "" and result.data_pins == [] and result.unavailable == []
    assert result.meta["tier"] == "quick" and result.meta["command"].startswith("run_report(cases=")
    assert all(path.is_file() for path in result.paths)
    assert "matched 1 case" in capsys.readouterr().err

    monkeypatch.undo()
    code = cli.main(["report", "--cases", CASE, "--impl", "numpy,torch", "--out", str(tmp_path / "cmd")])
    assert code == 0 and "all comparisons pass" in capsys.readouterr().out
    assert result.files == sorted(p.name for p in (tmp_path / "cmd").iterdir())
    for name in ("details.csv", "summary.csv", "trajectories.csv"):
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "cmd" / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "lib" / "summary.csv"),
                                  pd.read_csv(tmp_path / "cmd" / "summary.csv"))


def test_bad_input_is_a_usage_error_before_anything_is_written(tmp_path):
    with pytest.raises(UsageError, match="numpy compares nothing"):
        run_report(CASE, "numpy", tmp_path / "r", jobs=1)
    with pytest.raises(UsageError, match="unknown implementation"):
        run_report(CASE, "no-such-impl", tmp_path / "r", jobs=1)
    with pytest.raises(UsageError, match="tier="):
        run_report(CASE, "torch", tmp_path / "r", tier="fast")
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_and_the_library_share_the_timeout():
    from nnparity.commands import report as command
    from reports import run

    assert command.DEFAULT_TIMEOUT == run.DEFAULT_TIMEOUT
    assert set(command.EXIT_CODES) == set(run.STATUSES)
