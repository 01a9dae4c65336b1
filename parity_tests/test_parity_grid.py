"""The parity grid: every implementation against the NumPy reference, quantity by quantity.

L in {1, 2, 4} x hidden activation x dtype x {full batch, mini-batch} x implementation,
ids like ``l4-relu-float32-minibatch-torch``.  A case passes when every forward value and
gradient at step 0, every step's cost, the final parameters and the predictions meet the
tolerances of ``nnparity.tolerances`` (see ``nnparity.harness.trajectory_criterion``).
"""

import dataclasses

import numpy as np
import pytest

from nnparity import grid, harness, impls, tiers
from nnparity.testing import check_parity, parametrize_with_checks, reference_run

CASES = grid.test_grid()


# both tiers, each pair marked with its own; the quick tier: one cover of the three parity grids
@parametrize_with_checks(impls.frameworks(), CASES, tier=None, cover_of=grid.parity_cases())
def test_parity(case, impl, tier):
    """Every quantity passes (step 0, the first update, every checkpoint up to the last step, the free-running
    trajectory, the final parameters, the predictions), or the case diverges exactly as nnparity/divergences.py
    documents.  The quick tier runs the grid's cover and cuts the eager twins' free runs to their horizon; the
    full tier (``--full``) runs every pair to the end."""
    frame = check_parity(case, impl, tier=tier)
    _compared_every_checkpoint(case, frame)
    steps = (frame["phase"] == "trajectory").sum()
    if tier == "full":
        assert steps >= 1000, "every grid run is at least 1000 gradient steps"
    else:
        assert steps >= min(tiers.EAGER_HORIZON, len(reference_run(case).costs))


def _compared_every_checkpoint(case, frame):
    steps = len(reference_run(case, trajectory=False).costs)
    assert set(frame.loc[frame["phase"] == "forward", "step"]) >= {0, 1, 2, 5, steps // 2, steps - 1}


def test_grid_covers_the_issue():
    """L in {1,2,4}, four hidden activations (L > 1), two dtypes, full and mini-batch: 36 cases."""
    seen = {(c.L, c.hidden_activation if c.L > 1 else "-", c.dtype, c.batch_size is None) for c in CASES}
    assert len(CASES) == len(seen) == 4 + 2 * 16
    assert {c.L for c in CASES} == {1, 2, 4}


@pytest.mark.parametrize("impl", impls.frameworks())
def test_a_constant_rounded_to_float32_fails_in_float64(impl):
    """A leaky slope of float32(0.01) = 0.009999999776 (what tf.nn.leaky_relu's float32 alpha attribute
    gives in float64) is a 2e-8 relative change: the float64 tolerances catch it at its first use, A1."""
    case = grid.case_for(2, "leaky_relu", "float64", False, epochs=50)
    ref = reference_run(case)
    rounded = dataclasses.replace(case, leaky_slope=float(np.float32(case.leaky_slope)))
    frame = harness.compare_impl(dataclasses.replace(ref, case=rounded), impl)
    first = harness.failures(frame).iloc[0]
    assert (first["phase"], first["quantity"], first["layer"]) == ("forward", "A", 1)
