"""The golden values' files, written into every report: ``golden.npz`` (the reference's own outputs per case) and
``reference.json`` (their fingerprints and those of the data sets).  What they hold, and how two reports' golden
values compare (``nnparity compare``), is ``nnparity.golden``'s.  Nothing here imports a framework."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnparity.golden import GOLDEN, REFERENCE, fingerprint, reference_outputs


def write(directory, cases) -> None:
    """``golden.npz`` and ``reference.json`` of ``cases`` into the report directory being written."""
    from nnparity.data import load_data

    if not cases:
        return
    arrays, datasets, entries = {}, {}, {}
    for case in cases:
        dataset = load_data(case.data)
        datasets.setdefault(case.data, {"X": fingerprint(dataset.X), "Y": fingerprint(dataset.Y)})
        outputs = reference_outputs(case, dataset)
        arrays.update({f"{case.id}/{name}": value for name, value in outputs.items()})
        entries[case.id] = {"data": case.data, "dtype": case.dtype,
                            "arrays": {name: fingerprint(value) for name, value in outputs.items()}}
    np.savez_compressed(Path(directory) / GOLDEN, **arrays)
    document = {"datasets": datasets, "cases": entries}
    (Path(directory) / REFERENCE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
