"""``nnparity check``: a learner's course-style functions against the reference.

The correct answers in ``parity_tests/course/`` (written as the course's notebooks ask) must pass; each
known mistake, written into a copy of them by the test, must fail at the function and quantity where it
is made and be diagnosed by its signature; a notebook is checked like a .py file; the learner's
exceptions, hangs and ``sys.exit`` are reported cleanly; bad usage exits 2 in one line.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnparity.check.battery import run_check
from nnparity.check.target import load_target

COURSE = Path(__file__).parent / "course"
ROOT = Path(__file__).parent.parent


def check(path, timeout=10.0):
    return run_check(load_target(str(path)), timeout=timeout)


def mutate(tmp_path, base, old, new, count=1):
    """A copy of a correct answer with one mistake written in (``old`` must occur ``count`` times)."""
    source = (COURSE / base).read_text()
    assert source.count(old) == count, f"{old!r} occurs {source.count(old)} times in {base}"
    path = tmp_path / f"learner_{base}"
    path.write_text(source.replace(old, new))
    return path


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nnparity", "check", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("name, interface, functions", [
    ("logistic.py", ["logistic"], 5),
    ("planar.py", ["two-layer"], 9),  # with its sigmoid helper
    ("deep.py", ["deep"], 14),  # 13 functions and the composed training run
    ("optimisation.py", ["optimisation"], 13),
    ("gradient_checking.py", ["gradient-checking"], 3),  # its 1-D forward_propagation(x, theta) is not the planar one
])
def test_a_correct_course_implementation_passes(name, interface, functions):
    result = check(COURSE / name)
    failures = [r for r in result.rows if not r.passed]
    assert not failures, failures[:3]
    assert result.interfaces == interface
    assert len(result.checked) == functions
    assert result.passed and result.first is None and result.diagnoses == []
    # both dtypes, and the shapes the issue names, were really compared (the 1-D gradient check is scalars)
    if name != "gradient_checking.py":
        assert {r.dtype for r in result.rows} == {"float64", "float32"}
        assert len(result.rows) > 40


def test_the_checklist_names_conventions_where_the_course_has_two():
    result = check(COURSE / "optimisation.py")
    dropout = next(f for f in result.functions() if f["function"] == "backward_propagation_with_dropout")
    assert dropout["conventions"] == ["after the mask and 1/keep_prob (the course's)"]
    init = next(f for f in result.functions() if f["function"] == "update_parameters_with_adam")
    assert init["passed"]


def test_the_reference_convention_for_dropout_is_recognised(tmp_path):
    path = mutate(tmp_path, "optimisation.py", "    dA2 = dA2 * D2\n    dA2 = dA2 / keep_prob\n",
                  "    dA2_seen = dA2\n    dA2 = dA2 * D2\n    dA2 = dA2 / keep_prob\n")
    head, _, tail = path.read_text().rpartition('"dA2": dA2, "dZ2"')  # the dropout backward's return
    path.write_text(head + '"dA2": dA2_seen, "dZ2"' + tail)
    result = check(path)
    assert result.passed, [r for r in result.rows if not r.passed][:2]
    dropout = next(f for f in result.functions() if f["function"] == "backward_propagation_with_dropout")
    assert "before the mask (the reference's)" in dropout["conventions"]


# (file, the correct line, the mistake, the function and quantity where it must first show, the diagnosis)
MISTAKES = [
    ("deep.py", "    dW = 1 / m * np.dot(dZ, A_prev.T)", "    dW = np.dot(dZ, A_prev.T)",
     "linear_backward", "dW", "missing-1-over-m"),
    ("deep.py", "    dA_prev = np.dot(W.T, dZ)", "    dA_prev = np.dot(W.T, dZ) / m",
     "linear_backward", "dA_prev", "extra-1-over-m"),
    ("logistic.py", "    dw = 1 / m * np.dot(X, (A - Y).T)", "    dw = 1 / m * np.dot(A - Y, X.T)",
     "propagate", "dw", "transposed"),
    ("deep.py", "    dA_prev = np.dot(W.T, dZ)", "    dA_prev = -np.dot(W.T, dZ)",
     "linear_backward", "dA_prev", "sign-flipped"),
    ("deep.py", "    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)", "    db = 1 / m * np.sum(dZ, axis=1)",
     "linear_backward", "db", "missing-keepdims"),
    ("planar.py", "(1 - np.power(A1, 2))", "(A1 * (1 - A1))",
     "backward_propagation", "dW1", "wrong-activation-derivative"),
    ("deep.py", "    dZ = dA * s * (1 - s)", "    dZ = dA * s * (1 + s)",
     "sigmoid_backward", "dZ", "sigmoid-derivative-plus"),
    ("deep.py", 'parameters["b" + str(L)], "sigmoid")', 'parameters["b" + str(L)], "relu")',
     "L_model_forward", "A3", "relu-output"),
    ("deep.py", "np.multiply(1 - Y, np.log(1 - AL))", "np.multiply(1 - Y, np.log(AL))",
     "compute_cost", "cost", "cost-log-twice"),
    ("deep.py", "    cost = np.squeeze(cost)", "    cost = np.array(cost).reshape(1, 1)",
     "compute_cost", "cost", "cost-not-squeezed"),
    ("deep.py", '] - learning_rate * grads["dW"', '] + learning_rate * grads["dW"',
     "update_parameters", "W1", "gradient-ascent"),
    ("optimisation.py", "(1 - beta1 ** t)", "(1 - beta1 ** (t + 1))",
     "update_parameters_with_adam", "v_corrected[dW1]", "adam-t-off-by-one"),
    ("optimisation.py", "v[k] / (1 - beta1 ** t)", "v[k] / (1 - beta2 ** t)",
     "update_parameters_with_adam", "v_corrected[dW1]", "adam-correction-wrong-moment"),
    ("optimisation.py",
     '        v["dW" + str(l)] = beta * v["dW" + str(l)] + (1 - beta) * grads["dW" + str(l)]\n'
     '        v["db" + str(l)] = beta * v["db" + str(l)] + (1 - beta) * grads["db" + str(l)]\n'
     '        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * v["dW" + str(l)]\n'
     '        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * v["db" + str(l)]\n',
     '        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * v["dW" + str(l)]\n'
     '        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * v["db" + str(l)]\n'
     '        v["dW" + str(l)] = beta * v["dW" + str(l)] + (1 - beta) * grads["dW" + str(l)]\n'
     '        v["db" + str(l)] = beta * v["db" + str(l)] + (1 - beta) * grads["db" + str(l)]\n',
     "update_parameters_with_momentum", "W1", "momentum-after-update"),
    ("optimisation.py", "    A1 = A1 / keep_prob\n", "    A1 = A1\n",
     "forward_propagation_with_dropout", "A1", "dropout-not-rescaled"),
    ("optimisation.py", "    dA1 = dA1 * D1\n", "    dA1 = dA1 * (np.random.rand(*D1.shape) < keep_prob)\n",
     "backward_propagation_with_dropout", "dA1", "dropout-fresh-mask"),
    ("optimisation.py", "    return cross_entropy_cost + L2_regularization_cost",
     "    return cross_entropy_cost", "compute_cost_with_regularization", "cost", "l2-missing-in-cost"),
    ("optimisation.py", "    dW3 = 1. / m * np.dot(dZ3, A2.T) + lambd / m * W3",
     "    dW3 = 1. / m * np.dot(dZ3, A2.T)", "backward_propagation_with_regularization", "dW3",
     "l2-missing-in-gradient"),
    ("optimisation.py", "1 / m * lambd / 2 * (", "1 / m * lambd * (",
     "compute_cost_with_regularization", "cost", "l2-wrong-factor"),
    ("deep.py", "    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)", "    db = 1 / m * np.sum(dZ)",
     "linear_backward", "db", "sum-over-all-axes"),
    ("planar.py", "(1 - np.power(A1, 2))", '(1 - np.power(cache["Z1"], 2))',
     "backward_propagation", "dW1", "derivative-of-z"),
    ("deep.py", "        A, activation_cache = relu(Z)", "        A, activation_cache = sigmoid(Z)",
     "linear_activation_forward", "A", "wrong-activation"),
    ("deep.py", '] - learning_rate * grads["dW"', '] - grads["dW"',
     "update_parameters", "W1", "learning-rate-missing"),
    ("deep.py", '] - learning_rate * grads["dW"', '] - learning_rate * learning_rate * grads["dW"',
     "update_parameters", "W1", "learning-rate-twice"),
    ("optimisation.py", '(1 - beta) * grads["dW" + str(l)]', 'grads["dW" + str(l)]',
     "update_parameters_with_momentum", "v[dW1]", "momentum-undamped"),
    ("deep.py", "    dZ[Z <= 0] = 0", "    dZ[Z < 0] = 0", "relu_backward", "dZ", "relu-kink-convention"),
    ("deep.py", "    for l in range(L):", "    for l in range(L - 1):", "update_parameters", "W2",
     "layer-not-updated"),  # the 2-layer networks' last layer
    ("deep.py", "    m = Y.shape[1]", "    m = Y.shape[0]", "compute_cost", "cost", "m-wrong-axis"),
    ("deep.py", "np.multiply(1 - Y, np.log(1 - AL))", "np.multiply(1 - Y, np.log(1 + AL))",
     "compute_cost", "cost", "cost-wrong-for-one-label"),
    ("deep.py", "    dZ = np.array(dA, copy=True)", "    dZ = dA", "relu_backward", "dA", "input-changed-in-place"),
]


@pytest.mark.parametrize("base, old, new, function, quantity, diagnosis", MISTAKES,
                         ids=[m[-1] for m in MISTAKES])
def test_a_known_mistake_is_found_where_it_is_made_and_diagnosed(tmp_path, base, old, new, function, quantity,
                                                                  diagnosis):
    result = check(mutate(tmp_path, base, old, new))
    assert not result.passed
    assert result.first.function == function, result.first
    assert result.first.quantity == quantity, result.first
    ids = [d["id"] for d in result.diagnoses if d["function"] == function]
    assert ids and ids[0] == diagnosis, result.diagnoses
    hint = next(d["hint"] for d in result.diagnoses if d["id"] == diagnosis)
    assert "\n" not in hint and "=" in hint  # one line, naming the notes' equation


@pytest.mark.parametrize("base, old, new, function", [
    ("optimisation.py", "np.floor(epoch_num / time_interval)", "(epoch_num / time_interval)", "schedule_lr_decay"),
    ("optimisation.py", "1 / (1 + decay_rate * epoch_num) * learning_rate0", "learning_rate0 / (1 + decay_rate)",
     "update_lr"),
    ("gradient_checking.py", "    dtheta = x\n", "    dtheta = theta\n", "backward_propagation"),
    ("gradient_checking.py", "(J_plus - J_minus) / (2 * epsilon)", "(J_plus - J_minus) / epsilon", "gradient_check"),
])
def test_learning_rate_decay_and_the_gradient_check_are_checked(tmp_path, base, old, new, function):
    result = check(mutate(tmp_path, base, old, new))
    assert result.first.function == function, result.first


def test_softmax_along_the_wrong_axis_is_diagnosed(tmp_path):
    path = tmp_path / "helpers.py"
    path.write_text("import numpy as np\n\n\ndef softmax(Z):\n    E = np.exp(Z - Z.max())\n"
                    "    return E / np.sum(E, axis=1, keepdims=True)\n\n\ndef relu_backward(dA, cache):\n"
                    "    Z = cache\n    dZ = np.array(dA, copy=True)\n    dZ[Z <= 0] = 0\n    return dZ\n")
    result = check(path)
    assert result.first.function == "softmax"
    assert result.diagnoses[0]["id"] == "softmax-wrong-axis"
    assert next(f for f in result.functions() if f["function"] == "relu_backward")["passed"]


def test_a_notebook_is_checked_like_its_python_file(tmp_path):
    nbformat = pytest.importorskip("nbformat")  # a dependency of nnparity: installed by make test
    source = (COURSE / "deep.py").read_text()
    parts = source.split("\n\n\ndef ")
    cells = [nbformat.v4.new_markdown_cell("# Deep network, step by step"),
             nbformat.v4.new_code_cell("%matplotlib inline\n" + parts[0]),
             nbformat.v4.new_code_cell("train_x, train_y = load_data('datasets/train_catvnoncat.h5')  # not run")]
    cells += [nbformat.v4.new_code_cell("def " + p) for p in parts[1:]]
    cells.append(nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
                                           "print(L_model_forward(train_x, parameters))"))
    notebook = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / "Building_your_Deep_Neural_Network.ipynb"
    nbformat.write(notebook, str(path))
    from_notebook, from_file = check(path), check(COURSE / "deep.py")
    assert from_notebook.passed
    assert from_notebook.checked == from_file.checked
    assert len(from_notebook.rows) == len(from_file.rows)
    # and a mistake in a cell is found as in the file
    cell = next(c for c in notebook.cells if "dW = 1 / m * np.dot(dZ, A_prev.T)" in c.source)
    cell.source = cell.source.replace("dW = 1 / m * np.dot(dZ, A_prev.T)", "dW = np.dot(dZ, A_prev.T)")
    nbformat.write(notebook, str(path))
    assert check(path).first.function == "linear_backward"


def test_an_exception_in_the_learners_function_names_the_function_and_their_line(tmp_path):
    path = mutate(tmp_path, "deep.py", "    dW = 1 / m * np.dot(dZ, A_prev.T)", "    dW = 1 / m * np.dot(dZ, A_prev)")
    result = check(path)
    first = result.first
    assert first.function == "linear_backward"
    line = path.read_text().splitlines().index("    dW = 1 / m * np.dot(dZ, A_prev)") + 1
    assert "raised ValueError" in first.message
    assert f"{path.name}, line {line}" in first.message and "np.dot(dZ, A_prev)" in first.message


def test_a_hang_and_sys_exit_are_reported_and_the_rest_is_still_checked(tmp_path):
    source = (COURSE / "deep.py").read_text()
    source = source.replace("def relu(Z):\n", "def relu(Z):\n    while True:\n        pass\n")
    source = source.replace("def sigmoid_backward(dA, cache):\n",
                            "def sigmoid_backward(dA, cache):\n    import sys\n    sys.exit(3)\n")
    source = source.replace("def linear_forward(A, W, b):\n",
                            "def linear_forward(A, W, b):\n    print('debugging', A.shape)\n")
    path = tmp_path / "deep_hang.py"
    path.write_text(source)
    result = check(path, timeout=1.0)
    relu = [r for r in result.rows if r.function == "relu"]
    assert relu and all("did not return" in r.message for r in relu)
    exits = [r for r in result.rows if r.function == "sigmoid_backward"]
    assert exits and all("sys.exit" in r.message for r in exits)
    # everything that does not call the broken helpers still passes; printing changed nothing
    by_name = {f["function"]: f["passed"] for f in result.functions()}
    assert by_name["linear_forward"] and by_name["initialize_parameters_deep"] and by_name["update_parameters"]
    assert result.first.function == "relu"


def test_the_cli_prints_the_answer_and_exits_1_on_a_mistake():
    run = cli("examples/course_mistake.py")
    assert run.returncode == 1, run.stderr
    assert "first divergence" in run.stdout and "linear_backward" in run.stdout
    assert "likely mistake" in run.stdout and "missing" not in run.stderr
    assert run.stdout.rstrip().splitlines()[-1].startswith("FAIL")


def test_the_cli_json_has_the_issues_fields(tmp_path):
    run = cli(str(COURSE / "logistic.py"), "--json")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["verdict"] == "pass" and answer["interface"] == ["logistic"]
    assert answer["first_divergence"] is None and answer["diagnoses"] == []
    assert answer["checked"] == ["sigmoid", "initialize_with_zeros", "propagate", "optimize", "predict"]
    run = cli("examples/course_mistake.py", "--json")
    answer = json.loads(run.stdout)
    assert run.returncode == 1 and answer["verdict"] == "fail"
    assert set(answer["first_divergence"]) >= {"function", "quantity", "layer", "message"}
    assert {"id", "message", "hint"} <= set(answer["diagnoses"][0])


@pytest.mark.parametrize("args, words", [
    (["missing_file.py"], "no such file"),
    (["README.md"], ".py"),
    (["parity_tests/course"], "directory"),
])
def test_bad_usage_is_one_line_and_exit_2(args, words):
    run = cli(*args)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert words in run.stderr


def test_a_file_without_course_functions_is_bad_usage(tmp_path):
    path = tmp_path / "unrelated.py"
    path.write_text("def hello():\n    return 1\n")
    run = cli(str(path))
    assert run.returncode == 2 and "defines none of the course's functions" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_protocol_implementation_gets_the_harness_through_check(tmp_path):
    result = check(ROOT / "examples" / "my_network.py")
    assert result.interfaces == ["protocol"]
    assert result.checked == ["forward_backward", "train", "predictions"] and result.passed
    assert {r.dtype for r in result.rows} == {"float64", "float32"}
    path = tmp_path / "dw1_off.py"  # the same network with a 1e-6 relative error in dW1
    path.write_text("from reference import model\n\n\ndef forward_backward(parameters, X, Y, case, masks=None):\n"
                    "    grads = model.forward_backward(parameters, X, Y, case, masks)\n"
                    "    grads['dW1'] = grads['dW1'] * (1 + 1e-6)\n    return grads\n\n\n"
                    "def train(parameters, X, Y, case, schedule=None, masks=None, on_step=None):\n"
                    "    return model.train(parameters, X, Y, case, schedule, masks)\n")
    result = check(path)
    assert not result.passed
    assert (result.first.function, result.first.quantity, result.first.layer) == ("forward_backward", "dW1", 1)


def test_the_output_gradient_shortcut_passes_and_is_named(tmp_path):
    """dZL = AL - Y and the chained dAL are both the course's; a saturated output tells them apart."""
    path = mutate(tmp_path, "deep.py", 'linear_activation_backward(dAL, current_cache, "sigmoid")',
                  "linear_backward(AL - Y, current_cache[0])")
    result = check(path)
    assert result.passed, [r for r in result.rows if not r.passed][:2]
    backward = next(f for f in result.functions() if f["function"] == "L_model_backward")
    assert "dZL = AL - Y (the shortcut)" in backward["conventions"]
    chained = next(f for f in check(COURSE / "deep.py").functions() if f["function"] == "L_model_backward")
    assert chained["conventions"] == ["dAL chained through sigmoid_backward (the course's)"]


