"""The idiomatic implementations (``torch-nn``: nn.Sequential + BCELoss + optim.SGD; ``keras``:
keras.Sequential + BinaryCrossentropy + optimizers.SGD): parameter mappings, model structure,
dtypes, the ``model.fit`` path, and the framework semantics their docstrings describe.

Their parity with the reference over the whole grid is in ``test_parity_grid.py``.
"""

import numpy as np
import pytest

from nnparity import grid, harness
from nnparity.spec import Case
from nnparity.testing import reference_run
from reference.initializers import initialize_parameters


# The frameworks are imported by fixtures, on first use: collecting this file imports neither.
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def torch_impl(torch):
    from torch_impl import idiomatic

    return idiomatic


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def keras(tf):
    return pytest.importorskip("keras")


@pytest.fixture(scope="module")
def keras_impl(keras):
    from tf_impl import idiomatic

    return idiomatic


NETWORKS = [(64, 1), (2, 4, 1), (64, 20, 7, 5, 1)]
HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu", "linear")


def parameters_for(dims, dtype, seed=3):
    """Reference initial parameters with non-zero biases, so that a mapping that drops or
    misplaces a bias shows up."""
    parameters = initialize_parameters(dims, "he", 0.01, seed, dtype)
    rng = np.random.RandomState(seed + 1)
    for key in parameters:
        if key.startswith("b"):
            parameters[key] = rng.randn(*parameters[key].shape).astype(dtype)
    return parameters


def assert_same(actual, expected):
    """Bit-for-bit equal, same dtype and shape, key by key."""
    assert list(actual) == list(expected)
    for key in expected:
        a, e = np.asarray(actual[key]), np.asarray(expected[key])
        assert a.dtype == e.dtype, key
        assert a.shape == e.shape, key
        assert np.array_equal(a, e), key


# --------------------------------------------------------------------------------------
# Parameter mappings: notes' W[l] (n[l], n[l-1]), b[l] (n[l], 1) <-> framework layouts.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("dims", NETWORKS, ids=lambda d: ",".join(map(str, d)))
def test_state_dict_round_trip(dims, dtype, torch, torch_impl):
    parameters = parameters_for(dims, dtype)
    state = torch_impl.to_state_dict(parameters)
    L = len(dims) - 1
    assert list(state) == [f"{2 * (l - 1)}.{p}" for l in range(1, L + 1) for p in ("weight", "bias")]
    for l in range(1, L + 1):
        assert tuple(state[f"{2 * (l - 1)}.weight"].shape) == (dims[l], dims[l - 1])  # (out, in): W[l] as is
        assert tuple(state[f"{2 * (l - 1)}.bias"].shape) == (dims[l],)
    assert_same(torch_impl.from_state_dict(state), parameters)

    model = torch_impl.build_model(Case(layer_dims=dims, dtype=dtype))
    model.load_state_dict(state)
    read_back = model.state_dict()
    assert list(read_back) == list(state)
    for key in state:
        assert read_back[key].dtype == state[key].dtype
        assert torch.equal(read_back[key], state[key]), key
    assert_same(torch_impl.from_state_dict(read_back), parameters)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("dims", NETWORKS, ids=lambda d: ",".join(map(str, d)))
def test_keras_weights_round_trip(dims, dtype, keras_impl):
    parameters = parameters_for(dims, dtype)
    weights = keras_impl.to_keras_weights(parameters)
    L = len(dims) - 1
    assert [w.shape for w in weights] == [s for l in range(1, L + 1) for s in ((dims[l - 1], dims[l]), (dims[l],))]
    assert_same(keras_impl.from_keras_weights(weights, L), parameters)

    model = keras_impl.build_model(Case(layer_dims=dims, dtype=dtype))
    model.set_weights(weights)
    read_back = model.get_weights()
    assert len(read_back) == len(weights)
    for got, sent in zip(read_back, weights):
        assert got.dtype == sent.dtype and got.shape == sent.shape
        assert np.array_equal(got, sent)
    assert_same(keras_impl.from_keras_weights(read_back, L), parameters)


