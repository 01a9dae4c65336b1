"""The registry of implementations: every name the tests, the command line, the report and bench use.

One ``Impl`` per implementation: its name, the module that holds it, the framework it needs, the
keyword options its ``train`` takes, its style (``reference``, ``equation``, ``idiomatic``), the
distributions that install it (the optional extra of pyproject.toml) and how plots draw it.  The
command line's choices, the parity grids and their test ids, the plots' colours, bench and env.json
all follow from ``REGISTRY``; adding a framework is one folder and entries here (docs/contributing.md:
"Adding a framework").

What the rest of the house asks about a framework (its env.json section and versions, its thread variables,
the code ``nnparity explain`` shows, its known divergences and catalogue entries, bench's notes) is declared in
its own folder, in ``<package>/framework.py``'s ``FRAMEWORK`` (a ``Framework``), beside the code it describes
(``reference/``, ``torch_impl/``, ``tf_impl/``, ``jax_impl/``).  ``described()`` lists them: the registry's
packages', then those of the packages an ``nnparity.implementations`` entry point names, so that a plugin brings
the same.  A descriptor is read from its file without importing its package (``tf_impl``'s and ``jax_impl``'s
``__init__`` import their framework), and imports no framework itself.

Frameworks are imported lazily, on first use, so that NumPy-only paths (and ``nnparity --help``)
never pay TensorFlow's import time.  Every implementation module offers the entry points of the
protocol, NumPy in and out, with the reference's signatures:

* ``forward_backward(parameters, X, Y, case, masks=None) -> {quantity: ndarray}``
* ``train(parameters, X, Y, case, schedule=None, masks=None) -> (parameters, costs)``
* ``predictions(parameters, X, case) -> labels (1, m)``: its own ``predict`` on the notes' parameters
  (optional for a user's implementation; the built-in ones all offer it)

A user's implementation joins through ``--impl PATH.py`` or ``--impl package.module`` (``load``), or
by an installed package's entry point in the group ``nnparity.implementations``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from nnparity.errors import UsageError

REFERENCE = "numpy"
STYLES = ("reference", "equation", "idiomatic")
ENTRY_POINT_GROUP = "nnparity.implementations"


@dataclass(frozen=True)
class Framework:
    """Everything the house asks about one framework, declared in its folder (``<package>/framework.py``).

    Nothing in it imports the framework: probes read ``sys.modules``, hooks import inside their bodies."""

    name: str  # the import name its implementations need (Impl.framework): the key of threads' policy
    section: str = ""  # env.json's section (and compare's), default ``name``; "" with no ``settings``: none
    distributions: tuple = ()  # distributions whose versions env.json, bench and upgrade-check record
    modules: tuple = ()  # import names whose ``__version__`` explain records and bench times the import of
    settings: Callable | None = None  # () -> env.json's section (read from sys.modules; "not imported" otherwise)
    env_vars: tuple = ()  # environment variables that change its threading or numerics (env.json records them)
    threads: int = 1  # the thread policy (nnparity.threads)
    thread_variables: tuple = ()  # the variables it reads at start-up for its pools
    thread_value: Callable | None = None  # (variable, threads) -> the value to set; default str(threads)
    thread_counts: Callable | None = None  # () -> bench's per-worker {label: count} where it is imported
    columns: tuple = ()  # explain's code columns: ((label, (implementation names that run that code)), ...)
    compiled: dict = field(default_factory=dict)  # column -> how its compiled variants differ (explain)
    autodiff: tuple = ()  # the columns whose gradients autodiff computes (explain's "the line that asks")
    explain: Callable | None = None  # () -> {equation id: {column: ((module, name, marker), ...)}}
    curve: Callable | None = None  # (column, activation, Z, slope) -> (A, dA/dZ) NumPy arrays, explain's figure
    divergences: Callable | None = None  # () -> tuple of nnparity.divergences.Divergence
    catalogue: Callable | None = None  # () -> list of nnparity.catalogue.Entry
    notes: dict = field(default_factory=dict)  # implementation -> bench's note
    import_seconds: float = 0.0  # explain's split: rough CPU seconds of its import
    run_seconds: dict = field(default_factory=dict)  # implementation -> explain's (capture, training, first use)
    implementations: tuple = ()  # a plugin's implementation names (the registry's come from REGISTRY)

    @property
    def env_section(self) -> str:
        return self.section or (self.name if self.settings is not None else "")


class ImplUnavailable(RuntimeError):
    """A framework is not installed or fails to import; the message says which and why."""


@dataclass(frozen=True)
class Impl:
    name: str
    module: str
    framework: str  # the import name of the framework it needs
    options: tuple = ()  # keyword options of its train, e.g. (("use_function", True),)
    capture_options: tuple = ()  # keyword options of its forward_backward, e.g. (("use_jit", True),)
    style: str = "equation"
    requires: tuple = ()  # the distributions that install the framework (pyproject's extra)
    colour: str = "#7f7f7f"
    marker: str = "o"
    linestyle: object = "-"
    grid: str = "full"  # which cases of the parity grids it runs: "full", or "representative" (nnparity.grid)
    # An eager implementation whose compiled twin runs the same source (tf beside tf-function): the quick tier
    # shortens its free run (nnparity.tiers.horizon); its checkpoints stay.
    compiled_twin: str | None = None
    # The module with its conv and pool layers (nnparity.convspec's forward_backward), run with ``options``.
    conv_module: str | None = None
    # The module with the course's two conv models (nnparity.conv_models: forward_backward and train of
    # reference.convnet's arguments), idiomatic implementations only.
    convnet_module: str | None = None
    # The distribution whose optimisers it calls (torch.optim, keras.optimizers, optax): a case's optimiser is that
    # library's code, so only the cases' optimisers are exercised (upgrade-check's note).  "" for an equation-style
    # implementation, which writes its updates itself.
    optimizers_from: str = ""

    def _load(self, module: str | None = None):
        try:
            return importlib.import_module(module or self.module)
        except Exception as exc:  # an ImportError, or a framework that breaks while importing
            raise ImplUnavailable(f"{self.name}: cannot import {self.framework} ({type(exc).__name__}: {exc})") from exc

    @property
    def offers_conv(self) -> bool:
        return self.conv_module is not None

    def conv_forward_backward(self, A_prev, W, b, dA, case):
        """The conv contract's chain (``nnparity.convspec``): conv, pool and back, NumPy arrays in NHWC."""
        return self._load(self.conv_module).forward_backward(A_prev, W, b, dA, case, **dict(self.options))

    @property
    def offers_predictions(self) -> bool:
        return True

    def forward_backward(self, parameters, X, Y, case, masks=None):
        extra = {} if masks is None else {"masks": masks}
        return self._load().forward_backward(parameters, X, Y, case, **extra, **dict(self.capture_options))

    def predictions(self, parameters, X, case):
        """The implementation's own predict on the notes' parameters: class labels, shape (1, m)."""
        return self._load().predictions(parameters, X, case)

    def train(self, parameters, X, Y, case, schedule=None, masks=None, on_step=None):
        extra = {} if masks is None else {"masks": masks}
        if on_step is not None:
            extra["on_step"] = on_step
        return partial(self._load().train, **dict(self.options))(parameters, X, Y, case, schedule, **extra)


