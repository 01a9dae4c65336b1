"""Tolerances, derived from floating-point error bounds rather than guessed.

Two implementations of the same formula differ only by rounding: each result
``x_hat`` satisfies ``|x_hat - x| <= B`` where ``B`` is a first-order running
error bound (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3),
so two implementations differ by at most ``2 B``.  ``bounds()`` evaluates ``B``
element by element for every captured quantity by re-running the notes'
forward and backward on absolute values, in float64, with the unit roundoff
``u`` of the compared dtype (``u = 2**-53`` for float64, ``2**-24`` for float32):

* matrix product with inner dimension n:   ``gamma_n |W| |A_prev|``, with
  ``gamma_n = n u / (1 - n u)`` (the classic dot-product bound, any summation order);
* ``Z = W A_prev + b``:  ``gamma_{n+1} (|W||A_prev| + |b|) + |W| dA_prev_err``
  (the error already in ``A_prev`` carried through the product);
* ``A = g(Z)``:  ``|g'(Z)| dZ_err + C_G u |A|`` (``C_G`` ulps for a library
  ``exp``/``tanh``/``log``, see below);
* cost ``J = 1/m sum l(a, y)``:  ``gamma_{m+C_G} 1/m sum |l|`` plus ``1/m sum |dl/da| dA_err``;
* ``dZ = dA * g'(Z)``: ``|g'| dA_err + |dA| g'_err + C_G u |dZ|``, where ``g'_err``
  is the error of g' as computed from A (``A (1 - A)``, ``1 - A^2``);
* the fused output gradient ``dZL = AL - Y`` (``output_gradient="fused"``):  ``AL_err + 3 u |dZL|
  + m UNDERFLOW`` (Y is exact, so AL's error plus one rounding of the subtraction, two for the
  frameworks' ``(AL - Y) / m`` from autodiff of the mean and the capture's ``* m``, and that ``/ m``
  may flush a result below the smallest normal to zero, as TensorFlow's CPU kernels do);
* ``dW = 1/m dZ A_prev^T``, ``db = 1/m sum dZ``, ``dA_prev = W^T dZ``: the
  product bound plus the errors of their operands carried through.
* a subnormal operand or result may be flushed to zero (TensorFlow's CPU kernels run with
  flush-to-zero and denormals-are-zero; an L2-decayed weight of a dead unit reaches 1e-42 in
  float32): products get ``UNDERFLOW (1 + sum |other operand|)``, the smallest normal number per
  flushed term.

The bound is a worst case; measured differences are usually 10-1000 times
smaller.  A quantity passes when its **bound ratio** ``max |a - b| / (2 B)`` is
at most 1.  On top, float64 forward and gradient quantities must agree to
``FLOAT64_NORMWISE`` norm-wise relative (``max |a - b| / max |b|``), the
project's promise for float64.

A kink is not covered by a first-order bound: relu'(Z) may flip where
``0 < |Z| <= Z_err``; the bound there is the size of the jump, so such a
difference counts as explained.  Where Z is exact (``Z_err = 0``, e.g. an
all-zero input column with zero bias) the convention relu'(0) = 0 must hold.

The convolutional chain (``nnparity.convspec``) has its own bounds, ``conv_bounds``, derived the same way
(its docstring justifies each term; a max-pool routing flip is treated like the relu kink).
"""

from __future__ import annotations

import numpy as np

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}

#: ulps a library exp/log/tanh/sigmoid may be off by (glibc, MKL, Eigen and SLEEF document <= 4 ulp);
#: elementwise steps get this many unit roundoffs of their result.
C_G = 4

#: A library exp/sigmoid may flush a result below the smallest normal number to zero (torch's
#: vectorised sigmoid returns 0 for Z < -709 where NumPy returns a subnormal): an absolute allowance.
UNDERFLOW = {"float64": float(np.finfo(np.float64).tiny), "float32": float(np.finfo(np.float32).tiny)}

