"""A user's implementation through ``--impl PATH.py`` or ``--impl package.module``: the same per-layer
comparison, classification and first-divergence message as the built-in ones; a module that is missing,
fails to import or lacks an entry point is one line and exit 2."""

import json
import sys
import textwrap

import pytest

from nnparity import impls
from nnparity.cli import main

FAITHFUL = '''
"""The course's network, written by a user (here: on top of the project's NumPy reference)."""
from reference.model import forward_backward, predictions, train
'''

DW1_OFF = '''
"""The same, with a 1e-6 relative error in dW1."""
from reference import model


def forward_backward(parameters, X, Y, case, masks=None):
    grads = model.forward_backward(parameters, X, Y, case, masks)
    grads["dW1"] = grads["dW1"] * (1 + 1e-6)
    return grads


def train(parameters, X, Y, case, schedule=None, masks=None):
    return model.train(parameters, X, Y, case, schedule, masks)
'''

REPORT = ["--cases", "l2-tanh-float64-fullbatch", "--no-selftest", "--no-catalogue"]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_faithful_file_passes_the_report(tmp_path, capsys):
    impl = write(tmp_path, "my_impl.py", FAITHFUL)
    code, out, err = run(["report", "--impl", impl, "--out", str(tmp_path / "r"), *REPORT], capsys)
    assert code == 0, out + err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["implementations"] == [impl]
    details = (tmp_path / "r" / "details.csv").read_text()
    assert ",predictions," in details  # it offers predictions(), so they are compared


def test_a_1e_6_error_in_dW1_fails_and_the_report_names_dW1(tmp_path, capsys):
    impl = write(tmp_path, "dw1_off.py", DW1_OFF)
    code, out, err = run(["report", "--impl", impl, "--out", str(tmp_path / "r"), *REPORT], capsys)
    assert code == 1, out + err
    import pandas as pd

    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert summary["first_failure"].iloc[0].startswith(f"{impl} step 0 backward dW1: bound ratio")
    assert "backward dW1" in (tmp_path / "r" / "report.md").read_text()
    details = pd.read_csv(tmp_path / "r" / "details.csv")
    assert "predictions" not in set(details["phase"])  # it offers no predictions(): none compared, none claimed
    # issue 23: the terminal names the first divergence, not only "some comparisons FAIL"
    lines = out.strip().splitlines()
    assert lines[-2].endswith("some comparisons FAIL")
    assert lines[-1].startswith(f"first divergence: l2-tanh-float64-fullbatch {impl}: backward dW1 step 0: max abs ")
    assert "bound ratio" in lines[-1] and "needs bound_ratio<=1" in lines[-1]


