"""A report from Python: ``run_report`` runs the cases through the implementations (worker processes,
``nnparity.workers``), collects their comparisons, builds the run's meta and the report's sections, writes the
directory through ``reports.build.write_report`` and returns a ``ReportResult``: the details, the summary (computed
once, and handed to everything that reads it), the files written and what the verdict rests on.

``nnparity report`` (``nnparity.commands.report``) is this function behind its options: it parses them, calls it,
prints the result's one line and maps its ``status`` to the exit code.  Bad input is a ``UsageError`` (one line)
before any work, as on the command line::

    from reports import run_report

    result = run_report("l1-logreg-float64-fullbatch", ["torch"], "/tmp/r", force=True)
    result.passed, result.status, result.summary[["case", "impl", "status"]]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: ``--timeout``'s default, seconds per call of an implementation.
DEFAULT_TIMEOUT = 900.0

#: A report's status, worst first: ``fail`` a comparison that ran failed (or a data pin); ``crashed`` (nothing of
#: fail) an implementation raised at run time; ``incomplete`` (nothing of either) an implementation could not run.
STATUSES = ("pass", "fail", "incomplete", "crashed")


@dataclass
class ReportResult:
    """What ``run_report`` wrote and found.

    ``out``: the report directory; ``files``: the names written into it.  ``details``: every comparison row (the
    harness's, with the ``divergence`` column); ``summary``: one row per case x implementation
    (``reports.summary.summarize``, computed once); ``meta``: the run's meta (``summary.json``'s ``meta``).
    ``status``: ``pass``, ``fail``, ``incomplete`` or ``crashed`` (``STATUSES``); ``data_pins``: the data pins that
    fail (any one fails the report); ``first_divergence``: the first unexpected failing row in the order of
    computation, or the first failing data pin ("" when nothing fails); ``unavailable``: the implementations that
    could not run; ``raised``: those that raised at run time."""

    out: Path
    details: object
    summary: object
    meta: dict
    status: str
    data_pins: list = field(default_factory=list)
    first_divergence: str = ""
    unavailable: list = field(default_factory=list)
    raised: list = field(default_factory=list)
    files: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every comparison passes (or diverges exactly as nnparity/divergences.py records), every data pin holds."""
        return self.status == "pass"

    @property
    def paths(self) -> list[Path]:
        """The files written, as paths."""
        return [self.out / name for name in self.files]


