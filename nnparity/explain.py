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
import re
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


# --------------------------------------------------------------------------- the equations' LaTeX: MathML and text

# Each equation is written once, as LaTeX: its MathML (the page) is latex2mathml's conversion, its text form (the
# Markdown and the terminal) is ``plain_text``'s reading of the same string.  A transpose joins the layer index's
# superscript (``A^{[l-1]T}``: one superscript row, no T floating above the bracket), a power of a scripted symbol
# is fenced (``\left(A^{[l]}\right)^2``), and a gradient's name is one group (``{dZ}^{[l]}_{(:,i)}``: one
# ``msubsup`` on dZ), so that no script is ever the base of another.

def mathml(latex: str) -> str:
    """The MathML block of ``latex`` (latex2mathml; nothing loaded from the network)."""
    from latex2mathml.converter import convert

    return convert(latex, display="block")


#: The commands that read as a word or a symbol in the text form: Greek letters by name, functions as written.
_WORDS = {"alpha": "alpha", "beta": "beta", "lambda": "lambda", "sigma": "sigma", "pi": "pi", "varepsilon": "eps",
          "epsilon": "eps", "sum": "sum", "log": "log", "exp": "exp", "max": "max", "tanh": "tanh", "ast": "*",
          "cdot": "*", "lVert": "||", "rVert": "||", "lfloor": "floor(", "rfloor": ")", "{": "{", "}": "}",
          "_": "_", ",": " ", ";": " ", " ": " ", "to": "->"}
#: Commands whose argument is the text itself (the font changes).
_AS_WRITTEN = ("mathit", "mathrm", "mathbf", "operatorname")
_QUAD = "\0"  # \quad, between the statements of an equation and before its note: two spaces
_TOKENS = re.compile(r"\\[A-Za-z]+|\\.|\s+|.", re.S)
_ATOM = re.compile(r"-?\d+|[A-Za-z]\w*(\[[^\]]*\]|\{[^}]*\})?(\^(\w+|\([^()]*\)))?(\([^()]*\))?")


def plain_text(latex: str) -> str:
    """The text form of an equation's LaTeX: ``Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}`` reads
    ``Z[l] = W[l] A[l-1] + b[l]``, ``{dW}^{[l]} = \\frac{1}{m} {dZ}^{[l]} A^{[l-1]T}`` reads
    ``dW[l] = 1/m dZ[l] A[l-1]^T``.  A layer index (``[l]``, ``{t}``) follows its symbol, other scripts are
    ``^x`` and ``_x`` (parenthesised unless one word), a fraction ``a/b`` (``a / (b)`` around more than one
    term), ``\\text{...}`` as written, the rows of ``cases`` joined by commas and of ``align*`` by semicolons.
    A command it does not know is a ValueError (so a new equation cannot lose a symbol silently)."""
    tokens = _TOKENS.findall(latex)
    position = 0

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def argument(raw=False) -> str:
        while position < len(tokens) and tokens[position].isspace():
            take()
        token = take()
        if token != "{":
            return one(token)
        if not raw:
            return sequence("}")
        depth, out = 1, []
        while True:
            token = take()
            depth += {"{": 1, "}": -1}.get(token, 0)
            if depth == 0:
                return "".join(out)
            out.append(token[1:] if token in ("\\_", "\\{", "\\}", "\\&", "\\%") else token)

    def sequence(stop=None, environment="") -> str:
        out = []
        while position < len(tokens):
            token = take()
            if token == stop:
                break
            if token == "&":
                out.append(" " if environment == "cases" else "")
            elif token == "\\\\":
                out.append(", " if environment == "cases" else ";" + _QUAD)
            else:
                out.append(one(token))
        return "".join(out)

    def one(token: str) -> str:
        if token.isspace():
            return " "
        if token == "{":
            return sequence("}")
        if token == "^":
            script = argument()
            index = re.fullmatch(r"(\[[^\]]*\]|\{[^}]*\})(.*)", script)
            if index:  # a layer index, then the rest (A^{[l-1]T}: A[l-1]^T)
                return index[1] + ("^" + _wrapped(index[2], r"\w+") if index[2] else "")
            return "^" + _wrapped(script, r"[A-Za-z0-9]+")
        if token == "_":
            script = argument()
            return script if script.startswith("(") else "_" + _wrapped(script, r"\w+")
        if not token.startswith("\\"):
            return token
        name = token[1:]
        if name == "frac":
            a, b = argument(), argument()
            if _ATOM.fullmatch(a) and _ATOM.fullmatch(b):
                return f"{a}/{b}"
            return f"{_wrapped(a, _ATOM.pattern)} / {_wrapped(b, _ATOM.pattern)}"
        if name == "sqrt":
            return f"sqrt({argument()})"
        if name == "hat":
            return argument() + "hat"
        if name == "text":
            return argument(raw=True)
        if name in _AS_WRITTEN:
            return argument()
        if name in ("left", "right"):
            fence = take()
            return "" if fence == "." else one(fence)
        if name == "begin":
            environment = argument(raw=True)
            body = sequence("\\end", environment)
            argument(raw=True)  # \end's name
            return body
        if name in ("quad", "qquad"):
            return _QUAD
        if name in _WORDS:
            return _WORDS[name]
        raise ValueError(f"{latex!r}: {token} has no text form (nnparity.explain.plain_text)")

    text = re.sub(r"\s+", " ", sequence())
    text = re.sub(r"\( | \)", lambda m: m[0].strip(), text)
    text = re.sub(r" ([,;])", r"\1", text)
    return re.sub(r" *\0 *", "  ", text).strip()


