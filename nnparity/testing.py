"""The parity battery for any pytest suite: your implementation against the NumPy reference, case by case.

In the spirit of scikit-learn's ``parametrize_with_checks``: one decorator gives a test a ``(case, impl)``
parameter per pair of the parity grids, with readable ids (``l2-tanh-float64-fullbatch-my_impl``), and
``check_parity`` fails with the harness's message (what differs, where, by how much, against which bound)::

    # test_my_impl.py
    from nnparity.testing import check_parity, parametrize_with_checks

    @parametrize_with_checks(["my_impl.py"])
    def test_my_impl(case, impl):
        check_parity(case, impl)

An implementation is a registry name (``"torch"``, ``"jax-jit"``; ``nnparity.impls.REGISTRY``), an installed
entry point's name, the path of a ``.py`` file or a dotted module name (what ``nnparity report --impl`` takes),
a module object, or any object that offers the protocol (``forward_backward`` and ``train``, optionally
``predictions``; ``nnparity.impls``).  The project's own ``parity_tests`` run their grids through this module.

* ``reference_run(case)``: the reference's run of ``case``, kept in a small per-process cache, so that a case's
  pairs share one run (under ``pytest-xdist``, the ``xdist_group`` marks keep a case's pairs on one worker).
* ``check_parity(case, impl)``: every row of the comparison passes, or, for a built-in implementation with a
  record in ``nnparity.divergences``, it fails exactly as recorded; otherwise ``AssertionError``.
* ``parametrize_with_checks(impls, cases=None, tier="quick")``: the ``pytest.mark.parametrize`` decorator.
* ``pairs(cases, impls)``: its parameters for both tiers at once, each marked ``tiers(...)`` for a suite that
  deselects by tier (``parity_tests/conftest.py``).

Importing this module imports neither pytest nor a framework: pytest is imported by the functions that build
marks, a framework by the first comparison that runs it.
"""

from __future__ import annotations

import os

#: The reference runs kept per process: a worker runs a case's pairs together (``xdist_group``), and each run
#: holds some MB.
KEEP = 8
_REFERENCE_RUNS: dict = {}

#: ``parametrize_with_checks``' argument names.
ARGNAMES = "case, impl"


def reference_run(case, trajectory=True):
    """The reference's run of ``case`` (``harness.run_reference`` on the case's data), once per process while
    the latest ``KEEP`` cases are in use; ``trajectory=False`` (no per-step cost bounds: the free-running run is
    not compared) is served by a full run when one is there already."""
    from nnparity import data, harness

    for key in ((case, True), (case, trajectory)):
        if key in _REFERENCE_RUNS:
            _REFERENCE_RUNS[key] = _REFERENCE_RUNS.pop(key)  # the most recently used last
            return _REFERENCE_RUNS[key]
    run = _REFERENCE_RUNS[case, trajectory] = harness.run_reference(case, data.load_data(case.data),
                                                                    trajectory=trajectory)
    while len(_REFERENCE_RUNS) > KEEP:
        del _REFERENCE_RUNS[next(iter(_REFERENCE_RUNS))]
    return run


