"""The ``nnparity`` command line.

Frameworks are imported only by the commands that run them, so ``nnparity --help``
and NumPy-only runs (``--impl numpy``) stay fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from nnparity.errors import UsageError
from nnparity.data import EMBEDDED
from nnparity.impls import IMPLS
from nnparity.spec import DTYPES, HIDDEN_ACTIVATIONS, INITS, LOSSES

EXAMPLES = """\
examples:
  nnparity report                                   # default grid -> reports/latest/
  nnparity report --out /tmp/r --impl torch --force
  nnparity compare reports/old reports/new        # what an upgrade changed -> reports/new/compare-vs-old/
  nnparity train --impl torch --data planar --layer-dims 2,4,1 --hidden-activation tanh \\
                 --learning-rate 1.2 --epochs 1000 --json
  nnparity train --impl tf-function --data digits-3v8 --test-data digits-3v8 \\
                 --layer-dims 64,20,7,5,1 --batch-size 64 --epochs 20
  nnparity train --data train_catvnoncat.h5 --test-data test_catvnoncat.h5 \\
                 --layer-dims 12288,20,7,5,1 --epochs 100
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(flag):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {value}")
        return value
    return parse


def _non_negative_int(flag):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a non-negative integer, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be a non-negative integer, got {value}")
        return value
    return parse


def _positive_float(flag):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag} must be a positive finite number, got {text}")
        return value
    return parse


