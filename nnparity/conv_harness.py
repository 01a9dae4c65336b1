"""Conv parity: each implementation's conv and pool chain against the reference's, quantity by quantity.

For a ``ConvCase`` (``nnparity.convspec``) the reference (``reference.conv``, the course's loops) runs once on the
case's inputs; every implementation's ``forward_backward`` (``Impl.conv_forward_backward``) runs on the same
inputs, and each of ``QUANTITIES`` is compared as the dense captures are (``harness.compare_capture``): bound ratio
``max |x - x_ref| / 2B <= 1`` with B the derived rounding bound of the chain (``tolerances.conv_bounds``), and in
float64 also ``FLOAT64_NORMWISE`` norm-wise.  The rows have the harness's columns, phase ``forward`` (Z, A) or
``backward`` (dZ, dA_prev, dW, db), step 0, so details.csv, the summary and every check read them as they read the
dense rows.  Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from nnparity import impls as impl_registry
from nnparity import timing
from nnparity import tolerances as tol
from nnparity.convspec import ConvCase, inputs
from nnparity.harness import _deadline, _failed, _raised, as_frame, compare_capture

WHAT = "conv forward_backward"


@dataclass
class ConvReference:
    """The reference's chain on one case's inputs: its values and their rounding bounds."""

    case: ConvCase
    inputs: dict
    values: dict
    bounds: dict


def run_reference(case: ConvCase) -> ConvReference:
    from reference.conv import forward_backward

    given = inputs(case)
    with timing.phase(impl_registry.REFERENCE, "reference"):
        values = forward_backward(given["A_prev"], given["W"], given["b"], given["dA"], case)
        bounds = tol.conv_bounds(given, case)
    return ConvReference(case, given, values, bounds)


def compare_conv(ref: ConvReference, name) -> pd.DataFrame:
    """Implementation ``name``'s conv chain against the reference's: one row per quantity.  Whatever it does
    (raises, returns wrong shapes or dtypes), the result is rows, failing ones saying what is wrong; a framework
    that is not installed is one ``unavailable`` row, and one without conv layers one row saying so."""
    impl = impl_registry.get(name) if isinstance(name, str) else name
    label = getattr(impl, "name", str(name))
    given = ref.inputs
    try:
        if not getattr(impl, "offers_conv", False):
            raise NotImplementedError("it has no conv layers (Impl.conv_module)")
        with timing.phase(label, "import"):
            impl._load(impl.conv_module)
        try:
            with timing.phase(label, "captures"), _deadline():
                captured = impl.conv_forward_backward(given["A_prev"], given["W"], given["b"], given["dA"], ref.case)
        except (impl_registry.ImplUnavailable, NotImplementedError):
            raise
        except Exception as exc:  # noqa: BLE001 - any error of the implementation becomes failing rows
            problem = _raised(WHAT, exc)
            rows = [_failed("forward" if key in ("Z", "A") else "backward", key, None, 0, "bound_ratio<=1", problem)
                    for key in ref.values]
        else:
            rows = compare_capture(ref.case, impl, captured, ref.values, ref.bounds, step=0, what=WHAT)
    except impl_registry.ImplUnavailable as exc:
        rows = [dict(phase="unavailable", quantity="", passed=False, note=str(exc))]
    except NotImplementedError as exc:
        rows = [dict(phase="unavailable", quantity="", passed=False, note=f"{label}: not supported: {exc}")]
    return as_frame(rows, label, ref.case)