#: Float64 forward values and gradients agree to 1e-12 norm-wise relative: the rounding bound of
#: these networks is 1e-14..1e-13 (gamma_n for n <= 12288 is 1.4e-12 only in the worst case), so
#: 1e-12 still catches any change of formula or constant that is not a pure reordering of sums.
FLOAT64_NORMWISE = 1e-12

#: Float64 cost trajectories agree to 1e-10 relative at every step over >= 1000 steps: parameter
#: differences at the 1e-16 level are carried forward by each update, and at the grid's learning
#: rates (a contractive descent) they stay below 1e-13; 1e-10 leaves room for the relu kink while a
#: constant changed at the 1e-8 level (a float32 attribute, say) still fails.
FLOAT64_TRAJECTORY = 1e-10


def gamma(n, u):
    """gamma_n = n u / (1 - n u): the relative error bound of a sum or dot product of n terms."""
    return n * u / (1 - n * u)


def _abs_derivatives(Z, A, activation, slope, Aerr, u):
    """|g'(Z)| and the error bound of g' as the implementations compute it.

    Sigmoid and tanh take g' from A (``A (1 - A)``, ``1 - A^2``): A's error enters
    through ``|dg'/dA|`` and the two roundings of the formula add ``2 u`` of its
    terms (the subtraction ``1 - A^2`` cancels near saturation, so this is an
    absolute, not a relative, term).  Piecewise-linear g have an exact g' away
    from the kink.
    """
    if activation == "sigmoid":
        return A * (1 - A), np.abs(1 - 2 * A) * Aerr + 3 * u * np.abs(A)
    if activation == "tanh":
        return 1 - A * A, 2 * np.abs(A) * Aerr + 2 * u * (1 + A * A)
    if activation == "relu":
        return (Z > 0).astype(float), np.zeros_like(Z)
    if activation == "leaky_relu":
        return np.where(Z > 0, 1.0, slope), np.zeros_like(Z)
    if activation == "linear":
        return np.ones_like(Z), np.zeros_like(Z)
    raise ValueError(f"no bound for activation {activation!r}")


def _kink_jump(Z, Zerr, activation):
    """Where a piecewise-linear g's kink lies within Z's error, the derivative may legitimately differ."""
    if activation in ("relu", "leaky_relu"):
        return (np.abs(Z) <= Zerr) & (Zerr > 0)  # a Z computed exactly (Zerr = 0) has no ambiguity
    return np.zeros(Z.shape, dtype=bool)