# --------------------------------------------------------------------------------------
# Structure: the models are made of the framework's own layers.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden", HIDDEN)
def test_torch_model_structure(hidden, torch, torch_impl):
    case = Case(layer_dims=(64, 20, 7, 5, 1), hidden_activation=hidden, leaky_slope=0.05)
    model = torch_impl.build_model(case)
    nn = torch.nn
    expected = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU,
                "linear": nn.Identity}
    assert isinstance(model, nn.Sequential)
    assert [type(m) for m in model] == [nn.Linear, expected[hidden]] * 3 + [nn.Linear, nn.Sigmoid]
    for l, linear in enumerate(torch_impl.linears(model), start=1):
        assert tuple(linear.weight.shape) == (case.layer_dims[l], case.layer_dims[l - 1])  # (out, in)
        assert tuple(linear.bias.shape) == (case.layer_dims[l],)
    if hidden == "leaky_relu":
        assert all(m.negative_slope == 0.05 for m in model if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize("hidden", HIDDEN)
def test_keras_model_structure(hidden, keras, keras_impl):
    case = Case(layer_dims=(64, 20, 7, 5, 1), hidden_activation=hidden, leaky_slope=0.05)
    model = keras_impl.build_model(case)
    layers = model.layers
    assert isinstance(model, keras.Sequential)
    assert [type(layer) for layer in layers[0::2]] == [keras.layers.Dense] * 4
    hidden_type = keras.layers.LeakyReLU if hidden == "leaky_relu" else keras.layers.Activation
    assert [type(layer) for layer in layers[1::2]] == [hidden_type] * 3 + [keras.layers.Activation]
    for l, dense in enumerate(keras_impl.denses(model), start=1):
        assert tuple(dense.kernel.shape) == (case.layer_dims[l - 1], case.layer_dims[l])  # (in, out)
        assert tuple(dense.bias.shape) == (case.layer_dims[l],)
        assert dense.activation is keras.activations.linear  # Z stays a layer output
    assert layers[-1].activation is keras.activations.sigmoid
    if hidden == "leaky_relu":
        assert all(layer.negative_slope == 0.05 for layer in layers[1:-1:2])
    capture = keras_impl.capture_model(model)
    assert [t.shape for t in capture.outputs] == [(None, n) for n in case.layer_dims[1:] for _ in "ZA"]


# --------------------------------------------------------------------------------------
# dtype: float64 runs are float64 inside the frameworks' objects.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_model_runs_in_the_case_dtype(dtype, torch, torch_impl):
    case = grid.case_for(4, "relu", dtype, False, epochs=2)
    model = torch_impl.build_model(case)
    assert {p.dtype for p in model.parameters()} == {torch_impl.DTYPES[dtype]}
    outputs = []
    torch_impl.model_forward(torch.zeros(3, 64, dtype=torch_impl.DTYPES[dtype]), model, caches=outputs)
    assert len(outputs) == 2 * case.L and {o.dtype for o in outputs} == {torch_impl.DTYPES[dtype]}
    ref = reference_run(case)
    captured = torch_impl.forward_backward(ref.parameters, ref.X0, ref.Y0, case)
    assert {v.dtype for v in captured.values()} == {np.dtype(dtype)}
    params, costs = torch_impl.train(ref.parameters, ref.X, ref.Y, case)
    assert costs.dtype == dtype and {v.dtype for v in params.values()} == {np.dtype(dtype)}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_model_runs_in_the_case_dtype(dtype, keras, keras_impl):
    case = grid.case_for(4, "relu", dtype, False, epochs=2)
    before = keras.backend.floatx()
    model = keras_impl.build_model(case)
    assert keras.backend.floatx() == before
    assert {layer.dtype_policy.compute_dtype for layer in model.layers} == {dtype}
    assert {v.dtype for v in model.weights} == {dtype}
    assert {t.dtype for t in keras_impl.capture_model(model).outputs} == {dtype}
    assert keras_impl.loss_function("cross_entropy", dtype).dtype == dtype
    with keras_impl.floatx(dtype):
        assert keras.optimizers.SGD(learning_rate=0.05).learning_rate.dtype == dtype
    ref = reference_run(case)
    captured = keras_impl.forward_backward(ref.parameters, ref.X0, ref.Y0, case)
    assert {v.dtype for v in captured.values()} == {np.dtype(dtype)}  # the cost too: the loss ran in dtype
    for use_fit in (False, True):
        params, costs = keras_impl.train(ref.parameters, ref.X, ref.Y, case, use_fit=use_fit)
        assert costs.dtype == dtype and {v.dtype for v in params.values()} == {np.dtype(dtype)}
    assert keras.backend.floatx() == before, "floatx is restored after every run"


def test_keras_floatx_is_restored_after_an_error(keras, keras_impl):
    before = keras.backend.floatx()
    with pytest.raises(RuntimeError):
        with keras_impl.floatx("float64"):
            assert keras.backend.floatx() == "float64"
            raise RuntimeError
    assert keras.backend.floatx() == before


def test_keras_defaults_are_float32_whatever_the_model(keras):
    """Why every Keras run is built inside floatx(case.dtype): outside it, the learning-rate variable
    (optimizers/base_optimizer.py) and the loss (losses/loss.py) are float32 even for a float64 model."""
    assert keras.backend.floatx() == "float32"
    sgd = keras.optimizers.SGD(learning_rate=0.05)
    assert sgd.learning_rate.dtype == "float32"
    assert float(sgd.learning_rate.numpy()) == float(np.float32(0.05)) != 0.05
    assert keras.losses.BinaryCrossentropy().dtype == "float32"


# --------------------------------------------------------------------------------------
# Keras' fit path: the same steps as the compiled step loop, for full batches.
# --------------------------------------------------------------------------------------

# about 8 s each (fit's iterator an epoch): the quick tier runs the float32 one with a hidden layer, the full tier all
@pytest.mark.parametrize("L,hidden,dtype", [pytest.param(1, "relu", "float64", marks=pytest.mark.tiers("full")),
                                            (2, "tanh", "float32"),
                                            pytest.param(4, "sigmoid", "float64", marks=pytest.mark.tiers("full"))])
def test_keras_fit_equals_the_step_loop(L, hidden, dtype, keras_impl):
    """Full batch, model.fit(X.T, Y.T, batch_size=m, shuffle=False): the same parameters as the compiled
    step loop bit for bit, and each recorded cost is logs["loss"] of fit's Mean tracker, fl(fl(J m) / m)
    of the step loop's J; at the grid's tolerances against the reference.  (150 steps: fit makes a new
    tf.data iterator every epoch, tens of milliseconds each; the step loop runs the grid's 1000.)"""
    case = grid.case_for(L, hidden, dtype, False, epochs=150)
    ref = reference_run(case)
    step_params, step_costs = keras_impl.train(ref.parameters, ref.X, ref.Y, case)
    fit_params, fit_costs = keras_impl.train(ref.parameters, ref.X, ref.Y, case, use_fit=True)
    assert_same(fit_params, step_params)
    assert fit_costs.dtype == step_costs.dtype and fit_costs.shape == step_costs.shape == (case.epochs,)
    m = np.asarray(ref.X.shape[1], dtype)
    assert np.array_equal(fit_costs, (step_costs * m) / m)  # Mean: total = J m, count = m
    assert harness.max_ulp(fit_costs, step_costs, dtype) <= 1
    rows = harness.compare_training(ref, fit_costs, fit_params)
    assert all(row["passed"] for row in rows)


def test_keras_fit_refuses_mini_batches(keras_impl):
    case = grid.case_for(2, "tanh", "float64", True, epochs=1)
    ref = reference_run(case)
    with pytest.raises(ValueError, match="full batches only"):
        keras_impl.train(ref.parameters, ref.X, ref.Y, case, ref.schedule, use_fit=True)


# --------------------------------------------------------------------------------------
# Framework semantics the docstrings describe, checked on the installed versions.
# --------------------------------------------------------------------------------------

def test_keras_binary_crossentropy_takes_the_logits_after_a_sigmoid(tf, keras, keras_impl):
    """keras.activations.sigmoid stores its input as ``_keras_logits``; BinaryCrossentropy then
    computes sigmoid_cross_entropy_with_logits of ZL: the cost does not depend on AL at all."""
    case = grid.case_for(2, "tanh", "float64", False)
    ref = reference_run(case)
    with keras_impl.floatx("float64"):
        model = keras_impl._model(ref.parameters, case)
        X, Y = tf.constant(ref.X.T), tf.constant(ref.Y.T)
        with tf.GradientTape(persistent=True) as tape:
            AL, caches = keras_impl.model_forward(X, model, keras_impl.capture_model(model))
            cost = keras_impl.loss_function("cross_entropy", "float64")(Y, AL)
        assert AL._keras_logits is not None
        assert tape.gradient(cost, AL) is None
        ZL = caches[-2]
        logits_cost = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=ZL))
        assert abs(float(cost) - float(logits_cost)) <= 4 * np.finfo(np.float64).eps * float(cost)


