"""The catalogue's TensorFlow and Keras entries (``nnparity.catalogue``): where TensorFlow and Keras differ from the
notes' math, each entry measured by a run.  Declared here, beside the code they measure; ``tf_impl/framework.py``'s
``catalogue()`` hands them to the catalogue.  The entries that measure Keras beside torch (its RMSprop and Adam
against torch's, default slopes, dtypes, layouts, reductions, dropout) are the cross-framework family, in
``nnparity/catalogue.py``.

Read without importing TensorFlow: each entry imports it (``_tf``, ``_keras``) when it runs.
"""

from __future__ import annotations

import math

import numpy as np

from nnparity.catalogue import (
    OPT_ALPHA,
    OPT_BETA,
    OPT_C,
    OPT_W0,
    SATURATED_AL,
    SATURATED_Y,
    Entry,
    _course_momentum,
    _keras,
    _leaky_network,
    _max_rel_diff,
    _momentum_runs,
    _network,
    _notes_bce,
    _notes_formula_result,
    _saturated,
    _tf,
    _vec,
    _version,
    bound_ratio,
    fmt,
    normwise_rel_err,
    registrar,
)

ENTRIES: list[Entry] = []
_entry = registrar(ENTRIES)


# --------------------------------------------------------------------------- saturated cross-entropy


#: The model case of ``bce-saturated-keras``: Z = [40, log(0.3/0.7)], so AL = sigmoid(Z) = [1.0, 0.3] in float64.
SATURATED_Z = [40.0, math.log(0.3 / 0.7)]


def _keras_bce_in_model(tf, keras):
    """A one-layer float64 Keras model (Dense(1) with w = 1, b = 0, then Activation('sigmoid')) on x = Z:
    AL, the BinaryCrossentropy cost, dJ/dZ per example and the model's gradients."""
    from tf_impl.idiomatic import floatx

    x = np.array(SATURATED_Z).reshape(-1, 1)  # examples as rows
    Y = np.array(SATURATED_Y, dtype=np.float64).T
    with floatx("float64"):
        model = keras.Sequential([keras.Input((1,), dtype="float64"), keras.layers.Dense(1, dtype="float64"),
                                  keras.layers.Activation("sigmoid", dtype="float64")])
        model.set_weights([np.ones((1, 1)), np.zeros(1)])
        loss = keras.losses.BinaryCrossentropy(dtype="float64")
        dense, act = model.layers
        with tf.GradientTape() as tape:
            Z = dense(tf.constant(x))
            AL = act(Z)
            J = loss(tf.constant(Y), AL)
        dZ = tape.gradient(J, Z)
        with tf.GradientTape() as tape:
            AL_model = model(tf.constant(x))
            J_model = loss(tf.constant(Y), AL_model)
        dW, db = tape.gradient(J_model, model.trainable_variables)
        bare = tf.Variable(AL_model.numpy())  # the same probabilities, without their logits
        with tf.GradientTape() as tape:
            J_bare = loss(tf.constant(Y), bare)
        d_bare = tape.gradient(J_bare, bare)
    return dict(
        Z=np.ravel(Z.numpy()).tolist(), AL=np.ravel(AL_model.numpy()).tolist(),
        has_keras_logits=hasattr(AL_model, "_keras_logits"),
        model_cost=float(J_model.numpy()), layers_cost=float(J.numpy()), dJ_dZ=np.ravel(dZ.numpy()).tolist(),
        dW=float(np.ravel(dW.numpy())[0]), db=float(np.ravel(db.numpy())[0]),
        bare_cost=float(J_bare.numpy()), bare_dJ_dAL=np.ravel(d_bare.numpy()).tolist(),
    )


@_entry("bce-saturated-keras",
        "Cross-entropy of saturated probabilities: Keras uses the logits after a sigmoid, clips bare probabilities",
        "keras")
