"""The conv grid: every implementation's conv and pool chain against the NumPy reference's loops.

Each case of ``nnparity.convspec.conv_grid`` (stride, padding, filter sizes, both pooling modes, the digits, the
course's 64x64x3 shape; float64 and float32) with every framework implementation: every quantity of the chain
(``Z``, ``A``, ``dZ``, ``dA_prev``, ``dW``, ``db``) within twice its derived rounding bound, float64 also to 1e-12
norm-wise (``nnparity.conv_harness``).  Both tiers run the whole grid: a pair takes well under a second.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from nnparity import conv_harness, divergences, harness, impls
from nnparity.convspec import QUANTITIES, conv_grid
from nnparity.testing import registered_mark

CASES = conv_grid()


@lru_cache(maxsize=None)
def reference(case):
    return conv_harness.run_reference(case)


@pytest.mark.parametrize("impl", impls.frameworks())
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[m for m in [registered_mark("xdist_group", c.id)]
                                                                   if m]) for c in CASES])
def test_conv_parity(case, impl):
    """Every quantity passes, or the pair diverges exactly as its record says (nnparity/divergences.py: max-pool
    backward on tied maxima) and passes against the record's aligned reference."""
    frame = conv_harness.compare_conv(reference(case), impl)
    assert list(frame["quantity"]) == list(QUANTITIES), frame[["phase", "quantity", "note"]].to_string()
    judged = divergences.assess(case, impl, frame)
    assert judged.ok, judged.message()
    if judged.record is None:
        assert frame["passed"].all(), harness.describe_failures(frame)
        if case.dtype == "float64":
            assert (frame["max_rel_err"] <= 1e-12).all()
    else:
        assert judged.diverged and judged.record.id.startswith("maxpool-tied-gradient-")


def test_tied_maxima_diverge_only_at_dZ_and_what_follows_it():
    """On the digits with max pooling the frameworks agree with the course on Z and A (the forward has no choice to
    make) and part at dZ, the first quantity routed through the mask, then dA_prev and db; dW still agrees: a window
    ties only where it reads blank cells alone (its Z is b exactly), so its share of dW, a_slice * dZ, is zero."""
    case = next(c for c in CASES if c.data == "digits" and c.mode == "max" and c.dtype == "float64")
    frame = conv_harness.compare_conv(reference(case), "torch")
    assert frame.set_index("quantity")["passed"].to_dict() == {
        "Z": True, "A": True, "dZ": False, "dA_prev": False, "dW": True, "db": False}
    assert frame.set_index("quantity").loc["dZ", "max_abs_err"] > 0.1


def test_the_grid_meets_every_hyper_parameter():
    """Strides 1 and 2, padding 0 to 3, filters 1 to 7, both pooling modes, overlapping and non-overlapping
    pooling windows, generated images and the digits, a non-square input, both dtypes."""
    assert {c.stride for c in CASES} == {1, 2}
    assert {c.pad for c in CASES} == {0, 1, 2, 3}
    assert {1, 2, 3, 4, 5, 7} <= {c.f for c in CASES}
    assert {c.mode for c in CASES} == {"max", "average"}
    assert any(c.pool_stride < c.pool_f for c in CASES) and any(c.pool_stride == c.pool_f for c in CASES)
    assert {c.data for c in CASES} == {"generated", "digits"}
    assert any(c.n_H_prev != c.n_W_prev for c in CASES)
    assert {c.dtype for c in CASES} == {"float64", "float32"}


class _Faulty:
    """An implementation whose conv chain is the reference's with one change made to its result."""

    name, offers_conv, conv_module = "faulty", True, "reference.conv"

    def __init__(self, change):
        self.change = change

    def _load(self, module=None):
        return None

    def conv_forward_backward(self, A_prev, W, b, dA, case):
        from reference.conv_vectorised import forward_backward

        return self.change(forward_backward(A_prev, W, b, dA, case), case)


def _scaled(key, factor):
    def change(result, case):
        result[key] = (result[key] * factor).astype(result[key].dtype)
        return result
    return change


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("key, factor", [("dW", 1 / 2), ("db", 1 + 1e-3), ("dA_prev", -1), ("Z", 1 + 1e-4)])
def test_a_changed_quantity_fails_with_where_and_by_how_much(dtype, key, factor):
    """dW divided by m = 2 (a mean where the course sums), db off by 1e-3, dA_prev's sign, Z off by 1e-4: each fails
    at its own row, with the count of elements over the bound and the worst one in the note."""
    case = CASES[0].replace(dtype=dtype)
    frame = conv_harness.compare_conv(reference(case), _Faulty(_scaled(key, factor)))
    failing = frame[~frame["passed"]]
    assert list(failing["quantity"]) == [key]
    assert failing["bound_ratio"].iloc[0] > 10
    note = failing["note"].iloc[0]
    assert note.startswith("Mismatched elements: ") and "worst difference" in note and "allowed 2B" in note, note


def test_what_cannot_be_compared_fails_and_says_why():
    case = CASES[0]

    def raising(result, case):
        raise ValueError("shapes do not align")

    def wrong_dtype(result, case):
        return {**result, "dW": result["dW"].astype(np.float32)}

    def missing(result, case):
        return {k: v for k, v in result.items() if k != "db"}

    raised = conv_harness.compare_conv(reference(case), _Faulty(raising))
    assert not raised["passed"].any() and raised["note"].str.contains("raised ValueError: shapes do not align").all()
    dtype = conv_harness.compare_conv(reference(case), _Faulty(wrong_dtype))
    assert dtype.loc[~dtype["passed"], "note"].tolist() == ["dW from conv forward_backward is float32, the case is "
                                                            "float64"]
    absent = conv_harness.compare_conv(reference(case), _Faulty(missing))
    assert absent.loc[~absent["passed"], "note"].tolist() == ["db is missing from conv forward_backward's result"]


def test_an_implementation_without_conv_layers_says_so():
    class Dense:
        name, offers_conv = "dense-only", False

    frame = conv_harness.compare_conv(reference(CASES[0]), Dense())
    assert frame["phase"].tolist() == ["unavailable"]
    assert "no conv layers" in frame["note"].iloc[0]


def test_the_reports_conv_section_tells_a_recorded_divergence_from_a_failure():
    """The tied-maxima case shows as expected, its record named under the table; a pair that fails without a record
    is in bold with its ratio; a passing pair shows its ratio."""
    from reports.sections import conv_section

    tied = next(c for c in CASES if c.data == "digits" and c.mode == "max" and c.dtype == "float64")
    plain = CASES[0]
    recorded = conv_harness.compare_conv(reference(tied), "torch")
    recorded["divergence"] = divergences.recorded(tied, "torch", recorded)
    failing = conv_harness.compare_conv(reference(plain), _Faulty(_scaled("dW", 1 / 2)))
    failing["impl"], failing["divergence"] = "torch", ""
    passing = conv_harness.compare_conv(reference(plain.replace(dtype="float32")), "torch")
    passing["divergence"] = ""
    lines = conv_section(pd.concat([recorded, failing, passing], ignore_index=True)).splitlines()
    row = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in lines if line.startswith("| conv")}
    assert row[tied.id] == "expected"
    assert row[plain.id].startswith("**") and row[plain.id].endswith("**")
    assert not row[plain.replace(dtype="float32").id].startswith("**")
    assert "expected, as recorded: `maxpool-tied-gradient-torch` (torch)." in lines
