"""Everything else the notes teach about training, in the parity grid and checked against the math.

Optimisers (gradient descent, momentum, RMSprop, Adam) x regularisation (none, L2,
inverted dropout) x output (sigmoid + cross-entropy, softmax + categorical
cross-entropy) x dtype x {full batch, mini-batch}, through every equation-style
implementation, at the same tolerances as the slice's grid.
"""

import numpy as np
import pytest

from nnparity import grid, impls
from nnparity.spec import Case
from nnparity.testing import check_parity, parametrize_with_checks, reference_run
from reference import optimizers
from reference.gradient_check import gradient_check
from reference.initializers import initialize_parameters
from reference.model import forward_backward, train
from reference.utils import dropout_masks, minibatch_schedule, one_hot

CASES = grid.training_grid()


# both tiers, each pair marked with its own; the quick tier: one cover of the three parity grids
@parametrize_with_checks(impls.frameworks(), CASES, tier=None, cover_of=grid.parity_cases())
def test_training_parity(case, impl, tier):
    """Every implementation matches the course's math on the 99 cases (the quick tier: the grid's cover) at step
    0, the first update, every checkpoint, the free-running trajectory (an eager twin's cut to its horizon in the
    quick tier), the final parameters and the predictions, or diverges exactly as nnparity/divergences.py
    documents (Keras' RMSprop and Adam epsilon placement, its momentum under a decaying rate)."""
    frame = check_parity(case, impl, tier=tier)
    steps = len(reference_run(case).costs)
    if tier == "full" or impls.get(impl).compiled_twin is None:
        assert (frame["phase"] == "trajectory").sum() == steps, "every step's cost is compared"


def test_training_grid_covers_every_combination():
    constant = [c for c in CASES if c.decay == "none"]
    combos = {(c.optimizer, c.lambd > 0, c.keep_prob < 1, c.output_activation, c.dtype, c.batch_size is None)
              for c in constant}
    assert len(combos) == len(constant) == 4 * 3 * 2 * 2 * 2


def test_training_grid_decays_the_rate_within_its_runs():
    """A few decay cases: both forms, both dtypes, full and mini-batch, and each run's rate changes."""
    decayed = [c for c in CASES if c.decay != "none"]
    assert {c.decay for c in decayed} == {"inverse-time", "scheduled"}
    assert {c.dtype for c in decayed} == {"float64", "float32"}
    assert {c.batch_size is None for c in decayed} == {True, False}
    for case in decayed:
        rates = {optimizers.learning_rate_at(case, epoch) for epoch in range(case.epochs)}
        assert len(rates) > 1 and max(rates) == case.learning_rate, case.name


def _small(hidden="relu", output="sigmoid", **changes):
    dims = (4, 5, 3, 1) if output == "sigmoid" else (4, 5, 3, 3)
    loss = "cross_entropy" if output == "sigmoid" else "categorical_cross_entropy"
    case = Case(layer_dims=dims, hidden_activation=hidden, output_activation=output, loss=loss, **changes).validate()
    rng = np.random.RandomState(7)
    X = rng.randn(4, 9)
    labels = rng.randint(0, 2 if output == "sigmoid" else 3, size=(1, 9))
    Y = labels.astype(float) if output == "sigmoid" else one_hot(labels, 3)
    parameters = initialize_parameters(dims, "he", seed=2)
    for k in parameters:
        if k.startswith("b"):
            parameters[k] = rng.randn(*parameters[k].shape) * 0.1
    return case, X, Y, parameters


@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("regularisation", ["l2", "dropout", "both"])
def test_gradient_check_with_regularisation(hidden, output, regularisation):
    changes = {"l2": {"lambd": 0.7}, "dropout": {"keep_prob": 0.7}, "both": {"lambd": 0.7, "keep_prob": 0.7}}
    case, X, Y, parameters = _small(hidden, output, **changes[regularisation])
    masks = dropout_masks(case, None, X.shape[1])
    masks0 = None if masks is None else masks[0]
    if masks0 is not None:
        assert any(not D.all() for D in masks0), "the mask must drop something for the check to mean anything"
    assert gradient_check(parameters, X, Y, case, masks=masks0) < 1e-7


