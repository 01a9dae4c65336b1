"""``nnparity bench``: how fast each implementation trains, against this machine's limits (nnparity.bench)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nnparity.commands.args import positive_int
from nnparity.errors import UsageError
from nnparity.impls import IMPLS

MEASURE = (1, 2)  # --threads without a number: measure 1 against 2 threads (not a string: argparse keeps it as is)


def add_parser(sub):
    """The `bench` sub-command's parser (its options beside the code that reads them)."""
    bench = sub.add_parser("bench", help="how fast each implementation trains, against this machine's limits",
                           description="Train the standard networks (cat 12288,20,7,5,1 relu on 209 examples; "
                                       "planar 2,4,1 tanh on 400; wide 784,256,128,10 softmax on 1000) with each "
                                       "implementation (a fresh process each) in float32 and float64, and measure "
                                       "the limits in the same run: NumPy's large-GEMM peak and each network's "
                                       "matmul floor; each step against its own framework's matrix products of "
                                       "that step, timed in the same worker (x floor). The conv row times one "
                                       "forward_backward of each conv module on 16 64x64x3 images (7x7 conv, 32 "
                                       "filters, pad 3, 2x2 max-pool) against its framework's own conv primitive, "
                                       "in the same worker. Prints the table and writes bench.csv and bench.json. "
                                       "Full runs also time `nnparity report` (imports and compute, and its "
                                       "phases). Exit code 0, or 2 for bad options.",
                           epilog="examples:\n"
                                  "  nnparity bench --quick --networks planar --impl numpy,torch --out /tmp/b --force\n"
                                  "  nnparity bench --quick --networks conv --impl numpy,torch,jax-jit --out /tmp/c\n"
                                  "  nnparity bench --threads --quick --impl numpy,torch --out /tmp/t --force\n"
                                  "  nnparity bench --threads --load --quick --out /tmp/t-load --force\n"
                                  "  nnparity bench --suite report --markdown --force\n"
                                  "  nnparity bench --suite --readme README.md --force   # the README's table\n\n"
                                  "columns: see docs/performance.md (Benchmark, Threads) and the JSON's "
                                  "meta.method",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--networks", default="all", help="cat, planar, wide, conv (comma-separated) or all "
                       "(default); conv: the conv row, one forward_backward of each implementation's conv layers "
                       "per timed call; with --threads alone: l1-logreg, l2-tanh, l4-relu, cat")
    bench.add_argument("--impl", default="all", help=f"{', '.join(IMPLS)}, torch-compile (comma-separated) or all "
                       "(default); with --threads alone: numpy and the equation-style ones; with --suite: the "
                       "report's --impl")
    bench.add_argument("--dtype", default="all", help="float32, float64 or all (default)")
    bench.add_argument("--steps", type=positive_int("--steps"),
                       help="gradient steps per timed call, at least 3 (default per network: cat 30, planar 300, "
                            "wide 15; with --threads alone: cat 30, the others 200; --quick: 5, 20, 4; with "
                            "--threads: 5 and 50)")
    bench.add_argument("--repeats", type=positive_int("--repeats"), help="timed repetitions (default 5; quick 3)")
    bench.add_argument("--quick", action="store_true", help="few steps and repetitions, no suite-level timings")
    bench.add_argument("--no-report", action="store_true",
                       help="skip timing and profiling `nnparity report` (done by default unless --quick)")
    bench.add_argument("--suite", nargs="?", const="all", metavar="{report,tests,all}",
                       help="instead: where the time goes, seconds per implementation and phase (import, compile, "
                            "reference, captures, first update, trajectory, predictions; the report's other and "
                            "rendering), for the quick `nnparity report` (run as a user runs it, in a temporary "
                            "directory), for make test's pytest command (minutes: its quick tier, with JUnit "
                            "durations per implementation and the slowest tests), or both (all, the default); "
                            "writes suite.csv, suite.json and suite.md (default --out bench/suite)")
    bench.add_argument("--cases", default="*",
                       help="with --suite report or all: the report's --cases (default: the default grid)")
    bench.add_argument("--pytest-args", default="",
                       help="with --suite tests or all: more arguments for pytest, e.g. --pytest-args='-k torch' "
                            "or a test file")
    bench.add_argument("--markdown", action="store_true",
                       help="with --suite: print the tables as Markdown (to paste into a pull request or issue)")
    bench.add_argument("--readme", metavar="FILE",
                       help="with --suite: also write the tables into FILE (the README's), between its two marker "
                            "lines, replacing what they held; nothing else of FILE changes")
    bench.add_argument("--threads", nargs="?", const=MEASURE, type=positive_int("--threads"), metavar="N",
                       help="with N: every framework's thread pools in the workers get N threads (default: "
                            "nnparity's policy, nnparity/threads.py). Alone: measure instead, for numpy and the "
                            "equation-style implementations on the networks l1-logreg, l2-tanh, l4-relu (the parity "
                            "grid's, full batch) and cat, the time of train at 1 and at 2 threads (each in a fresh "
                            "process), their ratio and spreads, and whether the trained parameters and costs are "
                            "bit-identical; writes threads.csv and threads.json (default --out bench/threads)")
    bench.add_argument("--load", action="store_true",
                       help="with --threads alone: measure under load, os.cpu_count() busy-loop processes running "
                            "for the whole measurement (stopped after it, also on Ctrl-C or an error)")
    bench.add_argument("--out", help="output directory (default: bench/latest; with --threads alone: bench/threads; "
                                     "with --suite: bench/suite)")
    bench.add_argument("--force", action="store_true",
                       help="replace an existing output directory (only one nnparity bench wrote)")
    return bench


