"""Fresh processes: the workers' environment and their start (``python -m nnparity.bench --worker``), import
times in fresh interpreters, the machine, its load and the versions; the ``[bench]`` progress lines and
the progress bar's steps."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: nnparity/bench/processes.py is two levels down


def _progress(text):
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _policy_words() -> str:
    """The thread policy the workers inherit (``nnparity.threads``), e.g. ``numpy 1, torch 1, tensorflow 1, jax 1``."""
    from nnparity import threads as thread_policy

    return ", ".join(f"{framework} {n}" for framework, n in thread_policy.policy().items())


def worker_env(threads=None):
    """The workers' environment: this one, with nnparity's thread policy (``nnparity.threads``) where the user set
    no variable; with ``threads``, every framework's thread variables (``threads.VARIABLES``) set to that many,
    whatever they were (``NNPARITY_THREADS``)."""
    from nnparity import threads as thread_policy

    env = dict(os.environ)
    if threads:
        for variable in (v for names in thread_policy.VARIABLES.values() for v in names):
            env.pop(variable, None)
        env.pop(thread_policy.MARK, None)
        env[thread_policy.OVERRIDE] = str(threads)
    thread_policy.apply(env)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CI"] = "1"  # plain progress lines from a report run inside a worker
    return env


def _spawn(spec, timeout=3600, echo=True):
    """Run one worker in a fresh process; its ``[bench]`` lines go to stderr. Returns (result or None, error)."""
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-") as tmp:
        out = Path(tmp) / "result.json"
        spec = dict(spec, tmp=tmp)
        cmd = [sys.executable, "-m", "nnparity.bench", "--worker", json.dumps(spec), str(out)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(spec.get("threads")), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE,
                                text=True)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        tail = []
        try:
            for line in proc.stderr:
                if line.startswith("[bench]"):
                    if echo:
                        sys.stderr.write(line)
                        sys.stderr.flush()
                else:
                    tail = (tail + [line.rstrip()])[-20:]
            proc.wait()
        finally:
            killer.cancel()
        if proc.returncode != 0 or not out.exists():
            last = next((t for t in reversed(tail) if t.strip()), f"exit code {proc.returncode}")
            return None, f"worker failed ({spec['kind']} {spec.get('impl', '')}): {last.strip()}"[:300]
        return json.loads(out.read_text(encoding="utf-8")), ""


#: What ``nnparity report`` and the test suite import (TensorFlow through ``tf_impl``, Keras, torch, ...).
SUITE_IMPORTS = ("nnparity.cli", "nnparity.harness", "nnparity.catalogue", "nnparity.selftest", "reports.build",
                 "reports.html", "matplotlib.pyplot", "sklearn.datasets", "torch_impl.model", "torch_impl.idiomatic",
                 "tf_impl.model", "tf_impl.idiomatic")


def _imports_together(modules, threads=None):
    """Seconds to import ``modules`` together in a fresh interpreter (best of 2; None if one fails)."""
    code = ("import importlib, time; t = time.perf_counter(); "
            f"[importlib.import_module(m) for m in {list(modules)!r}]; "
            "print(time.perf_counter() - t)")
    best = math.inf
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=worker_env(threads), capture_output=True,
                              text=True)
        if proc.returncode == 0:
            best = min(best, float(proc.stdout.strip().splitlines()[-1]))
    return best if math.isfinite(best) else None


def _run_timed(cmd, timeout=3600, threads=None, imports=SUITE_IMPORTS):
    """Run ``cmd`` (a Python command line) and split its wall time into imports and the rest.

    ``import_s`` is the time to import ``imports`` together in a fresh interpreter: what the command
    pays to import them.  (``python -X importtime`` cannot give it: ``tf_impl`` points file descriptor 2
    at /dev/null while it imports TensorFlow, and importtime's lines go there too; the command still
    runs under ``-X importtime``, and ``largest_imports_s`` lists the top-level imports it did see.)
    Returns wall_s, import_s, compute_s, largest_imports_s, the exit code and the plain progress lines."""
    full = [sys.executable, "-X", "importtime"] + cmd
    t = time.perf_counter()
    proc = subprocess.run(full, cwd=ROOT, env=worker_env(threads), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    top = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match and match.group(3) == "":
            name = match.group(4).split(".")[0]
            top[name] = top.get(name, 0.0) + int(match.group(2)) / 1e6
    progress = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    largest = dict(sorted(top.items(), key=lambda kv: -kv[1])[:8])
    imported = _imports_together(imports, threads)
    import_s = imported if imported is not None else sum(top.values())
    return {"wall_s": wall, "import_s": import_s, "compute_s": wall - import_s, "imports_measured": list(imports),
            "largest_imports_s": largest, "exit_code": proc.returncode, "progress": progress,
            "stdout_tail": proc.stdout.strip().splitlines()[-3:]}


def _frameworks_imported() -> tuple:
    """The modules whose import bench times: nnparity's own dependencies, then each framework's first module (its
    descriptor's ``modules``: torch, tensorflow, jax...)."""
    from nnparity.impls import described

    return tuple(dict.fromkeys(("numpy", "pandas", "matplotlib.pyplot", "sklearn")
                               + tuple(f.modules[0] for f in described() if f.modules)))


def _import_times(modules=None, threads=None):
    """Each module's import time alone, in a fresh interpreter (best of 2), and a bare interpreter's start."""
    modules = _frameworks_imported() if modules is None else modules
    out = {}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=worker_env(threads), check=False)
    out["python start (bare interpreter)"] = time.perf_counter() - t
    for module in modules:
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        best = math.inf
        for _ in range(2):
            proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=worker_env(threads), capture_output=True,
                                  text=True)
            if proc.returncode == 0:
                best = min(best, float(proc.stdout.strip().splitlines()[-1]))
        out[f"import {module}"] = best if math.isfinite(best) else None
    return out


def _machine():
    from nnparity.environment import cpu_info

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu_model": cpu_info()["model"], "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_average": list(load) if load else None}


def _other_processes():
    """Other busy processes at this moment (CPU time accrued recently is not known; listed by state R)."""
    busy = []
    me = {os.getpid(), os.getppid()}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in me:
            continue
        try:
            stat = open(f"/proc/{pid}/stat", encoding="utf-8").read()
            state = stat[stat.rindex(")") + 2]
            if state == "R":
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
                busy.append(cmd[:120])
        except (OSError, ValueError):
            continue
    return busy


def _step(bar, label, run):
    """``run()`` (a worker: ``(result or None, error)``), shown on the progress ``bar`` (None: not shown)."""
    if bar is not None:
        bar.working(label)
    t = time.perf_counter()
    out, error = run()
    if bar is not None:
        bar.finished(label, "ok" if out is not None and out.get("status", "ok") == "ok" else "unavailable",
                     time.perf_counter() - t)
    return out, error


def _versions():
    """Python's and the installed versions of nnparity's numerical dependencies and of every framework's
    distributions (its descriptor's ``distributions``: jax's too)."""
    from importlib import metadata

    from nnparity.impls import described

    versions = {"python": sys.version.split()[0]}
    for dist in dict.fromkeys(("numpy", "pandas") + tuple(d for f in described() for d in f.distributions)):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions
