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