def _bce_saturated_keras():
    tf, keras = _tf(), _keras()
    from tf_impl.losses import compute_cost

    eps = float(keras.config.epsilon())
    loss_dtype = str(keras.losses.BinaryCrossentropy().dtype)
    measured = {"epsilon": eps, "loss_object_dtype": loss_dtype, "in_model": _keras_bce_in_model(tf, keras)}
    for dtype in ("float64", "float32"):
        AL, Y = _saturated(dtype)
        notes_cost, notes_grad = _notes_bce(AL, Y)
        results = {}
        for label, loss in (("default", keras.losses.BinaryCrossentropy()),
                            ("typed", keras.losses.BinaryCrossentropy(dtype=dtype))):
            v = tf.Variable(AL.T)  # Keras: examples as rows
            with tf.GradientTape() as tape:
                J = loss(tf.constant(Y.T), v)
            results[label] = (float(J.numpy()), J.dtype.name, tape.gradient(J, v).numpy().T.ravel())
        v = tf.Variable(AL)
        with tf.GradientTape() as tape:
            J = compute_cost(v, tf.constant(Y))
        aligned_cost, aligned_grad = float(J.numpy()), tape.gradient(J, v).numpy().ravel()
        measured[dtype] = dict(
            notes_cost=notes_cost, notes_grad=notes_grad.ravel().tolist(),
            keras_cost=results["default"][0], keras_cost_dtype=results["default"][1],
            keras_grad=results["default"][2].tolist(),
            keras_typed_cost=results["typed"][0], keras_typed_grad=results["typed"][2].tolist(),
            aligned_cost=aligned_cost, aligned_grad=aligned_grad.tolist(),
        )
    f64, f32, mod = measured["float64"], measured["float32"], measured["in_model"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "The notes' J = -1/m sum(y log a + (1-y) log(1-a)) is inf when a is exactly 0 or 1 for the wrong label. "
            "keras.losses.BinaryCrossentropy has two paths (keras/src/backend/tensorflow/nn.py binary_crossentropy): "
            "an output of a sigmoid activation carries its input (output._keras_logits, set by "
            "keras/src/activations/activations.py sigmoid; found by _get_logits), and then the loss is "
            "tf.nn.sigmoid_cross_entropy_with_logits of Z, exact and unclipped (measured hasattr(AL, "
            f"'_keras_logits') = {mod['has_keras_logits']} for a model's sigmoid output); a bare probability tensor "
            f"is clipped to [epsilon, 1 - epsilon], epsilon = keras.config.epsilon() = {eps:g}, so its cost is "
            "finite and the clip's gradient is 0 where it clips. The loss object computes in its dtype, floatx "
            f"(measured: {loss_dtype}) unless dtype= is given."
        ),
        case=(f"the same saturated example both ways: a float64 one-layer Keras model (Dense(1), w = 1, b = 0, then "
              f"Activation('sigmoid')) on x = Z = {_vec(SATURATED_Z, 6)}, giving AL = {_vec(mod['AL'], 17)} (exactly 1 "
              f"for the y = 0 example), Y = {SATURATED_Y[0]}; and the bare tensor AL = {SATURATED_AL}, float64 and "
              "float32 (m = 2, examples as rows); gradients from tf.GradientTape"),
        default_result=(
            f"inside the model: cost {fmt(mod['model_cost'], 8)} = mean(log(1 + e^z) - y z) (no clip), dJ/dZ = "
            f"{_vec(mod['dJ_dZ'])} = (AL - Y)/m, dW = {fmt(mod['dW'], 6)}, db = {fmt(mod['db'], 6)}; bare "
            f"probabilities: float64 cost {fmt(f64['keras_typed_cost'], 6)} with dtype='float64' "
            f"({fmt(f64['keras_cost'], 6)} computed in {f64['keras_cost_dtype']} by default), float32 "
            f"{fmt(f32['keras_cost'], 6)}, dJ/dAL = {_vec(f64['keras_grad'])}"
        ),
        aligned_result=_notes_formula_result("tf_impl", f64, f32),
        effect=(
            f"the same AL = [1, 0.3]: cost {fmt(mod['model_cost'])} in the model (logits), "
            f"{fmt(f64['keras_typed_cost'])} as a bare tensor (clipped), {fmt(f64['notes_cost'])} in the notes; at "
            f"the saturated example dJ/dZ {fmt(mod['dJ_dZ'][0])} in the model, dJ/dAL "
            f"{fmt(f64['keras_grad'][0])} bare"
            + (" (the clip passes no gradient)" if f64["keras_grad"][0] == 0 else "")
            + f" vs {fmt(f64['notes_grad'][0])} in the notes"
        ),
        how_aligned=(
            "tf_impl writes the notes' formula with tf.math.log (no clip), so it is inf exactly where the reference "
            "is; the harness accepts non-finite values only in the same places with the same value "
            "(nnparity/metrics.py errors). The idiomatic Keras model (tf_impl/idiomatic.py) takes the logits path; "
            "it is compared only on unsaturated cases, where the two formulas agree to rounding."
        ),
        verified_in=(
            "keras-team/keras keras/src/backend/tensorflow/nn.py (binary_crossentropy: \"if from_logits: return "
            "tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=output)\" after \"output, from_logits = "
            "_get_logits(output, from_logits, \"Sigmoid\", \"binary_crossentropy\")\"; otherwise \"output = "
            "tf.clip_by_value(output, backend.epsilon(), 1.0 - backend.epsilon())\"); keras/src/activations/"
            "activations.py (sigmoid: \"output._keras_logits = x\"); keras/src/backend/config.py (\"_EPSILON = "
            "1e-7\"); keras/src/losses/loss.py (\"self._dtype_policy = dtype_policies.get(dtype or "
            "backend.floatx())\"); https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- leaky ReLU


@_entry("tf-leaky-relu-float32-alpha", "tf.nn.leaky_relu keeps alpha as a float32 attribute (float64 runs)",
        "tensorflow, keras")
def _tf_leaky_float32_alpha():
    tf, keras = _tf(), _keras()
    from nnparity import tolerances as tol
    from tf_impl.activations import activation_forward as tf_act

    case, X, Y, P, ref, finish = _leaky_network()
    Z1, slope = ref["Z1"], case.leaky_slope
    neg = Z1 < 0
    exact = np.where(Z1 > 0, Z1, slope * Z1)
    B = tol.bounds(P, X, Y, case)["A1"]
    alpha_attr = _leaky_relu_alpha_attr(tf)
    outputs = {
        "tf.nn.leaky_relu(alpha=0.01)": tf.nn.leaky_relu(tf.constant(Z1), alpha=slope).numpy(),
        "keras LeakyReLU(0.01, dtype=float64)": np.asarray(
            keras.layers.LeakyReLU(negative_slope=slope, dtype="float64")(Z1)),
        "tf_impl (tf.where)": tf_act(tf.constant(Z1), "leaky_relu", slope).numpy(),
    }
    measured = {
        "slope": slope,
        "slope_readback": float(-tf.nn.leaky_relu(tf.constant(-1.0, tf.float64), alpha=slope).numpy()),
        "float32_of_slope": float(np.float32(slope)),
        "op_attr_alpha": alpha_attr,
        "float64_normwise_tolerance": tol.FLOAT64_NORMWISE,
    }
    for name, A1 in outputs.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            elem = float(np.max(np.abs(A1[neg] - exact[neg]) / np.abs(exact[neg])))
        AL, cost = finish(A1)
        measured[name] = dict(max_elementwise_rel_diff=elem, A1_rel_err=normwise_rel_err(A1, ref["A1"]),
                              A1_bound_ratio=bound_ratio(A1, ref["A1"], B),
                              AL_rel_err=normwise_rel_err(AL, ref["AL"]), output_dtype=str(A1.dtype))

    def line(name):
        r = measured[name]
        return (f"{name}: max rel diff on Z < 0 {fmt(r['max_elementwise_rel_diff'])}, A1 norm-wise rel err "
                f"{fmt(r['A1_rel_err'])}, bound ratio {fmt(r['A1_bound_ratio'])}")

    d = measured["tf.nn.leaky_relu(alpha=0.01)"]
    attr = (f"the installed LeakyRelu op declares alpha of type {alpha_attr['type']!r}, default "
            f"{fmt(alpha_attr['default'], 4)}" if alpha_attr else "the op definition could not be read")
    return dict(
        framework_version=_version(tf, keras),
        what_differs=(
            "The LeakyRelu op holds alpha as an attribute of type float (32-bit) whatever the tensor dtype "
            f"(tensorflow/core/ops/nn_ops.cc; measured: {attr}), so on float64 input the slope is float32(0.01) = "
            f"{measured['slope_readback']:.12g}, not 0.01. The Keras LeakyReLU layer calls tf.nn.leaky_relu, so it "
            "inherits this."
        ),
        case=("2,4,1 leaky_relu network on planar data (m = 400), float64: A1 = g(Z1) for the reference's Z1 "
              f"with slope {slope}; bounds from nnparity.tolerances.bounds as in the harness"),
        default_result="; ".join(line(n) for n in list(outputs)[:2]),
        aligned_result=line("tf_impl (tf.where)"),
        effect=(f"max rel diff {fmt(d['max_elementwise_rel_diff'])} on every negative entry; A1 norm-wise rel err "
                f"{fmt(d['A1_rel_err'])} > the float64 tolerance {tol.FLOAT64_NORMWISE:g}; bound ratio "
                f"{fmt(d['A1_bound_ratio'])}"
                + (" (> 1: rounding cannot explain it)" if d["A1_bound_ratio"] > 1 else "")),
        how_aligned=("tf_impl writes the notes' equation tf.where(Z > 0, Z, slope * Z) with slope a Python float "
                     "(float64); parity_tests/test_parity_grid.py::test_a_constant_rounded_to_float32_fails_in_float64 "
                     "shows the harness catches the rounded slope at A1."),
        verified_in=(
            "tensorflow/tensorflow tensorflow/core/ops/nn_ops.cc (REGISTER_OP(\"LeakyRelu\") ... "
            "\".Attr(\"alpha: float = 0.2\")\"); installed tensorflow/python/ops/gen_nn_ops.py (\"def "
            "leaky_relu(features, alpha:float=0.2, name=None)\"); read at run time from "
            "tensorflow.python.framework.op_def_registry.get('LeakyRelu'); keras-team/keras "
            "keras/src/backend/tensorflow/nn.py (\"return tf.nn.leaky_relu(x, alpha=negative_slope)\")"
        ),
        measured=measured,
    )


def _leaky_relu_alpha_attr(tf):
    """The installed LeakyRelu op's ``alpha`` attribute: its type and default, or None if unreadable."""
    try:
        from tensorflow.python.framework import op_def_registry

        op = op_def_registry.get("LeakyRelu")
        attr = next(a for a in op.attr if a.name == "alpha")
        return {"type": attr.type, "default": float(attr.default_value.f)}
    except Exception:  # an internal API; the entry does not depend on it
        return None


# --------------------------------------------------------------------------- optimisers


@_entry("keras-sgd-learning-rate-float32", "Keras SGD holds the learning rate in floatx (float32) in float64 runs",
        "keras")
def _keras_sgd_learning_rate():
    tf, keras = _tf(), _keras()
    from nnparity import tolerances as tol
    from reference.model import train
    from tf_impl.losses import compute_cost
    from tf_impl.model import train as tf_train

    case, X, Y, P = _network((2, 1), "relu", learning_rate=0.0075, epochs=100)
    _, ref_costs = train(P, X, Y, case)
    opt = keras.optimizers.SGD(learning_rate=case.learning_rate)
    W, b = tf.Variable(P["W1"]), tf.Variable(P["b1"])
    Xc, Yc = tf.constant(X), tf.constant(Y)
    costs = []
    for _ in range(case.epochs):
        with tf.GradientTape() as tape:
            J = compute_cost(tf.math.sigmoid(W @ Xc + b), Yc)
        costs.append(float(J.numpy()))
        opt.apply_gradients(zip(tape.gradient(J, [W, b]), [W, b]))
    _, aligned_costs = tf_train(P, X, Y, case)
    lr = float(np.asarray(opt.learning_rate))

    measured = dict(learning_rate=case.learning_rate, lr_variable_dtype=str(opt.learning_rate.dtype),
                    lr_value=lr, lr_rel_diff=abs(lr - case.learning_rate) / case.learning_rate,
                    steps=case.epochs, default_trajectory_rel_err=_max_rel_diff(costs, ref_costs),
                    aligned_trajectory_rel_err=_max_rel_diff(aligned_costs, ref_costs),
                    tolerance=tol.FLOAT64_TRAJECTORY)
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "Keras optimizers store the learning rate as a variable of dtype floatx (keras/src/optimizers/"
            "base_optimizer.py) and SGD casts it to the parameter's dtype at each step, so a float64 run steps "
            f"with float32(alpha): measured variable dtype {measured['lr_variable_dtype']}, value {lr:.12g}."
        ),
        case=(f"logistic regression (2,1) on planar data (m = 400), float64 variables, alpha = {case.learning_rate}, "
              f"{case.epochs} full-batch steps with keras.optimizers.SGD vs the reference"),
        default_result=(f"learning rate relative change {fmt(measured['lr_rel_diff'])}; cost trajectory max relative "
                        f"difference {fmt(measured['default_trajectory_rel_err'])}"),
        aligned_result=(f"tf_impl (W.assign(W - alpha * dW), alpha a Python float): cost trajectory max relative "
                        f"difference {fmt(measured['aligned_trajectory_rel_err'])}"),
        effect=(f"{fmt(measured['default_trajectory_rel_err'])} vs {fmt(measured['aligned_trajectory_rel_err'])}; "
                f"the float64 trajectory tolerance is {tol.FLOAT64_TRAJECTORY:g}"),
        how_aligned=("The update is written out, W - alpha * dW, with alpha a Python float (float64), "
                     "in every implementation."),
        verified_in=(
            "keras-team/keras keras/src/optimizers/base_optimizer.py (\"learning_rate = backend.Variable("
            "learning_rate, name=\"learning_rate\", dtype=backend.floatx(), ...)\"); keras/src/optimizers/sgd.py "
            "(\"learning_rate = ops.cast(learning_rate, variable.dtype)\")"
        ),
        measured=measured,
    )


