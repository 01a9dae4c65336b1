"""The known divergences are data: every record names a real catalogue entry and real implementations,
its conditions select cases of the grids, and no parity test branches on a framework."""

import ast
import pathlib

import pytest

from nnparity import catalogue, divergences, grid, impls
from nnparity.convspec import conv_grid

TESTS = pathlib.Path(__file__).parent


def test_every_record_names_a_catalogue_entry_and_registered_implementations():
    entry_ids = {entry.id for entry in catalogue.ENTRIES}
    for record in divergences.DIVERGENCES:
        assert record.catalogue in entry_ids, record.id
        assert set(record.impls) <= set(impls.frameworks()), record.id


def test_every_record_applies_to_some_grid_case_and_at_most_one_record_per_pair():
    cases = grid.test_grid() + grid.training_grid() + conv_grid()
    for record in divergences.DIVERGENCES:
        assert any(record.applies(c, i) for c in cases for i in record.impls), f"{record.id} applies to nothing"
    for case in cases:
        for impl in impls.frameworks():
            divergences.expected(case, impl)  # raises when two records claim the same pair


def test_no_parity_test_names_a_framework_implementation_in_a_condition():
    """An expected divergence is a record of nnparity/divergences.py, never an ``if impl == ...`` in a test or in
    the battery (nnparity.testing)."""
    names = set(impls.frameworks())
    offenders = []
    battery = [TESTS / "conftest.py", TESTS.parent / "nnparity" / "testing.py"]
    for path in sorted(TESTS.glob("test_parity_*.py")) + battery:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.If, ast.IfExp, ast.Assert, ast.BoolOp)):
                test = node.test if hasattr(node, "test") else node
                strings = {n.value for n in ast.walk(test) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                if strings & names:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders


def test_a_pair_without_a_record_must_pass_and_one_with_a_record_must_fail_as_recorded():
    case = grid.training_case("adam", "none", "sigmoid", "float64", False)
    record = divergences.expected(case, "keras")
    assert record is divergences.BY_ID["keras-adam-epsilon"] and record.certain(case)
    assert divergences.expected(case, "torch-nn") is None
    assert divergences.expected(case.replace(optimizer="gd"), "keras") is None


def test_report_exits_0_on_an_expected_divergence_and_names_it(tmp_path):
    """``make report``'s default grid has Keras' RMSprop and Adam cases: the report checks each pair with a record as
    the parity tests do, names it, and exits 0 when it diverges exactly as recorded."""
    import subprocess
    import sys

    pytest.importorskip("tensorflow")
    root = pathlib.Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-m", "nnparity", "report",
                          "--cases", "softmax-rmsprop-none-float64-minibatch",
                          "--impl", "keras", "--no-selftest", "--no-catalogue", "--out", str(tmp_path / "r")],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "r" / "report.md").read_text()
    assert "diverges exactly as nnparity/divergences.py records" in text
    assert "expected divergence: keras-rmsprop-epsilon" in (tmp_path / "r" / "summary.csv").read_text()


# --------------------------------------------------------------------------- one policy, two callers


def _comparison(case, impl, fail=()):
    """A synthetic comparison of ``impl`` on ``case`` in the harness's schema, every phase check_parity requires,
    the first update's rows after the gradients; names in ``fail`` (``'A1'``, ``'update W1'``) fail."""
    import pandas as pd

    from test_report import _frame, _row, details

    frame = details(case=case.id, impl=impl, L=case.L, dtype=case.dtype, fail=fail)
    update = _frame([_row(case.id, impl, case.dtype, "update", name, 0, 1e-7, 3.4 if f"update {name}" in fail else 0.25,
                          f"update {name}" not in fail) for name in ("W1", "b1")])
    backward = frame.index[frame["phase"] == "backward"].max() + 1
    return pd.concat([frame.iloc[:backward], update, frame.iloc[backward:]], ignore_index=True)


@pytest.fixture
def comparisons(monkeypatch):
    """The harness stubbed: the reference's run is a placeholder and ``harness.compare_impl`` answers from the
    returned list, in order (the comparison with the course's reference, then the aligned one)."""
    import types

    from nnparity import data, harness, testing

    answers = []
    monkeypatch.setattr(data, "load_data", lambda name: None)
    monkeypatch.setattr(harness, "run_reference", lambda case, data, **kw: types.SimpleNamespace(costs=[1.0, 0.5]))
    monkeypatch.setattr(harness, "compare_impl", lambda ref, impl, *args, **kw: answers.pop(0).copy())
    monkeypatch.setattr(testing, "_REFERENCE_RUNS", {})  # no placeholder left in the battery's cache
    return answers


ADAM = grid.training_case("adam", "none", "sigmoid", "float64", False)  # keras-adam-epsilon, certain in float64


@pytest.mark.parametrize("impl, first, aligned, accepted", [
    ("keras", ("update W1",), (), True),  # fails exactly as recorded, passes against the aligned reference
    ("keras", ("update W1",), ("A1",), False),  # as recorded, but the aligned reference fails too
    ("keras", ("A1",), (), False),  # fails, but first elsewhere than the record says
    ("torch", ("update W1",), None, False),  # no record: a failure is a failure
], ids=["recorded", "recorded-aligned-fails", "recorded-elsewhere", "not-recorded"])
def test_the_report_and_the_battery_apply_one_policy(comparisons, impl, first, aligned, accepted):
    """``nnparity report`` (its case piece's ``divergence`` column) and ``nnparity.testing.check_parity`` both
    judge a failing pair by ``divergences.assess``: on a recorded divergence and on a pair without a record
    they accept and refuse the same comparisons, and run the same aligned comparison."""
    from nnparity import testing
    from reports.run import _case_piece

    assert (divergences.expected(ADAM, impl) is not None) == (impl == "keras")
    answers = [_comparison(ADAM, impl, first)] + ([] if aligned is None else [_comparison(ADAM, impl, aligned)])
    comparisons[:] = [a.copy() for a in answers]
    (compared, _), _ = _case_piece(ADAM, [impl], ())
    tag = set(compared[0]["divergence"])
    assert tag == ({"keras-adam-epsilon"} if accepted else {""}) and comparisons == []
    assert (divergences.recorded(ADAM, impl, answers[0], lambda case, context: answers[-1]) != "") == accepted
    assert divergences.assess(ADAM, impl, answers[0], lambda case, context: answers[-1]).ok == accepted

    comparisons[:] = [a.copy() for a in answers]
    if accepted:
        testing.check_parity(ADAM, impl)
    else:
        with pytest.raises(AssertionError) as raised:
            testing.check_parity(ADAM, impl)
        assert ("3.4" in str(raised.value)) if impl == "torch" else "keras-adam-epsilon" in str(raised.value)
    assert comparisons == []


def test_a_passing_pair_with_a_record_is_no_divergence_in_the_report_but_fails_the_battery(comparisons):
    """Where the record says the failure is certain and every row passes, the battery fails (the framework may have
    changed: update the record); the report has no divergence to name (the pair passes) and runs no aligned
    reference for it."""
    from nnparity import testing

    passing = _comparison(ADAM, "keras")
    assert divergences.recorded(ADAM, "keras", passing, lambda case, context: pytest.fail("aligned run")) == ""
    comparisons[:] = [passing.copy(), passing.copy()]
    with pytest.raises(AssertionError, match="but every row passes"):
        testing.check_parity(ADAM, "keras")
