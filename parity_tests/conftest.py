"""Shared fixtures: the reference runs once per case and every implementation is compared with it."""

import functools
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a clean clone without an install, too
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nnparity import threads  # noqa: E402  (the policy must be in the environment before numpy loads)

threads.apply()


@functools.lru_cache(maxsize=None)
def reference_run(case):
    from nnparity import data, harness

    return harness.run_reference(case, data.load_data(case.data))


def check_parity(case, impl):
    """The comparison of ``impl`` with the reference on ``case``: every row passes, or, where
    nnparity/divergences.py has a record for the pair, it fails exactly as recorded and passes against
    the record's aligned reference.  Returns the comparison."""
    from nnparity import data, divergences, harness

    frame = harness.compare_impl(reference_run(case), impl)
    assert set(frame["phase"]) >= {"forward", "backward", "trajectory", "update", "final"}
    known = divergences.expected(case, impl)
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
