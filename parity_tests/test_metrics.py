"""The comparison core (``nnparity.metrics``) on hand-made arrays whose answers are known without it: ulp
distances from IEEE bit patterns, errors and bound ratios from exact binary fractions, and the mismatch message
of a constructed failure; then the harness's and ``nnparity check``'s failing rows carry that message."""

import numpy as np
import pytest

from nnparity import grid, harness, metrics
from nnparity.check.battery import compare
from nnparity.check.course import Expect
from nnparity.numbers import number
from nnparity.testing import reference_run
from reference import model as reference_model

ONE_F32_BITS = 0x3F800000  # 1.0f: the number of float32 values from +0 up to 1.0
ONE_F64_BITS = 0x3FF0000000000000
TINY32 = 2.0 ** -149  # the smallest float32 subnormal


# ----------------------------------------------------------------------------------------------- ulps

@pytest.mark.parametrize("a, b, dtype, ulps", [
    (1.0, 1.0, "float32", 0),
    (1.0, float(np.nextafter(np.float32(1), np.float32(2))), "float32", 1),
    (1.0, 1.0 - 2.0 ** -24, "float32", 1),  # below 1 the spacing halves
    (1.0, 1.0 + 2.0 ** -52, "float64", 1),
    (0.0, -0.0, "float32", 0),  # the two zeros are one point on the line
    (TINY32, 0.0, "float32", 1),
    (TINY32, -TINY32, "float32", 2),  # across zero: -tiny, 0, +tiny
    (1.0, -1.0, "float32", 2 * ONE_F32_BITS),  # between signs: both halves of the line
    (1.0, -1.0, "float64", 2 * ONE_F64_BITS),
    (float(np.finfo(np.float32).max), np.inf, "float32", 1),
])
def test_ulp_distance_counts_the_representable_numbers_between(a, b, dtype, ulps):
    assert metrics.ulp_distance(np.array([a]), np.array([b]), dtype)[0] == ulps
    assert metrics.ulp_distance(np.array([b]), np.array([a]), dtype)[0] == ulps


def test_ulp_distance_and_max_ulp_with_nan():
    a = np.array([np.nan, np.nan, 1.0])
    b = np.array([np.nan, 1.0, 1.0])
    d = metrics.ulp_distance(a, b, "float64")
    assert d[0] == 0 and np.isnan(d[1]) and d[2] == 0
    assert metrics.max_ulp(a, b, "float64") == np.inf
    assert metrics.max_ulp(a[[0, 2]], b[[0, 2]], "float64") == 0
    assert harness.max_ulp is metrics.max_ulp and harness.ulp_distance is metrics.ulp_distance  # re-exported


# ----------------------------------------------------------------------------------------------- errors

def test_errors_normwise_and_elementwise():
    a, b = np.array([1.5, 4.0]), np.array([1.0, 4.0])
    assert metrics.errors(a, b) == (0.5, 0.125, "")  # 0.5 / max|b| = 0.5 / 4
    assert metrics.errors(a, b, relative="elementwise") == (0.5, 0.5, "")  # 0.5 / |b_0| = 0.5 / 1
    assert metrics.normwise_rel_err(a, b) == 0.125
    assert metrics.errors(a, b, ignore=np.array([True, False])) == (0.0, 0.0, "")
    assert metrics.errors([0.0], [0.0]) == (0.0, 0.0, "") and metrics.errors([1.0], [0.0])[1] == np.inf


@pytest.mark.parametrize("a, b, equal", [
    ([1.0, np.nan], [1.0, np.nan], True),
    ([np.inf, 2.0], [np.inf, 2.0], True),
    ([1.0, np.nan], [1.0, 2.0], False),  # NaN where the expected is a number
    ([np.nan, 1.0], [1.0, np.nan], False),  # NaN in both, in other places
    ([np.inf], [-np.inf], False),
    ([1.0], [np.inf], False),
])
def test_non_finite_values_must_sit_in_the_same_places(a, b, equal):
    abs_err, rel_err, note = metrics.errors(a, b)
    if equal:
        assert (abs_err, rel_err, note) == (0.0, 0.0, metrics.NONFINITE_EQUAL)
        assert metrics.bound_ratio(a, b, 0.0) == 0.0
    else:
        assert (abs_err, rel_err, note) == (np.inf, np.inf, metrics.NONFINITE_DIFFER)
        assert metrics.bound_ratio(a, b, np.inf) == np.inf  # not even an infinite bound allows it