def run_report(cases=None, impls=None, out=None, *, tier: str = "quick", force: bool = False,
               selftest: bool = True, selftest_repeats: int = 20, catalogue: bool = True, jobs: int | None = None,
               timeout: float | None = DEFAULT_TIMEOUT, bench: bool = False, checkpoints="default",
               baseline=None, command: str | None = None, progress=None) -> ReportResult:
    """Run the report and write its directory; what ``nnparity report`` does (its options in brackets).

    ``cases``: comma-separated glob patterns over every grid's case ids, or a list of them (``--cases``; default:
    the default grid).  ``impls``: the implementations compared with the reference, names or a comma-separated
    string (``--impl``; default: every built-in one).  ``out``: the report directory (``--out``, default
    ``reports/latest``); an existing report directory is replaced only with ``force``.  ``tier``: ``"quick"`` or
    ``"full"`` (``--full``); the full tier adds the self-test and the catalogue unless ``selftest`` or
    ``catalogue`` is false.  ``jobs``: worker processes (default: ``NNPARITY_JOBS``, else one per core; 1 runs
    everything in this process).  ``timeout``: seconds one call of an implementation may take.  ``bench``: add the
    quick benchmark.  ``checkpoints``: ``--checkpoints``' text or ``nnparity.checkpoints.parse_checkpoints``'
    tuple.  ``baseline``: a previous report directory; the report opens with what changed since it.
    ``command``: the command line recorded in the meta (default: this call, written out).  ``progress``: the
    stream of the progress lines and notes (default: stderr).

    Bad input raises ``nnparity.errors.UsageError`` (one line) before any work, nothing written: an unknown
    implementation, ``cases`` matching nothing, a bad ``out`` or ``baseline``, a checkpoint beyond a case's run.
    A comparison that fails is no exception: it is the result's ``status``."""
    from nnparity import tiers, workers
    from nnparity.checkpoints import parse_checkpoints
    from nnparity.errors import UsageError
    from nnparity.outdir import claim

    started = time.time()  # the report's "seconds": from here to just before writing it
    if tier not in tiers.TIERS:
        raise UsageError(f"tier={tier!r}: use {' or '.join(map(repr, tiers.TIERS))}")
    cases = "*" if cases is None else cases if isinstance(cases, str) else ",".join(cases)
    impls = "all" if impls is None else impls if isinstance(impls, str) else ",".join(impls)
    out = "reports/latest" if out is None else out
    checkpoints = parse_checkpoints(checkpoints) if isinstance(checkpoints, str) else tuple(checkpoints)
    if command is None:
        command = (f"run_report(cases={cases!r}, impls={impls!r}, out={str(out)!r}, tier={tier!r}"
                   + (", bench=True" if bench else "") + ")")
    jobs = workers.default_jobs() if jobs is None else jobs  # a bad NNPARITY_JOBS: a UsageError here
    loaded = None
    if baseline is not None:  # checked before any work: a bad baseline is a UsageError, nothing written
        from reports.compare import load_report

        loaded = load_report(baseline, "--baseline")
    plan = _Plan(cases=cases, impls=impls, out=out, tier=tier, force=force, selftest=selftest and tier == tiers.FULL,
                 selftest_repeats=selftest_repeats, catalogue=catalogue and tier == tiers.FULL, jobs=jobs,
                 timeout=timeout, bench=bench, checkpoints=checkpoints, command=command,
                 stream=sys.stderr if progress is None else progress)
    with claim(out, force, "report"):  # out checked and locked before any work, until it is written
        return _run(plan, started, loaded)


@dataclass
class _Plan:
    """``run_report``'s arguments, checked."""

    cases: str
    impls: str
    out: object
    tier: str
    force: bool
    selftest: bool
    selftest_repeats: int
    catalogue: bool
    jobs: int
    timeout: float | None
    bench: bool
    checkpoints: tuple
    command: str
    stream: object


