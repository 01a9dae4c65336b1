"""The README and the docs cannot go stale: their commands parse, and their mapping tables name what the code uses.

The README keeps the quick start and the "You want to ... run this" table; the rest lives in ``docs/``
(``parity_tests/test_docs.py`` builds it).  Every check here asserts that it found what it checks, so a
README or page that changes form fails instead of passing vacuously."""

import glob
import os
import re
import shlex

import pytest

from nnparity.cli import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
    return open(os.path.join(ROOT, path), encoding="utf-8").read()


README = _read("README.md")
DOC_PATHS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
DOCS = {path: _read(path) for path in DOC_PATHS}
PORTING = DOCS.get(os.path.join("docs", "porting.md"), "")


def _block_commands(text):
    """``nnparity ...`` lines of the fenced code blocks (with or without a language)."""
    blocks = re.findall(r"```[\w-]*\n(.*?)```", text, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("nnparity ") and "--help" not in line]


def _table_commands(text):
    """``nnparity ...`` code spans in the last cell of table rows (the "You want to ... run this" tables)."""
    cells = [line.strip().strip("|").split("|")[-1] for line in text.splitlines() if line.startswith("|")]
    spans = [s for cell in cells for s in re.findall(r"`([^`]+)`", cell)]
    return [s for s in spans if s.startswith("nnparity ")]


README_COMMANDS = _block_commands(README) + _table_commands(README)
COMMANDS = README_COMMANDS + [c for text in DOCS.values() for c in _block_commands(text) + _table_commands(text)]


def test_readme_and_docs_have_commands():
    assert len(README_COMMANDS) >= 10
    assert len(COMMANDS) >= 60


@pytest.mark.parametrize("command", sorted(set(COMMANDS)))
def test_command_parses(command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.command


def test_quick_start_is_the_two_commands():
    section = README.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, flags=re.S)
    assert block, "no code block in the README's Quick start"
    assert block.group(1).split("\n")[:-1] == ["make report", "make test"]


def test_readme_names_the_three_users_commands():
    """The "You want to ... run this" table: the learner's, the porter's and the upgrade engineer's commands."""
    section = README.split("## You want to ... run this\n", 1)[1].split("\n## ", 1)[0]
    commands = {c.split()[1] for c in _table_commands(section)}
    assert {"check", "explain", "report", "upgrade-check", "compare"} <= commands
    users = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "`" in line}
    assert {"a learner", "a porter", "an upgrade engineer"} <= users


def test_readme_is_short():
    assert len(README.splitlines()) <= 250


def _table(text, heading):
    """The header and body rows of the first table under ``heading`` (later tables of the section are not read)."""
    assert heading in text, heading
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    assert start is not None, f"no table under {heading}"
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table if not line.startswith("|---")]
    assert len(rows) >= 2, f"no body rows under {heading}"
    return rows[0], rows[1:]


#: Framework identifiers in a cell's code spans, per column root: ``torch.sigmoid``, ``tf.where``, ``jnp.tanh`` ...
_NAME = r"\b(?:{})\.[A-Za-z_][\w.]*"


def _code_names(cell, roots):
    names = []
    for span in re.findall(r"`([^`]+)`", cell):
        names += [n.rstrip(".") for n in re.findall(_NAME.format("|".join(roots)), span)]
    return names


def _source(*patterns):
    paths = sorted(p for pattern in patterns for p in glob.glob(os.path.join(ROOT, pattern)))
    assert paths, patterns
    return "\n".join(open(p, encoding="utf-8").read() for p in paths)


def _resolve(name, roots):
    head, *rest = name.split(".")
    obj = roots[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _check(name, source, roots):
    """A named function must exist and be used by the code; a named type must exist in the framework."""
    obj = _resolve(name, roots)
    assert isinstance(obj, type) or name in source or name.split(".", 1)[1] in source, name


def test_equation_mapping_table_names_what_the_code_calls():
    """Every framework column of docs/porting.md's mapping table: NumPy, PyTorch, TensorFlow and JAX."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import tensorflow as tf
    import torch

    header, rows = _table(PORTING, "## How each symbol maps to each framework")
    assert header == ["math", "NumPy (`reference`)", "PyTorch (`torch_impl`)", "TensorFlow (`tf_impl`)",
                      "JAX (`jax_impl`)"]
    assert len(rows) >= 8
    columns = {
        1: (_source("reference/*.py"), {"np": np}),
        2: (_source("torch_impl/*.py"), {"torch": torch, "F": torch.nn.functional, "nn": torch.nn}),
        3: (_source("tf_impl/*.py"), {"tf": tf}),
        4: (_source("jax_impl/*.py"), {"jax": jax, "jnp": jnp}),
    }
    checked = dict.fromkeys(columns, 0)
    for row in rows:
        assert len(row) == len(header), row
        for column, (source, roots) in columns.items():
            for name in _code_names(row[column], roots):
                _check(name, source, roots)
                checked[column] += 1
    assert checked[1] >= 1 and checked[2] >= 10 and checked[3] >= 10 and checked[4] >= 10, checked


def test_the_implementations_table_is_the_registry():
    """docs/porting.md's "The implementations" table lists exactly the registry's entries, in its order."""
    from nnparity.impls import REGISTRY

    header, rows = _table(PORTING, "## The implementations")
    assert header == ["name", "module", "style", "framework", "grids"]
    assert [r[0].strip("`") for r in rows] == list(REGISTRY)
    for row in rows:
        impl = REGISTRY[row[0].strip("`")]
        assert row[1].split()[0].strip("`") == impl.module
        assert row[2] == impl.style and row[3] == impl.framework
        assert row[4] == ("the reference" if impl.style == "reference" else impl.grid)


def test_examples_files_exist():
    paths = {p for text in [README, *DOCS.values()] for p in re.findall(r"\b(examples/\S+?\.py)\b", text)}
    assert {"examples/my_network.py", "examples/course_mistake.py"} <= paths
    for path in sorted(paths):
        assert os.path.isfile(os.path.join(ROOT, path)), path