_TORCH, _TF, _JAX = ("torch",), ("tensorflow-cpu",), ("jax", "jaxlib", "flax", "optax")

#: Every built-in implementation, in the order the report shows them.
REGISTRY = {impl.name: impl for impl in (
    Impl("numpy", "reference.model", "numpy", style="reference", colour="black", conv_module="reference.conv"),
    Impl("torch", "torch_impl.model", "torch", requires=_TORCH, colour="#d62728", marker="o", linestyle="--",
         conv_module="torch_impl.conv"),
    Impl("torch-nn", "torch_impl.idiomatic", "torch", style="idiomatic", requires=_TORCH, colour="#9467bd",
         marker="D", linestyle=(0, (5, 1, 1, 1)), conv_module="torch_impl.conv_idiomatic",
         convnet_module="torch_impl.convnet", optimizers_from="torch"),
    Impl("tf", "tf_impl.model", "tensorflow", requires=_TF, colour="#1f77b4", marker="s", linestyle=":",
         compiled_twin="tf-function", conv_module="tf_impl.conv"),
    Impl("tf-function", "tf_impl.model", "tensorflow", (("use_function", True),), requires=_TF, colour="#2ca02c",
         marker="^", linestyle="-.", conv_module="tf_impl.conv"),
    Impl("keras", "tf_impl.idiomatic", "tensorflow", style="idiomatic", requires=_TF, colour="#ff7f0e",
         marker="v", linestyle=(0, (3, 1, 1, 1, 1, 1)), conv_module="tf_impl.conv_idiomatic",
         convnet_module="tf_impl.convnet", optimizers_from="keras"),
    # Eager JAX traces value_and_grad again at every step: 25-50 s a 1000-step case on this machine, 20x
    # jax-jit's; it runs the representative cases of the grids (nnparity.grid.for_impl), jax-jit all of them.
    Impl("jax", "jax_impl.model", "jax", requires=_JAX, colour="#8c564b", marker="P", linestyle=(0, (1, 1)),
         grid="representative", compiled_twin="jax-jit", conv_module="jax_impl.conv"),
    Impl("jax-jit", "jax_impl.model", "jax", (("use_jit", True),), requires=_JAX, colour="#e377c2", marker="X",
         linestyle=(0, (4, 2)), capture_options=(("use_jit", True),), conv_module="jax_impl.conv"),
    Impl("flax", "jax_impl.idiomatic", "jax", style="idiomatic", requires=_JAX, colour="#17becf", marker="*",
         linestyle=(0, (2, 1, 4, 1)), conv_module="jax_impl.conv_idiomatic",
         convnet_module="jax_impl.convnet", optimizers_from="optax"),
)}

