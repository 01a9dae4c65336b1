"""What ``env.json`` records: the software, hardware and numerical settings a report was produced under.

Two reports of the same grid differ only through what is recorded here, so
``nnparity compare`` lists these differences first.  Collecting never imports a
framework: torch's and TensorFlow's settings are read only when that framework
is already in ``sys.modules`` (the run used it); otherwise the framework's entry
says ``"not imported"`` (JAX too: ``jax_enable_x64`` is read only from an imported
jax).  Other packages' versions come from their installed metadata, never an import.
Every installed distribution is recorded too (``installed``: name -> version, and the SHA-256 of that
freeze list), so an upgrade of anything shows in compare's diff; the numerics-relevant ones
(``NUMERICS``) are also named under ``versions`` and listed first.
Each framework's section, versions and variables are declared in its own folder (``<package>/framework.py``:
``settings``, ``distributions``, ``env_vars``; ``nnparity.impls.described``), so a plugin's framework is recorded
as the built-in ones.  Every probe is guarded: an attribute a framework version lacks is recorded as
``"not available"`` rather than failing the report.  An environment variable that
is not set is recorded as ``"unset"``.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from nnparity import threads
from nnparity.impls import REGISTRY, described

NOT_IMPORTED = "not imported"
NOT_AVAILABLE = "not available"
UNSET = "unset"

#: Environment variables that change threading or numerics of NumPy's BLAS and the OpenMP runtimes
#: (``OPENBLAS_CORETYPE`` picks OpenBLAS's kernels), then each framework's (its descriptor's ``env_vars``:
#: ``TF_ENABLE_ONEDNN_OPTS`` TensorFlow's oneDNN ops, ``XLA_FLAGS``...), then nnparity's own.
ENV_VARS = tuple(dict.fromkeys(
    ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
     "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "MKL_CBWR")
    + tuple(v for framework in described() for v in framework.env_vars)
    + tuple(v for framework in described() for v in framework.thread_variables)
    + ("PYTHONHASHSEED", "NNPARITY_THREADS", "NNPARITY_PERTURB_ULP")))

#: Distributions whose versions are recorded beside Python's, from their metadata (nothing is imported): the ones
#: that can change the numbers (the frameworks and what they compute with, scikit-learn: a data source).
#: TensorFlow's distribution is recorded as ``tensorflow`` (``tensorflow-cpu`` or ``tensorflow``, see ``versions``).
_TENSORFLOW = ("tensorflow-cpu", "tensorflow")
DISTRIBUTIONS = tuple(d for d in dict.fromkeys(
    ("numpy", "pandas", "scikit-learn", "scipy", "h5py", "threadpoolctl")
    + tuple(d for framework in described() for d in framework.distributions)
    + tuple(d for impl in REGISTRY.values() for d in impl.requires)) if d not in _TENSORFLOW)

#: The ``versions`` entries compare's environment diff lists first (python, the frameworks, BLAS-bearing packages).
NUMERICS = ("python",) + DISTRIBUTIONS + ("tensorflow", "nnparity")

#: Flattened keys that differ between any two runs and say nothing about the numerics (``compare`` skips them).
VOLATILE = ("run.command", "run.argv", "run.cwd", "run.started", "run.seconds")


def versions() -> dict:
    """Installed versions of every distribution that can change the numbers (None: not installed), from
    the packages' metadata: nothing is imported to read them."""
    found = {dist: _version(dist) for dist in DISTRIBUTIONS}
    found["tensorflow"] = _version("tensorflow-cpu") or _version("tensorflow")
    return found


def framework_sections() -> dict:
    """{env.json section: its framework's ``settings``}: one per framework whose descriptor has a probe."""
    return {f.env_section: f.settings for f in described() if f.env_section}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def installed() -> dict:
    """Every installed distribution: ``{"distributions": {name: version}, "count": n, "sha256": ...}``, the SHA-256
    of the freeze list (``name==version`` lines, sorted, lower-case names) telling two environments apart at a
    glance."""
    import hashlib

    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        if name:
            found.setdefault(name.lower().replace("_", "-"), dist.version)
    found = dict(sorted(found.items()))
    freeze = "".join(f"{name}=={version}\n" for name, version in found.items())
    return {"count": len(found), "sha256": hashlib.sha256(freeze.encode()).hexdigest(), "distributions": found}


def env_var(name: str) -> str:
    """The variable's value, or ``"unset"``."""
    return os.environ.get(name, UNSET)


def _probe(fn):
    """``fn()``, or ``"not available"`` when this version lacks it (or it fails)."""
    try:
        value = fn()
    except Exception:  # an attribute a version lacks, a backend that is not built in
        return NOT_AVAILABLE
    return value if isinstance(value, (bool, int, float, str, type(None), list, dict)) else str(value)


def cpu_info(path: str = "/proc/cpuinfo") -> dict:
    """Model name and flags of the first processor in ``/proc/cpuinfo`` (Linux); the platform's word otherwise."""
    info = {"model": platform.processor() or platform.machine(), "flags": [], "logical_cpus": os.cpu_count()}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and info["model"] in ("", platform.machine(), platform.processor()):
                    info["model"] = value.strip()
                elif key in ("flags", "Features") and not info["flags"]:
                    info["flags"] = value.split()
                elif not line.strip() and info["flags"]:
                    break  # the first processor's block is enough
    except OSError:
        pass
    return info


