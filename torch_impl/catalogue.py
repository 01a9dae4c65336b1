"""The catalogue's PyTorch entries (``nnparity.catalogue``): where torch differs from the notes' math, each entry
measured by a run.  Declared here, beside the code they measure; ``torch_impl/framework.py``'s ``catalogue()`` hands
them to the catalogue.  The entries that measure torch beside TensorFlow or Keras (default slopes, dtypes, layouts,
reductions, dropout, and torch's RMSprop and Adam as the course's form beside Keras') are the cross-framework family,
in ``nnparity/catalogue.py``.

Read without importing torch: each entry imports it (``_torch``) when it runs.
"""

from __future__ import annotations

import numpy as np

from nnparity.catalogue import (
    OPT_ALPHA,
    OPT_BETA,
    OPT_C,
    OPT_W0,
    SATURATED_AL,
    SATURATED_Y,
    Entry,
    _conv_inputs,
    _course_momentum,
    _max_abs,
    _notes_bce,
    _notes_formula_result,
    _saturated,
    _torch,
    _vec,
    _version,
    _weight_decay_case,
    fmt,
    normwise_rel_err,
    registrar,
)

ENTRIES: list[Entry] = []
_entry = registrar(ENTRIES)


# --------------------------------------------------------------------------- cross-entropy


@_entry("bce-saturated-torch", "Cross-entropy of saturated probabilities: torch clamps log at -100", "torch")
def _bce_saturated_torch():
    torch = _torch()
    from torch_impl.losses import compute_cost

    measured = {}
    for dtype in ("float64", "float32"):
        AL, Y = _saturated(dtype)
        notes_cost, notes_grad = _notes_bce(AL, Y)
        a = torch.tensor(AL, requires_grad=True)
        J = torch.nn.BCELoss()(a, torch.tensor(Y))
        (g,) = torch.autograd.grad(J, a)
        a2 = torch.tensor(AL, requires_grad=True)
        J2 = compute_cost(a2, torch.tensor(Y))
        (g2,) = torch.autograd.grad(J2, a2)
        measured[dtype] = dict(notes_cost=notes_cost, notes_grad=notes_grad.ravel().tolist(),
                               torch_cost=float(J.detach()), torch_grad=g.numpy().ravel().tolist(),
                               aligned_cost=float(J2.detach()), aligned_grad=g2.numpy().ravel().tolist())
    measured["reduction"] = torch.nn.BCELoss().reduction
    f64, f32 = measured["float64"], measured["float32"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The notes' cross-entropy is inf when a is exactly 0 or 1 for the wrong label. torch.nn.BCELoss / "
            "F.binary_cross_entropy clamp each log term at -100 (aten/src/ATen/native/Loss.cpp), so a saturated "
            "wrong example adds 100/m to the cost; its backward divides by max(a(1-a), EPSILON = 1e-12)."
        ),
        case=f"AL = {SATURATED_AL}, Y = {SATURATED_Y} (m = 2), float64 and float32; nn.BCELoss() "
             f"(reduction={measured['reduction']!r}); gradients dJ/dAL from torch.autograd",
        default_result=(
            f"float64: cost {fmt(f64['torch_cost'], 8)}, dJ/dAL = {_vec(f64['torch_grad'])}; "
            f"float32: cost {fmt(f32['torch_cost'], 8)}"
        ),
        aligned_result=_notes_formula_result("torch_impl", f64, f32),
        effect=(
            f"cost {fmt(f64['torch_cost'])} vs {fmt(f64['notes_cost'])}; dJ/dAL at the saturated example "
            f"{fmt(f64['torch_grad'][0])} vs {fmt(f64['notes_grad'][0])}"
        ),
        how_aligned=(
            "torch_impl writes the notes' formula with torch.log (no clamp), so it is inf exactly where the "
            "reference is; the harness accepts non-finite values only in the same places with the same value."
        ),
        verified_in=(
            "pytorch/pytorch aten/src/ATen/native/Loss.cpp (binary_cross_entropy_out_cpu: \"std::max(scalar_t("
            "std::log(input_val)), scalar_t(-100))\"; backward: \"/ (scalar_t(std::max((scalar_t(1) - input_val) * "
            "input_val, scalar_t(EPSILON))))\", \"constexpr float EPSILON = 1e-12;\"); torch/nn/modules/loss.py "
            "(BCELoss: \"Our solution is that BCELoss clamps its log function outputs to be greater than or equal to "
            "-100\"); https://docs.pytorch.org/docs/stable/generated/torch.nn.BCELoss.html"
        ),
        measured=measured,
    )


