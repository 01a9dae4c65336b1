"""JAX as the fourth framework: ``jax`` (the notes' equations in jax.numpy, eager), ``jax-jit`` (its training
step under ``jax.jit``) and ``flax`` (``flax.nnx`` layers, optax losses and optimisers).  Their parity with the
reference runs in the registry-driven grids (test_parity_grid.py, test_parity_training.py): eager JAX traces
``jax.value_and_grad`` again at every step (about 20x the jitted step), so its registry entry runs the
representative cases of each grid (``nnparity.grid.REPRESENTATIVE``), ``jax-jit`` and ``flax`` all of them.
Here: that coverage, and the JAX semantics the implementations' docstrings describe.
"""

import importlib

import jax
import numpy as np
import pytest

from nnparity import data, divergences, grid, harness, impls
from nnparity.spec import Case
from nnparity.testing import reference_run

JAX, FLAX = impls.get("jax"), impls.get("flax")
GRID = grid.test_grid()
TRAINING = grid.training_grid()


def test_the_representative_cases_cover_the_grids():
    """Eager jax runs the representative cases (its registry entry) and the quick tier's cover: they cover every
    dimension of both grids; jax-jit and flax run all of them (test_parity_grid.py, test_parity_training.py)."""
    assert JAX.grid == "representative" and impls.get("jax-jit").grid == FLAX.grid == "full"
    eager = grid.for_impl(grid.test_grid(), JAX)
    assert {c.L for c in eager} == {1, 2, 4}
    assert {c.hidden_activation for c in eager if c.L > 1} == set(grid.HIDDEN)
    assert {c.dtype for c in eager} == set(grid.DTYPES) and {c.batch_size is None for c in eager} == {True, False}
    training = grid.for_impl(TRAINING, JAX)
    assert {c.optimizer for c in training} == set(grid.OPTIMIZER_RATES)
    assert any(c.lambd for c in training) and any(c.dropout for c in training)
    assert {c.output_activation for c in training} == {"sigmoid", "softmax"}
    assert {c.name for c in eager + training} >= set(grid.REPRESENTATIVE)
    assert set(eager) >= set(grid.cover(GRID)) and set(training) >= set(grid.cover(TRAINING))  # the quick tier's


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


#: A network no grid case has (its compiled steps start cold in any process): leaky ReLU, Adam, mini-batches of 128
#: on the 400 planar examples (three full batches and a last one of 16: two batch shapes).
FRESH = Case(layer_dims=(2, 9, 4, 1), hidden_activation="leaky_relu", leaky_slope=0.03, optimizer="adam",
             learning_rate=0.01, epochs=3, batch_size=128, name="fresh-network")


def _traces(monkeypatch, module):
    """A list that grows by one each time ``module``'s compiled step is traced: its ``model_backward`` runs only
    while the step is traced (``train`` calls it nowhere else)."""
    traced = []
    original = module.model_backward

    def counting(*args, **kwargs):
        traced.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "model_backward", counting)
    return traced


def _assert_same_run(a, b):
    assert a[1].tobytes() == b[1].tobytes()
    assert list(a[0]) == list(b[0]) and all(a[0][k].tobytes() == b[0][k].tobytes() for k in a[0])


@pytest.mark.parametrize("name, module", [("jax-jit", "jax_impl.model"), ("flax", "jax_impl.idiomatic")])
def test_the_compiled_step_is_traced_once_per_network_and_batch_shape(name, module, monkeypatch):
    """The harness trains every case twice (one step from the reference's parameters, then the whole run) and the
    suite many times: every run of one network reuses its compiled step, traced once per batch shape; a second
    run gives the first's results bit for bit; a hyper-parameter the step reads (Adam's beta1) compiles anew."""
    traced = _traces(monkeypatch, importlib.import_module(module))
    impl = impls.get(name)
    X, Y, parameters, schedule = harness.prepare(FRESH, data.load_data(FRESH.data))
    assert sorted({len(batch) for batch in schedule}) == [16, 128]
    impl.train(parameters, X[:, schedule[0]], Y[:, schedule[0]], FRESH.replace(epochs=1, batch_size=None))
    assert len(traced) == 1  # the harness's first-update run: one step on the first batch
    first = impl.train(parameters, X, Y, FRESH, schedule)
    assert len(traced) == 2  # the last batch's shape
    second = impl.train(parameters, X, Y, FRESH.replace(name="the-same-network"), schedule)
    assert len(traced) == 2
    _assert_same_run(first, second)
    other_beta1 = impl.train(parameters, X, Y, FRESH.replace(beta1=0.5), schedule)
    assert len(traced) == 4
    assert not np.array_equal(other_beta1[1], first[1])


