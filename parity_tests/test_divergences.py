"""The known divergences are data: every record names a real catalogue entry and real implementations,
its conditions select cases of the grids, and no parity test branches on a framework."""

import ast
import pathlib

import pytest

from nnparity import catalogue, divergences, grid, impls

TESTS = pathlib.Path(__file__).parent


def test_every_record_names_a_catalogue_entry_and_registered_implementations():
    entry_ids = {entry.id for entry in catalogue.ENTRIES}
    for record in divergences.DIVERGENCES:
        assert record.catalogue in entry_ids, record.id
        assert set(record.impls) <= set(impls.frameworks()), record.id


def test_every_record_applies_to_some_grid_case_and_at_most_one_record_per_pair():
    cases = grid.test_grid() + grid.training_grid()
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