def test_every_signature_is_proven_end_to_end():
    """Each signature of the diagnosis table is diagnosed above, from a learner's file, through the battery."""
    from nnparity.check.diagnosis import SIGNATURES

    proven = {m[-1] for m in MISTAKES} | {"softmax-wrong-axis"}
    # found by the battery from more than one value: across two calls, or an argument changed in place
    beyond_one_value = {"cost-wrong-for-one-label", "input-changed-in-place"}
    assert {s.id for s in SIGNATURES} | beyond_one_value == proven
    assert len(proven) >= 15


def test_relus_kink_is_compared_exactly_and_the_convention_is_named(tmp_path):
    """relu'(0) = 1 (``dZ[Z < 0] = 0``) once passed with "ok ... dZ = dA where Z > 0, else 0"."""
    result = check(mutate(tmp_path, "deep.py", "    dZ[Z <= 0] = 0", "    dZ[Z < 0] = 0"))
    relu = next(f for f in result.functions() if f["function"] == "relu_backward")
    assert not relu["passed"] and "relu'(0) = 1" in relu["conventions"]
    assert result.first.function == "relu_backward" and "Z = 0" in result.first.scenario
    hint = next(d["hint"] for d in result.diagnoses if d["id"] == "relu-kink-convention")
    assert "dZ[Z <= 0] = 0" in hint
    course = next(f for f in check(COURSE / "deep.py").functions() if f["function"] == "relu_backward")
    assert course["passed"] and course["conventions"] == ["relu'(0) = 0 (the course's)"]


