"""``nnparity check``'s loading and isolation layer: a learner's ``.py``, notebook or module, located
(``nnparity.check.target``) and run in a worker process (``nnparity.check.sandbox``) that survives, or is
replaced after, whatever the learner's code does."""

import os
import sys
import time

import nbformat
import numpy as np
import pytest

from nnparity.check.sandbox import GRACE, Sandbox
from nnparity.check.target import load_target
from nnparity.errors import UsageError

IMPORTS = "import numpy as np\nfrom nn_helpers import relu\nfrom testCases import linear_backward_test_case"
LINEAR_BACKWARD = "def linear_backward(dZ, X):\n    m = X.shape[1]\n    dW = np.dot(X, dZ)\n    return dW / m"
DEFINITIONS = [
    "def sigmoid(z):\n    print('sigmoid of', np.shape(z))\n    return 1 / (1 + np.exp(-z))",
    "def initialize(n, m):\n    return np.random.randn(n, m) * 0.01",
    LINEAR_BACKWARD,
    "def invert(A):\n    return np.linalg.inv(A)",
    "def mutate(X):\n    X[0, 0] = 99.0\n    return X",
    "class Layer:\n    def __init__(self, n):\n        self.n = n",
    "def chatty(n):\n    import os, sys\n    print('x' * n)\n    sys.stderr.write('to stderr\\n')\n"
    "    os.write(1, b'to fd 1\\n')\n    return n",
    "def hang():\n    while True:\n        pass",
    "def stubborn():\n    while True:\n        try:\n            while True:\n                pass\n"
    "        except BaseException:\n            pass",
    "def leave(code):\n    import sys\n    sys.exit(code)",
    "def die():\n    import os\n    os._exit(1)",
    "def segfault():\n    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)",
]
FUNCTIONS = {  # written out by hand: what the learner's code defines or imports by name
    "relu": ("Z",), "sigmoid": ("z",), "initialize": ("n", "m"), "linear_backward": ("dZ", "X"),
    "invert": ("A",), "mutate": ("X",), "Layer": ("n",), "chatty": ("n",), "hang": (), "stubborn": (),
    "leave": ("code",), "die": (), "segfault": (),
}
PY_SOURCE = "\n\n\n".join([IMPORTS] + DEFINITIONS)
HELPER = "import numpy as np\n\n\ndef relu(Z):\n    return np.maximum(0, Z)\n"
# a module of the checker's side that sandbox.run executes inside the worker, the user's module first
RUNNER = ("def apply(module, name, *args):\n    return getattr(module, name)(*args)\n\n\n"
          "def imported(module):\n    import sys\n    return sorted(sys.modules)\n")


def _write_py(directory):
    # run as a script it would hang: loading must not run it
    (directory / "my_nn.py").write_text(PY_SOURCE + '\n\n\nif __name__ == "__main__":\n    hang()\n')
    (directory / "nn_helpers.py").write_text(HELPER)
    return directory / "my_nn.py"


def _notebook_cells():
    """The notebook's cells: (kind, source), markdown and cells that must never run included."""
    return ([("markdown", "# My network"),
             ("code", "%matplotlib inline\n" + IMPORTS.replace("\n", "\nimport matplotlib.pyplot as plt\n", 1)),
             ("code", "!pip install nothing-at-all\nnp.dot?\nx = 1")]
            + [("code", text) for text in DEFINITIONS]
            + [("code", "train = open('missing.h5')\nX = np.load(train)"),  # data loading: raises if run
               ("code", "plt.plot([1, 2, 3])\nplt.show()"),
               ("code", "print 'python 2'"),  # does not parse: skipped, noted
               ("code", "parameters = hang()")])  # training: never returns if run


def _write_notebook(directory):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
                      for kind, text in _notebook_cells()]
    nbformat.write(notebook, str(directory / "my_nn.ipynb"))
    (directory / "nn_helpers.py").write_text(HELPER)
    return directory / "my_nn.ipynb"


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    """One sandbox on the .py file and one on the notebook (each in its own directory), for the whole module."""
    py = _write_py(tmp_path_factory.mktemp("py"))
    notebook = _write_notebook(tmp_path_factory.mktemp("notebook"))
    with Sandbox(load_target(str(py)), timeout=2) as file_box, Sandbox(load_target(str(notebook)), timeout=2) as nb_box:
        yield {"file": file_box, "notebook": nb_box}


@pytest.fixture(params=["file", "notebook"])
def box(request, boxes):
    return boxes[request.param]


def _where(box, code):
    """Where ``code`` (a whole line, stripped) is in the sources this module wrote: counted here, not by the sandbox."""
    if box.target.kind == "notebook":
        cells = [[row.strip() for row in text.splitlines()] for _, text in _notebook_cells()]
        cell = next(n for n, rows in enumerate(cells, start=1) if code in rows)
        return f"{box.target.display} cell {cell}, line {cells[cell - 1].index(code) + 1}: {code}"
    lines = [row.strip() for row in PY_SOURCE.splitlines()]
    return f"{box.target.display}, line {lines.index(code) + 1}: {code}"


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_file_and_a_notebook_offer_the_same_functions(boxes):
    assert boxes["file"].functions == FUNCTIONS
    assert boxes["notebook"].functions == FUNCTIONS


