"""The convolutional contract: what every conv implementation and the harness share.

The course's "Convolution model - Step by Step" conventions, examples first and channels last (NHWC)::

    A_prev  (m, n_H_prev, n_W_prev, n_C_prev)
    W       (f, f, n_C_prev, n_C)          b  (1, 1, 1, n_C)
    Z       (m, n_H, n_W, n_C)             n_H = floor((n_H_prev + 2 pad - f) / stride) + 1
    A       (m, n_H_pool, n_W_pool, n_C)   n_H_pool = floor((n_H - f_pool) / stride_pool) + 1

A ``ConvCase`` chains the course's two layers as one learner would: ``Z = conv_forward(A_prev, W, b)``,
``A = pool_forward(Z)``, then back with an upstream gradient ``dA``: ``dZ = pool_backward(dA)``,
``dA_prev, dW, db = conv_backward(dZ)``.  The quantities compared are ``QUANTITIES``.  ``dW`` and ``db`` are
sums over the examples, as the course writes them (no ``1/m``: the cost's mean lives upstream, in ``dA``).

Every implementation's conv module (``reference.conv``, ``torch_impl.conv``, ...) has::

    forward_backward(A_prev, W, b, dA, case) -> {"Z", "A", "dZ", "dA_prev", "dW", "db"}  (NumPy, NHWC, case.dtype)

with NumPy arrays in the course's layout at the boundary: a framework converts to its own layout inside, where a
learner sees it.  Nothing here imports a framework.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from nnparity.errors import UsageError

POOL_MODES = ("max", "average")
DTYPES = ("float64", "float32")
DATA = ("generated", "digits")
#: What a conv case compares, in the order the chain computes them.
QUANTITIES = ("Z", "A", "dZ", "dA_prev", "dW", "db")


def output_size(n_prev: int, f: int, pad: int, stride: int) -> int:
    """The course's output size: floor((n_prev + 2 pad - f) / stride) + 1."""
    return (n_prev + 2 * pad - f) // stride + 1


@dataclass(frozen=True)
class ConvCase:
    """One conv layer followed by one pooling layer, with the course's hyper-parameters."""

    m: int = 2
    n_H_prev: int = 7
    n_W_prev: int = 7
    n_C_prev: int = 3
    f: int = 3
    n_C: int = 4
    stride: int = 1
    pad: int = 1
    pool_f: int = 2
    pool_stride: int = 2
    mode: str = "max"
    dtype: str = "float64"
    seed: int = 1
    data: str = "generated"  # generated: N(0, 1) images; digits: scikit-learn's 8x8x1 digits, scaled to [0, 1]
    name: str = field(default="", compare=False)

    def __post_init__(self):
        if self.mode not in POOL_MODES:
            raise UsageError(f"unknown pooling mode {self.mode!r}; use one of: {', '.join(POOL_MODES)}")
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown dtype {self.dtype!r}; use one of: {', '.join(DTYPES)}")
        if self.data not in DATA:
            raise UsageError(f"unknown conv data {self.data!r}; use one of: {', '.join(DATA)}")
        if min(self.f, self.stride, self.pool_f, self.pool_stride, self.m, self.n_C, self.n_C_prev) < 1 or self.pad < 0:
            raise UsageError("conv sizes must be positive and pad non-negative; fix the case's hyper-parameters")
        if self.n_H < 1 or self.n_W < 1 or self.n_H_pool < 1 or self.n_W_pool < 1:
            raise UsageError(f"the filter does not fit the input ({self.shapes()}); use a smaller f or a larger pad")
        if not self.name:
            object.__setattr__(self, "name", self.default_name())

    @property
    def id(self) -> str:
        """The case's name, as a dense ``Case``'s ``id``: the report's and details.csv's case column."""
        return self.name

    @property
    def n_H(self) -> int:
        return output_size(self.n_H_prev, self.f, self.pad, self.stride)

    @property
    def n_W(self) -> int:
        return output_size(self.n_W_prev, self.f, self.pad, self.stride)

    @property
    def n_H_pool(self) -> int:
        return output_size(self.n_H, self.pool_f, 0, self.pool_stride)

    @property
    def n_W_pool(self) -> int:
        return output_size(self.n_W, self.pool_f, 0, self.pool_stride)

    @property
    def conv_hparameters(self) -> dict:
        return {"stride": self.stride, "pad": self.pad}

    @property
    def pool_hparameters(self) -> dict:
        return {"f": self.pool_f, "stride": self.pool_stride}

    def shapes(self) -> dict:
        return {
            "A_prev": (self.m, self.n_H_prev, self.n_W_prev, self.n_C_prev),
            "W": (self.f, self.f, self.n_C_prev, self.n_C),
            "b": (1, 1, 1, self.n_C),
            "Z": (self.m, self.n_H, self.n_W, self.n_C),
            "A": (self.m, self.n_H_pool, self.n_W_pool, self.n_C),
        }

    def default_name(self) -> str:
        return (f"conv{self.f}x{self.f}s{self.stride}p{self.pad}-{self.mode}pool{self.pool_f}s{self.pool_stride}"
                f"-{self.n_H_prev}x{self.n_W_prev}x{self.n_C_prev}to{self.n_C}-m{self.m}-{self.data}-{self.dtype}")

    def replace(self, **changes) -> "ConvCase":
        return dataclasses.replace(self, name="", **changes)


