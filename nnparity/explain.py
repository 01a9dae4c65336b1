"""``nnparity explain``'s data: each equation of the notes, the code that computes it in every implementation
(extracted from the running source with ``inspect``), its measured difference from the reference on a live run,
and the catalogue entries and known divergences where a framework departs from it.

A tool: it gathers, ``reports.explain`` renders.  Frameworks are imported only when an excerpt or a run needs
them; a framework that does not import becomes a note in its column (``Excerpt.error``) and rows of phase
``unavailable`` in the measurements.

What each framework's column shows (its code columns, the functions and marked lines of every equation, the line
that asks autodiff for a gradient, its compiled variants, its activation curve) is declared in the framework's own
folder (``<package>/framework.py``, ``nnparity.impls.Framework``); this module reads them through the registry
(``nnparity.impls.described``), so a plugin's framework gets its column too.

Excerpts: a ``Source`` names a function (``module``, ``name``) or a module-level statement (``name=""``); with a
``marker`` the excerpt is the one statement of it whose first line contains the marker (docstrings skipped; a
marker matching two statements is an error, so an excerpt never silently moves to other code).
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
import time
from dataclasses import dataclass, field

from nnparity import impls
from nnparity.errors import UsageError

# --------------------------------------------------------------------------- the code columns

#: The page's code columns: (label, the implementations that run that code), each framework's (its descriptor's).
COLUMNS = tuple(column for framework in impls.described() for column in framework.columns)

#: How the compiled variants of an equation-style column differ (the same functions, compiled).
COMPILED = {label: text for framework in impls.described() for label, text in framework.compiled.items()}

#: The columns whose gradients autodiff computes: a backward equation shows the line that asks for it first.
AUTODIFF_COLUMNS = tuple(label for framework in impls.described() for label in framework.autodiff)


@dataclass(frozen=True)
class Source:
    module: str
    name: str = ""  # a function or class.method of the module; "" is the module itself
    marker: str | None = None  # the statement whose first line contains it; None: the whole function


@dataclass
class Excerpt:
    column: str
    source: Source
    path: str = ""  # relative to the project root
    first: int = 0  # line numbers in the file, 1-based, inclusive
    last: int = 0
    text: str = ""
    error: str = ""  # why there is no text (a framework that does not import)

    @property
    def qualname(self) -> str:
        return f"{self.source.module}.{self.source.name}" if self.source.name else self.source.module


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve(source: Source):
    """The module or function ``source`` names (importing its module)."""
    import importlib

    obj = importlib.import_module(source.module)
    for part in filter(None, source.name.split(".")):
        obj = getattr(obj, part)
    return obj


def extract(column: str, source: Source) -> Excerpt:
    """The excerpt of ``source`` from the running source: ``inspect.getsourcelines`` of the object, narrowed to
    the statement the marker names."""
    excerpt = Excerpt(column, source)
    try:
        obj = resolve(source)
    except Exception as exc:  # a framework that is not installed or fails to import
        excerpt.error = f"not available here: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return excerpt
    obj = inspect.unwrap(obj)  # a cached or compiled function: the function as written
    lines, start = inspect.getsourcelines(obj)
    start = max(start, 1)  # a module's lines start at 1 (inspect says 0)
    excerpt.path = os.path.relpath(inspect.getsourcefile(obj), ROOT)
    a, b = 0, len(lines) - 1
    if source.marker is not None:
        a, b = _statement(lines, source)
    excerpt.first, excerpt.last = start + a, start + b
    excerpt.text = "".join(lines[a:b + 1])
    return excerpt


def _statement(lines: list[str], source: Source) -> tuple[int, int]:
    """(first, last) index in ``lines`` of the one statement whose first line contains ``source.marker``."""
    tree = ast.parse(textwrap.dedent("".join(lines)))
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring
        if source.marker in lines[node.lineno - 1]:
            found.add((node.lineno - 1, node.end_lineno - 1))
    starts = {a for a, _ in found}
    if len(starts) != 1:
        where = f"{source.module}.{source.name}" if source.name else source.module
        raise LookupError(f"marker {source.marker!r} names {len(starts)} statements of {where}, not one")
    a = starts.pop()
    return a, max(b for s, b in found if s == a)  # the outermost statement starting on that line


# --------------------------------------------------------------------------- MathML, generated here

def mi(x): return f"<mi>{x}</mi>"  # noqa: E704
def mn(x): return f"<mn>{x}</mn>"  # noqa: E704
def mo(x): return f"<mo>{x}</mo>"  # noqa: E704
def row(*xs): return "<mrow>" + "".join(xs) + "</mrow>"  # noqa: E704
def frac(a, b): return f"<mfrac>{a}{b}</mfrac>"  # noqa: E704
def sqrt(x): return f"<msqrt>{x}</msqrt>"  # noqa: E704


class Script(str):
    """The MathML of a scripted symbol (``msup``, ``msub`` or ``msubsup``) that remembers its parts, so that a
    second script joins the first instead of nesting: a subscript and a superscript of one base are one
    ``msubsup`` (beta_1^t, dZ^[l]_(:,i)), a transpose joins the layer index (``A^[l-1]T``: one superscript row,
    not a T floating above the bracket), and a power of a scripted symbol gets parentheses ((A^[l])^2)."""

    def __new__(cls, base, subscript=None, superscript=()):
        superscript = tuple(superscript)
        if subscript is not None and superscript:
            text = f"<msubsup>{base}{subscript}{_one(superscript)}</msubsup>"
        elif superscript:
            text = f"<msup>{base}{_one(superscript)}</msup>"
        else:
            text = f"<msub>{base}{subscript}</msub>"
        self = super().__new__(cls, text)
        self.base, self.subscript, self.superscript = base, subscript, superscript
        return self


def _one(parts) -> str:
    return parts[0] if len(parts) == 1 else row(*parts)


#: The transpose's T: ``sup(x, T)`` joins a scripted x's superscript.
T = mi("T")


def sup(b, e):
    """``b^e``: on a scripted ``b`` a transpose joins its superscript, a subscripted ``b`` gets the exponent as
    its superscript (``msubsup``), and another exponent applies to the parenthesised ``b``."""
    if isinstance(b, Script):
        if e == T and b.superscript:
            return Script(b.base, b.subscript, b.superscript + (e,))
        if not b.superscript:
            return Script(b.base, b.subscript, (e,))
        b = row(mo("("), b, mo(")"))
    return Script(b, None, (e,))


def sub(b, s):
    """``b_s``; on a superscripted ``b`` (``dZ^[l]``) one ``msubsup``."""
    if isinstance(b, Script) and b.subscript is None:
        return Script(b.base, s, b.superscript)
    if isinstance(b, Script):
        b = row(b)
    return Script(b, s)


def _layer(layer: str) -> str:
    """``[l]``, ``[l-1]``, ``[L]`` as a superscript row: the letter an identifier, the minus an operator."""
    if layer.endswith("-1"):
        return row(mo("["), mi(layer[:-2]), mo("&#x2212;"), mn(1), mo("]"))
    return row(mo("["), mi(layer), mo("]"))


def L(symbol: str, layer: str = "l") -> str:
    """``W^[l]``: a symbol of layer ``layer`` (``"l"``, ``"l-1"``, ``"L"``)."""
    return sup(mi(symbol), _layer(layer))


def d(symbol: str, layer: str = "l") -> str:
    return sup(mi("d" + symbol), _layer(layer))


def g(arg: str, name: str = "g") -> str:
    return row(mi(name), mo("("), arg, mo(")"))


def math(*xs) -> str:
    return "<math display=\"block\">" + row(*xs) + "</math>"


EQ, PLUS, MINUS, TIMES, DOT = mo("="), mo("+"), mo("&#x2212;"), mo("&#x2217;"), mo("&#x22C5;")
SUM = sub(mo("&#x2211;"), mi("i"))
ONE_OVER_M = frac(mn(1), mi("m"))
ALPHA = mi("&#x3B1;")
Z, A_PREV, DZ = L("Z"), L("A", "l-1"), d("Z")


def sigma(x): return g(x, "&#x3C3;")  # noqa: E704


def mtext(text: str) -> str:
    return f"<mtext>&#xA0;{text}&#xA0;</mtext>"


# --------------------------------------------------------------------------- the equations

@dataclass(frozen=True)
class Equation:
    id: str  # the anchor and --equation's name
    title: str
    group: str
    text: str  # plain text / LaTeX-ish, for the Markdown and the terminal
    mathml: str
    case: str  # the key of CASES that measures it
    rows: tuple  # (phase, quantity, layers): layers None (all), or an activation name (its layers)
    autodiff: str = ""  # one sentence: what autodiff computes here (equations the frameworks differentiate)
    catalogue: tuple = ()  # catalogue entry ids
    divergences: tuple = ()  # nnparity.divergences ids
    figure: str = ""  # "activation", "bound-vs-step" or "margin" (reports.explain.CAPTIONS says what each draws)

    @property
    def code(self) -> dict:
        """{column: tuple of Source}: what each framework's descriptor shows for this equation, in column order."""
        return code_of(self.id)