@_entry("bce-vs-logits", "nn.BCELoss on sigmoid outputs vs nn.BCEWithLogitsLoss at large logits", "torch")
def _bce_vs_logits():
    torch = _torch()
    from reference.activations import sigmoid

    z_values, y_values = [[40.0, 5.0]], [[0.0, 1.0]]
    grid = np.arange(0.0, 60.0, 0.5)
    measured = {"sigmoid_saturates_at": {}}
    for dtype in ("float64", "float32"):
        s = torch.sigmoid(torch.from_numpy(grid.astype(dtype))).numpy()
        measured["sigmoid_saturates_at"][dtype] = float(grid[np.argmax(s == 1)])  # first z with sigmoid(z) == 1
        z, y = np.array(z_values, dtype), np.array(y_values, dtype)
        z64, y64 = z.astype(np.float64), y.astype(np.float64)
        exact = float(np.mean(np.logaddexp(0.0, z64) - y64 * z64))  # -y log s(z) - (1-y) log(1-s(z)), stably
        zt, yt = torch.from_numpy(z), torch.from_numpy(y)
        probs = torch.sigmoid(zt)
        bce = float(torch.nn.BCELoss()(probs, yt))
        logits = float(torch.nn.BCEWithLogitsLoss()(zt, yt))
        notes, _ = _notes_bce(sigmoid(z), y)
        measured[dtype] = dict(exact=exact, sigmoid_of_first=float(probs[0, 0]), bce=bce, bce_with_logits=logits,
                               notes=notes, bce_rel_err=abs(bce - exact) / exact,
                               logits_rel_err=abs(logits - exact) / exact)
    f64, f32 = measured["float64"], measured["float32"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "torch.sigmoid(z) rounds to exactly 1 from z = "
            f"{fmt(measured['sigmoid_saturates_at']['float64'])} (float64) and "
            f"{fmt(measured['sigmoid_saturates_at']['float32'])} (float32) on a 0.5 grid; the notes' two steps "
            "(sigmoid, then the log formula) then give inf, nn.BCELoss gives its clamp 100, and nn.BCEWithLogitsLoss, "
            "which takes z and uses the log-sum-exp form, gives the exact value."
        ),
        case=(f"z = {z_values}, Y = {y_values} (m = 2), float64 and float32; exact cost mean(log(1 + e^z) - y z) "
              "from numpy.logaddexp in float64"),
        default_result=(f"float64: BCELoss(sigmoid(z)) {fmt(f64['bce'], 6)} "
                        f"(sigmoid(40) = {f64['sigmoid_of_first']!r}), "
                        f"BCEWithLogitsLoss {fmt(f64['bce_with_logits'], 10)}, exact {fmt(f64['exact'], 10)}; float32: "
                        f"BCELoss {fmt(f32['bce'], 6)}, BCEWithLogitsLoss {fmt(f32['bce_with_logits'], 8)}"),
        aligned_result=(f"the notes' formula on sigmoid(z) (reference, torch_impl, tf_impl): {fmt(f64['notes'])} "
                        f"(float64), {fmt(f32['notes'])} (float32)"),
        effect=(f"relative error vs exact: BCELoss {fmt(f64['bce_rel_err'])}, BCEWithLogitsLoss "
                f"{fmt(f64['logits_rel_err'])}, notes' formula inf"),
        how_aligned=("Parity with the notes, not robustness: the equation-style implementations keep sigmoid then "
                     "the log formula exactly as the reference, so they saturate to inf where it does; a logits "
                     "loss is a different (better) formula and would not match the reference there."),
        verified_in=(
            "pytorch/pytorch torch/nn/modules/loss.py (BCEWithLogitsLoss: \"This version is more numerically stable "
            "than using a plain `Sigmoid` followed by a `BCELoss` as, by combining the operations into one layer, we "
            "take advantage of the log-sum-exp trick for numerical stability.\"); aten/src/ATen/native/Loss.cpp "
            "(binary_cross_entropy_with_logits)"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- optimisers


@_entry("torch-sgd-momentum-first-step",
        "torch SGD momentum: the first step takes the whole gradient (no dampening)", "torch")
def _torch_sgd_momentum_first_step():
    torch = _torch()

    steps = 3
    course = _course_momentum(steps)
    runs = {}
    for label in ("default", "aligned"):
        w = torch.tensor(OPT_W0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=OPT_ALPHA, momentum=OPT_BETA, dampening=OPT_BETA)
        if label == "aligned":
            opt.state[w]["momentum_buffer"] = torch.zeros_like(w)
        out = []
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (torch.tensor(OPT_C, dtype=torch.float64) * w * w).sum()).backward()
            opt.step()
            out.append(w.detach().numpy().copy())
        runs[label] = out
    w0 = np.array(OPT_W0)
    course_step = course[0] - w0
    measured = dict(alpha=OPT_ALPHA, beta=OPT_BETA, w0=OPT_W0, c=OPT_C, course_w1=course[0].tolist())
    for label, out in runs.items():
        measured[label] = dict(
            w1=out[0].tolist(), step1_ratio=((out[0] - w0) / course_step).tolist(),
            w1_diff=(out[0] - course[0]).tolist(),
            rel_err_per_step=[normwise_rel_err(a, b) for a, b in zip(out, course)])
    d, a = measured["default"], measured["aligned"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The course's momentum starts from v = 0: v1 = beta 0 + (1 - beta) dW. torch.optim.SGD creates the "
            "buffer on the first step as buf = grad.detach().clone(), without the (1 - dampening) factor, and "
            "dampens only from the second step (buf.mul_(momentum).add_(grad, alpha=1 - dampening)), so even with "
            "dampening=beta the first step is 1/(1 - beta) times the course's."
        ),
        case=(f"J(w) = 1/2 sum(c w^2), c = {OPT_C}, w0 = {OPT_W0}, float64; SGD(lr={OPT_ALPHA}, momentum={OPT_BETA}, "
              f"dampening={OPT_BETA}), {steps} steps vs the course's momentum (reference.optimizers)"),
        default_result=(f"step 1: w1 = {_vec(d['w1'], 6)} vs the course's {_vec(measured['course_w1'], 6)}, "
                        f"step / course step = {_vec(d['step1_ratio'], 6)}; relative error per step "
                        f"{_vec(d['rel_err_per_step'])}"),
        aligned_result=(f"state[w]['momentum_buffer'] = zeros before the first step: step / course step = "
                        f"{_vec(a['step1_ratio'], 15)}; relative error per step {_vec(a['rel_err_per_step'])}"),
        effect=(f"first step {fmt(d['step1_ratio'][0], 6)} times the course's (1/(1 - beta) = "
                f"{fmt(1 / (1 - OPT_BETA), 6)}); w1 off by {_vec(d['w1_diff'])}; aligned: "
                f"{fmt(max(a['rel_err_per_step']))} max relative error"),
        how_aligned=("torch_impl/idiomatic.py make_optimizer: SGD(lr=alpha, momentum=beta, dampening=beta) with "
                     "every state[p]['momentum_buffer'] pre-created as zeros, so every step is buf = beta buf + "
                     "(1 - beta) g; p -= lr buf."),
        verified_in=(
            "installed torch/optim/sgd.py (_single_tensor_sgd: \"if buf is None: buf = grad.detach().clone()\" ... "
            "\"else: buf.mul_(momentum).add_(grad, alpha=1 - dampening)\"; docstring: \"Dampening will be applied "
            "starting at the second step.\"); https://docs.pytorch.org/docs/stable/generated/torch.optim.SGD.html"
        ),
        measured=measured,
    )