def test_a_notebook_contributes_only_its_imports_and_definitions(tmp_path):
    target = load_target(str(_write_notebook(tmp_path)))
    assert (target.kind, target.display) == ("notebook", str(tmp_path / "my_nn.ipynb"))
    for never in ("missing.h5", "plt.plot", "parameters = hang()", "%matplotlib", "!pip", "np.dot?", "x = 1",
                  "python 2"):
        assert never not in target.source
    line = target.source.splitlines().index("    dW = np.dot(X, dZ)")
    cell = [text for _, text in _notebook_cells()].index(LINEAR_BACKWARD) + 1
    assert target.cells[line] == (cell, 3)
    assert len(target.notes) == 1 and f"cell {len(_notebook_cells()) - 1}," in target.notes[0]


def test_missing_helpers_are_notes_not_failures(box):
    assert any("testCases" in note and "ModuleNotFoundError" in note for note in box.notes)


def test_a_call_returns_its_value_and_what_it_printed(box):
    outcome = box.call("sigmoid", np.array([0.0, np.log(3.0)]))
    assert outcome.ok and outcome.kind is None
    np.testing.assert_allclose(outcome.value, [0.5, 0.75])
    assert outcome.output == "sigmoid of (2,)\n"
    assert box.call("relu", np.array([-1.0, 2.0])).value.tolist() == [0.0, 2.0]  # from the helper beside it


def test_seed_makes_the_global_rng_reproducible(box):
    first, again = box.call("initialize", 3, 2, seed=1), box.call("initialize", 3, 2, seed=1)
    np.testing.assert_array_equal(first.value, np.random.RandomState(1).randn(3, 2) * 0.01)
    np.testing.assert_array_equal(first.value, again.value)
    assert not np.array_equal(first.value, box.call("initialize", 3, 2, seed=2).value)


def test_the_users_code_cannot_mutate_the_checkers_arrays(box):
    X = np.zeros((2, 2))
    outcome = box.call("mutate", X)
    assert outcome.value[0, 0] == 99.0 and X[0, 0] == 0.0


def test_a_call_says_which_arguments_it_changed_in_place(box):
    outcome = box.call("mutate", np.zeros((2, 2)))
    assert outcome.changed == ((0, "X", "array"),)
    assert box.call("sigmoid", np.zeros((2, 2))).changed == ()


def test_an_exception_names_the_users_line(box):
    outcome = box.call("linear_backward", np.ones((4, 3)), np.ones((4, 2)))
    assert (outcome.ok, outcome.kind) == (False, "raised")
    assert outcome.error.startswith("ValueError: shapes (4,2) and (4,3) not aligned") and "\n" not in outcome.error
    assert outcome.where == _where(box, "dW = np.dot(X, dZ)")


def test_an_exception_inside_numpy_still_names_the_users_line(box):
    outcome = box.call("invert", np.ones((2, 3)))
    assert outcome.kind == "raised" and outcome.error.startswith("LinAlgError")
    assert outcome.where == _where(box, "return np.linalg.inv(A)")


def test_a_hang_is_stopped_at_the_time_limit_and_the_next_call_works(boxes):
    box = boxes["file"]
    box.call("sigmoid", 0.0)
    pid = box._process.pid
    start = time.monotonic()
    outcome = box.call("hang")
    elapsed = time.monotonic() - start
    assert (outcome.ok, outcome.kind) == (False, "timeout")
    assert outcome.where == _where(box, "while True:") and "did not return within 2 s" in outcome.error
    assert box.timeout <= elapsed < box.timeout + GRACE + 3  # stopped, not waited for
    assert _gone(pid)
    assert box.call("sigmoid", 0.0).value == 0.5


def test_a_hang_that_swallows_the_interruption_is_killed(boxes):
    box = boxes["file"]
    outcome = box.call("stubborn")
    assert outcome.kind == "timeout" and "Fatal Python error" not in outcome.output
    assert box.call("sigmoid", 0.0).value == 0.5


def test_sys_exit_is_an_outcome(box):
    outcome = box.call("leave", 3)
    assert (outcome.ok, outcome.kind, outcome.error) == (False, "exit", "SystemExit: 3")
    assert outcome.where == _where(box, "sys.exit(code)")
    assert box.call("sigmoid", 0.0).value == 0.5


@pytest.mark.parametrize("name, how", [("die", "exit status 1"), ("segfault", "killed by signal SIGSEGV")])
def test_a_dying_worker_is_a_crash_and_the_next_call_works(boxes, name, how):
    box = boxes["file"]
    box.call("sigmoid", 0.0)
    pid = box._process.pid
    outcome = box.call(name)
    assert (outcome.ok, outcome.kind) == (False, "crash") and how in outcome.error
    assert _gone(pid)
    assert box.call("sigmoid", 0.0).value == 0.5


