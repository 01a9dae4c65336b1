"""Trajectory drift: how the difference between an implementation and the reference grows with the step.

Every implementation starts from the same parameters and consumes the same
mini-batches, so at step 0 the costs differ only by one forward pass's
rounding.  Each update carries the difference forward; in a contractive descent
it stays at the rounding level, in an expansive phase (a large learning rate, a
saddle, a relu unit switching off) it grows until the trajectories split.  The
**divergence horizon** of a pair is the first step whose cost difference leaves
its tolerance (float64: 1e-10 relative; float32: the rounding bound of that
step's forward pass, which from step 2 on is measured as drift rather than
gated), or "none within N steps".

A conv case (``nnparity.convspec``) is one pass, conv and pool and back: it has no steps to drift over.
``conv_table`` reports, per (case, implementation), the chain's bound ratio to the reference, and how far the
chain itself moves: run to run in this process, and in a fresh process at each thread count of ``CONV_THREADS``
(``NNPARITY_THREADS=N``), each against this process's first run, as ``identical`` or the largest ulp distance
and its size relative to the reference's rounding bound.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

CHECKPOINTS = (1, 10, 100, 1000, 10000)


def horizon_table(details: pd.DataFrame) -> pd.DataFrame:
    """One row per (case, impl): relative cost difference at checkpoint steps, the largest, and the horizon."""
    traj = details[(details["phase"] == "trajectory") & details["step"].notna()]
    rows = []
    for (case, impl), group in traj.groupby(["case", "impl"], sort=False):
        group = group.sort_values("step")
        steps = group["step"].to_numpy(dtype=np.int64)
        rel = group["max_rel_err"].to_numpy(dtype=np.float64)
        beyond = ~group["passed"].to_numpy(dtype=bool)
        if "classification" in group:  # float32 after step 1: beyond the one-pass bound is drift, not failure
            beyond |= (group["classification"] == "drifted").to_numpy()
        failing = np.flatnonzero(beyond)
        row = {"case": case, "impl": impl, "dtype": group["dtype"].iloc[0], "steps": int(steps.size)}
        for checkpoint in CHECKPOINTS:
            row[f"rel_err_step_{checkpoint}"] = float(rel[checkpoint]) if checkpoint < steps.size else np.nan
        row["rel_err_last_step"] = float(rel[-1]) if rel.size else np.nan
        row["max_rel_err"] = float(np.max(rel)) if rel.size else np.nan
        row["horizon"] = int(steps[failing[0]]) if failing.size else None
        row["horizon_text"] = (f"step {row['horizon']}" if failing.size else f"none within {steps.size} steps")
        rows.append(row)
    table = pd.DataFrame(rows)
    unused = [c for c in table.columns if c.startswith("rel_err_step_") and table[c].isna().all()]
    return table.drop(columns=unused)


def growth(details: pd.DataFrame) -> pd.DataFrame:
    """The per-step relative cost difference, wide: one column per (case, impl); for plots and CSV."""
    traj = details[details["phase"] == "trajectory"]
    return traj.pivot_table(index="step", columns=["case", "impl"], values="max_rel_err", aggfunc="max")


# --------------------------------------------------------------------------- the conv grid

#: The thread counts the conv drift runs each implementation's chains at, each in a fresh worker process (a pool
#: is sized when its library loads): ``NNPARITY_THREADS=N`` for every framework (``nnparity.threads``).
CONV_THREADS = (1, 2)
CONV_REPEATS = 3


def _conv_run(case, name, given) -> dict:
    from nnparity import impls

    impl = impls.get(name)
    if not getattr(impl, "offers_conv", False):
        raise NotImplementedError(f"{name} has no conv layers (Impl.conv_module)")
    return impl.conv_forward_backward(given["A_prev"], given["W"], given["b"], given["dA"], case)


def _variation(runs: list[dict], first: dict, bounds: dict, dtype: str) -> dict:
    """How far ``runs`` (chains' outputs) are from ``first``, over every quantity: the largest ulp distance, the
    largest difference relative to the reference's bound (``max |x - x_first| / 2B``) and the quantity with the
    largest ulp distance (None where every run is identical)."""
    from nnparity.metrics import bound_ratio, max_ulp

    worst_ulp, worst_ratio, where = 0.0, 0.0, None
    for run in runs:
        for key, value in first.items():
            ulp = max_ulp(run[key], value, dtype)
            if ulp > worst_ulp:
                worst_ulp, where = ulp, key
            worst_ratio = max(worst_ratio, bound_ratio(run[key], value, bounds[key]))
    return {"max_ulp": worst_ulp, "bound_ratio": worst_ratio, "quantity": where}


def _describe(variation) -> str:
    """``identical`` or ``3 ulp (dW), 0.01 of the bound``."""
    if variation is None:
        return "n/a"
    if isinstance(variation, str):
        return variation
    if variation["max_ulp"] == 0:
        return "identical"
    return f"{variation['max_ulp']:.3g} ulp ({variation['quantity']}), {variation['bound_ratio']:.2g} of the bound"


def _conv_worker(spec_path: str, out_path: str) -> None:
    """A fresh process's chains: every (case, implementation) of the spec, saved to ``out_path`` (npz), with the
    thread counts the frameworks report and the errors in ``out_path + '.json'``."""
    import json
    import sys

    from nnparity.convspec import ConvCase, inputs

    spec = json.loads(open(spec_path, encoding="utf-8").read())
    arrays, errors = {}, {}
    for i, fields in enumerate(spec["cases"]):
        case = ConvCase(**fields)
        given = inputs(case)
        for name in spec["impls"]:
            try:
                for key, value in _conv_run(case, name, given).items():
                    arrays[f"{i}|{name}|{key}"] = np.asarray(value)
            except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
                errors[f"{i}|{name}"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
    np.savez(out_path, **arrays)
    threads = {}
    if "torch" in sys.modules:
        threads["torch"] = sys.modules["torch"].get_num_threads()
    with open(out_path + ".json", "w", encoding="utf-8") as f:
        json.dump({"errors": errors, "threads": threads}, f)


def _start_workers(cases, names, counts, tmp) -> dict:
    """Start a fresh process per thread count of ``counts`` (files in the folder ``tmp``), side by side: each runs
    every chain of ``cases`` x ``names`` (a result does not depend on the load beside it).  ``_collect`` waits."""
    import dataclasses
    import json
    import os
    import subprocess
    import sys

    from nnparity.bench.processes import ROOT, worker_env

    code = "import sys; from nnparity.drift import _conv_worker; _conv_worker(sys.argv[1], sys.argv[2])"
    spec_path = os.path.join(tmp, "spec.json")
    fields = [{k: v for k, v in dataclasses.asdict(case).items() if k != "name"} for case in cases]
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump({"cases": fields, "impls": list(names)}, f)
    started = {}
    for count in counts:
        out = os.path.join(tmp, f"chains-{count}.npz")
        started[count] = (out, subprocess.Popen([sys.executable, "-c", code, spec_path, out], cwd=ROOT,
                                                env=worker_env(count), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    return started


def _collect(started, count, cases, names, timeout: float = 1800) -> tuple[dict, dict, dict]:
    """The worker of ``count`` threads, once it ends: ``(arrays by (case index, name), errors by (case index,
    name), the thread counts it reports)``; a worker that fails gives every pair its error."""
    import json
    import os
    import subprocess

    out, proc = started[count]
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    if proc.returncode != 0 or not os.path.exists(out + ".json"):
        last = next((t for t in reversed(stderr.splitlines()) if t.strip()), f"exit {proc.returncode}")
        problem = f"worker at {count} threads failed: {last.strip()[:200]}"
        return {}, {(i, n): problem for i in range(len(cases)) for n in names}, {}
    arrays: dict = {}
    with np.load(out) as saved:
        for key in saved.files:
            i, name, quantity = key.split("|")
            arrays.setdefault((int(i), name), {})[quantity] = saved[key]
    with open(out + ".json", encoding="utf-8") as f:
        meta = json.load(f)
    errors = {(int(k.split("|")[0]), k.split("|")[1]): v for k, v in meta["errors"].items()}
    return arrays, errors, meta["threads"]


def conv_table(cases, names, repeats: int = CONV_REPEATS, threads=CONV_THREADS, bar=None) -> pd.DataFrame:
    """The conv grid's drift: one row per (case, implementation).  A conv case is one pass (conv, pool and back),
    so there are no steps to drift over; what varies is the chain itself.  Columns: its distance to the reference
    (``vs_reference``: the largest bound ratio over ``QUANTITIES`` and where, as the parity report has it); run to
    run (``repeats``: the chain ``repeats`` more times in this process against its first run); thread count
    (``threads_N``: the chain in a fresh process at N threads, ``NNPARITY_THREADS=N``, against this process's first
    run).  Each reads ``identical`` or ``<ulp> ulp (<quantity>), <r> of the bound``: the largest ulp distance and
    the largest difference relative to the reference's rounding bound (``max |x - x_first| / 2B``), over every
    quantity.  ``attrs['threads']``: the thread counts this process's and each worker's frameworks reported
    (torch's; the others size their pools from the same variables at start-up)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nnparity-drift-") as tmp:
        started = _start_workers(cases, names, threads, tmp)  # they start up while this process computes
        try:
            return _conv_table(cases, names, repeats, threads, bar, started)
        finally:
            for _, proc in started.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()


def _conv_table(cases, names, repeats, threads, bar, started) -> pd.DataFrame:
    from nnparity import conv_harness, impls
    from nnparity.convspec import inputs

    rows, firsts = [], {}
    for i, case in enumerate(cases):
        ref = conv_harness.run_reference(case)
        given = inputs(case)
        for name in names:
            row = {"case": case.name, "impl": name, "dtype": case.dtype}
            t = time.perf_counter()
            if bar is not None:
                bar.working(f"{case.name}: {name}, {1 + repeats} runs")
            try:
                first = _conv_run(case, name, given)
                again = [_conv_run(case, name, given) for _ in range(repeats)]
            except (impls.ImplUnavailable, NotImplementedError) as exc:
                rows.append(dict(row, vs_reference=f"unavailable: {exc}"))
                if bar is not None:
                    bar.finished(f"{case.name} {name}", "unavailable", time.perf_counter() - t)
                continue
            except Exception as exc:  # noqa: BLE001 - any error of the implementation is a row saying so
                rows.append(dict(row, vs_reference=f"error: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"))
                if bar is not None:
                    bar.finished(f"{case.name} {name}", "error", time.perf_counter() - t)
                continue
            firsts[(i, name)] = (first, ref.bounds)
            compared = conv_harness.compare_conv(ref, name)
            worst = compared.loc[compared["bound_ratio"].astype(float).fillna(np.inf).idxmax()]  # NaN: a failure
            rep = _variation(again, first, ref.bounds, case.dtype)
            rows.append(dict(row, ref_bound_ratio=float(worst["bound_ratio"]), ref_quantity=worst["quantity"],
                             passed=bool(compared["passed"].all()),
                             vs_reference=f"bound ratio {worst['bound_ratio']:.2g} ({worst['quantity']})"
                                          + ("" if compared["passed"].all() else ", FAIL"),
                             repeat_max_ulp=rep["max_ulp"], repeat_bound_ratio=rep["bound_ratio"],
                             repeats=_describe(rep)))
            if bar is not None:
                bar.finished(f"{case.name} {name}", "done", time.perf_counter() - t)
    table = pd.DataFrame(rows)
    reported = {}
    for count in threads:
        t = time.perf_counter()
        if bar is not None:
            bar.working(f"conv chains in a fresh process at {count} threads")
        arrays, errors, reported[count] = _collect(started, count, cases, names)
        if bar is not None:
            bar.finished(f"conv chains at {count} threads", "done" if arrays else "FAILED", time.perf_counter() - t)
        texts, ulps, ratios = [], [], []
        for i, case in enumerate(cases):
            for name in names:
                if (i, name) not in firsts:
                    continue
                first, bounds = firsts[(i, name)]
                if (i, name) in errors or (i, name) not in arrays:
                    texts.append(errors.get((i, name), "no result"))
                    ulps.append(np.nan)
                    ratios.append(np.nan)
                    continue
                var = _variation([arrays[(i, name)]], first, bounds, case.dtype)
                texts.append(_describe(var))
                ulps.append(var["max_ulp"])
                ratios.append(var["bound_ratio"])
        if not texts:
            continue
        ran = table["vs_reference"].str.startswith("bound ratio")
        for column, values in ((f"threads_{count}", texts), (f"threads_{count}_max_ulp", ulps),
                               (f"threads_{count}_bound_ratio", ratios)):
            table.loc[ran, column] = values
    import sys

    here = {"torch": sys.modules["torch"].get_num_threads()} if "torch" in sys.modules else {}
    table.attrs["threads"] = {"this process": here, **{f"{count} threads": seen for count, seen in reported.items()}}
    return table
