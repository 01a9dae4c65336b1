"""The framework folders mirror the reference: for each module of ``reference/`` that ``torch_impl/``, ``tf_impl/``
and ``jax_impl/`` also have, the public functions they share appear in the reference's order, and every function
a framework lacks or adds is listed below with its reason.  The idiomatic modules (no reference module) take the
arguments of the functions they share in one order, under one name.

The sources are parsed (``ast``), never imported: no framework is needed.
"""

import ast
import itertools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FRAMEWORKS = ("torch_impl", "tf_impl", "jax_impl")
#: Modules every folder has that mirror no equation: ``framework.py`` is each folder's descriptor (nnparity.impls'
#: ``Framework``: its probes, explain markers, divergences), its own answers, not the reference's functions.
NOT_MIRRORED = {"__init__", "framework"}
#: Reference modules whose framework twins are the frameworks' own layer objects (the course's Keras models in
#: torch.nn, Keras and flax): checked as the idiomatic modules are, by the functions they share
#: (``test_the_convnet_modules_share_the_references_entry_points``), not function by function.
IDIOMATIC_TWINS = {"convnet"}
MIRRORED = sorted(p.stem for p in (ROOT / "reference").glob("*.py")
                  if p.stem not in NOT_MIRRORED | IDIOMATIC_TWINS and all((ROOT / f / p.name).exists()
                                                                      for f in FRAMEWORKS))

_AUTODIFF = "the framework's autodiff derives the backward pass: no hand-written backward"
_SCHEDULE = "plain Python arithmetic of the schedule: the frameworks import the reference's (reference.optimizers)"
_CONVERSION = "NumPy in, NumPy out: the protocol's conversion to and from the framework's arrays"

#: Reference functions that no framework has, by module: function -> reason.
LACKED_BY_ALL = {
    "activations": {
        **{f: "each framework's own op (torch.sigmoid, tf.nn.relu, jax.nn...) through activation_forward"
           for f in ("sigmoid", "tanh", "relu", "leaky_relu", "linear", "softmax")},
        **{f: _AUTODIFF for f in ("sigmoid_backward", "tanh_backward", "relu_backward", "leaky_relu_backward",
                                  "linear_backward_activation", "softmax_backward", "activation_backward")},
    },
    "losses": {
        **{f: "each framework's cost is its own ops in compute_cost, for every loss"
           for f in ("l1", "l2", "cross_entropy_cost", "categorical_cross_entropy_cost", "l1_cost", "l2_cost",
                     "l2_regularization_cost")},
        **{f: _AUTODIFF for f in ("cross_entropy_backward", "categorical_cross_entropy_backward", "l1_backward",
                                  "l2_backward", "cost_backward")},
    },
    "conv": {f: "a loop internal of the course's layers: the framework's op computes every window at once"
             for f in ("conv_single_step", "create_mask_from_window", "distribute_value")},
    "model": {"linear_backward": _AUTODIFF, "linear_activation_backward": _AUTODIFF},
    "optimizers": {
        "bias_corrected": "Adam's correction in float64 Python: the frameworks take the reference's bias_corrections",
        "bias_corrections": _SCHEDULE, "update_lr": _SCHEDULE, "schedule_lr_decay": _SCHEDULE,
        "learning_rate_at": _SCHEDULE, "learning_rates": _SCHEDULE, "steps_per_epoch": _SCHEDULE,
    },
}

#: Functions one framework adds (not in the reference module), by (framework, module): function -> reason.
ADDED = {
    **{(f, "losses"): {"logits_cost": "the cross-entropy from the logits, the fused form each framework offers"}
       for f in FRAMEWORKS},
    ("torch_impl", "model"): {"setup": "seeds and determinism switches set before every run",
                              "to_tensor": _CONVERSION, "to_numpy": _CONVERSION},
    ("tf_impl", "model"): {"setup": "seeds and determinism switches set before every run",
                           "to_tensor": _CONVERSION, "to_numpy": _CONVERSION,
                           "make_train_step": "the step as a Python function, eager or under tf.function",
                           "compiled_step": "make_train_step under tf.function, traced once per network",
                           "clear_compiled": "forgets the compiled steps (the protocol's clear_compiled)"},
    ("jax_impl", "model"): {"to_tensor": _CONVERSION, "to_numpy": _CONVERSION,
                            "zero_shifts": "the points where model_backward reads dZ and dA (jax.grad of shifts)",
                            "capture": "one forward and backward pass as jax arrays, jitted or not",
                            "train_step": "one gradient step as a pure function, for jax.jit",
                            "clear_compiled": "forgets the compiled steps (the protocol's clear_compiled)"},
}

