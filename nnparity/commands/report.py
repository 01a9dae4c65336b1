"""``nnparity report``: run the default grid through the implementations and write a report directory.

The options are parsed here; the report itself is ``reports.run.run_report`` (the same from Python): this module
calls it, prints its one line and maps its status to the exit code."""

from __future__ import annotations

import argparse
import sys

from nnparity.commands.args import positive_float, positive_int
from nnparity.errors import UsageError
from nnparity.impls import IMPLS
from nnparity.tiers import FULL_HELP

#: ``--timeout``'s default, seconds per call of an implementation (``reports.run.DEFAULT_TIMEOUT``: the command line
#: does not import the report's modules to build its parser).
DEFAULT_TIMEOUT = 900.0

#: ``reports.run.ReportResult.status`` -> the exit code (see ``REPORT_EXIT_CODES``; bad input, 2, is a UsageError).
EXIT_CODES = {"pass": 0, "fail": 1, "incomplete": 3, "crashed": 5}


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
    """Run the report (``reports.run.run_report``), print its one line (and each failing data pin on stderr) and
    return its exit code."""
    from nnparity import tiers
    from nnparity.arbiter import perturbation_notice
    from reports.run import run_report

    notice = perturbation_notice()  # a bad NNPARITY_PERTURB_ULP: one line, exit 2, before any work
    if notice:
        print(f"nnparity report: {notice}", file=sys.stderr)
    result = run_report(args.cases, args.impl, args.out, tier=tiers.tier_of(args.full), force=args.force,
                        selftest=args.selftest, selftest_repeats=args.selftest_repeats, catalogue=args.catalogue,
                        jobs=args.jobs, timeout=args.timeout, bench=args.bench, checkpoints=args.checkpoints,
                        baseline=args.baseline, command=" ".join(["nnparity"] + sys.argv[1:]))
    for problem in result.data_pins:
        print(f"data pin FAILS: {problem} (every implementation reads the same data, so parity cannot see this; "
              "see nnparity/data.py PINS)", file=sys.stderr)
    print(f"report written to {result.out}: " + {
        "pass": "all comparisons pass",
        "fail": "some comparisons FAIL" + (f"\n{result.first_divergence}" if result.first_divergence else ""),
        "incomplete": f"INCOMPLETE: {', '.join(result.unavailable)} could not run (see the report); everything that "
                      "ran passes",
        "crashed": f"CRASHED: {', '.join(result.raised)} raised at run time (see the report); everything else passes",
    }[result.status])
    return EXIT_CODES[result.status]