def _keras_quadratic(keras, tf, optimizer, steps, dtype="float64"):
    """Keras ``apply_gradients`` on the quadratic inside floatx(dtype): w after each step."""
    w, c, out = tf.Variable(np.array(OPT_W0, dtype=dtype)), tf.constant(np.array(OPT_C, dtype=dtype)), []
    for _ in range(steps):
        optimizer.apply_gradients([(c * w, w)])
        out.append(w.numpy().astype(np.float64))
    return out


@_entry("keras-sgd-momentum-form", "Keras SGD momentum: m = mu m - lr g; w += m, the course's v scaled by -lr/(1-beta)",
        "keras")
def _keras_sgd_momentum_form():
    tf, keras = _tf(), _keras()
    from tf_impl.idiomatic import floatx

    steps = 5
    course = _course_momentum(steps)
    runs = {}
    with floatx("float64"):
        for label, lr in (("naive lr = alpha", OPT_ALPHA),
                          ("aligned lr = alpha (1 - beta)", OPT_ALPHA * (1 - OPT_BETA))):
            opt = keras.optimizers.SGD(learning_rate=lr, momentum=np.float64(OPT_BETA))
            runs[label] = _keras_quadratic(keras, tf, opt, steps)
    measured = dict(alpha=OPT_ALPHA, beta=OPT_BETA, steps=steps, course_final=course[-1].tolist(),
                    **_momentum_runs(runs, course))
    n, a = measured["naive lr = alpha"], measured["aligned lr = alpha (1 - beta)"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "The course: v = beta v + (1 - beta) dW; W -= alpha v. Keras SGD: m = momentum m - lr g; w += m "
            "(keras/src/optimizers/sgd.py update_step), so m = -lr/(1 - beta) v: the same trajectory only with "
            "lr = alpha (1 - beta); lr = alpha takes 1/(1 - beta) times larger steps."
        ),
        case=(f"J(w) = 1/2 sum(c w^2), c = {OPT_C}, w0 = {OPT_W0}, float64 (floatx float64, momentum np.float64("
              f"{OPT_BETA})), alpha = {OPT_ALPHA}, {steps} apply_gradients steps vs the course's momentum"),
        default_result=(f"lr = alpha: step 1 / course step = {_vec(n['step1_ratio'], 6)}; w after {steps} steps "
                        f"{_vec(n['final'], 6)} vs {_vec(measured['course_final'], 6)}, relative error "
                        f"{fmt(n['rel_err_per_step'][-1])}"),
        aligned_result=(f"lr = alpha (1 - beta): relative error per step {_vec(a['rel_err_per_step'])}"),
        effect=(f"after {steps} steps {fmt(n['rel_err_per_step'][-1])} (lr = alpha) vs "
                f"{fmt(a['rel_err_per_step'][-1])} (lr = alpha (1 - beta))"),
        how_aligned=("tf_impl/idiomatic.py make_optimizer: keras.optimizers.SGD(learning_rate=alpha (1 - beta), "
                     "momentum=np.float64(beta)) inside floatx(case.dtype)."),
        verified_in=(
            "installed keras/src/optimizers/sgd.py (update_step: \"self.assign(m, ops.subtract(ops.multiply(m, "
            "momentum), ops.multiply(gradient, learning_rate)))\" then \"self.assign_add(variable, m)\"); "
            "https://keras.io/api/optimizers/sgd/"
        ),
        measured=measured,
    )