@_entry("torch-weight-decay-biases", "torch weight_decay on model.parameters() also decays the biases", "torch")
def _torch_weight_decay_biases():
    torch = _torch()
    X, Y, P, m, lambd, alpha, course_dW, course_db = _weight_decay_case()
    Xt, Yt = torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())
    runs = {}
    for label in ("default", "aligned"):
        model = torch.nn.Sequential(torch.nn.Linear(2, 1, dtype=torch.float64), torch.nn.Sigmoid())
        with torch.no_grad():
            model[0].weight.copy_(torch.from_numpy(P["W1"]))
            model[0].bias.copy_(torch.from_numpy(P["b1"].ravel()))
        if label == "default":
            opt = torch.optim.SGD(model.parameters(), lr=alpha, weight_decay=lambd / m)
        else:
            opt = torch.optim.SGD([{"params": [model[0].weight], "weight_decay": lambd / m},
                                   {"params": [model[0].bias], "weight_decay": 0.0}], lr=alpha)
        torch.nn.BCELoss()(model(Xt), Yt).backward()
        opt.step()
        with torch.no_grad():  # the gradient the step used: (p_before - p_after) / alpha
            dW = (torch.from_numpy(P["W1"]) - model[0].weight).numpy() / alpha
            db = (torch.from_numpy(P["b1"].ravel()) - model[0].bias).numpy() / alpha
        runs[label] = dict(db_step=db.tolist(), db_diff=float(db[0] - course_db[0, 0]),
                           db_rel_err=normwise_rel_err(db.reshape(course_db.shape), course_db),
                           dW_rel_err=normwise_rel_err(dW, course_dW))
    measured = dict(m=m, lambd=lambd, alpha=alpha, b=0.5, course_db=float(course_db[0, 0]),
                    expected_extra=lambd / m * 0.5, **runs)
    d, a = runs["default"], runs["aligned"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The course's L2 cost adds lambda/(2m) sum ||W[l]||^2: dW gains lambda/m W, db nothing. torch's "
            "weight_decay adds wd * p to the gradient of every parameter in its group (torch/optim/sgd.py "
            "grad.add(param, alpha=weight_decay); rmsprop.py and adam.py the same), so "
            "SGD(model.parameters(), weight_decay=lambda/m) also adds lambda/m b to db."
        ),
        case=(f"logistic regression (2,1) on planar data (m = {m}), inv-sqrt seed 1 with b = 0.5, float64, "
              f"lambda = {lambd}, one SGD step (lr = {alpha}); the gradient used recovered as (p0 - p1) / lr and "
              "compared with the course's dW + lambda/m W, db"),
        default_result=(f"weight_decay={fmt(lambd / m)} on model.parameters(): db used {fmt(d['db_step'][0], 8)} vs "
                        f"the course's {fmt(measured['course_db'], 8)} (difference {fmt(d['db_diff'])}, relative "
                        f"{fmt(d['db_rel_err'])}); dW rel err {fmt(d['dW_rel_err'])}"),
        aligned_result=(f"two param groups (weights weight_decay = lambda/m, biases 0): db rel err "
                        f"{fmt(a['db_rel_err'])}, dW rel err {fmt(a['dW_rel_err'])}"),
        effect=(f"db off by {fmt(d['db_diff'])} = lambda/m b ({fmt(measured['expected_extra'])}), "
                f"{fmt(d['db_rel_err'])} relative; aligned {fmt(a['db_rel_err'])}"),
        how_aligned=("torch_impl/idiomatic.py make_optimizer: two param groups, weights with weight_decay = "
                     "lambda / m_batch (set_weight_decay, before every step), biases with 0."),
        verified_in=(
            "installed torch/optim/sgd.py (_single_tensor_sgd: \"if weight_decay != 0: ... grad = grad.add(param, "
            "alpha=weight_decay)\"); torch/optim/optimizer.py (param groups: \"param_groups\" with per-group "
            "options); https://docs.pytorch.org/docs/stable/optim.html#per-parameter-options"
        ),
        measured=measured,
    )