def _wrapped(text: str, simple: str) -> str:
    text = text.strip()
    return text if re.fullmatch(simple, text) else f"({text})"

# --------------------------------------------------------------------------- the equations

@dataclass(frozen=True)
class Equation:
    id: str  # the anchor and --equation's name
    title: str
    group: str
    latex: str  # the equation, once: its MathML and its text form are read from it
    case: str  # the key of CASES (or CONV_CASES) that measures it
    rows: tuple  # (phase, quantity, layers): layers None (all), or an activation name (its layers)
    autodiff: str = ""  # one sentence: what autodiff computes here (equations the frameworks differentiate)
    catalogue: tuple = ()  # catalogue entry ids
    divergences: tuple = ()  # nnparity.divergences ids
    figure: str = ""  # "activation", "bound-vs-step" or "margin" (reports.explain.CAPTIONS says what each draws)
    more_cases: tuple = ()  # further case keys whose rows it shows too (pooling: the max and the average case)

    @property
    def keys(self) -> tuple:
        """The keys of the cases that measure it: ``case``, then ``more_cases``."""
        return (self.case, *self.more_cases)

    @property
    def mathml(self) -> str:
        """The page's MathML block (``mathml``)."""
        return mathml(self.latex)

    @property
    def text(self) -> str:
        """The text form, for the Markdown and the terminal (``plain_text``)."""
        return plain_text(self.latex)

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


def _dz(activation: str, latex: str, ops: str, case: str, **extra) -> Equation:
    return Equation(f"dZ-{activation.replace('_', '-')}", f"dZ for {activation.replace('_', ' ')}", "backward", latex,
                    case,
                    (("backward", "dZ", activation),), _AUTODIFF_DZ % ops, figure="margin", **extra)


_TRAJECTORY = (("update", None, None), ("trajectory", "cost", None), ("final", None, None))

EQUATIONS = (
    # ---- forward
    Equation("Z", "Linear step Z = W A_prev + b", "forward", r"Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}",
             "tanh", (("forward", "Z", None),)),
    Equation("sigmoid", "Sigmoid A = 1 / (1 + e^-Z)", "forward", r"A = \sigma(Z) = \frac{1}{1 + e^{-Z}}",
             "tanh", (("forward", "A", "sigmoid"),), figure="activation"),
    Equation("tanh", "tanh A = tanh(Z)", "forward", r"A = \tanh(Z) = \frac{e^{Z} - e^{-Z}}{e^{Z} + e^{-Z}}",
             "tanh", (("forward", "A", "tanh"),), figure="activation"),
    Equation("relu", "ReLU A = max(Z, 0)", "forward", r"A = \operatorname{relu}(Z) = \max(Z, 0)",
             "relu", (("forward", "A", "relu"),), figure="activation"),
    Equation("leaky-relu", "Leaky ReLU A = max(Z, slope Z)", "forward",
             r"A = \begin{cases} Z & \text{if } Z > 0 \\ \mathit{slope} \cdot Z & \text{otherwise} \end{cases}",
             "leaky", (("forward", "A", "leaky_relu"),), catalogue=("leaky-relu-default-slope",
                                                                  "tf-leaky-relu-float32-alpha", "jax-leaky-relu-kink"),
             divergences=("keras-leaky-relu-float32-alpha",), figure="activation"),
    Equation("softmax", "Softmax A = e^Z / sum e^Z", "forward",
             r"A_k = \frac{e^{Z_k}}{\sum_j e^{Z_j}} \quad \text{(column-wise)}",
             "softmax", (("forward", "A", "softmax"),)),
)