def test_l2_gradient_is_lambda_over_m_w():
    case, X, Y, parameters = _small(lambd=0.0)
    plain = forward_backward(parameters, X, Y, case)
    regular = forward_backward(parameters, X, Y, case.replace(lambd=0.7))
    m = X.shape[1]
    for l in (1, 2, 3):
        np.testing.assert_allclose(regular[f"dW{l}"] - plain[f"dW{l}"], 0.7 / m * parameters[f"W{l}"], rtol=1e-12,
                                   atol=1e-15)
        np.testing.assert_array_equal(regular[f"db{l}"], plain[f"db{l}"])  # biases are not regularised
    expected = plain["cost"] + 0.7 / (2 * m) * sum(np.sum(parameters[f"W{l}"] ** 2) for l in (1, 2, 3))
    np.testing.assert_allclose(regular["cost"], expected, rtol=1e-14)


def test_dropout_masks_are_seeded_per_step_and_layer():
    case = Case(layer_dims=(4, 5, 3, 1), keep_prob=0.6, dropout_seed=11, epochs=3)
    masks = dropout_masks(case, None, 10)
    assert len(masks) == 3 and [D.shape for D in masks[0]] == [(5, 10), (3, 10)]
    for t in range(3):
        rng = np.random.RandomState(11 + t)
        np.testing.assert_array_equal(masks[t][0], rng.rand(5, 10) < 0.6)
        np.testing.assert_array_equal(masks[t][1], rng.rand(3, 10) < 0.6)
    schedule = minibatch_schedule(10, 4, 1, 0)
    assert [D.shape[1] for step in dropout_masks(case.replace(epochs=1), schedule, 10) for D in step] == [4, 4, 4, 4,
                                                                                                           2, 2]
    assert dropout_masks(case.replace(keep_prob=1.0), None, 10) is None


def test_dropout_forward_is_inverted_dropout():
    case, X, Y, parameters = _small(keep_prob=0.5)
    masks = dropout_masks(case, None, X.shape[1])[0]
    captured = forward_backward(parameters, X, Y, case, masks)
    Z1 = parameters["W1"] @ X + parameters["b1"]
    np.testing.assert_allclose(captured["A1"], np.maximum(Z1, 0) * masks[0] / 0.5, rtol=1e-15)


def _written_out_step(optimizer, W, g, v, s, t, lr=0.01, beta=0.9, beta1=0.9, beta2=0.999, eps=1e-8):
    if optimizer == "momentum":
        v = beta * v + (1 - beta) * g
        return W - lr * v, v, s
    if optimizer == "rmsprop":
        s = beta2 * s + (1 - beta2) * g * g
        return W - lr * g / (np.sqrt(s) + eps), v, s
    v = beta1 * v + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g * g
    return W - lr * (v / (1 - beta1**t)) / (np.sqrt(s / (1 - beta2**t)) + eps), v, s


@pytest.mark.parametrize("optimizer", ["momentum", "rmsprop", "adam"])
def test_optimizer_formulas(optimizer):
    case = Case(layer_dims=(3, 1), optimizer=optimizer, learning_rate=0.01)
    rng = np.random.RandomState(3)
    params = {"W1": rng.randn(1, 3), "b1": rng.randn(1, 1)}
    state = optimizers.initialize_optimizer_state(params, optimizer)
    W, v, s = params["W1"].copy(), np.zeros((1, 3)), np.zeros((1, 3))
    for t in range(1, 6):
        grads = {"dW1": rng.randn(1, 3), "db1": rng.randn(1, 1)}
        params, state = optimizers.update(params, grads, state, case, t)
        W, v, s = _written_out_step(optimizer, W, grads["dW1"], v, s, t)
        np.testing.assert_allclose(params["W1"], W, rtol=1e-14)


def test_momentum_first_step_is_damped():
    """The course's momentum starts from v = 0, so the first step is (1 - beta) alpha dW, not alpha dW."""
    case, X, Y, parameters = _small(optimizer="momentum", learning_rate=0.1, beta=0.9, epochs=1)
    captured = forward_backward(parameters, X, Y, case)
    final, _ = train(parameters, X, Y, case)
    np.testing.assert_allclose(final["W1"], parameters["W1"] - 0.1 * 0.1 * captured["dW1"], rtol=1e-14)
