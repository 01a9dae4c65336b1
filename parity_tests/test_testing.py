"""``nnparity.testing``: the parity battery in a user's own pytest suite (issue 24).

A user's test file, written here, runs ``parametrize_with_checks`` on a user's implementation in a pytest of its
own: the NumPy reference as a user's file passes; the same with dW1 scaled by 1.001 fails, and pytest's output
names the quantity and the bound.  NumPy only, two short cases.
"""

import os
import subprocess
import sys
import textwrap
import types

import pytest

from nnparity import grid, impls
from nnparity.errors import UsageError
from nnparity.testing import check_parity, pairs, parametrize_with_checks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAITHFUL = '''
"""The course's network, written by a user (here: the project's NumPy reference)."""
from reference.model import forward_backward, predictions, train
'''

BROKEN = '''
"""The same, with dW1 scaled by 1.001."""
from reference import model


def forward_backward(parameters, X, Y, case, masks=None):
    grads = model.forward_backward(parameters, X, Y, case, masks)
    grads["dW1"] = grads["dW1"] * 1.001
    return grads


def train(parameters, X, Y, case, schedule=None, masks=None):
    return model.train(parameters, X, Y, case, schedule, masks)
'''

#: The user's test file: {impl} is what it gives ``parametrize_with_checks`` (a path, or a module it imports).
USER_TESTS = '''
import os

from nnparity import grid
from nnparity.testing import check_parity, parametrize_with_checks

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [grid.case_for(2, "tanh", "float64", False, epochs=20),
         grid.case_for(2, "tanh", "float32", True, epochs=2)]
{prelude}

@parametrize_with_checks([{impl}], cases=CASES, tier="full")
def test_my_implementation(case, impl):
    check_parity(case, impl)
'''