#: A cost's rows: its value at step 0 from the reference's parameters, and at every step of the free-running run
#: (which carries the case's optimiser too: a known divergence of that optimiser is named in the cost's section).
_COST_ROWS = (("forward", "cost", None), ("trajectory", "cost", None))

EQUATIONS += (
    # ---- costs
    Equation("cross-entropy", "Cross-entropy cost", "cost",
             r"J = -\frac{1}{m} \sum_i \left(y_i \log a_i + (1 - y_i) \log(1 - a_i)\right)",
             "tanh",
             _COST_ROWS, figure="bound-vs-step",
             catalogue=("bce-saturated-keras", "bce-saturated-torch", "bce-vs-logits", "loss-reduction")),
    Equation("categorical-cross-entropy", "Categorical cross-entropy cost", "cost",
             r"J = -\frac{1}{m} \sum_i \sum_k y_{ki} \log a_{ki} \quad \text{(Y one-hot, AL the softmax output)}",
             "softmax", _COST_ROWS, figure="bound-vs-step"),
    Equation("l1", "L1 loss", "cost", r"L_1(\hat{y}, y) = \sum_i |y_i - \hat{y}_i|;\quad J = \frac{L_1}{m}",
             "l1",
             _COST_ROWS, figure="bound-vs-step", catalogue=("loss-reduction",)),
    Equation("l2-loss", "L2 loss", "cost",
             r"L_2(\hat{y}, y) = \sum_i \left(y_i - \hat{y}_i\right)^2;\quad J = \frac{L_2}{m}",
             "l2-loss",
             _COST_ROWS, figure="bound-vs-step", catalogue=("loss-reduction",)),
    # ---- backward
    _dz("sigmoid", r"{dZ}^{[l]} = {dA}^{[l]} \ast s\,(1 - s),\quad s = \sigma(Z^{[l]})",
        "torch.sigmoid, tf.math.sigmoid, jax.nn.sigmoid: A (1 - A)", "tanh"),
    _dz("tanh", r"{dZ}^{[l]} = {dA}^{[l]} \ast \left(1 - \left(A^{[l]}\right)^2\right)",
        "torch.tanh, tf.math.tanh, jnp.tanh: 1 - A^2", "tanh"),
    _dz("relu", r"{dZ}^{[l]} = \begin{cases} {dA}^{[l]} & \text{if } Z^{[l]} > 0 \\ "
        r"0 & \text{otherwise (relu'(0) = 0)} \end{cases}",
        "torch.relu, tf.nn.relu, jax.nn.relu: 1 where Z > 0, 0 elsewhere and at 0", "relu"),
    _dz("leaky_relu", r"{dZ}^{[l]} = \begin{cases} {dA}^{[l]} & \text{if } Z^{[l]} > 0 \\ "
        r"\mathit{slope} \cdot {dA}^{[l]} & \text{otherwise} \end{cases}",
        "the where(Z > 0, Z, slope Z) of the notes: 1 where Z > 0, the slope elsewhere", "leaky",
        catalogue=("jax-leaky-relu-kink",)),
    _dz("softmax", r"{dZ}^{[l]} = A^{[l]} \ast \left({dA}^{[l]} - \sum_k {dA}_k A_k\right) "
        r"\quad \text{(equals } A^{[L]} - Y \text{ with the categorical cross-entropy)}",
        "torch.softmax, tf.nn.softmax, jax.nn.softmax: the softmax Jacobian", "softmax"),
    Equation("dW", "dW = 1/m dZ A_prev^T", "backward", r"{dW}^{[l]} = \frac{1}{m} {dZ}^{[l]} A^{[l-1]T}",
             "tanh", (("backward", "dW", None),), figure="margin", autodiff=
             "Autodiff applies the matrix product's registered derivative, dJ/dW = dJ/dZ A_prev^T; the 1/m comes "
             "from the mean in the cost, so the gradient is the notes' dW as it is."),
    Equation("db", "db = 1/m sum(dZ)", "backward", r"{db}^{[l]} = \frac{1}{m} \sum_i {dZ}^{[l]}_{(:,i)}",
             "tanh", (("backward", "db", None),), figure="margin", autodiff=
             "Autodiff sums dJ/dZ over the broadcast axis of b (the derivative of broadcasting b to m columns); "
             "the 1/m comes from the mean in the cost."),
    Equation("dA-prev", "dA_prev = W^T dZ", "backward", r"{dA}^{[l-1]} = W^{[l]T} {dZ}^{[l]}",
             "tanh", (("backward", "dA", None),), figure="margin", autodiff=
             "Autodiff applies the matrix product's derivative with respect to its other factor, W^T dJ/dZ; the code "
             "multiplies by m for the notes' per-example dA."),
    # ---- optimisation
    Equation("update", "Gradient descent W = W - alpha dW", "optimisation",
             r"W^{[l]} = W^{[l]} - \alpha\, {dW}^{[l]};\quad b^{[l]} = b^{[l]} - \alpha\, {db}^{[l]}",
             "tanh", _TRAJECTORY, catalogue=("keras-sgd-learning-rate-float32", "keras-float32-hyperparameter-cast"),
             figure="bound-vs-step"),
    Equation("momentum", "Momentum", "optimisation",
             r"v_{dW} = \beta\, v_{dW} + (1 - \beta)\, {dW}^{[l]};\quad W^{[l]} = W^{[l]} - \alpha\, v_{dW}",
             "momentum",
             _TRAJECTORY, catalogue=("torch-sgd-momentum-first-step", "keras-sgd-momentum-form",
                                     "optax-sgd-momentum-form"), figure="bound-vs-step"),
    Equation("rmsprop", "RMSprop", "optimisation",
             r"s_{dW} = \beta_2\, s_{dW} + (1 - \beta_2) \left({dW}^{[l]}\right)^2;\quad "
             r"W^{[l]} = W^{[l]} - \alpha \frac{{dW}^{[l]}}{\sqrt{s_{dW}} + \varepsilon}",
             "rmsprop",
             _TRAJECTORY, catalogue=("keras-rmsprop-epsilon", "optax-rmsprop-epsilon"),
             divergences=("keras-rmsprop-epsilon",), figure="bound-vs-step"),
    Equation("adam", "Adam", "optimisation",
             r"\begin{align*} v_{dW} &= \beta_1 v_{dW} + (1 - \beta_1)\, {dW}^{[l]} \\ "
             r"s_{dW} &= \beta_2 s_{dW} + (1 - \beta_2) \left({dW}^{[l]}\right)^2 \\ "
             r"\hat{v} &= \frac{v_{dW}}{1 - \beta_1^t} \\ \hat{s} &= \frac{s_{dW}}{1 - \beta_2^t} \\ "
             r"W^{[l]} &= W^{[l]} - \alpha \frac{\hat{v}}{\sqrt{\hat{s}} + \varepsilon} \end{align*}",
             "adam",
             _TRAJECTORY, catalogue=("keras-adam-epsilon", "optax-adam"), divergences=("keras-adam-epsilon",),
             figure="bound-vs-step"),
    Equation("l2-regularisation", "L2 regularisation", "regularisation",
             r"J = J + \frac{\lambda}{2m} \sum_l \left\lVert W^{[l]} \right\rVert_F^2;\quad "
             r"{dW}^{[l]} = {dW}^{[l]} + \frac{\lambda}{m} W^{[l]}",
             "l2-reg", (("forward", "cost", None), ("backward", "dW", None)),
             "Autodiff differentiates the added term too: lambda/m W joins dW (torch-nn: weight_decay in the step).",
             catalogue=("torch-weight-decay-biases", "optax-weight-decay")),
    Equation("dropout", "Inverted dropout", "regularisation",
             r"A^{[l]} = \frac{A^{[l]} \ast D^{[l]}}{\mathit{keep\_prob}} \quad \text{(hidden layers; the same } "
             r"D^{[l]} \text{ and } 1/\mathit{keep\_prob} \text{ on } {dA}^{[l]}\text{)}",
             "dropout", (("forward", "A", "hidden"), ("backward", "dA", None)),
             "Autodiff multiplies by the same D / keep_prob on the way back (the derivative of the product).",
             catalogue=("framework-dropout-masks",)),
    Equation("initialisation", "Initialisation", "setup",
             r"W^{[l]} = \operatorname{randn}(n^{[l]}, n^{[l-1]}) \cdot \mathit{scale},\quad \mathit{scale} = "
             r"\sqrt{\frac{2}{n^{[l-1]}}} \text{ (he) or } \frac{1}{\sqrt{n^{[l-1]}}} \text{ (inv-sqrt)};\quad "
             r"b^{[l]} = 0",
             "relu", (("forward", "Z", 1),), catalogue=("weight-layout", "default-dtype")),
    Equation("mini-batches", "Mini-batches", "setup",
             r"X^{\{t\}} = X_{:,\, \pi_e[tB : (t+1)B]},\quad "
             r"\pi_e = \text{RandomState(shuffle_seed + e).permutation(m)} "
             r"\quad \text{(each epoch } e\text{: full batches first, then the rest)}",
             "mini-batches", (("trajectory", "cost", None), ("final", None, None)), figure="bound-vs-step"),
    Equation("lr-decay", "Learning-rate decay", "optimisation",
             r"\alpha_e = \frac{\alpha_0}{1 + \mathit{decay\_rate} \cdot e} \quad \text{(scheduled: } "
             r"\lfloor e / \mathit{time\_interval} \rfloor \text{ in place of } e\text{)}",
             "lr-decay", (("trajectory", "cost", None), ("final", None, None)),
             catalogue=("keras-learning-rate-decay",), divergences=("keras-sgd-momentum-decay",),
             figure="bound-vs-step"),
)