@pytest.mark.parametrize("name, module", [("jax-jit", "jax_impl.model"), ("flax", "jax_impl.idiomatic")])
def test_the_captures_are_compiled_once_per_network_and_batch_shape(name, module, monkeypatch):
    """jax-jit's and flax's forward_backward run one compiled pass (the harness captures every checkpoint of a
    case with it): traced once per network and batch shape, the same bytes again; eager jax traces every call."""
    traced = _traces(monkeypatch, importlib.import_module(module))
    case = FRESH.replace(leaky_slope=0.04, name="fresh-captures")  # a network no other test compiles
    X, Y, parameters, schedule = harness.prepare(case, data.load_data(case.data))
    first_batch, last_batch = schedule[0], schedule[-1]
    first = impls.get(name).forward_backward(parameters, X[:, first_batch], Y[:, first_batch], case)
    assert len(traced) == 1
    again = impls.get(name).forward_backward(parameters, X[:, first_batch], Y[:, first_batch],
                                             case.replace(name="the-same-network"))
    assert len(traced) == 1 and sorted(first) == sorted(again)
    assert all(first[k].tobytes() == again[k].tobytes() for k in first)
    impls.get(name).forward_backward(parameters, X[:, last_batch], Y[:, last_batch], case)
    assert len(traced) == 2  # the last, smaller batch's shape
    if name == "jax-jit":
        impls.get("jax").forward_backward(parameters, X[:, first_batch], Y[:, first_batch], case)
        impls.get("jax").forward_backward(parameters, X[:, first_batch], Y[:, first_batch], case)
        assert len(traced) == 4


def test_flax_decay_reads_the_epoch_length_of_its_own_run():
    """With learning-rate decay the optax schedule reads the run's steps per epoch, which the compiled step's
    static case (its batch size set aside) does not say: the mini-batch run (four steps per epoch) after its
    full-batch twin (one) gives what it gives from cold caches."""
    from jax_impl import idiomatic

    case = FRESH.replace(optimizer="gd", decay="inverse-time", decay_rate=1.0, name="fresh-decay")
    X, Y, parameters, schedule = harness.prepare(case, data.load_data(case.data))
    assert len(schedule) == 4 * case.epochs

    def cold():
        jax.clear_caches()
        idiomatic._transformation.cache_clear()

    cold()
    minibatch = idiomatic.train(parameters, X, Y, case, schedule)
    cold()
    idiomatic.train(parameters, X, Y, case.replace(batch_size=None))
    _assert_same_run(idiomatic.train(parameters, X, Y, case, schedule), minibatch)
    assert not np.array_equal(idiomatic.train(parameters, X, Y, case.replace(decay="none"), schedule)[1],
                              minibatch[1])


#: A fresh process trains a small case with jax-jit and flax and prints the results' digest and how many compiles
#: JAX's persistent cache served (its ``/jax/compilation_cache/cache_hits`` events).
_CACHED_RUN = """
import hashlib, jax
hits = []
jax.monitoring.register_event_listener(
    lambda event, **_: hits.append(1) if event == "/jax/compilation_cache/cache_hits" else None)
from nnparity import data, grid, harness, impls
case = next(c for c in grid.test_grid() if c.name == "l2-tanh-float32-minibatch").replace(epochs=2)
X, Y, parameters, schedule = harness.prepare(case, data.load_data(case.data))
digest = hashlib.sha256()
for name in ("jax-jit", "flax"):
    trained, costs = impls.get(name).train(parameters, X, Y, case, schedule)[:2]
    digest.update(costs.tobytes())
    for key in sorted(trained):
        digest.update(key.encode() + trained[key].tobytes())
print(digest.hexdigest(), len(hits))
"""


