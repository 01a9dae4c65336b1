"""Known changes as data (``nnparity.known_changes``): each record recognises its cause in the environment
differences of two real ``env.json`` documents (``nnparity.environment.collect``), and nothing else; compare names
it for the rows it explains; upgrade-check attributes growth it explains (``changed``), never a pass → fail."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from nnparity import environment, known_changes, regression, upgrade


def _env(monkeypatch, **variables) -> dict:
    """env.json as a report writes it, with ``variables`` set (the frameworks' runtime sections left out: no
    framework is imported)."""
    with monkeypatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        return environment.collect(measured={"blas": {}})


def _ids(baseline: dict, candidate: dict) -> list[str]:
    return [r.id for r in known_changes.matching(regression.environment_changes(baseline, candidate))]


@pytest.mark.parametrize("variables, expected", [
    ({"NNPARITY_THREADS": "2"}, ["thread-count"]),
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, ["tf-onednn"]),
    ({"OPENBLAS_CORETYPE": "Haswell"}, ["openblas-kernel"]),
    ({"PYTHONHASHSEED": "0"}, []),  # a change no record documents explains nothing
])
def test_each_record_recognises_its_cause_in_real_environments(monkeypatch, variables, expected):
    monkeypatch.delenv("NNPARITY_THREADS", raising=False)
    baseline = _env(monkeypatch)
    assert _ids(baseline, copy.deepcopy(baseline)) == []
    assert _ids(baseline, _env(monkeypatch, **variables)) == expected


def test_numpy_crossing_2_is_nep50_either_way_and_a_minor_release_is_not(monkeypatch):
    baseline = _env(monkeypatch)
    older = copy.deepcopy(baseline)
    older["versions"]["numpy"] = "1.26.4"
    newer_minor = copy.deepcopy(baseline)
    newer_minor["versions"]["numpy"] = "2.3.5"
    assert _ids(older, baseline) == _ids(baseline, older) == ["numpy-nep50"]
    assert _ids(newer_minor, baseline) == []
    record = known_changes.KNOWN_CHANGES[[r.id for r in known_changes.KNOWN_CHANGES].index("numpy-nep50")]
    assert record.explains("torch", "float32") and not record.explains("torch", "float64")


def test_every_record_names_its_source_and_what_it_changes():
    ids = [r.id for r in known_changes.KNOWN_CHANGES]
    assert len(set(ids)) == len(ids)
    for record in known_changes.KNOWN_CHANGES:
        assert record.link.startswith("https://") and record.what
        assert record.environment or record.package


def _report(out, dW1, env, fail=False):
    from test_upgrade import _fake_report

    _fake_report(out, dW1, env=env, fail=fail)
    return out


def test_upgrade_check_attributes_growth_a_known_change_explains_never_a_failure(tmp_path, monkeypatch):
    """dW1 x1e3 (beyond the budget) is blocked with no documented cause in the environments, an attributed change
    when the thread count changed too (the record named in the first divergence and drift.md), and blocked again
    when it also went from pass to fail."""
    from test_compare import ULP_AT_HALF

    monkeypatch.delenv("NNPARITY_THREADS", raising=False)
    env, threads2 = _env(monkeypatch), _env(monkeypatch, NNPARITY_THREADS="2")
    base = _report(tmp_path / "base", ULP_AT_HALF, env)
    cases = {"unexplained": (env, False), "threads": (threads2, False), "failed": (threads2, True)}
    verdicts = {}
    for name, (candidate_env, fail) in cases.items():
        comparison = regression.compare(base, _report(tmp_path / name, 1000 * ULP_AT_HALF, candidate_env, fail))
        verdicts[name] = upgrade.verdict_of(comparison)
        if name == "threads":
            from reports.compare import Comparison

            assert [r.id for r in comparison.known] == ["thread-count"]
            assert list(comparison.attributed["cause"].unique()) == ["thread-count"]
            assert "- **thread-count** (https://" in Comparison.of(comparison).markdown()
    assert verdicts["unexplained"][0] == "blocked"
    assert verdicts["threads"] == ("changed", {"torch": (
        "changed", "l1-logreg-float64-fullbatch backward dW1 step 0 (changed, error x1e+03; known cause: "
                   "thread-count)")})
    assert verdicts["failed"][0] == "blocked"


def test_drift_csv_carries_the_cause(tmp_path, monkeypatch):
    from test_compare import ULP_AT_HALF

    monkeypatch.delenv("NNPARITY_THREADS", raising=False)
    base = _report(tmp_path / "base", ULP_AT_HALF, _env(monkeypatch))
    moved = _report(tmp_path / "moved", 3 * ULP_AT_HALF, _env(monkeypatch, TF_ENABLE_ONEDNN_OPTS="0"))
    drift = regression.compare(base, moved).drift
    assert "cause" in regression.DRIFT_COLUMNS
    assert drift.loc[drift["changed"], "cause"].tolist() == [""]  # tf-onednn explains tf, tf-function, keras only
    assert isinstance(drift, pd.DataFrame)