def _forward_bounds(P, X, Y, case, C, u, masks=None):
    """Bounds of Z[l], A[l] and the cost; also g(Z[l]) and its bound before dropout, for the backward."""
    from reference.activations import activation_forward

    m = X.shape[1]
    acts = case.activations()
    B, kinks, pre = {}, {}, {}
    A_prev, A_prev_err = X, np.zeros_like(X)
    for l in range(1, case.L + 1):
        W, b = P[f"W{l}"], P[f"b{l}"]
        n = W.shape[1]
        Z = C[f"Z{l}"]
        D = masks[l - 1] if masks is not None and l < case.L else None
        gZ = C[f"A{l}"] if D is None else activation_forward(Z, acts[l - 1], case.leaky_slope)
        Zerr = (gamma(n + 1, u) * (np.abs(W) @ np.abs(A_prev) + np.abs(b)) + np.abs(W) @ A_prev_err
                + UNDERFLOW[case.dtype] * (1 + np.abs(A_prev).sum(axis=0, keepdims=True)))  # flushed subnormals
        kinks[l] = _kink_jump(Z, Zerr, acts[l - 1])
        if acts[l - 1] == "softmax":
            # A_k = exp(Z_k - max Z) / S: relative error dZ_k + sum_j A_j dZ_j (the shift cancels), plus the
            # roundings of exp (C_G u), of the sum of C terms (gamma_C) and of the division (u).
            C_ = Z.shape[0]
            gZerr = (gZ * (Zerr + (gZ * Zerr).sum(axis=0, keepdims=True)) + (C_G + C_ + 1) * u * gZ
                     + UNDERFLOW[case.dtype])
        else:
            d1, _ = _abs_derivatives(Z, gZ, acts[l - 1], case.leaky_slope, 0.0, u)
            gZerr = (np.abs(d1) * Zerr + C_G * u * np.abs(gZ) + np.where(kinks[l], np.abs(gZ), 0)
                     + UNDERFLOW[case.dtype])
        pre[l] = (gZ, gZerr, D)
        A, Aerr = gZ, gZerr
        if D is not None:  # A * D / keep_prob: the error scales with it, plus two roundings
            A = C[f"A{l}"]
            Aerr = gZerr * D / case.keep_prob + 2 * u * np.abs(A)
        B[f"Z{l}"], B[f"A{l}"] = Zerr, Aerr
        A_prev, A_prev_err = A, Aerr
    AL, ALerr = C[f"A{case.L}"], B[f"A{case.L}"]
    dAL, ddAL, lossterms = _loss_derivatives(AL, Y, case.loss)
    B["cost"] = gamma(AL.size + C_G, u) * np.sum(np.abs(lossterms)) / m + np.sum(np.abs(dAL) * ALerr) / m
    if case.lambd:  # lambda/(2m) sum ||W||^2: a sum of squares, all terms positive
        weights = [P[f"W{l}"] for l in range(1, case.L + 1)]
        count = sum(W.size for W in weights)
        B["cost"] = B["cost"] + gamma(count + 4, u) * case.lambd / (2 * m) * sum(np.sum(W * W) for W in weights)
    B["cost"] = np.asarray(B["cost"])
    return B, kinks, pre, (dAL, ddAL)


def cost_bound(parameters, X, Y, case, masks=None):
    """The rounding bound B_J of one forward pass's cost (float64 evaluation, the case's u)."""
    from reference.model import model_forward

    P = {k: np.asarray(v, dtype=np.float64) for k, v in parameters.items()}
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    case64 = case.replace(dtype="float64")
    _, caches = model_forward(X, P, case64, masks)
    C = {}
    for l, cache in enumerate(caches, start=1):
        C[f"Z{l}"], C[f"A{l}"] = cache[3], cache[4]
    B, _, _, _ = _forward_bounds(P, X, Y, case, C, UNIT_ROUNDOFF[case.dtype], masks)
    return float(B["cost"])


