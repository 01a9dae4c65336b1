"""The dense rows' floor: one training step's matrix products (``limits.matmul_products``) through the row's own
framework, in the row's worker (issue 22: a step is held to at most ``STEP_TARGET`` times its own framework's
products, since TensorFlow's and XLA's GEMMs are not OpenBLAS's).

Each framework runs exactly the step's products back to back, on operands already in the framework, each product in
the operand layout its framework runs fastest (chosen by timing, the transposes made once, outside the timing):

* ``numpy``: ``np.dot`` into preallocated outputs, C or Fortran order of each operand (``limits.products_floor``);
* ``torch``: ``torch.mm`` into preallocated outputs, each operand contiguous or a transposed view;
* ``tensorflow``: ``tf.linalg.matmul`` with ``transpose_a`` / ``transpose_b`` on operands stored transposed,
  eagerly and the whole sequence under ``tf.function``;
* ``jax``: ``jnp.matmul`` eagerly, and the whole sequence under ``jax.jit`` with each product's operands stored
  transposed where XLA runs that faster (``jax.block_until_ready`` at the end).

Where a framework offers two ways (eager, compiled), the faster counts and ``floor_op`` says which.  The floor is
measured before and after the row's timed calls (the better pass counts, both kept in ``bench.json``'s
``product_floors``), so that a row's step and its floor share the process, its thread pools and the moment's load.
The limits worker's NumPy floor (``blas_floor_ms``, a process of its own) stays beside it: a framework's products
against OpenBLAS's.
"""

from __future__ import annotations

import math

import numpy as np

from nnparity.bench.limits import LAYOUTS, fastest_way, matmul_products, numpy_products, operands

#: A dense step is at target when it takes at most this many times its own framework's products (issue 22; issue
#: 16's 1.5x the NumPy floor is out of reach where a framework's own GEMM is slower than OpenBLAS's).
STEP_TARGET = 1.3

#: The networks whose rows are held to ``STEP_TARGET``: those whose step is mostly its products (bench's
#: ``planar``, 22,400 FLOP a step, is per-call overhead: a ratio to microseconds of products measures nothing else).
TARGET_NETWORKS = ("cat", "wide")

def _fastest_layout(ways):
    """The layout (of ``LAYOUTS``) whose one-product call is fastest: best of 5 after a warm-up."""
    return fastest_way(ways, 5)[0]


def _numpy(products, dtype):
    return {"NumPy BLAS: np.dot": numpy_products(products, dtype)[0]}


def _torch(products, dtype):
    import torch

    chosen = []
    for _, a, b in operands(products, dtype):
        out = torch.empty((a.shape[0], b.shape[1]), dtype=getattr(torch, dtype))
        ordered = {layout: tuple(torch.from_numpy(np.asarray(x, order=o)) for x, o in zip((a, b), layout))
                   for layout in LAYOUTS}  # a Fortran-order array is a transposed view of a contiguous tensor
        best = _fastest_layout({layout: (lambda A, B: lambda: torch.mm(A, B, out=out))(*pair)
                                for layout, pair in ordered.items()})
        chosen.append((*ordered[best], out))

    def sequence():
        for A, B, out in chosen:
            torch.mm(A, B, out=out)
        return [out for _, _, out in chosen]

    return {"torch.mm": sequence}


def _stored(module, a, b, layout):
    """``a`` and ``b`` as ``module`` arrays, each stored transposed where ``layout`` says F, with the flags."""
    ta, tb = layout[0] == "F", layout[1] == "F"
    return module(a.T.copy() if ta else a), module(b.T.copy() if tb else b), ta, tb


def _tensorflow(products, dtype):
    import tensorflow as tf

    chosen = []
    for _, a, b in operands(products, dtype):  # transpose_a / transpose_b on a stored transpose: no copy in the op
        ordered = {layout: _stored(tf.constant, a, b, layout) for layout in LAYOUTS}
        best = _fastest_layout({layout: (lambda A, B, ta, tb: lambda: tf.linalg.matmul(
            A, B, transpose_a=ta, transpose_b=tb))(*stored) for layout, stored in ordered.items()})
        chosen.append(ordered[best])

    def sequence():
        return [tf.linalg.matmul(A, B, transpose_a=ta, transpose_b=tb) for A, B, ta, tb in chosen]

    return {"tf.linalg.matmul (eager)": sequence, "tf.linalg.matmul (tf.function)": tf.function(sequence)}


def _jax(products, dtype):
    import jax
    import jax.numpy as jnp

    import jax_impl  # noqa: F401  (jax_enable_x64: float64 stays float64)

    def product(A, B, ta, tb):
        return jnp.matmul(A.T if ta else A, B.T if tb else B)

    plain, chosen = [], []
    for _, a, b in operands(products, dtype):
        plain.append((jnp.asarray(a), jnp.asarray(b)))
        ordered = {layout: _stored(jnp.asarray, a, b, layout) for layout in LAYOUTS}
        one = jax.jit(product, static_argnums=(2, 3))
        best = _fastest_layout({layout: (lambda A, B, ta, tb: lambda: jax.block_until_ready(one(A, B, ta, tb)))(
            *stored) for layout, stored in ordered.items()})
        chosen.append(ordered[best])
    flags = tuple(stored[2:] for stored in chosen)
    compiled = jax.jit(lambda pairs: [product(A, B, *f) for (A, B), f in zip(pairs, flags)])
    pairs = [stored[:2] for stored in chosen]
    return {"jnp.matmul (eager)": lambda: jax.block_until_ready([jnp.matmul(A, B) for A, B in plain]),
            "jnp.matmul (jax.jit)": lambda: jax.block_until_ready(compiled(pairs))}


#: Each framework's products: ``(products, dtype) -> {way: a callable that runs them back to back and returns
#: their results}``, the operands made and their layouts chosen once.
FRAMEWORK_PRODUCTS = {"numpy": _numpy, "torch": _torch, "tensorflow": _tensorflow, "jax": _jax}


def products_pass(framework, layer_dims, m, dtype, repeats):
    """One measurement of a dense row's floor: the step's products (``matmul_products(layer_dims, m)``) through
    ``framework``, each of its ways timed (best of ``repeats``, at least 3, after two warm-up runs: tracing,
    compilation), the fastest counting.  Its operands are freed when it returns."""
    if framework not in FRAMEWORK_PRODUCTS:
        known = f"for {framework}" if framework else "for an implementation that names no framework"
        return {"op": f"no matrix products known {known}", "floor_ms": math.nan, "candidates": {}}
    best, timed = fastest_way(FRAMEWORK_PRODUCTS[framework](matmul_products(layer_dims, m), dtype), max(repeats, 3),
                              warmup=2)
    return {"op": best, "floor_ms": min(timed[best]) * 1e3, "candidates": {k: min(t) * 1e3 for k, t in timed.items()}}
