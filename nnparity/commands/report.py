"""``nnparity report``: run the default grid through the implementations and write a report directory."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nnparity.commands.args import positive_float, positive_int
from nnparity.errors import UsageError
from nnparity.impls import IMPLS
from nnparity.tiers import FULL_HELP

#: ``--timeout``'s default, seconds per call of an implementation.
DEFAULT_TIMEOUT = 900.0


REPORT_EXIT_CODES = """\
exit codes:
  0  every comparison passes
  1  a comparison fails (whatever else happened)
  2  bad input, nothing written, checked before any work: unknown --impl, --cases matching nothing; --out
     a file, a directory nnparity did not write (no nnparity.json; --force does not replace it), an
     nnparity report directory without --force, or not writable; another nnparity run writing --out
  3  incomplete: an implementation could not run (framework not installed or failing to import: its
     rows in the report say why); everything that did run passes. The report is still written.
  5  an implementation raised at run time (a changed framework API: its rows fail with "train raised
     TypeError: ..."); the run went on, the report is written with everyone's results, and nothing
     that did run failed numerically (that is exit 1)
"""


def checkpoints(text):
    """``--checkpoints``: ``nnparity.checkpoints.parse_checkpoints``, its one-line message as argparse's error."""
    from nnparity.checkpoints import parse_checkpoints

    try:
        return parse_checkpoints(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub):
    """The `report` sub-command's parser (its options beside the code that reads them)."""
    report = sub.add_parser("report", help="run the default parity grid and write a report directory",
                            description="Run the default parity grid (the notes' three networks on embedded data, "
                                        "float64 and float32, full batch and mini-batch) through every implementation "
                                        "and write report.md, report.html (tables and figures in one file), "
                                        "summary.csv, summary.json, details.csv, trajectories.csv, env.json and the "
                                        "figures (bound_ratio_vs_step.png, trajectory_differences.png, "
                                        "bound_ratio_heatmap.png). "
                                        "report.html opens with the verdict and one row per implementation. "
                                        "A progress bar on a terminal; one line per case when stderr is not a "
                                        "terminal or CI is set.",
                            epilog=REPORT_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("--out", default="reports/latest", help="report directory (default: reports/latest)")
    report.add_argument("--force", action="store_true",
                        help="replace an existing report directory (only one nnparity wrote: it carries nnparity.json)")
    report.add_argument("--full", action="store_true",
                        help=f"{FULL_HELP}: here the eager twins' (tf, jax) whole free runs, the self-test and the "
                             "catalogue (default: the quick tier; the report's first screen says what it left out)")
    report.add_argument("--no-selftest", dest="selftest", action="store_false",
                        help="with --full: skip the self-test section (faults injected into the torch implementation)")
    report.add_argument("--selftest-repeats", type=positive_int("--selftest-repeats"), default=20,
                        help="unaltered repetitions in the self-test (default 20)")
    report.add_argument("--no-catalogue", dest="catalogue", action="store_false",
                        help="with --full: skip the catalogue of framework differences (it imports TensorFlow and "
                             "Keras)")
    report.add_argument("--jobs", type=positive_int("--jobs"), default=None,
                        help="worker processes running the cases, the self-test and the catalogue side by side "
                             "(default: NNPARITY_JOBS if set, else one per core; every framework computes on one "
                             "thread, see NNPARITY_THREADS; "
                             "--jobs 1 runs everything in this process, e.g. for a debugger)")
    report.add_argument("--timeout", type=positive_float("--timeout"), default=DEFAULT_TIMEOUT,
                        help="seconds one call of an implementation (train, forward_backward, predictions) may take "
                             f"before it is stopped and its rows fail, saying so (default {DEFAULT_TIMEOUT:g}: a "
                             "thousand eager steps on a busy machine take minutes, a train that never returns takes "
                             "forever)")
    report.add_argument("--bench", action="store_true",
                        help="also run the benchmark (quick settings: numpy and the compared implementations) and "
                             "add a Benchmark section to report.md (see nnparity bench)")
    report.add_argument("--cases", default="*",
                        help="only the grid cases whose id matches one of these comma-separated glob patterns, "
                             "e.g. 'l2-tanh-*' or 'l1-logreg-float64-fullbatch'; patterns reach every grid (default, "
                             "parity tests', training: 'sigmoid-adam-*', 'softmax-*'), so 'l2-*' is 16 cases "
                             "(default: the default grid)")
    report.add_argument("--checkpoints", type=checkpoints, default="default",
                        help="steps at which every forward value and gradient is recomputed from the reference's own "
                             "parameters and compared: comma-separated steps and names (middle, last, saturation: "
                             "the reference's most saturated outputs, gradient-peak: its largest gradient), e.g. "
                             "0,1,50,last; default: 0,1,2,5,middle,saturation,gradient-peak,last (step 0 is always "
                             "compared)")
    report.add_argument("--baseline", metavar="DIR",
                        help="a previous report directory: the report opens with what changed since it (the verdict "
                             "of nnparity compare on the pairs both ran, and its worst changes), e.g. "
                             "--baseline reports/latest --out reports/new")
    report.add_argument("--impl", default="all",
                        help=f"implementations to compare with the reference, comma-separated: {', '.join(IMPLS)} "
                             "or all (default)")
    return report


def run(args) -> int:
    from nnparity import workers
    from nnparity.outdir import claim

    started = time.time()  # the report's "seconds": from here to just before writing it
    args.jobs = workers.default_jobs() if args.jobs is None else args.jobs  # a bad NNPARITY_JOBS: exit 2 here
    baseline = None
    if args.baseline is not None:  # checked before any work: a bad --baseline is exit 2, nothing written
        from reports.compare import load_report

        baseline = load_report(args.baseline, "--baseline")
    with claim(args.out, args.force, "report"):  # --out checked and locked before any work, until it is written
        return _run_report(args, started, baseline)


def _run_report(args, started: float, baseline) -> int:
    import platform

    import pandas as pd

    from nnparity import data as data_mod
    from nnparity import environment, grid, harness, impls, tiers, workers
    from nnparity.progress import progress
    from nnparity.selftest import selftest_markdown
    from reports.build import write_report
    from reports.sections import (
        arbiter_section,
        classification_section,
        detection_power_section,
        divergences_section,
        drift_section,
    )

    names = [n for n in impls.parse_list(args.impl) if n != "numpy"]
    if not names:
        raise UsageError("--impl numpy compares nothing (numpy is the reference); add torch, tf or tf-function")
    tier = tiers.tier_of(args.full)
    args.selftest, args.catalogue = args.selftest and args.full, args.catalogue and args.full
    cases = grid.select(grid.default_grid() if args.cases == "*" else grid.every_case(), args.cases)
    steps = {case.id: harness.case_steps(case, data_mod.size(case.data)) for case in cases}
    for case in cases:  # a --checkpoints step beyond a case's run: one line, before any work
        harness.fixed_checkpoints(args.checkpoints, steps[case.id], case.id)
    if args.cases != "*":  # a glob can match more than meant ('sigmoid-adam-none-*' matches the decay cases too)
        print(f"--cases {args.cases!r} matched {len(cases)} case{'s' if len(cases) != 1 else ''}: "
              + ", ".join(c.id for c in cases), file=sys.stderr, flush=True)
    pieces = [(case.id, _case_piece, (case, names, args.checkpoints, tier, args.timeout)) for case in cases]
    pieces.sort(key=lambda piece: -steps[piece[0]])
    if args.selftest:  # the longest pieces first, so that no worker is left with a long one at the end
        pieces.insert(0, ("self-test", _selftest_piece, (args.selftest_repeats,)))
    if args.catalogue:
        pieces.insert(1 if args.selftest else 0, ("catalogue", _catalogue_piece, ()))
    pins = [problem for name in dict.fromkeys(c.data for c in cases) for problem in data_mod.pin_problems(name)]
    jobs = args.jobs
    results, measured, timings = {}, [], []
    with progress(len(pieces)) as bar:
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
    reference_costs = [results[case.id][1] for case in cases]
    details = pd.concat(frames, ignore_index=True)
    trajectories = pd.concat(reference_costs + [_impl_costs(details)], ignore_index=True)
    meta = {"command": " ".join(["nnparity"] + sys.argv[1:]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": None, "python": platform.python_version(), "versions": _versions(names), "force": args.force,
            "tier": tier, "left_out": _left_out(tier, names), "data_pins": pins or "ok"}
    sections = [classification_section(details), drift_section(details), arbiter_section(details),
                detection_power_section(details),
                divergences_section(cases, names)]
    if args.selftest:
        sections.append(selftest_markdown(*results["self-test"]))
    catalogue = results.get("catalogue")
    bench = None
    if args.bench:  # quick settings; each implementation in a fresh process
        from nnparity import bench as bench_mod

        print("benchmark (quick) ...", file=sys.stderr, flush=True)
        bench = bench_mod.report_table(bench_mod.run_bench(impls=["numpy"] + names, quick=True)[1])
    meta["seconds"] = round(time.time() - started, 1)  # the whole command's wall time, up to writing the report
    env = environment.collect(command=meta["command"], started=meta["started"], seconds=meta["seconds"],
                              implementations=names, measured=environment.merge_runtime(measured))
    changes = None if baseline is None else _since(baseline, details, env, args.out)
    out = write_report(details, args.out, meta, cases=cases, trajectories=trajectories, env=env, catalogue=catalogue,
                       sections=[s for s in sections if s], bench=bench, baseline=changes,
                       timings=pd.DataFrame(timings, columns=["piece", "impl", "phase", "seconds"]))
    code = 1 if pins else _report_exit_code(details)
    for problem in pins:
        print(f"data pin FAILS: {problem} (every implementation reads the same data, so parity cannot see this; "
              "see nnparity/data.py PINS)", file=sys.stderr)
    unavailable = details.loc[details["phase"] == "unavailable", "impl"].unique()
    print(f"report written to {out}: " + {
        0: "all comparisons pass",
        1: "some comparisons FAIL" + _first_divergence(details, pins),
        3: f"INCOMPLETE: {', '.join(unavailable)} could not run (see the report); everything that ran passes",
        5: f"CRASHED: {', '.join(details.loc[_raised(details), 'impl'].unique())} raised at run time (see the report); "
           "everything else passes",
    }[code])
    return code


def _first_divergence(details, pins) -> str:
    """The first unexpected failing row, in the order of computation, as the terminal's second line: case,
    implementation, quantity, step, the numbers and the bound (``harness.describe_failures``); or the data pin."""
    from nnparity import harness

    failing = details[_judged(details)]
    if failing["passed"].astype(bool).all():
        return f"\nfirst: data pin: {pins[0]}" if pins else ""
    case, impl = failing.loc[~failing["passed"].astype(bool), ["case", "impl"]].iloc[0]
    pair = failing[(failing["case"] == case) & (failing["impl"] == impl)]
    return "\nfirst divergence: " + harness.describe_failures(pair, limit=1).splitlines()[0]


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


def _case_piece(case, names, checkpoints, tier="full", timeout=None):
    """One case of the report (run by ``nnparity.workers``): the reference, then each implementation compared with
    it, its free run as long as ``tier`` has it (``nnparity.tiers.horizon``).  Returns (the comparisons, the
    reference's costs) and the process's ``environment.runtime()``."""
    import pandas as pd

    from nnparity import data, environment, harness, impls, tiers

    ref = harness.run_reference(case, data.load_data(case.data), checkpoints=checkpoints)
    costs = pd.DataFrame({"case": case.id, "impl": "numpy", "step": range(len(ref.costs)), "cost": ref.costs})
    with harness.call_timeout(timeout):
        compared = [_with_divergence(case, name, harness.compare_impl(ref, name,
                                                                      horizon=tiers.horizon(impls.get(name), tier)))
                    for name in names]
    return (compared, costs), environment.runtime()


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


def _with_divergence(case, name, frame):
    """The comparison, its ``divergence`` column set (the record's id) where ``name`` on ``case`` has a record in
    nnparity/divergences.py and fails exactly as it says and passes against its aligned reference -- the check the
    parity tests make; an expected divergence that does not hold is a failure like any other (column empty)."""
    from nnparity import data, divergences, harness

    frame["divergence"] = ""
    known = divergences.expected(case, name)
    if known is None or frame["passed"].astype(bool).all():
        return frame

    def aligned_run(aligned_case, context):
        with context:
            ref = harness.run_reference(aligned_case, data.load_data(aligned_case.data))
        return harness.compare_impl(ref, name)

    if not divergences.check(known, case, frame, aligned_run):
        frame["divergence"] = known.id
    return frame


def _since(baseline, details, env, out, limit: int = 6) -> list[str]:
    """What changed since ``baseline`` (a loaded report), as lines: where the baseline is, the verdict of
    ``nnparity compare`` over the pairs both reports ran, then its worst changes (at most ``limit``)."""
    from reports import compare
    from reports.summary import summarize

    candidate = compare.Report(Path(out), compare._normalise(details), summarize(details), env)
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
    rows = details[(details["phase"] == "trajectory") & details["step"].notna()]
    return pd.DataFrame({"case": rows["case"], "impl": rows["impl"], "step": rows["step"].astype(int),
                         "cost": rows["value"].astype(float)})


def _raised(details):
    """The rows of an implementation that raised at run time (the harness's note ``train raised TypeError: ...``)."""
    return details["note"].fillna("").astype(str).str.match(r"^\w+ raised \w")


def _report_exit_code(details) -> int:
    """0 all pass (or fail exactly as a known divergence records); 1 a comparison that ran failed; 5 (nothing of 1) an
    implementation raised at run time; 3 (nothing of 1 or 5) an implementation was unavailable."""
    if not details.loc[_judged(details), "passed"].astype(bool).all():
        return 1
    return 5 if _raised(details).any() else 3 if (details["phase"] == "unavailable").any() else 0


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