_CODE: dict = {}


def code_of(equation_id: str) -> dict:
    """{column: tuple of Source} of an equation, from every framework's ``explain()`` (``nnparity.impls.Framework``):
    (module, function or "", marker) tuples."""
    if not _CODE:
        for framework in impls.described():
            if framework.explain is None:
                continue
            for eid, columns in framework.explain().items():
                _CODE.setdefault(eid, {}).update({label: tuple(Source(*s) for s in sources)
                                                  for label, sources in columns.items()})
    found = _CODE.get(equation_id, {})
    return {label: found[label] for label, _ in COLUMNS if label in found}


_AUTODIFF_DZ = ("Autodiff applies the registered derivative of the op that computed A (%s) to the incoming "
                "gradient, the chain rule the notes write out; dJ/dZ is per cost, so the code multiplies by m for "
                "the notes' per-example dZ.")


def _dz(activation: str, text: str, mathml: str, ops: str, case: str, **extra) -> Equation:
    return Equation(f"dZ-{activation.replace('_', '-')}", f"dZ for {activation.replace('_', ' ')}", "backward", text,
                    mathml, case,
                    (("backward", "dZ", activation),), _AUTODIFF_DZ % ops, figure="margin", **extra)


_TRAJECTORY = (("update", None, None), ("trajectory", "cost", None), ("final", None, None))

EQUATIONS = (
    # ---- forward
    Equation("Z", "Linear step Z = W A_prev + b", "forward", "Z[l] = W[l] A[l-1] + b[l]",
             math(Z, EQ, L("W"), A_PREV, PLUS, L("b")),
             "tanh", (("forward", "Z", None),)),
    Equation("sigmoid", "Sigmoid A = 1 / (1 + e^-Z)", "forward", "A = sigmoid(Z) = 1 / (1 + exp(-Z))",
             math(mi("A"), EQ, sigma(mi("Z")), EQ, frac(mn(1), row(mn(1), PLUS, sup(mi("e"), row(MINUS, mi("Z")))))),
             "tanh", (("forward", "A", "sigmoid"),), figure="activation"),
    Equation("tanh", "tanh A = tanh(Z)", "forward", "A = tanh(Z) = (e^Z - e^-Z) / (e^Z + e^-Z)",
             math(mi("A"), EQ, g(mi("Z"), "tanh"), EQ,
                  frac(row(sup(mi("e"), mi("Z")), MINUS, sup(mi("e"), row(MINUS, mi("Z")))),
                       row(sup(mi("e"), mi("Z")), PLUS, sup(mi("e"), row(MINUS, mi("Z")))))),
             "tanh", (("forward", "A", "tanh"),), figure="activation"),
    Equation("relu", "ReLU A = max(Z, 0)", "forward", "A = relu(Z) = max(Z, 0)",
             math(mi("A"), EQ, g(mi("Z"), "relu"), EQ, g(row(mi("Z"), mo(","), mn(0)), "max")),
             "relu", (("forward", "A", "relu"),), figure="activation"),
    Equation("leaky-relu", "Leaky ReLU A = max(Z, slope Z)", "forward", "A = Z where Z > 0, else slope * Z",
             math(mi("A"), EQ, row(mo("{"), mi("Z"), mtext("if Z &gt; 0"), mo(","), mi("slope"), DOT, mi("Z"),
                                   mtext("otherwise"))),
             "leaky", (("forward", "A", "leaky_relu"),), catalogue=("leaky-relu-default-slope",
                                                                  "tf-leaky-relu-float32-alpha", "jax-leaky-relu-kink"),
             divergences=("keras-leaky-relu-float32-alpha",), figure="activation"),
    Equation("softmax", "Softmax A = e^Z / sum e^Z", "forward", "A_k = exp(Z_k) / sum_j exp(Z_j)  (column-wise)",
             math(sub(mi("A"), mi("k")), EQ, frac(sup(mi("e"), sub(mi("Z"), mi("k"))),
                                                  row(sub(mo("&#x2211;"), mi("j")),
                                                      sup(mi("e"), sub(mi("Z"), mi("j")))))),
             "softmax", (("forward", "A", "softmax"),)),
)


