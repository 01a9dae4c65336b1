"""Known divergences of the frameworks from the notes' math, as data.

One ``Divergence`` record per known difference: which implementations, the cases it applies to, the
first failing row it must produce (in the order of computation), the catalogue entry that measures
and explains it, and how to build the reference that matches the framework exactly (``aligned``).
The parity tests read this table (``expected``, ``check``) and never branch on a framework: a case and
implementation with a record must fail exactly as the record says, and pass against its aligned
reference; one without must pass.  The report and ``nnparity catalogue`` list the same records.

The records are declared by each framework in its own folder (``<package>/framework.py``'s ``divergences``:
Keras' in ``tf_impl/framework.py``), and a plugin's by its package; ``DIVERGENCES`` gathers them through the
registry (``nnparity.impls.described``).  This module keeps the record's type, the helpers that build aligned
references (``keras_update``, ``reference_update``) and the checks.

Nothing here imports a framework.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from nnparity.impls import described
from nnparity.spec import Case


@dataclass(frozen=True)
class Divergence:
    id: str
    impls: tuple[str, ...]
    when: dict  # Case field -> the values it applies to; "activations": any layer's activation
    first_failure: tuple  # (phase, quantity, layer, step) of the first failing row; None matches anything
    catalogue: str  # the id of the catalogue entry (nnparity.catalogue) that measures it
    what: str
    must_fail: dict = field(default_factory=dict)  # Case field -> values where the failure is certain
    aligned: Callable | None = None  # case -> (case, context manager): the reference the framework matches
    #: In float32 the first failing row may instead be a later free-run row (a trajectory step after step 1 or a
    #: final parameter, judged by the float64 arbiter): the difference may stay inside one step's rounding bound
    #: at ``first_failure`` and show only once training has carried it.
    float32_later: bool = False

    def applies(self, case: Case, impl: str) -> bool:
        return impl in self.impls and _matches(self.when, case)

    def certain(self, case: Case) -> bool:
        """Whether it must show in ``case`` (elsewhere it may stay within the rounding bound)."""
        return _matches(self.must_fail, case)

    def describe_when(self) -> str:
        return ", ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in self.when.items())

    def describe_first_failure(self) -> str:
        phase, quantity, layer, step = self.first_failure
        name = f"{quantity or '*'}{'' if layer is None else layer}"
        return (f"{phase} {name}" + ("" if step is None else f" step {step}")
                + (" (float32: or a later free-run row)" if self.float32_later else ""))


def _matches(conditions: dict, case) -> bool:
    """Whether ``case`` (a ``Case``, or a conv case: ``nnparity.convspec.ConvCase``) meets every condition; a
    condition on a field the case does not have fails (a record of the conv layers never applies to a dense case,
    nor one of the dense networks to a conv case)."""
    for key, values in conditions.items():
        if key == "activations":
            if not hasattr(case, "activations") or not set(case.activations()) & set(values):
                return False
        elif getattr(case, key, _ABSENT) not in values:
            return False
    return True


_ABSENT = object()


# --------------------------------------------------------------------------- aligned references


def keras_update(parameters, grads, state, case, t, learning_rate=None):
    """Keras 3's SGD momentum, RMSprop and Adam update (``keras/src/optimizers/sgd.py``, ``rmsprop.py``,
    ``adam.py``), written out: momentum ``m = beta m - lr g; W += m`` with ``lr = alpha (1 - beta)`` (the course's
    form while alpha is constant; with a decaying alpha each gradient keeps its own step's rate); RMSprop
    ``W -= lr g / sqrt(s + eps)`` (eps inside the sqrt); Adam ``m += (g - m)(1 - beta1)``,
    ``v += (g^2 - v)(1 - beta2)``, ``alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t)`` in the variables' dtype,
    ``W -= m alpha / (sqrt(v) + eps)`` (eps added to the *uncorrected* sqrt(v)).  ``learning_rate``: the step's
    (decayed) rate, default ``case.learning_rate``, as the reference's ``update``."""
    lr = case.learning_rate if learning_rate is None else learning_rate
    if case.optimizer == "momentum":  # v = -m
        v = {d: case.beta * state["v"][d] + lr * (1 - case.beta) * grads[d] for d in state["v"]}
        return {k: P - v[f"d{k}"] for k, P in parameters.items()}, {"v": v}
    if case.optimizer == "rmsprop":
        s = {d: case.beta2 * state["s"][d] + (1 - case.beta2) * np.square(grads[d]) for d in state["s"]}
        return {k: P - lr * grads[f"d{k}"] / np.sqrt(s[f"d{k}"] + case.epsilon)
                for k, P in parameters.items()}, {"s": s}
    dtype = np.dtype(case.dtype).type
    alpha = lr * np.sqrt(1 - dtype(case.beta2) ** dtype(t)) / (1 - dtype(case.beta1) ** dtype(t))
    v = {d: state["v"][d] + (grads[d] - state["v"][d]) * (1 - case.beta1) for d in state["v"]}
    s = {d: state["s"][d] + (np.square(grads[d]) - state["s"][d]) * (1 - case.beta2) for d in state["s"]}
    return {k: P - v[f"d{k}"] * alpha / (np.sqrt(s[f"d{k}"]) + case.epsilon) for k, P in parameters.items()}, \
        {"v": v, "s": s}


