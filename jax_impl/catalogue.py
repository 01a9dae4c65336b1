"""The catalogue's JAX, flax and optax entries (``nnparity.catalogue``): where jax, flax and optax differ from the
notes' math, each entry measured by a run.  Declared here, beside the code they measure; ``jax_impl/framework.py``'s
``catalogue()`` hands them to the catalogue.

Read without importing jax: each entry imports it (``_jax``) when it runs.
"""

from __future__ import annotations

import numpy as np

from nnparity.catalogue import (
    OPT_ALPHA,
    OPT_BETA,
    OPT_C,
    OPT_W0,
    Entry,
    _course_momentum,
    _import,
    _max_rel_diff,
    _momentum_runs,
    _network,
    _vec,
    _version,
    _weight_decay_case,
    fmt,
    normwise_rel_err,
    registrar,
)

ENTRIES: list[Entry] = []
_entry = registrar(ENTRIES)


def _jax():
    """jax, with ``jax_impl`` imported: float64 is float64 (``jax_enable_x64``, set at its import)."""
    jax = _import("jax")
    _import("jax_impl")
    return jax


def _optax():
    _jax()
    return _import("optax")


def _optax_quadratic(tx, steps):
    """optax ``tx`` on the quadratic J = 1/2 sum(c w^2), float64: w after each step."""
    import jax.numpy as jnp
    import optax

    w, c = jnp.asarray(OPT_W0, jnp.float64), jnp.asarray(OPT_C, jnp.float64)
    state, out = tx.init(w), []
    for _ in range(steps):
        updates, state = tx.update(c * w, state, w)
        w = optax.apply_updates(w, updates)
        out.append(np.asarray(w, dtype=np.float64))
    return out


def _optax_first_update(tx, g):
    """The first update of ``tx`` from w = 0 for the gradient g (float64), as a positive step."""
    import jax.numpy as jnp

    w = jnp.zeros(1, jnp.float64)
    updates, _ = tx.update(jnp.asarray([g], jnp.float64), tx.init(w), w)
    return float(-updates[0])


#: The ``jax-x64`` case: a grid case (2,4,1 tanh on planar, full batch, 1000 steps) in float64.
X64_CASE = "l2-tanh-float64-fullbatch"
X64_QUANTITIES = ("Z1", "A1", "cost", "dW1", "db1")