@_entry("keras-float32-hyperparameter-cast",
        "Keras casts Python-float hyper-parameters through float32 (float64 runs)", "keras")
def _keras_float32_hyperparameter_cast():
    tf, keras = _tf(), _keras()
    from tf_impl.idiomatic import floatx

    steps = 10
    course = _course_momentum(steps)
    readback = {
        "ops.cast(0.9, 'float64')": float(keras.ops.cast(OPT_BETA, "float64")),
        "ops.cast(np.float64(0.9), 'float64')": float(keras.ops.cast(np.float64(OPT_BETA), "float64")),
        "float(np.float32(0.9))": float(np.float32(OPT_BETA)),
    }
    runs = {}
    with floatx("float64"):
        for label, beta in (("momentum=0.9 (Python float)", OPT_BETA),
                            ("momentum=np.float64(0.9)", np.float64(OPT_BETA))):
            opt = keras.optimizers.SGD(learning_rate=OPT_ALPHA * (1 - OPT_BETA), momentum=beta)
            runs[label] = _keras_quadratic(keras, tf, opt, steps)
        others = {}  # the other optimisers: Python floats vs np.float64, 10 steps each
        for name, make in (
                ("Adam(beta_1, beta_2)", lambda f: keras.optimizers.Adam(0.01, beta_1=f(0.9), beta_2=f(0.999),
                                                                        epsilon=np.float64(1e-7))),
                ("Adam(epsilon)", lambda f: keras.optimizers.Adam(0.01, beta_1=np.float64(0.9),
                                                                 beta_2=np.float64(0.999), epsilon=f(0.1))),
                ("RMSprop(rho, epsilon)", lambda f: keras.optimizers.RMSprop(0.01, rho=f(0.9), epsilon=f(0.1)))):
            py, f64 = (_keras_quadratic(keras, tf, make(f), steps)[-1] for f in (float, np.float64))
            others[name] = normwise_rel_err(py, f64)
    measured = dict(readback=readback, steps=steps, others_python_vs_float64=others,
                    beta_rel_change=abs(readback["ops.cast(0.9, 'float64')"] - OPT_BETA) / OPT_BETA)
    for label, out in runs.items():
        measured[label] = dict(rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
    d, a = measured["momentum=0.9 (Python float)"], measured["momentum=np.float64(0.9)"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "Keras optimisers keep their hyper-parameters as given; SGD's momentum and Adam's beta_1, beta_2 are "
            "cast at each step with ops.cast(value, variable.dtype), and on the TensorFlow backend tf.cast of a "
            "Python float makes a float32 tensor first, so in float64 they are float32-rounded: measured "
            + ", ".join(f"{k} = {v!r}" for k, v in readback.items()) + ". Values used directly in ops (RMSprop's "
            "rho and epsilon, Adam's epsilon) keep float64. Measured, Python floats vs np.float64 after "
            f"{steps} steps (relative difference): "
            + ", ".join(f"{k} {fmt(v)}" for k, v in measured["others_python_vs_float64"].items()) + "."
        ),
        case=(f"float64 momentum run (floatx float64, lr = alpha (1 - beta)), J(w) = 1/2 sum(c w^2), c = {OPT_C}, "
              f"w0 = {OPT_W0}, alpha = {OPT_ALPHA}, beta = {OPT_BETA}, {steps} steps vs the course's momentum"),
        default_result=(f"momentum=0.9: relative error after {steps} steps {fmt(d['rel_err_per_step'][-1])} "
                        f"(max {fmt(max(d['rel_err_per_step']))}); beta itself changes by "
                        f"{fmt(measured['beta_rel_change'])} relative"),
        aligned_result=(f"momentum=np.float64(0.9): relative error after {steps} steps "
                        f"{fmt(a['rel_err_per_step'][-1])} (max {fmt(max(a['rel_err_per_step']))})"),
        effect=(f"{fmt(max(d['rel_err_per_step']))} vs {fmt(max(a['rel_err_per_step']))} max relative error: "
                "float32 level in a float64 run (the float64 tolerance is 1e-12 / 1e-10)"),
        how_aligned=("tf_impl/idiomatic.py make_optimizer passes every hyper-parameter but the learning rate as "
                     "np.float64 (a float subclass that converts to a float64 tensor); the learning rate is a "
                     "variable of dtype floatx, set to the case's dtype by floatx(case.dtype)."),
        verified_in=(
            "installed keras/src/optimizers/sgd.py (\"momentum = ops.cast(self.momentum, variable.dtype)\"), "
            "adam.py (\"ops.cast(self.beta_1, variable.dtype)\", \"ops.cast(self.beta_2, variable.dtype)\"), "
            "rmsprop.py (\"rho = self.rho\", no cast); keras/src/backend/tensorflow/core.py (cast: "
            "\"return tf.cast(x, dtype=dtype)\"; tf.cast converts a Python float to a float32 tensor first)"
        ),
        measured=measured,
    )


