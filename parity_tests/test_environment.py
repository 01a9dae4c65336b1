"""env.json: every setting that changes numerics is recorded, and compare lists its changes; TF starts quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from importlib import metadata

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from nnparity import environment
from nnparity.environment import collect, flatten
from reports.compare import environment_changes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The variables the brief of env.json names; each must be recorded, set or not.
NUMERICS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")
ONEDNN_NOTICE = "oneDNN custom operations are on"


def test_unset_variables_are_recorded_as_unset_and_set_ones_by_value(monkeypatch):
    for name in NUMERICS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "524288")
    env = collect()
    expected = {name: "unset" for name in NUMERICS_VARS} | {"OPENBLAS_L2_SIZE": "524288"}
    assert {name: env["env_vars"][name] for name in NUMERICS_VARS} == expected
    assert env["tensorflow"]["TF_ENABLE_ONEDNN_OPTS"] == "unset"


def test_versions_come_from_installed_metadata():
    versions = collect()["versions"]
    for dist in ("keras", "scikit-learn", "scipy", "ml_dtypes", "h5py", "protobuf", "threadpoolctl", "numpy", "pandas",
                 "torch"):
        assert versions[dist] == metadata.version(dist), dist
    assert versions["tensorflow"] == metadata.version("tensorflow-cpu")


def test_every_thread_pool_is_recorded_with_its_threads_version_and_kernel():
    pools = collect()["blas"]["threadpools"]
    loaded = threadpool_info()
    assert len(pools) == len(loaded) and any(p["user_api"] == "blas" for p in loaded)
    by_library = {p["library"]: p for p in pools}
    for pool in loaded:
        recorded = by_library[os.path.basename(pool["filepath"])]
        for key in ("user_api", "internal_api", "num_threads", "version", "architecture", "threading_layer"):
            assert recorded.get(key) == pool.get(key), key
    numpy_blas = [p for p in pools if p["id"] == "numpy/openblas"]  # the id compare's diff names it by
    assert len(numpy_blas) == 1 and numpy_blas[0]["architecture"]  # the kernel OpenBLAS chose, e.g. "Haswell"
    assert len({p["id"] for p in pools}) == len(pools)


def test_coretype_and_thread_count_changes_appear_in_compare(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = collect()
    threads = next(p["num_threads"] for p in before["blas"]["threadpools"] if p["id"] == "numpy/openblas")
    fewer = 1 if threads != 1 else 2
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with threadpool_limits(limits=fewer, user_api="blas"):
        after = collect()
    changes = {key: (b, c) for key, b, c in environment_changes(before, after)}
    assert changes["env_vars.OPENBLAS_CORETYPE"] == ("unset", "Haswell")
    assert changes["env_vars.OMP_NUM_THREADS"] == ("2", "1")
    assert changes["blas.threadpools.numpy/openblas.num_threads"] == (str(threads), str(fewer))
    assert not [key for key in changes if key.startswith("run.")]  # the command line and times are not differences
    assert environment_changes(before, before) == []


def test_flatten_keys_list_items_by_id_or_index():
    document = {"pools": [{"id": "numpy/openblas", "num_threads": 2}, {"num_threads": 4}], "flags": ["avx2"]}
    assert flatten(document) == {"pools.numpy/openblas.id": "numpy/openblas", "pools.numpy/openblas.num_threads": 2,
                                 "pools.1.num_threads": 4, "flags": ["avx2"]}


def test_cpu_model_and_flags_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 fma\n\n"
                       "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n\n")
    info = environment.cpu_info(str(cpuinfo))
    assert info["model"] == "Test CPU 9000" and info["flags"] == ["fpu", "avx2", "fma"]


def test_determinism_switches_are_recorded_from_the_frameworks():
    import torch

    env = collect()
    assert env["torch"]["deterministic_algorithms"] == torch.are_deterministic_algorithms_enabled()
    if "tensorflow" not in sys.modules:
        assert env["tensorflow"]["status"] == "not imported" and "op_determinism" not in env["tensorflow"]


def test_jax_x64_is_read_only_from_an_imported_jax(monkeypatch):
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    assert collect()["jax"] == {"version": environment._version("jax"), "status": "not imported"}
    fake = types.SimpleNamespace(__version__="0.0.test", config=types.SimpleNamespace(jax_enable_x64=True))
    monkeypatch.setitem(sys.modules, "jax", fake)
    assert collect()["jax"] == {"version": "0.0.test", "status": "imported", "jax_enable_x64": True}


def _python(code: str, **env_vars) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env.update(env_vars, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_collect_imports_no_framework():
    code = ("import sys; from nnparity.environment import collect; collect()\n"
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'jax', 'sklearn', 'scipy', 'h5py') "
            "if m in sys.modules))")
    probe = _python(code)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_tensorflow_prints_the_onednn_notice_when_the_user_asks_for_its_logs():
    """The control for the two tests below: with oneDNN forced on, TensorFlow's import does print the notice."""
    probe = _python("import nnparity, tensorflow", TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="0")
    assert probe.returncode == 0, probe.stderr
    assert ONEDNN_NOTICE in probe.stderr


