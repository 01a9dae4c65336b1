"""``nnparity bench``: how fast each implementation trains, against this machine's limits (nnparity.bench)."""

from __future__ import annotations

import argparse

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
                                       "matmul floor. Prints the table and writes bench.csv and bench.json. Full "
                                       "runs also time `nnparity report` (imports and compute, and its phases). "
                                       "Exit code 0, or 2 for bad options.",
                           epilog="examples:\n  nnparity bench --quick --networks planar --impl numpy,torch --out /tmp/b --force\n"
                                  "  nnparity bench --threads --quick --impl numpy,torch --out /tmp/t --force\n"
                                  "  nnparity bench --threads --load --quick --out /tmp/t-load --force\n\n"
                                  "columns: see the README's Benchmark and Threads sections and the JSON's "
                                  "meta.method",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--networks", default="all", help="cat, planar, wide (comma-separated) or all (default); with --threads alone: "
                       "l1-logreg, l2-tanh, l4-relu, cat")
    bench.add_argument("--impl", default="all", help=f"{', '.join(IMPLS)}, torch-compile (comma-separated) or all "
                       "(default); with --threads alone: numpy and the equation-style ones")
    bench.add_argument("--dtype", default="all", help="float32, float64 or all (default)")
    bench.add_argument("--steps", type=positive_int("--steps"),
                       help="gradient steps per timed call, at least 3 (default per network: cat 30, planar 300, wide 15; with --threads alone: "
                            "cat 30, the others 200; --quick: 5, 20, 4; with --threads: 5 and 50)")
    bench.add_argument("--repeats", type=positive_int("--repeats"), help="timed repetitions (default 5; quick 3)")
    bench.add_argument("--quick", action="store_true", help="few steps and repetitions, no suite-level timings")
    bench.add_argument("--no-report", action="store_true",
                       help="skip timing and profiling `nnparity report` (done by default unless --quick)")
    bench.add_argument("--suite", action="store_true", help="also time the test suite (python -m pytest -q; minutes)")
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
    bench.add_argument("--out", help="output directory (default: bench/latest; with --threads alone: bench/threads)")
    bench.add_argument("--force", action="store_true",
                       help="replace an existing output directory (only one nnparity bench wrote)")
    return bench


def run(args) -> int:
    """Measure, print the table, write ``bench.csv`` and ``bench.json`` (``--threads``: ``threads.*``)."""
    from nnparity import bench
    from nnparity.outdir import claim

    measure = args.threads == MEASURE
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
                                              report=False if args.no_report else None, suite=args.suite,
                                              threads=args.threads)
            written = bench.write_outputs(document, table, out, args.force)
            text = bench.format_document(document, table)
    print(text)
    stem = "threads" if measure else "bench"
    print(f"\nbenchmark written to {written}/{stem}.csv and {written}/{stem}.json")
    return 0
