"""JAX as the fourth framework: ``jax`` (the notes' equations in jax.numpy, eager), ``jax-jit`` (its training
step under ``jax.jit``) and ``flax`` (``flax.nnx`` layers, optax losses and optimisers).  Their parity with the
reference runs in the registry-driven grids (test_parity_grid.py, test_parity_training.py): eager JAX traces
``jax.value_and_grad`` again at every step (about 20x the jitted step), so its registry entry runs the
representative cases of each grid (``nnparity.grid.REPRESENTATIVE``), ``jax-jit`` and ``flax`` all of them.
Here: that coverage, and the JAX semantics the implementations' docstrings describe.
"""

import jax
import numpy as np
import pytest

from conftest import reference_run
from nnparity import data, divergences, grid, harness, impls

JAX, FLAX = impls.get("jax"), impls.get("flax")
GRID = grid.test_grid()
TRAINING = grid.training_grid()


def test_the_representative_cases_cover_the_grids():
    """Eager jax runs the representative cases (its registry entry): they cover every dimension of both grids;
    jax-jit and flax run all of them (test_parity_grid.py, test_parity_training.py)."""
    assert JAX.grid == "representative" and impls.get("jax-jit").grid == FLAX.grid == "full"
    eager = grid.for_impl(grid.test_grid(), JAX)
    assert {c.L for c in eager} == {1, 2, 4}
    assert {c.hidden_activation for c in eager if c.L > 1} == set(grid.HIDDEN)
    assert {c.dtype for c in eager} == set(grid.DTYPES) and {c.batch_size is None for c in eager} == {True, False}
    training = grid.for_impl(TRAINING, JAX)
    assert {c.optimizer for c in training} == set(grid.OPTIMIZER_RATES)
    assert any(c.lambd for c in training) and any(c.dropout for c in training)
    assert {c.output_activation for c in training} == {"sigmoid", "softmax"}
    assert len(eager) + len(training) == len(grid.REPRESENTATIVE)


def _by_name(cases, names):
    return [c for c in cases if c.name in names]


def test_optax_rmsprop_default_puts_epsilon_inside_the_sqrt(monkeypatch):
    """``optax.rmsprop``'s default ``eps_in_sqrt=True`` is Keras' ``g / sqrt(s + eps)``, not the course's
    ``g / (sqrt(s) + eps)``: with it everything before the first update passes, the float64 run's first failure
    is that update (phase ``update``, checked from the reference's parameters), and it matches, at the same
    tolerances, the reference run with Keras' RMSprop formula."""
    import optax

    from jax_impl import idiomatic

    case = _by_name(TRAINING, ["sigmoid-rmsprop-none-float64-fullbatch"])[0]
    with monkeypatch.context() as patch:
        patch.setattr(idiomatic, "make_optimizer",
                      lambda case, *_: optax.rmsprop(case.learning_rate, decay=case.beta2, eps=case.epsilon))
        frame = harness.compare_impl(reference_run(case), FLAX)
        before_update = frame[frame["phase"].isin(["forward", "backward"]) & (frame["step"] == 0)]
        assert before_update["passed"].all(), "\n" + harness.describe_failures(before_update)
        bad = harness.failures(frame)
        assert not bad.empty and (bad.iloc[0]["phase"], bad.iloc[0]["step"]) == ("update", 0), \
            "\n" + harness.describe_failures(frame)
        with divergences.reference_update(divergences.keras_update):
            keras_formula = harness.run_reference(case, data.load_data(case.data))
        aligned = harness.compare_impl(keras_formula, FLAX)
        assert aligned["passed"].all(), "\n" + harness.describe_failures(aligned)


