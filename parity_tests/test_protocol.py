"""The protocol's per-step callback: every registered implementation's ``train(..., on_step=)`` calls
``on_step(step)`` once per gradient step, in order 0..steps-1, and the callback changes no number.

A small case (``2,3,1`` tanh, 3 epochs), full batch (3 steps) and mini-batches of 4 out of 10 examples
(3 per epoch, the last one of 2: 9 steps).
"""

import importlib.util

import numpy as np
import pytest

from nnparity import impls
from nnparity.spec import Case
from reference.initializers import initialize_parameters
from reference.model import train as reference_train
from reference.utils import minibatch_schedule

NAMES = impls.names()  # every registered implementation, whatever its style
#: The built-in implementations this file must cover at the least: the registry may grow, never silently shrink.
BUILT_IN = {"numpy", "torch", "torch-nn", "tf", "tf-function", "keras", "jax", "jax-jit", "flax"}
M, BATCH, EPOCHS = 10, 4, 3


def _setup(batch_size):
    case = Case(layer_dims=(2, 3, 1), hidden_activation="tanh", learning_rate=0.5, epochs=EPOCHS,
                batch_size=batch_size).validate()
    rng = np.random.RandomState(7)
    X = rng.randn(2, M)
    Y = (rng.rand(1, M) > 0.5).astype(np.float64)
    parameters = initialize_parameters(case.layer_dims, case.init, case.init_scale, case.seed, case.dtype)
    schedule = minibatch_schedule(M, batch_size, EPOCHS, case.shuffle_seed)
    return case, X, Y, parameters, schedule


def _impl(name):
    impl = impls.get(name)
    if importlib.util.find_spec(impl.framework) is None:  # an optional framework that is not installed
        pytest.skip(f"{impl.framework} is not installed")
    return impl


def test_every_registered_implementation_is_covered():
    """The parametrisation below is the registry itself: empty, or shrunk, it would test less in silence."""
    assert NAMES == tuple(impls.REGISTRY) and BUILT_IN <= set(NAMES)
    assert set(impls.STYLES) == {impls.get(name).style for name in NAMES}


@pytest.mark.parametrize("batch_size, steps", [(None, EPOCHS), (BATCH, EPOCHS * 3)], ids=["fullbatch", "minibatch"])
@pytest.mark.parametrize("name", NAMES)
def test_train_calls_on_step_once_per_step_in_order_and_changes_nothing(name, batch_size, steps):
    impl = _impl(name)
    case, X, Y, parameters, schedule = _setup(batch_size)
    assert (schedule is None) == (batch_size is None) and (schedule is None or len(schedule) == steps)
    plain_parameters, plain_costs = impl.train(parameters, X, Y, case, schedule)
    calls = []
    final, costs = impl.train(parameters, X, Y, case, schedule, on_step=calls.append)
    assert calls == list(range(steps))
    assert len(costs) == steps
    np.testing.assert_array_equal(costs, plain_costs)  # bit for bit: the callback changes no number
    assert set(final) == set(plain_parameters)
    for k in final:
        np.testing.assert_array_equal(final[k], plain_parameters[k], err_msg=k)


def test_reference_on_step_follows_the_update_and_before_update_precedes_it():
    """The reference calls ``before_update(step, parameters, ...)`` before each update and ``on_step(step)``
    after it: the two interleave, and the parameters ``before_update`` sees at step t+1 are the result of
    step t's update, which ``on_step(t)`` followed."""
    case, X, Y, parameters, schedule = _setup(BATCH)
    events, seen = [], []

    def before_update(step, P, X_batch, Y_batch):
        events.append(("before", step))
        seen.append({k: v.copy() for k, v in P.items()})

    final, _ = reference_train(parameters, X, Y, case, schedule, on_step=lambda step: events.append(("after", step)),
                               before_update=before_update)
    steps = len(schedule)
    assert events == [(when, t) for t in range(steps) for when in ("before", "after")]
    for k in parameters:
        np.testing.assert_array_equal(seen[0][k], parameters[k])
    one_step, _ = reference_train(parameters, X, Y, case.replace(epochs=1), schedule[:1])
    for k in parameters:
        np.testing.assert_array_equal(seen[1][k], one_step[k], err_msg=k)
        assert not np.array_equal(seen[1][k], seen[0][k]), k  # the step changed every parameter


def test_keras_fit_path_calls_on_step_per_batch():
    pytest.importorskip("tensorflow")
    from tf_impl import idiomatic

    case, X, Y, parameters, _ = _setup(None)
    plain_parameters, plain_costs = idiomatic.train(parameters, X, Y, case, use_fit=True)
    calls = []
    final, costs = idiomatic.train(parameters, X, Y, case, use_fit=True, on_step=calls.append)
    assert calls == list(range(EPOCHS))
    np.testing.assert_array_equal(costs, plain_costs)
    for k in final:
        np.testing.assert_array_equal(final[k], plain_parameters[k], err_msg=k)
