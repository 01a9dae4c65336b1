"""The parity grids: the networks of the notes on embedded data.

``test_grid()`` is what ``parity_tests`` runs: L in {1, 2, 4} x hidden activation
{relu, tanh, sigmoid, leaky_relu} x dtype {float64, float32} x {full batch,
mini-batch}.  The networks are the notes' three: logistic regression on
images (L = 1, digits 3 vs 8), the 2-layer network on the planar flower
(``2, 4, 1``), and the L-layer network on images (``64, 20, 7, 5, 1``).  Every run
is at least 1000 gradient steps.  ``default_grid()`` is what ``nnparity report``
runs: the same networks with their notes' activations, in both dtypes and
batch modes.
"""

from __future__ import annotations

import functools

from nnparity.spec import Case

HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu")
DTYPES = ("float64", "float32")
MINIBATCH = 64

# (L, layer dims, data, full-batch epochs, mini-batch epochs): both give >= 1000 gradient steps.
NETWORKS = {
    1: ((64, 1), "digits-3v8", 1000, 200),  # 267 examples: 5 mini-batches an epoch
    2: ((2, 4, 1), "planar", 1000, 143),  # 400 examples: 7 mini-batches an epoch
    4: ((64, 20, 7, 5, 1), "digits-3v8", 1000, 200),
}

# Learning rates of a steady descent: large enough to move in 1000 steps, small enough that no
# example saturates the float32 sigmoid (AL rounding to exactly 1 makes the cross-entropy inf).
LEARNING_RATE = {1: 0.05, 2: 0.05, 4: 0.05}


def case_for(L: int, hidden: str, dtype: str, minibatch: bool, **changes) -> Case:
    dims, data, full_epochs, mini_epochs = NETWORKS[L]
    case = Case(
        layer_dims=dims,
        hidden_activation=hidden,
        dtype=dtype,
        learning_rate=LEARNING_RATE[L],
        epochs=mini_epochs if minibatch else full_epochs,
        batch_size=MINIBATCH if minibatch else None,
        data=data,
    )
    case = case.replace(name=_name(case), **changes)
    return case


def _name(case: Case) -> str:
    act = "logreg" if case.L == 1 else case.hidden_activation.replace("_", "")
    return f"l{case.L}-{act}-{case.dtype}-{'fullbatch' if case.batch_size is None else 'minibatch'}"


def test_grid() -> list[Case]:
    cases = []
    for L in NETWORKS:
        for hidden in HIDDEN if L > 1 else ("relu",):  # L = 1 has no hidden layer
            for dtype in DTYPES:
                for minibatch in (False, True):
                    cases.append(case_for(L, hidden, dtype, minibatch))
    return cases


POWER_CASES = ("l1-logreg-saturating-float64-fullbatch", "l2-sigmoid-saturating-float64-fullbatch",
               "l4-relu-large-gradients-float32-fullbatch", "l4-relu-nonzero-biases-float64-minibatch")


def power_grid() -> list[Case]:
    """Short cases (200 steps) that give the suite power where the notes' cases have little: outputs that
    saturate (logistic regression at learning rate 2: saturated by step 2, where a sigmoid that loses its
    relative accuracy near 0 shows), a hidden sigmoid layer, and large gradients (He initialisation at learning
    rate 0.3: the gradient peaks at step 39, where a gradient clip would fire), in float32; and biases that are
    not zero from the first step (a bias broadcast along the wrong axis, or a bias gradient dropped, shows at
    step 0), on mini-batches of the 4-layer network (50 steps).  Their checkpoints
    (``harness.DEFAULT_CHECKPOINTS``) include the saturated step and the gradient peak."""
    return [
        case_for(1, "relu", "float64", False, epochs=200, learning_rate=2.0).replace(
            name="l1-logreg-saturating-float64-fullbatch"),
        case_for(2, "sigmoid", "float64", False, epochs=200, learning_rate=1.2).replace(
            name="l2-sigmoid-saturating-float64-fullbatch"),
        case_for(4, "relu", "float32", False, epochs=200, learning_rate=0.3, init="he").replace(
            name="l4-relu-large-gradients-float32-fullbatch"),
        case_for(4, "relu", "float64", True, epochs=10, bias_scale=0.5).replace(
            name="l4-relu-nonzero-biases-float64-minibatch"),
    ]


def default_grid() -> list[Case]:
    """The report's grid, in both tiers: every implementation meets every feature of the grids in both dtypes
    (``features``; ``parity_tests`` computes the coverage from the case definitions), and every combination that
    changes a formula: L2 and dropout with a smaller last mini-batch, each optimiser with a learning-rate decay.
    The notes' three networks with their own activations (1000 steps; full batch in one dtype, mini-batch in the
    other), eight short training cases (about 200 steps) and the short cases of ``power_grid`` (saturation, a
    hidden sigmoid layer, large gradients, non-zero biases)."""
    notes = [case_for(L, hidden, dtype, minibatch) for L, hidden, dtype, minibatch in (
        (1, "relu", "float64", False), (1, "relu", "float32", True), (2, "tanh", "float64", True),
        (2, "tanh", "float32", False), (4, "relu", "float64", False), (4, "relu", "float32", True))]
    training = [training_case(*args, **changes) for args, changes in DEFAULT_TRAINING]
    return notes + training + power_grid()