def test_train_and_drift_take_a_file(tmp_path, capsys):
    impl = write(tmp_path, "my_impl.py", FAITHFUL)
    code, out, err = run(["train", "--impl", impl, "--epochs", "5", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["impl"] == impl
    code, out, err = run(["drift", "--impl", impl, "--cases", "l2-tanh-float64-fullbatch", "--steps", "20"], capsys)
    assert code == 0, err
    assert "none within 20 steps" in out


def test_an_importable_module_by_name(tmp_path, capsys, monkeypatch):
    write(tmp_path, "user_network.py", FAITHFUL)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run(["train", "--impl", "user_network", "--epochs", "3", "--json"], capsys)
    # a bare name that is not registered is looked up as an installed entry point, not imported
    assert code == 2 and "unknown implementation 'user_network'" in err
    code, out, err = run(["train", "--impl", "user_network.py", "--epochs", "3", "--json"], capsys)
    assert code == 2 and "no such file" in err  # relative to the working directory, not sys.path
    sys.modules.pop("user_network", None)
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg, "net.py", FAITHFUL)
    code, out, err = run(["train", "--impl", "userpkg.net", "--epochs", "3", "--json"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("text, problem", [
    ("missing.py",
     "--impl {path}: no such file; give the path of a Python file that defines forward_backward and train"),
    ("raise RuntimeError('no GPU here')", "--impl {path}: importing it raised RuntimeError: no GPU here"),
    ("def forward_backward(*a): pass", "--impl {path} defines no train; an implementation offers"),
    ("x = 1", "--impl {path} defines no forward_backward and no train"),
])
def test_a_bad_module_is_one_line_and_exit_2(tmp_path, capsys, text, problem):
    path = str(tmp_path / "missing.py") if text == "missing.py" else write(tmp_path, "bad.py", text)
    code, out, err = run(["report", "--impl", path, "--out", str(tmp_path / "r"), *REPORT], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and problem.format(path=path) in err
    assert not (tmp_path / "r").exists()
    impls._LOADED.clear()


def test_a_missing_dotted_module_is_one_line(capsys):
    code, out, err = run(["train", "--impl", "nosuchpackage.net", "--epochs", "3"], capsys)
    assert code == 2 and "no module named 'nosuchpackage'" in err and len(err.strip().splitlines()) == 1


def test_the_shipped_example_passes_as_the_readme_says(tmp_path, capsys, monkeypatch):
    """docs/porting.md and the README: `nnparity report --impl examples/my_network.py --cases 'l2-tanh-float64-*' ...`
    (from the root)."""
    import os

    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code, out, err = run(["report", "--impl", "examples/my_network.py", "--cases", "l2-tanh-float64-*",
                          "--no-selftest", "--no-catalogue", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, out + err


def test_an_installed_entry_point_is_found_by_its_name(tmp_path, capsys, monkeypatch):
    """A package registers ``[project.entry-points."nnparity.implementations"] mynet = "userpkg2.net"``."""
    from types import SimpleNamespace

    pkg = tmp_path / "userpkg2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg, "net.py", FAITHFUL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(impls, "_entry_points", lambda: {"mynet": SimpleNamespace(value="userpkg2.net")})
    code, out, err = run(["train", "--impl", "mynet", "--epochs", "3", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["impl"] == "mynet"
    impls._LOADED.clear()


NO_MINIBATCHES = '''
"""A user's network that trains on full batches only, and says so."""
from reference import model


def forward_backward(parameters, X, Y, case, masks=None):
    return model.forward_backward(parameters, X, Y, case, masks)


def train(parameters, X, Y, case, schedule=None, masks=None):
    if schedule is not None:
        raise NotImplementedError("mini-batches are not written yet")
    return model.train(parameters, X, Y, case, schedule, masks)
'''


def test_a_case_the_implementation_does_not_support_is_not_supported_not_a_crash(tmp_path, capsys):
    """Issue 23: a NotImplementedError was "CRASHED" with inf in the summary; it is a case the implementation does
    not support: the pair is unavailable with the implementation's own words, the run incomplete (exit 3)."""
    import pandas as pd

    impl = write(tmp_path, "full_batch_only.py", NO_MINIBATCHES)
    code, out, err = run(["report", "--impl", impl, "--out", str(tmp_path / "r"), "--cases",
                          "l1-logreg-float64-fullbatch,l1-logreg-float64-minibatch"], capsys)
    assert code == 3, out + err
    assert "INCOMPLETE" in out and "CRASHED" not in out
    summary = pd.read_csv(tmp_path / "r" / "summary.csv").set_index("case")
    assert summary.loc["l1-logreg-float64-fullbatch", "status"] == "pass"
    status = summary.loc["l1-logreg-float64-minibatch", "status"]
    assert status.startswith("unavailable") and "not supported: mini-batches are not written yet (full_batch_only.py" \
        in status, status


NEVER_RETURNS = '''
"""A user's train that never returns (a loop without an end)."""
from reference import model


def forward_backward(parameters, X, Y, case, masks=None):
    return model.forward_backward(parameters, X, Y, case, masks)


def train(parameters, X, Y, case, schedule=None, masks=None):
    while True:
        pass
'''


def test_a_train_that_never_returns_is_stopped_at_the_timeout_and_its_rows_fail(tmp_path, capsys):
    """Issue 23: an --impl whose train never returned hung the report forever; each call now has --timeout seconds,
    after which its rows fail and say so; the rest of the report is still written."""
    import time

    import pandas as pd

    impl, faithful = write(tmp_path, "hangs.py", NEVER_RETURNS), write(tmp_path, "my_impl.py", FAITHFUL)
    started = time.monotonic()
    code, out, err = run(["report", "--impl", f"{impl},{faithful}", "--timeout", "2", "--jobs", "1", "--out",
                          str(tmp_path / "r"), "--cases", "l1-logreg-float64-fullbatch"], capsys)
    assert code == 1, out + err
    assert time.monotonic() - started < 120  # two calls of train (the first update and the free run), 2 s each
    details = pd.read_csv(tmp_path / "r" / "details.csv")
    stopped = details[(details["impl"] == impl) & details["phase"].isin(["update", "trajectory"])]
    assert len(stopped) == 2 and not stopped["passed"].any()
    assert (stopped["note"] == "train did not return within 2 s (nnparity report --timeout)").all()
    assert details.loc[details["impl"] == faithful, "passed"].all()
    assert "first divergence" in out and "did not return within 2 s" in out
    from nnparity import harness

    assert harness.CALL_TIMEOUT is None  # a report run in this process leaves no limit behind for later callers
