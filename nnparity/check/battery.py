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

from nnparity import metrics
from nnparity.check import course
from nnparity.check.course import EQUATIONS, INTERFACES, PROBES, Expect, LayoutError
from nnparity.numbers import jsonable

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
                     "expected": self.first.expected, "got": self.first.got,
                     "equation": self.equation(self.first.function)}
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
    ``torch.testing.assert_close``'s (``metrics.mismatch``): how many elements are over the bound, the worst one's
    index and both values, the bound there."""
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
    for name, slip in expect.slips.items():  # a convention the course does not take: named, still a failure
        if _within(values, slip, expect.bound, expect.ties)[0]:
            course = f", not {expect.convention}" if expect.convention else ""
            return False, fields | {"convention": name, "message": f"{fields['message']}: it takes {name}{course}"}
    return False, fields


def _within(values, expected, bound, ties=None):
    """(passed, the row's errors and message): every element within ``bound`` of ``expected``.  The bound is the
    learner's rounding alone (the expected value is the exact float64 one), so it is not doubled as the harness's
    2B is; a bound that is not finite compares exactly; ``ties``: elements where either answer is right; the
    relative error is elementwise (``metrics.errors``)."""
    expected = np.asarray(expected, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
    bound = np.where(np.isfinite(bound), bound, 0.0)  # a bound that is not finite compares exactly
    abs_err, rel_err, _ = metrics.errors(values, expected, relative="elementwise", ignore=ties)
    found = metrics.mismatch(values, expected, bound, ignore=ties)
    stats = {"max_abs_err": abs_err, "max_rel_err": rel_err, "bound_ratio": found.bound_ratio}
    if found.passed:
        return True, stats
    return False, stats | {"message": found.message}


def _run_probe(sandbox, probe: course.Probe, interface) -> tuple[list[Row], object]:
    """The rows of one call, and its ``Outcome``."""
    def row(quantity, layer, passed, **fields):
        return Row(probe.function, probe.scenario, probe.dtype, quantity, layer, passed, **fields)

    if probe.driver:
        outcome = sandbox.run(probe.driver, *probe.args, **probe.kwargs)
    else:
        outcome = sandbox.call(probe.function, *probe.args, seed=probe.seed, **probe.kwargs)
    if not outcome.ok:
        failed = row("", None, False, message=_failure(outcome))
        if outcome.kind == "raised":
            from nnparity.check.diagnosis import diagnose_raised

            failed._raised = [{"id": d.id, "message": d.message, "hint": d.hint, "function": probe.function,
                               "quantity": ""} for d in diagnose_raised(probe.function, outcome.error)]
        return [failed], outcome
    changed = _in_place_rows(probe, outcome, row)
    try:
        got = probe.extract(outcome.value)
    except LayoutError as exc:
        return [row("", None, False, message=str(exc))] + changed, outcome
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
    return rows + changed, outcome


def _in_place_rows(probe, outcome, row) -> list[Row]:
    """A failing row for each argument the call changed in place (the caller's array or dict), with its diagnosis;
    the course's update functions may update what they are given."""
    allowed = course.UPDATED_IN_PLACE.get(probe.function, set())
    rows = []
    for position, path, kind in outcome.changed:
        if position in allowed:
            continue
        what = {"array": "values", "dict": "entries", "list": "items"}.get(kind, "contents")
        r = row(path, None, False, message=f"was changed in place: {probe.function} wrote into the caller's "
                                           f"{kind} (its {what} differ after the call)")
        r._found = [{"id": "input-changed-in-place", "function": probe.function, "quantity": path,
                     "message": f"{probe.function} changes its argument {path} in place: the caller's {kind} is "
                                "overwritten, so the caller sees different values after the call",
                     "hint": _copy_hint(probe.function, path, kind)}]
        rows.append(r)
    return rows


def _copy_hint(function, path, kind) -> str:
    name = path.split("[", 1)[0]
    if function == "relu_backward" and kind == "array":
        return f"work on a copy: dZ = np.array({name}, copy=True), then dZ[Z <= 0] = 0"
    if kind == "array" and name == path:
        return f"work on a copy and leave the input as it was: {name} = np.array({name}, copy=True) first"
    return f"copy it before changing it: {name} = copy.deepcopy({name}), or build a new one"


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
    if getattr(row, "_found", None):
        return list(row._found)
    if getattr(row, "_raised", None):  # an exception a known mistake raises
        return list(row._raised)
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


def _reaches(calls, function) -> set:
    """``function`` and every function of the learner's it calls, directly or not (names its code loads)."""
    seen, stack = set(), [function, *course.COMPOSED_CALLS.get(function, ())]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack += calls.get(name, ())
    return seen


def run_check(target, timeout: float = 10.0, progress=None) -> CheckResult:
    """Check every course function ``target`` (a ``nnparity.check.target.Target``) defines.

    A call that does not return within ``timeout`` is stopped once: the function's other calls, and the calls
    of every function that calls it, are reported as not run, so a hang costs about one timeout."""
    from nnparity.check.sandbox import Sandbox

    with Sandbox(target, timeout=timeout) as sandbox:
        functions = sandbox.functions
        calls = dict(getattr(sandbox, "calls", {}) or {})
        interfaces, checked, absent = checked_functions(functions)
        rows = []
        hung = []  # functions that did not return, in order
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
                blocked = [h for h in hung if h in _reaches(calls, function)]
                if blocked:
                    rows.append(Row(probe.function, probe.scenario, probe.dtype, "", None, False,
                                    message=_not_run(function, blocked[0], timeout)))
                    continue
                got, outcome = _run_probe(sandbox, probe, interfaces)
                rows += got
                if outcome.kind == "timeout":
                    hung.append(function)
        if "protocol" in interfaces:
            if progress:
                progress("forward_backward, train")
            protocol = _protocol_rows(sandbox, timeout)
            rows += protocol
            order += [f for f in ("forward_backward", "train", "predictions") if any(r.function == f for r in protocol)]
        notes = list(getattr(sandbox, "notes", ())) + [course.NOTES[f] for f in checked if f in course.NOTES]
    result = CheckResult(getattr(target, "display", str(target)), interfaces, order, absent, rows, notes)
    failed = [r for r in rows if not r.passed]
    if failed:
        result.first = failed[0]
        result.diagnoses = _diagnoses(failed, rows, calls)
    return result


def _not_run(function, hung, timeout) -> str:
    if hung == function:
        return f"not run: an earlier call of {function} did not return within {timeout:g} s"
    return f"not run: it calls {hung}, which did not return within {timeout:g} s"


def _diagnoses(failed, rows, calls) -> list[dict]:
    """The diagnoses of the first failure of each function, in the order of computation.  A function that calls
    one that changes its input in place is told so instead: its own failure may be only that one's doing."""
    seen, diagnoses, firsts = set(), [], {}
    for r in failed:
        firsts.setdefault(r.function, r)
    in_place = []
    for r in failed:
        if getattr(r, "_found", None) and r.function not in in_place:
            in_place.append(r.function)
    for function, r in firsts.items():
        culprits = [c for c in in_place if c != function and c in _reaches(calls, function)]
        if culprits:
            found = [{"id": "downstream-of-in-place", "function": function, "quantity": r.quantity,
                      "message": f"{function} calls {culprits[0]}, which changes its input in place; this failure "
                                 "may come from that alone",
                      "hint": f"fix {culprits[0]} first, then check again"}]
        else:
            candidates = [r] + ([x for x in failed if x.function == function and getattr(x, "_found", None)
                                 and x is not r][:1])
            found = [d for x in candidates for d in _diagnose(x)]
        found += _label_diagnoses(function, rows)
        for d in found:
            key = (d["id"], d["function"]) if d["id"] in PER_FUNCTION else d["id"]
            if key not in seen:
                seen.add(key)
                diagnoses.append(d)
    return diagnoses


#: Diagnoses given once per function (the others once per check).
PER_FUNCTION = {"downstream-of-in-place", "input-changed-in-place"}


def _label_diagnoses(function, rows) -> list[dict]:
    """A cost right when every label is 1 and wrong when every label is 0 (or the other way round): one of its
    two terms is wrong, and which one is known."""
    verdict = {}
    for r in rows:
        for label, scenario in course.EVERY_LABEL.items():
            if r.function == function and r.scenario == scenario:
                verdict[label] = verdict.get(label, True) and r.passed
    if len(verdict) != 2 or verdict[0] == verdict[1]:
        return []
    wrong = 0 if verdict[1] else 1
    term = "(1 - Y) log(1 - AL)" if wrong == 0 else "Y log(AL)"
    first = next(r for r in rows if r.function == function and r.scenario == course.EVERY_LABEL[wrong]
                 and not r.passed)
    return [{"id": "cost-wrong-for-one-label", "function": function, "quantity": first.quantity,
             "message": f"the cost is right when every label is {1 - wrong} and wrong when every label is {wrong}: "
                        f"its term for the examples with Y = {wrong} is wrong",
             "hint": f"the term for Y = {wrong} is {term}: J = -1/m sum(Y log(AL) + (1 - Y) log(1 - AL))"}]
