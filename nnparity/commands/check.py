"""``nnparity check TARGET``: run the battery against a learner's own functions and say what is wrong."""

from __future__ import annotations

import argparse
import json
import sys

CHECK_HELP = """\
Check your own implementation of the course's functions against the NumPy reference, function by
function, and be told the first thing that is wrong and the likely mistake.

TARGET is a .py file, an importable module (package.module) or a Jupyter notebook (.ipynb: only its
imports and function definitions are taken; no other cell runs). nnparity recognises which of the
course's notebooks the functions follow -- logistic regression (propagate, optimize, predict, ...),
the 2-layer planar network (forward_propagation, backward_propagation, nn_model, ...), the L-layer
network (linear_forward ... L_model_backward, update_parameters) and the optimisation and
regularisation notebook (random_mini_batches, update_parameters_with_adam, ..._with_dropout, ...), the
convolution model (zero_pad, conv_forward, pool_forward, conv_backward, pool_backward, ...) --
and checks every one it defines; the others are listed as absent, which is not a failure.

Each function runs alone on generated inputs (m = 1, a one-unit layer, relu's kink, sigmoid's
saturation; float64 and float32): the result's layout (tuple, dict keys), then its shapes and
dtypes, then its values against the project's derived rounding bound. Then your own functions are
composed into a short training run against the reference's trajectory. Your code runs in a
separate process: an exception is reported with your file and line, a call that takes longer than
--timeout is stopped, and prints, plots and sys.exit do not get in the way.
"""

CHECK_EXAMPLES = """\
examples:
  nnparity check examples/course_mistake.py             # a file with one deliberate mistake
  nnparity check my_assignment.ipynb --json             # {"verdict": ..., "first_divergence": ..., ...}

exit codes:
  0  every checked function passes
  1  a checked function fails (the first divergence and the diagnosis are printed)
  2  bad usage: TARGET missing, not .py/.ipynb/importable, does not load, or defines none of the
     course's functions; with --json, stdout still holds one JSON document:
     {"verdict": "error", "error": ..., "exit_code": 2}
"""


def add_parser(sub):
    """The `check` sub-command's parser (its options beside the code that reads them)."""
    check = sub.add_parser("check", help="check your own implementation of the course's functions",
                           description=CHECK_HELP, epilog=CHECK_EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("target", metavar="TARGET", help="a .py file, an importable module, or a .ipynb notebook")
    check.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    check.add_argument("--timeout", type=_seconds, default=10.0,
                       help="seconds one call of your function may take before it is stopped (default 10); "
                            "a function that hangs is stopped once, and it and the functions that call it are "
                            "reported as not run")
    check.add_argument("--all", action="store_true", help="list every checked quantity, not only the failures")
    return check


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout takes a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"--timeout must be between 0 and 3600 seconds, got {text}")
    return value


def run(args) -> int:
    from nnparity.check.battery import run_check
    from nnparity.check.target import load_target
    from nnparity.errors import UsageError

    target = load_target(args.target)
    result = run_check(target, timeout=args.timeout)
    if not result.checked:
        raise UsageError(f"{args.target} defines none of the course's functions (e.g. propagate, forward_propagation, "
                         "L_model_forward, update_parameters_with_adam) nor forward_backward and train; see "
                         "nnparity check --help for the names it recognises")
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from nnparity.check.answer import render

        render(result, show_all=args.all)
    return 0 if result.passed else 1