def test_compilation_cache_gives_the_same_bits(tmp_path):
    """JAX's persistent compilation cache (``NNPARITY_JAX_CACHE``, ``jax_impl/__init__.py``): a process that
    loads jax-jit's and flax's compiled steps from the cache another process filled trains them to the same
    bytes as a process without the cache."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    def start(cache):
        env = dict(os.environ, NNPARITY_JAX_CACHE=str(cache), PYTHONPATH=ROOT)
        return subprocess.Popen([sys.executable, "-c", _CACHED_RUN], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(proc):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "compilation cache" not in err, err  # no read or write of the cache failed
        digest, hits = out.split()
        return digest, int(hits)

    cache = tmp_path / "cache"
    uncached, filling = start("off"), start(cache)  # side by side: neither reads what the other compiles
    (off_digest, off_hits), (cold_digest, _) = result(uncached), result(filling)
    entries = sorted(p.name for p in cache.iterdir())
    assert any(name.endswith("-cache") for name in entries), entries
    warm_digest, warm_hits = result(start(cache))
    assert off_hits == 0 and warm_hits > 0
    assert cold_digest == warm_digest == off_digest


def test_compilation_cache_directory(tmp_path, capfd):
    """``NNPARITY_JAX_CACHE``: a directory, ``off``, or unset for the user's cache directory (never the
    repository); a value that is no writable directory turns the cache off with one line on stderr."""
    from jax_impl import compilation_cache_dir

    home = tmp_path / "home"
    assert compilation_cache_dir({"HOME": str(home)}) == str(home / ".cache" / "nnparity" / "jax")
    assert (home / ".cache" / "nnparity" / "jax").is_dir()
    xdg = tmp_path / "xdg"
    assert compilation_cache_dir({"HOME": str(home), "XDG_CACHE_HOME": str(xdg)}) == str(xdg / "nnparity" / "jax")
    assert compilation_cache_dir({"NNPARITY_JAX_CACHE": str(tmp_path / "a" / "b")}) == str(tmp_path / "a" / "b")
    assert compilation_cache_dir({"NNPARITY_JAX_CACHE": " OFF "}) is None
    assert capfd.readouterr().err == ""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for bad in (a_file, a_file / "below"):
        assert compilation_cache_dir({"NNPARITY_JAX_CACHE": str(bad)}) is None
        err = capfd.readouterr().err
        assert err.count("\n") == 1 and "compilation cache is off" in err, err


def test_the_user_cache_is_under_xdg_cache_home_and_a_file_in_the_way_is_unwritable(tmp_path):
    """``nnparity.caches``: where the JAX cache goes by default, and the probe the conftest uses to fall back to a
    directory of its own."""
    import os

    from nnparity.caches import unwritable, user_cache

    assert user_cache("jax", {"HOME": "/h"}) == os.path.join("/h", ".cache", "nnparity", "jax")
    assert user_cache("jax", {"HOME": "/h", "XDG_CACHE_HOME": "relative"}) == os.path.join("/h", ".cache",
                                                                                            "nnparity", "jax")
    assert user_cache("jax", {"HOME": "/h", "XDG_CACHE_HOME": "/x"}) == os.path.join("/x", "nnparity", "jax")
    assert unwritable(str(tmp_path / "made" / "here")) is None and (tmp_path / "made" / "here").is_dir()
    (tmp_path / "file").write_text("")
    assert isinstance(unwritable(str(tmp_path / "file" / "jax")), OSError)