@_entry("keras-learning-rate-decay",
        "Keras learning-rate decay: InverseTimeDecay computes in its arguments' dtype; SGD momentum keeps each "
        "step's rate", "keras")
def _keras_learning_rate_decay():
    tf, keras = _tf(), _keras()
    from reference.optimizers import update_lr
    from tf_impl.idiomatic import floatx

    epochs, decay_rate = 6, 0.1
    course_rates = [update_lr(OPT_ALPHA, e, decay_rate) for e in range(epochs)]  # one step an epoch
    measured = dict(alpha=OPT_ALPHA, decay_rate=decay_rate, beta=OPT_BETA, epochs=epochs, course_rates=course_rates)
    with floatx("float64"):
        for label, alpha, rate in (("Python floats", OPT_ALPHA, decay_rate),
                                   ("np.float64", np.float64(OPT_ALPHA), np.float64(decay_rate))):
            schedule = keras.optimizers.schedules.InverseTimeDecay(alpha, decay_steps=1, decay_rate=rate,
                                                                   staircase=True)
            rates = [float(np.asarray(schedule(e))) for e in range(epochs)]
            measured[label] = dict(dtype=str(np.asarray(schedule(0)).dtype), rates=rates,
                                   max_rel_diff=max(abs(r - c) / c for r, c in zip(rates, course_rates)))
        # momentum under the decay, on the quadratic: the course's v = beta v + (1 - beta) dW; W -= alpha_e v
        w, v, c, course = np.array(OPT_W0), np.zeros(2), np.array(OPT_C), []
        for alpha_e in course_rates:
            v = OPT_BETA * v + (1 - OPT_BETA) * c * w
            w = w - alpha_e * v
            course.append(w.copy())
        schedule = keras.optimizers.schedules.InverseTimeDecay(np.float64(OPT_ALPHA * (1 - OPT_BETA)), decay_steps=1,
                                                               decay_rate=np.float64(decay_rate), staircase=True)
        opt = keras.optimizers.SGD(learning_rate=schedule, momentum=np.float64(OPT_BETA))
        keras_w = _keras_quadratic(keras, tf, opt, epochs)
    measured["momentum_rel_err_per_step"] = [normwise_rel_err(a, b) for a, b in zip(keras_w, course)]
    p, f = measured["Python floats"], measured["np.float64"]
    m = measured["momentum_rel_err_per_step"]
    return dict(
        framework_version=_version(keras, tf),
        what_differs=(
            "InverseTimeDecay (keras/src/optimizers/schedules/learning_rate_schedule.py) computes alpha / (1 + "
            "decay_rate floor(step / decay_steps)) in the dtype of ops.convert_to_tensor(initial_learning_rate), "
            "float32 for a Python float even under floatx float64, and casts decay_rate to it (through float32). "
            "And Keras' SGD momentum m = beta m - lr g; w += m folds each step's rate into m, so with a decaying "
            "rate each past gradient keeps its own step's rate, where the course scales the whole v by the current "
            "one (W -= alpha_e v): the same only while the rate is constant."
        ),
        case=(f"update_lr's rates, alpha = {OPT_ALPHA}, decay_rate = {decay_rate}, epochs 0..{epochs - 1} (one step "
              f"an epoch, staircase), floatx float64; momentum beta = {OPT_BETA} on J(w) = 1/2 sum(c w^2), c = "
              f"{OPT_C}, w0 = {OPT_W0}, {epochs} apply_gradients steps vs the course's momentum with the same rates"),
        default_result=(f"Python-float arguments: rates in {p['dtype']}, max relative difference from the course's "
                        f"{fmt(p['max_rel_diff'])}; momentum: relative error per step {_vec(m)}"),
        aligned_result=(f"np.float64 arguments: rates in {f['dtype']}, max relative difference "
                        f"{fmt(f['max_rel_diff'])}; momentum: not alignable through the arguments"),
        effect=(f"rates {fmt(p['max_rel_diff'])} vs {fmt(f['max_rel_diff'])}; momentum {fmt(max(m))} after "
                f"{epochs} steps (0 at step 1, before the rate first changes)"),
        how_aligned=("tf_impl/idiomatic.py learning_rate_schedule: InverseTimeDecay(np.float64(alpha), decay_steps = "
                     "the steps of an epoch (times time_interval for schedule_lr_decay), np.float64(decay_rate), "
                     "staircase=True). Momentum with a decay is the divergence record keras-sgd-momentum-decay "
                     "(nnparity/divergences.py), its aligned reference Keras' form written out (keras_update)."),
        verified_in=(
            "installed keras/src/optimizers/schedules/learning_rate_schedule.py (InverseTimeDecay.__call__: "
            "\"initial_learning_rate = ops.convert_to_tensor(self.initial_learning_rate)\", \"dtype = "
            "initial_learning_rate.dtype\", \"decay_rate = ops.cast(self.decay_rate, dtype)\", \"if self.staircase: "
            "p = ops.floor(p)\"); keras/src/optimizers/base_optimizer.py (_get_current_learning_rate: "
            "\"self._learning_rate(self._iterations)\"); keras/src/optimizers/sgd.py (update_step); "
            "https://keras.io/api/optimizers/learning_rate_schedules/inverse_time_decay/"
        ),
        measured=measured,
    )
