"""The parity tests' pytest hooks and fixtures: the tiers (``--full``), the markers, the compiled steps' reset.

The battery itself (``pairs``, ``reference_run``, ``check_parity``: the reference runs once per case and every
implementation is compared with it) is public, in ``nnparity.testing``; any pytest suite can run it."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a clean clone without an install, too
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pytest-xdist fills every core already: a report a test runs works in its own process unless it asks for --jobs.
os.environ.setdefault("NNPARITY_JOBS", "1")
# JAX's persistent compilation cache (jax_impl/__init__.py): the tests use the cache nnparity itself uses,
# NNPARITY_JAX_CACHE if set, else the user's ~/.cache/nnparity/jax, so that a second make test (or a make test
# after a make report) loads what the first compiled instead of compiling it again (issue 22: on a warm cache the
# JAX pairs take about 40 % of their cold time).  A cached executable gives the same bits as a fresh compile:
# JAX's key hashes everything that changes the program (jax_impl/__init__.py), and
# test_jax.py::test_compilation_cache_gives_the_same_bits compares runs with and without it, in a cache of its
# own.  xdist's workers and every process a test starts share it: JAX writes a file per key with a plain write
# and no lock (jax/_src/lru_cache.py); an entry read while another process writes it fails zlib's checksum, and
# JAX then warns and compiles: never a wrong program.  NNPARITY_JAX_CACHE=off compiles everything afresh.  Where
# the user's cache cannot be written (a read-only home), the run uses a fresh directory of its own, removed at exit.
if "NNPARITY_JAX_CACHE" not in os.environ:
    from nnparity.caches import unwritable, user_cache

    cache = user_cache("jax")
    if unwritable(cache) is not None:
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
    config.addinivalue_line("markers", "pair: a parity pair's test (``nnparity.testing.pairs``): it may reuse the "
                                       "steps the implementations compiled for earlier tests")


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
