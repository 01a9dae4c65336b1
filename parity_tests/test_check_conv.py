"""``nnparity check`` on the convolution notebook: the correct answer (``parity_tests/course/convolution.py``, written
as the notebook asks) passes every function; each typical mistake, written by the test into one function of a copy
of it, fails at the function and quantity where it is made and is diagnosed by its signature
(``nnparity.check.diagnosis_conv``), from the learner's values alone; bad input keeps the one-line exit 2.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnparity.check.battery import run_check
from nnparity.check.diagnosis import Divergence, diagnose
from nnparity.check.target import load_target

COURSE = Path(__file__).parent / "course"
FIXTURE = COURSE / "convolution.py"
ROOT = Path(__file__).parent.parent
FUNCTIONS = ["zero_pad", "conv_single_step", "conv_forward", "pool_forward", "conv_backward",
             "create_mask_from_window", "distribute_value", "pool_backward"]


def check(path, timeout=10.0):
    return run_check(load_target(str(path)), timeout=timeout)


def mutate(tmp_path, function, *edits):
    """A copy of the correct answer with ``edits`` ((old, new) pairs, each ``old`` occurring once in ``function``'s
    definition) written into that function only."""
    source = FIXTURE.read_text()
    start = source.index(f"\ndef {function}(")
    end = source.find("\ndef ", start + 1)
    end = len(source) if end < 0 else end
    body = source[start:end]
    for old, new in edits:
        assert body.count(old) == 1, f"{old!r} occurs {body.count(old)} times in {function}"
        body = body.replace(old, new)
    path = tmp_path / "my_conv.py"
    path.write_text(source[:start] + body + source[end:])
    return path


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nnparity", "check", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_the_correct_convolution_notebook_passes_every_function():
    result = check(FIXTURE)
    failures = [r for r in result.rows if not r.passed]
    assert not failures, failures[:3]
    assert result.interfaces == ["convolution"]
    assert result.checked == FUNCTIONS and result.absent == []
    assert result.passed and result.first is None and result.diagnoses == []
    assert {r.dtype for r in result.rows} == {"float64", "float32"}
    # every function ran on more than one shape, in both dtypes
    for name in FUNCTIONS:
        assert len({(r.scenario, r.dtype) for r in result.rows if r.function == name}) >= 4, name
    # the notebook's [pad:-pad] is never called with pad = 0, and the answer says why
    assert not any(r.function == "conv_backward" and "pad = 0" in r.scenario for r in result.rows)
    assert any("pad >= 1 only" in n and "[pad:-pad" in n for n in result.notes)


# (id, the function the mistake is written in, its edits, the function and quantity of the first divergence,
#  the diagnosis, words its message must hold)
MISTAKES = [
    ("stride-forgotten", "conv_forward", [("vert_start = h * stride", "vert_start = h")],
     "conv_forward", "Z", "conv-stride-forgotten", "vert_start = h"),
    ("stride-forgotten/pool-horizontal", "pool_forward", [("horiz_start = w * stride", "horiz_start = w")],
     "pool_forward", "A", "conv-stride-forgotten", "horiz_start = w"),
    ("stride-forgotten/pool-backward", "pool_backward", [("vert_start = h * stride", "vert_start = h"),
                                                         ("horiz_start = w * stride", "horiz_start = w")],
     "pool_backward", "dA_prev", "conv-stride-forgotten", "vert_start = h and horiz_start = w"),
    ("stride-forgotten/conv-backward", "conv_backward", [("vert_start = h * stride", "vert_start = h")],
     "conv_backward", "dA_prev", "conv-stride-forgotten", "stride = 2"),
    ("pad-wrong-axes/examples", "zero_pad", [("((0, 0), (pad, pad), (pad, pad), (0, 0))",
                                             "((pad, pad), (pad, pad), (pad, pad), (0, 0))")],
     "zero_pad", "X_pad", "conv-pad-wrong-axes", "examples, height and width axes"),
    ("pad-wrong-axes/channels", "zero_pad", [("((0, 0), (pad, pad), (pad, pad), (0, 0))",
                                             "((0, 0), (0, 0), (pad, pad), (pad, pad))")],
     "zero_pad", "X_pad", "conv-pad-wrong-axes", "width and channels axes"),
    ("pad-wrong-axes/every-axis", "zero_pad", [("((0, 0), (pad, pad), (pad, pad), (0, 0))", "pad")],
     "zero_pad", "X_pad", "conv-pad-wrong-axes", "examples, height, width and channels"),
    ("output-size/missing-plus-1", "conv_forward", [("n_H = int((n_H_prev - f + 2 * pad) / stride) + 1",
                                                     "n_H = (n_H_prev - f + 2 * pad) // stride"),
                                                    ("n_W = int((n_W_prev - f + 2 * pad) / stride) + 1",
                                                     "n_W = (n_W_prev - f + 2 * pad) // stride")],
     "conv_forward", "Z", "conv-output-size-off-by-one", "one fewer"),
    ("output-size/plus-2", "conv_forward", [("n_H = int((n_H_prev - f + 2 * pad) / stride) + 1",
                                             "n_H = int((n_H_prev - f + 2 * pad) / stride) + 2"),
                                            ("n_W = int((n_W_prev - f + 2 * pad) / stride) + 1",
                                             "n_W = int((n_W_prev - f + 2 * pad) / stride) + 2")],
     "conv_forward", "Z", "conv-output-size-off-by-one", "one more"),
    ("output-size/pool", "pool_forward",
     [("n_H = int(1 + (n_H_prev - f) / stride)", "n_H = int((n_H_prev - f) / stride)"),
      ("n_W = int(1 + (n_W_prev - f) / stride)", "n_W = int((n_W_prev - f) / stride)")],
     "pool_forward", "A", "conv-output-size-off-by-one", "without the + 1"),
    ("bias/per-product", "conv_single_step",
     [("s = np.multiply(a_slice_prev, W)", "s = np.multiply(a_slice_prev, W) + b"), ("    Z = Z + b.item()\n", "")],
     "conv_single_step", "Z", "conv-bias-per-position", "each of the f*f*n_C_prev"),
    ("bias/not-added", "conv_single_step", [("    Z = Z + b.item()\n", "")],
     "conv_single_step", "Z", "conv-bias-per-position", "without b"),
    ("bias/one-channel", "conv_forward", [("biases = b[:, :, :, c]", "biases = b[:, :, :, 0]")],
     "conv_forward", "Z", "conv-bias-per-position", "b[:, :, :, 0] for every channel"),
    ("average-not-divided", "distribute_value", [("average = dz / (n_H * n_W)", "average = dz")],
     "distribute_value", "a", "conv-average-not-divided", "the whole dz"),
    ("average-not-divided/pool-backward", "pool_backward", [("distribute_value(da, shape)", "np.ones(shape) * da")],
     "pool_backward", "dA_prev", "conv-average-not-divided", "f * f"),
    ("max-pool/minimum", "create_mask_from_window", [("np.max(x)", "np.min(x)")],
     "create_mask_from_window", "mask", "conv-max-pool-wrong-cell", "minimum"),
    ("max-pool/mask-not-applied", "pool_backward", [("np.multiply(mask, dA[i, h, w, c])", "dA[i, h, w, c]")],
     "pool_backward", "dA_prev", "conv-max-pool-wrong-cell", "mask is not applied"),
    ("max-pool/across-channels", "pool_backward",
     [("a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]",
       "a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, :]"),
      ("dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += np.multiply(mask",
       "dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, :] += np.multiply(mask")],
     "pool_backward", "dA_prev", "conv-max-pool-wrong-cell", "across all channels"),
    ("transposed-kernel", "conv_forward",
     [("weights = W[:, :, :, c]", "weights = np.transpose(W[:, :, :, c], (1, 0, 2))")],
     "conv_forward", "Z", "conv-transposed-kernel", "two spatial axes swapped"),
    ("transposed-kernel/backward", "conv_backward",
     [("+= W[:, :, :, c] * dZ[i, h, w, c]", "+= np.transpose(W[:, :, :, c], (1, 0, 2)) * dZ[i, h, w, c]")],
     "conv_backward", "dA_prev", "conv-transposed-kernel", "two spatial axes swapped"),
    ("dw-not-summed/assigned", "conv_backward", [("dW[:, :, :, c] += a_slice", "dW[:, :, :, c] = a_slice")],
     "conv_backward", "dW", "conv-dw-not-summed", "= where the sum needs +="),
    ("dw-not-summed/divided-by-m", "conv_backward", [("return dA_prev, dW, db", "return dA_prev, dW / m, db")],
     "conv_backward", "dW", "conv-dw-not-summed", "divided by the number of examples"),
    ("dw-not-summed/per-example", "conv_backward",
     [("    dW = np.zeros((f, f, n_C_prev, n_C))\n", ""),
      ("        da_prev_pad = dA_prev_pad[i]\n",
       "        da_prev_pad = dA_prev_pad[i]\n        dW = np.zeros((f, f, n_C_prev, n_C))\n")],
     "conv_backward", "dW", "conv-dw-not-summed", "last of the m = 2 examples"),
]


@pytest.mark.parametrize("key, where, edits, function, quantity, diagnosis, words", MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_each_conv_mistake_is_found_where_it_is_made_and_diagnosed(tmp_path, key, where, edits, function, quantity,
                                                                    diagnosis, words):
    result = check(mutate(tmp_path, where, *edits))
    assert not result.passed
    assert (result.first.function, result.first.quantity) == (function, quantity), result.first
    found = [d for d in result.diagnoses if d["function"] == function]
    assert found and found[0]["id"] == diagnosis, result.diagnoses
    message, hint = found[0]["message"], found[0]["hint"]
    assert words in message, message
    assert function in _line(result, found[0]), "the answer names the function"
    for text in (message, hint):
        assert text and "\n" not in text and "{" not in text
    assert re.search(r"\S \+?= \S", hint), hint  # the fix, as the course's line


def _line(result, d):
    return f"{d['function']} {d['quantity']}: {d['message']}"


def test_the_notebooks_float_b_raises_under_numpy_2_4_and_says_why(tmp_path):
    """The notebook's Z = Z + float(b) on a (1, 1, 1) b: TypeError from NumPy 2.4 on; named, with the fix."""
    try:
        float(np.ones((1, 1, 1)))
        pytest.skip(f"NumPy {np.__version__} still converts a (1, 1, 1) array with float()")
    except TypeError:
        pass
    result = check(mutate(tmp_path, "conv_single_step", ("Z = Z + b.item()", "Z = Z + float(b)")))
    assert result.first.function == "conv_single_step" and "raised TypeError" in result.first.message
    assert "Z = Z + float(b)" in result.first.message  # the learner's line
    found = next(d for d in result.diagnoses if d["function"] == "conv_single_step")
    assert found["id"] == "float-of-an-array" and f"NumPy here ({np.__version__})" in found["message"]
    assert "Z = Z + b.item()" in found["hint"]


