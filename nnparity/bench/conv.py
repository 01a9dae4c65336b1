"""The conv row (``--networks conv``): the course's cat-sized conv step, each implementation's conv module against
its own framework's conv primitive, in the implementation's worker.

The step (``CONV_NETWORKS``): one ``forward_backward`` of the conv contract (``nnparity.convspec``) on the course's
64x64x3 images, the happy model's conv layer (7x7, 32 filters, stride 1, pad 3) then a 2x2 max-pool (stride 2),
and back with an upstream gradient: NumPy in and out, as the harness calls it.  ``numpy`` runs the vectorised
twin (``reference.conv_vectorised``); the course's loops (``reference.conv``) are timed once, on one example, in
the numpy worker (``loops_once``): a one-off line, not a row.

The floor of a row is its framework's own conv primitive on the same shapes, forward and backward (``dA_prev``
and ``dW`` from a given ``dZ``), the tensors already in the framework, in the layout its conv module computes in
(``FLOORS``): torch ``F.conv2d`` and ``torch.autograd.grad``; ``tf.nn.conv2d`` and ``GradientTape.gradient``,
eager and under ``tf.function``; ``lax.conv_general_dilated`` and ``jax.vjp``, eager and under ``jax.jit``; for
NumPy the convolution's three products as im2col GEMMs through the BLAS (the window matrix gathered once, outside
the timing, each product in its fastest layout: ``limits.products_floor``).  No pooling, no bias, no conversion:
what the row's step adds to the primitive is its ratio ``x_floor``.  The floor is measured in the row's own
worker, before and after the implementation's timed calls (the better pass counts, both kept), so that the
ratio's two timings share the process, its thread pools and the moment's load.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

from nnparity.bench.limits import _times, fastest_way, products_floor
from nnparity.convspec import ConvCase, inputs


@dataclass(frozen=True)
class ConvNetwork:
    name: str
    case: ConvCase  # its dtype is replaced by the row's
    description: str

    def shape(self) -> str:
        """The ``layer_dims`` column of a conv row: the images, the conv layer and the pooling."""
        c = self.case
        return (f"{c.n_H_prev}x{c.n_W_prev}x{c.n_C_prev} conv {c.f}x{c.f}x{c.n_C} s{c.stride} p{c.pad} "
                f"{c.mode}-pool {c.pool_f}x{c.pool_f} s{c.pool_stride}")


CONV_NETWORKS = {
    "conv": ConvNetwork("conv", ConvCase(m=16, n_H_prev=64, n_W_prev=64, n_C_prev=3, f=7, n_C=32, stride=1, pad=3,
                                         pool_f=2, pool_stride=2, mode="max"),
                        "the course's conv step on 16 random 64x64x3 'images': the happy model's 7x7 conv, 32 "
                        "filters, stride 1, pad 3, then a 2x2 max-pool, forward and backward (one forward_backward "
                        "of the conv contract)"),
}

#: How a conv row is timed (its ``timing`` column).
CONV_TIMING = "one forward_backward per timed call, NumPy in and out"


def conv_products(case: ConvCase):
    """The convolution's products as im2col GEMMs, ``(name, rows, inner, cols)`` each: with ``M = m n_H n_W``
    windows of ``K = f f n_C_prev`` cells and ``N = n_C`` filters, forward ``cols·W`` (M x K @ K x N), then
    ``dW = cols.T·dZ`` (K x M @ M x N) and ``dcols = dZ·W.T`` (M x N @ N x K, scattered back into dA_prev)."""
    M, K, N = case.m * case.n_H * case.n_W, case.f * case.f * case.n_C_prev, case.n_C
    return [("cols·W", M, K, N), ("cols.T·dZ", K, M, N), ("dZ·W.T", M, N, K)]


def conv_flops(case: ConvCase) -> int:
    """FLOPs of the convolution's forward and backward (``2 M K N`` for each of ``conv_products``); the pooling
    and the bias are not counted."""
    return sum(2 * r * k * c for _, r, k, c in conv_products(case))


def offers_conv(name: str) -> bool:
    """Whether bench times ``name``'s conv layers: a registry implementation with a conv module."""
    from nnparity import impls

    return getattr(impls.REGISTRY.get(name), "offers_conv", False)