def inputs(case: ConvCase) -> dict:
    """A_prev, W, b and the upstream gradient dA of ``case``, in ``case.dtype``, the same for every implementation.

    W ~ N(0, 1/(f f n_C_prev)) (He-like scale: Z stays of order one), b ~ N(0, 0.1^2), dA ~ N(0, 1): all from
    ``RandomState(case.seed)``; the images from ``RandomState(case.seed + 1)`` or scikit-learn's digits."""
    rng = np.random.RandomState(case.seed)
    shapes = case.shapes()
    W = rng.randn(*shapes["W"]) / np.sqrt(case.f * case.f * case.n_C_prev)
    b = 0.1 * rng.randn(*shapes["b"])
    dA = rng.randn(*shapes["A"])
    if case.data == "generated":
        A_prev = np.random.RandomState(case.seed + 1).randn(*shapes["A_prev"])
    else:
        A_prev = _digits(case)
    dtype = np.dtype(case.dtype)
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in (("A_prev", A_prev), ("W", W), ("b", b), ("dA", dA))}


def _digits(case: ConvCase) -> np.ndarray:
    if (case.n_H_prev, case.n_W_prev, case.n_C_prev) != (8, 8, 1):
        raise UsageError(f"digits images are 8x8x1, the case asks {case.n_H_prev}x{case.n_W_prev}x{case.n_C_prev}; "
                         "use data='generated' or n_H_prev = n_W_prev = 8, n_C_prev = 1")
    from sklearn.datasets import load_digits

    images = load_digits().images  # (1797, 8, 8), integers 0..16
    chosen = np.random.RandomState(case.seed + 1).choice(len(images), size=case.m, replace=False)
    return (images[chosen] / 16.0)[..., None]


def conv_grid(dtypes: tuple[str, ...] = DTYPES) -> list[ConvCase]:
    """The conv cases every implementation runs, in each dtype: stride, padding, filter size, both pooling modes,
    overlapping and uneven pooling windows, a 1x1 filter, the digits (average pooling, and max pooling: their blank
    borders tie max-pool windows, where every framework diverges as recorded), and the course's 64x64x3 image shape."""
    shapes = [
        ConvCase(),
        ConvCase(mode="average"),
        ConvCase(f=2, stride=2, pad=0, n_C=3, pool_f=3, pool_stride=1, mode="average"),
        ConvCase(n_H_prev=9, n_W_prev=6, f=5, pad=2, stride=2, pool_f=2, pool_stride=1),
        ConvCase(f=1, pad=0, n_C_prev=4, n_C=2, pool_f=3, pool_stride=2, mode="average"),
        ConvCase(m=4, n_H_prev=8, n_W_prev=8, n_C_prev=1, n_C=8, f=4, pad=2, mode="average", data="digits"),
        # tied maxima: a recorded divergence of every framework (nnparity.divergences.maxpool_ties)
        ConvCase(m=4, n_H_prev=8, n_W_prev=8, n_C_prev=1, n_C=8, f=4, pad=2, mode="max", data="digits"),
        ConvCase(m=2, n_H_prev=64, n_W_prev=64, n_C_prev=3, f=7, pad=3, n_C=8, pool_f=4, pool_stride=4),
    ]
    return [case.replace(dtype=dtype) for dtype in dtypes for case in shapes]