#: The conv equations' symbols: the previous layer's sizes, its padded activations, a window.
_PREV, _PAD = r"_{\mathrm{prev}}", r"_{\mathrm{prev\_pad}}"
_H, _W = r"n_{H" + _PREV + "}", r"n_{W" + _PREV + "}"
_WINDOW = (r"\quad \text{(s the stride: window } (h, w) \text{ is rows } hs \text{ to } hs + f - 1\text{, columns } "
           r"ws \text{ to } ws + f - 1\text{)}")
_CONV_FORWARD = (("forward", "Z", None),)
_POOL_CASES = ("conv-average",)  # the pool sections: the max case (``case``) and the average one

EQUATIONS += (
    # ---- convolution (the course's "Convolution model - Step by Step", after the dense network's equations)
    Equation("conv-output-size", "Output size n_H = floor((n_H_prev + 2p - f) / s) + 1", "convolution",
             rf"n_H = \left\lfloor \frac{{{_H} + 2p - f}}{{s}} \right\rfloor + 1,\quad "
             rf"n_W = \left\lfloor \frac{{{_W} + 2p - f}}{{s}} \right\rfloor + 1 "
             r"\quad \text{(pooling: } p = 0\text{, f and s the pool's)}",
             "conv-max", (("forward", "Z", None), ("forward", "A", None)),
             catalogue=("conv-same-padding", "torch-pool-ceil-mode")),
    Equation("zero-pad", "Zero padding", "convolution",
             rf"A{_PAD} = \operatorname{{zero\_pad}}(A{_PREV}, p):\quad (m, {_H}, {_W}, n_C) "
             rf"\to (m, {_H} + 2p, {_W} + 2p, n_C) \quad \text{{(p zeros on each side of every image)}}",
             "conv-max", _CONV_FORWARD, catalogue=("conv-same-padding",)),
    Equation("conv", "Convolution Z = sum(window * W) + b", "convolution",
             r"Z[i, h, w, c] = \sum_{h'=0}^{f-1} \sum_{w'=0}^{f-1} \sum_{c'} "
             rf"A{_PAD}[i, hs + h', ws + w', c'] \, W[h', w', c', c] + b[c]" + _WINDOW,
             "conv-max", _CONV_FORWARD, catalogue=("conv-same-padding", "conv-kernel-layout")),
    Equation("pool", "Max pooling and average pooling", "convolution",
             r"A[i, h, w, c] = \begin{cases} \max_{h', w' < f} Z[i, hs + h', ws + w', c] & \text{(max pooling)} \\ "
             r"\frac{1}{f^2} \sum_{h', w' < f} Z[i, hs + h', ws + w', c] & \text{(average pooling)} \end{cases}"
             + _WINDOW,
             "conv-max", (("forward", "A", None),), catalogue=("avg-pool-padding", "torch-pool-ceil-mode"),
             more_cases=_POOL_CASES),
    Equation("conv-backward", "Conv backward: dA_prev, dW, db", "convolution",
             rf"\begin{{align*}} {{dA}}{_PAD}[i, \text{{window}}(h, w), :] &{{+}}= \sum_c W[:, :, :, c] \, "
             rf"{{dZ}}[i, h, w, c] \\ {{dW}}[:, :, :, c] &= \sum_i \sum_{{h, w}} A{_PAD}[i, \text{{window}}(h, w), :] "
             r"\, {dZ}[i, h, w, c] \\ {db}[c] &= \sum_i \sum_{h, w} {dZ}[i, h, w, c] \end{align*}"
             r"\quad \text{(for every example i and window (h, w): sums over the windows and the examples, no 1/m; "
             rf"}} {{dA}}{_PREV} \text{{ is }} {{dA}}{_PAD} \text{{ without its padding)}}",
             "conv-max", (("backward", "dA_prev", None), ("backward", "dW", None), ("backward", "db", None)),
             "Autodiff applies the convolution's registered derivative: dA_prev is the transposed convolution of "
             "dZ with W (each window sends W dZ back to the cells it read), dW the correlation of the padded input "
             "with dZ, db the sum of dZ over the examples, the height and the width: the course's loops as whole-"
             "array ops.  No 1/m: the cost's mean lives upstream, in dA.",
             catalogue=("conv-kernel-layout",), figure="margin"),
    Equation("pool-backward", "Pool backward: the mask of the max, distribute_value for the average",
             "convolution",
             r"{dZ}[i, \text{window}(h, w), c] {+}= \begin{cases} M \ast {dA}[i, h, w, c],\ "
             r"M = \left(Z_{\text{window}} = \max Z_{\text{window}}\right) & \text{(max: create\_mask\_from\_window)} "
             r"\\ \frac{{dA}[i, h, w, c]}{f^2} \text{ on every cell} & \text{(average: distribute\_value)} "
             r"\end{cases} \quad \text{(for every window } (h, w)\text{)}",
             "conv-max", (("backward", "dZ", None),),
             "Autodiff applies the pooling op's registered derivative: max sends dA to the window's maximum (to "
             "one of several tied maxima, where the course's mask sends it to every one: maxpool-tied-gradient), "
             "average spreads dA / f^2 over the window.",
             catalogue=("maxpool-tied-gradient",), figure="margin", more_cases=_POOL_CASES),
)

