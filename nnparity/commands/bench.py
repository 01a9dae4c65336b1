"""``nnparity bench``: how fast each implementation trains, against this machine's limits (nnparity.bench)."""

from __future__ import annotations

import argparse

from nnparity.commands.args import positive_int
from nnparity.impls import IMPLS



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
                           epilog="columns: see the README's Benchmark section and bench.json's meta.method",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--networks", default="all", help="cat, planar, wide (comma-separated) or all (default)")
    bench.add_argument("--impl", default="all", help=f"{', '.join(IMPLS)}, torch-compile (comma-separated) or all "
                       "(default)")
    bench.add_argument("--dtype", default="all", help="float32, float64 or all (default)")
    bench.add_argument("--steps", type=positive_int("--steps"),
                       help="gradient steps per timed call, at least 3 (default per network: cat 30, planar 300, wide 15)")
    bench.add_argument("--repeats", type=positive_int("--repeats"), help="timed repetitions (default 5; quick 3)")
    bench.add_argument("--quick", action="store_true", help="few steps and repetitions, no suite-level timings")
    bench.add_argument("--no-report", action="store_true",
                       help="skip timing and profiling `nnparity report` (done by default unless --quick)")
    bench.add_argument("--suite", action="store_true", help="also time the test suite (python -m pytest -q; minutes)")
    bench.add_argument("--threads", type=positive_int("--threads"),
                       help="threads of every pool in the workers (OpenMP, OpenBLAS, TensorFlow; default: theirs)")
    bench.add_argument("--out", default="bench/latest", help="output directory (default: bench/latest)")
    bench.add_argument("--force", action="store_true",
                       help="replace an existing output directory (only one nnparity bench wrote)")
    return bench


def run(args) -> int:
    """Measure, print the table, write ``bench.csv`` and ``bench.json``."""
    from nnparity import bench
    from nnparity.outdir import claim

    networks, impls, dtypes = bench.parse_options(args.networks, args.impl, args.dtype, args.steps, args.repeats,
                                                  args.quick)
    with claim(args.out, args.force, "benchmark"):  # --out checked and locked before any work, until written
        document, table = bench.run_bench(networks, impls, dtypes, args.steps, args.repeats, args.quick,
                                          report=False if args.no_report else None, suite=args.suite,
                                          threads=args.threads)
        out = bench.write_outputs(document, table, args.out, args.force)
    print(bench.format_document(document, table))
    print(f"\nbenchmark written to {out}/bench.csv and {out}/bench.json")
    return 0