_LAYOUT = "torch's layout (NCHW images, OIHW kernels) and back, at the boundary"
_CHAIN = "the whole conv chain as one function, so that it can be compiled"
ADDED.update({
    ("torch_impl", "conv"): {"setup": "seeds and determinism switches set before every run",
                             "to_tensor": _CONVERSION, "to_numpy": _CONVERSION,
                             **{f: _LAYOUT for f in ("to_nchw", "to_nhwc", "to_oihw", "to_hwio")}},
    ("tf_impl", "conv"): {"setup": "seeds and determinism switches set before every run",
                          "to_tensor": _CONVERSION, "to_numpy": _CONVERSION, "chain": _CHAIN,
                          "compiled_chain": "chain under tf.function, traced once per case",
                          "clear_compiled": "forgets the compiled chains (the protocol's clear_compiled)"},
    ("jax_impl", "conv"): {"to_tensor": _CONVERSION, "to_numpy": _CONVERSION, "chain": _CHAIN,
                           "clear_compiled": "forgets the compiled chains (the protocol's clear_compiled)"},
})

IDIOMATIC = tuple(f"{f}/idiomatic.py" for f in FRAMEWORKS)
_LAYER = "the framework's layer object: torch's nn.Linear, Keras' Dense, flax's nnx.Linear"
_OUTPUT = "the forward's output in the form that framework's cost reads"
#: Arguments that play one part under each framework's own name, by function: name -> the part's name.
SAME_PART = {
    "to_numpy": {"tensor": "value", "array": "value"},
    "linear_forward": {"linear": "layer", "dense": "layer"},
    "linear_activation_forward": {"linear": "layer", "dense": "layer"},
    "recorded_cost": {"out": "output", "AL": "output", "caches": "output"},
}
#: Shared idiomatic functions whose arguments differ (beyond SAME_PART): only the arguments that any two of them
#: have in common must come in one order.
DIFFERENT_ARGUMENTS = {
    "loss_function": "Keras' loss takes the dtype; flax's loss has no fused output gradient option",
    "build_model": "Keras puts the L2 term on the layers (kernel_regularizer): it takes the regulariser",
    "model_forward": "what each framework's forward keeps for the captures: caches, capture layers, shifts",
    "model_backward": "each autodiff's own input: torch the cost, Keras the tape, JAX the model and the batch",
    "make_optimizer": "torch's optimiser takes the model's parameters; Keras and optax the steps of an epoch",
    "total_cost": "Keras' takes its loss object, output and logits; JAX's is the function of the batch nnx.grad takes",
    "recorded_cost": "torch's cost has no L2 term to add (weight decay in the optimiser): it takes no model",
    "update_parameters": "torch's optimizer.step() reads the gradients backward() left on the model",
    "train": "Keras' train has the model.fit path (use_fit)",
}