def _run(plan: _Plan, started: float, baseline) -> ReportResult:
    import platform

    import pandas as pd

    from nnparity import data as data_mod
    from nnparity import environment, harness, impls, workers
    from nnparity.errors import UsageError
    from nnparity.progress import progress
    from nnparity.selftest import selftest_markdown
    from reports.build import write_report
    from reports.sections import (
        arbiter_section,
        classification_section,
        conv_section,
        detection_power_section,
        divergences_section,
        drift_section,
    )
    from reports.summary import summarize

    names = [n for n in impls.parse_list(plan.impls) if n != "numpy"]
    if not names:
        raise UsageError("--impl numpy compares nothing (numpy is the reference); add torch, tf or tf-function")
    tier = plan.tier
    from nnparity.conv_models import ModelCase
    from nnparity.convspec import ConvCase

    chosen = select_cases(plan.cases)
    cases = [case for case in chosen if not isinstance(case, (ConvCase, ModelCase))]
    conv_cases = [case for case in chosen if isinstance(case, (ConvCase, ModelCase))]  # the layers, then the models
    steps = {case.id: case.steps(data_mod.size(case.data)) for case in cases}
    for case in cases:  # a --checkpoints step beyond a case's run: one line, before any work
        harness.fixed_checkpoints(plan.checkpoints, steps[case.id], case.id)
    if plan.cases != "*":  # a glob can match more than meant ('sigmoid-adam-none-*' matches the decay cases too)
        print(f"--cases {plan.cases!r} matched {len(chosen)} case{'s' if len(chosen) != 1 else ''}: "
              + ", ".join(c.id for c in chosen), file=plan.stream, flush=True)
    pieces = [(case.id, _case_piece, (case, names, plan.checkpoints, tier, plan.timeout)) for case in cases]
    pieces.sort(key=lambda piece: -steps[piece[0]])
    for dtype in dict.fromkeys(case.dtype for case in conv_cases):  # the conv grid: a piece per dtype, last
        pieces.append((f"conv {dtype}", _conv_piece, ([c for c in conv_cases if c.dtype == dtype], names,
                                                      plan.timeout)))
    if plan.selftest:  # the longest pieces first, so that no worker is left with a long one at the end
        pieces.insert(0, ("self-test", _selftest_piece, (plan.selftest_repeats,)))
    if plan.catalogue:
        pieces.insert(1 if plan.selftest else 0, ("catalogue", _catalogue_piece, ()))
    pins = [problem for name in dict.fromkeys(c.data for c in cases) for problem in data_mod.pin_problems(name)]
    jobs = plan.jobs
    results, measured, timings = {}, [], []
    with progress(len(pieces), plan.stream) as bar:
        bar.working(f"{len(pieces)} pieces on {min(jobs, len(pieces))} worker(s)")
        for label, (result, runtime), seconds, phases in workers.run(pieces, jobs):
            results[label] = result
            measured.append(runtime)
            timings += [{"piece": label, "impl": impl, "phase": phase, "seconds": round(spent, 4)}
                        for (impl, phase), spent in phases.items()]
            # the piece's seconds outside every phase (comparing with the reference, loading the data, ...)
            timings.append({"piece": label, "impl": "harness", "phase": "other",
                            "seconds": round(seconds - sum(phases.values()), 4)})
            bar.finished(label, _piece_status(label, result), seconds)
    frames = [frame for case in cases for frame in results[case.id][0]]
    frames += [frame for label in results if label.startswith("conv ") for frame in results[label][0]]
    reference_costs = [results[case.id][1] for case in cases]
    details = pd.concat(frames, ignore_index=True)
    trajectories = pd.concat(reference_costs + [_impl_costs(details)], ignore_index=True)
    meta = {"command": plan.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": None, "python": platform.python_version(), "versions": _versions(names), "force": plan.force,
            "tier": tier, "left_out": _left_out(tier, names), "data_pins": pins or "ok"}
    sections = [classification_section(details), conv_section(details), drift_section(details),
                arbiter_section(details),
                detection_power_section(details),
                divergences_section(cases + conv_cases, names)]
    if plan.selftest:
        sections.append(selftest_markdown(*results["self-test"]))
    catalogue = results.get("catalogue")
    bench = None
    if plan.bench:  # quick settings; each implementation in a fresh process
        from nnparity import bench as bench_mod

        print("benchmark (quick) ...", file=plan.stream, flush=True)
        bench = bench_mod.report_table(bench_mod.run_bench(impls=["numpy"] + names, quick=True)[1])
    meta["seconds"] = round(time.time() - started, 1)  # the whole run's wall time, up to writing the report
    env = environment.collect(command=meta["command"], started=meta["started"], seconds=meta["seconds"],
                              implementations=names, measured=environment.merge_runtime(measured))
    summary = summarize(details)  # once, for the baseline's comparison, every file of the report and the result
    changes = None if baseline is None else _since(baseline, details, env, plan.out, summary=summary)
    out = write_report(details, plan.out, meta, cases=cases, trajectories=trajectories, env=env, catalogue=catalogue,
                       sections=[s for s in sections if s], bench=bench, baseline=changes,
                       timings=pd.DataFrame(timings, columns=["piece", "impl", "phase", "seconds"]), summary=summary)
    status = "fail" if pins else _status(details)
    return ReportResult(
        out=out, details=details, summary=summary, meta=meta, status=status, data_pins=pins,
        first_divergence=_first_divergence(details, pins) if status == "fail" else "",
        unavailable=list(details.loc[details["phase"] == "unavailable", "impl"].unique()),
        raised=list(details.loc[_raised(details), "impl"].unique()),
        files=sorted(p.name for p in Path(out).iterdir()))


def _first_divergence(details, pins) -> str:
    """The first unexpected failing row, in the order of computation: case, implementation, quantity, step, the
    numbers and the bound (``harness.describe_failures``), as ``first divergence: ...``; or the first data pin that
    fails, as ``first: data pin: ...``; "" when nothing fails."""
    from nnparity import harness

    failing = details[_judged(details)]
    if failing["passed"].astype(bool).all():
        return f"first: data pin: {pins[0]}" if pins else ""
    case, impl = failing.loc[~failing["passed"].astype(bool), ["case", "impl"]].iloc[0]
    pair = failing[(failing["case"] == case) & (failing["impl"] == impl)]
    return "first divergence: " + harness.describe_failures(pair, limit=1).splitlines()[0]


