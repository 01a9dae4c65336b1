"""Suite-level figures of a full run (``run_suite``): import times, ``nnparity report``'s wall time, and
its run under cProfile (the ``report-profile`` worker) split into phases; the harness's overheads
read from them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnparity.bench.processes import ROOT, _import_times, _progress, _run_timed, _spawn, worker_env

#: The phases of ``nnparity report``'s profile: (label, module, function).  A phase's time is the cumulative
#: time of the function in the profile (calls nested in another of its calls counted once); phases nest
#: (``compare_impl`` holds each implementation's training, the self-test reruns the harness), so they
#: overlap and do not sum to the total.
REPORT_PHASES = (
    ("reference: run_reference (its training, per-step bounds, captures, bounds)", "nnparity.harness",
     "run_reference"),
    ("reference: training loop (train, per-step bounds included)", "reference.model", "train"),
    ("reference: per-step rounding bound of the cost (run_reference's before_update)", "nnparity.harness",
     "bound_step"),
    ("reference: captures (forward_backward)", "reference.model", "forward_backward"),
    ("tolerances: rounding bounds of a capture", "nnparity.tolerances", "bounds"),
    ("tolerances: rounding bound of a cost", "nnparity.tolerances", "cost_bound"),
    ("implementations: compare_impl (their training, captures and comparison rows)", "nnparity.harness",
     "compare_impl"),
    ("self-test (run_selftest: faults and unaltered reruns)", "nnparity.selftest", "run_selftest"),
    ("catalogue (run_catalogue)", "nnparity.catalogue", "run_catalogue"),
    ("write_report (md, csv, json, figures, html)", "reports.build", "write_report"),
    ("env.json (environment.collect)", "nnparity.environment", "collect"),
    ("data loading (load_data)", "nnparity.data", "load_data"),
)

NOT_FOUND = "not found in profile (renamed?)"


def _impl_phases():
    """Each implementation module's ``train`` and ``forward_backward``, labelled with the registry's names that
    use it (``tf_impl.model``: tf, tf-function): cProfile tells functions apart, not the options they ran with."""
    from nnparity import impls

    modules = {}
    for name in impls.IMPLS:
        impl = impls.get(name)
        if impl.module != "reference.model":
            modules.setdefault(impl.module, []).append(name)
    return tuple((f"{', '.join(names)}: {what}", module, function) for module, names in modules.items()
                 for function, what in (("train", "training (train)"), ("forward_backward", "captures")))


def _source_suffixes(module):
    path = module.replace(".", os.sep)
    return (os.sep + path + ".py", os.sep + os.path.join(path, "__init__.py"))


def profile_phases(stats, phases):
    """``[{phase, function, seconds, calls, note}]`` from ``pstats.Stats(...).stats`` for ``phases``
    ((label, module, function) each): the cumulative seconds and calls of every profiled function of that
    name in that module's file; ``seconds`` None and ``note`` ``NOT_FOUND`` where there is none."""
    out = []
    for label, module, function in phases:
        suffixes = _source_suffixes(module)
        found = [value for (filename, _, name), value in stats.items()
                 if name == function and filename.endswith(suffixes)]
        row = {"phase": label, "function": f"{module}.{function}", "seconds": None, "calls": 0, "note": NOT_FOUND}
        if found:
            row.update(seconds=sum(v[3] for v in found), calls=sum(v[1] for v in found), note="")
        out.append(row)
    return out


def _caller_seconds(stats, callee, caller):
    """Cumulative seconds of ``callee`` ((module, function)) when called directly by ``caller``; None if unseen."""
    seconds = None
    for (filename, _, name), value in stats.items():
        if name == callee[1] and filename.endswith(_source_suffixes(callee[0])):
            for (c_file, _, c_name), timing in value[4].items():
                if c_name == caller[1] and c_file.endswith(_source_suffixes(caller[0])):
                    seconds = (seconds or 0.0) + timing[3]
    return seconds