def test_an_argument_changed_in_place_is_caught_at_the_function_that_changes_it(tmp_path):
    """``dZ = dA`` then ``dZ[Z <= 0] = 0`` writes into the caller's dA; it once showed only in L_model_backward's
    dA2, diagnosed as a wrong activation derivative."""
    result = check(mutate(tmp_path, "deep.py", "    dZ = np.array(dA, copy=True)", "    dZ = dA"))
    assert (result.first.function, result.first.quantity) == ("relu_backward", "dA")
    assert "in place" in result.first.message
    found = next(d for d in result.diagnoses if d["id"] == "input-changed-in-place")
    assert found["function"] == "relu_backward" and "np.array(dA, copy=True)" in found["hint"]
    assert not any(d["id"] == "wrong-activation-derivative" for d in result.diagnoses), result.diagnoses
    downstream = [d for d in result.diagnoses if d["id"] == "downstream-of-in-place"]
    assert downstream and all("relu_backward" in d["message"] for d in downstream)
    # the course's own update_parameters, which replaces the entries of the dict it is given, is not a mistake
    path = mutate(tmp_path, "deep.py", "    parameters = params.copy()\n", "    parameters = params\n")
    assert check(path).passed


def test_without_a_known_mistake_the_answer_shows_the_equation(tmp_path):
    path = mutate(tmp_path, "deep.py", "    Z = np.dot(W, A) + b", "    Z = np.dot(W, A) + 2 * b")
    run = cli(str(path))
    assert run.returncode == 1, run.stderr
    line = next(x for x in run.stdout.splitlines() if "no known mistake" in x)
    assert "Z[l] = W[l] A[l-1] + b[l]" in line
    assert "equation above" not in run.stdout