def _layer_dims(text):
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layer-dims must be comma-separated integers like 2,4,1, got {text!r}") from None
    return dims


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nnparity",
        description="The networks of the notes in NumPy, PyTorch and TensorFlow, and proof that they agree.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    report = sub.add_parser("report", help="run the default parity grid and write a report directory",
                            description="Run the default parity grid (the notes' three networks on embedded data, "
                                        "float64 and float32, full batch and mini-batch) through every implementation "
                                        "and write report.md, report.html (tables and figures in one file), "
                                        "summary.csv, summary.json, details.csv, trajectories.csv, env.json and the "
                                        "figures (trajectories.png, error_vs_step.png, layer_errors.png). "
                                        "A progress bar on a terminal; one line per case when stderr is not a "
                                        "terminal or CI is set.",
                            epilog=REPORT_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("--out", default="reports/latest", help="report directory (default: reports/latest)")
    report.add_argument("--force", action="store_true",
                        help="replace an existing report directory (only one nnparity wrote: it carries nnparity.json)")
    report.add_argument("--no-selftest", dest="selftest", action="store_false",
                        help="skip the self-test section (faults injected into the torch implementation)")
    report.add_argument("--selftest-repeats", type=_positive_int("--selftest-repeats"), default=20,
                        help="unaltered repetitions in the self-test (default 20)")
    report.add_argument("--no-catalogue", dest="catalogue", action="store_false",
                        help="skip the catalogue of framework differences (it imports TensorFlow and Keras)")
    report.add_argument("--bench", action="store_true",
                        help="also run the benchmark (quick settings: numpy and the compared implementations) and "
                             "add a Benchmark section to report.md (see nnparity bench)")
    report.add_argument("--cases", default="*",
                        help="only the grid cases whose id matches one of these comma-separated glob patterns, "
                             "e.g. 'l2-*' or 'l1-logreg-float64-fullbatch' (default: all)")
    report.add_argument("--impl", default="all",
                        help=f"implementations to compare with the reference, comma-separated: {', '.join(IMPLS)} "
                             "or all (default)")

    compare = sub.add_parser("compare", help="what changed between two report directories (framework upgrades)",
                             description=COMPARE_HELP, epilog=COMPARE_EXIT_CODES,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("baseline", metavar="BASELINE", help="report directory of the old environment")
    compare.add_argument("candidate", metavar="CANDIDATE", help="report directory of the new environment")
    compare.add_argument("--out", help="drift report directory (default: CANDIDATE/compare-vs-<BASELINE's name>)")
    compare.add_argument("--max-drift", type=_max_drift, default=0.5,
                         help="largest allowed drift of a row, in tolerances (default 0.5: a row's tolerance "
                              "used may grow by at most half its tolerance)")
    compare.add_argument("--force", action="store_true",
                         help="replace an existing drift report directory (only one nnparity compare wrote)")
    compare.add_argument("--intersection", action="store_true",
                         help="compare only the case x implementation pairs both reports ran with the same dtype and "
                              "steps (otherwise reports that differ are not comparable: exit 4); the verdict says "
                              "what was left out")

    drift = sub.add_parser("drift", help="measure how far each implementation's cost trajectory drifts, "
                           "and its divergence horizon",
                           description="Train grid cases for many steps through the implementations and report, per "
                                       "case and implementation, the relative cost difference to the reference at "
                                       "steps 1, 10, 100, 1000, ... and the divergence horizon: the first step whose "
                                       "difference leaves its tolerance (float64 1e-10 relative, float32 the rounding "
                                       "bound of that step's forward pass).",
                           epilog="example:\n  nnparity drift --cases 'l4-relu-float32-fullbatch' --steps 3000 --impl torch\n"
                                  "  nnparity drift --cases 'l4-relu-*-fullbatch' --data train_catvnoncat.h5 "
                                  "--learning-rate 0.0075 --steps 2500",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    drift.add_argument("--cases", default="l4-relu-float32-fullbatch",
                       help="glob patterns over the report grid's case ids (default l4-relu-float32-fullbatch)")
    drift.add_argument("--steps", type=_positive_int("--steps"), default=3000, help="gradient steps (default 3000)")
    drift.add_argument("--impl", default="torch", help="implementations, comma-separated, or all (default torch)")
    drift.add_argument("--data", help="train on this data instead (the first layer size follows its features)")
    drift.add_argument("--learning-rate", type=_positive_float("--learning-rate"),
                       help="override the cases' learning rate")
    drift.add_argument("--csv", help="also write the per-step relative differences to this CSV file")

    train = sub.add_parser("train", help="train one model with one implementation",
                           description="Train one network with one implementation and print its cost trajectory "
                                       "and accuracy (--json: one JSON object).",
                           epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--impl", default="numpy", help=f"implementation: {', '.join(IMPLS)} (default numpy)")
    train.add_argument("--data", default="planar",
                       help=f"training data: an embedded set ({', '.join(EMBEDDED)}) or a .npz/.csv/.h5 file "
                            "(default planar)")
    train.add_argument("--test-data", help="test data: a file, or the test split of an embedded set "
                       f"({', '.join(n for n in EMBEDDED if n != 'planar')})")
    train.add_argument("--layer-dims", type=_layer_dims,
                       help="n[0],n[1],...,n[L], e.g. 2,4,1 (default: n_x,4,1 for the data's n_x features)")
    train.add_argument("--hidden-activation", default="relu", help=f"{', '.join(HIDDEN_ACTIVATIONS)} (default relu)")
    train.add_argument("--leaky-slope", type=float, help="slope of leaky_relu for Z < 0 (default 0.01)")
    train.add_argument("--output-activation", default="sigmoid",
                       help="sigmoid (binary, 1 output unit) or softmax (one unit per class) (default sigmoid)")
    train.add_argument("--output-gradient", help="how backprop starts at the output: chained (dAL, then g'(ZL); "
                       "the default) or fused (dZL = AL - Y, cross-entropy only: finite when AL saturates to 0 or 1)")
    train.add_argument("--loss", help=f"{', '.join(LOSSES)} (default: cross_entropy for a sigmoid output, "
                       "categorical_cross_entropy for softmax)")
    train.add_argument("--init", default="inv-sqrt", help=f"{', '.join(INITS)} (default inv-sqrt)")
    train.add_argument("--init-scale", type=_positive_float("--init-scale"),
                       help="scale of small-random (default 0.01)")
    train.add_argument("--seed", type=_non_negative_int("--seed"), default=1, help="initialisation seed (default 1)")
    train.add_argument("--learning-rate", type=_positive_float("--learning-rate"), default=0.0075,
                       help="gradient descent step alpha (default 0.0075)")
    train.add_argument("--epochs", type=_positive_int("--epochs"), default=100,
                       help="passes over the training set; full batch: one step each (default 100)")
    train.add_argument("--batch-size", type=_positive_int("--batch-size"),
                       help="mini-batch size (1 = SGD; default: full batch)")
    train.add_argument("--shuffle-seed", type=_non_negative_int("--shuffle-seed"),
                       help="epoch e is shuffled by RandomState(shuffle_seed + e) (default 0)")
    train.add_argument("--dtype", default="float64", help=f"{', '.join(DTYPES)} (default float64)")
    train.add_argument("--optimizer", default="gd", help="gd, momentum, rmsprop or adam (default gd)")
    train.add_argument("--beta", type=float, help="momentum's beta (default 0.9)")
    train.add_argument("--beta1", type=float, help="Adam's first-moment beta1 (default 0.9)")
    train.add_argument("--beta2", type=float, help="RMSprop's and Adam's second-moment beta2 (default 0.999)")
    train.add_argument("--epsilon", type=float, help="RMSprop's and Adam's epsilon (default 1e-8)")
    train.add_argument("--l2", type=float, default=0.0, dest="lambd",
                       help="L2 regularisation lambda: cost + lambda/(2m) sum ||W||^2 (default 0: off)")
    train.add_argument("--keep-prob", type=float,
                       help="inverted dropout on the hidden layers, probability of keeping a unit (default 1: off)")
    train.add_argument("--dropout-seed", type=_non_negative_int("--dropout-seed"),
                       help="step t's dropout masks come from RandomState(dropout_seed + t) (default 3)")
    train.add_argument("--json", action="store_true", help='print one JSON object: {"impl", "costs", '
                       '"train_accuracy", "test_accuracy"}, and with mini-batches "epoch_costs"')

    catalogue = sub.add_parser("catalogue", help="run the catalogue of where the frameworks differ from the math",
                               description="Run each catalogue entry (a small case with the framework's default "
                                           "behaviour and with this project's aligned behaviour) and print what "
                                           "differs, the measured effect and how it is aligned, with the installed "
                                           "versions. Exit code 0, or 1 when an entry raised an error.")
    catalogue.add_argument("--json", action="store_true",
                           help="print the records as one JSON list (id, title, framework, framework_version, "
                                "what_differs, case, default_result, aligned_result, effect, how_aligned, "
                                "verified_in, status, seconds, import_seconds, measured)")

    selftest = sub.add_parser("selftest", help="inject realistic bugs into the torch implementation and check "
                              "that the suite detects and localises them",
                              description="Run each fault of the self-test catalogue (nnparity/selftest.py) on a "
                                          "small case, clean and faulty, and print whether the suite detected it "
                                          "(a failing row, or a row classified worse than in the clean run) and "
                                          "localised it (the first such row in the order of computation is the "
                                          "expected one); then rerun the unaltered cases --repeats times. Exit "
                                          "code 0 when every fault is detected, >= 90% are localised and no "
                                          "unaltered run fails or changes; 1 otherwise.")
    selftest.add_argument("--repeats", type=_positive_int("--repeats"), default=20,
                          help="reruns of the unaltered cases after the faults (default 20)")
    selftest.add_argument("--json", action="store_true",
                          help='print one JSON object: {"faults": [...], "clean": [...], "summary": {...}}')

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
    bench.add_argument("--impl", default="all", help="numpy, torch, torch-compile, torch-nn, tf, tf-function, keras "
                       "(comma-separated) or all (default)")
    bench.add_argument("--dtype", default="all", help="float32, float64 or all (default)")
    bench.add_argument("--steps", type=_positive_int("--steps"),
                       help="gradient steps per timed call, at least 3 (default per network: cat 30, planar 300, wide 15)")
    bench.add_argument("--repeats", type=_positive_int("--repeats"), help="timed repetitions (default 5; quick 3)")
    bench.add_argument("--quick", action="store_true", help="few steps and repetitions, no suite-level timings")
    bench.add_argument("--no-report", action="store_true",
                       help="skip timing and profiling `nnparity report` (done by default unless --quick)")
    bench.add_argument("--suite", action="store_true", help="also time the test suite (python -m pytest -q; minutes)")
    bench.add_argument("--threads", type=_positive_int("--threads"),
                       help="threads of every pool in the workers (OpenMP, OpenBLAS, TensorFlow; default: theirs)")
    bench.add_argument("--out", default="bench/latest", help="output directory (default: bench/latest)")
    bench.add_argument("--force", action="store_true",
                       help="replace an existing output directory (only one nnparity bench wrote)")
    return parser


def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


# Flags that only act in some configurations: (flag, Case field, does it act?, why not, the fix).
_INEFFECTIVE = (
    ("--beta", "beta", lambda c: c.optimizer == "momentum", lambda c: f"with --optimizer {c.optimizer} "
     "(it is momentum's beta)", "use --optimizer momentum"),
    ("--beta1", "beta1", lambda c: c.optimizer == "adam", lambda c: f"with --optimizer {c.optimizer} "
     "(it is Adam's beta1)", "use --optimizer adam"),
    ("--beta2", "beta2", lambda c: c.optimizer in ("rmsprop", "adam"), lambda c: f"with --optimizer {c.optimizer} "
     "(it is RMSprop's and Adam's)", "use --optimizer rmsprop or adam"),
    ("--epsilon", "epsilon", lambda c: c.optimizer in ("rmsprop", "adam"), lambda c: f"with --optimizer "
     f"{c.optimizer} (it is RMSprop's and Adam's)", "use --optimizer rmsprop or adam"),
    ("--keep-prob", "keep_prob", lambda c: c.keep_prob == 1 or c.L > 1, lambda c: "on a network without hidden "
     f"layers (--layer-dims {','.join(map(str, c.layer_dims))}; dropout acts on hidden layers)",
     "add a hidden layer to --layer-dims"),
    ("--leaky-slope", "leaky_slope", lambda c: c.hidden_activation == "leaky_relu" and c.L > 1,
     lambda c: f"with --hidden-activation {c.hidden_activation}" if c.L > 1 else "on a network without hidden "
     "layers", "use --hidden-activation leaky_relu with a hidden layer"),
    ("--init-scale", "init_scale", lambda c: c.init == "small-random", lambda c: f"with --init {c.init} "
     "(it scales small-random)", "use --init small-random"),
    ("--dropout-seed", "dropout_seed", lambda c: c.dropout, lambda c: "without dropout",
     "add --keep-prob below 1 (with a hidden layer)"),
    ("--shuffle-seed", "shuffle_seed", lambda c: c.batch_size is not None, lambda c: "with full-batch training",
     "add --batch-size for mini-batches"),
)


def _refuse_ineffective(case, given) -> None:
    """UsageError for a flag the user passed (``given``: Case field names) that has no effect on ``case``."""
    for flag, name, acts, why, fix in _INEFFECTIVE:
        if name in given and not acts(case):
            raise UsageError(f"{flag} has no effect {why(case)}; drop it or {fix}")


def _available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n_bytes) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 / 10 else f"{n_bytes / 2**20:.1f} MiB"


def check_memory(case, m: int, available=None) -> None:
    """Refuse, before allocating anything, a run whose arrays cannot fit in the available memory.

    The estimate, in the case's dtype: every W[l], b[l] with its gradient and optimizer state (momentum and
    RMSprop one slot, Adam two), and per layer Z, A, dZ, dA of the largest batch; the dropout masks of every
    step (one byte an entry), the mini-batch schedule and the data cast to the dtype.  A framework holds a
    few more copies, so the estimate is a floor: a run that needs more than is available cannot succeed.
    """
    import numpy as np

    dims, itemsize = case.layer_dims, np.dtype(case.dtype).itemsize
    batch = min(case.batch_size or m, m)
    steps = case.epochs if case.batch_size is None else case.epochs * -(-m // batch)
    slots = 2 + {"gd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}.get(case.optimizer, 0)
    layers_fix = "use smaller --layer-dims or --batch-size"
    parts = {f"layer {l}: {dims[l]} units x {dims[l - 1]} inputs, {batch} examples a batch":
             ((slots * dims[l] * (dims[l - 1] + 1) + 4 * dims[l] * batch) * itemsize, layers_fix)
             for l in range(1, len(dims))}
    parts[f"the data: {dims[0]} features x {m} examples"] = (dims[0] * m * itemsize, "use less data")
    per_step = itemsize + (8 * batch if case.batch_size else 0) + (sum(dims[1:-1]) * batch if case.dropout else 0)
    parts[f"{steps} steps' costs{', batches' if case.batch_size else ''}{' and dropout masks' if case.dropout else ''}"] \
        = (steps * per_step, "use fewer --epochs")
    total = sum(size for size, _ in parts.values())
    available = _available_memory() if available is None else available
    if available is None or total <= available:
        return
    largest = max(parts, key=lambda k: parts[k][0])
    raise UsageError(f"this run needs about {_gib(total)} for the parameters and activations (largest: {largest}, "
                     f"{case.dtype}); this machine has {_gib(available)} available: {parts[largest][1]}")


def divergence(costs, final, learning_rate) -> dict:
    """What went wrong in a finished run: ``{}`` when nothing; ``{"diverged_at_step", "error"}`` when a cost is
    NaN or the final parameters are not finite (the run is a failure); ``{"saturated_from_step", "note"}`` when the
    cost is infinite with finite parameters (outputs rounded to exactly 0 or 1; training went on)."""
    import numpy as np

    costs = np.asarray(costs, dtype=np.float64)
    fix = f"(learning rate {learning_rate:g}); lower --learning-rate"
    nan = np.flatnonzero(np.isnan(costs))
    if nan.size:
        step = int(nan[0])
        return {"diverged_at_step": step, "error": f"training diverged: the cost is nan at step {step} {fix}"}
    if not all(np.all(np.isfinite(np.asarray(P, dtype=np.float64))) for P in final.values()):
        step = len(costs)
        return {"diverged_at_step": step, "error": f"training diverged: the parameters are not finite after the "
                                                   f"last update (step {step - 1}) {fix}"}
    inf = np.flatnonzero(np.isinf(costs))
    if inf.size:
        step = int(inf[0])
        return {"saturated_from_step": step,
                "note": f"the cost is infinite from step {step} because outputs saturated (AL rounded to exactly "
                        "0 or 1); the parameters stayed finite"}
    return {}


def cmd_train(args) -> int:
    import dataclasses

    import numpy as np

    from nnparity import data as data_mod
    from nnparity import impls
    from nnparity.progress import progress
    from nnparity.spec import Case
    from reference.initializers import initialize_parameters
    from reference.model import predict
    from reference.utils import dropout_masks, epoch_costs, minibatch_schedule, one_hot

    impl = impls.get(args.impl)
    dataset = data_mod.load_data(args.data)
    softmax = args.output_activation == "softmax"
    classes = int(dataset.Y.max()) + 1 if softmax else 1
    dims = args.layer_dims or (dataset.n_x, 4, classes)
    loss = args.loss or ("categorical_cross_entropy" if softmax else "cross_entropy")
    optional = {f.name: getattr(args, f.name) for f in dataclasses.fields(Case)
                if f.name in ("leaky_slope", "init_scale", "shuffle_seed", "beta", "beta1", "beta2", "epsilon",
                              "keep_prob", "dropout_seed", "output_gradient") and getattr(args, f.name) is not None}
    case = Case(layer_dims=dims, hidden_activation=args.hidden_activation, loss=loss,
                output_activation=args.output_activation, init=args.init, seed=args.seed,
                dtype=args.dtype, learning_rate=args.learning_rate, epochs=args.epochs,
                batch_size=args.batch_size, data=args.data, optimizer=args.optimizer, lambd=args.lambd,
                **optional).validate()
    _refuse_ineffective(case, optional)
    data_mod.check_data(dataset.X, dataset.Y, dims[0], case.loss, "training data", case.classes)
    test = None
    if args.test_data:
        test = data_mod.load_test_data(args.test_data)
        data_mod.check_data(test[0], test[1], dims[0], case.loss, "test data", case.classes)
    check_memory(case, dataset.m)

    Y = one_hot(dataset.Y, case.classes) if softmax else dataset.Y
    X, Y = dataset.X.astype(case.dtype), Y.astype(case.dtype)
    parameters = initialize_parameters(dims, case.init, case.init_scale, case.seed, case.dtype)
    schedule = minibatch_schedule(X.shape[1], case.batch_size, case.epochs, case.shuffle_seed)
    masks = dropout_masks(case, schedule, X.shape[1])
    steps = case.epochs if schedule is None else len(schedule)
    label = f"train {impl.name}"
    start = time.perf_counter()
    try:
        with progress(steps) as bar:
            bar.working(f"{label}: {steps} steps")
            if impl.name == "numpy":  # the reference reports each step; the frameworks' loops do not
                from reference.model import train

                final, costs = train(parameters, X, Y, case, schedule, masks,
                                     on_step=lambda step, *_: bar.count(step + 1, label))
            else:
                final, costs = impl.train(parameters, X, Y, case, schedule, masks)
    except impls.ImplUnavailable as exc:
        raise UsageError(f"{exc}; install it with: make setup (or pip install -e '.[all]')") from None
    seconds = time.perf_counter() - start
    problem = divergence(costs, final, case.learning_rate)
    if "error" in problem:
        costs = costs[: problem["diverged_at_step"] + 1]

    def accuracy(X_eval, Y_eval):
        P = {k: np.asarray(v, dtype=case.dtype) for k, v in final.items()}
        return float(np.mean(predict(X_eval.astype(case.dtype), P, case) == Y_eval))

    result = {"impl": impl.name, "costs": [_finite_or_none(c) for c in costs],
              "train_accuracy": None if "error" in problem else accuracy(dataset.X, dataset.Y),
              "test_accuracy": accuracy(*test) if test and "error" not in problem else None}
    if schedule is not None and "error" not in problem:
        result["epoch_costs"] = [_finite_or_none(c) for c in epoch_costs(costs, schedule, X.shape[1])]
    result.update(problem)
    if "note" in problem:
        result["note"] = _saturation_note(problem["note"], case)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{impl.name}: layer dims {','.join(map(str, dims))}, {case.hidden_activation}/"
              f"{case.output_activation}, {case.loss}, {case.dtype}, {steps} steps "
              f"({'full batch' if schedule is None else f'mini-batches of {case.batch_size}'}) in {seconds:.2f} s")
        shown = len(costs)
        every = max(1, shown // 10)
        for step in list(range(0, shown, every)) + ([shown - 1] if (shown - 1) % every else []):
            print(f"  step {step:>6}  cost {costs[step]:.10g}")
        if "error" not in problem:
            print(f"train accuracy {result['train_accuracy']:.4f}"
                  + (f", test accuracy {result['test_accuracy']:.4f}" if test else ""))
    if "error" in problem:
        print(f"nnparity train: error: {problem['error']}", file=sys.stderr)
        return 1
    if "note" in problem:
        print(f"nnparity train: note: {result['note']}", file=sys.stderr)
    return 0


def _saturation_note(note: str, case) -> str:
    if getattr(case, "output_gradient", "chained") == "fused":
        return note
    return note + "; the gradients stay finite with --output-gradient fused"


def cmd_report(args) -> int:
    from nnparity.outdir import claim

    with claim(args.out, args.force, "report"):  # --out checked and locked before any work, until it is written
        return _run_report(args)


def _run_report(args) -> int:
    import platform

    import pandas as pd

    from nnparity import data as data_mod
    from nnparity import environment, grid, harness, impls
    from nnparity.progress import progress
    from nnparity.catalogue import run_catalogue
    from nnparity.selftest import run_selftest, selftest_markdown
    from reports.build import write_report
    from reports.sections import classification_section, divergences_section, drift_section

    names = [n for n in impls.parse_list(args.impl) if n != "numpy"]
    if not names:
        raise UsageError("--impl numpy compares nothing (numpy is the reference); add torch, tf or tf-function")
    cases = grid.select(grid.default_grid(), args.cases)
    frames, reference_costs = [], []
    started = time.time()
    with progress(len(cases)) as bar:
        for case in cases:
            t = time.perf_counter()
            bar.working(f"{case.id}: numpy (reference)")
            ref = harness.run_reference(case, data_mod.load_data(case.data))
            reference_costs.append(pd.DataFrame({"case": case.id, "impl": "numpy",
                                                 "step": range(len(ref.costs)), "cost": ref.costs}))
            compared = []
            for name in names:
                bar.working(f"{case.id}: {name}")
                compared.append(harness.compare_impl(ref, name))
            frames += compared
            bar.finished(case.id, _case_status(compared), time.perf_counter() - t)
    details = pd.concat(frames, ignore_index=True)
    trajectories = pd.concat(reference_costs + [_impl_costs(details)], ignore_index=True)
    meta = {"command": " ".join(["nnparity"] + sys.argv[1:]), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 1), "python": platform.python_version(),
            "versions": _versions(names), "force": args.force}
    sections = [classification_section(details), drift_section(details), divergences_section(cases, names)]
    if args.selftest:
        print("self-test: injecting faults ...", file=sys.stderr, flush=True)
        faults_df, clean_df = run_selftest(repeats=args.selftest_repeats)
        sections.append(selftest_markdown(faults_df, clean_df))
    catalogue = run_catalogue() if args.catalogue else None  # before env.json: it records the frameworks imported
    env = environment.collect(command=meta["command"], started=meta["started"], seconds=meta["seconds"],
                              implementations=names)
    bench = None
    if args.bench:  # quick settings; each implementation in a fresh process
        from nnparity import bench as bench_mod

        print("benchmark (quick) ...", file=sys.stderr, flush=True)
        bench = bench_mod.report_table(bench_mod.run_bench(impls=["numpy"] + names, quick=True)[1])
    out = write_report(details, args.out, meta, cases=cases, trajectories=trajectories, env=env, catalogue=catalogue,
                       sections=[s for s in sections if s], bench=bench)
    code = _report_exit_code(details)
    unavailable = details.loc[details["phase"] == "unavailable", "impl"].unique()
    print(f"report written to {out}: " + {
        0: "all comparisons pass",
        1: "some comparisons FAIL",
        3: f"INCOMPLETE: {', '.join(unavailable)} could not run (see the report); everything that ran passes",
    }[code])
    return code


REPORT_EXIT_CODES = """\
exit codes:
  0  every comparison passes
  1  a comparison fails (whatever else happened)
  2  bad input, nothing written, checked before any work: unknown --impl, --cases matching nothing; --out
     a file, a directory nnparity did not write (no nnparity.json; --force does not replace it), an
     nnparity report directory without --force, or not writable; another nnparity run writing --out
  3  incomplete: an implementation could not run (framework not installed or failing to import: its
     rows in the report say why); everything that did run passes. The report is still written.
"""


def _case_status(frames) -> str:
    """``FAIL`` if a comparison that ran failed, ``unavailable`` if an implementation could not run, else ``pass``."""
    import pandas as pd

    if not frames:
        return "pass"
    rows = pd.concat(frames, ignore_index=True)
    ran = rows[rows["phase"] != "unavailable"]
    if not ran["passed"].astype(bool).all():
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


def _report_exit_code(details) -> int:
    """0 all pass; 1 a comparison that ran failed; 3 (nothing failed) an implementation was unavailable."""
    unavailable = details["phase"] == "unavailable"
    if not details.loc[~unavailable, "passed"].astype(bool).all():
        return 1
    return 3 if unavailable.any() else 0


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
"""

COMPARE_EXIT_CODES = """\
exit codes:
  0  nothing went from pass to fail and no row drifted more than --max-drift
  1  a row (or a case x implementation) went from pass to fail, or drifted more than --max-drift
  2  bad input: BASELINE or CANDIDATE missing, not a report directory, a .tmp-* leftover, half-written
     or altered (a file missing or differing from nnparity.json), or written by an older nnparity;
     --out a file, a directory nnparity compare did not write, existing without --force, or not
     writable; another nnparity run writing --out
  3  incomplete: the candidate could not run an implementation the baseline ran (and nothing of 1)
  4  not comparable: the reports cover different case x implementation pairs (different --cases or
     --impl), dtypes or numbers of steps; nothing written. Rerun both the same way, or pass
     --intersection to compare only the pairs that match
"""


def _max_drift(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-drift must be a number, got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"--max-drift must be >= 0, got {text}")
    return value


def cmd_compare(args) -> int:
    from nnparity.outdir import claim, compare_out, verify

    for role, path in (("BASELINE", args.baseline), ("CANDIDATE", args.candidate)):
        verify(path, "report", role)  # first: a missing CANDIDATE must not be created as the parent of --out
    out = args.out or compare_out(args.baseline, args.candidate)
    with claim(out, args.force, "compare"):  # checked and locked before pandas is even imported
        from reports import compare as compare_mod

        try:
            comparison, out = compare_mod.run(args.baseline, args.candidate, out, args.max_drift, args.force,
                                              args.intersection)
        except compare_mod.NotComparable as exc:
            print(f"nnparity compare: {exc}", file=sys.stderr)
            return compare_mod.EXIT_NOT_COMPARABLE
    print(comparison.verdict())
    for line in comparison.headlines():
        print(f"  {line}")
    print(f"drift report written to {out}/drift.md")
    return comparison.exit_code


def cmd_drift(args) -> int:
    import pandas as pd

    from nnparity import data as data_mod
    from nnparity import drift, grid, harness, impls
    from nnparity.progress import progress

    names = [n for n in impls.parse_list(args.impl) if n != "numpy"]
    if not names:
        raise UsageError("--impl numpy measures no drift (numpy is the reference every implementation is compared "
                         f"with); name one or more of: {', '.join(n for n in IMPLS if n != 'numpy')}")
    if args.csv:
        _check_output_file(args.csv, "--csv")
    dataset = data_mod.load_data(args.data) if args.data else None
    runs = []
    for case in grid.select(grid.default_grid(), args.cases):
        ds = dataset or data_mod.load_data(case.data)
        changes = {"data": args.data or case.data, "layer_dims": (ds.n_x,) + case.layer_dims[1:]}
        if args.learning_rate:
            changes["learning_rate"] = args.learning_rate
        per_epoch = 1 if case.batch_size is None else -(-ds.m // case.batch_size)
        changes["epochs"] = -(-args.steps // per_epoch)
        case = case.replace(**changes).validate()
        data_mod.check_data(ds.X, ds.Y, case.layer_dims[0], case.loss, classes=case.classes)
        check_memory(case, ds.m)
        runs.append((case, ds))
    frames = []
    with progress(len(runs) * len(names)) as bar:
        for case, ds in runs:
            t = time.perf_counter()
            bar.working(f"{case.id}: numpy (reference), {args.steps} steps")
            ref = harness.run_reference(case, ds)
            for name in names:
                bar.working(f"{case.id}: {name}, {args.steps} steps")
                frame = harness.compare_impl(ref, name)
                frames.append(frame[frame["phase"].isin(["trajectory", "unavailable"])])
                status = "unavailable" if (frame["phase"] == "unavailable").any() else "done"
                bar.finished(f"{case.id} {name}", status, time.perf_counter() - t)
                t = time.perf_counter()
    details = pd.concat(frames, ignore_index=True)
    table = drift.horizon_table(details)
    if args.csv:
        drift.growth(details).to_csv(args.csv)
    shown = table.drop(columns=["horizon"]).rename(
        columns=lambda c: c.replace("rel_err_last_step", "last step").replace("rel_err_step_", "step "))
    print(shown.to_string(index=False, float_format=lambda x: f"{x:.2e}"))
    return 0


def _check_output_file(path, flag) -> None:
    """UsageError, before any work, unless ``path`` can be written as a file."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory; give a file name, e.g. {os.path.join(path, 'drift.csv')}")
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path} is not writable; choose another path")


def cmd_catalogue(args) -> int:
    import textwrap

    from nnparity.catalogue import records, run_catalogue

    rows = records(run_catalogue())
    if args.json:
        print(json.dumps(rows, indent=2, allow_nan=False))
    else:
        fields = [("what differs", "what_differs"), ("case", "case"), ("default", "default_result"),
                  ("aligned", "aligned_result"), ("effect", "effect"), ("how aligned", "how_aligned"),
                  ("verified in", "verified_in")]
        for i, row in enumerate(rows, start=1):
            version = f" ({row['framework_version']})" if row["framework_version"] else ""
            print(f"[{i}] {row['id']}: {row['title']}{version}")
            if row["status"] != "ok":
                print(f"    {row['status']}\n")
                continue
            for label, key in fields:
                print(textwrap.fill(row[key], width=110, initial_indent=f"    {label + ':':<14}",
                                    subsequent_indent=" " * 18))
            print()
    return 1 if any(row["status"].startswith("error") for row in rows) else 0


def cmd_bench(args) -> int:
    from nnparity import bench

    return bench.cmd_bench(args)


def cmd_selftest(args) -> int:
    from nnparity import selftest

    faults, clean = selftest.run_selftest(repeats=args.repeats)
    result = selftest.summary(faults, clean)
    if args.json:
        print(json.dumps(selftest.to_json(faults, clean), indent=2, allow_nan=False))
    else:
        print(selftest.format_table(faults, clean))
    return 0 if result["ok"] else 1


def _versions(names):
    """The versions of the distributions the report's implementations need (from the registry)."""
    from nnparity import impls
    from nnparity.environment import versions

    found = versions()
    wanted = {"numpy", "pandas"} | {d for n in names for d in getattr(impls.get(n), "requires", ())}
    return {d: v for d, v in found.items() if v is not None and (d in wanted or d == "tensorflow" and
                                                                  "tensorflow-cpu" in wanted)}


def main(argv=None) -> int:
    """Run one command; every failure the user can act on is one line on stderr (exit codes: README)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": cmd_train, "report": cmd_report, "drift": cmd_drift, "compare": cmd_compare,
               "catalogue": cmd_catalogue, "selftest": cmd_selftest, "bench": cmd_bench}[args.command]
    try:
        with _quiet_numerics():
            code = command(args)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except UsageError as exc:
        print(f"nnparity {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        why = " ".join(str(exc).split()) or "an allocation failed"
        print(f"nnparity {args.command}: error: out of memory ({why}); use smaller --layer-dims or --batch-size, "
              "or fewer --epochs", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a SIGPIPE'd Unix tool would
        _stdout_to_devnull()
        return 141
    except KeyboardInterrupt:
        print(f"nnparity {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


def _quiet_numerics():
    """NumPy's floating-point warnings (overflow in exp, log(0), ...) never reach the user: a diverging or
    saturating run is reported in words by the command (train: the step and the fix)."""
    import contextlib
    import warnings

    import numpy as np

    stack = contextlib.ExitStack()
    stack.enter_context(np.errstate(all="ignore"))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", RuntimeWarning)
    return stack


def _stdout_to_devnull():
    """Point stdout at /dev/null so that the interpreter's final flush of a closed pipe is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (an in-process capture)
        pass


if __name__ == "__main__":
    sys.exit(main())