@_entry("jax-x64", "Without jax_enable_x64 JAX computes a float64 case in float32, silently", "jax")
def _jax_x64():
    import warnings

    jax = _jax()
    from jax_impl import model
    from nnparity import data, grid, harness
    from nnparity.tolerances import FLOAT64_NORMWISE, FLOAT64_TRAJECTORY
    from reference.model import forward_backward, train

    case = grid.select(grid.test_grid(), X64_CASE)[0]
    X, Y, P, schedule = harness.prepare(case, data.load_data(case.data))
    ref = forward_backward(P, X, Y, case)
    _, ref_costs = train(P, X, Y, case, schedule)
    runs = {}
    for label, x64 in (("default", False), ("aligned", True)):
        with jax.enable_x64(x64), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            captured = model.forward_backward(P, X, Y, case)
            _, costs = model.train(P, X, Y, case, schedule, use_jit=True)
        runs[label] = dict(
            jax_enable_x64=x64, dtype=str(captured["dW1"].dtype),
            rel_err={q: normwise_rel_err(captured[q], ref[q]) for q in X64_QUANTITIES},
            trajectory_rel_err=_max_rel_diff(costs, ref_costs),
            warnings=sorted({str(w.message).split(".")[0] for w in caught}))
    measured = dict(case=case.name, steps=len(ref_costs), tolerance=FLOAT64_NORMWISE,
                    trajectory_tolerance=FLOAT64_TRAJECTORY, **runs)
    d, a = runs["default"], runs["aligned"]

    def errors(r):
        return ", ".join(f"{q} {fmt(r['rel_err'][q], 2)}" for q in X64_QUANTITIES)

    return dict(
        framework_version=_version(jax),
        what_differs=(
            "JAX's default is 32-bit: without jax_enable_x64 a float64 request (jnp.asarray(x, jnp.float64), "
            "X.astype(float64) inputs) gives float32 arrays, with a UserWarning at most (\"Explicitly requested "
            "dtype float64 ... will be truncated to dtype float32\"); no error, so a \"float64\" run is a float32 run."
        ),
        case=(f"{case.name}: 2,4,1 tanh, planar (m = {X.shape[1]}), float64 inputs and parameters; forward_backward "
              f"of jax_impl.model and its jax.jit training ({len(ref_costs)} steps) with jax.enable_x64(False) / "
              "(True), compared with the reference"),
        default_result=(f"x64 off: arrays come back {d['dtype']}, warning {d['warnings']}; relative error {errors(d)}; "
                        f"cost trajectory {fmt(d['trajectory_rel_err'], 2)}"),
        aligned_result=(f"x64 on: {a['dtype']}; relative error {errors(a)}; cost trajectory "
                        f"{fmt(a['trajectory_rel_err'], 2)}"),
        effect=(f"float32 rounding where float64's is expected: dW1 {fmt(d['rel_err']['dW1'], 2)}, db1 "
                f"{fmt(d['rel_err']['db1'], 2)} vs the tolerance {fmt(FLOAT64_NORMWISE)}; trajectory "
                f"{fmt(d['trajectory_rel_err'], 2)} vs {fmt(FLOAT64_TRAJECTORY)} (aligned: "
                f"{fmt(max(a['rel_err'].values()), 2)}, {fmt(a['trajectory_rel_err'], 2)})"),
        how_aligned=("jax_impl/__init__.py: jax.config.update(\"jax_enable_x64\", True) at import, for the whole "
                     "process; float32 cases stay float32 (their arrays are created float32)."),
        verified_in=(
            "installed jax/_src/config.py (enable_x64 = bool_state(name='jax_enable_x64', default=False, ...)); "
            "jax/_src/dtypes.py (canonicalize_dtype and the \"Explicitly requested dtype ... is not available, and "
            "will be truncated to dtype\" warning); https://docs.jax.dev/en/latest/default_dtypes.html"
        ),
        measured=measured,
    )