def _left_out(tier, names) -> str:
    """The quick tier's one line on what it left to ``--full`` ("" for the full tier, or nothing left out)."""
    from nnparity import tiers

    if tier == tiers.FULL:
        return ""
    shortened = tiers.shortened(names, tier)
    owners = " and ".join(f"{name}'s" for name in shortened)
    parts = ([f"{owners} free runs after {tiers.EAGER_HORIZON} steps (whole epochs; their checkpoints run to the "
              "end)"] if shortened else []) + ["the self-test", "the catalogue"]
    return "quick tier: left out " + ", ".join(parts) + "; nnparity report --full runs them"


def select_cases(patterns: str) -> list:
    """The cases ``nnparity report --cases PATTERNS`` runs: the default grid for ``*``, else every case matching,
    then the conv layers' and the conv models' (``UsageError`` when a pattern matches none)."""
    from nnparity import grid
    from nnparity.conv_models import model_cases
    from nnparity.convspec import conv_grid

    everything = (grid.default_grid() if patterns == "*" else grid.every_case()) + conv_grid() + model_cases()
    return grid.select(everything, patterns)


def _case_piece(case, names, checkpoints, tier="full", timeout=None):
    """One case of the report (run by ``nnparity.workers``): the reference, then each implementation compared with
    it, its free run as long as ``tier`` has it (``nnparity.tiers.horizon``), its ``divergence`` column set by the
    expected-divergence policy (``nnparity.divergences.recorded``).  Returns (the comparisons, the reference's
    costs) and the process's ``environment.runtime()``."""
    import pandas as pd

    from nnparity import data, divergences, environment, harness, impls, tiers

    ref = harness.run_reference(case, data.load_data(case.data), checkpoints=checkpoints)
    costs = pd.DataFrame({"case": case.id, "impl": "numpy", "step": range(len(ref.costs)), "cost": ref.costs})
    with harness.call_timeout(timeout):
        compared = []
        for name in names:
            frame = harness.compare_impl(ref, name, horizon=tiers.horizon(impls.get(name), tier))
            frame["divergence"] = divergences.recorded(case, name, frame)
            compared.append(frame)
    return (compared, costs), environment.runtime()


def _conv_piece(cases, names, timeout):
    """The conv grid's cases (``nnparity.conv_harness``) with every implementation, and the conv models' cases
    (``nnparity.conv_models``: one step and the training trajectory) with every implementation that has the models:
    (frames, None) like a dense case's piece, and the process's runtime."""
    from nnparity import conv_harness, conv_models, divergences, environment, harness

    compared = []
    with harness.call_timeout(timeout):
        for case in cases:
            if isinstance(case, conv_models.ModelCase):
                for name in conv_models.model_impls(names):
                    for frame in (conv_models.compare_model_step(case.model, case.dtype, name),
                                  conv_models.compare_model_training(case.model, case.dtype, name)):
                        frame["divergence"] = divergences.recorded(case, name, frame)
                        compared.append(frame)
                continue
            ref = conv_harness.run_reference(case)
            for name in names:
                frame = conv_harness.compare_conv(ref, name)
                frame["divergence"] = divergences.recorded(case, name, frame)
                compared.append(frame)
    return (compared, None), environment.runtime()


def _selftest_piece(repeats):
    """The self-test (faults injected into torch, then ``repeats`` unaltered runs), and the process's runtime."""
    from nnparity import environment
    from nnparity.selftest import run_selftest

    return run_selftest(repeats=repeats), environment.runtime()


def _catalogue_piece():
    """The catalogue of framework differences, and the process's runtime."""
    from nnparity import environment
    from nnparity.catalogue import run_catalogue

    return run_catalogue(), environment.runtime()


