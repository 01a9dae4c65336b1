"""Golden values: the reference's own outputs and the data's fingerprints, kept in every report.

Every other check of a report is relative to the NumPy reference *in the same
environment*: an upgrade that moves NumPy's results, scikit-learn's bundled data
or every implementation together passes them all.  So a report also keeps::

    golden.npz      per case: the reference's cost trajectory (``<case>/costs``), final parameters
                    (``<case>/W1``, ``<case>/b1``, ...) and predictions on the training set (``<case>/predictions``)
    reference.json  the SHA-256 (of the float64 bytes, C order) and shape of every input data set (X, Y) and of
                    every array in golden.npz

(both listed in the report's marker, ``nnparity.json``), and ``compare`` checks
them across the two reports (``compare``, here): a data set whose fingerprint changed
is real movement; a reference array that differs is *rounding-level* when every
element is within the growth budget's ulp (``--max-ulp-growth``) of the
baseline's, in the case's dtype, and *moved* beyond it (predictions: any flip is
movement).  Data changes and moved references make ``compare`` exit 1; rounding-level
ones are listed.  When both reports have ``catalogue.csv``, the frameworks'
measured defaults (its ``measured`` column) are compared too (listed, never gating).

``reports.golden`` writes the two files into a report (``write``).  The reference is re-run here
(``reference_outputs``) with plain ``reference.model.train`` (no bounds; a
fraction of a second a case): the same inputs, the same NumPy, the same numbers
as the report's reference.  Nothing here imports a framework.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

GOLDEN = "golden.npz"
REFERENCE = "reference.json"


def fingerprint(array) -> dict:
    """``{"shape": [...], "sha256": ...}`` of ``array`` as float64, C order."""
    array = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
    return {"shape": list(array.shape), "sha256": hashlib.sha256(array.tobytes()).hexdigest()}


def reference_outputs(case, dataset) -> dict:
    """The reference's cost trajectory, final parameters and predictions for ``case`` (arrays by name)."""
    from nnparity.harness import prepare
    from reference.model import predictions, train
    from reference.utils import dropout_masks

    X, Y, parameters, schedule = prepare(case, dataset)
    masks = dropout_masks(case, schedule, X.shape[1])
    with np.errstate(all="ignore"):  # a saturated output's log(0) is the reference's result
        final, costs = train(parameters, X, Y, case, schedule, masks)
        predicted = predictions(final, X, case)
    return {"costs": np.asarray(costs), **{k: np.asarray(v) for k, v in final.items()},
            "predictions": np.asarray(predicted)}


def _read(directory: Path):
    path = directory / REFERENCE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _finding(kind: str, text: str, gates: bool, **extra) -> dict:
    return {"kind": kind, "text": text, "gates": gates, **extra}


def compare(baseline_dir, candidate_dir, cases, max_ulp: float) -> list[dict]:
    """What moved between the two reports' golden values, over ``cases`` (ids in both): one finding each
    (``kind``: ``missing``, ``data``, ``reference``, ``catalogue``; ``text``: one sentence; ``gates``: whether it
    is a regression).  Empty when everything is bit-identical."""
    from nnparity.harness import ulp_distance

    baseline_dir, candidate_dir = Path(baseline_dir), Path(candidate_dir)
    base, cand = _read(baseline_dir), _read(candidate_dir)
    findings = _catalogue(baseline_dir, candidate_dir)
    if base is None or cand is None:
        which = " and ".join(n for n, d in (("baseline", base), ("candidate", cand)) if d is None)
        return [_finding("missing", f"golden values not compared: the {which} report has no {REFERENCE} "
                                    "(written by an older nnparity); regenerate it with nnparity report",
                         False)] + findings
    for name in sorted(set(base["datasets"]) & set(cand["datasets"])):
        for part in ("X", "Y"):
            b, c = base["datasets"][name][part], cand["datasets"][name][part]
            if b != c:
                shape = "" if b["shape"] == c["shape"] else f", shape {b['shape']} → {c['shape']}"
                findings.append(_finding("data", f"the data set {name} changed ({part}: its SHA-256 differs{shape}); "
                                                 "every comparison of its cases is against other data", True,
                                         dataset=name))
    loaded = {}
    for case in cases:
        b_case, c_case = base["cases"].get(case), cand["cases"].get(case)
        if b_case is None or c_case is None:
            continue
        moved, rounding = [], []
        for name, b in b_case["arrays"].items():
            c = c_case["arrays"].get(name)
            if c == b:
                continue
            if c is None or b["shape"] != c["shape"]:
                moved.append(f"{name} "
                             f"{'absent' if c is None else 'shape ' + str(b['shape']) + ' → ' + str(c['shape'])}")
                continue
            for role, directory in (("b", baseline_dir), ("c", candidate_dir)):
                if role not in loaded:
                    loaded[role] = np.load(directory / GOLDEN)
            old, new = loaded["b"][f"{case}/{name}"], loaded["c"][f"{case}/{name}"]
            if name == "predictions":
                moved.append(f"predictions ({int((old != new).sum())} of {old.size} differ)")
                continue
            distance = ulp_distance(new, old, b_case["dtype"])
            distance = float(np.where(np.isnan(distance), np.inf, distance).max()) if old.size else 0.0
            (moved if distance > max_ulp else rounding).append(f"{name} ({distance:.0f} ulp)")
        if moved:
            findings.append(_finding("reference", f"the reference moved on {case}: {', '.join(moved)} (beyond "
                                                  f"{max_ulp:g} ulp: NumPy's results or the data changed)", True,
                                     case=case))
        elif rounding:
            findings.append(_finding("reference", f"the reference moved at rounding level on {case}: "
                                                  f"{', '.join(rounding)} (within {max_ulp:g} ulp)", False, case=case))
    return findings


def _catalogue(baseline_dir: Path, candidate_dir: Path) -> list[dict]:
    """The catalogue entries whose status or measured numbers differ (when both reports have catalogue.csv)."""
    import pandas as pd

    from nnparity.environment import flatten

    if not ((baseline_dir / "catalogue.csv").is_file() and (candidate_dir / "catalogue.csv").is_file()):
        return []
    frames = [pd.read_csv(d / "catalogue.csv", keep_default_na=False).set_index("id")
              for d in (baseline_dir, candidate_dir)]
    findings = []
    for entry in [i for i in frames[0].index if i in frames[1].index]:
        b, c = frames[0].loc[entry], frames[1].loc[entry]
        if b["status"] != c["status"]:
            findings.append(_finding("catalogue", f"catalogue {entry}: status {b['status']} → {c['status']}", False))
            continue
        old, new = (flatten({"m": json.loads(x["measured"] or "{}")}) for x in (b, c))
        changed = [k.removeprefix("m.") for k in old if old[k] != new.get(k)]
        if changed:
            shown = ", ".join(f"{k}: {_short(old['m.' + k])} → {_short(new.get('m.' + k))}" for k in changed[:3])
            findings.append(_finding("catalogue", f"catalogue {entry}: the measured defaults changed ({shown}"
                                                  + (f", and {len(changed) - 3} more" if len(changed) > 3 else "")
                                                  + ")", False))
    return findings


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:39] + "…"