def public_functions(path: pathlib.Path) -> dict[str, list[str]]:
    """Top-level public functions of ``path`` in source order, each with its argument names."""
    tree = ast.parse(path.read_text())
    return {node.name: [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
            for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


def test_the_mirrored_modules_are_the_reference_modules_every_framework_has():
    assert MIRRORED == ["activations", "conv", "losses", "model", "optimizers"]


@pytest.mark.parametrize("module", sorted(IDIOMATIC_TWINS))
def test_the_convnet_modules_share_the_references_entry_points(module):
    """BatchNorm, one forward and backward pass, training: the reference's arguments, in its order, in every
    framework (the reference's forward_backward alone also keeps its intermediates, ``keep``, for the tests)."""
    reference = public_functions(ROOT / "reference" / f"{module}.py")
    for framework in FRAMEWORKS:
        mine = public_functions(ROOT / framework / f"{module}.py")
        assert mine["batchnorm"] == reference["batchnorm"], framework
        assert mine["forward_backward"] == [a for a in reference["forward_backward"] if a != "keep"], framework
        assert mine["train"] == reference["train"], framework
        shared = [f for f in reference if f in mine]
        assert [f for f in mine if f in shared] == shared, framework


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("module", MIRRORED)
def test_shared_functions_come_in_the_reference_order(framework, module):
    reference = list(public_functions(ROOT / "reference" / f"{module}.py"))
    mine = list(public_functions(ROOT / framework / f"{module}.py"))
    shared = set(reference) & set(mine)
    assert [f for f in mine if f in shared] == [f for f in reference if f in shared]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("module", MIRRORED)
def test_what_a_framework_lacks_or_adds_is_listed(framework, module):
    reference = set(public_functions(ROOT / "reference" / f"{module}.py"))
    mine = set(public_functions(ROOT / framework / f"{module}.py"))
    assert sorted(reference - mine) == sorted(LACKED_BY_ALL.get(module, {})), "lacked, not listed or listed wrongly"
    assert sorted(mine - reference) == sorted(ADDED.get((framework, module), {})), "added, not listed or wrongly"


def test_every_listed_function_has_a_one_line_reason():
    reasons = [*(r for lacked in LACKED_BY_ALL.values() for r in lacked.values()),
               *(r for added in ADDED.values() for r in added.values()), *DIFFERENT_ARGUMENTS.values()]
    assert all(r.strip() and "\n" not in r for r in reasons)


def idiomatic_signatures() -> dict[str, dict[str, list[str]]]:
    """function -> {idiomatic module: its arguments, each named by its part (SAME_PART)}, for the functions that
    two or more idiomatic modules define."""
    by_module = {path: public_functions(ROOT / path) for path in IDIOMATIC}
    shared = {}
    for path, functions in by_module.items():
        for name, arguments in functions.items():
            parts = SAME_PART.get(name, {})
            shared.setdefault(name, {})[path] = [parts.get(a, a) for a in arguments]
    return {name: found for name, found in shared.items() if len(found) > 1}


@pytest.mark.parametrize("function", sorted(idiomatic_signatures()))
def test_shared_idiomatic_functions_take_their_arguments_in_one_order(function):
    found = idiomatic_signatures()[function]
    if function not in DIFFERENT_ARGUMENTS:
        assert len({tuple(a) for a in found.values()}) == 1, found
        return
    for one, other in itertools.combinations(found, 2):  # any two modules: the arguments both take, one order
        common = set(found[one]) & set(found[other])
        assert [a for a in found[one] if a in common] == [a for a in found[other] if a in common], (one, other)


def test_the_three_update_steps_share_their_signatures():
    """The issue's three: the same arguments, in the same order, where the frameworks share them."""
    found = idiomatic_signatures()
    assert found["learning_rate_schedule"] == {"tf_impl/idiomatic.py": ["case", "epoch_steps", "factor"],
                                               "jax_impl/idiomatic.py": ["case", "epoch_steps", "factor"]}
    assert found["recorded_cost"]["tf_impl/idiomatic.py"] == found["recorded_cost"]["jax_impl/idiomatic.py"] == [
        "cost", "output", "Y", "model", "case"]
    assert found["recorded_cost"]["torch_impl/idiomatic.py"] == ["cost", "output", "Y", "case"]
    assert found["update_parameters"]["tf_impl/idiomatic.py"] == found["update_parameters"]["jax_impl/idiomatic.py"]
    assert found["update_parameters"]["torch_impl/idiomatic.py"] == ["optimizer"]


def test_differences_are_listed_only_where_there_are_some():
    found = idiomatic_signatures()
    for function in DIFFERENT_ARGUMENTS:
        assert function in found and len({tuple(a) for a in found[function].values()}) > 1, function