@pytest.mark.parametrize("opts,enabled", [("1", True), ("0", False)])
def test_tf_impl_imports_quietly_and_env_json_records_onednn(opts, enabled):
    code = ("import json, tf_impl\nfrom nnparity.environment import collect\nenv = collect()\n"
            "print(json.dumps([env['tensorflow'], env['env_vars']['TF_CPP_MIN_LOG_LEVEL']]))")
    probe = _python(code, TF_ENABLE_ONEDNN_OPTS=opts)
    assert probe.returncode == 0, probe.stderr
    assert ONEDNN_NOTICE not in probe.stderr and "cpu_feature_guard" not in probe.stderr, probe.stderr
    tf_settings, log_level = json.loads(probe.stdout)
    assert tf_settings["status"] == "imported" and tf_settings["TF_ENABLE_ONEDNN_OPTS"] == opts
    assert tf_settings["onednn_enabled"] is enabled
    assert tf_settings["op_determinism"] is False
    assert log_level == "2"  # nnparity's default, since the user set none


def test_any_tensorflow_import_after_nnparity_is_quiet():
    """Keras imports TensorFlow itself, as nnparity's catalogue does: the same quiet import.  Before it, a
    ``find_spec("tensorflow")`` that imports nothing, as torch's ``_dynamo`` does, must not use the quiet import up."""
    code = ("import importlib.util, nnparity; importlib.util.find_spec('tensorflow')\n"
            "import keras; print(keras.backend.backend())")
    probe = _python(code, TF_ENABLE_ONEDNN_OPTS="1")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "tensorflow"
    assert ONEDNN_NOTICE not in probe.stderr and "absl::InitializeLog" not in probe.stderr, probe.stderr


def test_onednns_int64_notice_at_a_prediction_stays_off_stderr():
    """Issue 23: oneDNN's ERROR-level "supports DT_INT64 only on platforms with AVX-512" reached the report's
    stderr at Keras' first prediction (the first transpose of an int64 tensor); it is said once per process, and
    nnparity's quiet TensorFlow import says it then, to /dev/null.  With TF_CPP_MIN_LOG_LEVEL=0 the user sees it."""
    code = "import nnparity, tensorflow as tf; tf.transpose(tf.zeros((2, 1), tf.int64)); print('ok')"
    quiet, loud = _python(code), _python(code, TF_CPP_MIN_LOG_LEVEL="0")
    assert quiet.returncode == 0 and quiet.stdout.strip() == "ok", quiet.stderr
    assert "DT_INT64" not in quiet.stderr, quiet.stderr
    assert loud.returncode == 0 and ("DT_INT64" in loud.stderr or "AVX512" in _cpu_flags()), loud.stderr


def _cpu_flags() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        return f.read().upper().replace("_", "")


def test_env_json_names_the_numerics_packages_and_every_installed_distribution():
    env = collect()
    for dist in ("keras", "scikit-learn", "scipy", "ml_dtypes", "h5py", "protobuf", "jax", "jaxlib", "flax", "optax"):
        assert dist in env["versions"], dist
    assert env["versions"]["keras"] == metadata.version("keras")
    assert env["versions"]["scikit-learn"] == metadata.version("scikit-learn")
    installed = env["installed"]
    names = installed["distributions"]
    assert installed["count"] == len(names) and names["pytest"] == metadata.version("pytest")
    assert names["scikit-learn"] == metadata.version("scikit-learn")
    import hashlib

    freeze = "".join(f"{name}=={version}\n" for name, version in sorted(names.items()))
    assert installed["sha256"] == hashlib.sha256(freeze.encode()).hexdigest()


def test_compare_lists_the_numerics_versions_before_the_other_distributions():
    base = collect()
    cand = json.loads(json.dumps(base))
    cand["versions"]["keras"] = cand["installed"]["distributions"]["keras"] = "3.12.0"
    cand["installed"]["distributions"]["pytest"] = "0.1"
    cand["env_vars"]["OMP_NUM_THREADS"] = "7"
    keys = [key for key, _, _ in environment_changes(base, cand)]
    assert keys == ["versions.keras", "installed.distributions.keras", "env_vars.OMP_NUM_THREADS",
                    "installed.distributions.pytest"]


def test_distributions_on_one_side_only_are_one_row_per_side_and_the_numerics_own_stay_named():
    """A candidate environment holds the chosen frameworks alone: the baseline's other distributions are one row,
    not a row each; a numerics distribution (numpy here) keeps its own row."""
    from nnparity.regression import NUMERICS_DISTRIBUTIONS

    base = collect()
    cand = json.loads(json.dumps(base))
    installed = cand["installed"]["distributions"]
    kept = base["installed"]["distributions"]
    others = sorted(name for name in kept if name not in NUMERICS_DISTRIBUTIONS)[:2]
    for name in ["numpy", *others]:
        installed.pop(name)
    installed["only-in-the-candidate"] = "0.1"
    changes = {key: (b, c) for key, b, c in environment_changes(base, cand)}
    assert changes["installed.distributions.numpy"] == (kept["numpy"], "(absent)")
    assert changes["installed.distributions.(installed in the baseline only)"] == (
        " ".join(f"{name} {kept[name]}" for name in others), "(absent)")
    only = changes["installed.distributions.(installed in the candidate only)"]
    assert only == ("(absent)", "only-in-the-candidate 0.1")
    assert not [key for key in changes if key in {f"installed.distributions.{name}" for name in others}]
