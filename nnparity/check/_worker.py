"""The worker process of ``nnparity.check.sandbox``: loads a learner's code, then runs its functions on request.

Started as ``python -P -u _worker.py FD`` (a script, so that nothing of nnparity is imported before the
learner's code, and start-up stays cheap: the standard library, and NumPy when a call asks for a seed).
Requests and replies are pickles on the socket ``FD``; file descriptors 1 and 2 (print, C-level writes,
warnings, a crash's traceback from ``faulthandler``) go to the sandbox's output pipe, where a marker written
after each request ends that request's output.  A call is interrupted by ``SIGALRM`` when its time is up, so
the reply can say where it was; a call that cannot be interrupted is the sandbox's to kill.

``Frames`` and ``first_line`` are also the sandbox's: they say where, in the learner's code, something happened.
"""

from __future__ import annotations

import os
import signal
import sys

_SHORT = 100  # characters of a line of code quoted in a ``where``
_HERE = os.path.abspath(__file__)


def first_line(exc: BaseException) -> str:
    """``ValueError: shapes (4,2) and (4,3) not aligned``: the exception's type and the first line of its message."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text.splitlines()[0]}" if text else name


def _library_roots() -> tuple[str, ...]:
    """Directories whose files are never the learner's: the standard library, site-packages and this
    project's own packages (nnparity, reference, ...)."""
    import site
    import sysconfig

    roots = {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages())
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not any(_under(project, root) for root in roots if root):
        roots.update(os.path.join(project, entry) for entry in os.listdir(project)
                     if os.path.isfile(os.path.join(project, entry, "__init__.py")))
    return tuple(sorted(os.path.realpath(root) for root in roots if root))


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class Frames:
    """Which files are the learner's, and how to point at a line of them: ``my_nn.py, line 23: dW = ...``,
    ``my_nn.ipynb cell 7, line 3: ...``, a helper beside it as ``dnn_utils.py, line 5: ...``.

    ``path`` is the learner's file (its lines are ``lines`` when given, else read from disk); ``directory``
    holds its helpers; ``cells`` maps the lines of a notebook's source to (cell, line)."""

    def __init__(self, display, path, directory, cells=(), lines=None):
        self.display, self.path, self.directory = display, path, directory
        self.cells, self.lines = tuple(cells), lines
        self.roots = _library_roots()

    def _library_root(self, filename):
        real = os.path.realpath(filename)
        return next((root for root in self.roots if _under(real, root)), None)

    def is_user(self, filename: str) -> bool:
        if filename == self.path:
            return True
        if filename.startswith("<") or not self.directory or not _under(filename, self.directory):
            return False
        return self._library_root(filename) is None

    def where(self, filename: str, lineno: int) -> str:
        if filename == self.path:
            text = self.lines[lineno - 1] if self.lines and 0 < lineno <= len(self.lines) else None
            if self.cells and 0 < lineno <= len(self.cells):
                cell, line = self.cells[lineno - 1]
                place = f"{self.display} cell {cell}, line {line}"
            else:
                place = f"{self.display}, line {lineno}"
        else:
            text = None
            root = self._library_root(filename)
            if self.is_user(filename):
                name = os.path.join(os.path.dirname(self.display), os.path.relpath(filename, self.directory))
            else:
                name = os.path.relpath(os.path.realpath(filename), root) if root else filename
            place = f"{name}, line {lineno}"
        if text is None:
            import linecache

            text = linecache.getline(filename, lineno)
        text = " ".join(text.split())
        if len(text) > _SHORT:
            text = text[:_SHORT - 3] + "..."
        return f"{place}: {text}" if text else place

    def innermost(self, frames) -> str | None:
        """The learner's innermost frame among ``frames`` ((filename, lineno) pairs, outermost first); the
        innermost frame of all when none is the learner's; None when there are none."""
        frames = [frame for frame in frames if frame[0] != _HERE]  # this worker's own machinery: never the answer
        if not frames:
            return None
        mine = [frame for frame in frames if self.is_user(frame[0])]
        return self.where(*(mine or frames)[-1])

    def of_exception(self, exc: BaseException) -> str | None:
        import traceback

        walk = traceback.walk_tb(exc.__traceback__)
        return self.innermost((frame.f_code.co_filename, lineno) for frame, lineno in walk)