def bounds(parameters, X, Y, case, captured=None, masks=None, with_dA0=False):
    """Per-element rounding-error bounds B of every captured quantity of one implementation.

    ``captured`` is the float64 reference's ``forward_backward`` on the same
    parameters, data and dropout masks (computed here when not given).  Returns
    a dict with the same keys as ``forward_backward`` (``cost`` a 0-d array); ``with_dA0`` adds dA0's.
    """
    from reference.model import forward_backward

    u = UNIT_ROUNDOFF[case.dtype]
    P = {k: np.asarray(v, dtype=np.float64) for k, v in parameters.items()}
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    C = captured if captured is not None else forward_backward(P, X, Y, case.replace(dtype="float64"), masks)
    m = X.shape[1]
    acts = case.activations()
    B, kinks, pre, (dAL, ddAL) = _forward_bounds(P, X, Y, case, C, u, masks)
    dA_err = ddAL * B[f"A{case.L}"] + C_G * u * np.abs(dAL)
    dA = _signed_dAL(C[f"A{case.L}"], Y, case.loss)
    for l in range(case.L, 0, -1):
        W = P[f"W{l}"]
        Z = C[f"Z{l}"]
        gZ, gZerr, D = pre[l]
        if D is not None:  # dA * D / keep_prob, the forward's mask and scale
            dA = dA * D / case.keep_prob
            dA_err = dA_err * D / case.keep_prob + 2 * u * np.abs(dA)
        A_prev = X if l == 1 else C[f"A{l - 1}"]
        A_prev_err = np.zeros_like(X) if l == 1 else B[f"A{l - 1}"]
        dZ = C[f"dZ{l}"]
        if l == case.L and case.output_gradient == "fused":  # AL - Y: AL's error, the subtraction, / m and * m
            dZerr = B[f"A{l}"] + 3 * u * np.abs(dZ) + m * UNDERFLOW[case.dtype]
        elif acts[l - 1] == "softmax":
            dZerr = _softmax_backward_bound(dA, dA_err, gZ, gZerr, u) + C_G * u * np.abs(dZ)
        else:
            d1, d1err = _abs_derivatives(Z, gZ, acts[l - 1], case.leaky_slope, gZerr, u)
            dZerr = np.abs(d1) * dA_err + np.abs(dA) * d1err + C_G * u * np.abs(dZ) + np.where(kinks[l], np.abs(dA), 0)
        B[f"dZ{l}"] = dZerr
        B[f"dW{l}"] = (gamma(m + 1, u) * (np.abs(dZ) @ np.abs(A_prev).T) + dZerr @ np.abs(A_prev).T
                       + np.abs(dZ) @ A_prev_err.T) / m
        if case.lambd:  # + lambda/m W: two roundings of the term and one of the sum
            B[f"dW{l}"] = B[f"dW{l}"] * (1 + u) + 3 * u * (case.lambd / m * np.abs(W)) + u * np.abs(C[f"dW{l}"])
        # A subnormal operand or result may be flushed to zero (TensorFlow's CPU kernels run with
        # flush-to-zero and denormals-are-zero): at most the smallest normal number per flushed term.
        B[f"dW{l}"] = B[f"dW{l}"] + UNDERFLOW[case.dtype] * (1 + np.abs(A_prev).sum(axis=1) / m + case.lambd / m)
        B[f"db{l}"] = (gamma(m + 1, u) * np.abs(dZ).sum(axis=1, keepdims=True) + dZerr.sum(axis=1, keepdims=True)) / m
        if l > 1 or with_dA0:
            dA_err = (gamma(W.shape[0], u) * (np.abs(W).T @ np.abs(dZ)) + np.abs(W).T @ dZerr
                      + UNDERFLOW[case.dtype] * (1 + np.abs(dZ).sum(axis=0, keepdims=True)))  # flushed subnormals
            B[f"dA{l - 1}"] = dA_err
            dA = C[f"dA{l - 1}"]
    return B


def _signed_dAL(AL, Y, loss):
    from reference.losses import cost_backward

    with np.errstate(divide="ignore", invalid="ignore"):
        return cost_backward(AL, Y, loss)


def _softmax_backward_bound(dA, dA_err, A, A_err, u):
    """Bound of dZ = A * (dA - s), s = sum_j dA_j A_j, from the errors of dA and A and the roundings."""
    C_ = A.shape[0]
    s = (dA * A).sum(axis=0, keepdims=True)
    s_abs = np.abs(dA * A).sum(axis=0, keepdims=True)
    s_err = (np.abs(dA) * A_err + A * dA_err).sum(axis=0, keepdims=True) + gamma(C_ + 1, u) * s_abs
    return np.abs(dA - s) * A_err + A * (dA_err + s_err) + 2 * u * A * (np.abs(dA) + s_abs)