@contextlib.contextmanager
def reference_update(update):
    """The reference's train with another optimiser update in place of the course's."""
    from reference import model

    original = model.update
    model.update = update
    try:
        yield
    finally:
        model.update = original


def keras_formula(case: Case):
    """The reference with Keras' optimiser update (``keras_update``): an aligned reference."""
    return case, reference_update(keras_update)


def _first_maximum_mask(x):
    """The frameworks' max-pool routing: the window's first maximum in row-major order (``np.argmax``) alone."""
    mask = np.zeros(x.shape, dtype=bool)
    mask[np.unravel_index(np.argmax(x), x.shape)] = True
    return mask


def first_maximum_routing(case):
    """The reference with max-pool backward routed to the first of tied maxima (the frameworks' choice, catalogue
    ``maxpool-tied-gradient``) instead of the course's every tied maximum: an aligned reference of a conv case."""
    return case, _patched("reference.conv", "create_mask_from_window", _first_maximum_mask)


@contextlib.contextmanager
def _patched(module_name, name, value):
    import importlib

    module = importlib.import_module(module_name)
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def maxpool_ties(impls: tuple, framework: str):
    """The record of ``impls``' max-pool backward on tied maxima (``framework`` names them in the id): it sends dA to
    one tied cell, the course to every one; the digits' blank borders tie windows exactly (their Z is b)."""
    return Divergence(
        f"maxpool-tied-gradient-{framework}", impls, {"mode": ("max",), "data": ("digits",)},
        ("backward", "dZ", None, 0), "maxpool-tied-gradient",
        "max-pool backward sends dA to the first of tied maxima (row-major) alone; the course's "
        "create_mask_from_window sends it to every tied cell: dZ differs wherever a window ties (on the digits, "
        "every all-blank window after the conv is b in each cell)",
        must_fail={"mode": ("max",), "data": ("digits",)}, aligned=first_maximum_routing)


# --------------------------------------------------------------------------- the table

#: Every framework's records (its descriptor's ``divergences()``), in registry order, then plugins'.
DIVERGENCES = tuple(d for framework in described() if framework.divergences is not None
                    for d in framework.divergences())

BY_ID = {d.id: d for d in DIVERGENCES}


def expected(case: Case, impl: str) -> Divergence | None:
    """The known divergence of ``impl`` on ``case``, or None (then it must pass)."""
    found = [d for d in DIVERGENCES if d.applies(case, impl)]
    if len(found) > 1:
        raise ValueError(f"{impl} on {case.id}: several divergences apply ({', '.join(d.id for d in found)}); "
                         "the table must give one")
    return found[0] if found else None


def first_failure_matches(divergence: Divergence, row) -> bool:
    want = divergence.first_failure
    got = (row["phase"], row["quantity"], row["layer"], row["step"])
    if all(w is None or w == g for w, g in zip(want, got)):
        return True
    from nnparity.harness import GATED_FLOAT32_STEPS

    later = row["phase"] == "final" or (row["phase"] == "trajectory" and row["step"] >= GATED_FLOAT32_STEPS)
    return divergence.float32_later and row.get("dtype") == "float32" and bool(later)


