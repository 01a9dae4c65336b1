"""The comparison core: one array against the one it should equal, elementwise.

Used by the harness (``nnparity.harness``), the catalogue (``nnparity.catalogue``), ``nnparity check``
(``nnparity.check.battery``) and the tests, so that every place measures the same way:

* ``differences``: ``|actual - expected|`` per element, where the same non-finite value in both (equal
  infinities, NaN and NaN) is no difference and a non-finite value in one only is an infinite one;
* ``errors``: the largest of them and the relative error (norm-wise, or elementwise);
* ``ulp_distance`` / ``max_ulp``: distances in units in the last place;
* ``ratios`` / ``bound_ratio``: differences over the allowed difference (``2 B`` in the harness);
* ``detect_rel``: the detection power of an elementwise gate;
* ``classify``: a row's class, one of ``nnparity.harness.CLASSES`` (documented there, with the rows' columns);
* ``mismatch``: the verdict of an elementwise gate and its message, in the style of
  ``torch.testing.assert_close``: how many elements are over, the worst one's index and both values, and what
  was allowed there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnparity.numbers import number

#: The note of a comparison whose non-finite values (NaN, infinities) are not where the expected ones are.
NONFINITE_DIFFER = "non-finite values differ from the reference's"
#: The note of a comparison whose non-finite values are the same in both.
NONFINITE_EQUAL = "non-finite values, equal in both"


def _float64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def nonfinite_mismatch(actual, expected) -> np.ndarray:
    """Where one of the two is non-finite and the other does not hold the same value (an infinity of the same
    sign, or NaN where the other is NaN)."""
    a, b = _float64(actual), _float64(expected)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return (~np.isfinite(a) | ~np.isfinite(b)) & ~same


def differences(actual, expected) -> np.ndarray:
    """``|actual - expected|`` per element in float64: 0 where both hold the same non-finite value, inf where
    a non-finite value in one is not the same in the other (NaN where the other is a number, say)."""
    a, b = _float64(actual), _float64(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - b)
    diff = np.where(nonfinite_mismatch(a, b), np.inf, diff)
    return np.where(np.isnan(diff), 0.0, diff)  # what is left NaN is inf - inf or NaN - NaN of equal values


def scale(expected) -> float:
    """``max |expected|`` over its finite values (0 where there are none): the norm-wise relative error's scale."""
    b = _float64(expected)
    finite = np.isfinite(b)
    return float(np.abs(b[finite]).max()) if finite.any() else 0.0


def errors(actual, expected, relative: str = "normwise", ignore=None):
    """``(max |actual - expected|, relative error, note)``.

    ``relative="normwise"`` (the harness, the catalogue): ``max |actual - expected| / max |expected|``, the
    maximum over the finite expected values; ``"elementwise"`` (``nnparity check``):
    ``max |actual_i - expected_i| / |expected_i|``.  Non-finite values must sit in the same places with the
    same value: where they do not, both errors are inf and the note is ``NONFINITE_DIFFER``; where they do,
    they count as equal and the note is ``NONFINITE_EQUAL``.  Shapes that differ: inf, inf and a note that
    says so.  ``ignore``: a mask of elements not compared (counted as equal)."""
    a, b = _float64(actual), _float64(expected)
    if a.shape != b.shape:
        return np.inf, np.inf, f"shape {a.shape} != reference {b.shape}"
    diff = differences(a, b)
    if ignore is not None:
        diff = np.where(ignore, 0.0, diff)
    abs_err = float(diff.max()) if diff.size else 0.0
    if relative == "normwise":
        norm = scale(b)
        rel_err = abs_err / norm if norm > 0 else (0.0 if abs_err == 0 else np.inf)
    elif relative == "elementwise":
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(diff == 0, 0.0, diff / np.abs(b))
        rel_err = float(np.nan_to_num(rel, nan=np.inf).max()) if rel.size else 0.0
    else:
        raise ValueError(f"relative is 'normwise' or 'elementwise', not {relative!r}")
    mismatch_ = nonfinite_mismatch(a, b)
    if ignore is not None:
        mismatch_ = mismatch_ & ~np.asarray(ignore, dtype=bool)
    if mismatch_.any():
        return np.inf, np.inf, NONFINITE_DIFFER
    note = NONFINITE_EQUAL if not (np.isfinite(a).all() and np.isfinite(b).all()) else ""
    return abs_err, rel_err, note


