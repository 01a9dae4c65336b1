"""Noise: the spread of repeated timings, and when it makes a ratio built on them unreliable."""

from __future__ import annotations

import math
import statistics

#: A timing whose repetitions range over more than this fraction of their median, ``(max - min) / median``,
#: makes a ratio built on it unreliable: the choices read from these ratios (1 or 2 threads, a target of 1.5x the
#: floor) turn on differences of 20-50 %, which a timing that wanders by more than a fifth cannot resolve.
UNRELIABLE_SPREAD = 0.20


def spread(times) -> float:
    """The spread of repeated timings: ``(max - min) / median`` (0 for one timing, NaN for none)."""
    times = [t for t in times if t is not None and math.isfinite(t)]
    if not times:
        return math.nan
    middle = statistics.median(times)
    return (max(times) - min(times)) / middle if middle > 0 else math.nan


def unreliable(spreads, load_average, cpus) -> str:
    """Why a ratio of timings with these ``spreads`` is unreliable, '' when it is not: a spread over
    ``UNRELIABLE_SPREAD`` (or unknown), or a 1-minute load average at the start above the number of cores."""
    reasons = []
    spreads = list(spreads)
    if any(not math.isfinite(s) for s in spreads):
        reasons.append("spread unknown")
    elif spreads and max(spreads) > UNRELIABLE_SPREAD:
        reasons.append(f"spread {100 * max(spreads):.0f}% > {100 * UNRELIABLE_SPREAD:.0f}%")
    if load_average is not None and cpus and load_average > cpus:
        reasons.append(f"load average {load_average:.2f} > {cpus} cores at start")
    return "; ".join(reasons)