def check_parity(case, impl, trajectory=True, tier="full", unsupported="fail"):
    """Compare ``impl`` with the reference on ``case`` and return the comparison (``harness.compare_impl``'s
    frame): every row passes, or, where nnparity/divergences.py has a record for the pair, it fails exactly as
    recorded and passes against the record's aligned reference.  Otherwise ``AssertionError`` with one line
    per failing row (``harness.describe_failures``: the quantity, layer and step, the errors, the bound ratio,
    the criterion and the tolerance).

    ``impl``: anything ``parametrize_with_checks`` takes (a name, a path, a module, an object).
    ``trajectory=False`` compares every quantity but the free-running run (step 0, the first update, every
    checkpoint, the predictions); ``tier="quick"`` cuts a built-in eager twin's free run to its horizon
    (``nnparity.tiers.horizon``; a user's implementation always runs to the end); a pair with a divergence
    record is always compared in full, as the record describes it.

    A case the implementation refuses (its ``forward_backward`` or ``train`` raises ``NotImplementedError``), or a
    framework that does not import, fails with the reason; ``unsupported="skip"`` skips a refused case instead
    (``pytest.skip``), for an implementation that covers part of the grids on purpose."""
    from nnparity import divergences, harness, tiers

    if unsupported not in ("fail", "skip"):
        raise ValueError(f"unsupported={unsupported!r}: use 'fail' or 'skip'")
    __tracebackhide__ = True  # pytest shows the failing test and this message, not this function's lines
    impl = _implementation(impl)
    known = divergences.expected(case, impl) if isinstance(impl, str) else None
    trajectory = trajectory or known is not None
    horizon = None if known is not None else tiers.horizon(_entry(impl), tier)
    parts = harness.PARTS if trajectory else (harness.CAPTURES, harness.FIRST_UPDATE, harness.PREDICTIONS)
    frame = harness.compare_impl(reference_run(case, trajectory), impl, parts, horizon=horizon)
    notes = list(frame.loc[frame["phase"] == "unavailable", "note"])
    if notes and unsupported == "skip" and all(": not supported: " in note for note in notes):
        import pytest

        pytest.skip(f"{case.id}: " + "; ".join(notes))
    assert not notes, "\n" + "\n".join(f"{case.id}: {note}" for note in notes)
    assert set(frame["phase"]) >= {"forward", "backward", "update", "predictions"} - _without_predictions(impl) | (
        {"trajectory"} if trajectory else set()) | ({"final"} if trajectory and horizon is None else set()), \
        "\n" + harness.describe_failures(frame)
    judged = divergences.assess(case, impl, frame)  # the policy the report applies too
    assert judged.ok, judged.message()
    return frame


def parametrize_with_checks(impls, cases=None, tier="quick", cover_of=None):
    """A ``pytest.mark.parametrize("case, impl", ...)`` decorator: one test per (case, implementation) pair,
    ids like ``l2-tanh-float64-fullbatch-my_impl``.  The test calls ``check_parity(case, impl)``.

    ``impls``: implementations (one, or a list): registry names, entry-point names, ``.py`` paths or dotted
    module names (loaded and checked for the protocol now, as ``--impl`` does), module objects, or objects
    with ``forward_backward`` and ``train``.  A name or path reaches the test as given, a module as an
    ``nnparity.impls.External``, any other object as it is.

    ``cases``: ``nnparity.spec.Case`` objects, or a string of comma-separated globs over every grid's case
    ids (``"l2-*,softmax-adam-*"``, as ``report --cases``); by default the parity grids of ``parity_tests``
    (``grid.test_grid``, ``grid.training_grid``, ``grid.power_grid``), each taken as its own grid.

    ``tier``: ``"quick"`` (the default) runs the cases' cover (``nnparity.grid.cover``: every feature of the
    cases in each dtype, a few cases; by default one cover of the three parity grids), ``"full"`` every case (a
    built-in ``grid="representative"`` implementation: its representative cases and the quick tier's); ``None``
    gives the pairs of both tiers, each marked ``tiers(...)`` for a conftest that deselects by tier (``pairs``).
    Pass the same tier to ``check_parity`` to cut a built-in eager twin's free run in the quick tier.

    ``cover_of``: the cases whose cover the quick tier takes its pairs from (default: ``cases``; with the default
    cases, every case of the parity grids): a file that parametrizes one grid passes ``grid.parity_cases()`` so
    that its grid and the others' share one cover."""
    import pytest

    from nnparity import grid

    if tier not in (None, "quick", "full"):
        raise ValueError(f"tier={tier!r}: use 'quick', 'full' or None (both, marked with the tiers that run them)")
    impls = list(impls) if isinstance(impls, (list, tuple)) else [impls]
    params = []
    if cases is None and cover_of is None:
        cover_of = grid.parity_cases()
    for grid_cases in _grids(cases):
        params += pairs(grid_cases, impls, tiers=None if tier is None else (tier,), cover_of=cover_of)
    return pytest.mark.parametrize(ARGNAMES, params)