def _loss_derivatives(AL, Y, loss):
    """|dl/da|, |d2l/da2| and the per-example loss terms, for the bound of the cost and of dAL."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if loss == "cross_entropy":  # (terms with a zero label are exactly zero: no 0/0 where AL underflows)
            dAL = np.where(Y != 0, np.abs(Y / AL), 0) + np.where(Y != 1, np.abs((1 - Y) / (1 - AL)), 0)
            ddAL = np.where(Y != 0, np.abs(Y / AL / AL), 0) + np.where(Y != 1, np.abs((1 - Y) / (1 - AL) / (1 - AL)), 0)
            terms = Y * np.log(AL) + (1 - Y) * np.log(1 - AL)
        elif loss == "categorical_cross_entropy":
            dAL = np.where(Y != 0, np.abs(Y / AL), 0)
            ddAL = np.where(Y != 0, np.abs(Y / AL / AL), 0)
            terms = np.where(Y != 0, Y * np.log(AL), 0)
        elif loss == "l1":
            dAL = np.ones_like(AL)
            ddAL = np.zeros_like(AL)
            terms = np.abs(Y - AL)
        elif loss == "l2":
            dAL = 2 * np.abs(AL - Y)
            ddAL = 2 * np.ones_like(AL)
            terms = (Y - AL) ** 2
        else:
            raise ValueError(f"no bound for loss {loss!r}")
    return dAL, ddAL, np.nan_to_num(terms)


# --------------------------------------------------------------------------------------
# The convolutional chain (nnparity.convspec): conv, pool, pool backward, conv backward.
# --------------------------------------------------------------------------------------

def conv_bounds(inputs, case):
    """Per-element rounding bounds B of the conv chain's ``QUANTITIES`` (``nnparity.convspec``) for ``case``.

    ``inputs`` are the case's ``A_prev, W, b, dA`` (``convspec.inputs``; exact, so they carry no error).  As
    ``bounds`` does for the dense networks, the chain is re-run in float64 (``reference.conv_vectorised``) on
    absolute values, with the unit roundoff u of ``case.dtype``; two implementations differ by at most 2 B.  With
    K = f f n_C_prev and ``count`` the number of pooling windows that cover a cell of Z:

    * ``Z = sum of K products + b``: ``gamma_{K+1} (|W| * |A_pad| + |b|)``, the dot-product bound of K products
      plus the bias, in any summation order (direct or im2col, not Winograd or FFT); where every product is an
      exact zero (a blank patch of the digits) Z = b exactly and the bound is 0;
    * max pool: the maximum of the computed values is exact, so A's error is the largest Z error in its window;
    * average pool: ``gamma_{f f + 1} mean|Z| + mean(Z_err)``, the f f - 1 additions and the division (or two
      roundings for a rounded 1/(f f)), plus the mean of the errors already in Z;
    * average-pool backward: ``gamma_{count + 1}`` of the sum of ``|dA| / (f f)`` over the windows covering the
      cell, one or two roundings of each quotient and count - 1 additions (dA is exact);
    * max-pool backward: dA is routed exactly, so ``gamma_count`` of the routed ``|dA|`` for the additions of
      overlapping windows; and like the dense relu kink, where a window holds two cells within 2 Z_err of its
      maximum (each computation within Z_err of the exact Z, the float64 Z the bound is evaluated at being one
      of them) the routing may flip between them, so each such cell gets the size of the jump, ``|dA|`` of that
      window; an exact tie of exactly computed values (Z_err = 0) is no ambiguity: every tied cell gets dA;
    * ``dA_prev[cell] = sum of W dZ`` over the n <= ceil(f/s)^2 n_C (window, filter) pairs that read the cell:
      ``gamma_n |W| * |dZ|`` plus ``|W| * dZ_err``, the error already in dZ carried through;
    * ``dW = sum over the m n_H n_W windows of a dZ``: ``gamma_{m n_H n_W} |a| * |dZ| + |a| * dZ_err``;
    * ``db = sum over the m n_H n_W windows of dZ``: ``gamma_{m n_H n_W} sum |dZ| + sum dZ_err``.

    A subnormal flushed to zero is not allowed for here (the grid's data hold none).  Returns
    ``{quantity: B}`` with the quantities' shapes; ``nnparity.metrics.bound_ratio(got, expected, B)`` is
    ``max |got - expected| / (2 B)`` (0 where they are equal, inf where they differ and B = 0)."""
    from reference import conv_vectorised as cv

    u = UNIT_ROUNDOFF[case.dtype]
    x = {k: np.asarray(inputs[k], dtype=np.float64) for k in ("A_prev", "W", "b", "dA")}
    A_prev, W, b, dA = x["A_prev"], x["W"], x["b"], x["dA"]
    conv_hp, pool_hp, mode = case.conv_hparameters, case.pool_hparameters, case.mode
    B = {}

    Z, _ = cv.conv_forward(A_prev, W, b, conv_hp)
    products, _ = cv.conv_forward(np.abs(A_prev), np.abs(W), np.zeros_like(b), conv_hp)
    K = case.f * case.f * case.n_C_prev
    B["Z"] = np.where(products > 0, gamma(K + 1, u) * (products + np.abs(b)), 0.0)

    if mode == "max":
        B["A"], _ = cv.pool_forward(B["Z"], pool_hp, "max")
    else:
        mean_abs, _ = cv.pool_forward(np.abs(Z), pool_hp, "average")
        mean_err, _ = cv.pool_forward(B["Z"], pool_hp, "average")
        B["A"] = gamma(case.pool_f**2 + 1, u) * mean_abs + mean_err

    # windows covering each cell: every cell of a constant window is a (tied) maximum
    count = cv.pool_backward(np.ones(dA.shape), (np.zeros(Z.shape), pool_hp), "max")
    dZ = cv.pool_backward(dA, (Z, pool_hp), mode)
    if mode == "average":
        B["dZ"] = gamma(count + 1, u) * cv.pool_backward(np.abs(dA), (Z, pool_hp), "average")
    else:
        routed = cv.pool_backward(np.abs(dA), (Z, pool_hp), "max")
        B["dZ"] = gamma(count, u) * routed + _max_pool_jump(Z, B["Z"], dA, case)

    cache = (np.abs(A_prev), np.abs(W), b, conv_hp)
    dA_prev_abs, dW_abs, db_abs = cv.conv_backward(np.abs(dZ), cache)
    dA_prev_err, dW_err, db_err = cv.conv_backward(B["dZ"], cache)
    terms, _, _ = cv.conv_backward(np.ones(Z.shape), (A_prev, np.ones(W.shape), b, conv_hp))  # pairs per cell
    windows = Z.shape[0] * Z.shape[1] * Z.shape[2]
    B["dA_prev"] = gamma(terms, u) * dA_prev_abs + dA_prev_err
    B["dW"] = gamma(windows, u) * dW_abs + dW_err
    B["db"] = gamma(windows, u) * db_abs + db_err
    return B


def _max_pool_jump(Z, Zerr, dA, case):
    """Per cell of Z, the sum of |dA| over the max-pool windows whose routing may flip onto or off the cell.

    A cell may be a window's maximum in one computation and not in another where it is within 2 Z_err (its
    own and the leader's) of the window's maximum and the window has another such candidate, unless all of
    them are computed exactly (Z_err = 0: an exact tie, which every computation must route to every tied cell)."""
    from reference import conv_vectorised as cv

    f, s = case.pool_f, case.pool_stride
    n_H, n_W = dA.shape[1], dA.shape[2]
    Zw = cv.window_view(Z, f, s, n_H, n_W)  # (m, n_H, n_W, f, f, n_C)
    Ew = cv.window_view(Zerr, f, s, n_H, n_W)
    lowest_max = (Zw - 2 * Ew).max(axis=(3, 4), keepdims=True)  # the maximum is at least this in any computation
    candidate = Zw + 2 * Ew >= lowest_max
    ambiguous = ((candidate.sum(axis=(3, 4), keepdims=True) >= 2)
                 & (np.where(candidate, Ew, 0.0).max(axis=(3, 4), keepdims=True) > 0))
    jumps = (candidate & ambiguous) * np.abs(dA)[:, :, :, None, None, :]
    return cv.scatter_windows(np.zeros(Z.shape), jumps, s)