def _runner(impl):
    """The conv chain a row times, and the module it comes from: ``numpy`` runs the vectorised twin."""
    if impl.name == "numpy":
        from reference import conv_vectorised

        return conv_vectorised.forward_backward, "reference.conv_vectorised"
    impl._load(impl.conv_module)  # imported here, not inside the warm-up call
    return impl.conv_forward_backward, impl.conv_module


# --------------------------------------------------------------------------- each framework's primitive


def _upstream(case):
    """dZ for the primitive: N(0, 1) of Z's shape, in the case's dtype (seed fixed)."""
    return np.random.RandomState(case.seed + 2).randn(*case.shapes()["Z"]).astype(case.dtype)


def _floor_torch(case, x, dZ):
    import torch
    import torch.nn.functional as F

    A = torch.from_numpy(x["A_prev"]).permute(0, 3, 1, 2).contiguous().requires_grad_()  # NCHW, torch's layout
    W = torch.from_numpy(x["W"]).permute(3, 2, 0, 1).contiguous().requires_grad_()  # OIHW
    dZ = torch.from_numpy(dZ).permute(0, 3, 1, 2).contiguous()

    def step():
        Z = F.conv2d(A, W, stride=case.stride, padding=case.pad)
        return Z, torch.autograd.grad(Z, (A, W), grad_outputs=dZ)

    return {"torch F.conv2d + autograd.grad": step}


def _floor_tensorflow(case, x, dZ):
    import tensorflow as tf

    A, W, dZ = (tf.constant(v) for v in (x["A_prev"], x["W"], dZ))  # NHWC and HWIO, TensorFlow's layout
    padding = [[0, 0], [case.pad, case.pad], [case.pad, case.pad], [0, 0]]

    def chain(A, W, dZ):
        with tf.GradientTape() as tape:
            tape.watch([A, W])
            Z = tf.nn.conv2d(A, W, strides=case.stride, padding=padding)
        return Z, tape.gradient(Z, [A, W], output_gradients=dZ)

    compiled = tf.function(chain)
    return {"tf.nn.conv2d + GradientTape (eager)": lambda: chain(A, W, dZ),
            "tf.nn.conv2d + GradientTape (tf.function)": lambda: compiled(A, W, dZ)}


def _floor_jax(case, x, dZ):
    import jax
    from jax import lax

    import jax_impl  # noqa: F401  (jax_enable_x64: float64 stays float64)

    A, W, dZ = (jax.numpy.asarray(v) for v in (x["A_prev"], x["W"], dZ))

    def chain(A, W, dZ):
        Z, vjp = jax.vjp(lambda A, W: lax.conv_general_dilated(
            A, W, window_strides=(case.stride, case.stride), padding=((case.pad, case.pad), (case.pad, case.pad)),
            dimension_numbers=("NHWC", "HWIO", "NHWC")), A, W)
        return Z, vjp(dZ)

    compiled = jax.jit(chain)
    return {"lax.conv_general_dilated + jax.vjp (eager)": lambda: jax.block_until_ready(chain(A, W, dZ)),
            "lax.conv_general_dilated + jax.vjp (jax.jit)": lambda: jax.block_until_ready(compiled(A, W, dZ))}


#: Each framework's primitive: ``(case, inputs, dZ) -> {label: one forward and backward}``.
FLOORS = {"torch": _floor_torch, "tensorflow": _floor_tensorflow, "jax": _floor_jax}
NUMPY_FLOOR = "NumPy BLAS: the conv's 3 products as im2col GEMMs"