_AL, _Y = L("A", "L"), mi("Y")
#: A cost's rows: its value at step 0 from the reference's parameters, and at every step of the free-running run
#: (which carries the case's optimiser too: a known divergence of that optimiser is named in the cost's section).
_COST_ROWS = (("forward", "cost", None), ("trajectory", "cost", None))

EQUATIONS += (
    # ---- costs
    Equation("cross-entropy", "Cross-entropy cost", "cost",
             "J = -1/m sum_i ( y_i log a_i + (1 - y_i) log(1 - a_i) )",
             math(mi("J"), EQ, MINUS, ONE_OVER_M, SUM,
                  row(mo("("), sub(mi("y"), mi("i")), g(sub(mi("a"), mi("i")), "log"),
                      PLUS, row(mo("("), mn(1), MINUS, sub(mi("y"), mi("i")), mo(")")),
                      g(row(mn(1), MINUS, sub(mi("a"), mi("i"))), "log"), mo(")"))),
             "tanh",
             _COST_ROWS, figure="bound-vs-step",
             catalogue=("bce-saturated-keras", "bce-saturated-torch", "bce-vs-logits", "loss-reduction")),
    Equation("categorical-cross-entropy", "Categorical cross-entropy cost", "cost",
             "J = -1/m sum_i sum_k y_ki log a_ki   (Y one-hot, AL the softmax output)",
             math(mi("J"), EQ, MINUS, ONE_OVER_M, SUM, sub(mo("&#x2211;"), mi("k")),
                  sub(mi("y"), mi("ki")), g(sub(mi("a"), mi("ki")), "log")),
             "softmax", _COST_ROWS, figure="bound-vs-step"),
    Equation("l1", "L1 loss", "cost", "L1(yhat, y) = sum_i |y_i - yhat_i|;  J = L1 / m",
             math(g(row(mi("&#x177;"), mo(","), mi("y")), "L1"), EQ, SUM,
                  row(mo("|"), sub(mi("y"), mi("i")), MINUS, sub(mi("&#x177;"), mi("i")), mo("|"))),
             "l1",
             _COST_ROWS, figure="bound-vs-step", catalogue=("loss-reduction",)),
    Equation("l2-loss", "L2 loss", "cost", "L2(yhat, y) = sum_i (y_i - yhat_i)^2;  J = L2 / m",
             math(g(row(mi("&#x177;"), mo(","), mi("y")), "L2"), EQ, SUM,
                  sup(row(mo("("), sub(mi("y"), mi("i")), MINUS, sub(mi("&#x177;"), mi("i")), mo(")")), mn(2))),
             "l2-loss",
             _COST_ROWS, figure="bound-vs-step", catalogue=("loss-reduction",)),
    # ---- backward
    _dz("sigmoid", "dZ = dA * s (1 - s),  s = sigmoid(Z)",
        math(DZ, EQ, d("A"), TIMES, sigma(Z), row(mo("("), mn(1), MINUS, sigma(Z), mo(")"))),
        "torch.sigmoid, tf.math.sigmoid, jax.nn.sigmoid: A (1 - A)", "tanh"),
    _dz("tanh", "dZ = dA * (1 - A^2)",
        math(DZ, EQ, d("A"), TIMES, row(mo("("), mn(1), MINUS, sup(L("A"), mn(2)), mo(")"))),
        "torch.tanh, tf.math.tanh, jnp.tanh: 1 - A^2", "tanh"),
    _dz("relu", "dZ = dA where Z > 0, else 0   (relu'(0) = 0)",
        math(DZ, EQ, d("A"), TIMES, row(mn(1), mo("["), Z, mo("&gt;"), mn(0), mo("]"))),
        "torch.relu, tf.nn.relu, jax.nn.relu: 1 where Z > 0, 0 elsewhere and at 0", "relu"),
    _dz("leaky_relu", "dZ = dA where Z > 0, else slope * dA",
        math(DZ, EQ, row(mo("{"), d("A"), mtext("if Z &gt; 0,"), mi("slope"), DOT, d("A"), mtext("otherwise"))),
        "the where(Z > 0, Z, slope Z) of the notes: 1 where Z > 0, the slope elsewhere", "leaky",
        catalogue=("jax-leaky-relu-kink",)),
    _dz("softmax", "dZ = A * (dA - sum_k dA_k A_k)   (= AL - Y with categorical cross-entropy)",
        math(DZ, EQ, L("A"), TIMES, row(mo("("), d("A"), MINUS, sub(mo("&#x2211;"), mi("k")), sub(mi("dA"), mi("k")),
                                         sub(mi("A"), mi("k")), mo(")"))),
        "torch.softmax, tf.nn.softmax, jax.nn.softmax: the softmax Jacobian", "softmax"),
    Equation("dW", "dW = 1/m dZ A_prev^T", "backward", "dW[l] = 1/m dZ[l] A[l-1]^T",
             math(d("W"), EQ, ONE_OVER_M, DZ, sup(A_PREV, T)),
             "tanh", (("backward", "dW", None),), figure="margin", autodiff=
             "Autodiff applies the matrix product's registered derivative, dJ/dW = dJ/dZ A_prev^T; the 1/m comes "
             "from the mean in the cost, so the gradient is the notes' dW as it is."),
    Equation("db", "db = 1/m sum(dZ)", "backward", "db[l] = 1/m sum_i dZ[l](:, i)",
             math(d("b"), EQ, ONE_OVER_M, SUM, sub(DZ, row(mo("("), mo(":"), mo(","), mi("i"), mo(")")))),
             "tanh", (("backward", "db", None),), figure="margin", autodiff=
             "Autodiff sums dJ/dZ over the broadcast axis of b (the derivative of broadcasting b to m columns); "
             "the 1/m comes from the mean in the cost."),
    Equation("dA-prev", "dA_prev = W^T dZ", "backward", "dA[l-1] = W[l]^T dZ[l]",
             math(d("A", "l-1"), EQ, sup(L("W"), T), DZ),
             "tanh", (("backward", "dA", None),), figure="margin", autodiff=
             "Autodiff applies the matrix product's derivative with respect to its other factor, W^T dJ/dZ; the code "
             "multiplies by m for the notes' per-example dA."),
    # ---- optimisation
    Equation("update", "Gradient descent W = W - alpha dW", "optimisation",
             "W[l] = W[l] - alpha dW[l];  b[l] = b[l] - alpha db[l]",
             math(L("W"), EQ, L("W"), MINUS, ALPHA, d("W")),
             "tanh", _TRAJECTORY, catalogue=("keras-sgd-learning-rate-float32", "keras-float32-hyperparameter-cast"),
             figure="bound-vs-step"),
    Equation("momentum", "Momentum", "optimisation", "v = beta v + (1 - beta) dW;  W = W - alpha v",
             math(sub(mi("v"), mi("dW")), EQ, mi("&#x3B2;"), sub(mi("v"), mi("dW")), PLUS,
                  row(mo("("), mn(1), MINUS, mi("&#x3B2;"), mo(")")), d("W"), mo(";&#xA0;&#xA0;"),
                  L("W"), EQ, L("W"), MINUS, ALPHA, sub(mi("v"), mi("dW"))),
             "momentum",
             _TRAJECTORY, catalogue=("torch-sgd-momentum-first-step", "keras-sgd-momentum-form",
                                     "optax-sgd-momentum-form"), figure="bound-vs-step"),
    Equation("rmsprop", "RMSprop", "optimisation",
             "s = beta2 s + (1 - beta2) dW^2;  W = W - alpha dW / (sqrt(s) + eps)",
             math(sub(mi("s"), mi("dW")), EQ, sub(mi("&#x3B2;"), mn(2)), sub(mi("s"), mi("dW")), PLUS,
                  row(mo("("), mn(1), MINUS, sub(mi("&#x3B2;"), mn(2)), mo(")")), sup(d("W"), mn(2)),
                  mo(";&#xA0;&#xA0;"), L("W"), EQ, L("W"), MINUS, ALPHA,
                  frac(d("W"), row(sqrt(sub(mi("s"), mi("dW"))), PLUS, mi("&#x3B5;")))),
             "rmsprop",
             _TRAJECTORY, catalogue=("keras-rmsprop-epsilon", "optax-rmsprop-epsilon"),
             divergences=("keras-rmsprop-epsilon",), figure="bound-vs-step"),
    Equation("adam", "Adam", "optimisation",
             "v = b1 v + (1 - b1) dW;  s = b2 s + (1 - b2) dW^2;  v^ = v / (1 - b1^t);  s^ = s / (1 - b2^t);  "
             "W = W - alpha v^ / (sqrt(s^) + eps)",
             math(L("W"), EQ, L("W"), MINUS, ALPHA,
                  frac(frac(mi("v"), row(mn(1), MINUS, sup(sub(mi("&#x3B2;"), mn(1)), mi("t")))),
                       row(sqrt(frac(mi("s"), row(mn(1), MINUS, sup(sub(mi("&#x3B2;"), mn(2)), mi("t"))))), PLUS,
                           mi("&#x3B5;")))),
             "adam",
             _TRAJECTORY, catalogue=("keras-adam-epsilon", "optax-adam"), divergences=("keras-adam-epsilon",),
             figure="bound-vs-step"),
    Equation("l2-regularisation", "L2 regularisation", "regularisation",
             "J = J + lambda/(2m) sum_l ||W[l]||_F^2;  dW[l] = dW[l] + lambda/m W[l]",
             math(mi("J"), EQ, mi("J"), PLUS, frac(mi("&#x3BB;"), row(mn(2), mi("m"))), sub(mo("&#x2211;"), mi("l")),
                  sup(row(mo("&#x2016;"), L("W"), mo("&#x2016;")), mn(2)), mo(";&#xA0;&#xA0;"),
                  d("W"), mo("+="), frac(mi("&#x3BB;"), mi("m")), L("W")),
             "l2-reg", (("forward", "cost", None), ("backward", "dW", None)),
             "Autodiff differentiates the added term too: lambda/m W joins dW (torch-nn: weight_decay in the step).",
             catalogue=("torch-weight-decay-biases", "optax-weight-decay")),
    Equation("dropout", "Inverted dropout", "regularisation",
             "A[l] = A[l] * D[l] / keep_prob  (hidden layers; the same "
             "D[l] and 1/keep_prob on dA[l])",
             math(L("A"), EQ, frac(row(L("A"), TIMES, L("D")), mi("keep_prob"))),
             "dropout", (("forward", "A", "hidden"), ("backward", "dA", None)),
             "Autodiff multiplies by the same D / keep_prob on the way back (the derivative of the product).",
             catalogue=("framework-dropout-masks",)),
    Equation("initialisation", "Initialisation", "setup",
             "W[l] = randn(n[l], n[l-1]) * scale (he: sqrt(2 / n[l-1]); inv-sqrt: 1 / sqrt(n[l-1]));  b[l] = 0",
             math(L("W"), EQ, g(row(sup(mi("n"), row(mo("["), mi("l"), mo("]"))), mo(","),
                                    sup(mi("n"), row(mo("["), mi("l"), mo("&#x2212;"), mn(1), mo("]")))), "randn"),
                  DOT, sqrt(frac(mn(2), sup(mi("n"), row(mo("["), mi("l"), mo("&#x2212;"), mn(1), mo("]"))))),
                  mo(";&#xA0;&#xA0;"), L("b"), EQ, mn(0)),
             "relu", (("forward", "Z", 1),), catalogue=("weight-layout", "default-dtype")),
    Equation("mini-batches", "Mini-batches", "setup",
             "each epoch e: permutation = RandomState(shuffle_seed + e).permutation(m); "
             "full batches first, then the rest",
             math(sup(mi("X"), row(mo("{"), mi("t"), mo("}"))), EQ,
                  sub(mi("X"), row(mo(":"), mo(","), sub(mi("&#x3C0;"), mi("e")), mo("["), mi("t"), mi("B"), mo(":"),
                                   row(mo("("), mi("t"), PLUS, mn(1), mo(")")), mi("B"), mo("]")))),
             "mini-batches", (("trajectory", "cost", None), ("final", None, None)), figure="bound-vs-step"),
    Equation("lr-decay", "Learning-rate decay", "optimisation",
             "alpha_e = alpha0 / (1 + decay_rate * e)  (scheduled: e // time_interval)",
             math(sub(ALPHA, mi("e")), EQ, frac(sub(ALPHA, mn(0)), row(mn(1), PLUS, mi("decay_rate"), DOT, mi("e")))),
             "lr-decay", (("trajectory", "cost", None), ("final", None, None)),
             catalogue=("keras-learning-rate-decay",), divergences=("keras-sgd-momentum-decay",),
             figure="bound-vs-step"),
)

