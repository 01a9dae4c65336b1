"""``nnparity compare BASELINE CANDIDATE``: what changed between two report directories."""

from __future__ import annotations

import argparse
import sys

from nnparity.commands.args import max_drift, non_negative_float, positive_float

#: Defaults of the growth budget (nnparity.regression.DEFAULT_MAX_GROWTH / DEFAULT_MAX_ULP_GROWTH; repeated here so that
#: --help imports no pandas; parity_tests/test_compare.py checks they agree).
MAX_GROWTH, MAX_ULP_GROWTH = 10.0, 256.0


COMPARE_HELP = """\
Compare two report directories written by `nnparity report` -- typically before and after a
framework upgrade -- and write drift.md and drift.csv. Rows of details.csv are aligned by case,
impl, phase, quantity, layer and step, over the case x implementation pairs that ran in both.
drift.md lists environment differences (env.json: versions, BLAS, CPU, threads, determinism
and TF32 settings) first, then every pass -> fail, then every quantity whose class or error
changed, worst first.

Both reports must be complete (their nnparity.json lists every file with its size and SHA-256)
and cover the same case x implementation pairs with the same dtypes and numbers of steps;
otherwise nothing is compared (exit 4), unless --intersection:
  nnparity compare reports/before reports/after --intersection

definitions:
  class           identical (max_abs_err = 0), <=4 ulp (within 4 units in the last place of
                  the dtype), within bound (passes its criterion), fail; reports whose rows
                  carry the harness's classification are compared by that column
  error ratio     candidate max_abs_err / baseline max_abs_err ("identical -> differs" for 0 -> x)
  tolerance used  a row's error divided by its tolerance, as its criterion states: the bound
                  ratio (|impl - ref| / 2B); max_rel_err / limit for the float64 relative
                  criteria; the larger where both apply. A row passes when it is <= 1.
  drift           candidate's tolerance used minus the baseline's: 0 for identical reports,
                  positive when the candidate moved towards failing
  ulp growth      candidate's error in units in the last place of the dtype minus the baseline's

gates: a row regresses when it goes from pass to fail, when its drift exceeds --max-drift, or when
its error grows beyond the budget: error ratio above --max-growth AND ulp growth above
--max-ulp-growth (both: a few ulp on an identical baseline is rounding, not growth). The defaults
come from measured noise, the same reports with 1 vs 2 threads (OMP/OPENBLAS/MKL_NUM_THREADS,
TF_NUM_INTRAOP/INTEROP_THREADS): --cases 'l2-tanh-*' (13122 rows) did not move; --cases 'l4-relu-*'
--impl torch,tf-function (9576 rows): torch's rows drifted at most 0.037, error ratios up to
x32, and where the ratio exceeds 10 at most +188 ulp (float32) and +95 ulp (float64). TF 2.20
-> 2.21 moved an l4 float32 trajectory's error x65 (455 ulp); a float64 error grown x1e3 grows
~1000 ulp: x10 and +256 ulp lie between.
--strict makes any class change (identical -> <=4 ulp included) a regression.

envelope: a row that stays within the baseline's own envelope neither drifts nor grows: its
error within 8 times as far either way as the baseline's rerun moved it (--envelope DIR: the
same report with NNPARITY_PERTURB_ULP=1, every initial parameter moved by one ulp, at the other
thread count), or within 4 ulp; for a float32 step the float64 arbiter judges, also anything up
to the distance from float64 of the baseline's own honest float32 runs (its reference and
one-ulp reruns of it). drift.csv's envelope_low, envelope_high and within_envelope hold it; a
pass -> fail is a regression wherever it lies.

golden values: every report keeps the reference's own outputs (cost trajectory, final parameters,
predictions: golden.npz) and the SHA-256 of every data set (reference.json); a changed data set,
or a reference moved by more than --max-ulp-growth ulp, is a regression (rounding-level movement
is listed). With catalogue.csv in both, the frameworks' measured defaults are compared (listed).
"""