BY_ID = {e.id: e for e in EQUATIONS}
GROUPS = ("forward", "cost", "backward", "optimisation", "regularisation", "setup", "convolution")


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


#: The conv sections' cases (``nnparity.convspec.ConvCase``), by key: (quick, full) hyper-parameters.  One conv
#: layer then one pooling layer on generated N(0, 1) images, one forward and backward pass (the conv harness's
#: chain, ``nnparity.conv_harness``).  Quick: like the notebook's conv_forward example (5 x 7 x 4 images, 8 filters
#: 3 x 3, stride 2, pad 1) with one column more, so that n_W's floor drops one, then a 2 x 2 pool with stride 1
#: (overlapping windows: the backward's sums add up); full: larger images, a 5 x 5 filter and a 3 x 3 pool with
#: stride 2.  The pool sections show both modes.
_CONV_QUICK = dict(m=2, n_H_prev=5, n_W_prev=8, n_C_prev=4, f=3, n_C=8, stride=2, pad=1, pool_f=2, pool_stride=1)
_CONV_FULL = dict(m=4, n_H_prev=16, n_W_prev=16, n_C_prev=3, f=5, n_C=8, stride=2, pad=2, pool_f=3, pool_stride=2)
CONV_CASES = {
    "conv-max": ({**_CONV_QUICK, "mode": "max"}, {**_CONV_FULL, "mode": "max"}),
    "conv-average": ({**_CONV_QUICK, "mode": "average"}, {**_CONV_FULL, "mode": "average"}),
}