def test_torch_bce_loss_clamps_the_log_at_minus_100(torch):
    """nn.BCELoss: max(log a, -100) (aten/src/ATen/native/Loss.cpp): finite where the notes' cost is inf."""
    loss = torch.nn.BCELoss()
    assert float(loss(torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[0.0]], dtype=torch.float64))) == 100.0
    a = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    loss(a, torch.tensor([[1.0]], dtype=torch.float64)).backward()
    assert float(a.grad) == pytest.approx(-1 / 0.3, rel=1e-15)  # (a - y) / (a (1 - a)) = -1/a away from saturation


@pytest.mark.parametrize("impl", ["torch-nn", "keras"])
@pytest.mark.parametrize("hidden,loss", [("tanh", "l1"), ("tanh", "l2"), ("linear", "cross_entropy")])
def test_off_grid_losses_and_activations_match_the_notes(impl, hidden, loss):
    """L1Loss / MSELoss and MeanAbsoluteError / MeanSquaredError, mean over the m x 1 outputs, are the
    notes' sum_i |y - a| / m and sum_i (y - a)^2 / m; nn.Identity / Activation("linear") is g(Z) = Z.
    The capture and 200 steps, full batch and mini-batch, both dtypes, at the grid's tolerances."""
    for dtype in ("float64", "float32"):
        for minibatch in (False, True):
            case = grid.case_for(2, hidden, dtype, minibatch, loss=loss, epochs=200 if not minibatch else 30)
            frame = harness.compare_impl(reference_run(case), impl)
            assert frame["passed"].all(), "\n" + harness.describe_failures(frame)


@pytest.mark.parametrize("impl", ["torch_impl", "keras_impl"])
def test_what_the_idiomatic_models_do_not_cover_is_refused(impl, request):
    """Dropout trains with the reference's masks (a mask layer after each hidden activation): without
    masks it is a UsageError, never a run with the framework's own masks."""
    from nnparity.errors import UsageError

    impl = request.getfixturevalue(impl)
    case = Case(layer_dims=(2, 4, 1), keep_prob=0.8)
    with pytest.raises(UsageError, match="masks"):
        impl.forward_backward({}, np.zeros((2, 1)), np.zeros((1, 1)), case)
    with pytest.raises(UsageError, match="masks"):
        impl.train({}, np.zeros((2, 1)), np.zeros((1, 1)), case)