def run(args) -> int:
    """Measure, print the table, write ``bench.csv`` and ``bench.json`` (``--threads``: ``threads.*``)."""
    from nnparity import bench
    from nnparity.outdir import claim

    measure = args.threads == MEASURE
    if args.suite is not None and not measure:
        return _run_suite(args)
    for flag, given in (("--cases", args.cases != "*"), ("--pytest-args", bool(args.pytest_args)),
                        ("--markdown", args.markdown), ("--readme", args.readme is not None)):
        if given:
            raise UsageError(f"{flag} applies to nnparity bench --suite only")
    if args.load and not measure:
        raise UsageError("--load measures the thread settings under load; use it with --threads alone "
                         "(nnparity bench --threads --load)")
    if measure and args.suite:
        raise UsageError("--suite does not apply to the thread measurement; run nnparity bench --suite apart")
    networks, impls, dtypes = bench.parse_options(args.networks, args.impl, args.dtype, args.steps, args.repeats,
                                                  args.quick, measure_threads=measure)
    out = args.out or ("bench/threads" if measure else "bench/latest")
    with claim(out, args.force, "benchmark"):  # --out checked and locked before any work, until written
        if measure:
            document, table = bench.run_threads(networks, impls, dtypes, args.steps, args.repeats, args.quick,
                                                load=args.load)
            written = bench.write_outputs(document, table, out, args.force, stem="threads")
            text = bench.format_threads(document, table)
        else:
            document, table = bench.run_bench(networks, impls, dtypes, args.steps, args.repeats, args.quick,
                                              report=False if args.no_report else None, threads=args.threads)
            written = bench.write_outputs(document, table, out, args.force)
            text = bench.format_document(document, table)
    print(text)
    stem = "threads" if measure else "bench"
    print(f"\nbenchmark written to {written}/{stem}.csv and {written}/{stem}.json")
    return 0


def _check_readme(name) -> None:
    """``--readme``: a file this user can rewrite, with the generated block's two markers; else a one-line error."""
    from nnparity.bench import readme_markers

    path = Path(name)
    if not path.is_file():
        raise UsageError(f"--readme {name}: no such file; give the README whose table to regenerate")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise UsageError(f"--readme {name}: cannot be rewritten here (no write permission); give a file you can write")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--readme {name}: cannot be read as UTF-8 text ({exc.__class__.__name__}); "
                         "give the README") from None
    readme_markers(text, f"--readme {name}")


def _run_suite(args) -> int:
    """``--suite``: every option checked before any work (a one-line error, exit 2, nothing written), then the
    suites run, their tables printed (``--markdown``: as Markdown) and written."""
    import shlex

    from nnparity import bench
    from nnparity.outdir import claim

    which = bench.parse_suite(args.suite)
    for flag, given in (("--networks", args.networks != "all"), ("--dtype", args.dtype != "all"),
                        ("--steps", args.steps is not None), ("--repeats", args.repeats is not None),
                        ("--quick", args.quick), ("--no-report", args.no_report), ("--load", args.load)):
        if given:
            raise UsageError(f"{flag} does not apply to --suite (the quick report and make test as they run); "
                             "choose the suites with --suite report, tests or all")
    if "report" not in which and (args.cases != "*" or args.impl != "all"):
        raise UsageError("--cases and --impl choose the report's cases and implementations; --suite tests runs "
                         "make test's pytest (narrow it with --pytest-args)")
    if "tests" not in which and args.pytest_args:
        raise UsageError("--pytest-args applies to --suite tests or all")
    try:
        pytest_args = shlex.split(args.pytest_args)
    except ValueError as exc:
        raise UsageError(f"--pytest-args {args.pytest_args!r}: {exc}") from None
    if "report" in which:  # the report's own checks, here, so that a bad --cases or --impl runs nothing
        from nnparity import grid, impls

        if not [n for n in impls.parse_list(args.impl) if n != "numpy"]:
            raise UsageError("--impl numpy compares nothing (numpy is the reference); add torch, tf or tf-function")
        grid.select(grid.default_grid() if args.cases == "*" else grid.every_case(), args.cases)
    if args.readme is not None:
        _check_readme(args.readme)
    out = args.out or "bench/suite"
    with claim(out, args.force, "benchmark"):  # --out checked and locked before any work, until written
        document = bench.run_suites(which, args.cases, args.impl, pytest_args, threads=args.threads)
        written = bench.write_suite_outputs(document, out, args.force)
    print(bench.format_suites(document, markdown=args.markdown))
    print(f"\nwritten to {written}/suite.csv, {written}/suite.json and {written}/suite.md")
    if args.readme is not None:
        bench.write_readme(args.readme, bench.readme_block(document))
        print(f"the tables written into {args.readme}, between its markers")
    return 0
