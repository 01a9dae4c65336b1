"""The report's conv-model rows (``nnparity.conv_models``): every idiomatic implementation's step and training rows
in the details and in the conv section, ``--cases`` selecting the model ids, and a fault failing exactly its row."""

import io
import sys
import textwrap

import pytest

from nnparity import conv_models
from nnparity.impls import REGISTRY

IDIOMATIC = ("torch-nn", "keras", "flax")


def test_the_registry_names_each_idiomatic_implementations_models():
    assert {n for n, impl in REGISTRY.items() if impl.convnet_module} == set(IDIOMATIC)
    assert conv_models.model_impls(["torch", "tf", *IDIOMATIC, "jax-jit"]) == list(IDIOMATIC)


def test_the_report_compares_the_models_of_every_idiomatic_implementation(tmp_path):
    """``--cases 'convnet-*'`` selects the four model cases (the conv pieces run them) and every one of torch-nn,
    keras and flax has passing forward, backward, trajectory and final rows in the details and a cell in the conv
    section; the equation-style implementations (no models) have no model rows."""
    from reports import run_report

    result = run_report("convnet-*", ["torch", *IDIOMATIC], tmp_path / "r", jobs=1, selftest=False,
                        catalogue=False, progress=io.StringIO())
    details = result.details
    cases = {case.id for case in conv_models.model_cases()}
    assert set(details["case"]) == cases
    assert set(details["impl"]) == set(IDIOMATIC)
    for (case, impl), rows in details.groupby(["case", "impl"]):
        assert set(rows["phase"]) == {"forward", "backward", "trajectory", "final"}, (case, impl)
        assert (rows["phase"] == "trajectory").sum() == conv_models.STEPS
        assert rows["passed"].all(), rows.loc[~rows["passed"], ["quantity", "layer", "bound_ratio", "note"]]
        assert (rows["bound_ratio"] <= 1).all()
    assert result.status == "pass"
    report = (tmp_path / "r" / "report.md").read_text()
    section = report[report.index("## Convolutional layers"):]
    for case in cases:
        assert f"| {case} | one step" in section and f"| {case} | {conv_models.STEPS}-step training" in section


FAULT = """
import numpy as np
from torch_impl import convnet


def forward_backward(*args, **kwargs):
    result = convnet.forward_backward(*args, **kwargs)
    result["grads"]["dW2"] = result["grads"]["dW2"] * 1.001
    return result


def train(*args, **kwargs):
    result = convnet.train(*args, **kwargs)
    result["costs"] = [c * (1.001 if step == 2 else 1) for step, c in enumerate(result["costs"])]
    return result
"""


@pytest.fixture
def faulty(tmp_path, monkeypatch):
    (tmp_path / "faulty_convnet.py").write_text(textwrap.dedent(FAULT))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "faulty_convnet"
    sys.modules.pop("faulty_convnet", None)


@pytest.mark.parametrize("model", ["happy", "signs"])
def test_a_scaled_gradient_fails_its_row(faulty, model):
    """torch.nn's model with dW2 scaled by 1.001 in float64: the dW2 row fails (norm-wise 1e-3 against 1e-12),
    every other row passes; the unaltered module passes every row."""
    rows = conv_models.compare_model_step(model, "float64", "torch-nn", module=faulty)
    failing = rows[~rows["passed"]]
    assert list(zip(failing["quantity"], failing["layer"])) == [("dW", 2)]
    assert failing["bound_ratio"].iloc[0] > 1e8 and "norm-wise difference" in failing["note"].iloc[0]
    assert failing["criterion"].iloc[0] == "max_rel_err<=1e-12"
    assert conv_models.compare_model_step(model, "float64", "torch-nn")["passed"].all()


def test_a_scaled_cost_fails_its_trajectory_step(faulty):
    rows = conv_models.compare_model_training("signs", "float64", "torch-nn", module=faulty)
    failing = rows[~rows["passed"]]
    assert list(zip(failing["phase"], failing["quantity"], failing["step"])) == [("trajectory", "cost", 2)]


def test_a_raising_or_missing_module_gives_rows_not_exceptions(tmp_path, monkeypatch):
    (tmp_path / "raising_convnet.py").write_text("def forward_backward(*a, **k):\n    raise ValueError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = conv_models.compare_model_step("signs", "float32", "keras", module="raising_convnet")
    assert not rows["passed"].any() and "ValueError" in rows["note"].iloc[0]
    sys.modules.pop("raising_convnet", None)
    rows = conv_models.compare_model_step("signs", "float32", "keras", module="no_such_convnet_module")
    assert list(rows["phase"]) == ["unavailable"]
