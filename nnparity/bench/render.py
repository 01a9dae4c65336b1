"""The benchmark's output: the terminal table and text, the parity report's "Benchmark" table, and the
files (``bench.csv`` and ``bench.json``; ``threads.*`` for ``--threads``)."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

from nnparity.bench.noise import UNRELIABLE_SPREAD
from nnparity.bench.products import STEP_TARGET, TARGET_NETWORKS
from nnparity.bench.report_profile import NOT_FOUND, harness_overheads, report_breakdown
from nnparity.numbers import jsonable, number

#: A table cell: ``format(x, spec)``, empty for a missing value (``nnparity.numbers.number``).
_fmt = partial(number, nan="")


def format_table(table) -> str:
    """The terminal table: one line per implementation x network x dtype."""
    import pandas as pd

    shown = pd.DataFrame({
        "network": table["network"], "dtype": table["dtype"], "impl": table["impl"],
        "step ms (min-max)": [f"{_fmt(s, '.3f')} ({_fmt(a, '.3f')}-{_fmt(b, '.3f')})" if st == "ok" else st[:60]
                              for s, a, b, st in zip(table["step_ms"], table["step_ms_min"], table["step_ms_max"],
                                                     table["status"])],
        "GFLOP/s": table["gflops"].map(lambda x: _fmt(x, ".1f")),
        "%peak": table["peak_fraction"].map(lambda x: _fmt(100 * x, ".0f")),
        "spread": table["spread"].map(lambda x: _fmt(100 * x, ".0f") + "%" if math.isfinite(x) else ""),
        "floor ms": table["floor_ms"].map(lambda x: _fmt(x, ".3f")),
        "x floor": table["x_floor"].map(lambda x: _fmt(x, ".2f")),
        "x fastest": table["x_fastest"].map(lambda x: _fmt(x, ".2f")),
        "noise": table["unreliable"].map(lambda u: "unreliable" if u else ""),
        "overhead ms": table["overhead_ms"].map(lambda x: _fmt(x, ".1f")),
        "capture ms": table["capture_ms"].map(lambda x: _fmt(x, ".2f")),
        "peak RSS MiB": table["peak_rss_mib"].map(lambda x: _fmt(x, ".0f")),
    })
    return shown.to_string(index=False)


def format_document(document, table) -> str:
    meta = document["meta"]
    machine, busy = meta["machine"], meta["other_running_processes_at_start"]
    load = machine.get("load_average") or [math.nan]
    end = (meta.get("load_average_end") or [math.nan])[0]
    lines = [f"{machine['cpu_model']}, {machine['cpus']} CPUs, threads: {meta['threads']}; load average "
             f"{load[0]:.2f} at start, {end:.2f} at end"
             + (f"; {len(busy)} other processes were running at start: timings are noisy" if busy else ""), "",
             format_table(table),
             f"spread: (max - min) / median over the repetitions; unreliable: a spread over {UNRELIABLE_SPREAD:.0%} "
             f"or a load average at start above the {machine['cpus']} cores (x floor and x fastest of that row)", ""]
    lines += _product_lines(document.get("product_floors"))
    limits = document["limits"]
    lines.append("limits (NumPy BLAS, a process of its own): " + ", ".join(
        f"GEMM {p['n']}^3 {d} {p['gflops']:.1f} GFLOP/s" for d, p in limits["gemm_peak"].items()))
    for f in limits["floors"]:
        lines.append(f"  matmul floor {f['network']:<6} {f['dtype']}: {f['floor_ms']:.3f} ms for "
                     f"{f['flops'] / 1e9:.4f} GFLOP ({f['floor_gflops']:.1f} GFLOP/s; blas_floor_ms in bench.csv)")
    lines += _conv_lines(document.get("conv"))
    suite = document.get("suite")
    if suite:
        lines.append("")
        lines.append("imports (fresh interpreter, each alone): " + ", ".join(
            f"{k.replace('import ', '')} {v:.2f} s" for k, v in suite["imports"].items() if v is not None))
        for key, label in (("report", "nnparity report (default grid)"),):
            if key in suite:
                r = suite[key]
                lines.append(f"{label}: {r['wall_s']:.1f} s wall = {r['import_s']:.1f} s imports + "
                             f"{r['compute_s']:.1f} s the rest (exit {r['exit_code']})")
        profile = suite.get("report_profile")
        if profile and "phases" in profile:
            main = profile["report_main_s"]
            lines.append(f"report under cProfile: {main:.1f} s in main() (+ {profile['startup_s']:.1f} s start-up "
                         "imports); cumulative time of named functions (phases nest, so they overlap):")
            for what, seconds in report_breakdown(profile):
                lines.append(f"  {NOT_FOUND}  {what}" if seconds is None
                             else f"  {seconds:7.1f} s {100 * seconds / main:5.1f}%  {what}")
            for name, o in harness_overheads(profile).items():
                lines.append(f"  {name}: captures {100 * o['capture_overhead']:.1f}% of training" if name != "numpy"
                             else f"  numpy: run_reference's extra work (captures, bounds, per-step bounds) "
                                  f"{100 * o['run_reference_overhead']:.0f}% of its plain training loop")
    if document.get("targets"):
        lines.append("")
        lines.append("targets:")
        for t in document["targets"]:
            verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
            value = "n/a" if t["measured"] is None else f"{t['measured']:.3g}"
            noise = f"; unreliable: {t['unreliable']}" if t.get("unreliable") else ""
            lines.append(f"  {verdict:>12}  {t['target']}: {value} (limit {t['limit']:g}{noise})")
    return "\n".join(lines)


def _product_lines(floors) -> list:
    """What the dense rows' floors timed: each framework's way of running the step's products (the faster of its
    ways, per row: floor_op in bench.csv)."""
    if not floors:
        return []
    return [f"dense rows' floor: the step's matrix products through the row's own framework, in its worker, before "
            f"and after its timed calls (x floor: at most {STEP_TARGET} on {' and '.join(TARGET_NETWORKS)})"] + [
        f"  floor {framework}: {'; '.join(sorted(labels))}" for framework, labels in _ops(floors).items()] + [""]


def _ops(floors) -> dict:
    """``{framework: the ways its floors took}`` of a run's floor records (those that have an ``op``)."""
    ops = {}
    for f in floors:
        if "op" in f:
            ops.setdefault(f["framework"], set()).add(f["op"])
    return ops


