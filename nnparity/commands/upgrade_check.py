"""``nnparity upgrade-check PIN [PIN ...]``: build each candidate environment, run the same report there and here,
compare (``nnparity.upgrade``)."""

from __future__ import annotations

import argparse
import sys

from nnparity.commands.args import max_drift, non_negative_float, positive_float
from nnparity.commands.compare import MAX_GROWTH, MAX_ULP_GROWTH

UPGRADE_HELP = """\
Is an upgrade safe? For each candidate (PIN: NAME==VERSION, several pins of one candidate
joined by commas), build the candidate environment -- the lock file constraints.txt with only
those pins changed, in a virtual environment cached in ~/.cache/nnparity/envs/<hash>
(NNPARITY_ENVS overrides; pip: minutes the first time, nothing the next) -- run the same
`nnparity report --cases CASES --impl IMPL` (quick; --full: the full tier) there and in the
current environment, and compare them with `nnparity compare`'s gates (see nnparity compare
--help: pass -> fail, drift, growth beyond the budget, the reference and the data). One
verdict per candidate, a case x candidate table, one exit code:
  nnparity upgrade-check tensorflow-cpu==2.20.0 --impl tf,tf-function --cases 'l2-tanh-*'
  nnparity upgrade-check torch==2.12.0 'numpy==2.3.5,scipy==1.15.3' --impl torch
Reports and drift reports go to OUT: OUT/baseline, OUT/<candidate>/report, OUT/<candidate>/compare.
"""

UPGRADE_EXIT_CODES = """\
exit codes (the worst over the candidates, in this order):
  1  a candidate regresses (compare's exit 1: pass -> fail, drift, growth, the reference or data moved)
  6  a candidate environment could not be built (pip's error on one line) or its report did not run
  4  a candidate's report is not comparable with the baseline's
  3  a candidate could not run an implementation the baseline ran
  0  every candidate: no regression
  2  bad input (a PIN not NAME==VERSION, unknown --impl, --cases matching nothing), nothing run
"""


def add_parser(sub):
    """The `upgrade-check` sub-command's parser."""
    parser = sub.add_parser("upgrade-check", help="build candidate environments (pins changed in the lock), report and "
                                                  "compare: one verdict", description=UPGRADE_HELP,
                            epilog=UPGRADE_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", metavar="PIN", nargs="+",
                        help="a candidate: NAME==VERSION, e.g. tensorflow-cpu==2.20.0 (pins of one candidate joined "
                             "by commas)")
    parser.add_argument("--cases", default="*", help="the report's --cases (default: the default grid)")
    parser.add_argument("--impl", default="all", help="the report's --impl (default: all)")
    parser.add_argument("--full", action="store_true",
                        help="both reports in the full tier (the eager twins' whole free runs; default: the quick "
                             "tier, as nnparity report)")
    parser.add_argument("--out", default="upgrade/latest",
                        help="where the reports and drift reports go (default: upgrade/latest)")
    parser.add_argument("--max-drift", type=max_drift, default=0.5, help="compare's --max-drift (default 0.5)")
    parser.add_argument("--max-growth", type=positive_float("--max-growth"), default=MAX_GROWTH,
                        help=f"compare's --max-growth (default {MAX_GROWTH:g})")
    parser.add_argument("--max-ulp-growth", type=non_negative_float("--max-ulp-growth"), default=MAX_ULP_GROWTH,
                        help=f"compare's --max-ulp-growth (default {MAX_ULP_GROWTH:g})")
    parser.add_argument("--strict", action="store_true", help="compare's --strict: any class change regresses")
    return parser


def run(args) -> int:
    from nnparity import grid, impls, upgrade
    from nnparity.regression import Gates

    for text in args.candidates:  # bad input first, before any work
        upgrade.parse_candidate(text)
    impls.parse_list(args.impl)
    grid.select(grid.default_grid() if args.cases == "*" else grid.every_case(), args.cases)
    gates = Gates(args.max_drift, args.max_growth, args.max_ulp_growth, args.strict)
    outcomes, code = upgrade.check(args.candidates, args.out, args.cases, args.impl, gates,
                                   log=lambda line: print(line, file=sys.stderr, flush=True), full=args.full)
    print(upgrade.table(outcomes))
    for outcome in outcomes:
        print(f"{outcome.candidate}: {outcome.verdict}")
    return code
