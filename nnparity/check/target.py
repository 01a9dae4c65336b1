"""What ``nnparity check TARGET`` checks: a ``.py`` file, a Jupyter notebook or an importable module, found and
read here, never executed (``nnparity.check.sandbox`` runs it, isolated).

A notebook contributes only the imports and the ``def``/``class`` definitions of its code cells: the other
statements load data, train and plot, and are never run.  IPython magics, shell and help lines (``%matplotlib
inline``, ``!pip install ...``, ``np.dot?``) become blank lines, so every line keeps its place in its cell; a cell that
still does not parse is skipped and said so in ``Target.notes``.  Cells are numbered from 1 in the order the
notebook shows them, markdown cells included.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import tokenize

from nnparity.errors import UsageError

KINDS = ("file", "notebook", "module")
_MAGIC = re.compile(r"\s*([%!?]|[\w.]+\?\??\s*$)")
_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_WHAT = "give a .py file, a .ipynb notebook or an importable module name"


@dataclasses.dataclass(frozen=True)
class Target:
    """A learner's code, located and (for a file or notebook) read.

    ``source`` is the Python the sandbox executes (file and notebook; None for a module); ``cells`` maps its
    lines to the notebook: ``cells[k - 1] == (cell, line)`` for source line k (empty unless a notebook);
    ``directory`` goes first on the worker's ``sys.path`` so sibling helpers (``dnn_utils.py``) import.
    """

    kind: str
    display: str
    path: str | None
    module: str | None
    directory: str | None
    source: str | None = None
    cells: tuple[tuple[int, int], ...] = ()
    notes: tuple[str, ...] = ()


def load_target(spec: str) -> Target:
    """The target named by ``spec`` (a path to a ``.py`` or ``.ipynb`` file, or a module name such as
    ``package.module``); a ``UsageError`` of one line when it cannot be checked."""
    if os.path.exists(spec) or spec.endswith((".py", ".ipynb")) or os.sep in spec or not _is_dotted_name(spec):
        return _load_path(spec)
    return _load_module(spec)


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _load_path(spec: str) -> Target:
    display = os.path.normpath(spec)
    if os.path.isdir(spec):
        raise UsageError(f"{display} is a directory; {_WHAT} (the file inside it that defines your functions)")
    if not os.path.exists(spec):
        raise UsageError(f"{display}: no such file; {_WHAT}")
    suffix = os.path.splitext(spec)[1]
    if suffix not in (".py", ".ipynb"):
        raise UsageError(f"{display} is neither a .py file nor a .ipynb notebook; {_WHAT}")
    path = os.path.abspath(spec)
    directory = os.path.dirname(path)
    if suffix == ".ipynb":
        source, cells, notes = _notebook_source(path, display)
        return Target("notebook", display, path, None, directory, source, cells, notes)
    try:
        with tokenize.open(path) as handle:  # honours a coding cookie, like python does
            source = handle.read()
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise UsageError(f"{display} is not readable as Python source ({exc}); save it as UTF-8 text") from None
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise UsageError(f"{display}, line {exc.lineno}: SyntaxError: {exc.msg}; fix it so that "
                         f"`python {display}` runs") from None
    except ValueError as exc:  # null bytes
        raise UsageError(f"{display} is not Python source ({exc}); give the .py file of your code") from None
    return Target("file", display, path, None, directory, source)


def _is_magic(line: str) -> bool:
    """IPython's ``%magic``, ``!shell`` and ``?help`` lines, and ``name?`` / ``name??``."""
    return _MAGIC.match(line) is not None


def _notebook_source(path: str, display: str) -> tuple[str, tuple[tuple[int, int], ...], tuple[str, ...]]:
    """The imports and definitions of the notebook's code cells, the cell and line of each of their lines,
    and a note per cell left out."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as exc:  # nbformat raises JSON, schema and version errors of several types
        why = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UsageError(f"{display} is not a valid Jupyter notebook ({why}); save it from Jupyter again, or give "
                         "a .py file") from None
    lines: list[str] = []
    cells: list[tuple[int, int]] = []
    notes: list[str] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        text = cell.source
        if text.lstrip().startswith("%%"):
            notes.append(f"{display} cell {number}: a cell magic ({text.split()[0]}); skipped")
            continue
        cell_lines = ["" if _is_magic(line) else line for line in text.split("\n")]
        try:
            tree = ast.parse("\n".join(cell_lines))
        except SyntaxError as exc:
            notes.append(f"{display} cell {number}, line {exc.lineno}: does not parse as Python ({exc.msg}); "
                         "skipped")
            continue
        for node in tree.body:
            if not isinstance(node, _KEPT):
                continue
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])
            for line_number in range(first, node.end_lineno + 1):
                lines.append(cell_lines[line_number - 1])
                cells.append((number, line_number))
    return "\n".join(lines) + "\n", tuple(cells), tuple(notes)


def _load_module(name: str) -> Target:
    """An importable module, located like ``import`` would, but nothing of it executed (not even its package's
    ``__init__``)."""
    import importlib.machinery
    import importlib.util

    parts = name.split(".")
    try:
        top = spec = importlib.util.find_spec(parts[0])
        for depth in range(1, len(parts)):
            locations = spec and spec.submodule_search_locations
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth + 1]), list(locations)) \
                if locations else None
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UsageError(f"{name}: no such file, and no module of that name is importable; {_WHAT}")
    if spec.origin in (None, "namespace"):
        raise UsageError(f"{name} is a namespace package, not a module; name the module inside it that defines "
                         "your functions")
    where = top.submodule_search_locations[0] if top.submodule_search_locations else top.origin
    directory = os.path.dirname(os.path.abspath(where)) if where and os.path.isabs(where) else None
    return Target("module", name, None, name, directory)