def is_conv(key: str) -> bool:
    """Whether the case key ``key`` names a conv case (``CONV_CASES``: measured by ``nnparity.conv_harness``)."""
    return key in CONV_CASES


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
    """The small case that measures the equations of ``key`` (every equation names one) in ``tier``: a ``Case``,
    or for a conv key a ``ConvCase``."""
    if is_conv(key):
        from nnparity.convspec import ConvCase

        return ConvCase(**CONV_CASES[key][TIERS.index(tier)], dtype=dtype, name=f"explain-{key}-{tier}-{dtype}")
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
    if not hasattr(case, "layer_dims"):  # a ConvCase
        shapes = case.shapes()
        return (f"{case.id}: {case.m} {case.data} images {case.n_H_prev}x{case.n_W_prev}x{case.n_C_prev}, "
                f"{case.n_C} filters {case.f}x{case.f} stride {case.stride} pad {case.pad} -> Z {shapes['Z']}, "
                f"{case.mode} pool {case.pool_f}x{case.pool_f} stride {case.pool_stride} -> A {shapes['A']}; one "
                "forward and backward pass from an upstream dA ~ N(0, 1)")
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
        for key in e.keys:
            out[key] = out.get(key, False) or any(phase in TRAINING_PHASES for phase, _, _ in e.rows)
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
        if is_conv(key):  # the course's conv loops on the case's inputs, and their bounds
            from nnparity import conv_harness

            refs[key, dtype] = conv_harness.run_reference(case)
            continue
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
            if is_conv(key):  # one forward and backward pass of the conv chain (no divergence is recorded for it)
                from nnparity import conv_harness

                frame = conv_harness.compare_conv(ref, name)
                frame["divergence"] = ""
            else:
                frame = harness.compare_impl(ref, name, _parts(keys[key]))
                frame = mark_divergence(ref, name, frame, keys[key])
            frame["key"] = key
            frames.append(frame)
        if bar is not None:
            bar.finished(f"explain {ref.case.id}: {', '.join(names)}", "done", time.perf_counter() - start)
    return frames