def _piece_status(label, result) -> str:
    """A finished piece's word in the progress lines: a case's status (``_case_status``), the self-test's verdict,
    the catalogue's entries that raised."""
    if label == "self-test":
        from nnparity.selftest import summary

        return "pass" if summary(*result)["ok"] else "FAIL (see the report's self-test section)"
    if label == "catalogue":
        errors = int(result["status"].astype(str).str.startswith("error").sum())
        return f"FAIL: {errors} entries raised" if errors else "ok"
    return _case_status(result[0])


def _since(baseline, details, env, out, limit: int = 6, *, summary=None) -> list[str]:
    """What changed since ``baseline`` (a loaded report), as lines: where the baseline is, the verdict of
    ``nnparity compare`` over the pairs both reports ran, then its worst changes (at most ``limit``).  ``summary``:
    ``summarize(details)`` when the caller has it."""
    from reports import compare
    from reports.summary import summarize

    summary = summarize(details) if summary is None else summary
    candidate = compare.Report(Path(out), compare._normalise(details), summary, env)
    head = f"`{baseline.path}` (started {baseline.meta.get('started', '?')})"
    try:
        comparison = compare._compare(baseline, candidate, compare.Gates(), intersection=True)  # compare's defaults
    except compare.NotComparable as exc:
        return [head, str(exc)]
    lines = comparison.headlines(limit)
    if len(lines) > limit:  # the pairs whose status changed come first, then the worst quantities
        lines = lines[:limit] + [f"... and more: nnparity compare {baseline.path} {out}"]
    return [head, comparison.verdict()] + lines


def _case_status(frames) -> str:
    """``FAIL`` if a comparison that ran failed, ``unavailable`` if an implementation could not run, else ``pass``."""
    import pandas as pd

    if not frames:
        return "pass"
    rows = pd.concat(frames, ignore_index=True)
    ran = rows[rows["phase"] != "unavailable"]
    failing = ran[~ran["passed"].astype(bool)]
    if len(failing) and "divergence" in failing and failing["divergence"].fillna("").astype(bool).all():
        return "pass (an expected divergence, as recorded)"
    if len(failing):
        return "FAIL"
    return "unavailable" if len(ran) < len(rows) else "pass"


def _impl_costs(details):
    """case, impl, step, cost of every implementation's trajectory (the harness's ``value`` column)."""
    import pandas as pd

    if "value" not in details.columns:
        return pd.DataFrame(columns=["case", "impl", "step", "cost"])
    rows = details[(details["phase"] == "trajectory") & details["step"].notna()
                   & ~details["case"].astype(str).str.startswith("convnet-")]  # no reference costs beside them
    return pd.DataFrame({"case": rows["case"], "impl": rows["impl"], "step": rows["step"].astype(int),
                         "cost": rows["value"].astype(float)})


def _raised(details):
    """The rows of an implementation that raised at run time (the harness's note ``train raised TypeError: ...``)."""
    return details["note"].fillna("").astype(str).str.match(r"^\w+ raised \w")


def _status(details) -> str:
    """``pass`` all pass (or fail exactly as a known divergence records); ``fail`` a comparison that ran failed;
    ``crashed`` (nothing of fail) an implementation raised at run time; ``incomplete`` (nothing of fail or crashed)
    an implementation was unavailable."""
    if not details.loc[_judged(details), "passed"].astype(bool).all():
        return "fail"
    return "crashed" if _raised(details).any() else "incomplete" if (details["phase"] == "unavailable").any() \
        else "pass"


def _judged(details):
    """The rows whose failure fails the report: not unavailable, not raised at run time, not a recorded divergence."""
    expected = details["divergence"].fillna("").astype(bool) if "divergence" in details else False
    return (details["phase"] != "unavailable") & ~_raised(details) & ~expected


def _versions(names):
    """The versions of the distributions the report's implementations need (from the registry)."""
    from nnparity import impls
    from nnparity.environment import versions

    found = versions()
    wanted = {"numpy", "pandas"} | {d for n in names for d in getattr(impls.get(n), "requires", ())}
    return {d: v for d, v in found.items() if v is not None and (d in wanted or d == "tensorflow" and
                                                                  "tensorflow-cpu" in wanted)}