def normwise_rel_err(actual, expected) -> float:
    """The norm-wise relative error ``max |actual - expected| / max |expected|`` (float64; see ``errors``)."""
    return errors(actual, expected)[1]


def ratios(actual, expected, allowed, ignore=None) -> np.ndarray:
    """``|actual - expected| / allowed`` per element: 0 where they are equal (whatever is allowed), inf where a
    non-finite value is not matched or the allowed difference is NaN."""
    diff = differences(actual, expected)
    allowed = np.broadcast_to(_float64(allowed), diff.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ratio = np.where(nonfinite_mismatch(actual, expected), np.inf, ratio)  # even where inf is allowed
    return ratio if ignore is None else np.where(ignore, 0.0, ratio)


def bound_ratio(actual, expected, B) -> float:
    """The harness's bound ratio: ``max |actual - expected| / (2 B)``, B the rounding bound of each (from
    ``nnparity.tolerances.bounds``); <= 1 passes."""
    ratio = ratios(actual, expected, 2 * _float64(B))
    return float(ratio.max()) if ratio.size else 0.0


def ulp_distance(a, b, dtype) -> np.ndarray:
    """Elementwise distance in units in the last place of ``dtype``: how many representable
    numbers lie between a and b (0 = bit-for-bit equal; NaN where either is NaN)."""
    itype = {"float64": np.int64, "float32": np.int32}[dtype]
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)

    def ordinal(x):  # sign-magnitude bit patterns -> a monotonic integer line
        i = x.view(itype).astype(np.int64)
        return np.where(i < 0, np.iinfo(itype).min - i, i)

    oa, ob = ordinal(a), ordinal(b)
    with np.errstate(over="ignore"):  # unsigned wrap-around gives the exact difference (< 2**64)
        d = np.where(oa >= ob, oa.astype(np.uint64) - ob.astype(np.uint64),
                     ob.astype(np.uint64) - oa.astype(np.uint64)).astype(np.float64)
    return np.where(np.isnan(a) | np.isnan(b), np.where(np.isnan(a) & np.isnan(b), 0.0, np.nan), d)


def max_ulp(a, b, dtype) -> float:
    """Largest ulp distance; inf where a NaN in one is not a NaN in the other."""
    d = ulp_distance(a, b, dtype)
    return np.inf if np.isnan(d).any() else float(d.max(initial=0.0))


def classify(max_ulp_value, passed, drifted=False) -> str:
    """``identical`` / ``<=4 ulp`` / ``within bound`` / ``drifted`` / ``fail`` (``nnparity.harness.CLASSES``, best
    first: bit-for-bit equal, within 4 units in the last place, within the derived bound, drifted, failing)."""
    if not passed:
        return "fail"
    if drifted:
        return "drifted"
    if max_ulp_value == 0:
        return "identical"
    if max_ulp_value <= 4:
        return "<=4 ulp"
    return "within bound"


def detect_rel(reference, bound, limit=np.inf) -> float:
    """Detection power of a row: the smallest relative change its tolerance flags.

    An elementwise gate ``|impl - ref| <= 2 B`` on values V: a bug scaling the quantity by ``1 + delta`` moves
    element i by ``delta |V_i|`` and is flagged once ``delta > min_i 2 B_i / |V_i|`` (the most sensitive
    element).  ``limit``: a relative criterion in force beside it (float64 at step 0: ``FLOAT64_NORMWISE``;
    a float64 trajectory: ``FLOAT64_TRAJECTORY``), the smaller of the two.  inf: no power (all V zero or
    non-finite, or no gate)."""
    V = np.abs(np.asarray(reference, dtype=np.float64))
    twoB = np.broadcast_to(2 * np.asarray(bound, dtype=np.float64), V.shape)
    usable = np.isfinite(V) & (V > 0) & np.isfinite(twoB)
    sensitivity = float(np.min(twoB[usable] / V[usable])) if usable.any() else np.inf
    return min(sensitivity, float(limit))