COMPARE_EXIT_CODES = """\
exit codes:
  0  nothing went from pass to fail, drifted more than --max-drift or grew beyond the budget,
     and the reference and the data did not move beyond rounding
  1  a row (or a case x implementation) went from pass to fail, drifted more than --max-drift or
     grew beyond the budget (--max-growth and --max-ulp-growth); a data set changed or the
     reference moved beyond rounding; the candidate compared less (rows the baseline compared
     for a pair both ran are missing); with --strict, a class changed
  2  bad input: BASELINE or CANDIDATE missing, not a report directory, a .tmp-* leftover, half-written
     or altered (a file missing or differing from nnparity.json), or written by an older nnparity;
     --out a file, a directory nnparity compare did not write, existing without --force, or not
     writable; another nnparity run writing --out
  3  incomplete: the candidate could not run an implementation the baseline ran (and nothing of 1)
  4  not comparable: the reports cover different case x implementation pairs (different --cases or
     --impl), dtypes or numbers of steps; nothing written. Rerun both the same way, or pass
     --intersection to compare only the pairs that match
"""


def add_parser(sub):
    """The `compare` sub-command's parser (its options beside the code that reads them)."""
    compare = sub.add_parser("compare", help="what changed between two report directories (framework upgrades)",
                             description=COMPARE_HELP, epilog=COMPARE_EXIT_CODES,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("baseline", metavar="BASELINE", help="report directory of the old environment")
    compare.add_argument("candidate", metavar="CANDIDATE", help="report directory of the new environment")
    compare.add_argument("--out", help="drift report directory (default: CANDIDATE/compare-vs-<BASELINE's name>)")
    compare.add_argument("--max-drift", type=max_drift, default=0.5,
                         help="largest allowed drift of a row, in tolerances (default 0.5: a row's tolerance "
                              "used may grow by at most half its tolerance)")
    compare.add_argument("--max-growth", type=positive_float("--max-growth"), default=MAX_GROWTH,
                         help=f"growth budget, as a ratio: a row whose error grows more than this many times AND by "
                              f"more than --max-ulp-growth ulp regresses (default {MAX_GROWTH:g})")
    compare.add_argument("--max-ulp-growth", type=non_negative_float("--max-ulp-growth"), default=MAX_ULP_GROWTH,
                         help=f"growth budget in units in the last place of the row's dtype; also the rounding level "
                              f"of the reference's golden values (default {MAX_ULP_GROWTH:g})")
    compare.add_argument("--strict", action="store_true",
                         help="any class change (identical -> <=4 ulp, <=4 ulp -> within bound, ...) is a regression")
    compare.add_argument("--force", action="store_true",
                         help="replace an existing drift report directory (only one nnparity compare wrote)")
    compare.add_argument("--envelope", metavar="DIR",
                         help="the baseline's own rerun (the same nnparity report with NNPARITY_PERTURB_ULP=1 and the "
                              "other thread count): a row whose change stays within what rounding alone moves it "
                              "neither drifts nor grows (upgrade-check writes one)")
    compare.add_argument("--intersection", action="store_true",
                         help="compare only the case x implementation pairs both reports ran with the same dtype and "
                              "steps (otherwise reports that differ are not comparable: exit 4); the verdict says "
                              "what was left out")
    return compare


def run(args) -> int:
    from nnparity.outdir import claim, compare_out, comparison_of, verify

    for role, path in (("BASELINE", args.baseline), ("CANDIDATE", args.candidate), ("--envelope", args.envelope)):
        if path is not None:
            verify(path, "report", role)  # first: a missing CANDIDATE must not be created as the parent of --out
    out = args.out or compare_out(args.baseline, args.candidate)
    # the same comparison run again replaces its own output; any other directory needs --force
    of = comparison_of(args.baseline, args.candidate, args.envelope)
    with claim(out, args.force, "compare", of):  # checked and locked before pandas is even imported
        from reports import compare as compare_mod

        try:
            gates = compare_mod.Gates(args.max_drift, args.max_growth, args.max_ulp_growth, args.strict)
            comparison, out = compare_mod.run(args.baseline, args.candidate, out, args.max_drift, args.force,
                                              args.intersection, gates, args.envelope)
        except compare_mod.NotComparable as exc:
            print(f"nnparity compare: {exc}", file=sys.stderr)
            return compare_mod.EXIT_NOT_COMPARABLE
    print(comparison.verdict())
    for line in comparison.headlines():
        print(f"  {line}")
    print(f"drift report written to {out}/drift.md")
    return comparison.exit_code