def test_float64_without_x64_is_float32():
    """``jax_impl`` turns ``jax_enable_x64`` on at import.  Without it JAX silently computes a float64 case in
    float32: the arrays come back float32, and dW1 is off by float32 rounding (~1e-7 relative), far beyond the
    float64 tolerance of 1e-12."""
    from jax_impl import model
    from nnparity import data
    from reference.model import forward_backward

    case = _by_name(GRID, ["l2-tanh-float64-fullbatch"])[0]
    X, Y, parameters, _ = harness.prepare(case, data.load_data(case.data))
    reference = forward_backward(parameters, X, Y, case)
    assert jax.config.jax_enable_x64
    assert model.forward_backward(parameters, X, Y, case)["dW1"].dtype == np.float64
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.warns(UserWarning, match="float64 .* not available, and will be truncated to dtype float32"):
            captured = model.forward_backward(parameters, X, Y, case)
    finally:
        jax.config.update("jax_enable_x64", True)
    assert captured["dW1"].dtype == np.float32
    rel = np.max(np.abs(captured["dW1"] - reference["dW1"])) / np.max(np.abs(reference["dW1"]))
    assert 1e-9 < rel < 1e-5


def test_flax_parameters_round_trip_and_layout():
    from jax_impl import idiomatic
    from nnparity.spec import Case

    case = Case(layer_dims=(4, 3, 2, 1))
    rng = np.random.RandomState(5)
    parameters = {"W1": rng.randn(3, 4), "b1": rng.randn(3, 1), "W2": rng.randn(2, 3), "b2": rng.randn(2, 1),
                  "W3": rng.randn(1, 2), "b3": rng.randn(1, 1)}
    model = idiomatic.load_parameters(idiomatic.build_model(case), parameters)
    np.testing.assert_array_equal(np.asarray(model.linears[0].kernel[...]), parameters["W1"].T)  # (in, out)
    np.testing.assert_array_equal(np.asarray(model.linears[1].bias[...]), parameters["b2"].ravel())
    back = idiomatic.parameters_of(model)
    assert list(back) == list(parameters)
    for k in parameters:
        np.testing.assert_array_equal(back[k], parameters[k])
        assert back[k].dtype == np.float64


def test_jax_nn_leaky_relu_slope_at_zero_is_one():
    """``jax.nn.leaky_relu`` is ``where(x >= 0, x, slope x)``: its derivative at 0 is 1, the notes' the slope,
    which ``jax_impl.activations`` keeps by writing the equation with ``Z > 0``."""
    import jax.numpy as jnp

    from jax_impl.activations import activation_forward

    Z = jnp.zeros(3)
    idiomatic = jax.grad(lambda Z: jnp.sum(jax.nn.leaky_relu(Z, negative_slope=0.01)))(Z)
    notes = jax.grad(lambda Z: jnp.sum(activation_forward(Z, "leaky_relu", 0.01)))(Z)
    np.testing.assert_array_equal(np.asarray(idiomatic), 1.0)
    np.testing.assert_array_equal(np.asarray(notes), 0.01)


@pytest.mark.parametrize("impl", [impls.get("jax-jit"), FLAX], ids=["jax-jit", "flax"])
def test_training_is_deterministic(impl):
    case = _by_name(TRAINING, ["sigmoid-adam-dropout-float32-minibatch"])[0]
    ref = reference_run(case)
    first = impl.train(ref.parameters, ref.X, ref.Y, case, ref.schedule, ref.masks)
    second = impl.train(ref.parameters, ref.X, ref.Y, case, ref.schedule, ref.masks)
    np.testing.assert_array_equal(first[1], second[1])
    for k in first[0]:
        np.testing.assert_array_equal(first[0][k], second[0][k])


def test_flax_refuses_what_it_does_not_cover():
    from jax_impl import idiomatic
    from nnparity.errors import UsageError

    case = _by_name(TRAINING, ["sigmoid-gd-dropout-float64-fullbatch"])[0]
    ref = reference_run(case)
    with pytest.raises(UsageError, match="reference's masks"):
        idiomatic.forward_backward(ref.parameters, ref.X, ref.Y, case)
