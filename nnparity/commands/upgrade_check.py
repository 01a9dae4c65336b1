"""``nnparity upgrade-check PIN [PIN ...]``: build each candidate environment, run the same report there and here,
compare (``nnparity.upgrade``)."""

from __future__ import annotations

import argparse
import sys

from nnparity.commands.args import max_drift, non_negative_float, positive_float
from nnparity.commands.compare import MAX_GROWTH, MAX_ULP_GROWTH
from nnparity.errors import UsageError

UPGRADE_HELP = """\
May I upgrade? For every candidate (PIN: NAME==VERSION, several pins of one candidate joined
by commas), build the candidate environment first -- the lock file constraints.txt with only
those pins changed, in a virtual environment cached in ~/.cache/nnparity/envs/<hash>
(NNPARITY_ENVS overrides; pip: minutes the first time, its output in <hash>.log, nothing the
next) -- then run the same `nnparity report --cases CASES --impl IMPL` (quick; --full: the
full tier) here (the baseline, reused while the code, the lock and the options are the same;
and its envelope: the same report from initial parameters moved by one ulp at the other
thread count, how far rounding alone moves each row) and in each candidate environment, and
compare them with `nnparity compare`'s gates. One table: candidate x implementation x
verdict, with the first divergence:
  safe     nothing moved beyond the baseline's envelope
  changed  a quantity moved beyond it, every change within compare's gates or explained
           by a known cause (nnparity/known_changes.py: another thread count, ...)
  blocked  a quantity went from pass to fail, drifted or grew beyond the envelope and the
           budget with no known cause, the candidate compared less or could not run an
           implementation, or the reference's golden values moved
  nnparity upgrade-check tensorflow-cpu==2.20.0 --impl tf,tf-function --cases 'l2-tanh-*'
  nnparity upgrade-check torch==2.12.0 'tensorflow-cpu==2.20.0,keras==3.12.0' --impl torch,tf
--executor ray runs each candidate's report as a Ray task (a local Ray, or --address a
cluster) whose runtime_env pip-installs the candidate on its node.
Everything goes to OUT, written as one directory (a stopped run leaves what was there):
OUT/upgrade.md, verdicts.csv and junit.xml (the table), OUT/baseline, OUT/baseline-envelope,
OUT/<candidate>/report, OUT/<candidate>/compare (drift.md), OUT/<candidate>/pip.log (a
failed build).
"""

UPGRADE_EXIT_CODES = """\
exit codes (the worst over the candidates, in this order):
  1  a candidate is blocked (with --strict: or changed)
  6  a candidate environment could not be built (pip's reason on one line) or its report did not run
  4  a candidate's report is not comparable with the baseline's
  0  every candidate safe or changed
  2  bad input (a PIN not NAME==VERSION, unknown --impl, --cases matching nothing, an --out
     that is not upgrade-check's own or exists without --force), nothing run; or the
     baseline report failed in this environment, nothing written
"""


def add_parser(sub):
    """The `upgrade-check` sub-command's parser."""
    parser = sub.add_parser("upgrade-check", help="build candidate environments (pins changed in the lock), report and "
                                                  "compare: one verdict", description=UPGRADE_HELP,
                            epilog=UPGRADE_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", metavar="PIN", nargs="*",
                        help="a candidate: NAME==VERSION, e.g. tensorflow-cpu==2.20.0 (pins of one candidate joined "
                             "by commas)")
    parser.add_argument("--changed-since", metavar="LOCK",
                        help="one more candidate: every pin of constraints.txt that LOCK (an older lock file, e.g. the "
                             "base branch's) pins otherwise; for a pull request that edits the lock")
    parser.add_argument("--bisect", action="store_true",
                        help="for a blocked candidate of one package: find the first version between the lock's and "
                             "the candidate's that blocks (pip index versions; each version an environment, cached)")
    parser.add_argument("--cases", default="*", help="the report's --cases (default: the default grid)")
    parser.add_argument("--impl", default="all", help="the report's --impl (default: all)")
    parser.add_argument("--full", action="store_true",
                        help="both reports in the full tier (the eager twins' whole free runs; default: the quick "
                             "tier, as nnparity report)")
    parser.add_argument("--out", default="upgrade/latest",
                        help="where the table, the reports and drift reports go (default: upgrade/latest); the same "
                             "command replaces its own output, anything else needs --force")
    parser.add_argument("--force", action="store_true", help="replace an --out that upgrade-check wrote before")
    parser.add_argument("--max-drift", type=max_drift, default=0.5, help="compare's --max-drift (default 0.5)")
    parser.add_argument("--max-growth", type=positive_float("--max-growth"), default=MAX_GROWTH,
                        help=f"compare's --max-growth (default {MAX_GROWTH:g})")
    parser.add_argument("--max-ulp-growth", type=non_negative_float("--max-ulp-growth"), default=MAX_ULP_GROWTH,
                        help=f"compare's --max-ulp-growth (default {MAX_ULP_GROWTH:g})")
    parser.add_argument("--strict", action="store_true", help="a changed candidate exits 1 too (default: only blocked)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where the candidates' reports run: local (default: environments built here, reports "
                             "as local processes) or ray (each a Ray task whose runtime_env pip-installs the "
                             "candidate on its node; needs the cluster extra)")
    parser.add_argument("--address", help="with --executor ray: the Ray cluster's address (ray://HOST:10001 or "
                                           "HOST:6379); default: a local Ray on this machine's cores")
    return parser


def run(args) -> int:
    from nnparity import candidates, executors, grid, impls, outdir, upgrade
    from nnparity.regression import Gates

    chosen = list(args.candidates)
    if args.changed_since:
        try:
            old = open(args.changed_since, encoding="utf-8").read()
        except OSError as exc:
            raise UsageError(f"--changed-since {args.changed_since}: {exc.strerror}; give the older lock file, e.g. "
                             "git show origin/main:constraints.txt > base.txt") from None
        changed = candidates.changed_pins(old, candidates.LOCK.read_text(encoding="utf-8"))
        if not changed:
            print(f"constraints.txt pins nothing differently from {args.changed_since}: nothing to check",
                  file=sys.stderr)
        chosen += [changed] if changed else []
    if not chosen and not args.changed_since:
        raise UsageError("give a candidate PIN (NAME==VERSION, e.g. torch==2.12.0) or --changed-since LOCK")
    if not chosen:
        return 0
    for text in chosen:  # bad input first, before any work
        candidates.parse_candidate(text)
    impls.parse_list(args.impl)
    grid.select(grid.default_grid() if args.cases == "*" else grid.every_case(), args.cases)
    if args.address and args.executor != "ray":
        raise UsageError("--address is the Ray cluster's address; add --executor ray")
    gates = Gates(args.max_drift, args.max_growth, args.max_ulp_growth)
    outdir.check_out(args.out, args.force, "upgrade", upgrade.output_of(chosen, args.cases, args.impl, args.full, gates,
                                                                        args.strict, args.executor, args.bisect))
    executor = executors.RayExecutor(args.address) if args.executor == "ray" else None
    outcomes, code = upgrade.check(chosen, args.out, args.cases, args.impl, gates,
                                   log=lambda line: print(line, file=sys.stderr, flush=True), full=args.full,
                                   force=args.force, strict=args.strict,
                                   versions=upgrade.available_versions if args.bisect else None, executor=executor)
    print(upgrade.table(outcomes))
    for outcome in outcomes:
        print(f"{outcome.candidate}: {outcome.verdict.upper()}: {outcome.summary}")
    print(f"written to {args.out} (upgrade.md, verdicts.csv, junit.xml, the reports and drift reports)")
    return code