# --------------------------------------------------------------------------- convolutional networks


#: The ``torch-pool-ceil-mode`` case: a 2 x 2 pool, stride 2, on a 5 x 5 image (one row and column left over).
CEIL_F, CEIL_N = 2, 5


@_entry("torch-pool-ceil-mode", "torch pooling's ceil_mode=True adds a partial window the course's floor formula drops",
        "torch")
def _torch_pool_ceil_mode():
    torch = _torch()
    import torch.nn.functional as F

    from nnparity.convspec import output_size
    from reference.conv import pool_forward

    f = CEIL_F
    _, inp = _conv_inputs()
    A = inp["A_prev"][:, :CEIL_N, :CEIL_N, :]  # (2, 5, 5, 3), N(0, 1)
    x = torch.from_numpy(A.transpose(0, 3, 1, 2).copy())
    course_n = output_size(CEIL_N, f, 0, f)
    measured = dict(f=f, stride=f, n=CEIL_N, course_output=course_n,
                    defaults={"ceil_mode": torch.nn.MaxPool2d(f).ceil_mode,
                              "AvgPool2d ceil_mode": torch.nn.AvgPool2d(f).ceil_mode})
    for mode, pool in (("max", F.max_pool2d), ("average", F.avg_pool2d)):
        course, _ = pool_forward(A, {"f": f, "stride": f}, mode)
        floor = pool(x, f, f).numpy().transpose(0, 2, 3, 1)
        ceil = pool(x, f, f, ceil_mode=True).numpy().transpose(0, 2, 3, 1)
        edge = A[:, 0:f, 2 * f:, :]  # window (0, 2): 2 rows, 1 column
        corner = A[:, 2 * f:, 2 * f:, :]  # window (2, 2): one cell
        reduce = np.max if mode == "max" else np.mean
        measured[mode] = dict(
            floor_shape=list(floor.shape), ceil_shape=list(ceil.shape),
            floor_vs_course=_max_abs(floor, course),
            ceil_block_vs_course=_max_abs(ceil[:, :course_n, :course_n], course),
            edge_window=float(ceil[0, 0, 2, 0]), edge_real_cells=A[0, 0:f, 2 * f, 0].tolist(),
            edge_vs_real_cells=_max_abs(ceil[:, 0, 2, :], reduce(edge, axis=(1, 2))),
            corner_window=float(ceil[0, 2, 2, 0]), corner_vs_real_cell=_max_abs(ceil[:, 2, 2, :], corner[:, 0, 0, :]),
            no_extra_window_at_4=list(pool(x[:, :, :4, :4], f, f, ceil_mode=True).shape))
        if mode == "average":  # the divisor of the partial windows: the cells inside the image, not f f
            measured[mode]["edge_divisor"] = float(np.sum(measured[mode]["edge_real_cells"]) / ceil[0, 0, 2, 0])
            measured[mode]["edge_if_divided_by_f_f"] = float(np.sum(measured[mode]["edge_real_cells"]) / (f * f))
    mx, av = measured["max"], measured["average"]
    return dict(
        framework_version=_version(torch),
        what_differs=(
            "The course's pool output size is floor((n - f) / stride) + 1: cells left over at the bottom and right "
            "are dropped. torch's pools (F.max_pool2d, F.avg_pool2d, nn.MaxPool2d, nn.AvgPool2d) take ceil_mode "
            "(default False, the course's formula); ceil_mode=True uses ceil((n - f) / stride) + 1 and adds a "
            "partial window over the left-over cells: max over the cells inside the image, and the average divided "
            "by the number of cells inside (not f f). TensorFlow (tf.nn.max_pool2d, tf.nn.avg_pool2d), Keras "
            "(MaxPooling2D, AveragePooling2D) and flax (nn.max_pool, nn.avg_pool) have no ceil_mode: their "
            "'valid' pools use the floor formula (their 'same' pads instead)."
        ),
        case=(f"ConvCase() A_prev cropped to (2, {CEIL_N}, {CEIL_N}, 3), N(0, 1), float64; {f}x{f} max and average "
              f"pools, stride {f}; the course's pool_forward gives {course_n}x{course_n}"),
        default_result=(f"default ceil_mode={measured['defaults']['ceil_mode']}: output "
                        f"{tuple(mx['floor_shape'][1:3])}, the course's. With ceil_mode=True: output "
                        f"{tuple(mx['ceil_shape'][1:3])}, its top-left {course_n}x{course_n} equal to pool_forward "
                        f"(max |diff| {fmt(mx['ceil_block_vs_course'])}, {fmt(av['ceil_block_vs_course'])}); the extra "
                        f"windows: max {fmt(mx['edge_window'], 6)} over the 2 real cells "
                        f"{_vec(mx['edge_real_cells'], 6)}, average {fmt(av['edge_window'], 6)} = their sum / "
                        f"{fmt(av['edge_divisor'], 6)} (sum / 4 would be {fmt(av['edge_if_divided_by_f_f'], 6)}), the "
                        f"corner window its one cell (max |diff| {fmt(av['corner_vs_real_cell'])}); on a 4x4 input "
                        f"ceil_mode=True adds nothing ({tuple(mx['no_extra_window_at_4'][2:])})"),
        aligned_result=(f"ceil_mode=False (the default, kept): output {tuple(mx['floor_shape'][1:3])}, max |diff| vs "
                        f"pool_forward {fmt(mx['floor_vs_course'])} (max), {fmt(av['floor_vs_course'])} (average)"),
        effect=(f"with ceil_mode=True the output grows from {tuple(mx['floor_shape'][1:3])} to "
                f"{tuple(mx['ceil_shape'][1:3])}: a shape error against the course, or, in a ported model, a "
                "different dense layer size downstream; the default matches the course"),
        how_aligned=("ceil_mode stays False (the default) in torch_impl: the course's floor formula, as TF, Keras "
                     "and flax 'valid' pools; a ceil_mode model is compared only with a reference that pads the "
                     "left-over cells itself."),
        verified_in=(
            "installed torch/nn/modules/pooling.py (MaxPool2d: \"ceil_mode: when True, will use `ceil` instead of "
            "`floor` to compute the output shape\"; AvgPool2d: \"ceil_mode: bool = False\"); "
            "https://docs.pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html; keras.layers.MaxPooling2D, "
            "tf.nn.max_pool2d and flax.linen.max_pool signatures (no ceil_mode argument)"
        ),
        measured=measured,
    )