BY_ID = {e.id: e for e in EQUATIONS}
GROUPS = ("forward", "cost", "backward", "optimisation", "regularisation", "setup")


def get(name: str) -> Equation:
    """The equation ``--equation name`` names, or a one-line UsageError listing the valid names."""
    if name in BY_ID:
        return BY_ID[name]
    folded = {k.lower().replace("_", "-"): e for k, e in BY_ID.items()}
    if name.lower().replace("_", "-") in folded:
        return folded[name.lower().replace("_", "-")]
    raise UsageError(f"--equation {name!r} is not an equation of the page; use one of: {', '.join(BY_ID)}")


# --------------------------------------------------------------------------- the measured cases

#: The two tiers, named the same in every command: ``quick`` (the default) and ``full`` (``--full``).
TIERS = ("quick", "full")

#: Gradient steps (epochs; full batch: one step each) of each measured run, per tier: enough for the update,
#: momentum, Adam's bias correction and decay to act (the rate changes every epoch).  Mini-batches run two epochs
#: (``CASES``) so that the schedule reshuffles once.
STEPS = {"quick": 3, "full": 5}
MEASURED_DTYPES = ("float64", "float32")

#: The case that measures each equation, by key: (quick network, full network, the settings that isolate the
#: equation).  Every case is plain gradient descent with the cross-entropy (the categorical one for softmax), full
#: batch and no regularisation unless its key is the one thing it changes, so that a section's numbers (and a
#: recorded divergence: nnparity/divergences.py) belong to its own equation.  The quick tier runs every case on
#: small networks of two inputs (the notes' 2-layer network on the planar flower; softmax on three blobs), which
#: keeps each compiled framework's compiles short and lets eager JAX reuse one shape's compiled operations; the
#: full tier runs the notes' deeper networks where the equation has one (``NETWORKS``).
CASES = {
    "tanh": ("planar", "planar", {}),  # forward, the cross-entropy, the gradients and the plain update
    "relu": ("planar", "deep", {"hidden_activation": "relu", "init": "he"}),  # relu and He initialisation
    "leaky": ("planar", "deep", {"hidden_activation": "leaky_relu"}),
    "softmax": ("blobs", "digits", {}),  # softmax, its categorical cross-entropy and its dZ
    "l1": ("planar", "deep", {"loss": "l1"}),
    "l2-loss": ("planar", "planar", {"loss": "l2"}),
    "momentum": ("planar", "deep", {"optimizer": "momentum", "init": "he"}),
    "rmsprop": ("planar", "planar", {"optimizer": "rmsprop", "learning_rate": 0.01}),
    "adam": ("planar", "digits", {"optimizer": "adam"}),  # learning rate: the network's (``_network``)
    "l2-reg": ("planar", "planar", {"lambd": 0.7}),
    "dropout": ("planar", "digits", {"keep_prob": 0.86}),
    "mini-batches": ("planar", "deep", {"batch_size": "network"}),  # two epochs of the network's batches
    "lr-decay": ("planar", "digits", {"decay": "inverse-time", "decay_rate": 0.1}),
}