#: Every built-in name, the reference first.
IMPLS = tuple(REGISTRY)


def names(*styles: str) -> tuple[str, ...]:
    """Built-in implementation names of the given styles (all when none given), in registry order."""
    return tuple(n for n, impl in REGISTRY.items() if not styles or impl.style in styles)


def frameworks() -> tuple[str, ...]:
    """The implementations compared with the reference: every built-in one but ``numpy``."""
    return names("equation", "idiomatic")


class External(Impl):
    """A user's implementation: a ``.py`` file or an importable module offering the protocol."""

    def __init__(self, name, module_obj):
        object.__setattr__(self, "_module_obj", module_obj)
        super().__init__(name, getattr(module_obj, "__name__", name), "user", style="external")

    def _load(self):
        return self._module_obj

    @property
    def offers_predictions(self) -> bool:
        return callable(getattr(self._module_obj, "predictions", None))


def _is_external(text: str) -> bool:
    return text.endswith(".py") or os.sep in text or ("." in text and text not in REGISTRY)


def load(text: str, name: str | None = None) -> External:
    """``--impl PATH.py`` or ``--impl package.module``: the user's module, checked for the protocol; ``name``
    (default: ``text``) is what the report calls it."""
    import importlib.util

    what = f"--impl {text}"
    if text.endswith(".py") or os.sep in text:
        if not os.path.isfile(text):
            raise UsageError(f"{what}: no such file; give the path of a Python file that defines "
                             "forward_backward and train")
        stem = os.path.splitext(os.path.basename(text))[0]
        spec = importlib.util.spec_from_file_location(f"nnparity_user_impl_{stem}", os.path.abspath(text))
        try:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: any error while importing it
            raise UsageError(f"{what}: importing it raised {type(exc).__name__}: {_first_line(exc)}; fix the "
                             "file so that `python FILE` runs") from None
    else:
        try:
            module = importlib.import_module(text)
        except ModuleNotFoundError as exc:
            raise UsageError(f"{what}: no module named {exc.name!r}; give a .py file or an importable module "
                             f"(known implementations: {', '.join(IMPLS)})") from None
        except Exception as exc:
            raise UsageError(f"{what}: importing it raised {type(exc).__name__}: {_first_line(exc)}") from None
    missing = [f for f in ("forward_backward", "train") if not callable(getattr(module, f, None))]
    if missing:
        raise UsageError(f"{what} defines no {' and no '.join(missing)}; an implementation offers "
                         "forward_backward(parameters, X, Y, case, masks=None) and "
                         "train(parameters, X, Y, case, schedule=None, masks=None) "
                         "(see docs/porting.md, 'The protocol')")
    return External(name or text, module)


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _entry_points() -> dict:
    """Implementations registered by installed packages: ``[project.entry-points."nnparity.implementations"]``."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


_LOADED: dict[str, External] = {}  # a user's module is imported once per process


def get(name: str) -> Impl:
    """The implementation called ``name``: built-in, a user's file or module, or an installed entry point."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in _LOADED:
        return _LOADED[name]
    if _is_external(name):
        return _LOADED.setdefault(name, load(name))
    plugins = _entry_points()
    if name in plugins:
        return _LOADED.setdefault(name, load(plugins[name].value, name))
    known = list(IMPLS) + sorted(plugins)
    raise UsageError(f"unknown implementation {name!r}; use one of: {', '.join(known)}, or a .py file or module "
                     "that offers forward_backward and train") from None