def blas_info() -> dict:
    """NumPy's BLAS/LAPACK as built (``np.show_config(mode='dicts')``) and the thread pools loaded now
    (threadpoolctl)."""
    import numpy as np

    build = _probe(lambda: np.show_config(mode="dicts"))
    deps = build.get("Build Dependencies", {}) if isinstance(build, dict) else {}
    numpy_blas = {name: {k: v for k, v in dep.items() if k in ("name", "version", "openblas configuration")}
                  for name, dep in deps.items() if isinstance(dep, dict)}
    simd = build.get("SIMD Extensions", {}) if isinstance(build, dict) else {}
    try:
        from threadpoolctl import threadpool_info

        pools = [{k: v for k, v in pool.items() if k != "filepath"} | {"library": os.path.basename(pool["filepath"])}
                 | {"id": f"{_shipped_by(pool['filepath'])}/{pool.get('internal_api')}"} for pool in threadpool_info()]
        pools.sort(key=lambda pool: (pool["id"], pool["library"]))  # load order is not a difference
        seen: dict[str, int] = {}
        for pool in pools:  # ids name the entries of compare's diff, so they must be unique
            n = seen[pool["id"]] = seen.get(pool["id"], 0) + 1
            pool["id"] += f"#{n}" if n > 1 else ""
    except Exception as exc:  # threadpoolctl missing or unable to inspect a library
        pools = f"{NOT_AVAILABLE} ({type(exc).__name__}: {exc})"
    return {"numpy_build": numpy_blas, "numpy_simd": simd, "threadpools": pools}


def _shipped_by(filepath: str) -> str:
    """The package a loaded library belongs to: ``.../site-packages/numpy.libs/libx.so`` -> ``numpy``."""
    parts = os.path.normpath(filepath).split(os.sep)
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts[:-2]:
            return parts[parts.index(anchor) + 1].removesuffix(".libs")
    return os.path.basename(filepath)


def device() -> str:
    """Where the implementations ran: every implementation here runs on the CPU."""
    return f"cpu ({platform.machine()})"


def runtime() -> dict:
    """The sections of ``env.json`` that depend on what this process has loaded: NumPy's BLAS and the thread
    pools loaded now, and each framework's settings (``"not imported"`` until the process imports it)."""
    return {"blas": blas_info(), **{section: settings() for section, settings in framework_sections().items()}}


def merge_runtime(sections: list[dict]) -> dict:
    """One ``runtime()`` from those of several processes that shared the work (``nnparity.workers``): each
    framework as a process that imported it saw it, else as not imported; every thread pool any of them loaded,
    once per id (the first process's description)."""
    merged = dict(sections[0])
    for key in {key for s in sections for key in s if key != "blas"}:
        found = [s[key] for s in sections if key in s]
        merged[key] = next((v for v in found if isinstance(v, dict) and v.get("status") == "imported"), found[0])
    pools = [s["blas"]["threadpools"] for s in sections if isinstance(s["blas"]["threadpools"], list)]
    if pools:
        seen = {}
        for pool in (pool for found in pools for pool in found):
            seen.setdefault(pool["id"], pool)
        merged["blas"] = dict(merged["blas"], threadpools=sorted(seen.values(), key=lambda pool: pool["id"]))
    return merged


def collect(command: str | None = None, started: str | None = None, seconds: float | None = None,
            implementations=(), measured: dict | None = None) -> dict:
    """The whole ``env.json`` document (plain JSON types only).  ``measured``: the ``runtime()`` sections of
    the processes that did the work (``merge_runtime``), where that was not this one."""
    sections = runtime() if measured is None else measured
    import numpy as np
    import pandas as pd

    return {
        "run": {
            "command": command if command is not None else " ".join(sys.argv),
            "argv": list(sys.argv),
            "cwd": os.getcwd(),
            "started": started,
            "seconds": seconds,
            "implementations": list(implementations),
            "device": device(),
        },
        "versions": {
            "python": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            **{dist: v for dist, v in versions().items() if dist not in ("numpy", "pandas")},
            "nnparity": _version("nnparity"),
        },
        "installed": installed(),
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "libc": " ".join(platform.libc_ver()).strip()},
        "cpu": cpu_info(),
        "blas": sections["blas"],
        "threads": {
            "os_cpu_count": os.cpu_count(),
            "sched_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            **threads.describe(),
        },
        "env_vars": {name: env_var(name) for name in ENV_VARS},
        **{key: value for key, value in sections.items() if key != "blas"},
    }


def flatten(document: dict, prefix: str = "") -> dict:
    """``{"torch": {"num_threads": 2}}`` -> ``{"torch.num_threads": 2}``.

    A list of dicts (the thread pools) is flattened item by item under each item's ``id`` (its index when it
    has none): ``blas.threadpools.numpy/openblas.num_threads``; other lists stay values.
    """
    flat = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            value = {str(item.get("id", i)): item for i, item in enumerate(value)}
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