#: The networks: (what it is, layer dims, data, hidden activation, mini-batch size).
NETWORKS = {
    "planar": ("the notes' 2-layer network on the planar flower", (2, 4, 1), "planar", "tanh", 160),
    "blobs": ("a 2-layer softmax network on three blobs", (2, 4, 3), "blobs", "tanh", 160),
    "deep": ("the notes' L-layer network on digits 3 vs 8", (64, 20, 7, 5, 1), "digits-3v8", "relu", 64),
    "digits": ("an L-layer softmax network on the ten digits", (64, 20, 7, 10), "digits", "relu", 64),
}


def _network(network: str, dtype: str, optimizer: str):
    from nnparity import grid
    from nnparity.spec import Case

    _, dims, data, hidden, _ = NETWORKS[network]
    softmax = dims[-1] > 1
    rate = 0.05 if optimizer in ("gd", "momentum") else (0.01 if dims[0] == 2 else grid.OPTIMIZER_RATES[optimizer])
    return Case(layer_dims=dims, hidden_activation=hidden, output_activation="softmax" if softmax else "sigmoid",
                loss="categorical_cross_entropy" if softmax else "cross_entropy", dtype=dtype, learning_rate=rate,
                data=data)


def case_for(key: str, dtype: str, tier: str = "quick"):
    """The small case that measures the equations of ``key`` (every equation names one) in ``tier``."""
    if key not in CASES:
        raise KeyError(key)
    quick, full, changes = CASES[key]
    network = quick if tier == "quick" else full
    changes = dict(changes)
    case = _network(network, dtype, changes.get("optimizer", "gd"))
    epochs = STEPS[tier]
    if changes.get("batch_size") == "network":
        changes["batch_size"], epochs = NETWORKS[network][4], 2
    case = case.replace(epochs=epochs, **changes)
    return case.replace(name=f"explain-{key}-{tier}-{dtype}")


def describe_case(case) -> str:
    """One line: what the case is."""
    batch = "full batch" if case.batch_size is None else f"mini-batches of {case.batch_size}"
    extra = [f"L2 lambda {case.lambd}"] if case.lambd else []
    extra += [f"dropout keep_prob {case.keep_prob}"] if case.dropout else []
    extra += [f"{case.decay} decay rate {case.decay_rate}"] if case.decay != "none" else []
    return (f"{case.id}: layers {','.join(map(str, case.layer_dims))} on {case.data}, {case.hidden_activation} hidden, "
            f"{case.output_activation} output, {case.loss}, {case.optimizer} (alpha {case.learning_rate}), "
            f"init {case.init}, {batch}, {case.epochs} epochs" + "".join(f", {e}" for e in extra))


#: The phases a run needs ``train`` for; an equation shown with none of them is measured by its step-0 capture alone.
TRAINING_PHASES = {"update", "trajectory", "final"}