def exact(x) -> str:
    """A compared value as short exact text: the shortest that reads back as the same float32 where the value
    is one (``0.5120001``), else as the same float64; ``nan``, ``inf``."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    with np.errstate(over="ignore"):
        single = np.float32(x)
    return str(single) if float(single) == x else repr(x)


@dataclass(frozen=True)
class Mismatch:
    """The verdict of an elementwise gate ``|actual - expected| <= allowed`` (see ``mismatch``)."""

    passed: bool
    over: int  # elements over what is allowed (a non-finite value that is not matched always is)
    size: int
    index: tuple | None  # the worst element (largest difference over what is allowed there); None if none is over
    actual: float = np.nan
    expected: float = np.nan
    difference: float = np.nan
    allowed: float = np.nan
    allowed_name: str = ""  # what ``allowed`` is at the worst element: ``2B``, ``1e-12 max|ref|`` ...
    bound_ratio: float = 0.0  # max |actual - expected| / allowed over every element

    @property
    def message(self) -> str:
        """``Mismatched elements: 3 / 1200 (0.25%); worst difference 3.6e-7 at index (2, 17) (actual 0.5120001,
        expected 0.5119997); allowed 2B = 1.9e-7 there``, or "" where it passed.  The values are exact (the
        shortest text that reads back as the same float32, or float64), the difference and bound to 2 digits."""
        if self.passed:
            return ""
        share = number(100.0 * self.over / self.size if self.size else 100.0, ".3g")
        where = f" at index {self.index}" if self.index else ""
        name = f"{self.allowed_name} = " if self.allowed_name else ""
        return (f"Mismatched elements: {self.over} / {self.size} ({share}%); worst difference "
                f"{number(self.difference, nan='nan')}{where} (actual {exact(self.actual)}, expected "
                f"{exact(self.expected)}); allowed {name}{number(self.allowed, nan='nan')} there")


def mismatch(actual, expected, allowed, name: str = "", *, limit=None, limit_name: str = "",
             ignore=None) -> Mismatch:
    """Compare elementwise: an element is over where ``|actual - expected| > allowed`` there (``allowed``:
    broadcast to the shape; ``name`` says what it is, e.g. ``2B``), or where a non-finite value is not matched.

    ``limit``: a second allowance in force beside it, one number for every element (the harness's float64
    norm-wise promise: ``1e-12 max|ref|``, named ``limit_name``); each element is held to the smaller of the
    two, and the message names the one that applies at the worst element.  ``ignore``: elements not compared.
    The worst element is the one furthest over what is allowed there (the largest ratio)."""
    a, b = _float64(actual), _float64(expected)
    if a.shape != b.shape:
        raise ValueError(f"mismatch compares arrays of one shape, not {a.shape} and {b.shape}")
    diff = differences(a, b)
    names = np.full(diff.shape, 0, dtype=np.int8)
    allowed = np.broadcast_to(_float64(allowed), diff.shape)
    if limit is not None:
        names = np.where(limit < allowed, 1, 0).astype(np.int8)
        allowed = np.minimum(allowed, float(limit))
    ratio = ratios(a, b, allowed, ignore=ignore)
    over = ratio > 1
    bound_ratio_ = float(ratio.max()) if ratio.size else 0.0
    if not over.any():
        return Mismatch(True, 0, int(diff.size), None, bound_ratio=bound_ratio_)
    flat = int(np.argmax(np.where(over, ratio, -1.0)))
    index = tuple(int(i) for i in np.unravel_index(flat, diff.shape)) if diff.shape else ()
    return Mismatch(False, int(over.sum()), int(diff.size), index, actual=float(a[index]), expected=float(b[index]),
                    difference=float(diff[index]), allowed=float(allowed[index]),
                    allowed_name=limit_name if names[index] else name, bound_ratio=bound_ratio_)