def parse_list(text: str) -> list[str]:
    """``'torch,tf'`` -> ``['torch', 'tf']``, every name checked; ``'all'`` -> every built-in implementation."""
    chosen = list(IMPLS) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in chosen:
        get(name)
    if not chosen:
        raise UsageError(f"--impl is empty; use one or more of: {', '.join(IMPLS)} (comma-separated), or all")
    return chosen


DESCRIPTOR = "framework"  # the module of a package that holds its FRAMEWORK


def _package_dir(package: str) -> str | None:
    """The folder of a top-level package, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    locations = list(getattr(spec, "submodule_search_locations", None) or ())
    return locations[0] if locations else None


def sibling(package: str, stem: str):
    """``package.stem`` (a module of the folder of ``package``), without running ``package/__init__.py`` where
    the package is not imported yet: ``tf_impl``'s and ``jax_impl``'s import their framework.  None when the
    folder has no such file."""
    import importlib.util

    name = f"{package}.{stem}"
    if name in sys.modules:
        return sys.modules[name]
    if package in sys.modules:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                return None
            raise
    folder = _package_dir(package)
    path = None if folder is None else os.path.join(folder, f"{stem}.py")
    if path is None or not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def descriptor(module: str) -> Framework | None:
    """The ``Framework`` the package of implementation module ``module`` declares (``<package>/framework.py``)."""
    found = sibling(module.split(".")[0], DESCRIPTOR)
    return getattr(found, "FRAMEWORK", None)


def plugins() -> dict:
    """{name: module} of the implementations installed packages register (entry point group
    ``nnparity.implementations``), built-in names left out."""
    try:
        found = _entry_points()
    except Exception:  # broken metadata of some installed distribution: no plugins
        return {}
    return {name: ep.value for name, ep in sorted(found.items()) if name not in REGISTRY}


_DESCRIBED: list = []


def described() -> tuple[Framework, ...]:
    """Every framework's descriptor: the registry's packages' in registry order, then the plugins' (cached)."""
    if not _DESCRIBED:
        seen, out = set(), []
        builtin = [impl.module for impl in REGISTRY.values()]
        for module in builtin + list(plugins().values()):
            package = module.split(".")[0]
            if package in seen:
                continue
            seen.add(package)
            try:
                found = descriptor(module)
            except Exception as exc:  # a plugin's broken descriptor: said once, and left out (a built-in's raises)
                if module in builtin:
                    raise
                print(f"nnparity: {package}/{DESCRIPTOR}.py (an installed plugin's) failed to load and is left out: "
                      f"{type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
                continue
            if found is not None:
                out.append(found)
        _DESCRIBED[:] = [tuple(out)]
    return _DESCRIBED[0]


def framework_of(name: str) -> Framework | None:
    """The descriptor of the framework implementation ``name`` runs on (built-in or plugin), or None."""
    for framework in described():
        if name in framework.implementations or (name in REGISTRY and REGISTRY[name].framework == framework.name):
            return framework
    return None


def clear_compiled() -> None:
    """Forget what every loaded built-in implementation has compiled (its module's ``clear_compiled``): a step
    traced once per network holds the code in place when it was traced, so a run after that code was patched
    and restored would reuse the patched step.  Modules not imported yet are left unimported."""
    for module in {name for impl in REGISTRY.values() for name in (impl.module, impl.conv_module) if name}:
        clear = getattr(sys.modules.get(module), "clear_compiled", None)
        if clear is not None:
            clear()
