"""The implementations, by the names used everywhere (tests, command line, report).

Frameworks are imported lazily, on first use, so that NumPy-only paths (and
``nnparity --help``) never pay TensorFlow's import time.  Every implementation
offers the same two entry points, with the reference's signature:

* ``forward_backward(parameters, X, Y, case) -> {quantity: ndarray}``
* ``train(parameters, X, Y, case, schedule) -> (parameters, costs)``
* ``predictions(parameters, X, case) -> labels (1, m)``: its own ``predict`` on the notes' parameters
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import partial

from nnparity.errors import UsageError
from nnparity.spec import IMPLS


class ImplUnavailable(RuntimeError):
    """A framework is not installed or fails to import; the message says which and why."""


@dataclass(frozen=True)
class Impl:
    name: str
    module: str
    framework: str
    options: tuple = ()

    def _load(self):
        try:
            return importlib.import_module(self.module)
        except Exception as exc:  # an ImportError, or a framework that breaks while importing
            raise ImplUnavailable(f"{self.name}: cannot import {self.framework} ({type(exc).__name__}: {exc})") from exc

    def forward_backward(self, parameters, X, Y, case, masks=None):
        extra = {} if masks is None else {"masks": masks}
        return self._load().forward_backward(parameters, X, Y, case, **extra)

    def predictions(self, parameters, X, case):
        """The implementation's own predict on the notes' parameters: class labels, shape (1, m)."""
        return self._load().predictions(parameters, X, case)

    def train(self, parameters, X, Y, case, schedule=None, masks=None):
        extra = {} if masks is None else {"masks": masks}
        return partial(self._load().train, **dict(self.options))(parameters, X, Y, case, schedule, **extra)


_REGISTRY = {
    "numpy": Impl("numpy", "reference.model", "numpy"),
    "torch": Impl("torch", "torch_impl.model", "torch"),
    "torch-nn": Impl("torch-nn", "torch_impl.idiomatic", "torch"),
    "tf": Impl("tf", "tf_impl.model", "tensorflow"),
    "tf-function": Impl("tf-function", "tf_impl.model", "tensorflow", (("use_function", True),)),
    "keras": Impl("keras", "tf_impl.idiomatic", "tensorflow"),
}
assert tuple(_REGISTRY) == IMPLS


def get(name: str) -> Impl:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown implementation {name!r}; use one of: {', '.join(IMPLS)}") from None


def parse_list(text: str) -> list[str]:
    """``'torch,tf'`` -> ``['torch', 'tf']``, every name checked; ``'all'`` -> every implementation."""
    names = list(IMPLS) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        get(name)
    if not names:
        raise UsageError(f"--impl is empty; use one or more of: {', '.join(IMPLS)} (comma-separated), or all")
    return names
