"""``nnparity explain``: the notes' math through every implementation's code, with the measured differences."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """\
examples:
  nnparity explain --equation dW        # dW's code side by side and its measured difference, on the terminal
  nnparity explain                      # every equation -> explain/latest/explain.html and explain.md
  nnparity explain --full               # the same with the longer cases (the notes' deeper networks, more steps)
  nnparity explain --out /tmp/explain --force --catalogue-from reports/latest
"""


def add_parser(sub):
    """The `explain` sub-command's parser (its options beside the code that reads them)."""
    from nnparity.explain import EQUATIONS, STEPS

    explain = sub.add_parser(
        "explain", help="the notes' math through the code: each equation, its code in every implementation and the "
                        "measured difference",
        description="Write a self-contained page (explain.html, and the same as explain.md) that teaches the notes' "
                    "equations in the order the notes teach them: each equation (MathML), the code that computes it "
                    "in every implementation (extracted from the running source with inspect), the measured "
                    "difference from the NumPy reference on a live run (float64 and float32, each section on a case "
                    "that isolates its equation: plain gradient descent unless the section is an optimiser, the "
                    "cross-entropy unless it is a cost), the catalogue entries and known divergences where a "
                    "framework departs from it (a recorded divergence shows as expected, with its record), and a "
                    "figure where one helps (an activation and its derivative; a cost's or an optimiser's error / "
                    "limit against the step; a gradient's error / limit per implementation and dtype). Two tiers: "
                    f"quick (the default: small networks of two inputs, {STEPS['quick']} gradient steps) and full "
                    f"(--full: the notes' deeper networks where an equation has one, {STEPS['full']} gradient "
                    "steps); the page says which ran. With --equation, its section is printed on the terminal "
                    "(nothing is written) and only what it shows runs: that equation's case, one forward and "
                    "backward pass per implementation and dtype, and training only where the section shows steps "
                    "(the costs, the update, the optimisers, mini-batches, decay).",
        epilog=EXAMPLES + "\nequations: " + ", ".join(e.id for e in EQUATIONS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    explain.add_argument("--out", default=None, help="output directory (default: explain/latest)")
    explain.add_argument("--force", action="store_true",
                         help="replace an existing explain directory (only one nnparity wrote: it carries "
                              "nnparity.json)")
    explain.add_argument("--equation", metavar="NAME",
                         help="print just this equation's section on the terminal (e.g. dW, adam, relu) instead of "
                              "writing the page")
    explain.add_argument("--full", action="store_true",
                         help="the full tier: the longer cases (the notes' deeper networks where an equation has "
                              "one, more gradient steps) instead of the quick default")
    explain.add_argument("--catalogue-from", metavar="REPORT_DIR",
                         help="read the catalogue's measured effects from a report's catalogue.csv (nnparity report "
                              "--out REPORT_DIR) instead of running the relevant catalogue entries")
    explain.add_argument("--impl", default=None, metavar="NAMES",
                         help="measure and show only these implementations (comma-separated: built-in, or an "
                              "installed plugin's), beside the reference's column; default: every framework's columns")
    return explain


def _names(args):
    """--impl's implementations (checked: one line for an unknown name), or None for every column's."""
    if args.impl is None:
        return None
    from nnparity import impls

    return [name for name in impls.parse_list(args.impl) if name != impls.REFERENCE] or None


def run(args) -> int:
    from nnparity.errors import UsageError
    from nnparity.explain import get

    names = _names(args)  # a bad name: one line, before any work
    if args.equation is not None:
        get(args.equation)  # a bad name: one line, before any work
        if args.out is not None or args.force:
            raise UsageError("--equation prints one section on the terminal and writes nothing; drop --out/--force, "
                             "or drop --equation to write the page")
        return _print_section(args)
    from nnparity.outdir import claim

    out = args.out or "explain/latest"
    with claim(out, args.force, "explain"):  # --out checked and locked before any work, until it is written
        from nnparity.explain import gather
        from reports.explain import write_explain

        explanation = gather(catalogue_from=args.catalogue_from, names=names, tier=_tier(args))
        write_explain(explanation, out, args.force)
    print(f"explain page ({explanation.tier} tier) written to {out}/explain.html (and explain.md) in "
          f"{explanation.seconds:.0f} s")
    return 0


def _tier(args) -> str:
    return "full" if args.full else "quick"


def _print_section(args) -> int:
    from nnparity.explain import gather
    from reports.explain import render_terminal

    explanation = gather([args.equation], catalogue_from=args.catalogue_from, names=_names(args), figures=False,
                         tier=_tier(args))
    sys.stdout.write(render_terminal(explanation.sections[0], tier=explanation.tier))
    return 0