def _floor_pass(framework, case, repeats):
    """One measurement of the floor: the best of ``repeats`` runs of each way of running the primitive (after a
    warm-up run: tracing, compilation), the best way counting.  Its arrays are freed when it returns."""
    if framework == "numpy":
        floor = products_floor(conv_products(case), case.dtype, repeats=max(repeats, 3))
        return {"op": NUMPY_FLOOR, "floor_ms": floor["floor_ms"], "floor_median_ms": floor["floor_median_ms"],
                "candidates": {NUMPY_FLOOR: floor["floor_ms"]}, "products": floor["products"]}
    if framework not in FLOORS:
        return {"op": f"no conv primitive known for {framework}", "floor_ms": math.nan,
                "floor_median_ms": math.nan, "candidates": {}}
    best, timed = fastest_way(FLOORS[framework](case, inputs(case), _upstream(case)), max(repeats, 3))
    return {"op": best, "floor_ms": min(timed[best]) * 1e3, "floor_median_ms": statistics.median(timed[best]) * 1e3,
            "candidates": {label: min(times) * 1e3 for label, times in timed.items()}}


def measure_conv_row(impl, network, dtype, repeats, memory):
    """Time ``impl``'s conv chain on ``network`` in ``dtype``: one warm-up call, then ``repeats`` timed calls
    (the median, min and max), between two passes of the framework's primitive (``_floor_pass``; the better
    counts).  ``memory`` is ``(reset_peak, rss, maxrss)`` of the worker (``steps``).  Returns the row and the
    floor's details."""
    reset_peak, rss, maxrss = memory
    case = network.case.replace(dtype=dtype)
    row = {"network": network.name, "dtype": dtype, "impl": impl.name, "steps": 1, "repeats": repeats,
           "timing": CONV_TIMING}
    floor = {"network": network.name, "dtype": dtype, "impl": impl.name, "framework": impl.framework}
    reset = False
    try:
        run, module = _runner(impl)
        row["note"] = f"conv: {module}" + (" (the loops: a one-off line)" if impl.name == "numpy" else "")
        floor["before"] = _floor_pass(impl.framework, case, repeats)
        x = inputs(case)
        gc.collect()
        reset, row["rss_before"] = reset_peak(), rss()
        t = time.perf_counter()
        run(x["A_prev"], x["W"], x["b"], x["dA"], case)  # warm-up: tracing, compilation, lazy set-up
        row["first_call_s"] = time.perf_counter() - t
        times = []
        for _ in range(repeats):
            gc.collect()
            t = time.perf_counter()
            run(x["A_prev"], x["W"], x["b"], x["dA"], case)
            times.append(time.perf_counter() - t)
        row["peak_rss_mib"] = maxrss() if reset else math.nan
        del x
        floor["after"] = _floor_pass(impl.framework, case, repeats)
        better = min(floor["before"], floor["after"], key=lambda p: p["floor_ms"] if math.isfinite(p["floor_ms"])
                     else math.inf)
        floor.update(op=better["op"], floor_ms=better["floor_ms"])
        row.update(status="ok", step_ms=statistics.median(times) * 1e3, step_ms_min=min(times) * 1e3,
                   step_ms_max=max(times) * 1e3, floor_ms=better["floor_ms"], floor_op=better["op"])
    except Exception as exc:  # a framework that cannot import or cannot run this case
        reason = str(exc).splitlines()[0] if str(exc) else ""
        row["status"] = f"unavailable: {type(exc).__name__}: {reason}"[:300]
        floor["error"] = row["status"]
    if "peak_rss_mib" not in row:
        row["peak_rss_mib"] = maxrss() if reset else math.nan
    row["rss_increase_mib"] = row["peak_rss_mib"] - row.pop("rss_before", math.nan)
    return row, floor


def loops_once(network, dtype):
    """The course's loops (``reference.conv``), once, on one example of ``network``'s shape, and the vectorised
    twin on the same call (best of 3): the one-off line of the conv row."""
    from reference import conv, conv_vectorised

    case = network.case.replace(dtype=dtype, m=1)
    x = inputs(case)
    args = (x["A_prev"], x["W"], x["b"], x["dA"], case)
    t = time.perf_counter()
    conv.forward_backward(*args)
    loops = time.perf_counter() - t
    vectorised = min(_times(lambda: conv_vectorised.forward_backward(*args), 3))
    return {"network": network.name, "case": case.name, "m": 1, "dtype": dtype, "loops_s": loops,
            "vectorised_s": vectorised, "x_vectorised": loops / vectorised}