class _Timeout(BaseException):
    """Raised by SIGALRM inside a call whose time is up (a BaseException: ``except Exception`` does not stop it)."""


def _alarm(signum, frame):
    raise _Timeout()


def _timed(seconds, function, *args, **kwargs):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _attempt(frames, function, *args, **kwargs) -> dict:
    """Run ``function``; the reply: ``ok`` and ``value``, or the ``kind`` of failure, ``error`` and ``where``."""
    try:
        return {"ok": True, "value": function(*args, **kwargs)}
    except _Timeout as exc:
        return {"ok": False, "kind": "timeout", "error": "", "where": frames.of_exception(exc)}
    except SystemExit as exc:
        error = "SystemExit" if exc.code is None else f"SystemExit: {exc.code}"
        return {"ok": False, "kind": "exit", "error": error, "where": frames.of_exception(exc)}
    except BaseException as exc:  # the learner's code: anything it raises is the answer
        return {"ok": False, "kind": "raised", "error": first_line(exc), "where": frames.of_exception(exc)}


def _load_source(target, frames) -> tuple[object, list[str]]:
    """A fresh module executing ``target["source"]`` statement by statement; an import that fails with an
    ImportError is a note, not the end (course notebooks import helpers such as ``testCases`` that may be absent)."""
    import __future__

    import ast
    import linecache
    import types

    path, source = target["path"], target["source"]
    name = os.path.splitext(os.path.basename(path))[0]
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules.setdefault(name, module)
    linecache.cache[path] = (len(source), None, source.splitlines(True), path)  # also for warnings, tracebacks
    notes, flags = [], 0
    for node in ast.parse(source, path).body:
        code = compile(ast.Module([node], type_ignores=[]), path, "exec", flags=flags, dont_inherit=True)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                flags |= getattr(__future__, alias.name).compiler_flag
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            exec(code, module.__dict__)
            continue
        try:
            exec(code, module.__dict__)
        except ImportError as exc:
            notes.append(f"{frames.where(path, node.lineno)} failed ({first_line(exc)}); what needs it will fail")
    return module, notes


def _functions(module) -> dict[str, tuple[str, ...]]:
    """Every top-level callable the module defines or imports by name, with its parameter names."""
    import inspect

    found = {}
    for name, value in vars(module).items():
        if name.startswith("__") or inspect.ismodule(value) or not callable(value):
            continue
        try:
            found[name] = tuple(inspect.signature(value).parameters)
        except (TypeError, ValueError):
            found[name] = ()
    return found


def _load(target, frames, seconds):
    if target["kind"] == "module":
        import importlib

        module = _timed(seconds, importlib.import_module, target["module"])
        return module, []
    return _timed(seconds, _load_source, target, frames)


def _user_directory(target):
    """Where the learner's helpers live: beside the file or notebook, or in the module's top-level package."""
    if target["kind"] == "module" and "." in target["module"] and target["directory"]:
        return os.path.join(target["directory"], target["module"].split(".")[0])
    return target["directory"]


def _call(module, request, seconds):
    """The call's value, and (for the learner's own function) which of its arguments it changed in place."""
    action, name, args, kwargs, seed = request
    if action == "run":
        import importlib

        module_name, _, function_name = name.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        args = (module,) + tuple(args)
        snapshot = None
    else:
        function = getattr(module, name)
        snapshot = _snapshot(function, args, kwargs)
    if seed is not None:
        import numpy

        numpy.random.seed(seed)
    value = _timed(seconds, function, *args, **kwargs)
    return value, ([] if snapshot is None else _changed(snapshot))


def _snapshot(function, args, kwargs):
    """Every array, dict and list reachable from the arguments, with a copy of what it holds now:
    ``(position, path, the object, its copy)``, position the argument's index (or keyword), path its name."""
    import inspect

    try:
        bound = inspect.signature(function).bind(*args, **kwargs).arguments
        names = {id(v): k for k, v in bound.items()}
    except (TypeError, ValueError):
        names = {}
    numpy = sys.modules.get("numpy")
    found = []

    def walk(value, position, path, depth):
        if depth > 8:
            return
        if numpy is not None and isinstance(value, numpy.ndarray):
            found.append((position, path, value, value.copy()))
        elif isinstance(value, dict):
            found.append((position, path, value, dict(value)))
            for key, item in value.items():
                walk(item, position, f"{path}[{key!r}]", depth + 1)
        elif isinstance(value, (list, tuple)):
            if isinstance(value, list):
                found.append((position, path, value, list(value)))
            for i, item in enumerate(value):
                walk(item, position, f"{path}[{i}]", depth + 1)

    for i, value in enumerate(args):
        walk(value, i, names.get(id(value), f"argument {i + 1}"), 0)
    for key, value in kwargs.items():
        walk(value, key, key, 0)
    return found