def needs_training(equations) -> dict:
    """{case key: whether any of ``equations`` measured by it shows a phase that needs ``train``}: the work the
    page shows, and no more (``--equation dW`` compares one forward and backward pass per implementation)."""
    out = {}
    for e in equations:
        out[e.case] = out.get(e.case, False) or any(phase in TRAINING_PHASES for phase, _, _ in e.rows)
    return out


def measure(keys, names, progress_stream=None, tier: str = "quick", parallel: bool | None = None,
            equations=(), extras: dict | None = None, meanwhile=None):
    """Run the reference and every implementation in ``names`` on the cases of ``keys`` ({case key: training},
    ``needs_training``), both dtypes, in ``tier``; the harness's rows with a ``key`` column and a ``divergence``
    column (``mark_divergence``).  Only the step-0 capture is compared (no checkpoints); with training, also the
    first update, the trajectory and the final parameters (``harness.compare_impl``), which cover the later steps;
    never the predictions (no section shows them).

    The references run first (NumPy); with ``parallel`` (default: when ``_can_fork``) the JAX implementations
    then share the work with a forked process (``split``; on 2 cores about half the wall time), whose rows come
    back with the code excerpts of ``equations`` in the columns only it runs, and the versions it imported
    (``extras``: "excerpts" {(equation id, column): [Excerpt]}, "versions"), so that this process need not
    import those frameworks.  ``meanwhile(columns)``: this process's other work (the columns the second process
    extracts passed in), run after its own measurements and before it waits for the second process."""
    import pandas as pd

    from nnparity import harness
    from nnparity.data import load_data
    from nnparity.progress import progress

    runs = [(key, dtype) for key in keys for dtype in MEASURED_DTYPES]
    refs = {}
    for key, dtype in runs:
        case = case_for(key, dtype, tier)
        refs[key, dtype] = harness.run_reference(case, load_data(case.data), checkpoints=(), trajectory=keys[key])
    groups, forked, columns = _groups(names), None, []
    if len(names) > 1 and (_can_fork() if parallel is None else parallel):
        entries = len({c for e in equations for c in e.catalogue})
        here, there = split(names, keys, CATALOGUE_SECONDS * entries)
        if there:
            columns = [label for label, impls in COLUMNS if set(impls) & set(names) <= set(there)]

            def child():
                frames = _run_group(refs, keys, there, None, runs)
                excerpts = {(e.id, label): [extract(label, x) for x in e.code.get(label, ())]
                            for e in equations for label in columns}
                return frames, excerpts, _versions()

            forked = _fork(child, there)
            groups = _groups(here)
    frames = []
    with progress(len(runs) * len(groups), progress_stream) as bar:
        for group in groups:
            frames += _run_group(refs, keys, group, bar, runs)
    if meanwhile is not None:
        meanwhile(columns)
    if forked is not None:
        with progress(1, progress_stream) as bar:
            bar.working(f"explain: {', '.join(forked.label)} (in a second process)")
            done, excerpts, versions = forked.result()
            frames += done
            if extras is not None:
                extras.update(excerpts=excerpts, versions=versions)
            bar.finished(f"explain {', '.join(forked.label)} (in a second process, every case)", "done",
                         time.perf_counter() - forked.started)
    details = pd.concat(frames, ignore_index=True)
    order = {name: i for i, name in enumerate(names)}  # the page's order: per case, dtype, then implementation
    sort = pd.DataFrame({"run": details["key"].map({k: i for i, k in enumerate(keys)}),
                         "dtype": details["dtype"].map({d: i for i, d in enumerate(MEASURED_DTYPES)}),
                         "impl": details["impl"].map(order), "pos": range(len(details))})
    return details.loc[sort.sort_values(["run", "dtype", "impl", "pos"]).index].reset_index(drop=True)


def _framework_name(name: str) -> str:
    """The framework implementation ``name`` imports (its descriptor's name; its own name where it has none)."""
    framework = impls.framework_of(name)
    return name if framework is None else framework.name


def _groups(names) -> list[list[str]]:
    """``names`` grouped by the framework they import, in registry order."""
    groups = {}
    for name in names:
        groups.setdefault(_framework_name(name), []).append(name)
    return list(groups.values())


#: Rough CPU seconds, measured on the 2-core development machine (quick tier), that ``split`` balances: a
#: framework's import, and per implementation (a case's step-0 pass, a case with training, a first use: eager JAX
#: compiles every operation once per shape and dtype).  Only the division of work depends on them.  Each framework's
#: descriptor declares its own (``import_seconds``, ``run_seconds``).
IMPORT_SECONDS = {f.name: f.import_seconds for f in impls.described() if f.import_seconds}
RUN_SECONDS = {name: seconds for f in impls.described() for name, seconds in f.run_seconds.items()}
#: This process's other work while the second one measures (``measure``'s ``meanwhile``): a catalogue entry.
CATALOGUE_SECONDS = 0.6


def split(names, keys, extra: float = 0.0) -> tuple[list, list]:
    """(here, there): the implementations this process runs and those a second process runs, balanced on
    ``IMPORT_SECONDS`` and ``RUN_SECONDS``.  This process imports every framework anyway (the code excerpts); the
    second one only those of its implementations.  ``extra``: this process's other seconds (``meanwhile``)."""
    import itertools

    runs = [training for training in keys.values() for _ in MEASURED_DTYPES]

    def cost(name):
        capture, training, first = RUN_SECONDS.get(name, (1.0, 2.0, 0))
        return first * len(MEASURED_DTYPES) + sum(training if t else capture for t in runs)

    imports_here = extra + sum(IMPORT_SECONDS.get(f, 0) for f in {_framework_name(n) for n in names})
    best = (imports_here + sum(cost(n) for n in names), list(names), [])
    for size in range(1, len(names)):
        for there in itertools.combinations(names, size):
            frameworks = {_framework_name(n) for n in there}
            load_there = sum(cost(n) for n in there) + sum(IMPORT_SECONDS.get(f, 0) for f in frameworks)
            here = [n for n in names if n not in there]
            load = max(imports_here + sum(cost(n) for n in here), load_there)
            if load < best[0]:
                best = (load, here, list(there))
    return best[1], best[2]


