"""``nnparity bench``: how fast each implementation trains, against this machine's limits, in one run.

For each implementation and each standard network (``NETWORKS``) in float32 and
float64, a fresh worker process (``python -m nnparity.bench --worker ...``)
imports the framework, builds the data and trains full-batch for a fixed number
of steps with the implementation's own ``train``: one warm-up call, then
``repeats`` timed calls.  Inside each timed call the end of every step is
stamped through the protocol's callback, ``train(..., on_step=)``, called right after
each step's update, so the steady-state step time leaves out what a call pays once
(converting the arrays, ``tf.function`` tracing at step 0, copying the results back),
which is reported apart (``overhead_ms``).

The limits are measured in the same run, through NumPy's BLAS:

* the **large-GEMM peak** per dtype: ``2048 x 2048 @ 2048 x 2048``, best of several;
* the **matmul floor** of each network and dtype: exactly the matrix products one
  training step needs (``W[l] A[l-1]`` per layer, ``dW[l] = dZ[l] A[l-1].T`` per
  layer, ``dA[l-1] = W[l].T dZ[l]`` for layers 2..L), each in the operand layout the
  BLAS runs fastest (C or Fortran order of each operand, chosen by timing; the
  transposes are made once, outside the timing), run alone and back to back,
  into preallocated outputs; best of several, in a process of its own, at the start
  and at the end of the run (the better of the two counts).  ``matmul_products`` lists them and
  their FLOPs (``2 m n k`` each).

Each dense row's **floor** (``products``) is the same products through the row's own framework (``torch.mm``;
``tf.linalg.matmul`` eager and under ``tf.function``; ``jnp.matmul`` eager and under ``jax.jit``; NumPy's BLAS), on
operands already in the framework, in the row's worker before and after its timed calls: ``x_floor`` is what the
step costs over its framework's own products (issue 22's target: at most ``STEP_TARGET``, 1.3, on ``cat`` and
``wide``); the NumPy floor above stays beside it (``blas_floor_ms``).

The conv row (``--networks conv``, in the default; ``conv``): one ``forward_backward`` of each implementation's
conv module (``Impl.conv_module``; numpy: the vectorised twin, the course's loops once as a one-off line) on the
course's 64x64x3 images, 7x7 conv with 32 filters, pad 3, 2x2 max-pool, against its own framework's conv
primitive (forward and backward) on the same shapes, measured in the same worker: ``x_floor`` is their ratio.

Columns of ``bench.csv`` (one row per implementation x network x dtype): see ``COLUMNS``
and docs/performance.md ("Benchmark").  Suite-level figures (full runs only): the wall
time of ``nnparity report`` on the default grid split into import time (``-X importtime``)
and compute, a run of the same report under ``cProfile`` (in one process, ``--jobs 1``) whose phases are the cumulative
times of named functions (``REPORT_PHASES``: reference training, per-step bounds, captures,
each implementation module's training, comparisons, self-test, catalogue, writing).  Nothing is patched: a phase
whose function is not in the profile (renamed) says so.

``--suite`` (``run_suites``) instead says where the time of the quick report and of make test goes: seconds per
implementation and phase (``nnparity.timing``), from the report's ``timings.csv`` and from the files each pytest
process writes (``NNPARITY_TIMINGS_DIR``), with the JUnit durations per implementation.

Frameworks are imported only by the worker processes.

The package's modules, one seam each: ``networks`` (the standard networks and their data), ``implementations``
(``BENCH_IMPLS``, ``torch-compile``), ``conv`` (the conv row: its step, each framework's conv primitive, the
loops' one-off line), ``noise`` (spread, unreliable), ``limits`` (GEMM peak, matmul floor), ``products`` (each
framework's matrix products of a dense step: the dense rows' floor),
``processes`` (fresh processes: the workers' environment and start, import timing, the machine and its load),
``steps`` (one implementation's step timing, in its worker), ``report_profile`` (the suite-level figures: the
report's wall time and its cProfile phases), ``run`` (``run_bench``: options, table, targets), ``render`` (the
terminal table, the report's table, ``bench.csv`` and ``bench.json``), ``thread_study`` (``--threads``),
``suite`` (``--suite``) and ``worker`` (what a worker process runs; ``__main__`` starts it).  This module
re-exports their names: ``from nnparity import bench`` then ``bench.run_bench(...)`` as before.
"""