def _changed(snapshot):
    """``(position, path, kind)`` of what the call changed in place: an array's values ("array"), a dict's or a
    list's entries ("dict", "list")."""
    numpy = sys.modules.get("numpy")
    out = []
    for position, path, value, before in snapshot:
        if isinstance(before, dict):
            same = value.keys() == before.keys() and all(value[k] is before[k] for k in before)
        elif isinstance(before, list):
            same = len(value) == len(before) and all(a is b for a, b in zip(value, before))
        else:
            try:
                same = (value.shape == before.shape and value.dtype == before.dtype and
                        bool(numpy.array_equal(value, before, equal_nan=value.dtype.kind in "fc")))
            except Exception:  # an array numpy cannot compare (objects): not judged
                same = True
        if not same:
            out.append((position, path, "dict" if isinstance(before, dict) else
                        "list" if isinstance(before, list) else "array"))
    return out


def _calls(module, functions) -> dict[str, list[str]]:
    """Which of the module's functions each one names (directly): the globals its code loads, nested code included."""
    import dis
    import types

    out = {}
    for name in functions:
        value = getattr(module, name, None)
        code = getattr(getattr(value, "__func__", value), "__code__", None)
        names, stack = set(), [code] if isinstance(code, types.CodeType) else []
        while stack:
            current = stack.pop()
            try:
                names.update(i.argval for i in dis.get_instructions(current)
                             if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
            except Exception:  # noqa: BLE001 - a code object dis cannot read: no calls known
                pass
            stack += [c for c in current.co_consts if isinstance(c, types.CodeType)]
        out[name] = sorted(n for n in names if isinstance(n, str) and n in functions and n != name)
    return out


def _send(connection, marker, reply):
    """End the request's output with the marker, then reply (a value that cannot be pickled is an error)."""
    import pickle

    for stream, original in (("stdout", sys.__stdout__), ("stderr", sys.__stderr__)):
        try:
            getattr(sys, stream).flush()
        except Exception:  # the learner's replacement stream: whatever it does, the original is restored
            pass
        setattr(sys, stream, original)
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)  # C-level printf buffers
    except Exception:
        pass
    try:
        os.write(1, marker)
    except OSError:
        pass
    if reply.get("ok") and "value" in reply:
        try:
            reply["value"] = pickle.dumps(reply["value"], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a generator, a lambda, an open file ...
            reply = {"ok": False, "kind": "raised", "where": None,
                     "error": f"the returned value cannot be sent back ({first_line(exc)}); return arrays, numbers, "
                              "strings, tuples, lists or dicts"}
    connection.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def main(fd: int) -> None:
    import faulthandler
    import pickle
    from multiprocessing.connection import Connection

    connection = Connection(fd)
    target, path, marker, load_seconds = pickle.loads(connection.recv_bytes())
    sys.path[:] = ([target["directory"]] if target["kind"] != "module" and target["directory"] else []) + path
    faulthandler.enable(file=sys.__stderr__)
    signal.signal(signal.SIGALRM, _alarm)
    lines = target["source"].splitlines() if target["source"] is not None else None
    frames = Frames(target["display"], target["path"], _user_directory(target), target["cells"], lines)
    reply = _attempt(frames, _load, target, frames, load_seconds)
    module = None
    if reply["ok"]:
        module, notes = reply.pop("value")
        frames.path = frames.path or getattr(module, "__file__", None)
        functions = _functions(module)
        reply.update(functions=functions, calls=_calls(module, functions), notes=notes, path=frames.path,
                     directory=frames.directory)
    _send(connection, marker, reply)
    if module is None:
        return
    while True:
        try:
            request, seconds = pickle.loads(connection.recv_bytes())
        except EOFError:  # the sandbox has gone
            return
        reply = _attempt(frames, _call, module, request, seconds)
        if reply["ok"]:
            reply["value"], reply["changed"] = reply["value"]
        _send(connection, marker, reply)


if __name__ == "__main__":
    main(int(sys.argv[1]))