def _conv_lines(conv) -> list:
    """The conv row's case, what its floors are, and the loops' one-off line."""
    if not conv:
        return []
    lines = []
    for name, meta in conv["networks"].items():
        lines.append(f"{name}: {meta['shape']}, m = {meta['m']}, {meta['gflop']:.3f} GFLOP a step; floor: the "
                     "framework's own conv primitive, forward + backward, in the row's worker (floor_op in bench.csv)")
    for framework, labels in _ops(conv["floors"]).items():
        lines.append(f"  floor {framework}: {'; '.join(sorted(labels))}")
    loops = conv.get("loops")
    if loops and "error" in loops:
        lines.append(f"  numpy loops (reference.conv): not timed ({loops['error']})")
    elif loops:
        lines.append(f"  numpy loops (reference.conv), one call on {loops['m']} example, {loops['dtype']}: "
                     f"{loops['loops_s']:.2f} s, {loops['x_vectorised']:.0f} x the vectorised twin on that call "
                     f"({1e3 * loops['vectorised_s']:.1f} ms)")
    return lines


def write_outputs(document, table, out_dir, force=False, stem="bench") -> Path:
    """``bench.csv`` and ``bench.json`` (``--threads``: ``threads.csv``, ``threads.json``) into ``out_dir``,
    atomically (a temporary sibling renamed into place)."""
    from nnparity.outdir import atomic_directory

    with atomic_directory(out_dir, force, "benchmark", prefix=".tmp-bench-") as tmp:
        table.to_csv(tmp / f"{stem}.csv", index=False)
        (tmp / f"{stem}.json").write_text(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n",
                                        encoding="utf-8")
    return Path(out_dir)


def report_table(table):
    """The columns of the parity report's "Benchmark" section, formatted."""
    import pandas as pd

    return pd.DataFrame({
        "network": table["network"], "dtype": table["dtype"], "impl": table["impl"],
        "step ms": table["step_ms"].map(lambda x: _fmt(x, ".3f")),
        "min-max": [f"{_fmt(a, '.3f')}-{_fmt(b, '.3f')}" for a, b in zip(table["step_ms_min"], table["step_ms_max"])],
        "GFLOP/s": table["gflops"].map(lambda x: _fmt(x, ".1f")),
        "% peak": table["peak_fraction"].map(lambda x: _fmt(100 * x, ".0f")),
        "× floor": table["x_floor"].map(lambda x: _fmt(x, ".2f")),
        "× fastest": table["x_fastest"].map(lambda x: _fmt(x, ".2f")),
        "spread": table["spread"].map(lambda x: _fmt(100 * x, ".0f") + "%" if math.isfinite(x) else ""),
        "noise": table["unreliable"].map(lambda u: "unreliable" if u else ""),
        "peak RSS MiB": table["peak_rss_mib"].map(lambda x: _fmt(x, ".0f")),
        "status": table["status"],
    })