def test_the_cost_says_which_label_its_wrong_term_is_for(tmp_path):
    result = check(mutate(tmp_path, "deep.py", "np.multiply(1 - Y, np.log(1 - AL))",
                          "np.multiply(1 - Y, np.log(AL))"))
    found = next(d for d in result.diagnoses if d["id"] == "cost-wrong-for-one-label")
    assert "Y = 0" in found["message"] and "(1 - Y) log(1 - AL)" in found["hint"]
    result = check(mutate(tmp_path, "deep.py", "np.multiply(Y, np.log(AL))", "np.multiply(Y, np.log(1 - AL))"))
    found = next(d for d in result.diagnoses if d["id"] == "cost-wrong-for-one-label")
    assert "Y = 1" in found["message"]


def test_m_from_the_wrong_axis_is_not_told_to_divide_by_m(tmp_path):
    result = check(mutate(tmp_path, "deep.py", "    m = Y.shape[1]", "    m = Y.shape[0]"))
    ids = [d["id"] for d in result.diagnoses if d["function"] == "compute_cost"]
    assert ids == ["m-wrong-axis"], result.diagnoses
    assert "Y.shape[1]" in result.diagnoses[0]["hint"]


@pytest.mark.parametrize("content, words", [
    ("def hello():\n    return 1\n", "defines none of the course's functions"),
    ("def relu(Z:\n    return Z\n", "SyntaxError"),
])
def test_json_prints_one_document_on_every_exit(tmp_path, content, words):
    path = tmp_path / "learner.py"
    path.write_text(content)
    for args in ([str(path), "--json"], ["missing_file.py", "--json"]):
        run = cli(*args)
        assert run.returncode == 2
        answer = json.loads(run.stdout)  # exactly one document
        assert answer["verdict"] == "error" and answer["exit_code"] == 2 and answer["error"]
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert answer["error"] in run.stderr
    assert words in json.loads(cli(str(path), "--json").stdout)["error"]


def test_a_hanging_function_costs_about_the_timeout_not_a_timeout_per_call(tmp_path):
    """relu hangs; once it has, neither it nor the functions that call it are called again."""
    import time

    path = mutate(tmp_path, "deep.py", "def relu(Z):\n", "def relu(Z):\n    while True:\n        pass\n")
    start = time.monotonic()
    run = cli(str(path), "--timeout", "2", "--json")
    elapsed = time.monotonic() - start
    assert run.returncode == 1, run.stderr
    answer = json.loads(run.stdout)
    assert elapsed < 3 * 2, elapsed
    rows = {f["function"]: f for f in answer["functions"]}
    assert not rows["relu"]["passed"] and "did not return within 2 s" in rows["relu"]["first_failure"]
    assert "not run" in rows["L_model_forward"]["first_failure"] and "relu" in rows["L_model_forward"]["first_failure"]
    assert rows["linear_backward"]["passed"] and rows["update_parameters"]["passed"]
