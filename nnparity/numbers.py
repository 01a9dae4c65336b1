"""How the tools write numbers: as short text, and in the JSON files.

Text: :func:`number` formats with a format spec and a tidy exponent (``1.2e-7``, ``3.4e0``), writes 0 as ``0``
and infinities as ``inf`` / ``-inf``, and a NaN or missing value as the caller's ``nan`` (``n/a`` by default).

JSON (one convention for every file and ``--json`` output): a missing or undefined number (None, NaN, pandas NA)
is ``null``; an infinity is the string ``"inf"`` or ``"-inf"``, so a measured infinite cost or bound ratio stays
apart from a missing one. :func:`jsonable` makes any value strict JSON (``json.dumps(..., allow_nan=False)``
works); :func:`json_default` is the ``default=`` for ``json.dumps`` (NumPy scalars to Python, anything else to
its text).

Nothing here imports NumPy, pandas or another project module.
"""

from __future__ import annotations

import math
import sys


def number(x, spec: str = ".2g", nan: str = "n/a") -> str:
    """``x`` in the format ``spec`` with a tidy exponent; 0 as ``0``, infinities by name, NaN or missing as ``nan``."""
    try:
        x = float(x)
    except (TypeError, ValueError):  # None, pandas NA
        return nan
    if math.isnan(x):
        return nan
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    text = format(x, spec)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def sci(x) -> str:
    """Scientific notation, 2 significant digits: ``3.1e-16``, ``2.5e0``; 0 as ``0``; missing as ``n/a``."""
    return number(x, ".1e")


def json_default(value):
    """``json.dumps``'s ``default=``: NumPy scalars to Python numbers, anything else to its text."""
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return str(value)


def jsonable(value):
    """``value`` as strict JSON data: containers recursively (keys as text), NumPy values to Python,
    None/NaN/NA to None, infinities to ``"inf"`` / ``"-inf"``, anything else unknown to its text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0:  # NumPy arrays, pandas Series
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool)):
        return value
    if _is_missing(value):
        return None
    if type(value) not in (int, float):  # NumPy scalars and 0-d arrays, or an object to write as text
        value = json_default(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _is_missing(value) -> bool:
    """pandas' NA or NaT (pandas is only looked at if something already imported it)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)