def test_errors_of_other_shapes_are_infinite():
    assert metrics.errors(np.zeros((1,)), np.zeros((1, 1))) == (np.inf, np.inf, "shape (1,) != reference (1, 1)")


def test_bound_ratio_is_the_difference_over_2B():
    a, b = np.array([1.5, 4.0, 2.0]), np.array([1.0, 4.0, 2.25])
    assert metrics.bound_ratio(a, b, np.array([0.125, 0.0, 0.25])) == 2.0  # 0.5 / 0.25; equal where B = 0 is 0
    assert metrics.bound_ratio(a, b, 0.0) == np.inf
    assert metrics.bound_ratio(a, b, np.nan) == np.inf  # a NaN bound allows nothing


def test_detect_rel_is_the_most_sensitive_element():
    V, B = np.array([2.0, -4.0, 0.0]), np.array([0.5, 0.25, 1.0])
    assert metrics.detect_rel(V, B) == 0.125  # 2 B / |V| = 0.5, 0.125 (and V = 0 cannot be scaled)
    assert metrics.detect_rel(V, B, limit=0.1) == 0.1
    assert metrics.detect_rel(np.zeros(3), B) == np.inf


def test_classify():
    assert [metrics.classify(u, True) for u in (0, 4, 5)] == ["identical", "<=4 ulp", "within bound"]
    assert metrics.classify(0, True, drifted=True) == "drifted" and metrics.classify(0, False) == "fail"
    assert set(harness.CLASSES) == {"identical", "<=4 ulp", "within bound", "drifted", "fail"}


# ----------------------------------------------------------------------------------------------- mismatch

def _constructed():
    """A 3 x 4 float32 array of 0.5 with three elements moved: by 2^-21 (within 2B = 2^-20), 2^-19 (twice 2B)
    and 2^-18 (four times: the worst)."""
    expected = np.full((3, 4), 0.5, dtype=np.float32)
    actual = expected.copy()
    actual[0, 1] += 2.0 ** -21
    actual[1, 2] -= 2.0 ** -19
    actual[2, 3] += 2.0 ** -18
    return actual, expected, np.full((3, 4), 2.0 ** -20)


def test_mismatch_counts_finds_the_worst_and_names_the_bound():
    actual, expected, twoB = _constructed()
    found = metrics.mismatch(actual, expected, twoB, "2B")
    assert not found.passed and (found.over, found.size, found.index) == (2, 12, (2, 3))
    assert (found.actual, found.expected, found.difference, found.allowed) == (0.5 + 2.0 ** -18, 0.5, 2.0 ** -18,
                                                                                2.0 ** -20)
    assert found.bound_ratio == 4.0
    # 0.5 + 2^-18 = 0.500003814697..., whose shortest float32 text is 0.5000038; 2^-18 = 3.81e-6, 2^-20 = 9.54e-7
    assert found.message == ("Mismatched elements: 2 / 12 (16.7%); worst difference 3.8e-6 at index (2, 3) "
                             "(actual 0.5000038, expected 0.5); allowed 2B = 9.5e-7 there")


def test_mismatch_passes_within_the_bound_and_ignores_what_it_is_told_to():
    actual, expected, twoB = _constructed()
    assert metrics.mismatch(actual, expected, 4 * twoB).passed
    assert metrics.mismatch(actual, expected, 4 * twoB).message == ""
    ignored = np.zeros((3, 4), dtype=bool)
    ignored[2, 3] = True
    found = metrics.mismatch(actual, expected, twoB, "2B", ignore=ignored)
    assert (found.over, found.index, found.bound_ratio) == (1, (1, 2), 2.0)