def _run_group(refs, keys, names, bar, runs) -> list:
    from nnparity import harness

    frames = []
    for key, dtype in runs:
        ref = refs[key, dtype]
        start = time.perf_counter()
        for name in names:
            if bar is not None:
                bar.working(f"explain: {ref.case.id}: {name}")
            frame = harness.compare_impl(ref, name, training=keys[key], predictions=False)
            frame = mark_divergence(ref, name, frame, keys[key])
            frame["key"] = key
            frames.append(frame)
        if bar is not None:
            bar.finished(f"explain {ref.case.id}: {', '.join(names)}", "done", time.perf_counter() - start)
    return frames


def mark_divergence(ref, name, frame, training: bool):
    """``frame`` with its ``divergence`` column: the record's id where ``name`` on this case has a record in
    nnparity/divergences.py and fails exactly as it says (its first failing row) and passes against its aligned
    reference -- the check of the parity tests and the report; empty everywhere else (a failure that is not the
    recorded one stays a failure).  ``name``: a registry name, or an implementation object with its ``name``."""
    from nnparity import divergences, harness
    from nnparity.data import load_data

    frame["divergence"] = ""
    known = divergences.expected(ref.case, name if isinstance(name, str) else name.name)
    if known is None or frame["passed"].astype(bool).all():
        return frame

    def aligned_run(aligned_case, context):
        with context:
            aligned = harness.run_reference(aligned_case, load_data(aligned_case.data), checkpoints=(),
                                            trajectory=training)
        return harness.compare_impl(aligned, name, training=training, predictions=False)

    if not divergences.check(known, ref.case, frame, aligned_run):
        frame["divergence"] = known.id
    return frame


def _can_fork() -> bool:
    """A second process helps: two or more CPUs, fork available, and no framework imported yet (forking a
    process that runs TensorFlow's, torch's or XLA's threads is unsafe)."""
    import sys

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    loaded = {m for f in impls.described() if f.name != "numpy" for m in (f.name, *f.modules)} & set(sys.modules)
    return cpus >= 2 and hasattr(os, "fork") and not loaded and os.environ.get("NNPARITY_EXPLAIN_SERIAL") != "1"


class _Forked:
    """A function run in a forked child; ``result()`` is its return value (pickled back through a pipe), or its
    exception re-raised here."""

    def __init__(self, process, connection, label):
        self.process, self.connection, self.label = process, connection, label
        self.started = time.perf_counter()

    def result(self):
        try:
            ok, value = self.connection.recv()
        except EOFError:
            self.process.join()
            raise RuntimeError(f"explain's second process ended without a result (exit code "
                               f"{self.process.exitcode})") from None
        self.process.join()
        if not ok:
            raise value
        return value


def _fork(function, label) -> _Forked:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child():
        receive.close()
        try:
            send.send((True, function()))
        except BaseException as exc:  # noqa: BLE001 - the parent re-raises it
            send.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        finally:
            send.close()

    process = context.Process(target=child, daemon=True)
    process.start()
    send.close()
    return _Forked(process, receive, label)


def _layers(case, selector) -> set | None:
    if selector is None:
        return None
    if isinstance(selector, int):
        return {selector}
    if selector == "hidden":
        return set(range(1, case.L))
    return {l for l, a in enumerate(case.activations(), start=1) if a == selector}


def rows_of(equation: Equation, details, tier: str = "quick"):
    """The harness's rows that measure ``equation`` (its case, phases, quantities and layers), every dtype."""
    import numpy as np

    keep = np.zeros(len(details), dtype=bool)
    mine = (details["key"] == equation.case).to_numpy()
    for dtype in MEASURED_DTYPES:
        layers_cache = {}
        for phase, quantity, selector in equation.rows:
            layers = layers_cache.setdefault(selector, _layers(case_for(equation.case, dtype, tier), selector))
            match = mine & (details["dtype"] == dtype).to_numpy() & (details["phase"] == phase).to_numpy()
            if quantity is not None:
                match &= (details["quantity"] == quantity).to_numpy()
            if layers is not None:
                match &= details["layer"].isin(layers).fillna(False).to_numpy(dtype=bool)
            keep |= match
    unavailable = mine & (details["phase"] == "unavailable").to_numpy()
    return details[keep | unavailable]


#: The class of an implementation and dtype whose only failing rows are a recorded divergence's
#: (``mark_divergence``): expected, not a failure (the report's word, ``reports.summary.EXPECTED``).
EXPECTED = "expected divergence"


def summarise(rows):
    """One row per implementation and dtype: the worst of each measure over the equation's rows.  Where every
    failing row is a recorded divergence's, the class is ``EXPECTED`` and ``divergence`` names the record."""
    import pandas as pd

    from nnparity.harness import CLASSES

    out = []
    for (impl, dtype), group in rows.groupby(["impl", "dtype"], sort=False):
        if (group["phase"] == "unavailable").any():
            out.append(dict(impl=impl, dtype=dtype, case=group["case"].iloc[0], rows=0, note=group["note"].iloc[0]))
            continue
        worst = max(group["classification"], key=CLASSES.index)
        failing = group[~group["passed"].astype(bool)]
        marked = failing["divergence"].fillna("").astype(str) if "divergence" in failing else None
        divergence = ""
        if len(failing) and marked is not None and marked.astype(bool).all() and marked.nunique() == 1:
            divergence, worst = marked.iloc[0], EXPECTED
        judged = group[group["arbiter_ratio"].notna()] if "arbiter_ratio" in group else group.iloc[:0]
        worst_judged = judged.loc[judged["arbiter_ratio"].astype(float).idxmax()] if len(judged) else None
        out.append(dict(impl=impl, dtype=dtype, case=group["case"].iloc[0], rows=len(group),
                        # the float64 arbiter (float32 free runs): (distance, honest float32 runs') where nearest
                        # its limit
                        fp64=None if worst_judged is None else (worst_judged["fp64_dist"],
                                                                worst_judged["fp64_envelope"]),
                        max_abs_err=group["max_abs_err"].max(), max_rel_err=group["max_rel_err"].max(),
                        max_ulp=group["max_ulp"].max(), bound_ratio=group["bound_ratio"].max(),
                        # detection power: the smallest relative change of the quantity its tolerance flags here
                        detect_rel=group["detect_rel"].min() if "detect_rel" in group else float("nan"),
                        passed=bool(group["passed"].all()), classification=worst, divergence=divergence,
                        note="; ".join(sorted({n for n in group["note"] if isinstance(n, str) and n}))[:300]))
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- figures' data

