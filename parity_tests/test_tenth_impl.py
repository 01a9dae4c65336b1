"""A framework is its folder: a tenth implementation, installed from a temporary folder through the
``nnparity.implementations`` entry point with its own descriptor (``<package>/framework.py``: an env.json section,
an explain column, a known divergence, a catalogue entry, a bench note), appears in the report, explain, env.json,
bench, the grid, the divergences and the catalogue, with no file of the repository changed.

The twin is the NumPy reference under another name, with one recorded difference (dW1 scaled by 1 + 1e-6 in
float64), so that the report and explain find its divergence exactly as its record says.  NumPy only, one small
case; everything runs in subprocesses whose ``PYTHONPATH`` holds the temporary folder, as an installed package.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME = "numpy-twin"
CASE = "l2-tanh-float64-fullbatch"

MODEL = '''
"""The NumPy reference under another name, with one known difference: dW1 scaled by 1 + 1e-6 in float64."""
import numpy as np

from reference import model

SCALE = 1 + 1e-6


def forward_backward(parameters, X, Y, case, masks=None):
    grads = model.forward_backward(parameters, X, Y, case, masks)
    if np.dtype(case.dtype) == np.float64:
        grads["dW1"] = grads["dW1"] * SCALE  # the twin's recorded divergence (numpy_twin_impl/framework.py)
    return grads


def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
    return model.train(parameters, X, Y, case, schedule, masks, on_step=on_step)


def predictions(parameters, X, case):
    return model.predictions(parameters, X, case)
'''

FRAMEWORK = '''
"""What nnparity asks about the twin, declared beside it; imports no framework."""
import sys

from nnparity.impls import Framework


def settings():
    return {"version": "0.1", "status": "imported" if "numpy_twin_impl.model" in sys.modules else "not imported"}


def explain():
    return {"dW": {"numpy-twin": (("numpy_twin_impl.model", "forward_backward", 'grads["dW1"] = '),)}}


def divergences():
    from nnparity.divergences import Divergence

    return (Divergence("numpy-twin-dw1", ("numpy-twin",), {"dtype": ("float64",)}, ("backward", "dW", 1, 0),
                       "numpy-twin-scale", "the twin scales dW1 by 1 + 1e-6 in float64",
                       must_fail={"dtype": ("float64",)}),)


def catalogue():
    from nnparity.catalogue import Entry

    def run():
        return dict(framework_version="0.1", what_differs="dW1 scaled by 1 + 1e-6 in float64",
                    effect="dW1 1e-6 larger", measured={"scale": 1 + 1e-6})

    return [Entry("numpy-twin-scale", "The twin's dW1 is 1e-6 larger in float64", "numpy-twin", run)]


FRAMEWORK = Framework(
    "numpy-twin", distributions=("numpy-twin",), settings=settings, env_vars=("NUMPY_TWIN_MODE",),
    columns=(("numpy-twin", ("numpy-twin",)),), explain=explain, divergences=divergences, catalogue=catalogue,
    notes={"numpy-twin": "the NumPy reference under another name"}, implementations=("numpy-twin",))
'''

CHECKS = '''
import json

from nnparity import bench, catalogue, divergences, environment, grid, impls, threads
from nnparity.spec import Case

out = {}
out["plugins"] = impls.plugins()
out["described"] = [f.name for f in impls.described()]
cases = grid.every_case()
out["grid"] = [c.id for c in grid.for_impl(cases, impls.get("numpy-twin"), "quick")][:3]
out["bench_impls"] = list(bench.BENCH_IMPLS)
out["bench_note"] = bench.NOTES.get("numpy-twin")
out["bench_versions"] = bench._versions()
row = bench._worker_impl({"impl": "numpy-twin", "networks": ["planar"], "dtypes": ["float64"], "steps": 3,
                          "repeats": 1, "quick": True})
out["bench_row"] = {"status": row.get("status", "ok"), "rows": [(r["impl"], r["status"]) for r in row["rows"]]}
out["divergences"] = [r["id"] for r in divergences.records()]
case = [c for c in cases if c.dtype == "float64"][0]
out["expected"] = getattr(divergences.expected(case, "numpy-twin"), "id", None)
frame = catalogue.run_catalogue(ids={"numpy-twin-scale"})
out["catalogue"] = frame[["id", "framework", "status"]].to_dict("records")
out["catalogue_ids"] = [e.id for e in catalogue.ENTRIES]
out["env_vars"] = list(environment.ENV_VARS)
out["policy"] = threads.POLICY
print("CHECKS " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The twin's package and its distribution's metadata (an entry point), in a folder of their own."""
    site = tmp_path_factory.mktemp("site")
    package = site / "numpy_twin_impl"
    package.mkdir()
    (package / "__init__.py").write_text('"""A tenth implementation, installed as a plugin."""\n')
    (package / "model.py").write_text(textwrap.dedent(MODEL))
    (package / "framework.py").write_text(textwrap.dedent(FRAMEWORK))
    dist = site / "numpy_twin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy-twin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nnparity.implementations]\nnumpy-twin = numpy_twin_impl.model\n")
    return site


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def _run(site, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), NNPARITY_EXPLAIN_SERIAL="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                          timeout=timeout)