def test_a_segfault_names_the_users_line(boxes):
    box = boxes["notebook"]
    assert box.call("segfault").where == _where(box, "os.kill(os.getpid(), signal.SIGSEGV)")


def test_prints_do_not_corrupt_results_and_are_the_output(box):
    outcome = box.call("chatty", 5)
    assert outcome.value == 5
    assert outcome.output.splitlines() == ["xxxxx", "to stderr", "to fd 1"]
    flood = box.call("chatty", 100_000)
    assert flood.value == 100_000
    assert len(flood.output) < 11_000 and "more bytes of output not shown" in flood.output
    assert box.call("chatty", 1).output.splitlines() == ["x", "to stderr", "to fd 1"]  # the flood is over


def test_run_executes_a_checker_function_with_the_users_module(boxes, tmp_path, monkeypatch):
    (tmp_path / "sandbox_runner.py").write_text(RUNNER)
    monkeypatch.syspath_prepend(str(tmp_path))
    box = boxes["file"]
    box.close()  # the next call starts a worker that sees the new sys.path
    assert box.run("sandbox_runner:apply", "sigmoid", 0.0).value == 0.5
    failed = box.run("sandbox_runner:apply", "linear_backward", np.ones((4, 3)), np.ones((4, 2)))
    assert failed.kind == "raised" and failed.where == _where(box, "dW = np.dot(X, dZ)")
    assert box.run("sandbox_runner:apply", "leave", 0).kind == "exit"
    imported = set(box.run("sandbox_runner:imported").value)
    assert "numpy" in imported and not {"torch", "tensorflow", "jax", "nnparity"} & imported  # start-up stays cheap


def test_a_value_of_the_users_own_class_is_refused_without_running_their_code_here(tmp_path, monkeypatch):
    (tmp_path / "own_types.py").write_text("class Cache:\n    pass\n\n\ndef make():\n    return Cache()\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, so unpickling could import (run) it here
    with Sandbox(load_target(str(tmp_path / "own_types.py"))) as box:
        outcome = box.call("make")
        assert (outcome.ok, outcome.kind) == (False, "raised") and "own_types.Cache" in outcome.error
        assert "own_types" not in sys.modules
        absent = box.call("no_such_function")
        assert absent.kind == "raised" and absent.error.startswith("AttributeError") and absent.where is None


def test_a_module_is_found_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "learner_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('importing the package ran its code')\n")
    (package / "course.py").write_text("def relu(Z):\n    return max(Z, 0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    target = load_target("learner_pkg.course")
    assert (target.kind, target.module, target.path, target.directory) == ("module", "learner_pkg.course", None,
                                                                             str(tmp_path))
    assert "learner_pkg" not in sys.modules
    with pytest.raises(UsageError, match="learner_pkg.course: loading it raised RuntimeError: importing the package"):
        Sandbox(target).__enter__()
    (package / "__init__.py").write_text("")
    with Sandbox(target) as box:
        assert box.functions == {"relu": ("Z",)}
        assert box.call("relu", -2).value == 0


@pytest.mark.parametrize("name, content, message", [
    ("missing.py", None, "missing.py: no such file; give a .py file"),
    ("folder", "dir", "is a directory"),
    ("notes.txt", "hello", "is neither a .py file nor a .ipynb notebook"),
    ("broken.ipynb", "{not json", "is not a valid Jupyter notebook"),
    ("empty.ipynb", "{}", "is not a valid Jupyter notebook"),
    ("typo.py", "import numpy as np\n\ndef f(x)\n    return x\n", "typo.py, line 3: SyntaxError"),
    ("no_such_module_anywhere.sub", None, "no module of that name is importable"),
])
def test_bad_specs_are_one_line_usage_errors(tmp_path, monkeypatch, name, content, message):
    monkeypatch.chdir(tmp_path)
    if content == "dir":
        os.mkdir(name)
    elif content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(UsageError) as caught:
        load_target(name)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("body, message", [
    ("import numpy as np\n\nX = np.load('train.npy')\n", "loading it raised FileNotFoundError"),
    ("import sys\n\nsys.exit(2)\n", "it calls sys.exit while loading"),
])
def test_an_error_while_loading_is_a_usage_error_with_the_users_line(tmp_path, body, message):
    (tmp_path / "script.py").write_text(body)
    box = Sandbox(load_target(str(tmp_path / "script.py")))
    with pytest.raises(UsageError) as caught:
        box.__enter__()
    text = str(caught.value)
    assert message in text and "script.py, line 3: " in text and "\n" not in text
    assert box._process is None  # nothing left running


def test_close_leaves_no_process(tmp_path):
    with Sandbox(load_target(str(_write_py(tmp_path)))) as box:
        pid = box._process.pid
        assert box.call("die").kind == "crash"
        second = box.call("sigmoid", 0.0) and box._process.pid
    assert _gone(pid) and _gone(second) and box._process is None