@_entry("optax-rmsprop-epsilon", "optax.rmsprop adds eps inside the square root unless eps_in_sqrt=False", "optax")
def _optax_rmsprop_epsilon():
    optax = _optax()
    jax = _jax()

    alpha, rho = 0.01, 0.9
    measured = dict(alpha=alpha, rho=rho, cases={})
    for g in (1e-4, 1.0):
        for eps in (1e-8, 1e-7):
            course = alpha * g / (np.sqrt((1 - rho) * g * g) + eps)  # reference.optimizers on a zero s
            default = _optax_first_update(optax.rmsprop(alpha, decay=rho, eps=eps), g)
            aligned = _optax_first_update(optax.rmsprop(alpha, decay=rho, eps=eps, eps_in_sqrt=False), g)
            measured["cases"][f"g={g:g}, eps={eps:g}"] = dict(
                g=g, eps=eps, course_step=course, default_step=default, aligned_step=aligned,
                default_rel_diff=abs(default - course) / course, aligned_rel_diff=abs(aligned - course) / course)
    c = measured["cases"]
    return dict(
        framework_version=_version(optax, jax),
        what_differs=(
            "The course: W -= alpha dW / (sqrt(s) + eps). optax.rmsprop(learning_rate, decay, eps) -> "
            "scale_by_rms(decay, eps, initial_scale=0., eps_in_sqrt=True): g * rsqrt(nu + eps), eps inside the "
            "sqrt (Keras' form); eps_in_sqrt=False gives g / (sqrt(nu) + eps), the course's. nu starts at "
            "initial_scale = 0, the course's s = 0."
        ),
        case=(f"first update from w = 0, alpha = {alpha}, decay = beta2 = {rho}, float64 (x64 on), g in {{1e-4, 1}}, "
              "eps in {1e-8, 1e-7}; the course's step alpha g / (sqrt((1 - beta2) g^2) + eps)"),
        default_result="; ".join(f"{k}: step {fmt(c[k]['default_step'], 6)} vs course {fmt(c[k]['course_step'], 6)}"
                                 f" (rel diff {fmt(c[k]['default_rel_diff'])})" for k in c),
        aligned_result=("eps_in_sqrt=False: rel diff "
                        + ", ".join(f"{fmt(c[k]['aligned_rel_diff'])} ({k})" for k in c)),
        effect=(f"g = 1e-4: the first step is off by {fmt(c['g=0.0001, eps=1e-08']['default_rel_diff'])} (eps 1e-8) "
                f"and {fmt(c['g=0.0001, eps=1e-07']['default_rel_diff'])} (eps 1e-7) relative; g = 1: "
                f"{fmt(c['g=1, eps=1e-08']['default_rel_diff'])}; with eps_in_sqrt=False at most "
                f"{fmt(max(r['aligned_rel_diff'] for r in c.values()))}"),
        how_aligned=("jax_impl/idiomatic.py make_optimizer: optax.rmsprop(alpha, decay=beta2, eps=eps, "
                     "eps_in_sqrt=False); jax_impl/optimizers.py writes the course's sqrt(s) + eps."),
        verified_in=(
            "installed optax/_src/alias.py (rmsprop: \"transform.scale_by_rms(decay=decay, eps=eps, "
            "initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt, ...)\", eps_in_sqrt: bool = True); "
            "optax/_src/transform.py (scale_by_rms: \"if eps_in_sqrt: scaling = ... jax.lax.rsqrt(n + eps)\" "
            "\"else: ... 1 / (jnp.sqrt(n) + eps)\"); https://optax.readthedocs.io/en/latest/api/optimizers.html"
        ),
        measured=measured,
    )


@_entry("optax-sgd-momentum-form",
        "optax.sgd momentum: an undamped trace v = g + beta v, the course's v scaled by 1/(1-beta)", "optax")
def _optax_sgd_momentum_form():
    optax = _optax()
    jax = _jax()

    steps = 5
    course = _course_momentum(steps)
    runs = {label: _optax_quadratic(optax.sgd(lr, momentum=OPT_BETA), steps)
            for label, lr in (("naive lr = alpha", OPT_ALPHA), ("aligned lr = alpha (1 - beta)",
                                                                OPT_ALPHA * (1 - OPT_BETA)))}
    measured = dict(alpha=OPT_ALPHA, beta=OPT_BETA, steps=steps, course_final=course[-1].tolist(),
                    **_momentum_runs(runs, course))
    n, a = measured["naive lr = alpha"], measured["aligned lr = alpha (1 - beta)"]
    return dict(
        framework_version=_version(optax, jax),
        what_differs=(
            "The course: v = beta v + (1 - beta) dW; W -= alpha v. optax.sgd(learning_rate, momentum) -> "
            "trace(decay=momentum): v = g + decay v (undamped), then scale_by_learning_rate: update -lr v, so v is "
            "1/(1 - beta) times the course's: the same trajectory only with lr = alpha (1 - beta) (optax.ema(beta, "
            "debias=False) would be the course's v itself)."
        ),
        case=(f"J(w) = 1/2 sum(c w^2), c = {OPT_C}, w0 = {OPT_W0}, float64 (x64 on), alpha = {OPT_ALPHA}, "
              f"beta = {OPT_BETA}, {steps} tx.update / optax.apply_updates steps vs the course's momentum"),
        default_result=(f"sgd(alpha, momentum=beta): step 1 / course step = {_vec(n['step1_ratio'], 6)}; w after "
                        f"{steps} steps {_vec(n['final'], 6)} vs {_vec(measured['course_final'], 6)}, relative error "
                        f"{fmt(n['rel_err_per_step'][-1])}"),
        aligned_result=(f"sgd(alpha (1 - beta), momentum=beta): relative error per step "
                        f"{_vec(a['rel_err_per_step'])}"),
        effect=(f"after {steps} steps {fmt(n['rel_err_per_step'][-1])} (lr = alpha) vs "
                f"{fmt(a['rel_err_per_step'][-1])} (lr = alpha (1 - beta))"),
        how_aligned="jax_impl/idiomatic.py make_optimizer: optax.sgd(alpha (1 - beta), momentum=beta).",
        verified_in=(
            "installed optax/_src/alias.py (sgd: \"opt = transform.trace(decay=momentum, nesterov=nesterov, ...)\" "
            "then \"transform.scale_by_learning_rate(learning_rate)\"); optax/transforms/_accumulation.py (trace: "
            "\"f = lambda g, t: g + decay * t\"; docstring: \"trace = decay * trace + t, while ema = decay * ema + "
            "(1-decay) * t\")"
        ),
        measured=measured,
    )


