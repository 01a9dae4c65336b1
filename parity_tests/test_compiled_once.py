"""``tf-function`` and ``keras`` trace their step once per network in a process (``tf_impl.model.compiled_step``,
``tf_impl.idiomatic.compiled_step``), and a run that reuses the traced step and its variables is bit for bit a
fresh process's run.

A small case (``3,4,1`` tanh, Adam, dropout, mini-batches of 4 out of 10 examples): Adam's moments and the
parameters are left changed by a run, so a second run that did not start from the initial values and zero
moments would differ.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnparity.spec import Case
from reference.initializers import initialize_parameters
from reference.utils import dropout_masks, minibatch_schedule

M = 10
CASE = Case(layer_dims=(3, 4, 1), hidden_activation="tanh", optimizer="adam", learning_rate=0.01, keep_prob=0.8,
            epochs=2, batch_size=4, name="compiled-once").validate()


def _inputs(case):
    rng = np.random.RandomState(5)
    X = rng.randn(3, M).astype(case.dtype)
    Y = (rng.rand(1, M) > 0.5).astype(case.dtype)
    parameters = initialize_parameters(case.layer_dims, case.init, case.init_scale, case.seed, case.dtype)
    schedule = minibatch_schedule(M, case.batch_size, case.epochs, case.shuffle_seed)
    return X, Y, parameters, schedule, dropout_masks(case, schedule, M)


#: The implementations with a compiled step: module and ``train``'s options.
IMPLS = {"tf-function": ("tf_impl.model", {"use_function": True}), "keras": ("tf_impl.idiomatic", {})}


def _train(case, impl):
    import importlib

    module, options = IMPLS[impl]
    X, Y, parameters, schedule, masks = _inputs(case)
    return importlib.import_module(module).train(parameters, X, Y, case, schedule, masks, **options)


@pytest.fixture(params=list(IMPLS))
def impl(request, monkeypatch):
    """The implementation's name, its module given an empty cache of compiled steps, and a list that grows by one
    each time its step is traced (``model_forward`` runs inside the step's Python function only while tracing)."""
    pytest.importorskip("tensorflow")
    import importlib

    model = importlib.import_module(IMPLS[request.param][0])
    traces = []

    def counted_forward(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    original = model.model_forward
    monkeypatch.setattr(model, "_COMPILED", {})
    monkeypatch.setattr(model, "model_forward", counted_forward)
    return request.param, traces


def test_runs_of_one_network_trace_its_step_once(impl):
    name, traces = impl
    _train(CASE.replace(epochs=1, batch_size=None), name)  # the harness's first-update run: one full-batch step
    _train(CASE, name)  # the full run: 2 epochs of 3 mini-batches, the last one smaller
    _train(CASE.replace(epochs=3, name="longer"), name)
    assert len(traces) == 1
    _train(CASE.replace(dtype="float32"), name)  # another dtype is another network: traced once more
    assert len(traces) == 2


FRESH = """
import sys
import numpy as np
sys.path.insert(0, {root!r})
from parity_tests.test_compiled_once import CASE, _train
parameters, costs = _train(CASE, {impl!r})
np.savez({out!r}, costs=costs, **parameters)
"""


def test_a_run_after_runs_of_its_network_equals_a_fresh_process_run(impl, tmp_path):
    name, _ = impl
    first, first_costs = _train(CASE, name)
    kept = {k: v.copy() for k, v in first.items()}
    _train(CASE.replace(epochs=3), name)  # a longer run of the same network between them
    second, second_costs = _train(CASE, name)
    out = tmp_path / "fresh.npz"
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", FRESH.format(root=root, out=str(out), impl=name)], check=True, cwd=root)
    fresh = np.load(out)
    np.testing.assert_array_equal(second_costs, fresh["costs"])
    np.testing.assert_array_equal(first_costs, fresh["costs"])
    assert set(second) == set(kept) == {"W1", "b1", "W2", "b2"}
    for k in second:
        assert second[k].tobytes() == fresh[k].tobytes(), k
        assert first[k].tobytes() == kept[k].tobytes(), f"{k}: the first run's result changed after the second run"
        assert first[k].tobytes() == fresh[k].tobytes(), k


#: The implementations that keep what they compile in a process: the module whose ``model_forward`` their
#: compiled steps call, and whether their captures (``forward_backward``) are compiled too (TensorFlow's run
#: eagerly, calling ``model_forward`` each time).
COMPILING = {"tf-function": ("tf_impl.model", False), "keras": ("tf_impl.idiomatic", False),
             "jax-jit": ("jax_impl.model", True), "flax": ("jax_impl.idiomatic", True)}


@pytest.fixture
def traces(monkeypatch):
    """How many times each implementation of ``COMPILING`` has traced: its module's ``model_forward`` counts its
    calls, which inside a compiled step or pass happen only while it is traced (a step taken from the cache runs
    no Python).  Behaviour, not a cache's own count: jaxlib's ``_cache_size`` read -176 after the full tier's
    compiles with nothing compiled."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("jax")
    import importlib

    counts = dict.fromkeys(COMPILING, 0)
    for name, (module, _) in COMPILING.items():
        model = importlib.import_module(module)

        def counted(*args, _name=name, _original=model.model_forward, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(model, "model_forward", counted)
    yield counts
    from nnparity import impls

    impls.clear_compiled()  # the steps traced here hold the counting wrappers


#: What each implementation of ``COMPILING`` compiles: its step, and its capture where that is compiled.
PARTS = [(name, part) for name, (_, captures) in COMPILING.items() for part in ("step", "capture")[:1 + captures]]


def _run(name, part):
    from nnparity import impls

    X, Y, parameters, schedule, masks = _inputs(CASE)
    if part == "step":
        impls.get(name).train(parameters, X, Y, CASE, schedule, masks)
    else:
        batch = schedule[0]
        impls.get(name).forward_backward(parameters, X[:, batch], Y[:, batch], CASE, masks[0])


def _run_every_compiling_impl():
    for name, part in PARTS:
        _run(name, part)


def _traced(traces):
    """The (implementation, part) pairs of ``PARTS`` that traced when run once more, each run alone."""
    traced = set()
    for name, part in PARTS:
        before = traces[name]
        _run(name, part)
        if traces[name] > before:
            traced.add((name, part))
    return traced


@pytest.mark.xdist_group("compiled-steps")
def test_clear_compiled_forgets_every_compiled_step_and_pass(traces):
    from nnparity import impls

    impls.clear_compiled()
    assert _traced(traces) == set(PARTS)
    assert _traced(traces) == set(), "a second run traced again: the count would show nothing"
    impls.clear_compiled()
    assert _traced(traces) == set(PARTS), "clear_compiled left a step or a pass compiled"


@pytest.mark.xdist_group("compiled-steps")
def test_a_test_leaves_what_it_compiled_behind_for_the_fixture_to_clear():
    """The first half of the next test: this one compiles and clears nothing (its group keeps the two together and
    in this order on one worker)."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("jax")
    _run_every_compiling_impl()


@pytest.mark.xdist_group("compiled-steps")
def test_a_test_outside_the_pairs_starts_with_nothing_compiled(traces):
    """conftest's ``fresh_compiled_steps``: the previous test's steps are gone before this one starts, so every
    implementation traces its step and pass again."""
    assert _traced(traces) == set(PARTS)


def test_a_run_after_a_patched_run_of_its_network_is_unpatched_once_cleared():
    """What failed CI at stop 20: ``test_checkpoints`` puts an L2 term on Keras' biases (a patched ``Dense``) and
    compares ``sigmoid-momentum-l2-float64-fullbatch``; Keras' step for that network, traced under the patch, was
    kept, and a later parity test of the network in the same worker trained the patched step.  Here: the step
    traced first is reused whatever is patched afterwards (so a patch is seen only on a cleared cache), and after
    the patch and ``impls.clear_compiled`` a run is bit for bit a run that never saw the patch."""
    pytest.importorskip("tensorflow")
    from unittest import mock

    import keras

    from nnparity import impls

    case = CASE.replace(lambd=0.7, keep_prob=1.0, name="bias-l2")

    class with_bias_l2(keras.layers.Dense):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, bias_regularizer=kwargs.get("kernel_regularizer"), **kwargs)

    def run():
        parameters, costs = _train(case, "keras")
        return np.concatenate([costs.ravel()] + [parameters[k].ravel() for k in sorted(parameters)])

    plain = run()
    with mock.patch.object(keras.layers, "Dense", with_bias_l2):
        assert np.array_equal(run(), plain), "the step traced before the patch was not reused"
        impls.clear_compiled()
        patched = run()
    assert not np.array_equal(patched, plain), "the patch did not change the run: the test shows nothing"
    assert np.array_equal(run(), patched), "the step traced under the patch was not reused"
    impls.clear_compiled()
    assert run().tobytes() == plain.tobytes()


def test_keras_captures_reuse_one_network_and_equal_new_objects():
    """``tf_impl.idiomatic.forward_backward`` builds its model once per network (``capture_network``): a capture after
    another one of the same network, with other parameters and another batch size (L2's ``lambda / (2 m)``), has
    the bytes of a capture by a model built for it."""
    pytest.importorskip("tensorflow")
    from tf_impl import idiomatic

    case = CASE.replace(keep_prob=1.0, lambd=0.7).validate()
    X, Y, parameters, _, _ = _inputs(case)
    idiomatic.clear_compiled()
    first = idiomatic.forward_backward({k: v * 2 for k, v in parameters.items()}, X, Y, case)
    reused = idiomatic.forward_backward(parameters, X[:, :4], Y[:, :4], case)
    predicted = idiomatic.predictions(parameters, X, case)  # on the same model, after two captures
    assert len(idiomatic._CAPTURES) == 1
    idiomatic.clear_compiled()
    assert not idiomatic._CAPTURES
    assert np.array_equal(idiomatic.predictions(parameters, X, case), predicted)
    idiomatic.clear_compiled()
    fresh = idiomatic.forward_backward(parameters, X[:, :4], Y[:, :4], case)
    assert set(reused) == set(fresh) and any(not np.array_equal(first[k], fresh[k]) for k in fresh)
    for name in fresh:
        assert reused[name].tobytes() == fresh[name].tobytes(), name
    # and L2's term is the course's lambda / (2 m) sum ||W||^2 with this batch's m = 4 (float64: to rounding)
    plain = idiomatic.forward_backward(parameters, X[:, :4], Y[:, :4], case.replace(lambd=0.0).validate())
    term = 0.7 / (2 * 4) * sum(float(np.sum(parameters[f"W{l}"] ** 2)) for l in (1, 2))
    assert float(reused["cost"] - plain["cost"]) == pytest.approx(term, rel=1e-12)