def activation_curves(activation: str, Z, slope: float = 0.01) -> dict:
    """A = g(Z) and g'(Z) (the gradient of sum g(Z)) by the reference and each installed framework that draws one
    (its descriptor's ``curve``, in its first column): {column: (A, dA/dZ) as float64 NumPy arrays, or the reason
    it is missing as a string}."""
    curves = {}
    for framework in impls.described():
        if framework.curve is None or not framework.columns:
            continue
        column = framework.columns[0][0]
        try:
            curves[column] = framework.curve(column, activation, Z, slope)
        except Exception as exc:  # a framework that does not import
            curves[column] = f"{type(exc).__name__}: {exc}"
    return curves


# --------------------------------------------------------------------------- catalogue

def catalogue_rows(ids, report_dir=None):
    """The catalogue's records of ``ids``: run now (``nnparity.catalogue.run_catalogue``), or read from a report's
    ``catalogue.csv`` (``--catalogue-from REPORT_DIR``, checked with ``nnparity.outdir.verify``)."""
    import pandas as pd

    if report_dir is None:
        from nnparity.catalogue import run_catalogue

        frame = run_catalogue(ids=set(ids)) if ids else pd.DataFrame(columns=["id"])
        return frame, "measured by this run (nnparity.catalogue)"
    from nnparity.outdir import verify

    verify(report_dir, "report", "--catalogue-from")
    path = os.path.join(report_dir, "catalogue.csv")
    if not os.path.isfile(path):
        raise UsageError(f"--catalogue-from {report_dir} has no catalogue.csv (written with --no-catalogue); pass a "
                         "report written with its catalogue, or leave --catalogue-from out to run the entries")
    frame = pd.read_csv(path, keep_default_na=False)
    return frame[frame["id"].isin(set(ids))], f"read from {path}"


# --------------------------------------------------------------------------- everything

@dataclass
class Section:
    equation: Equation
    excerpts: dict  # column -> [Excerpt]
    cases: list  # describe_case lines of the measuring case, per dtype
    measured: object  # summarise's frame
    rows: object  # the harness rows behind it
    catalogue: list  # records (dicts)
    divergences: list  # nnparity.divergences records (dicts)
    curves: dict = field(default_factory=dict)  # activation_curves, for an activation's figure
    Z: object = None


@dataclass
class Explanation:
    sections: list
    names: list  # the implementations measured
    seconds: float
    catalogue_source: str
    versions: dict
    tier: str = "quick"


def excerpts_of(equation: Equation, extracted: dict | None = None, labels=None) -> dict:
    """{column: [Excerpt]} of ``equation``; ``extracted``: those another process extracted ({(id, column): ...});
    ``labels``: the columns shown (default: every one)."""
    extracted = extracted or {}
    labels = [label for label, _ in COLUMNS] if labels is None else labels
    return {label: extracted[equation.id, label] if (equation.id, label) in extracted else
            [extract(label, s) for s in equation.code.get(label, ())] for label in labels}


def shown_columns(names=None) -> list:
    """The columns the page shows: every one, or with ``names`` (the implementations asked for) the reference's and
    those that run one of them."""
    return [label for label, run in COLUMNS
            if names is None or impls.REFERENCE in run or set(run) & set(names)]


def gather(equation_ids=None, catalogue_from=None, names=None, progress_stream=None, figures=True,
           tier: str = "quick", parallel: bool | None = None) -> Explanation:
    """Everything the page shows, for every equation (or those of ``equation_ids``), measured now in ``tier``
    (``TIERS``); without ``figures`` (the terminal's one section shows none), no activation curves are computed.
    ``names``: the implementations measured (default: every column's, ``measured_names``); given, the page shows
    only the reference's column and theirs (``shown_columns``)."""
    import numpy as np

    from nnparity import divergences

    if tier not in TIERS:
        raise UsageError(f"tier {tier!r}: use one of {', '.join(TIERS)}")
    start = time.perf_counter()
    equations = [get(e) for e in equation_ids] if equation_ids else list(EQUATIONS)
    labels = shown_columns(names)
    names = list(names or measured_names())
    Z = np.linspace(-20.0, 20.0, 4001)  # the kink at 0 and the saturation of sigmoid and tanh
    Z[2000] = 0.0  # the kink itself, exactly
    extras, done = {}, {}

    def meanwhile(columns):  # while the second process measures: the catalogue, the curves, this one's excerpts
        wanted = sorted({c for e in equations for c in e.catalogue})
        done["catalogue"] = catalogue_rows(wanted, catalogue_from)
        done["curves"] = {e.id: activation_curves(e.id.replace("-", "_"), Z) for e in equations
                          if figures and e.figure == "activation"}
        done["excerpts"] = {(e.id, label): [extract(label, x) for x in e.code.get(label, ())]
                            for e in equations for label in labels if label not in columns}

    details = measure(needs_training(equations), names, progress_stream, tier, parallel, equations, extras,
                      meanwhile)
    catalogue, source = done["catalogue"]
    catalogue_records = {r["id"]: r for r in catalogue.to_dict("records")}
    divergence_records = {r["id"]: r for r in divergences.records()}
    sections = []
    for equation in equations:
        rows = rows_of(equation, details, tier)
        measured = summarise(rows)
        curves = done["curves"].get(equation.id, {})
        shown = list(equation.divergences)  # the section's records, and any its rows failed as expected
        shown += [d for d in measured.get("divergence", ()) if isinstance(d, str) and d and d not in shown]
        extracted = {**done["excerpts"], **extras.get("excerpts", {})}
        sections.append(Section(equation, excerpts_of(equation, extracted, labels),
                                [describe_case(case_for(equation.case, dt, tier)) for dt in MEASURED_DTYPES],
                                measured, rows, [catalogue_records[i] for i in equation.catalogue
                                                 if i in catalogue_records],
                                [divergence_records[i] for i in shown], curves, Z))
    versions = {**extras.get("versions", {}), **_versions()}
    return Explanation(sections, names, time.perf_counter() - start, source, versions, tier)


def measured_names() -> list:
    """The implementations the page measures by default: every one a column runs but the reference."""
    return [name for _, names in COLUMNS for name in names if name != impls.REFERENCE]


def _versions() -> dict:
    """The installed version of each framework that was imported by this run."""
    import sys

    out = {"numpy": sys.modules["numpy"].__version__}
    for name in dict.fromkeys(m for f in impls.described() for m in f.modules if m != "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out
