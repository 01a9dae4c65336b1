"""The thread policy (nnparity/threads.py) and the test tiers (make test, make test-all)."""

import json
import os
import subprocess
import sys

import pytest

from nnparity import impls, threads
from nnparity.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_apply_sets_every_framework_variable_the_user_left_unset():
    environ = {}
    record = threads.apply(environ)
    assert environ["OPENBLAS_NUM_THREADS"] == "1" and environ["OMP_NUM_THREADS"] == "1"
    assert environ["TF_NUM_INTRAOP_THREADS"] == environ["TF_NUM_INTEROP_THREADS"] == "1"
    assert "intra_op_parallelism_threads=1" in environ["XLA_FLAGS"]
    assert {v["source"] for v in record["variables"].values()} == {"policy"}


def test_the_users_variable_wins_and_is_recorded_as_theirs():
    environ = {"OMP_NUM_THREADS": "2"}
    record = threads.apply(environ)
    assert environ["OMP_NUM_THREADS"] == "2"
    assert record["variables"]["OMP_NUM_THREADS"] == {"value": "2", "source": "user"}
    assert record["variables"]["OPENBLAS_NUM_THREADS"] == {"value": "1", "source": "policy"}


def test_a_child_process_applies_the_same_policy_and_knows_its_origin():
    """nnparity's own subprocesses inherit the environment: applying again keeps the sources right."""
    environ = {}
    threads.apply(environ)
    child = dict(environ)
    record = threads.apply(child)
    assert child == environ
    assert record["variables"]["OMP_NUM_THREADS"]["source"] == "policy"


def test_override_sets_every_framework():
    environ = {"NNPARITY_THREADS": "2"}
    threads.apply(environ)
    assert environ["OMP_NUM_THREADS"] == environ["OPENBLAS_NUM_THREADS"] == environ["TF_NUM_INTRAOP_THREADS"] == "2"
    assert "intra_op_parallelism_threads=2" in environ["XLA_FLAGS"]
    assert "multi_thread_eigen=false" not in environ["XLA_FLAGS"]


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_a_bad_override_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="NNPARITY_THREADS"):
        threads.policy({"NNPARITY_THREADS": bad})


def _run(args, **env):
    """The command line in a fresh process whose environment has none of the policy's variables (as a user's)."""
    ours = {variable for variables in threads.VARIABLES.values() for variable in variables}
    environ = {k: v for k, v in os.environ.items() if k not in ours | {threads.MARK}}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "nnparity", *args], capture_output=True, text=True, cwd=ROOT,
                          env=environ, timeout=300)


def test_a_bad_override_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "r"
    result = _run(["report", "--impl", "numpy,torch", "--out", str(out)], NNPARITY_THREADS="many")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "NNPARITY_THREADS" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_env_json_records_the_policy_and_numpys_pool_follows_it(tmp_path):
    out = tmp_path / "r"
    result = _run(["report", "--impl", "numpy,torch", "--cases", "l1-logreg-float64-fullbatch", "--no-selftest",
                   "--no-catalogue", "--out", str(out), "--jobs", "1"])  # in the command's own process
    assert result.returncode == 0, result.stderr
    env = json.loads((out / "env.json").read_text())
    assert env["threads"]["policy"] == threads.POLICY
    assert env["threads"]["variables"]["OMP_NUM_THREADS"] == {"value": "1", "source": "policy"}
    assert env["torch"]["num_threads"] == threads.POLICY["torch"]
    pools = [p for p in env["blas"]["threadpools"] if p.get("user_api") == "blas" and p["id"].startswith("numpy/")]
    assert pools and all(p["num_threads"] == threads.POLICY["numpy"] for p in pools)


def _collected(*args):
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "parity_tests/test_parity_grid.py", *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_quick_tier_runs_a_subset_of_the_full_tiers_pairs_and_every_implementation_in_both():
    """make test (quick) runs a subset of the pairs make test-all (``--full``) runs, every implementation in both,
    and nothing but the pair tests differs between the tiers."""
    quick, full = _collected(), _collected("--full")
    quick_pairs = [t for t in quick if "::test_parity[" in t]
    full_pairs = [t for t in full if "::test_parity[" in t]
    assert set(quick) <= set(full) and set(quick) - set(quick_pairs) == set(full) - set(full_pairs)
    assert 0 < len(quick_pairs) < len(full_pairs) / 2 and len(full_pairs) >= 200
    for name in impls.frameworks():
        assert any(t.endswith(f"-{name}]") for t in quick_pairs), name