def _worker_report_profile(spec):
    """Run ``nnparity report`` (default grid, ``--jobs 1``: every piece in the profiled process) as a program under
    ``cProfile`` (``python -m cProfile -m nnparity report``: bench, a tool, never imports the command line above
    it); the phases are read from the
    saved profile (``REPORT_PHASES`` and each implementation module's functions).  Nothing is patched."""
    import pstats

    out, saved = Path(spec["tmp"]) / "report", Path(spec["tmp"]) / "report.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(saved), "-m", "nnparity", "report", "--out", str(out),
               "--force", "--jobs", "1"]  # one process: cProfile sees no worker's calls
    t = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=worker_env(spec.get("threads")), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if not saved.exists():
        raise RuntimeError(f"nnparity report under cProfile wrote no profile (exit {done.returncode}): "
                           + (done.stderr.strip().splitlines() or ["no output"])[-1])
    stats = pstats.Stats(str(saved)).stats
    main = next((v[3] for (filename, _, name), v in stats.items()
                 if name == "main" and filename.endswith(_source_suffixes("nnparity.cli"))), wall)
    return {"exit_code": done.returncode, "startup_s": wall - main, "report_main_s": main, "profiler": "cProfile",
            "phases": profile_phases(stats, REPORT_PHASES + _impl_phases()),
            "reference_train_in_run_reference_s": _caller_seconds(stats, ("reference.model", "train"),
                                                                  ("nnparity.harness", "run_reference"))}


def run_suite(report=True, echo=True, threads=None):
    """Suite-level figures: import times; ``nnparity report`` wall time and its profile (the test suite:
    ``run_tests_suite``)."""
    out = {"imports": _import_times(threads=threads)}
    if echo:
        _progress("imports: " + ", ".join(f"{k} {v:.2f} s" for k, v in out["imports"].items() if v is not None))
    if report:
        with tempfile.TemporaryDirectory(prefix="nnparity-bench-report-") as tmp:
            out["report"] = _run_timed(["-m", "nnparity", "report", "--out", str(Path(tmp) / "report"), "--force"],
                                       threads=threads)
        if echo:
            r = out["report"]
            _progress(f"nnparity report: {r['wall_s']:.1f} s wall ({r['import_s']:.1f} s imports), "
                      f"exit {r['exit_code']}")
        profile, error = _spawn({"kind": "report-profile", "threads": threads}, echo=echo)
        out["report_profile"] = profile if profile is not None else {"error": error}
        if echo and profile is not None:
            _progress(f"report under cProfile: {profile['report_main_s']:.1f} s in main()")
    return out


def report_breakdown(profile):
    """Where ``nnparity report``'s time goes, from its profile: ``[(what, seconds), ...]`` in the phases' order,
    each the cumulative time of one function (phases nest, so they overlap and do not sum to the total);
    ``seconds`` is None where the function was not found in the profile."""
    if not profile or "phases" not in profile:
        return []
    return [(f"{p['phase']} [{p['function']}]", p["seconds"]) for p in profile["phases"]]


def harness_overheads(profile):
    """From the report's profile: each implementation module's captures (``forward_backward``) as a fraction of
    its training (``train``) over the default grid, and the reference's extra work in ``run_reference``
    (captures, bounds, per-step bounds: all but its plain training loop) against that loop."""
    if not profile or "phases" not in profile:
        return {}
    seconds = {p["function"]: p["seconds"] for p in profile["phases"]}
    out = {}
    for p in profile["phases"]:
        module, function = p["function"].rsplit(".", 1)
        train = seconds.get(f"{module}.train")
        if function == "forward_backward" and module != "reference.model" and train and p["seconds"] is not None:
            out[p["phase"].split(":")[0]] = {"capture_s": p["seconds"], "train_s": train,
                                             "capture_overhead": p["seconds"] / train}
    run_reference, bound = seconds.get("nnparity.harness.run_reference"), seconds.get("nnparity.harness.bound_step")
    train = profile.get("reference_train_in_run_reference_s")
    if None not in (run_reference, bound, train) and train > bound:
        plain = train - bound
        out["numpy"] = {"plain_train_s": plain, "per_step_bounds_s": bound, "run_reference_s": run_reference,
                        "run_reference_overhead": (run_reference - plain) / plain}
    return out