def pairs(cases, impls, tiers=None, cover_of=None):
    """``(case, impl)`` parameters (``pytest.param``) with ids like ``l4-relu-float32-minibatch-torch``, the
    cases of one grid for each implementation in ``tiers`` (default: quick and full; ``grid.for_impl``: the
    quick tier is the cases of ``cover_of``'s cover, default ``cases``), each marked ``xdist_group(case id)``
    (``pytest-xdist --dist loadgroup`` runs a case's reference once for every implementation), ``pair`` (its
    test may reuse the steps the implementations compiled for earlier tests) and ``tiers(*the tiers that run
    it)``.  A mark the running pytest has not registered is left out (no warning, no error under
    ``--strict-markers``): without pytest-xdist there is no ``xdist_group``, and ``pair`` and ``tiers`` are
    ``parity_tests``' own."""
    import pytest

    from nnparity import grid

    tiers = ("quick", "full") if tiers is None else tuple(tiers)
    params = []
    for impl in impls:
        value, name = _param(impl)
        chosen = {t: grid.for_impl(cases, _entry(value), t, cover_of) for t in tiers}
        for case in cases:
            run_in = tuple(t for t in tiers if case in chosen[t])
            if run_in:
                marks = [registered_mark("xdist_group", case.id), registered_mark("pair"),
                         registered_mark("tiers", *run_in)]
                params.append(pytest.param(case, value, id=f"{case.name}-{name}", marks=[m for m in marks if m]))
    return params


def _grids(cases):
    from nnparity import grid

    if cases is None:
        return grid.parity_grids()
    if isinstance(cases, str):
        return [grid.select(grid.every_case(), cases)]
    return [list(cases)]


def _param(impl):
    """(the test's value, the id's name) of an implementation as a user gives it."""
    import types

    from nnparity import impls as registry

    if isinstance(impl, str):
        registry.get(impl)  # a name that is unknown, or a file that fails to load, says so at collection
        if impl.endswith(".py") or os.sep in impl:
            return impl, os.path.splitext(os.path.basename(impl))[0]
        return impl, impl
    if isinstance(impl, types.ModuleType):
        name = impl.__name__.rsplit(".", 1)[-1]
        return _implementation(impl), name
    _check_protocol(impl, type(impl).__name__)
    return impl, str(getattr(impl, "name", None) or type(impl).__name__)


def _implementation(impl):
    """What ``harness.compare_impl`` takes: a name as it is, a module as an ``External``, an object as it is."""
    import types

    from nnparity import impls as registry

    if isinstance(impl, types.ModuleType):
        _check_protocol(impl, impl.__name__)
        return registry.External(impl.__name__, impl)
    return impl


def _entry(impl):
    """The registry's entry (or the user's object) behind ``impl``: what ``grid.for_impl`` and ``tiers.horizon``
    read (``grid``, ``compiled_twin``; a user's has neither)."""
    from nnparity import impls as registry

    return registry.get(impl) if isinstance(impl, str) else impl


def _without_predictions(impl) -> set:
    """``{"predictions"}`` when ``impl`` offers no ``predictions`` (optional for a user's implementation)."""
    return set() if getattr(_entry(impl), "offers_predictions", True) else {"predictions"}


def _check_protocol(impl, what):
    from nnparity.errors import UsageError

    missing = [f for f in ("forward_backward", "train") if not callable(getattr(impl, f, None))]
    if missing:
        raise UsageError(f"{what} defines no {' and no '.join(missing)}; an implementation offers "
                         "forward_backward(parameters, X, Y, case, masks=None) and "
                         "train(parameters, X, Y, case, schedule=None, masks=None) (see nnparity.impls)")


def registered_mark(name, *args):
    """``pytest.mark.<name>(*args)``, or None where the running pytest has not registered ``name``."""
    import pytest

    config = getattr(pytest.mark, "_config", None)  # set while pytest runs; None outside a run (any mark goes)
    if config is not None and name not in {line.split(":")[0].split("(")[0].strip()
                                           for line in config.getini("markers")}:
        return None
    mark = getattr(pytest.mark, name)
    return mark(*args) if args else mark