INVERSE_TIME = {"decay": "inverse-time", "decay_rate": 0.1}
SCHEDULED = {"decay": "scheduled", "decay_rate": 0.5, "time_interval": 10}

#: The training cases of the default grid, ``training_case``'s arguments and changes: with the notes' cases
#: (gradient descent, relu and tanh, both batch modes in both dtypes) every optimiser, regulariser, output,
#: hidden activation, decay, initialisation and initial biases in both dtypes, L2 and dropout on mini-batches,
#: each optimiser under a decay.
DEFAULT_TRAINING = (
    (("adam", "dropout", "softmax", "float64", True), {"hidden": "tanh", "decay": INVERSE_TIME, "init": "he"}),
    (("momentum", "l2", "sigmoid", "float64", True), {"hidden": "sigmoid", "decay": SCHEDULED}),
    (("rmsprop", "none", "softmax", "float64", True), {}),
    (("gd", "none", "sigmoid", "float64", True), {"hidden": "leaky_relu", "decay": INVERSE_TIME}),
    (("momentum", "dropout", "sigmoid", "float32", True), {"hidden": "sigmoid", "bias_scale": 0.5}),
    (("adam", "none", "sigmoid", "float32", True), {"decay": SCHEDULED}),
    (("rmsprop", "l2", "softmax", "float32", True), {"hidden": "leaky_relu", "decay": INVERSE_TIME}),
    (("gd", "none", "sigmoid", "float32", False), {}),
)


def features(case: Case) -> set[tuple]:
    """What ``case`` exercises, each feature with the dtype it runs in: the network (L), hidden activation,
    output, loss, optimiser, regulariser, batch mode, decay, initialisation and initial biases; L2 and dropout
    on a smaller last mini-batch (their formulas divide by the batch's own size); and, without a dtype, each
    optimiser under a decay and each power case (``power_grid``) by name."""
    from nnparity import data

    regulariser = "l2" if case.lambd else "dropout" if case.dropout else "none"
    found = {("network", case.L), ("output", case.output_activation), ("loss", case.loss),
             ("optimizer", case.optimizer), ("regulariser", regulariser), ("decay", case.decay),
             ("batch", "full" if case.batch_size is None else "mini"), ("init", case.init),
             ("biases", "zero" if case.bias_scale == 0 else "non-zero")}
    if case.L > 1:
        found.add(("hidden", case.hidden_activation))
    if case.batch_size is not None and regulariser != "none" and data.size(case.data) % case.batch_size:
        found.add((f"{regulariser} on a smaller last mini-batch", True))
    typed = {(kind, value, case.dtype) for kind, value in found}
    if case.decay != "none":
        typed.add(("decay with", case.optimizer, None))
    if case.name in POWER_CASES:
        typed.add(("power case", case.name, None))
    return typed


def cover(cases: list[Case]) -> list[Case]:
    """A small subset of ``cases`` with every feature of all of them (``features``): greedily the case that adds
    the most, ties to the shorter run, then to grid order.  What the quick tier of the pytest grids runs."""
    return list(_cover(tuple(cases)))


@functools.lru_cache(maxsize=16)  # collection asks for the same cover once per implementation, grid and tier
def _cover(cases: tuple) -> tuple:
    from nnparity import data

    found = {c: features(c) for c in cases}
    wanted = set().union(*found.values()) if cases else set()
    chosen, pool = [], list(cases)
    while wanted:
        best = min(pool, key=lambda c: (-len(found[c] & wanted), c.steps(data.size(c.data))))
        chosen.append(best)
        pool.remove(best)
        wanted -= found[best]
    return tuple(c for c in cases if c in chosen)


def parity_grids() -> list[list[Case]]:
    """The grids ``parity_tests`` compare pair by pair, each its own test file (``nnparity.testing``'s default):
    the test grid, the training grid and the power cases."""
    return [test_grid(), training_grid(), power_grid()]


def parity_cases() -> list[Case]:
    """Every case of ``parity_grids``, in order: the cases whose one cover the pytest grids' quick tier runs."""
    return [case for cases in parity_grids() for case in cases]


def every_case() -> list[Case]:
    """Every grid's cases, once each (default, test and training grids): what ``report --cases`` chooses from."""
    return list({c.id: c for c in default_grid() + test_grid() + training_grid()}.values())


def select(cases: list[Case], patterns: str) -> list[Case]:
    """The cases whose id matches one of the comma-separated glob ``patterns``."""
    from fnmatch import fnmatchcase

    from nnparity.errors import UsageError

    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [c for c in cases if any(fnmatchcase(c.id, p) for p in wanted)]
    if not chosen:
        raise UsageError(f"--cases {patterns!r} matches no case; ids look like {cases[0].id} "
                         f"(all: {', '.join(c.id for c in cases)})")
    return chosen