def test_every_conv_signature_is_proven_end_to_end():
    from nnparity.check.diagnosis_conv import CONV_SIGNATURES

    assert {s.id for s in CONV_SIGNATURES} == {m[5] for m in MISTAKES}
    assert len({s.id for s in CONV_SIGNATURES}) == len(CONV_SIGNATURES) == 8


def test_the_right_values_their_rounding_and_noise_give_no_conv_diagnosis():
    """Each conv probe's expected value, that value moved by half its bound, and random values of its shape match
    no signature."""
    from nnparity.check import course

    rng = np.random.RandomState(7)
    for name in FUNCTIONS:
        for probe in course.probes_for(name, ()):
            for quantity, expect in probe.expected.items():
                bound = np.broadcast_to(expect.bound, expect.value.shape)
                wiggle = 0.5 * bound * np.where(np.arange(expect.value.size) % 2, 1, -1).reshape(expect.value.shape)
                noise = expect.value + (np.abs(expect.value).max() + 1) * rng.randn(*expect.value.shape)
                for got in (expect.value.copy(), expect.value + wiggle, noise):
                    div = Divergence(name, quantity, None, expect.value, got, bound, dict(probe.context))
                    assert diagnose(div) == [], (name, probe.scenario, quantity)


def test_the_dense_layers_signatures_are_not_applied_to_the_conv_layers():
    """dW / m is the conv-dw-not-summed mistake, not the dense layers' "divide by m once" (extra-1-over-m)."""
    from nnparity.check import course

    probe = course.probes_for("conv_backward", ())[0]
    expect = probe.expected["dW"]
    div = Divergence("conv_backward", "dW", None, expect.value, expect.value / 2,
                     np.broadcast_to(expect.bound, expect.value.shape), dict(probe.context))
    assert [d.id for d in diagnose(div)] == ["conv-dw-not-summed"]