def _parts(training: bool) -> tuple:
    """What a section compares: the captures, and with ``training`` the first update and the free run (the page
    shows no predictions)."""
    from nnparity.harness import CAPTURES, FIRST_UPDATE, FREE_RUN

    return (CAPTURES, FIRST_UPDATE, FREE_RUN) if training else (CAPTURES,)


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
        return harness.compare_impl(aligned, name, _parts(training))

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
    for key in equation.keys:
        mine = (details["key"] == key).to_numpy()
        for dtype in MEASURED_DTYPES:
            layers_cache = {}
            for phase, quantity, selector in equation.rows:
                if selector not in layers_cache:
                    layers_cache[selector] = None if selector is None else _layers(case_for(key, dtype, tier),
                                                                                    selector)
                layers = layers_cache[selector]
                match = mine & (details["dtype"] == dtype).to_numpy() & (details["phase"] == phase).to_numpy()
                if quantity is not None:
                    match &= (details["quantity"] == quantity).to_numpy()
                if layers is not None:
                    match &= details["layer"].isin(layers).fillna(False).to_numpy(dtype=bool)
                keep |= match
    unavailable = details["key"].isin(equation.keys).to_numpy() & (details["phase"] == "unavailable").to_numpy()
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
                                [describe_case(case_for(key, dt, tier)) for key in equation.keys
                                 for dt in MEASURED_DTYPES],
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