@_entry("optax-adam", "optax.adam adds eps where the course does (no difference)", "optax")
def _optax_adam():
    optax = _optax()
    jax = _jax()
    from reference.optimizers import update_parameters_with_adam

    alpha, b1, b2 = 0.01, 0.9, 0.999
    measured = dict(alpha=alpha, beta1=b1, beta2=b2, cases={})
    for g in (1e-4, 1.0):
        for eps in (1e-8, 1e-7):
            v, s = (1 - b1) * g, (1 - b2) * g * g
            course = alpha * (v / (1 - b1)) / (np.sqrt(s / (1 - b2)) + eps)
            step = _optax_first_update(optax.adam(alpha, b1=b1, b2=b2, eps=eps), g)
            measured["cases"][f"g={g:g}, eps={eps:g}"] = dict(g=g, eps=eps, course_step=course, optax_step=step,
                                                              rel_diff=abs(step - course) / course)
    steps, eps = 10, 0.1  # a large eps, so that its placement would show at every step
    P, v, s, c, course = {"W": np.array(OPT_W0)}, {"dW": np.zeros(2)}, {"dW": np.zeros(2)}, np.array(OPT_C), []
    for t in range(1, steps + 1):
        P, v, s = update_parameters_with_adam(P, {"dW": c * P["W"]}, v, s, 1 - b1**t, 1 - b2**t, b1, b2, alpha, eps)
        course.append(P["W"])
    out = _optax_quadratic(optax.adam(alpha, b1=b1, b2=b2, eps=eps), steps)
    measured.update(steps=steps, trajectory_eps=eps,
                    trajectory_rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
    cases = measured["cases"]
    worst = max(r["rel_diff"] for r in cases.values())
    return dict(
        framework_version=_version(optax, jax),
        what_differs=(
            "None found: the course's W -= alpha v_hat / (sqrt(s_hat) + eps). optax.adam -> scale_by_adam: mu = "
            "(1 - b1) g + b1 mu, nu = (1 - b2) g^2 + b2 nu, mu_hat = mu / (1 - b1^t), nu_hat = nu / (1 - b2^t), "
            "mu_hat / (sqrt(nu_hat + eps_root) + eps) with eps_root = 0: eps on the corrected sqrt, unlike Keras' "
            "Adam (keras-adam-epsilon)."
        ),
        case=(f"first update from w = 0, alpha = {alpha}, b1 = {b1}, b2 = {b2}, float64 (x64 on), g in {{1e-4, 1}}, "
              f"eps in {{1e-8, 1e-7}}; and {steps} steps on J(w) = 1/2 sum(c w^2), c = {OPT_C}, w0 = {OPT_W0}, "
              f"eps = {eps}, vs reference.optimizers.update_parameters_with_adam"),
        default_result=("optax.adam(alpha, b1, b2, eps): first-step rel diff "
                        + ", ".join(f"{fmt(cases[k]['rel_diff'])} ({k})" for k in cases)
                        + f"; {steps} steps with eps = {eps}: max relative error "
                        f"{fmt(max(measured['trajectory_rel_err_per_step']))}"),
        aligned_result="the same call: nothing to align",
        effect=(f"no difference: first step at most {fmt(worst)} relative, {steps}-step trajectory "
                f"{fmt(max(measured['trajectory_rel_err_per_step']))} relative: eps on the corrected sqrt, "
                "as the course"),
        how_aligned="jax_impl/idiomatic.py make_optimizer: optax.adam(alpha, b1=beta1, b2=beta2, eps=eps), as is.",
        verified_in=(
            "installed optax/_src/transform.py (scale_by_adam: \"mu = optax.tree.update_moment(updates, state.mu, "
            "b1, 1)\", \"nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)\", "
            "\"mu_hat = optax.tree.bias_correction(mu, b1, count_inc)\", \"m / (jnp.sqrt(v + eps_root) + eps)\"); "
            "optax/_src/alias.py (adam: eps_root = 0.0)"
        ),
        measured=measured,
    )


@_entry("optax-weight-decay", "optax.add_decayed_weights / adamw decay the biases too unless masked", "optax")
def _optax_weight_decay():
    optax = _optax()
    jax = _jax()
    import jax.numpy as jnp

    X, Y, P, m, lambd, alpha, course_dW, course_db = _weight_decay_case()
    Xt, Yt = jnp.asarray(X.T), jnp.asarray(Y.T)  # examples as rows, flax's layout
    params = {"kernel": jnp.asarray(P["W1"].T), "bias": jnp.asarray(P["b1"].ravel())}

    def loss(p):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(Xt @ p["kernel"] + p["bias"], Yt))

    def l2_cost(p):  # jax_impl.idiomatic.l2_cost: lambda/(2m) sum ||kernel||^2, the kernels only
        return loss(p) + 1 / m * (lambd / 2) * jnp.sum(jnp.square(p["kernel"]))

    def step(tx, objective=loss):
        updates, _ = tx.update(jax.grad(objective)(params), tx.init(params), params)
        new = optax.apply_updates(params, updates)  # the gradient the step used: (p_before - p_after) / alpha
        dW = np.asarray((params["kernel"] - new["kernel"]) / alpha).T
        db = np.asarray((params["bias"] - new["bias"]) / alpha).reshape(-1, 1)
        return dict(db_step=np.ravel(db).tolist(), db_diff=float(db[0, 0] - course_db[0, 0]),
                    db_rel_err=normwise_rel_err(db, course_db), dW_rel_err=normwise_rel_err(dW, course_dW))

    wd = lambd / m
    runs = {
        "add_decayed_weights": step(optax.chain(optax.add_decayed_weights(wd), optax.sgd(alpha))),
        "masked": step(optax.chain(optax.add_decayed_weights(wd, mask={"kernel": True, "bias": False}),
                                   optax.sgd(alpha))),
        "l2 cost term": step(optax.sgd(alpha), l2_cost),
    }
    adam, adamw = (tx.update(jax.grad(loss)(params), tx.init(params), params)[0]["bias"]
                   for tx in (optax.adam(alpha), optax.adamw(alpha, weight_decay=wd)))
    measured = dict(m=m, lambd=lambd, alpha=alpha, b=0.5, weight_decay=wd, course_db=float(course_db[0, 0]),
                    expected_extra=wd * 0.5, adamw_bias_extra=float(adam[0] - adamw[0]), **runs)
    d, k, c = runs["add_decayed_weights"], runs["masked"], runs["l2 cost term"]
    return dict(
        framework_version=_version(optax, jax),
        what_differs=(
            "The course's L2 cost adds lambda/(2m) sum ||W[l]||^2: dW gains lambda/m W, db nothing. "
            "optax.add_decayed_weights(weight_decay, mask=None) adds weight_decay * p to the update of every "
            "parameter (g + s * p over the whole tree), biases included; optax.adamw chains it with mask=None too "
            "(decoupled: after Adam's scaling). Only a mask leaves the biases alone."
        ),
        case=(f"logistic regression (2,1) on planar data (m = {m}) as kernel (2, 1) and bias (1,), inv-sqrt seed 1 "
              f"with b = 0.5, float64 (x64 on), lambda = {lambd}, one optax.sgd step (lr = {alpha}) on "
              "mean(optax.sigmoid_binary_cross_entropy); the gradient used recovered as (p0 - p1) / lr and "
              "compared with the course's dW + lambda/m W, db"),
        default_result=(f"chain(add_decayed_weights({fmt(wd)}), sgd): db used {fmt(d['db_step'][0], 8)} vs the "
                        f"course's {fmt(measured['course_db'], 8)} (difference {fmt(d['db_diff'])}, relative "
                        f"{fmt(d['db_rel_err'])}); dW rel err {fmt(d['dW_rel_err'])}; adamw(weight_decay={fmt(wd)}) "
                        f"moves the bias {fmt(measured['adamw_bias_extra'])} more than adam (lr wd b)"),
        aligned_result=(f"L2 as a cost term on the kernel: db rel err {fmt(c['db_rel_err'])}, dW rel err "
                        f"{fmt(c['dW_rel_err'])}; mask={{kernel: True, bias: False}}: db {fmt(k['db_rel_err'])}, "
                        f"dW {fmt(k['dW_rel_err'])}"),
        effect=(f"db off by {fmt(d['db_diff'])} = lambda/m b ({fmt(measured['expected_extra'])}), "
                f"{fmt(d['db_rel_err'])} relative; aligned {fmt(c['db_rel_err'])}"),
        how_aligned=("jax_impl/idiomatic.py: no weight decay in the optimiser; total_cost adds l2_cost = "
                     "lambda/(2m) sum ||kernel||^2 over the kernels only (m the batch's size), whose gradient is the "
                     "course's lambda/m W; jax_impl/model.py compute_cost the same on the W[l]."),
        verified_in=(
            "installed optax/transforms/_adding.py (add_decayed_weights: \"lambda g, p: None if g is None else g + "
            "s * p\"; \"If mask is not `None`, apply mask ... E.g. it is common to skip weight decay on bias units\"); "
            "optax/_src/alias.py (adamw: \"transform.add_decayed_weights(weight_decay, mask)\", mask = None)"
        ),
        measured=measured,
    )