def run_user_tests(tmp_path, impl_source, prelude, impl):
    (tmp_path / "my_impl.py").write_text(textwrap.dedent(impl_source))
    tests = tmp_path / "test_user.py"
    tests.write_text(USER_TESTS.format(prelude=prelude, impl=impl))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    # --strict-markers: the battery's marks that this pytest has not registered (pair, tiers, xdist_group
    # without xdist) are left out, not an error
    return subprocess.run([sys.executable, "-m", "pytest", str(tests), "-p", "no:xdist", "-p", "no:cacheprovider",
                           "-q", "-rA", "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_users_faithful_implementation_passes_in_the_users_own_pytest(tmp_path):
    result = run_user_tests(tmp_path, FAITHFUL, "", 'os.path.join(HERE, "my_impl.py")')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout
    for case_id in ("l2-tanh-float64-fullbatch-my_impl", "l2-tanh-float32-minibatch-my_impl"):
        assert f"PASSED test_user.py::test_my_implementation[{case_id}]" in result.stdout


def test_a_broken_implementation_fails_naming_the_quantity_and_the_bound(tmp_path):
    result = run_user_tests(tmp_path, BROKEN, "import my_impl", "my_impl")  # a module object this time
    out = result.stdout
    assert result.returncode == 1, out[-3000:] + result.stderr[-3000:]
    assert "2 failed" in out
    assert "FAILED test_user.py::test_my_implementation[l2-tanh-float64-fullbatch-my_impl]" in out
    # harness.describe_failures: the case, the implementation, the quantity, its step, the bound and the tolerance
    assert "l2-tanh-float64-fullbatch my_impl: backward dW1 step 0: max abs " in out
    line = next(li for li in out.splitlines() if "backward dW1 step 0" in li)
    assert "bound ratio" in line and "(needs bound_ratio<=1" in line and "; tol " in line


def test_ids_name_the_case_and_the_implementation_however_it_is_given(tmp_path):
    path = tmp_path / "my_net.py"
    path.write_text(textwrap.dedent(FAITHFUL))
    module = types.ModuleType("userpkg.my_module")
    exec(textwrap.dedent(FAITHFUL), module.__dict__)

    class Mine:
        name = "mine"
        forward_backward = train = staticmethod(lambda *a, **k: None)

    case = grid.case_for(2, "tanh", "float64", False, epochs=5)
    params = parametrize_with_checks(["numpy", str(path), module, Mine()], cases=[case], tier="full").args[1]
    assert [p.id for p in params] == [f"l2-tanh-float64-fullbatch-{n}"
                                      for n in ("numpy", "my_net", "my_module", "mine")]
    assert params[0].values == (case, "numpy") and params[1].values == (case, str(path))  # names reach the test
    assert isinstance(params[2].values[1], impls.External) and params[2].values[1].offers_predictions


def test_the_quick_tier_is_one_cover_of_the_grids_and_none_gives_both_tiers_marked():
    names = [p.id for p in parametrize_with_checks("numpy").args[1]]
    chosen = set(grid.cover(grid.parity_cases()))
    assert names == [f"{c.name}-numpy" for g in grid.parity_grids() for c in g if c in chosen]
    assert len(names) == len(chosen) < len(grid.cover(grid.test_grid()) + grid.cover(grid.training_grid()))
    cases = grid.test_grid()
    both = pairs(cases, ["torch"])
    assert [p.id for p in parametrize_with_checks("torch", cases, tier=None).args[1]] == [p.id for p in both]
    quick = {p.id for p in both if "quick" in next(m for m in p.marks if m.name == "tiers").args}
    assert quick == {p.id for p in parametrize_with_checks("torch", cases).args[1]}
    assert len(both) == len(cases)  # torch runs the whole grid in the full tier


def test_bad_arguments_say_so_at_collection(tmp_path):
    with pytest.raises(ValueError, match="tier='fast'"):
        parametrize_with_checks("numpy", tier="fast")
    with pytest.raises(UsageError, match="no such file"):
        parametrize_with_checks(str(tmp_path / "missing.py"))
    with pytest.raises(UsageError, match="defines no train"):
        parametrize_with_checks(types.SimpleNamespace(forward_backward=print))
    with pytest.raises(UsageError, match="matches no case"):
        parametrize_with_checks("numpy", cases="no-such-case-*")
    assert [p.id for p in parametrize_with_checks("numpy", cases="l1-logreg-float64-*", tier="full").args[1]] == [
        "l1-logreg-float64-fullbatch-numpy", "l1-logreg-float64-minibatch-numpy"]


def test_check_parity_in_process_raises_an_assertion_with_the_harness_message():
    module = types.ModuleType("broken")
    exec(textwrap.dedent(BROKEN), module.__dict__)
    case = grid.case_for(2, "tanh", "float64", False, epochs=5)
    assert check_parity(case, "numpy")["passed"].all()
    with pytest.raises(AssertionError,
                       match=r"backward dW1 step 0: max abs .*, bound ratio .* \(needs bound_ratio<=1.*; tol "):
        check_parity(case, module)


def test_importing_it_imports_neither_pytest_nor_a_framework():
    code = ("import sys, nnparity.testing; "
            "print(sorted(m for m in ('pytest', 'torch', 'tensorflow', 'jax', 'flax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_a_refused_case_fails_with_the_reason_or_skips_when_asked():
    def refuse(*args, **kwargs):
        raise NotImplementedError("no tanh layer here")

    partial = types.SimpleNamespace(name="partial", forward_backward=refuse, train=refuse)
    case = grid.case_for(2, "tanh", "float64", False, epochs=5)
    with pytest.raises(AssertionError, match="l2-tanh-float64-fullbatch: partial: not supported: no tanh layer here"):
        check_parity(case, partial)
    with pytest.raises(pytest.skip.Exception, match="not supported: no tanh layer here"):
        check_parity(case, partial, unsupported="skip")
    with pytest.raises(ValueError, match="unsupported='ignore'"):
        check_parity(case, partial, unsupported="ignore")


def test_xdist_groups_keep_a_group_on_one_worker(tmp_path):
    """``make test``'s ``--dist loadgroup`` runs the tests of one ``xdist_group`` on one worker: a parity case's
    reference once for its implementations, a module's costly fixture once.  pytest 9.2 with pytest-xdist 3.8
    silently ignores every group (xdist sets ``Item._nodeid``, which pytest 9.2 no longer reads), hence the pin in
    pyproject.toml; this test fails if an upgrade breaks the groups again."""
    (tmp_path / "test_grouped.py").write_text(textwrap.dedent('''
        import os
        import pytest

        pytestmark = pytest.mark.xdist_group("module")

        @pytest.mark.parametrize("n", range(8))
        def test_pid(n):
            with open(os.path.join(os.environ["PIDS"], f"{n}"), "w") as file:
                file.write(str(os.getpid()))
    '''))
    pids = tmp_path / "pids"
    pids.mkdir()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                             "--dist", "loadgroup", str(tmp_path / "test_grouped.py")], cwd=tmp_path,
                            env=dict(os.environ, PIDS=str(pids)), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    ran_in = {path.read_text() for path in pids.iterdir()}
    assert len(list(pids.iterdir())) == 8 and len(ran_in) == 1, ran_in
