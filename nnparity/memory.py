"""Will a run fit in memory?  Estimated before anything is allocated, so that a run too large for this
machine is one line naming the size and the fix, not a NumPy allocation error after minutes of work."""

from __future__ import annotations

import os

from nnparity.errors import UsageError


def _available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n_bytes) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 / 10 else f"{n_bytes / 2**20:.1f} MiB"


def check_memory(case, m: int, available=None) -> None:
    """Refuse, before allocating anything, a run whose arrays cannot fit in the available memory.

    The estimate, in the case's dtype: every W[l], b[l] with its gradient and optimizer state (momentum and
    RMSprop one slot, Adam two), and per layer Z, A, dZ, dA of the largest batch; the dropout masks of every
    step (one byte an entry), the mini-batch schedule and the data cast to the dtype.  A framework holds a
    few more copies, so the estimate is a floor: a run that needs more than is available cannot succeed.
    """
    import numpy as np

    dims, itemsize = case.layer_dims, np.dtype(case.dtype).itemsize
    batch = min(case.batch_size or m, m)
    steps = case.epochs if case.batch_size is None else case.epochs * -(-m // batch)
    slots = 2 + {"gd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}.get(case.optimizer, 0)
    layers_fix = "use smaller --layer-dims or --batch-size"
    parts = {f"layer {l}: {dims[l]} units x {dims[l - 1]} inputs, {batch} examples a batch":
             ((slots * dims[l] * (dims[l - 1] + 1) + 4 * dims[l] * batch) * itemsize, layers_fix)
             for l in range(1, len(dims))}
    parts[f"the data: {dims[0]} features x {m} examples"] = (dims[0] * m * itemsize, "use less data")
    per_step = itemsize + (8 * batch if case.batch_size else 0) + (sum(dims[1:-1]) * batch if case.dropout else 0)
    parts[f"{steps} steps' costs{', batches' if case.batch_size else ''}"
          f"{' and dropout masks' if case.dropout else ''}"] \
        = (steps * per_step, "use fewer --epochs")
    total = sum(size for size, _ in parts.values())
    available = _available_memory() if available is None else available
    if available is None or total <= available:
        return
    largest = max(parts, key=lambda k: parts[k][0])
    raise UsageError(f"this run needs about {_gib(total)} for the parameters and activations (largest: {largest}, "
                     f"{case.dtype}); this machine has {_gib(available)} available: {parts[largest][1]}")
