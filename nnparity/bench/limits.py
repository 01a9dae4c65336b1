"""This machine's limits through NumPy's BLAS: the large-GEMM peak and the matmul floor of each network
(the ``limits`` worker), and the better of a run's two measurements of them."""

from __future__ import annotations

import statistics
import time

import numpy as np

from nnparity.bench.networks import NETWORKS
from nnparity.bench.processes import _progress

GEMM_N = 2048


def matmul_products(layer_dims, m):
    """The matrix products of one full-batch training step, in the order the step computes them.

    Each is ``(name, rows, inner, cols)``: ``rows x inner`` times ``inner x cols``, ``2 rows inner cols``
    FLOPs.  Forward ``W[l] A[l-1]`` for l = 1..L; backward, for l = L..1, ``dZ[l] A[l-1].T`` (dW) and,
    for l >= 2, ``W[l].T dZ[l]`` (dA[l-1]).
    """
    n, L = list(layer_dims), len(layer_dims) - 1
    A = lambda l: "X" if l == 0 else f"A{l}"  # noqa: E731  (A[0] is X)
    products = [(f"W{l}·{A(l - 1)}", n[l], n[l - 1], m) for l in range(1, L + 1)]
    for l in range(L, 0, -1):
        products.append((f"dZ{l}·{A(l - 1)}.T", n[l], m, n[l - 1]))
        if l > 1:
            products.append((f"W{l}.T·dZ{l}", n[l - 1], n[l], m))
    return products


def matmul_flops(layer_dims, m) -> int:
    """FLOPs of the matrix products of one training step (``2 rows inner cols`` each)."""
    return sum(2 * r * k * c for _, r, k, c in matmul_products(layer_dims, m))


def _times(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fastest_way(ways, repeats, warmup=1):
    """Time each of ``ways`` (``{label: callable}``; ``warmup`` untimed calls first, then ``repeats`` timed ones):
    the label of the fastest by its best time, and every way's times in seconds."""
    timed = {label: _times(run, repeats, warmup) for label, run in ways.items()}
    return min(timed, key=lambda label: min(timed[label])), timed


def gemm_peak(dtype, n=GEMM_N, repeats=5):
    """Best GFLOP/s of ``n x n @ n x n`` through NumPy's BLAS (preallocated output)."""
    rng = np.random.RandomState(0)
    a, b = rng.rand(n, n).astype(dtype), rng.rand(n, n).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    times = _times(lambda: np.dot(a, b, out=c), repeats)
    return {"dtype": dtype, "n": n, "best_s": min(times), "median_s": statistics.median(times),
            "gflops": 2 * n**3 / min(times) / 1e9}


#: The operand layouts a product is timed in: C or Fortran order of the first and of the second operand (a
#: transpose made once, outside the timing).
LAYOUTS = ("CC", "CF", "FC", "FF")


def operands(products, dtype):
    """Each product's two operands as NumPy arrays of ``dtype`` (uniform in [0, 1), seed 0), in order:
    ``(name, a, b)``."""
    rng = np.random.RandomState(0)
    return [(name, rng.rand(r, k).astype(dtype), rng.rand(k, c).astype(dtype)) for name, r, k, c in products]


def numpy_products(products, dtype):
    """``products`` (``(name, rows, inner, cols)`` each) through NumPy's BLAS, each with its operands in the order
    (C or Fortran: a transpose made once) the BLAS runs fastest, into preallocated outputs.  Returns the sequence
    (a callable that runs them back to back and returns the outputs) and, per product, the layout chosen
    (``CF``: first operand C order, second Fortran order) and its time."""
    chosen, details = [], []
    for (name, a, b), (_, r, k, c) in zip(operands(products, dtype), products):
        out = np.empty((r, c), dtype=dtype)
        ordered = {layout: (np.asarray(a, order=layout[0]), np.asarray(b, order=layout[1]))
                   for layout in LAYOUTS}
        best, timed = fastest_way({layout: (lambda aa, bb: lambda: np.dot(aa, bb, out=out))(*pair)
                                   for layout, pair in ordered.items()}, 5)
        chosen.append((*ordered[best], out))
        details.append({"product": name, "shape": f"{r}x{k} @ {k}x{c}", "gflop": 2 * r * k * c / 1e9,
                        "layout": best, "best_ms": min(timed[best]) * 1e3})

    def sequence():
        for aa, bb, out in chosen:
            np.dot(aa, bb, out=out)
        return [out for _, _, out in chosen]

    return sequence, details


def products_floor(products, dtype, repeats=20):
    """Time ``products`` through NumPy's BLAS (``numpy_products``: each in its fastest operand layout), back to back.

    Returns the floor (best of ``repeats`` back-to-back sequences), the median, the FLOPs and, per product, the
    chosen layout and its time."""
    sequence, details = numpy_products(products, dtype)
    times = _times(sequence, repeats, warmup=2)
    flops = sum(2 * r * k * c for _, r, k, c in products)
    return {"flops": flops, "floor_ms": min(times) * 1e3, "floor_median_ms": statistics.median(times) * 1e3,
            "floor_gflops": flops / min(times) / 1e9, "products": details}


def matmul_floor(layer_dims, m, dtype, repeats=20):
    """Time exactly the products of one step (``matmul_products``), each in its fastest operand layout, back to
    back (``products_floor``): the floor, the median, the FLOPs and each product's layout and time."""
    floor = products_floor(matmul_products(layer_dims, m), dtype, repeats)
    return {"layer_dims": list(layer_dims), "m": m, "dtype": dtype, **floor}


def _worker_limits(spec):
    result = {"gemm_peak": {}, "floors": []}
    for dtype in spec["dtypes"]:
        result["gemm_peak"][dtype] = gemm_peak(dtype, repeats=3 if spec["quick"] else 5)
        _progress(f"GEMM peak {dtype}: {result['gemm_peak'][dtype]['gflops']:.1f} GFLOP/s")
        for name in spec["networks"]:
            network = NETWORKS[name]
            floor = matmul_floor(network.layer_dims, network.m, dtype, repeats=10 if spec["quick"] else 30)
            floor["network"] = name
            result["floors"].append(floor)
            _progress(f"matmul floor {name} {dtype}: {floor['floor_ms']:.3f} ms ({floor['floor_gflops']:.1f} GFLOP/s)")
    try:
        from threadpoolctl import threadpool_info

        result["threadpools"] = threadpool_info()
    except Exception as exc:  # pragma: no cover - threadpoolctl is a dependency
        result["threadpools"] = str(exc)
    return result


def _better_limits(first, second):
    """The limits measured at the start and at the end of a run: per dtype and network, the better of the two
    (a peak or a floor is a best case), both kept in ``runs``."""
    out = {"gemm_peak": {}, "floors": [], "threadpools": first.get("threadpools"), "runs": [first, second]}
    for dtype, peak in first["gemm_peak"].items():
        out["gemm_peak"][dtype] = max(peak, second["gemm_peak"][dtype], key=lambda p: p["gflops"])
    later = {(f["network"], f["dtype"]): f for f in second["floors"]}
    for f in first["floors"]:
        out["floors"].append(min(f, later[(f["network"], f["dtype"])], key=lambda g: g["floor_ms"]))
    return out