def test_a_plugin_joins_every_part_of_the_house_with_no_file_of_the_repository_changed(installed, tmp_path):
    before = _git_status()
    out = tmp_path / "report"

    report = _run(installed, "-m", "nnparity", "report", "--cases", CASE, "--impl", NAME, "--out", str(out),
                  "--jobs", "1")
    assert report.returncode == 0, report.stdout + report.stderr
    with open(out / "details.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["impl"] == NAME]
    assert rows and {r["case"] for r in rows} == {CASE}
    assert {r["divergence"] for r in rows if r["passed"] == "False"} == {"numpy-twin-dw1"}  # failed as recorded
    env = json.loads((out / "env.json").read_text())
    assert env[NAME] == {"version": "0.1", "status": "imported"}  # its settings, from the worker that ran it
    assert env["versions"]["numpy-twin"] == "0.1" and "NUMPY_TWIN_MODE" in env["env_vars"]
    assert env["run"]["implementations"] == [NAME]

    explain = _run(installed, "-m", "nnparity", "explain", "--equation", "dW", "--impl", NAME)
    assert explain.returncode == 0, explain.stdout + explain.stderr
    text = explain.stdout
    assert f"[{NAME}] numpy_twin_impl.model.forward_backward" in text  # its column's excerpt
    assert "[numpy] reference.model.linear_backward" in text and "[torch]" not in text
    assert "numpy-twin-dw1" in text  # measured, and failing exactly as its record says

    checks = _run(installed, "-c", textwrap.dedent(CHECKS))
    assert checks.returncode == 0, checks.stdout + checks.stderr
    found = json.loads(next(line for line in checks.stdout.splitlines() if line.startswith("CHECKS "))[7:])
    assert found["plugins"] == {NAME: "numpy_twin_impl.model"}
    assert found["described"][-1] == NAME
    assert found["grid"]
    assert NAME in found["bench_impls"] and found["bench_note"] == "the NumPy reference under another name"
    assert found["bench_versions"]["numpy-twin"] == "0.1"
    assert found["bench_row"]["rows"] == [[NAME, "ok"]]
    assert "numpy-twin-dw1" in found["divergences"] and found["expected"] == "numpy-twin-dw1"
    assert found["catalogue"] == [{"id": "numpy-twin-scale", "framework": NAME, "status": "ok"}]
    assert found["catalogue_ids"][-1] == "numpy-twin-scale"
    assert "NUMPY_TWIN_MODE" in found["env_vars"]

    assert _git_status() == before  # nothing of the repository changed


def test_every_built_in_framework_is_described_in_its_folder_and_reading_them_imports_no_framework():
    code = textwrap.dedent('''
        import sys
        from nnparity import bench, catalogue, divergences, environment, explain, impls, threads
        from reports import explain as page

        described = {f.name: f for f in impls.described()}
        assert list(described) == ["numpy", "torch", "tensorflow", "jax"], list(described)
        for name, impl in impls.REGISTRY.items():
            assert impls.framework_of(name) is described[impl.framework], name
        assert [n for _, names in explain.COLUMNS for n in names] == list(impls.IMPLS)
        assert set(environment.runtime()) == {"blas", "torch", "tensorflow", "jax"}
        assert threads.POLICY == {"numpy": 1, "torch": 1, "tensorflow": 1, "jax": 1}
        assert {"jax", "jaxlib", "flax", "optax", "torch", "keras"} <= set(environment.DISTRIBUTIONS)
        assert {d.catalogue for d in divergences.DIVERGENCES} <= {e.id for e in catalogue.ENTRIES}
        # nnparity.catalogue's cross-framework entry, torch_impl's, tf_impl's, jax_impl's
        assert {"keras-adam-epsilon", "bce-saturated-torch", "bce-saturated-keras", "jax-x64"} <= {
            e.id for e in catalogue.ENTRIES}
        print(sorted(m for m in ("torch", "tensorflow", "keras", "jax", "flax", "optax") if m in sys.modules))
    ''')
    result = _run(ROOT, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"  # the descriptors imported no framework
