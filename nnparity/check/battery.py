"""The battery: every course function a learner's module defines, run on generated inputs of several shapes
and both dtypes, checked layout first (tuple, keys), then shape and dtype, then values against the derived
bound; then composed (the learner's own functions driving training).  Like scikit-learn's
``check_estimator``: whatever the module offers is checked, what it does not offer is listed as absent.

``run_check(target)`` returns a ``CheckResult``: one ``Row`` per quantity per call, in the order of
computation, the first divergence and the diagnoses of known mistakes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from nnparity.check import course
from nnparity.numbers import jsonable
from nnparity.check.course import EQUATIONS, INTERFACES, PROBES, Expect, LayoutError

#: A diagnosis matches a quantity's value against a known mistake; a divergence's excerpt shows this many values.
EXCERPT = 4


@dataclass
class Row:
    function: str
    scenario: str
    dtype: str
    quantity: str
    layer: int | None
    passed: bool
    max_abs_err: float = float("nan")
    max_rel_err: float = float("nan")
    bound_ratio: float = float("nan")
    message: str = ""
    convention: str = ""
    expected: str = ""
    got: str = ""
    step: int | None = None  # the protocol's harness: the training step the row compares


@dataclass
class CheckResult:
    target: str
    interfaces: list
    checked: list
    absent: list
    rows: list
    notes: list = field(default_factory=list)
    first: Row | None = None
    diagnoses: list = field(default_factory=list)  # dicts: id, message, hint, function, quantity

    @property
    def passed(self) -> bool:
        return bool(self.checked) and all(r.passed for r in self.rows)

    def functions(self) -> list[dict]:
        """The checklist: one entry per checked function, worst bound ratio and first failure."""
        out = []
        for name in self.checked:
            rows = [r for r in self.rows if r.function == name]
            failed = [r for r in rows if not r.passed]
            ratios = [r.bound_ratio for r in rows if np.isfinite(r.bound_ratio)]
            out.append({"function": name, "passed": not failed, "calls": len({(r.scenario, r.dtype) for r in rows}),
                        "quantities": len(rows), "failed": len(failed),
                        "max_abs_err": _max(r.max_abs_err for r in rows),
                        "max_rel_err": _max(r.max_rel_err for r in rows),
                        "bound_ratio": max(ratios) if ratios else float("nan"),
                        "equation": self.equation(name),
                        "conventions": sorted({r.convention for r in rows if r.convention}),
                        "first_failure": _describe(failed[0]) if failed else ""})
        return out

    def equation(self, name) -> str:
        if "gradient-checking" in self.interfaces and f"{name} (1-D)" in EQUATIONS:
            return EQUATIONS[f"{name} (1-D)"]
        return EQUATIONS.get(name, "")

    def to_json(self) -> dict:
        first = None
        if self.first is not None:
            first = {"function": self.first.function, "quantity": self.first.quantity, "layer": self.first.layer,
                     "message": _describe(self.first), "scenario": self.first.scenario, "dtype": self.first.dtype,
                     "expected": self.first.expected, "got": self.first.got}
        return jsonable({
            "verdict": "pass" if self.passed else "fail", "target": self.target, "interface": self.interfaces,
            "checked": self.checked, "absent": self.absent, "first_divergence": first, "diagnoses": self.diagnoses,
            "functions": self.functions(), "notes": self.notes, "rows": [asdict(r) for r in self.rows]})


def _max(values):
    values = [v for v in values if np.isfinite(v)]
    return max(values) if values else float("nan")


def _describe(row: Row) -> str:
    step = f", step {row.step}" if row.step is not None else ""
    where = f"{row.function}({row.scenario}{step}, {row.dtype})"
    return f"{where} {row.quantity}: {row.message}" if row.quantity else f"{where}: {row.message}"


def _excerpt(values) -> str:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    text = ", ".join(f"{v:.6g}" for v in flat[:EXCERPT])
    more = f", ... ({flat.size} values)" if flat.size > EXCERPT else ""
    return f"[{text}{more}]"


def compare(expect: Expect, got, dtype: str) -> tuple[bool, dict]:
    """Layout, shape, dtype, then values: (passed, the row's fields).  The message reads like
    ``torch.testing.assert_close``'s: how many elements are over the bound, the worst, its index, the bound."""
    fields = {"expected": _excerpt(expect.value)}
    try:
        array = np.asarray(got)
    except Exception:  # noqa: BLE001 - whatever the learner returned
        return False, fields | {"message": f"is a {type(got).__name__}, not an array"}
    if array.dtype == object or array.dtype.kind not in "biuf":
        return False, fields | {"message": f"is a {type(got).__name__} of {array.dtype}, not numbers",
                                "got": repr(got)[:80]}
    shapes = expect.shapes or (expect.value.shape,)
    if array.shape not in shapes:
        return False, fields | {"message": f"has shape {array.shape}; expected {shapes[0]}", "got": _excerpt(array)}
    # A float32 result for float64 inputs lost precision: a failure.  A float64 result for float32 inputs was
    # promoted (the course's own int masks do that: float32 * int64 is float64) and is held to float32's bound.
    if (expect.check_dtype and isinstance(got, np.ndarray) and array.dtype.kind == "f"
            and array.dtype.itemsize < np.dtype(dtype).itemsize):
        return False, fields | {"message": f"is {array.dtype} for {dtype} inputs: precision was lost (a cast or a "
                                           f"{array.dtype} constant); keep the inputs' dtype", "got": _excerpt(array)}
    values = array.astype(np.float64).reshape(expect.value.shape)
    fields["got"] = _excerpt(values)
    ok, stats = _within(values, expect.value, expect.bound, expect.ties)
    fields.update(stats)
    if ok:
        return True, fields | {"convention": expect.convention}
    for name, alternative in expect.alternatives.items():
        alternative, bound = alternative if isinstance(alternative, tuple) else (alternative, expect.bound)
        if _within(values, alternative, bound, expect.ties)[0]:
            return True, fields | {"convention": name, "message": f"matches {name}"}
    return False, fields


def _within(values, expected, bound, ties=None):
    expected = np.asarray(expected, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
    # equal infinities, and NaN where the expected is NaN (the course's chained dAL of a saturated output)
    same_nonfinite = (~np.isfinite(values)) & ((values == expected) | (np.isnan(values) & np.isnan(expected)))
    bound = np.where(np.isfinite(bound), bound, 0.0)  # a bound that is not finite compares exactly
    err = np.where(same_nonfinite, 0.0, np.abs(values - expected))
    err = np.where(np.isnan(err), np.inf, err)
    if ties is not None:
        err = np.where(ties, 0.0, err)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / bound)
        rel = np.where(err == 0, 0.0, err / np.abs(expected))
    over = err > bound
    stats = {"max_abs_err": float(err.max()) if err.size else 0.0,
             "max_rel_err": float(rel.max()) if rel.size else 0.0,
             "bound_ratio": float(ratio.max()) if ratio.size else 0.0}
    if not over.any():
        return True, stats
    flat = int(np.argmax(np.where(over, ratio, -1.0)))
    index = np.unravel_index(flat, expected.shape) if expected.shape else ()
    where = f" at index {tuple(int(i) for i in index)}" if expected.shape else ""
    stats["message"] = (f"{int(over.sum())} of {over.size} elements over the bound; worst{where}: got "
                        f"{values[index]:.9g}, expected {expected[index]:.9g} (abs err {err[index]:.2g}, "
                        f"bound {bound[index]:.2g})")
    return False, stats


def _run_probe(sandbox, probe: course.Probe, interface) -> list[Row]:
    def row(quantity, layer, passed, **fields):
        return Row(probe.function, probe.scenario, probe.dtype, quantity, layer, passed, **fields)

    if probe.driver:
        outcome = sandbox.run(probe.driver, *probe.args, **probe.kwargs)
    else:
        outcome = sandbox.call(probe.function, *probe.args, seed=probe.seed, **probe.kwargs)
    if not outcome.ok:
        return [row("", None, False, message=_failure(outcome))]
    try:
        got = probe.extract(outcome.value)
    except LayoutError as exc:
        return [row("", None, False, message=str(exc))]
    rows = []
    for quantity, expect in probe.expected.items():
        if quantity not in got:
            if expect.optional:
                continue
            rows.append(row(quantity, expect.layer, False, message="is missing from the result"))
            continue
        passed, fields = compare(expect, got[quantity], probe.dtype)
        fields.setdefault("message", "")
        rows.append(row(quantity, expect.layer, passed, **fields))
        if not passed:
            rows[-1]._divergence = (expect, got[quantity], probe)  # for the diagnosis
    return rows


def _failure(outcome) -> str:
    """What went wrong in the learner's call, in one line: the exception and the learner's own line."""
    where = f" at {outcome.where}" if outcome.where else ""
    if outcome.kind == "raised":
        return f"raised {outcome.error}{where}"
    if outcome.kind == "exit":
        return f"called sys.exit ({outcome.error}){where}"
    return f"{outcome.error}{where}"  # timeout, crash: the sandbox's sentence


#: The protocol's harness phases, as the functions of the protocol that produce them.
PROTOCOL_FUNCTIONS = {"forward": "forward_backward", "backward": "forward_backward", "update": "train",
                      "trajectory": "train", "final": "train", "predictions": "predictions"}


def _protocol_rows(sandbox, timeout) -> list[Row]:
    """The project's harness against a protocol implementation (``forward_backward``, ``train``), in the worker:
    the same per-layer comparison as ``nnparity report`` gives the built-in implementations."""
    before = sandbox.timeout
    sandbox.timeout = max(timeout, 300.0)  # two reference runs and the harness's checkpoints, not one call
    try:
        outcome = sandbox.run("nnparity.check.drivers:protocol")
    finally:
        sandbox.timeout = before
    if not outcome.ok:
        return [Row("forward_backward", "the protocol", "", "", None, False, message=_failure(outcome))]
    rows = []
    for r in outcome.value:
        layer = r.get("layer")
        message = r.get("note") or ("" if r.get("passed") else f"fails {r.get('criterion')}")
        rows.append(Row(PROTOCOL_FUNCTIONS.get(r.get("phase"), r.get("phase") or "forward_backward"),
                        r.get("case") or "", r.get("dtype") or "",
                        f"{r.get('quantity') or ''}{'' if layer is None else int(layer)}",
                        None if layer is None else int(layer), bool(r.get("passed")), _float(r.get("max_abs_err")),
                        _float(r.get("max_rel_err")), _float(r.get("bound_ratio")), message,
                        step=None if r.get("step") is None else int(r["step"])))
    return rows


def _float(value) -> float:
    return float("nan") if value is None else float(value)


def _diagnose(row: Row) -> list[dict]:
    payload = getattr(row, "_divergence", None)
    if payload is None:
        return []
    from nnparity.check.diagnosis import Divergence, diagnose

    expect, got, probe = payload
    context = dict(probe.context)
    div = Divergence(function=probe.function, quantity=row.quantity, layer=row.layer, expected=expect.value,
                     got=got, bound=np.broadcast_to(expect.bound, expect.value.shape), context=context)
    try:
        found = diagnose(div)
    except Exception:  # noqa: BLE001 - a diagnosis that cannot be computed is no diagnosis
        return []
    return [{"id": d.id, "message": d.message, "hint": d.hint, "function": probe.function, "quantity": row.quantity}
            for d in found]


def checked_functions(functions) -> tuple[list[str], list[str], list[str]]:
    """(interfaces, the course functions the module defines in the order of computation, the absent ones)."""
    interfaces = course.recognise(functions)
    wanted = []
    for name in interfaces:
        wanted += [f for f in INTERFACES.get(name, ()) if f not in wanted]
    wanted += [f for f in course.HELPERS if f not in wanted and interfaces and f in functions]
    checked = [f for f in PROBES if f in wanted and f in functions]
    absent = [f for f in wanted if f not in functions]
    return interfaces, checked, absent


def run_check(target, timeout: float = 10.0, progress=None) -> CheckResult:
    """Check every course function ``target`` (a ``nnparity.check.target.Target``) defines."""
    from nnparity.check.sandbox import Sandbox

    with Sandbox(target, timeout=timeout) as sandbox:
        functions = sandbox.functions
        interfaces, checked, absent = checked_functions(functions)
        rows = []
        composed = "deep" in interfaces and all(f in functions for f in ("L_model_forward", "compute_cost",
                                                                          "L_model_backward", "update_parameters"))
        order = checked + (["training (composed)"] if composed else [])
        for function in order:
            if progress:
                progress(function)
            if function == "training (composed)":
                probes = [p for net in course.networks("deep") for p in course.probe_deep_training(net)]
            else:
                probes = course.probes_for(function, tuple(functions.get(function, ())))
            for probe in probes:
                rows += _run_probe(sandbox, probe, interfaces)
        if "protocol" in interfaces:
            if progress:
                progress("forward_backward, train")
            protocol = _protocol_rows(sandbox, timeout)
            rows += protocol
            order += [f for f in ("forward_backward", "train", "predictions") if any(r.function == f for r in protocol)]
        notes = list(getattr(sandbox, "notes", ()))
    result = CheckResult(getattr(target, "display", str(target)), interfaces, order, absent, rows, notes)
    failed = [r for r in rows if not r.passed]
    if failed:
        result.first = failed[0]
        seen, diagnoses = set(), []
        firsts = {}
        for r in failed:  # the first failure of each function, in the order of computation
            firsts.setdefault(r.function, r)
        for r in [result.first] + [r for r in firsts.values() if r is not result.first]:
            for d in _diagnose(r):
                if d["id"] not in seen:
                    seen.add(d["id"])
                    diagnoses.append(d)
        result.diagnoses = diagnoses
    return result
