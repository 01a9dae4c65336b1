"""The project's modules import one way: the layers contract of pyproject.toml's ``[tool.importlinter]``
(command line -> upgrade -> reports -> tools -> comparison core -> frameworks -> reference -> registry ->
contract), checked by import-linter.  Every import counts, including those inside functions, and every module of
the packages is in a layer: the module lists are the packages' own (``pkgutil.walk_packages``), never a hand list,
so a new module (``nnparity.explain``, ``nnparity.upgrade`` once) cannot stay outside the contract."""

import pathlib
import pkgutil
import subprocess
import sys
import tomllib

import grimp

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
ROOTS = tuple(CONFIG["root_packages"])
#: Modules in no layer, each with its reason; they must import no module of the project.
UNLAYERED = {
    "nnparity": "the package's __init__: makes TensorFlow's import quiet, imported by tf_impl before TensorFlow",
}


def package_modules() -> set[str]:
    """Every module and package of the root packages, found by walking them on disk (nothing is imported)."""
    found = set()
    for package in ROOTS:
        found.add(package)
        found |= {info.name for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")}
    return found


def layers() -> list[list[str]]:
    (contract,) = [c for c in CONFIG["contracts"] if c["type"] == "layers"]
    return [[m.strip() for m in layer.replace("|", ":").split(":")] for layer in contract["layers"]]


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(layers()):
        if any(module == m or module.startswith(m + ".") for m in layer):
            return index
    return None


def graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports anywhere in its source (grimp: import-linter's graph)."""
    g = grimp.build_graph(*ROOTS, cache_dir=None)
    return {m: set(g.find_modules_directly_imported_by(m)) - {m} for m in g.modules}


def lint_imports() -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def cycles(g) -> list[list[str]]:
    """Every elementary cycle's smallest representative found by depth-first search (enough to name them)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node)
    return found


def test_the_layers_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_every_module_is_in_a_layer():
    modules = package_modules()
    assert {"nnparity.explain", "nnparity.upgrade", "nnparity.commands.report", "nnparity.check.course",
            "reports.build", "torch_impl.idiomatic", "reference.model"} <= modules  # the walk finds them all
    outside = sorted(m for m in modules if layer_of(m) is None and m not in UNLAYERED)
    assert outside == [], "modules in no layer of pyproject.toml's [tool.importlinter] contract: " + ", ".join(outside)


def test_the_walk_and_the_import_graph_see_the_same_modules():
    assert package_modules() == set(graph())


def test_unlayered_modules_import_nothing_of_the_project():
    g = graph()
    for name in UNLAYERED:
        assert g[name] == set(), name


def test_no_import_cycle():
    """The layers forbid a cycle across layers; this forbids one inside a layer of siblings too."""
    assert cycles(graph()) == []


def test_the_bottom_of_the_contract():
    g = graph()
    assert g["nnparity.numbers"] == set()  # number formatting and JSON, below everything: used by tools and reports
    assert g["nnparity.errors"] == set()
    assert g["nnparity.spec"] <= {"nnparity.errors"}
    assert g["nnparity.impls"] <= {"nnparity.errors", "nnparity.spec"}


def test_the_command_line_is_the_top_layer_and_the_contract_the_bottom():
    assert layer_of("nnparity.cli") == layer_of("nnparity.commands.report") == 0
    assert layer_of("nnparity.errors") == len(layers()) - 1
    assert layer_of("nnparity.harness") > layer_of("reports.summary") > layer_of("nnparity.upgrade")


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