from __future__ import annotations

from nnparity.bench.conv import CONV_NETWORKS, FLOORS, ConvNetwork, conv_flops, conv_products, offers_conv
from nnparity.bench.implementations import BENCH_IMPLS, train_torch_compile
from nnparity.bench.limits import GEMM_N, gemm_peak, matmul_floor, matmul_flops, matmul_products, products_floor
from nnparity.bench.networks import DEFAULT_REPEATS, NETWORKS, QUICK_REPEATS, Network, make_data
from nnparity.bench.noise import UNRELIABLE_SPREAD, spread, unreliable
from nnparity.bench.processes import ROOT, SUITE_IMPORTS, _versions, worker_env
from nnparity.bench.render import format_document, format_table, report_table, write_outputs
from nnparity.bench.report_profile import (
    NOT_FOUND,
    REPORT_PHASES,
    _impl_phases,
    harness_overheads,
    profile_phases,
    report_breakdown,
    run_suite,
)
from nnparity.bench.run import COLUMNS, METHOD, NOTES, parse_options, run_bench, targets
from nnparity.bench.steps import _measure_row, _worker_impl
from nnparity.bench.suite import (
    COVERAGE_BEGIN,
    COVERAGE_END,
    README_BEGIN,
    README_END,
    SLOWEST,
    SUITE_CHOICES,
    SUITE_LAST_ROWS,
    SUITE_NOTE,
    SUITE_PHASES,
    SUITES,
    TESTS_COMMAND,
    TESTS_OWN,
    format_suites,
    impl_of_test,
    junit_summary,
    junit_tests,
    parse_suite,
    phase_table,
    readme_block,
    readme_markers,
    run_report_suite,
    run_suites,
    run_tests_suite,
    splice_readme,
    suite_header,
    suite_table,
    tests_rows,
    write_readme,
    write_suite_outputs,
)
from nnparity.bench.thread_study import (
    BUSY_LOOP,
    THREAD_COLUMNS,
    THREAD_IMPLS,
    THREAD_METHOD,
    THREAD_NETWORKS,
    THREAD_SETTINGS,
    bit_identical,
    busy_load,
    compare_runs,
    format_threads,
    max_ulps,
    run_threads,
    thread_case,
    thread_rows,
)
from nnparity.bench.worker import _worker_main

__all__ = [
    "Network", "NETWORKS", "QUICK_REPEATS", "DEFAULT_REPEATS", "make_data", "BENCH_IMPLS", "train_torch_compile",
    "UNRELIABLE_SPREAD", "spread", "unreliable", "GEMM_N", "matmul_products", "matmul_flops", "gemm_peak",
    "matmul_floor", "products_floor", "ConvNetwork", "CONV_NETWORKS", "FLOORS", "conv_flops", "conv_products",
    "offers_conv", "ROOT", "worker_env", "SUITE_IMPORTS", "_versions", "_measure_row", "_worker_impl", "REPORT_PHASES",
    "NOT_FOUND", "_impl_phases", "profile_phases", "run_suite", "report_breakdown", "harness_overheads", "COLUMNS",
    "parse_options", "run_bench", "METHOD", "NOTES", "targets", "format_table", "format_document", "write_outputs",
    "report_table", "THREAD_IMPLS", "THREAD_SETTINGS", "THREAD_NETWORKS", "THREAD_COLUMNS", "BUSY_LOOP", "thread_case",
    "busy_load", "bit_identical", "max_ulps", "compare_runs", "thread_rows", "run_threads", "THREAD_METHOD",
    "format_threads", "SUITES", "SUITE_CHOICES", "SUITE_PHASES", "SUITE_LAST_ROWS", "TESTS_COMMAND", "SLOWEST",
    "parse_suite", "run_report_suite", "impl_of_test", "junit_tests", "junit_summary", "run_tests_suite", "run_suites",
    "phase_table", "suite_table", "suite_header", "SUITE_NOTE", "format_suites", "write_suite_outputs", "_worker_main",
    "README_BEGIN", "README_END", "readme_block", "readme_markers", "splice_readme", "write_readme",
    "TESTS_OWN", "tests_rows", "COVERAGE_BEGIN", "COVERAGE_END",
]