def check(divergence: Divergence, case: Case, frame, aligned_run: Callable) -> list[str]:
    """Problems (empty: it diverges exactly as documented).  ``frame`` is the comparison with the course's
    reference; ``aligned_run(case, context)`` runs the comparison with the aligned reference."""
    from nnparity import harness

    problems = []
    bad = harness.failures(frame)
    if bad.empty and divergence.certain(case):
        problems.append(f"{divergence.id}: expected to fail at {divergence.describe_first_failure()}, but every "
                        "row passes: the framework may have changed; update nnparity/divergences.py")
    elif not bad.empty and not first_failure_matches(divergence, bad.iloc[0]):
        problems.append(f"{divergence.id}: expected the first failure at {divergence.describe_first_failure()}, "
                        "got:\n" + harness.describe_failures(frame))
    if divergence.aligned is not None:
        aligned_case, context = divergence.aligned(case)
        aligned = aligned_run(aligned_case, context)
        if not aligned["passed"].all():
            problems.append(f"{divergence.id}: against the aligned reference it still fails:\n"
                            + harness.describe_failures(aligned))
    return problems


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Assessment:
    """``assess``' answer: the record that applies (None: the pair must pass), the ``problems`` (empty: the pair is
    as it must be) and whether it ``diverged``: it fails, exactly as its record says, and passes against the
    record's aligned reference."""

    record: Divergence | None
    problems: tuple[str, ...]
    diverged: bool

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """The problems as the parity tests' assertion message."""
        return ("\n" if self.record is None else "") + "\n".join(self.problems)


def aligned_comparison(impl) -> Callable:
    """``check``'s ``aligned_run`` for ``impl``: the reference on the aligned case inside its context, and ``impl``
    compared with it in full (``harness.compare_impl``)."""

    def aligned_run(aligned_case, context):
        from nnparity import data, harness

        if not isinstance(aligned_case, Case):  # a conv case (nnparity.convspec.ConvCase)
            from nnparity import conv_harness

            with context:
                ref = conv_harness.run_reference(aligned_case)
            return conv_harness.compare_conv(ref, impl)
        with context:
            ref = harness.run_reference(aligned_case, data.load_data(aligned_case.data))
        return harness.compare_impl(ref, impl)

    return aligned_run


def assess(case: Case, impl, frame, aligned_run: Callable | None = None) -> Assessment:
    """The expected-divergence policy, one for the parity tests (``nnparity.testing.check_parity``) and the report
    (``recorded``): ``impl``'s comparison ``frame`` on ``case`` with no record (``expected``; only a registry name,
    a string, can have one) must pass every row; with a record it must fail exactly as recorded and pass against
    the record's aligned reference (``check``; ``aligned_run`` default ``aligned_comparison(impl)``)."""
    from nnparity import harness

    known = expected(case, impl) if isinstance(impl, str) else None
    failing = not frame["passed"].astype(bool).all()
    if known is None:
        return Assessment(None, (harness.describe_failures(frame),) if failing else (), False)
    problems = tuple(check(known, case, frame, aligned_run or aligned_comparison(impl)))
    return Assessment(known, problems, failing and not problems)


def recorded(case: Case, impl: str, frame, aligned_run: Callable | None = None) -> str:
    """The id of the record ``frame`` (``impl`` on ``case``) diverges exactly as (``assess``' ``diverged``), or "":
    the report's ``divergence`` column.  A pair whose every row passes is no divergence (and needs no aligned run);
    a record that does not hold leaves the failure a failure like any other."""
    if expected(case, impl) is None or frame["passed"].astype(bool).all():
        return ""
    judged = assess(case, impl, frame, aligned_run)
    return judged.record.id if judged.diverged else ""


def records() -> list[dict]:
    """The table as plain records, for the report and the catalogue."""
    return [dict(id=d.id, implementations=", ".join(d.impls), applies_when=d.describe_when(),
                 first_failure=d.describe_first_failure(), certain_when=", ".join(
                     f"{k} in {{{', '.join(map(str, v))}}}" for k, v in d.must_fail.items()) or "always",
                 catalogue_entry=d.catalogue, what=d.what) for d in DIVERGENCES]