def test_the_course_slice_fails_for_pad_0_which_is_why_it_is_not_checked(tmp_path):
    """The notebook's conv_backward raises for pad = 0; with the slice that works for every pad it passes too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("learner_conv", FIXTURE)
    learner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(learner)
    A, W, b = np.ones((1, 4, 4, 2)), np.ones((2, 2, 2, 3)), np.zeros((1, 1, 1, 3))
    Z, cache = learner.conv_forward(A, W, b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError):
        learner.conv_backward(Z, cache)
    path = mutate(tmp_path, "conv_backward", ("da_prev_pad[pad:-pad, pad:-pad, :]",
                                              "da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]"))
    assert check(path).passed


def test_a_missing_function_is_absent_and_one_that_calls_it_says_so(tmp_path):
    source = FIXTURE.read_text()
    start = source.index("\ndef pool_backward(")
    path = tmp_path / "no_pool_backward.py"
    path.write_text(source[:start])
    result = check(path)
    assert result.passed and result.absent == ["pool_backward"]
    # conv_forward calling a zero_pad the file does not define: the learner's line and the NameError
    path = tmp_path / "no_zero_pad.py"
    start, end = source.index("def zero_pad("), source.index("def conv_single_step(")
    path.write_text(source[:start] + source[end:])
    result = check(path)
    assert result.first.function == "conv_forward" and "NameError" in result.first.message
    assert "zero_pad" in result.first.message and "no_zero_pad.py, line" in result.first.message


def test_the_cli_on_the_correct_file_and_on_a_mistake(tmp_path):
    run = cli(str(FIXTURE))
    assert run.returncode == 0, run.stderr
    assert "the convolution model" in run.stdout and run.stdout.rstrip().splitlines()[-1].startswith("PASS")
    assert "pad >= 1 only" in run.stdout
    path = mutate(tmp_path, "conv_forward", ("vert_start = h * stride", "vert_start = h"))
    run = cli(str(path))
    assert run.returncode == 1, run.stderr
    text = " ".join(run.stdout.split())  # rich wraps long lines at 130 columns
    assert "first divergence (in the order of computation): conv_forward(1x1 filter, stride 2, float64) Z" in text
    mistake = text[text.index("likely mistake"):text.index("hint:")]
    assert "(conv_forward Z)" in mistake and "the stride = 2 is left out of the slice" in mistake
    assert "hint: move each window by the stride: vert_start = h * stride" in text
    assert run.stdout.rstrip().splitlines()[-1].startswith("FAIL")
    run = cli(str(mutate(tmp_path, "distribute_value", ("average = dz / (n_H * n_W)", "average = dz"))), "--json")
    answer = json.loads(run.stdout)
    assert run.returncode == 1 and answer["verdict"] == "fail"
    assert answer["diagnoses"][0]["id"] == "conv-average-not-divided"


@pytest.mark.parametrize("content, words", [
    ("import numpy as np\n\n\ndef zero_pad(X, pad:\n    return X\n", "SyntaxError"),
    ("def hello():\n    return 1\n", "defines none of the course's functions"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, content, words):
    path = tmp_path / "my_conv.py"
    path.write_text(content)
    run = cli(str(path))
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert words in run.stderr
