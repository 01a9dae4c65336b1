"""Diagnosis: match a divergence of a learner's course function against signatures of known mistakes.

``nnparity check``'s battery finds the first quantity a learner's function got wrong and hands it here
as a ``Divergence``; ``diagnose`` returns the known mistakes whose signature it matches, most specific
first, each with a one-line ``message`` (what the value IS) and ``hint`` (the likely mistake and the
notes' equation).  ``SIGNATURES`` is the table, as data; the convolution notebook's functions have their own,
``nnparity.check.diagnosis_conv.CONV_SIGNATURES``.

A signature either recomputes what a buggy formula gives from the call's inputs (``context``), with the
reference's own functions wherever they can express the bug, and tests whether ``got`` is that
ALTERNATIVE, or tests a structural property (a transposed shape, a dropped ``keepdims``).  The context
is read in two layouts; a signature whose inputs are absent simply does not match:

* one layer's call: ``A_prev``, ``W``, ``b`` (forward) and ``dA``, ``Z`` or ``dZ`` (backward), ``activation``;
* a network's call: ``X`` and ``parameters`` (the forward is recomputed by the reference, with the
  dropout masks ``D`` and ``keep_prob``), or ``caches`` (the course's ``((A_prev, W, b), Z)`` per layer,
  or the reference's ``(A_prev, W, b, Z, ...)``) with ``AL`` and ``Y``; ``activations`` defaults to the
  course's ReLU hidden layers and sigmoid output.

Quantities are named as the battery names them: ``dW2``, ``db``, ``cost``, ``A1``, ``AL``, ``Z``, ``dZ``,
``dA1`` (the gradient of ``A1``, produced by layer 2's backward), ``dA_prev``, ``W1``, ``v[dW1]``,
``s[db2]``, ``v_corrected[dW1]``, ``s_corrected[dW1]``; the logistic regression's ``dw`` is ``dW``.

**The match tolerance.**  ``got`` and our float64 alternative each differ from the buggy formula's exact
value by at most the reference's bound B scaled by ``r = max|alt| / max|expected|`` (the same operations
on operands scaled alike) plus ``C_G`` roundings of the changed step and of forming the alternative, so
``|got - alt| <= 2 (max B r + C_G u (|alt| + |expected|))`` elementwise, ``u`` the unit roundoff of
``got``'s dtype (at least float64's).  Ratios are therefore exact to rounding (m, not "about m").  An
alternative that is itself within that tolerance of ``expected`` explains nothing and never matches.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

from nnparity.check.diagnosis_conv import CONV_FUNCTIONS, CONV_SIGNATURES
from nnparity.check.signature import Signature
from nnparity.spec import Case
from nnparity.tolerances import C_G, UNDERFLOW
from reference import activations as g
from reference.losses import cost_backward, cross_entropy_cost, l2_regularization_cost
from reference.model import linear_backward, linear_forward, model_backward, model_forward
from reference.optimizers import update_parameters_with_adam, update_parameters_with_gd, update_parameters_with_momentum


@dataclass(frozen=True)
class Divergence:
    """One quantity of one course function that did not match the reference."""

    function: str
    quantity: str
    layer: int | None
    expected: np.ndarray
    got: object
    bound: np.ndarray
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Diagnosis:
    id: str
    message: str
    hint: str


#: The notes' equation of each quantity, named in the hints.
EQUATIONS = {
    "Z": "Z[l] = W[l] A[l-1] + b[l]",
    "A": "A[l] = g(Z[l])",
    "cost": "J = -1/m sum(Y log(AL) + (1 - Y) log(1 - AL))",
    "dZ": "dZ[l] = dA[l] * g'(Z[l])",
    "dA": "dA[l-1] = W[l].T dZ[l]",
    "dW": "dW[l] = 1/m dZ[l] A[l-1].T",
    "db": "db[l] = 1/m np.sum(dZ[l], axis=1, keepdims=True)",
    "gd": "W[l] = W[l] - alpha dW[l]",
    "momentum": "v = beta v + (1 - beta) dW; W = W - alpha v",
    "adam": "W = W - alpha v_corrected / (sqrt(s_corrected) + epsilon)",
    "v": "v = beta1 v + (1 - beta1) dW",
    "s": "s = beta2 s + (1 - beta2) dW**2",
    "v_corrected": "v_corrected = v / (1 - beta1**t)",
    "s_corrected": "s_corrected = s / (1 - beta2**t)",
}


def diagnose(div: Divergence) -> list[Diagnosis]:
    """The signatures ``div`` matches, most specific first; [] when none does."""
    view = _View(div)
    found = []
    for sig in CONV_SIGNATURES if div.function in CONV_FUNCTIONS else SIGNATURES:
        if sig.quantities and view.base not in sig.quantities:
            continue
        if sig.functions is not None and div.function not in sig.functions:
            continue
        try:
            fields = sig.match(view)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError):
            fields = None  # the context lacks this signature's inputs, or holds them in another layout
        if fields is not None:
            fields = {"q": div.quantity, "m": view.m, "equation": view.equation, **fields}
            found.append(Diagnosis(sig.id, sig.message.format(**fields), sig.hint.format(**fields)))
    return found


#: Known mistakes recognised by the exception the learner's call raised (its first line, ``TypeError: ...``):
#: (id, the exception's pattern, message, hint, {function: a hint of its own}).
RAISED = (
    ("float-of-an-array", re.compile(r"^TypeError: only 0-dimensional arrays can be converted to Python scalars"),
     "{function} calls float() (or int()) on an array with ndim > 0: the NumPy here ({numpy}) refuses that "
     "(deprecated since 1.25; the course's notebooks were written before), so code that ran in the notebook raises",
     "take the array's single value with .item(): x = a.item() instead of x = float(a)",
     {"conv_single_step": "b is b[:, :, :, c], a (1, 1, 1) array; take its value with .item(): "
                          "Z = Z + b.item() instead of Z = Z + float(b)"}),
)


def diagnose_raised(function: str, error: str) -> list[Diagnosis]:
    """The known mistakes whose exception ``error`` (``Outcome.error``: ``TypeError: ...``) is; [] when none."""
    return [Diagnosis(id_, message.format(function=function, numpy=np.__version__), hints.get(function, hint))
            for id_, pattern, message, hint, hints in RAISED if pattern.search(error or "")]


# ---------------------------------------------------------------------------------------------------
# The view of a divergence every matcher reads: parsed quantity, arrays, tolerance, the call's network.

class _View:
    def __init__(self, div: Divergence):
        self.div, self.ctx = div, div.context
        outer, name = None, div.quantity
        if name.endswith("]") and "[" in name:  # v[dW1]: the moment's key is the gradient's name
            outer, name = name[:-1].split("[", 1)
        parsed = re.fullmatch(r"([A-Za-z_]*?)(\d+|L)?", name)
        base, index = parsed.groups() if parsed else (name, None)
        base = {"dw": "dW", "dA_prev": "dA"}.get(base, base)
        self.key = name  # W1, dW1: the key in the course's dicts
        self.base = outer or base
        self.inner = base
        self.index = int(index) if index and index.isdigit() else index
        self.E = np.asarray(div.expected, dtype=np.float64)
        self.B = np.asarray(div.bound, dtype=np.float64)
        self.G = _as_array(div.got)
        self.m = _examples(self.ctx)

    @property
    def equation(self) -> str:
        if self.base in ("W", "b") or (self.base == "v" and _optimizer(self.ctx) == "momentum"):
            return EQUATIONS[_optimizer(self.ctx)]
        return EQUATIONS.get(self.base, EQUATIONS.get(self.inner, ""))

    @property
    def u(self) -> float:
        u64 = 2.0**-53
        if self.G is not None and np.issubdtype(self.G.dtype, np.floating):
            return max(u64, float(np.finfo(self.G.dtype).eps) / 2)
        return u64

    def close(self, got, alt, scale=None) -> bool:
        """got equals the alternative to rounding (the module docstring's tolerance)."""
        if got is None:
            return False
        got, alt = np.asarray(got, dtype=np.float64), np.asarray(alt, dtype=np.float64)
        if got.shape != alt.shape:
            return False
        finite = np.isfinite(alt)
        if not np.array_equal(got[~finite], alt[~finite], equal_nan=True):
            return False  # an inf or NaN of the buggy formula must be the same inf or NaN
        if scale is None:
            top = np.max(np.abs(self.E), initial=0.0)
            scale = np.max(np.abs(alt[finite]), initial=0.0) / top if top > 0 else 1.0
        E = self.E if self.E.shape == alt.shape else 0.0
        tol = (2 * (np.max(self.B, initial=0.0) * scale + C_G * self.u * (np.abs(alt) + np.abs(E)))
               + UNDERFLOW["float64"])
        return bool(np.all(np.abs(got - alt)[finite] <= tol[finite]))

    def explains(self, alt) -> bool:
        """got is the alternative, and the alternative is not the expected value."""
        return alt is not None and self.close(self.G, alt) and not self.close(self.E, alt)

    @functools.cached_property
    def network(self):
        """(case, the reference's caches) of the context's network, computed once per diagnosis."""
        return _network(self.ctx)

    # The layer whose computation produced the quantity: dW2, dZ2, A2 -> 2; dA1 -> 2 (its dA_prev); AL -> L.
    def layer(self) -> int | None:
        if self.index == "L":
            return self.network[0].L
        if isinstance(self.index, int):
            return self.index + 1 if self.inner == "dA" else self.index
        return self.div.layer

    def reg(self):
        """The L2 term's part of the expected value: lambda/(2m) sum ||W||^2 in the cost, lambda/m W[l] in dW."""
        lambd = self.ctx.get("lambd") or 0.0
        if not lambd or self.base not in ("cost", "dW"):
            return 0.0
        if self.base == "cost":
            return l2_regularization_cost(self.ctx["parameters"], lambd, self.m)
        return lambd / self.m * _weight(self.ctx, self.layer())


def _as_array(got):
    """got as a float array (its dtype kept when it is floating), or None when it is not numbers."""
    try:
        A = np.asarray(got)
        return A if np.issubdtype(A.dtype, np.floating) else A.astype(np.float64)
    except (TypeError, ValueError):
        return None


def _examples(ctx) -> int | None:
    if "m" in ctx:
        return int(ctx["m"])
    for key in ("Y", "X", "A_prev", "dZ", "AL"):
        if key in ctx and np.ndim(ctx[key]) == 2:
            return np.shape(ctx[key])[1]
    return None


def _optimizer(ctx) -> str:
    if "t" in ctx and "s" in ctx:
        return "adam"
    if "beta" in ctx and "v" in ctx:
        return "momentum"
    return "gd"


def _weight(ctx, l):
    if "parameters" in ctx and l is not None:
        return np.asarray(ctx["parameters"][f"W{l}"], dtype=np.float64)
    return np.asarray(ctx["W"], dtype=np.float64)


def _network(ctx):
    """The context's network as the reference sees it: its Case and the reference's per-layer caches."""
    if "X" in ctx and "parameters" in ctx:
        P = ctx["parameters"]
        Ws = [P[f"W{l}"] for l in range(1, len(P) // 2 + 1)]
    else:  # the course's ((A_prev, W, b), Z) or the reference's flat (A_prev, W, b, Z, ...)
        flat = [tuple(np.asarray(x, dtype=np.float64) for x in ((*c[0], c[1]) if len(c) == 2 else c[:4]))
                for c in ctx["caches"]]
        Ws = [c[1] for c in flat]
    L = len(Ws)
    acts = tuple(ctx.get("activations") or ("relu",) * (L - 1) + ("sigmoid",))
    D = ctx.get("D") or {}
    keep_prob = ctx.get("keep_prob", 1.0) if all(l in D for l in range(1, L)) else 1.0
    case = Case(layer_dims=(np.shape(Ws[0])[1], *(np.shape(W)[0] for W in Ws)),
                hidden_activation=acts[0] if L > 1 else "relu", output_activation=acts[-1],
                loss="categorical_cross_entropy" if acts[-1] == "softmax" else "cross_entropy",
                leaky_slope=ctx.get("leaky_slope", 0.01), keep_prob=keep_prob)
    if "X" in ctx and "parameters" in ctx:
        masks = [D[l] for l in range(1, L)] if keep_prob < 1 else None
        P = {k: np.asarray(v, dtype=np.float64) for k, v in ctx["parameters"].items()}
        return case, model_forward(np.asarray(ctx["X"], dtype=np.float64), P, case, masks)[1]
    caches = []
    for (A_prev, W, b, Z), activation in zip(flat, case.activations()):
        A = g.activation_forward(Z, activation, case.leaky_slope)
        caches.append((A_prev, W, b, Z, A, None, A))
    return case, caches


def _forward_inputs(view):
    """(Z, activation) of the layer that produced a forward quantity, from the reference's forward."""
    ctx = view.ctx
    if all(k in ctx for k in ("A_prev", "W", "b")):
        return linear_forward(ctx["A_prev"], ctx["W"], ctx["b"]), ctx.get("activation")
    if "Z" in ctx and "activation" in ctx and "dA" not in ctx:  # a helper alone: sigmoid(Z), relu(Z), softmax(Z)
        return np.asarray(ctx["Z"], dtype=np.float64), ctx["activation"]
    case, caches = view.network
    l = view.layer()
    return caches[l - 1][3], case.activations()[l - 1]


def _backward_inputs(view):
    """(dA, Z, A, activation, cache) that the backward of the quantity's layer starts from (the reference's)."""
    ctx = view.ctx
    if "dA" in ctx and "Z" in ctx:  # linear_activation_backward(dA, cache, activation)
        activation, slope = ctx["activation"], ctx.get("leaky_slope", 0.01)
        Z = np.asarray(ctx["Z"], dtype=np.float64)
        cache = (ctx.get("A_prev"), ctx.get("W"), ctx.get("b"), Z)
        return ctx["dA"], Z, g.activation_forward(Z, activation, slope), activation, cache
    case, caches = view.network
    l = view.layer()
    AL, Y = caches[-1][4], ctx["Y"]
    if l == case.L:
        dA = cost_backward(AL, Y, case.loss)
    else:
        dA = model_backward(AL, Y, caches, case)[f"dA{l}"]
    A_prev, W, b, Z, A, D, gZ = caches[l - 1]
    if D is not None:
        dA = dA * D / case.keep_prob
    return dA, Z, gZ, case.activations()[l - 1], caches[l - 1]


def _from_dZ(view, dZ, cache):
    """The layer's backward quantities from a (buggy) dZ: the reference's linear backward, plus L2's term."""
    out = {"dZ": dZ}
    if cache[0] is not None:
        A_prev, W = (np.asarray(c, dtype=np.float64) for c in cache[:2])
        dA_prev, dW, db = linear_backward(dZ, (A_prev, W, None, cache[3]))  # b plays no part
        out.update(dW=dW + view.reg(), db=db, dA=dA_prev)
    return out.get(view.base)


def _update(ctx, learning_rate=None, grads=None, corrections=None):
    """The reference update of the context's optimiser with the given learning rate, gradients, Adam corrections.

    Keys as the battery names its quantities: W1, b1, ..., v[dW1], s[dW1], v_corrected[dW1], s_corrected[dW1].
    """
    lr = ctx["learning_rate"] if learning_rate is None else learning_rate
    grads = ctx["grads"] if grads is None else grads
    P = ctx["parameters"]
    kind = _optimizer(ctx)
    if kind == "gd":
        return update_parameters_with_gd(P, grads, lr)
    if kind == "momentum":
        P, v = update_parameters_with_momentum(P, grads, ctx["v"], ctx["beta"], lr)
        return {**P, **{f"v[{d}]": V for d, V in v.items()}}
    t, beta1, beta2 = ctx["t"], ctx["beta1"], ctx["beta2"]
    c1, c2 = corrections or (1 - beta1**t, 1 - beta2**t)
    with np.errstate(divide="ignore", invalid="ignore"):  # t - 1 = 0: a correction of 0, as the learner's
        P, v, s = update_parameters_with_adam(P, grads, ctx["v"], ctx["s"], c1, c2, beta1, beta2, lr, ctx["epsilon"])
        out = dict(P)
        for d in v:
            out.update({f"v[{d}]": v[d], f"s[{d}]": s[d], f"v_corrected[{d}]": v[d] / c1,
                        f"s_corrected[{d}]": s[d] / c2})
    return out


# ---------------------------------------------------------------------------------------------------
# Matchers.  Each returns the message's and hint's fields, or None.

def _ratio(factor):
    def match(view):
        if view.m is None or view.m == 1:
            return None
        k = view.m if factor == "m" else 1 / view.m
        reg = view.reg()  # with L2 the 1/m of the data term is the one at fault
        return {} if view.explains(k * (view.E - reg) + reg) else None
    return match


def _m_wrong_axis(view):
    """m read from the units' axis (``A_prev.shape[0]``, ``Y.shape[0]``) instead of the examples' (``shape[1]``):
    the value is m/k times the expected.  For the cost, Y.shape[0] is 1, which is also a 1/m left out."""
    m = view.m
    if m is None:
        return None
    for key in ("Y", "AL", "A_prev", "X", "dZ"):
        if key not in view.ctx or np.ndim(view.ctx[key]) != 2:
            continue
        k = int(np.shape(view.ctx[key])[0])
        if k == m or (k == 1 and view.base != "cost"):  # elsewhere a factor m is missing-1-over-m's
            continue
        if view.explains(m / k * view.E):
            what = (f"is m = {m} times the expected value: divided by {key}.shape[0] = 1 instead of m = {m} (or not "
                    "divided at all)" if k == 1 else
                    f"is m/{k} = {m}/{k} times the expected value: divided by {key}.shape[0] = {k} instead of m = {m}")
            return {"what": what, "axis": f"m = {key}.shape[1]"}
    return None


def _not_updated(view):
    return {} if view.explains(view.ctx["parameters"][view.key]) else None


def _relu_kink(view):
    dA, Z, A, activation, cache = _backward_inputs(view)
    if activation != "relu" or not np.any(Z == 0):
        return None
    return {} if view.explains(_from_dZ(view, np.where(Z >= 0, dA, 0.0), cache)) else None


def _transposed(view):
    G, E = view.G, view.E
    if G is None or E.ndim != 2 or G.shape != E.T.shape:
        return None
    if E.shape != E.T.shape:
        same = view.close(G.T, E)
        return {"shape": G.shape, "expected": E.shape, "values": ", its transpose has the expected values"
                if same else ""}
    return {"shape": G.shape, "expected": E.shape, "values": ", its transpose has the expected values"} \
        if view.explains(E.T) else None


def _sign(view):
    return {} if view.explains(-view.E) else None


def _keepdims(view):
    G, E = view.G, view.E
    if G is None or E.ndim != 2 or E.shape[1] != 1:
        return None
    if G.shape == (E.shape[0],) or (G.shape == () and E.shape == (1, 1)):
        return {"shape": G.shape} if view.close(G.reshape(E.shape), E) else None
    return None


def _sum_all(view):
    G, E = view.G, view.E
    if G is None or E.ndim != 2 or E.shape[1] != 1 or E.shape[0] < 2 or G.size != 1:
        return None
    # the sum of n[l] entries carries at most n[l] times their bound
    return {} if view.close(G.reshape(()), E.sum(), scale=E.shape[0]) else None


def _not_squeezed(view):
    G, E = view.G, view.E
    if G is None or E.size != 1 or G.shape not in ((1,), (1, 1)) or E.shape == G.shape:
        return None
    return {"shape": G.shape} if view.close(G.reshape(E.shape), E) else None


_OTHER_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "linear")


def _wrong_derivative(view):
    dA, Z, A, activation, cache = _backward_inputs(view)
    slope = view.ctx.get("leaky_slope", 0.01)
    for other in _OTHER_ACTIVATIONS:
        if other == activation:
            continue
        A_other = g.activation_forward(Z, other, slope)
        if view.explains(_from_dZ(view, g.activation_backward(dA, Z, A_other, other, slope), cache)):
            return {"used": f"{other}'s derivative g'(Z)", "activation": activation}
        if other in ("sigmoid", "tanh") and view.explains(
                _from_dZ(view, g.activation_backward(dA, Z, A, other, slope), cache)):
            formula = "A (1 - A)" if other == "sigmoid" else "1 - A**2"
            return {"used": f"{other}'s derivative {formula} of this layer's A", "activation": activation}
    return None


def _sigmoid_plus(view):
    dA, Z, A, activation, cache = _backward_inputs(view)
    if activation != "sigmoid":
        return None
    return {} if view.explains(_from_dZ(view, dA * A * (1 + A), cache)) else None


def _derivative_of_Z(view):
    dA, Z, A, activation, cache = _backward_inputs(view)
    if activation not in ("sigmoid", "tanh"):
        return None
    formula = "Z (1 - Z)" if activation == "sigmoid" else "1 - Z**2"
    # the reference's backward takes g(Z) as A; handing it Z itself is the learner's formula
    alt = _from_dZ(view, g.activation_backward(dA, Z, Z, activation), cache)
    return {"formula": formula, "activation": activation} if view.explains(alt) else None


def _forward_activation(which):
    def match(view):
        Z, activation = _forward_inputs(view)
        if activation is None:
            return None
        slope = view.ctx.get("leaky_slope", 0.01)
        if which == "relu-output":
            return {"activation": activation} if activation == "sigmoid" and view.explains(g.relu(Z)) else None
        if which == "softmax-axis":
            return {} if activation == "softmax" and view.explains(g.softmax(Z.T).T) else None
        for other in _OTHER_ACTIVATIONS:
            if other != activation and view.explains(g.activation_forward(Z, other, slope)):
                return {"used": other, "activation": activation}
        return None
    return match


def _cost_log_twice(view):
    AL, Y = np.asarray(view.ctx["AL"], dtype=np.float64), np.asarray(view.ctx["Y"], dtype=np.float64)
    if AL.shape[0] != 1:
        return None
    with np.errstate(divide="ignore"):
        # with every label 1 (or 0) the reference's cross-entropy is -1/m sum log(AL) (or log(1 - AL))
        for label, term in ((1, "log(AL)"), (0, "log(1 - AL)")):
            if view.explains(cross_entropy_cost(AL, np.full_like(Y, label)) + view.reg()):
                return {"term": term}
    return None


def _gradient_ascent(view):
    return {} if view.explains(_update(view.ctx, learning_rate=-view.ctx["learning_rate"])[view.key]) else None


def _learning_rate(kind):
    def match(view):
        lr = view.ctx["learning_rate"]
        return {} if view.explains(_update(view.ctx, learning_rate=1.0 if kind == "missing" else lr * lr)
                                   [view.div.quantity]) else None
    return match


def _adam_t(view):
    ctx = view.ctx
    t, beta1, beta2 = ctx["t"], ctx["beta1"], ctx["beta2"]
    for dt in (-1, 1):
        alt = _update(ctx, corrections=(1 - beta1 ** (t + dt), 1 - beta2 ** (t + dt)))[view.div.quantity]
        if view.explains(alt):
            return {"used": f"t {'-' if dt < 0 else '+'} 1", "t": t}
    return None


def _adam_moment(view):
    ctx = view.ctx
    c1, c2 = 1 - ctx["beta1"] ** ctx["t"], 1 - ctx["beta2"] ** ctx["t"]
    variants = (((c2, c1), "v corrected by 1 - beta2**t and s by 1 - beta1**t"),
                ((c1, 1.0), "only v bias-corrected"), ((1.0, c2), "only s bias-corrected"),
                ((1.0, 1.0), "neither moment bias-corrected"))
    for corrections, used in variants:
        if view.explains(_update(ctx, corrections=corrections)[view.div.quantity]):
            return {"used": used}
    return None


def _momentum_after(view):
    return {} if view.explains(update_parameters_with_gd(view.ctx["parameters"], view.ctx["v"],
                                                         view.ctx["learning_rate"])[view.key]) else None


def _momentum_undamped(view):
    # v = beta v + dW is the reference's momentum of dW / (1 - beta)
    grads = {d: np.asarray(G, dtype=np.float64) / (1 - view.ctx["beta"]) for d, G in view.ctx["grads"].items()}
    return {} if view.explains(_update(view.ctx, grads=grads)[view.div.quantity]) else None


def _dropout_rescale(view):
    keep_prob = view.ctx["keep_prob"]
    if keep_prob >= 1 or not view.ctx.get("D"):
        return None
    reg = view.reg()
    if not view.explains(keep_prob * (view.E - reg) + reg):
        return None
    if view.base == "A":
        return {"where": "forward", "keep_prob": keep_prob, "how": "A[l] = A[l] * D[l] / keep_prob"}
    return {"where": "backward", "keep_prob": keep_prob, "how": "dA[l] = dA[l] * D[l] / keep_prob"}


def _dropout_fresh_mask(view):
    G, E = view.G, view.E
    D = np.asarray(view.ctx["D"][view.index if isinstance(view.index, int) else view.div.layer])
    if G is None or G.shape != E.shape or D.shape != E.shape:
        return None
    kept, nonzero = D != 0, G != 0
    moved = (~kept & nonzero) | (kept & ~nonzero & (E != 0))
    common = nonzero & (E != 0)
    if not moved.any() or not common.any():
        return None
    if not view.close(G[common], E[common], scale=1.0):
        return None
    if view.base == "A":
        return {"how": "the forward draws D[l] = np.random.rand(*A[l].shape) < keep_prob in the course's order, "
                       "then A[l] = A[l] * D[l] / keep_prob"}
    return {"how": "cache the forward's D[l] and reuse it, never draw again: dA[l] = dA[l] * D[l] / keep_prob"}


def _l2_cost(kind):
    def match(view):
        reg = view.reg()
        if not np.any(reg):
            return None
        if kind == "missing":
            return {} if view.explains(view.E - reg) else None
        for factor, k in (("lambd/m", 2.0), ("lambd/2", view.m), ("lambd", 2.0 * view.m)):
            if view.explains(view.E - reg + k * reg):
                return {"used": f"{factor} sum ||W||^2", "right": "J = cross-entropy + lambd/(2m) sum ||W[l]||^2"}
        return None
    return match


def _l2_gradient(kind):
    def match(view):
        reg = view.reg()
        if not np.any(reg):
            return None
        if kind == "missing":
            return {} if view.explains(view.E - reg) else None
        for factor, k in (("lambd/(2m)", 0.5), ("lambd", view.m), ("2 lambd/m", 2.0)):
            if view.explains(view.E - reg + k * reg):
                return {"used": f"{factor} W", "right": "dW[l] = 1/m dZ[l] A[l-1].T + lambd/m W[l]"}
        return None
    return match


def _l2_wrong_factor(view):
    return (_l2_cost("factor") if view.base == "cost" else _l2_gradient("factor"))(view)


_UPDATES = frozenset({"W", "b"})
_BACKWARD = frozenset({"dZ", "dW", "db", "dA"})
_MOMENTS = frozenset({"W", "b", "v", "s", "v_corrected", "s_corrected"})

#: The table, most specific first: shapes, then the formulas of one optimiser, regulariser or layer, then the
#: generic ratios and sign.
SIGNATURES: tuple[Signature, ...] = (
    Signature("cost-not-squeezed", frozenset({"cost"}), _not_squeezed,
              "{q} has shape {shape} with the right value; the cost is a scalar",
              "squeeze it: cost = np.squeeze(cost) after {equation}"),
    Signature("missing-keepdims", frozenset({"db"}), _keepdims,
              "{q} has shape {shape} with the right values; the expected is a column",
              "keep the column: {equation}"),
    Signature("sum-over-all-axes", frozenset({"db"}), _sum_all,
              "{q} is one number, the sum over every unit and example",
              "sum over the examples only (axis=1): {equation}"),
    Signature("transposed", frozenset(), _transposed,
              "{q} has shape {shape}, the transpose of the expected {expected}{values}",
              "examples are columns and W[l] is (n[l], n[l-1]): {equation}"),
    Signature("adam-t-off-by-one", _MOMENTS, _adam_t,
              "{q} is Adam's update with the bias correction at {used} (t = {t})",
              "t counts updates from 1: v_corrected = v / (1 - beta1**t), s_corrected = s / (1 - beta2**t)"),
    Signature("adam-correction-wrong-moment", _MOMENTS, _adam_moment,
              "{q} is Adam's update with {used}",
              "each moment has its own beta: v_corrected = v / (1 - beta1**t), s_corrected = s / (1 - beta2**t)"),
    Signature("momentum-after-update", _UPDATES, _momentum_after,
              "{q} moved by alpha times the previous velocity, before v was updated",
              "update v first, then the parameters with it: {equation}"),
    Signature("momentum-undamped", frozenset({"W", "b", "v"}), _momentum_undamped,
              "{q} follows v = beta v + dW, without the (1 - beta)",
              "the course's velocity is an average: {equation}"),
    Signature("layer-not-updated", _UPDATES, _not_updated,
              "{q} is unchanged: this layer's parameters were never updated",
              "update every layer, the last too: L = len(parameters) // 2, loop for l in range(L) over the keys "
              "\"W\" + str(l + 1), not range(L - 1): {equation}"),
    Signature("gradient-ascent", _UPDATES, _gradient_ascent,
              "{q} moved up the gradient: W + alpha dW instead of W - alpha dW",
              "subtract the step: {equation}"),
    Signature("learning-rate-missing", _UPDATES, _learning_rate("missing"),
              "{q} moved by the whole step, without the learning rate",
              "scale the step by alpha: {equation}"),
    Signature("learning-rate-twice", _UPDATES, _learning_rate("twice"),
              "{q} moved by alpha**2 times the step: the learning rate applied twice",
              "apply alpha once: {equation}"),
    Signature("l2-missing-in-cost", frozenset({"cost"}), _l2_cost("missing"),
              "{q} is the cross-entropy alone, without the L2 term",
              "add the L2 term: J = cross-entropy + lambd/(2m) sum ||W[l]||^2"),
    Signature("l2-missing-in-gradient", frozenset({"dW"}), _l2_gradient("missing"),
              "{q} lacks the L2 term lambd/m W",
              "add the L2 term's gradient: dW[l] = 1/m dZ[l] A[l-1].T + lambd/m W[l]"),
    Signature("l2-wrong-factor", frozenset({"cost", "dW"}), _l2_wrong_factor,
              "{q} carries the L2 term with {used}",
              "the L2 term's factor: {right}"),
    Signature("dropout-not-rescaled", frozenset({"A", "dA", "dZ", "dW", "db"}), _dropout_rescale,
              "{q} is keep_prob = {keep_prob} times the expected: the {where} dropout is not divided by keep_prob",
              "inverted dropout divides by keep_prob: {how}"),
    Signature("dropout-fresh-mask", frozenset({"A", "dA", "dZ"}), _dropout_fresh_mask,
              "{q} is zero and nonzero on other units than the mask D[l], yet rescaled where both keep a unit",
              "one mask per layer and step: {how}"),
    Signature("cost-log-twice", frozenset({"cost"}), _cost_log_twice,
              "{q} is -1/m sum({term}): the same log in both terms",
              "one log per label: {equation}"),
    Signature("relu-output", frozenset({"A"}), _forward_activation("relu-output"),
              "{q} is relu(Z) where the layer's activation is {activation}",
              "the output layer is a sigmoid: AL = sigmoid(Z[L]), relu only in layers 1..L-1"),
    Signature("softmax-wrong-axis", frozenset({"A"}), _forward_activation("softmax-axis"),
              "{q} is the softmax normalised along axis=1 (over the examples)",
              "normalise each column (axis=0): A = exp(Z) / np.sum(exp(Z), axis=0, keepdims=True)"),
    Signature("wrong-activation", frozenset({"A"}), _forward_activation("other"),
              "{q} is {used}(Z) where the layer's activation is {activation}",
              "apply the layer's own activation: {equation}"),
    Signature("relu-kink-convention", _BACKWARD, _relu_kink,
              "{q} takes relu'(0) = 1: where Z is exactly 0 it passes dA through; the course takes relu'(0) = 0",
              "zero the gradient where Z <= 0, not only where Z < 0: dZ = np.array(dA, copy=True); dZ[Z <= 0] = 0"),
    Signature("sigmoid-derivative-plus", _BACKWARD, _sigmoid_plus,
              "{q} follows dZ = dA * s (1 + s)",
              "the sigmoid's derivative is s (1 - s): dZ[l] = dA[l] * s (1 - s), s = sigmoid(Z[l])"),
    Signature("derivative-of-z", _BACKWARD, _derivative_of_Z,
              "{q} follows the {activation} derivative written with Z: {formula}",
              "the derivative is written with the activation A = g(Z), not Z: " + EQUATIONS["dZ"]),
    Signature("wrong-activation-derivative", _BACKWARD, _wrong_derivative,
              "{q} follows {used}, but the layer's activation is {activation}",
              "use the derivative of the layer's own activation: " + EQUATIONS["dZ"]),
    Signature("m-wrong-axis", frozenset({"dW", "db", "cost"}), _m_wrong_axis,
              "{q} {what}",
              "m is the number of examples, the columns: {axis}; {equation}"),
    Signature("missing-1-over-m", frozenset({"dW", "db"}), _ratio("m"),
              "{q} is exactly m = {m} times the expected value",
              "divide by m, the mean over the examples: {equation}"),
    Signature("extra-1-over-m", frozenset({"dW", "db", "cost", "dZ", "dA"}), _ratio("1/m"),
              "{q} is exactly 1/m = 1/{m} of the expected value",
              "divide by m once, in dW, db and the cost only: {equation}"),
    Signature("sign-flipped", frozenset(), _sign,
              "{q} is exactly the negative of the expected value",
              "check the signs: {equation}"),
)
