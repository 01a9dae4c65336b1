"""Shared fixtures: the reference runs once per case and every implementation is compared with it."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a clean clone without an install, too
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pytest-xdist fills every core already: a report a test runs works in its own process unless it asks for --jobs.
os.environ.setdefault("NNPARITY_JOBS", "1")
# JAX's persistent compilation cache (jax_impl/__init__.py), set before jax loads: not the user's cache, one fresh
# directory per run.  The process that loads this first (xdist's controller, or pytest -n 0) makes it and removes
# it at exit; xdist's workers and every process a test starts inherit it, so they share each other's compiles.
# Processes side by side may share it: JAX writes a file per key (put skips a key whose file is there) with a
# plain write and no lock (jax/_src/lru_cache.py, no size limit set); an entry read while another process writes
# it fails zlib's checksum, and JAX then warns and compiles: never a wrong program.
if "NNPARITY_JAX_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["NNPARITY_JAX_CACHE"] = tempfile.mkdtemp(prefix="nnparity-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["NNPARITY_JAX_CACHE"], ignore_errors=True)

from nnparity import threads  # noqa: E402  (the policy must be in the environment before numpy loads)

threads.apply()

import pytest  # noqa: E402


def pytest_addoption(parser):
    from nnparity.tiers import FULL_HELP

    parser.addoption("--full", action="store_true", help=FULL_HELP + "; make test-all and CI pass it")


def pytest_configure(config):
    config.addinivalue_line("markers", "tiers(*names): the tiers (quick, full) that run the test; without the "
                                       "marker both do.  A parity pair's test is in the quick tier when its case is "
                                       "in the grid's cover (nnparity.grid.for_impl)")
    config.addinivalue_line("markers", "pair: a parity pair's test (``pairs``): it may reuse the steps the "
                                       "implementations compiled for earlier tests")


def pytest_sessionfinish(session, exitstatus):
    """With ``NNPARITY_TIMINGS_DIR`` set (``nnparity bench --suite tests``): this process's seconds per
    implementation and phase (``nnparity.timing``) as a JSON file in that directory, one per xdist worker (and one,
    empty, from the controller that only hands out the tests)."""
    from nnparity import timing

    directory = os.environ.get(timing.DIRECTORY)
    if directory:  # an xdist worker knows its id from its config (the variable is inherited by a nested pytest)
        timing.write(directory, getattr(session.config, "workerinput", {}).get("workerid", "main"))


def running_tier(config) -> str:
    from nnparity import tiers

    return tiers.tier_of(config.getoption("--full"))


def pytest_collection_modifyitems(config, items):
    """Only the running tier's tests (``make test``: quick, the default; ``make test-all``: ``--full``): the
    others are deselected, not skipped, so nothing is reported as passing that did not run."""
    tier = running_tier(config)
    left_out = [item for item in items if (m := item.get_closest_marker("tiers")) and tier not in m.args]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in set(left_out)]


@pytest.fixture
def tier(request) -> str:
    """The running tier, ``quick`` or ``full``."""
    return running_tier(request.config)


def pairs(cases, names):
    """``(case, impl)`` parameters with ids like ``l4-relu-float32-minibatch-torch``, grouped by case for
    ``pytest-xdist --dist loadgroup`` so that one worker runs a case's reference once for every implementation,
    each marked with the tiers that run it (``nnparity.grid.for_impl``: the quick tier the grid's cover)."""
    from nnparity import grid, impls

    params = []
    for name in names:
        quick, full = (grid.for_impl(cases, impls.get(name), tier) for tier in ("quick", "full"))
        for case in cases:
            run_in = tuple(t for t, chosen in (("quick", quick), ("full", full)) if case in chosen)
            if run_in:
                params.append(pytest.param(case, name, id=f"{case.name}-{name}", marks=(
                    pytest.mark.xdist_group(case.id), pytest.mark.pair, pytest.mark.tiers(*run_in))))
    return params


@pytest.fixture(autouse=True)
def fresh_compiled_steps(request):
    """Every test but a parity pair's starts and ends with nothing compiled (``impls.clear_compiled``).  A step
    traced once per network keeps the code in place when it was traced: a test that patches an implementation
    (``test_checkpoints``' L2 on Keras' biases) would otherwise leave its patched step to a later pair's test of
    the same network, or find an unpatched one and miss its own fault.  The pairs' tests patch nothing and
    share their steps (a case's full- and mini-batch runs are one network)."""
    from nnparity import impls

    clear = impls.clear_compiled if request.node.get_closest_marker("pair") is None else (lambda: None)
    clear()
    yield
    clear()


_REFERENCE_RUNS = {}
KEEP = 8  # the latest reference runs kept: a worker runs a case's tests together (xdist_group), and each holds MBs


def reference_run(case, trajectory=True):
    """The reference's run of ``case``, once per worker while its tests run; ``trajectory=False`` (no per-step
    cost bounds) is served by a full run when one is there already."""
    from nnparity import data, harness

    for key in ((case, True), (case, trajectory)):
        if key in _REFERENCE_RUNS:
            _REFERENCE_RUNS[key] = _REFERENCE_RUNS.pop(key)  # the most recently used last
            return _REFERENCE_RUNS[key]
    run = _REFERENCE_RUNS[case, trajectory] = harness.run_reference(case, data.load_data(case.data),
                                                                    trajectory=trajectory)
    while len(_REFERENCE_RUNS) > KEEP:
        del _REFERENCE_RUNS[next(iter(_REFERENCE_RUNS))]
    return run


def check_parity(case, impl, trajectory=True, tier="full"):
    """The comparison of ``impl`` with the reference on ``case``: every row passes, or, where
    nnparity/divergences.py has a record for the pair, it fails exactly as recorded and passes against
    the record's aligned reference.  Returns the comparison.  ``trajectory=False`` compares every quantity
    but the free-running run (step 0, the first update, every checkpoint, the predictions); ``tier="quick"``
    cuts an eager twin's free run to its horizon (``nnparity.tiers.horizon``); a pair with a divergence record
    is always compared in full, as the record describes it."""
    from nnparity import data, divergences, harness, impls, tiers

    known = divergences.expected(case, impl)
    trajectory = trajectory or known is not None
    horizon = None if known is not None else tiers.horizon(impls.get(impl) if isinstance(impl, str) else impl, tier)
    frame = harness.compare_impl(reference_run(case, trajectory), impl, trajectory=trajectory, horizon=horizon)
    assert set(frame["phase"]) >= {"forward", "backward", "update", "predictions"} | (
        {"trajectory"} if trajectory else set()) | ({"final"} if trajectory and horizon is None else set())
    if known is None:
        assert frame["passed"].all(), "\n" + harness.describe_failures(frame)
        return frame

    def aligned_run(aligned_case, context):
        with context:
            ref = harness.run_reference(aligned_case, data.load_data(aligned_case.data))
        return harness.compare_impl(ref, impl)

    problems = divergences.check(known, case, frame, aligned_run)
    assert not problems, "\n".join(problems)
    return frame
