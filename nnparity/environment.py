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
Every probe is guarded: an attribute a framework version lacks is recorded as
``"not available"`` rather than failing the report.  An environment variable that
is not set is recorded as ``"unset"``.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from nnparity import threads
from nnparity.impls import REGISTRY

NOT_IMPORTED = "not imported"
NOT_AVAILABLE = "not available"
UNSET = "unset"

#: Environment variables that change threading or numerics of NumPy's BLAS, torch or TensorFlow
#: (``OPENBLAS_CORETYPE`` picks OpenBLAS's kernels, ``TF_ENABLE_ONEDNN_OPTS`` TensorFlow's oneDNN ops),
#: and ``TF_CPP_MIN_LOG_LEVEL``, which decides whether TensorFlow says so.
ENV_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "MKL_CBWR",
    "TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL", "TF_DETERMINISTIC_OPS", "TF_INTRA_OP_PARALLELISM_THREADS",
    "TF_INTER_OP_PARALLELISM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
    "CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED", "XLA_FLAGS", "NNPARITY_THREADS",
)

#: Distributions whose versions are recorded beside Python's, from their metadata (nothing is imported): the ones
#: that can change the numbers (the frameworks and what they compute with, scikit-learn: a data source).
DISTRIBUTIONS = tuple(dict.fromkeys(
    ("numpy", "pandas", "torch", "keras", "scikit-learn", "scipy", "ml_dtypes", "h5py", "protobuf", "threadpoolctl",
     "jax", "jaxlib", "flax", "optax")
    + tuple(d for impl in REGISTRY.values() for d in impl.requires if d != "tensorflow-cpu")))

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


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def installed() -> dict:
    """Every installed distribution: ``{"distributions": {name: version}, "count": n, "sha256": ...}``, the SHA-256
    of the freeze list (``name==version`` lines, sorted, lower-case names) telling two environments apart at a glance."""
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
    """NumPy's BLAS/LAPACK as built (``np.show_config(mode='dicts')``) and the thread pools loaded now (threadpoolctl)."""
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


def torch_settings() -> dict:
    if "torch" not in sys.modules:
        return {"version": _version("torch"), "status": NOT_IMPORTED}
    torch = sys.modules["torch"]
    return {
        "version": _probe(lambda: torch.__version__),
        "status": "imported",
        "num_threads": _probe(torch.get_num_threads),
        "num_interop_threads": _probe(torch.get_num_interop_threads),
        "deterministic_algorithms": _probe(torch.are_deterministic_algorithms_enabled),
        "cuda_matmul_allow_tf32": _probe(lambda: torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": _probe(lambda: torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": _probe(torch.get_float32_matmul_precision),
        "mkldnn_enabled": _probe(lambda: torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "cuda_available": _probe(torch.cuda.is_available),
        "parallel_info": _probe(lambda: torch.__config__.parallel_info().strip().splitlines()),
    }


def _tf_op_determinism(tf):
    probe = getattr(tf.config.experimental, "is_op_determinism_enabled", None)
    if probe is None:  # not exported in every version; the implementation is
        from tensorflow.python.framework import config as tf_config

        probe = tf_config.is_op_determinism_enabled
    return probe()


def _tf_onednn_enabled():
    """Whether TensorFlow runs its oneDNN custom ops: what it decided at start-up from ``TF_ENABLE_ONEDNN_OPTS``
    and the CPU (the "oneDNN custom operations are on" notice); TensorFlow exposes it only internally."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def tensorflow_settings() -> dict:
    dist = _version("tensorflow-cpu") or _version("tensorflow")
    if "tensorflow" not in sys.modules:
        return {"version": dist, "status": NOT_IMPORTED, "TF_ENABLE_ONEDNN_OPTS": env_var("TF_ENABLE_ONEDNN_OPTS")}
    tf = sys.modules["tensorflow"]
    return {
        "version": _probe(lambda: tf.__version__),
        "status": "imported",
        "intra_op_parallelism_threads": _probe(tf.config.threading.get_intra_op_parallelism_threads),
        "inter_op_parallelism_threads": _probe(tf.config.threading.get_inter_op_parallelism_threads),
        "op_determinism": _probe(lambda: _tf_op_determinism(tf)),
        "tensor_float_32_execution": _probe(tf.config.experimental.tensor_float_32_execution_enabled),
        "TF_ENABLE_ONEDNN_OPTS": env_var("TF_ENABLE_ONEDNN_OPTS"),
        "onednn_enabled": _probe(_tf_onednn_enabled),
        "devices": _probe(lambda: [d.name for d in tf.config.list_logical_devices()]),
    }


def jax_settings() -> dict:
    """JAX computes in float32 unless ``jax_enable_x64`` is on; read only from a jax the run imported."""
    if "jax" not in sys.modules:
        return {"version": _version("jax"), "status": NOT_IMPORTED}
    jax = sys.modules["jax"]
    return {"version": _probe(lambda: jax.__version__), "status": "imported",
            "jax_enable_x64": _probe(lambda: bool(jax.config.jax_enable_x64))}


def device() -> str:
    """Where the implementations ran: every implementation here runs on the CPU."""
    return f"cpu ({platform.machine()})"


def runtime() -> dict:
    """The sections of ``env.json`` that depend on what this process has loaded: NumPy's BLAS and the thread
    pools loaded now, and each framework's settings (``"not imported"`` until the process imports it)."""
    return {"blas": blas_info(), "torch": torch_settings(), "tensorflow": tensorflow_settings(), "jax": jax_settings()}


def merge_runtime(sections: list[dict]) -> dict:
    """One ``runtime()`` from those of several processes that shared the work (``nnparity.workers``): each
    framework as a process that imported it saw it, else as not imported; every thread pool any of them loaded,
    once per id (the first process's description)."""
    merged = dict(sections[0])
    for key in ("torch", "tensorflow", "jax"):
        merged[key] = next((s[key] for s in sections if s[key].get("status") == "imported"), sections[0][key])
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
        "torch": sections["torch"],
        "tensorflow": sections["tensorflow"],
        "jax": sections["jax"],
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
