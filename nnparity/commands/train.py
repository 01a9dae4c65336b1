"""``nnparity train``: train one network with one implementation and print its costs and accuracy."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from nnparity.commands import EXAMPLES
from nnparity.commands.args import layer_dims, non_negative_float, non_negative_int, positive_float, positive_int
from nnparity.data import EMBEDDED
from nnparity.errors import UsageError
from nnparity.impls import IMPLS
from nnparity.memory import check_memory
from nnparity.spec import DECAYS, DTYPES, HIDDEN_ACTIVATIONS, INITS, LOSSES


def add_parser(sub):
    """The `train` sub-command's parser (its options beside the code that reads them)."""
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
    train.add_argument("--layer-dims", type=layer_dims,
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
    train.add_argument("--init-scale", type=positive_float("--init-scale"),
                       help="scale of small-random (default 0.01)")
    train.add_argument("--seed", type=non_negative_int("--seed"), default=1, help="initialisation seed (default 1)")
    train.add_argument("--learning-rate", type=positive_float("--learning-rate"), default=0.0075,
                       help="gradient descent step alpha (default 0.0075)")
    train.add_argument("--decay", help=f"learning-rate decay per epoch: {', '.join(DECAYS)} (default none); "
                       "inverse-time: alpha0 / (1 + decay_rate epoch), the course's update_lr; scheduled: "
                       "alpha0 / (1 + decay_rate floor(epoch / time_interval)), its schedule_lr_decay")
    train.add_argument("--decay-rate", type=non_negative_float("--decay-rate"),
                       help="the decay's decay_rate (needs --decay)")
    train.add_argument("--time-interval", type=positive_int("--time-interval"),
                       help="scheduled decay: the rate changes every time_interval epochs (default 1000)")
    train.add_argument("--epochs", type=positive_int("--epochs"), default=100,
                       help="passes over the training set; full batch: one step each (default 100)")
    train.add_argument("--batch-size", type=positive_int("--batch-size"),
                       help="mini-batch size (1 = SGD; default: full batch)")
    train.add_argument("--shuffle-seed", type=non_negative_int("--shuffle-seed"),
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
    train.add_argument("--dropout-seed", type=non_negative_int("--dropout-seed"),
                       help="step t's dropout masks come from RandomState(dropout_seed + t) (default 3)")
    train.add_argument("--json", action="store_true", help='print one JSON object: {"impl", "costs", '
                       '"train_accuracy", "test_accuracy"}, and with mini-batches "epoch_costs"')
    return train


def run(args) -> int:
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
                              "keep_prob", "dropout_seed", "output_gradient", "decay", "decay_rate", "time_interval")
                and getattr(args, f.name) is not None}
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
    ("--decay-rate", "decay_rate", lambda c: c.decay != "none", lambda c: "without a learning-rate decay",
     "add --decay inverse-time or --decay scheduled"),
    ("--time-interval", "time_interval", lambda c: c.decay == "scheduled", lambda c: f"with --decay {c.decay} "
     "(it is the scheduled decay's interval)", "use --decay scheduled"),
)


def _refuse_ineffective(case, given) -> None:
    """UsageError for a flag the user passed (``given``: Case field names) that has no effect on ``case``."""
    for flag, name, acts, why, fix in _INEFFECTIVE:
        if name in given and not acts(case):
            raise UsageError(f"{flag} has no effect {why(case)}; drop it or {fix}")








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


def _saturation_note(note: str, case) -> str:
    if getattr(case, "output_gradient", "chained") == "fused":
        return note
    return note + "; the gradients stay finite with --output-gradient fused"
