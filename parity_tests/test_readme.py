"""The README cannot go stale: its commands parse, and its mapping tables name what the code uses."""

import os
import re
import shlex

import pytest

from nnparity.cli import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def _commands():
    blocks = re.findall(r"```\n(.*?)```", README, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("nnparity ") and "--help" not in line]


COMMANDS = _commands()


def test_readme_has_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.command


def _table(heading):
    """The body rows of the first table under ``heading`` (later tables of the section are not read)."""
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return [line for line in table if not line.startswith("|---")][1:]


def _code_names(cell):
    """Framework identifiers in a cell's code spans: ``torch.sigmoid``, ``tf.where``, ``nn.Linear`` ..."""
    names = []
    for span in re.findall(r"`([^`]+)`", cell):
        names += re.findall(r"\b(?:torch|tf|F|nn|keras)\.[A-Za-z_][\w.]*", span)
    return names


def _source(*paths):
    return "\n".join(open(os.path.join(ROOT, p), encoding="utf-8").read() for p in paths)


def _resolve(name, roots):
    head, *rest = name.split(".")
    obj = roots[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _check(name, source, roots):
    """A named function must be called by the code; a named type must exist in the framework."""
    obj = _resolve(name, roots)
    assert isinstance(obj, type) or name in source or name.split(".", 1)[1] in source, name


def test_equation_mapping_table_names_what_the_code_calls():
    import tensorflow as tf
    import torch

    rows = _table("## How each symbol maps to each framework")
    assert len(rows) >= 8
    torch_src = _source("torch_impl/model.py", "torch_impl/activations.py", "torch_impl/losses.py")
    tf_src = _source("tf_impl/model.py", "tf_impl/activations.py", "tf_impl/losses.py")
    torch_roots = {"torch": torch, "F": torch.nn.functional, "nn": torch.nn}
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for name in _code_names(cells[2]):
            _check(name, torch_src, torch_roots)
            checked += 1
        for name in _code_names(cells[3]):
            _check(name, tf_src, {"tf": tf})
            checked += 1
    assert checked >= 10


def test_the_implementations_table_is_the_registry():
    """README's "The implementations" table lists exactly the registry's entries, in its order."""
    from nnparity.impls import REGISTRY

    rows = [[c.strip() for c in line.strip("|").split("|")] for line in _table("## The implementations")]
    assert [r[0].strip("`") for r in rows] == list(REGISTRY)
    for row in rows:
        impl = REGISTRY[row[0].strip("`")]
        assert row[1].split()[0].strip("`") == impl.module
        assert row[2] == impl.style and row[3] == impl.framework
        assert row[4] == ("the reference" if impl.style == "reference" else impl.grid)


def test_readme_examples_files_exist():
    for path in re.findall(r"--impl (examples/\S+\.py)", README):
        assert os.path.isfile(os.path.join(ROOT, path)), path