#: The ``jax-leaky-relu-kink`` case: the first columns of the planar X set to 0, so that Z1 = W1 x + b1 = 0 exactly
#: there (the reference's b1 is 0).
KINK_ZERO_COLUMNS = 3


@_entry("jax-leaky-relu-kink", "jax.nn.leaky_relu's derivative at Z = 0 is 1, the notes' is the slope", "jax")
def _jax_leaky_relu_kink():
    jax = _jax()
    import jax.numpy as jnp

    from jax_impl.activations import activation_forward
    from reference.model import forward_backward

    case, X, Y, P = _network((2, 4, 1), "leaky_relu", leaky_slope=0.01)
    X = X.copy()
    X[:, :KINK_ZERO_COLUMNS] = 0.0
    ref = forward_backward(P, X, Y, case)
    zeros = ref["Z1"] == 0
    slope, m = case.leaky_slope, X.shape[1]

    def run(g):
        """dZ1 (per example) and db1 of the 2,4,1 network with hidden activation g, by jax.grad."""
        def J(b1, shift):
            A1 = g(P["W1"] @ X + b1 + shift)
            AL = jax.nn.sigmoid(P["W2"] @ A1 + P["b2"])
            return -jnp.mean(Y * jnp.log(AL) + (1 - Y) * jnp.log(1 - AL))

        db1, dshift = jax.grad(J, argnums=(0, 1))(jnp.asarray(P["b1"]), jnp.zeros_like(jnp.asarray(ref["Z1"])))
        return np.asarray(dshift) * m, np.asarray(db1)

    runs = {"jax.nn.leaky_relu": run(lambda Z: jax.nn.leaky_relu(Z, negative_slope=slope)),
            "jax_impl (jnp.where(Z > 0, ...))": run(lambda Z: activation_forward(Z, "leaky_relu", slope))}
    derivative_at_0 = {name: float(jax.grad(g)(0.0)) for name, g in (
        ("jax.nn.leaky_relu", lambda z: jax.nn.leaky_relu(z, negative_slope=slope)),
        ("jax_impl", lambda z: activation_forward(z, "leaky_relu", slope)))}
    measured = dict(slope=slope, zero_entries=int(zeros.sum()), zero_columns=KINK_ZERO_COLUMNS,
                    derivative_at_0=derivative_at_0, reference_db1=np.ravel(ref["db1"]).tolist())
    for name, (dZ1, db1) in runs.items():
        measured[name] = dict(dZ1_at_0_over_reference=float(np.max(dZ1[zeros] / ref["dZ1"][zeros])),
                              dZ1_rel_err=normwise_rel_err(dZ1, ref["dZ1"]), db1=np.ravel(db1).tolist(),
                              db1_rel_err=normwise_rel_err(db1, ref["db1"]))
    d, a = measured["jax.nn.leaky_relu"], measured["jax_impl (jnp.where(Z > 0, ...))"]
    return dict(
        framework_version=_version(jax),
        what_differs=(
            "The notes' (and the reference's, torch's, TensorFlow's) leaky_relu'(0) is the slope: Z > 0 counts as "
            "positive. jax.nn.leaky_relu is jnp.where(x >= 0, x, negative_slope * x), so jax.grad takes the x >= 0 "
            "branch at 0: derivative 1. The same values, another derivative at the kink."
        ),
        case=(f"2,4,1 network, leaky_relu hidden (slope {slope}), sigmoid output, planar data (m = {m}) with its first "
              f"{KINK_ZERO_COLUMNS} columns set to 0 (Z1 = 0 exactly at {measured['zero_entries']} entries, b1 = 0), "
              "inv-sqrt seed 1, float64 (x64 on); dZ1 and db1 by jax.grad vs the reference"),
        default_result=(f"jax.nn.leaky_relu: derivative at 0 = {fmt(derivative_at_0['jax.nn.leaky_relu'])}; dZ1 at the "
                        f"zeros {fmt(d['dZ1_at_0_over_reference'], 6)} times the reference's; dZ1 rel err "
                        f"{fmt(d['dZ1_rel_err'])}, db1 rel err {fmt(d['db1_rel_err'])}"),
        aligned_result=(f"jnp.where(Z > 0, Z, slope * Z): derivative at 0 = {fmt(derivative_at_0['jax_impl'])}; dZ1 "
                        f"rel err {fmt(a['dZ1_rel_err'])}, db1 rel err {fmt(a['db1_rel_err'])}"),
        effect=(f"dZ1 {fmt(d['dZ1_at_0_over_reference'], 6)} = 1/slope times the notes' where Z = 0; db1 off by "
                f"{fmt(d['db1_rel_err'])} relative (aligned {fmt(a['db1_rel_err'])})"),
        how_aligned=("jax_impl/activations.py writes jnp.where(Z > 0, Z, slope * Z); jax_impl/idiomatic.py (flax) "
                     "uses jax.nn.leaky_relu(negative_slope=slope): the same wherever no Z is exactly 0 (the parity "
                     "grid's data)."),
        verified_in=(
            "installed jax/_src/nn/functions.py (leaky_relu: \"return jnp.where(x_arr >= 0, x_arr, negative_slope * "
            "x_arr)\"; relu has a custom_jvp with relu'(0) = 0); https://docs.jax.dev/en/latest/_autosummary/"
            "jax.nn.leaky_relu.html"
        ),
        measured=measured,
    )