def test_mismatch_a_nan_is_the_worst_element_whatever_the_bound():
    actual, expected, twoB = _constructed()
    actual[1, 0] = np.nan
    found = metrics.mismatch(actual, expected, np.inf)
    assert (found.over, found.index) == (1, (1, 0))
    assert "worst difference inf at index (1, 0) (actual nan, expected 0.5); allowed inf there" in found.message
    found = metrics.mismatch(actual, expected, twoB)
    assert (found.over, found.index) == (3, (1, 0))


def test_mismatch_with_a_second_limit_names_the_one_that_applies():
    actual, expected = np.array([4.0 + 2.0 ** -10, 1.0 + 2.0 ** -12]), np.array([4.0, 1.0])
    found = metrics.mismatch(actual, expected, 1.0, "2B", limit=2.0 ** -11, limit_name="L")
    assert (found.over, found.index, found.allowed, found.allowed_name) == (1, (0,), 2.0 ** -11, "L")
    assert found.message == ("Mismatched elements: 1 / 2 (50%); worst difference 0.00098 at index (0,) "
                             "(actual 4.0009766, expected 4.0); allowed L = 0.00049 there")


def test_mismatch_of_a_scalar_has_no_index_and_float64_values_are_exact():
    found = metrics.mismatch(np.float64(1.0) / 3, 0.25, 2.0 ** -4)
    assert found.message == ("Mismatched elements: 1 / 1 (100%); worst difference 0.083 (actual 0.3333333333333333, "
                             "expected 0.25); allowed 0.062 there")


# ----------------------------------------------------------------------------------------------- the callers

SMALL32 = grid.case_for(2, "tanh", "float32", True, epochs=1)


class ScaledDW1:
    """The reference as an implementation whose dW1 is 1.001 times the reference's."""

    name = "scaled-dW1"

    def forward_backward(self, parameters, X, Y, case, masks=None):
        result = reference_model.forward_backward(parameters, X, Y, case, masks)
        return {**result, "dW1": result["dW1"] * np.float32(1.001)}


def test_a_failing_harness_row_says_how_many_elements_where_and_the_bound():
    ref = reference_run(SMALL32, trajectory=False)
    captured = ScaledDW1().forward_backward(ref.parameters, ref.X0, ref.Y0, ref.case, None)
    rows = harness.compare_capture(ref.case, ScaledDW1(), captured, ref.capture, ref.bounds)
    row = next(r for r in rows if (r["quantity"], r["layer"]) == ("dW", 1))
    assert not row["passed"] and all(r["passed"] for r in rows if r is not row)
    # the answer, from the arrays themselves
    got, want = captured["dW1"], ref.capture["dW1"]
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    twoB = 2 * ref.bounds["dW1"]
    over = diff > twoB
    worst = np.unravel_index(np.argmax(np.where(over, diff / twoB, -1)), want.shape)
    assert over.sum() > 0
    assert row["note"] == (f"Mismatched elements: {over.sum()} / {want.size} ({number(100 * over.mean(), '.3g')}%); "
                           f"worst difference {number(diff[worst])} at index {tuple(int(i) for i in worst)} "
                           f"(actual {str(got[worst])}, expected {str(want[worst])}); "
                           f"allowed 2B = {number(twoB[worst])} there")
    frame = harness.compare_impl(ref, ScaledDW1(), (harness.CAPTURES,))
    assert row["note"] in harness.describe_failures(frame)


def test_a_failing_check_row_has_the_same_message():
    expect = Expect(np.array([[0.25, -0.5, 1.0]]), np.array(2.0 ** -20))
    passed, fields = compare(expect, np.array([[0.25, -2.5, 5.0]]), "float64")
    assert not passed
    assert fields["message"] == ("Mismatched elements: 2 / 3 (66.7%); worst difference 4 at index (0, 2) "
                                 "(actual 5.0, expected 1.0); allowed 9.5e-7 there")
    assert (fields["max_abs_err"], fields["max_rel_err"], fields["bound_ratio"]) == (4.0, 4.0, 4.0 * 2 ** 20)
