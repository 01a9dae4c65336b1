"""The project's modules import one way: contract -> registry -> harness and tolerances -> tools -> reports
-> command line.  Every import counts, including those inside functions: no cycle anywhere."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("nnparity", "nnparity.commands", "nnparity.check", "reference", "torch_impl", "tf_impl", "jax_impl",
            "reports")
TOOLS = ("nnparity.bench", "nnparity.selftest", "nnparity.catalogue", "nnparity.drift", "nnparity.check.target",
         "nnparity.check.sandbox", "nnparity.check._worker", "nnparity.check.course", "nnparity.check.diagnosis",
         "nnparity.check.battery", "nnparity.check.drivers", "nnparity.check.answer",
         "nnparity.testing")


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package.replace(".", "/")).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports(path: pathlib.Path, known) -> set[str]:
    """Project modules imported anywhere in ``path`` (``from pkg import mod`` counts as ``pkg.mod``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


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


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_contract_and_the_registry_import_nothing_above_them():
    g = graph()
    assert g["nnparity.numbers"] == set()  # number formatting and JSON, below everything: used by tools and reports
    assert g["nnparity.spec"] <= {"nnparity.errors"}
    assert g["nnparity.impls"] <= {"nnparity.errors", "nnparity.spec"}
    assert not {m for m in g["nnparity.harness"] if m.startswith(("reports", "nnparity.cli", "nnparity.commands"))}


def test_tools_and_reports_never_import_the_command_line():
    """contract -> registry -> harness/tolerances -> tools -> reports -> command line (nnparity.cli and the
    modules of nnparity.commands, one per sub-command, parser beside its code)."""
    g = graph()
    above = ("nnparity.cli", "nnparity.commands")
    for name in TOOLS + tuple(m for m in g if m.startswith("reports")):
        assert not {m for m in g[name] if m.startswith(above)}, name
    for name in TOOLS:
        assert not {m for m in g[name] if m.startswith("reports") and m != "reports.summary"}, name


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