# Issue 6's grid: every optimiser x regularisation x output, float64 and float32, full and mini-batch.
OPTIMIZER_RATES = {"gd": 0.05, "momentum": 0.05, "rmsprop": 0.0002, "adam": 0.0005}
REGULARISATION = {"none": {}, "l2": {"lambd": 0.7}, "dropout": {"keep_prob": 0.86}}
OUTPUTS = {
    # (layer dims, data, full-batch epochs, mini-batch epochs): about 200 gradient steps each
    "sigmoid": ((64, 20, 7, 5, 1), "digits-3v8", 200, 40),  # 267 examples: 5 mini-batches an epoch
    "softmax": ((64, 20, 7, 10), "digits", 200, 10),  # 1347 examples: 22 mini-batches an epoch
}


# The course's learning-rate decay, a few cases only (the grid is long already): (optimizer, dtype, mini-batch,
# decay).  Each rate changes within the run: sigmoid mini-batch runs have 40 epochs, full-batch ones 200.
DECAY_CASES = (
    ("gd", "float64", True, {"decay": "inverse-time", "decay_rate": 0.1}),
    ("momentum", "float64", False, {"decay": "inverse-time", "decay_rate": 0.01}),
    ("adam", "float32", True, {"decay": "scheduled", "decay_rate": 0.5, "time_interval": 10}),
)


def training_case(optimizer: str, regularisation: str, output: str, dtype: str, minibatch: bool,
                  decay: dict | None = None, hidden: str = "relu", **changes) -> Case:
    """A case of the training grid: relu hidden layers unless ``hidden`` (then named after the output, e.g.
    ``softmax-tanh-adam-...``); ``decay`` and ``changes`` are further Case fields."""
    dims, data, full_epochs, mini_epochs = OUTPUTS[output]
    case = Case(
        layer_dims=dims,
        hidden_activation=hidden,
        output_activation=output,
        loss="cross_entropy" if output == "sigmoid" else "categorical_cross_entropy",
        dtype=dtype,
        optimizer=optimizer,
        learning_rate=OPTIMIZER_RATES[optimizer],
        epochs=mini_epochs if minibatch else full_epochs,
        batch_size=MINIBATCH if minibatch else None,
        data=data,
        **REGULARISATION[regularisation],
        **(decay or {}),
        **changes,
    )
    batch = "minibatch" if minibatch else "fullbatch"
    schedule = "" if case.decay == "none" else f"-{case.decay}-decay"
    activation = "" if hidden == "relu" else f"-{hidden.replace('_', '')}"
    start = ("" if case.init == "inv-sqrt" else f"-{case.init}-init") + ("-nonzero-biases" if case.bias_scale else "")
    return case.replace(name=f"{output}{activation}-{optimizer}-{regularisation}{schedule}{start}-{dtype}-{batch}")


def training_grid() -> list[Case]:
    return ([training_case(o, r, out, d, mb) for out in OUTPUTS for o in OPTIMIZER_RATES for r in REGULARISATION
             for d in DTYPES for mb in (False, True)]
            + [training_case(o, "none", "sigmoid", d, mb, decay) for o, d, mb, decay in DECAY_CASES])


#: The cases an implementation with ``grid="representative"`` in the registry runs: every L, hidden
#: activation, dtype and batch mode of ``test_grid``; every optimiser, L2, dropout and softmax of
#: ``training_grid`` (``parity_tests`` checks the coverage), and a learning-rate decay.
REPRESENTATIVE = (
    "l1-logreg-float64-fullbatch", "l2-tanh-float32-minibatch", "l2-sigmoid-float64-minibatch",
    "l4-leakyrelu-float32-fullbatch", "l4-relu-float64-minibatch",
    "sigmoid-momentum-l2-float64-fullbatch", "sigmoid-adam-dropout-float32-minibatch",
    "softmax-rmsprop-none-float64-minibatch", "softmax-gd-dropout-float64-fullbatch",
    "sigmoid-adam-none-scheduled-decay-float32-minibatch",
)


def for_impl(cases: list[Case], impl, tier: str = "full", cover_of: list[Case] | None = None) -> list[Case]:
    """The cases of a grid that implementation ``impl`` (a registry entry) runs in ``tier``: in the quick tier
    every implementation the cases of ``cases`` in the ``cover`` of ``cover_of`` (default: ``cases``; every
    feature in each dtype), in the full tier all of them, or, where the registry entry says
    ``grid="representative"``, the representative ones, the quick tier's and the grid's own cover (the full tier
    runs every pair the quick tier runs).  ``cover_of=parity_cases()`` (the pytest grids) takes one cover of the
    three grids: a feature one grid's cases meet is not met again by another's (19 cases for each implementation
    against 24)."""
    chosen = set(cover(cases if cover_of is None else cover_of))
    if tier == "quick":
        return [c for c in cases if c in chosen]
    if getattr(impl, "grid", "full") == "full":
        return list(cases)
    chosen |= set(cover(cases))
    return [c for c in cases if c.name in REPRESENTATIVE or c in chosen]
