"""The learner's code, run isolated: one worker process (``nnparity/check/_worker.py``) loads the target, and
every call crosses to it and back as a pickle, so the user's code can neither mutate the checker's arrays nor
take the checker down.

    with Sandbox(load_target("my_nn.ipynb"), timeout=10) as box:
        box.functions                     # {"sigmoid": ("z",), "initialize_parameters_deep": ("layer_dims",), ...}
        box.call("sigmoid", np.array([0.0, 2.0]))             # Outcome(ok=True, value=array([0.5, 0.88...]))
        box.call("initialize_parameters_deep", [5, 4, 1], seed=3)   # np.random.seed(3) right before the call
        box.run("nnparity.check.drivers:deep_training", X, Y, parameters, 0.0075, 10)  # the user's module first

A call that raises, exits (``sys.exit``, ``exit()``), runs past ``timeout`` seconds or kills the process
(``os._exit``, a segfault) comes back as an ``Outcome`` saying so, with the user's innermost line; after a
timeout or a crash the next call starts a fresh worker (which loads the target again).  What the user's code
prints (``print``, C-level writes, warnings) is the call's ``output``, truncated; matplotlib draws on Agg, so
``plt.show()`` shows nothing.  An error while loading the target is a ``UsageError`` from ``__enter__``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading

from nnparity.check._worker import Frames, first_line
from nnparity.check.target import Target
from nnparity.errors import UsageError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")
OUTPUT_LIMIT = 10_000  # bytes of a call's output kept
GRACE = 1.0  # seconds a worker has, past the time limit, to interrupt the call itself and say where it was
_LIBRARIES = ("numpy", "builtins", "collections", "copyreg", "datetime", "decimal", "fractions")  # may be imported to
# read a returned value (which can otherwise only use modules already imported here)
_FAULT = re.compile(r'^\s*File "(.+)", line (\d+) in ', re.MULTILINE)  # faulthandler's traceback lines


@dataclasses.dataclass
class Outcome:
    """What one call did: ``value`` when ``ok``; else ``kind`` ("raised", "timeout", "exit" or "crash"),
    ``error`` (one line) and ``where`` (the user's innermost line, or None).  ``output``: what it printed.
    ``changed``: what the call changed in place among its arguments, ``(position, path, kind)`` each: the
    argument's index (or keyword), its name and where inside it (``dA``, ``parameters['W1']``), and
    ``"array"`` (values written into it), ``"dict"`` or ``"list"`` (entries replaced, added or removed)."""

    ok: bool
    value: object = None
    kind: str | None = None
    error: str = ""
    where: str | None = None
    output: str = ""
    changed: tuple = ()


class _Output(threading.Thread):
    """Drains the worker's stdout/stderr pipe, cut into one piece per request at each marker, each piece kept
    to its first ``OUTPUT_LIMIT`` bytes (the rest counted) so that a runaway ``print`` costs no memory."""

    def __init__(self, fd: int, marker: bytes):
        super().__init__(daemon=True)
        self.fd, self.marker = fd, marker
        self.condition = threading.Condition()
        self.pieces: list[str] = []
        self.eof = False
        self._current, self._dropped, self._tail = bytearray(), 0, b""

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            with self.condition:
                if not chunk:
                    self._keep(self._tail)
                    self.eof = True
                    self.condition.notify_all()
                    break
                self._feed(chunk)
                self.condition.notify_all()
        os.close(self.fd)

    def _feed(self, chunk: bytes):
        data = self._tail + chunk
        while (at := data.find(self.marker)) >= 0:
            self._keep(data[:at])
            self.pieces.append(self._take())
            data = data[at + len(self.marker):]
        cut = max(0, len(data) - (len(self.marker) - 1))  # a marker may be split between two reads
        self._keep(data[:cut])
        self._tail = data[cut:]

    def _keep(self, data: bytes):
        room = max(0, OUTPUT_LIMIT - len(self._current))
        self._current += data[:room]
        self._dropped += max(0, len(data) - room)

    def _take(self) -> str:
        text = self._current.decode("utf-8", "replace")
        if self._dropped:
            text += f"\n[... {self._dropped} more bytes of output not shown]"
        self._current, self._dropped = bytearray(), 0
        return text

    def piece(self, timeout: float) -> str:
        """The next request's output: up to its marker, or whatever came before the pipe closed or ``timeout``."""
        with self.condition:
            self.condition.wait_for(lambda: self.pieces or self.eof, timeout)
            return self.pieces.pop(0) if self.pieces else self._take()


class Sandbox:
    """One worker process running ``target``'s code; see the module's docstring.  ``timeout`` (seconds) bounds
    each call and may be changed between calls; ``load_timeout`` bounds loading the target."""

    def __init__(self, target: Target, timeout: float = 10.0, load_timeout: float = 60.0):
        self.target, self.timeout, self.load_timeout = target, timeout, load_timeout
        self.functions: dict[str, tuple[str, ...]] = {}
        self.calls: dict[str, list[str]] = {}  # function -> the module's functions its code names
        self.notes: tuple[str, ...] = target.notes
        self.load_output = ""
        self._process = self._connection = self._output = self._frames = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def start(self):
        """Start a worker and load the target in it; a ``UsageError`` (the worker stopped) when loading fails."""
        from multiprocessing.connection import Connection

        self.close()
        mine, theirs = socket.socketpair()
        read_end, write_end = os.pipe()
        marker = f"\0nnparity-{secrets.token_hex(8)}\0".encode()
        env = dict(os.environ, MPLBACKEND="Agg")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-u", WORKER, str(theirs.fileno())], stdin=subprocess.DEVNULL,
                stdout=write_end, stderr=write_end, pass_fds=(theirs.fileno(),), env=env, start_new_session=True)
        except BaseException:
            mine.close()
            os.close(read_end)
            raise
        finally:
            theirs.close()
            os.close(write_end)
        self._connection = Connection(mine.detach())
        self._output = _Output(read_end, marker)
        self._output.start()
        t = self.target
        message = (dataclasses.asdict(t), list(sys.path), marker, self.load_timeout)
        self._frames = Frames(t.display, t.path, t.directory, t.cells, t.source.splitlines() if t.source else None)
        reply, output = self._exchange(message, self.load_timeout)
        self.load_output = output
        if not reply["ok"]:
            self.close()
            raise UsageError(self._load_error(reply))
        self.functions = reply["functions"]
        self.calls = reply.get("calls", {})
        self.notes = t.notes + tuple(reply["notes"])
        self._frames.path, self._frames.directory = reply["path"], reply["directory"]
        return self

    def call(self, name: str, *args, seed: int | None = None, **kwargs) -> Outcome:
        """``name(*args, **kwargs)`` in the worker, ``np.random.seed(seed)`` right before it when ``seed`` is given."""
        return self._request(("call", name, args, kwargs, seed), name)

    def run(self, func_path: str, *args, **kwargs) -> Outcome:
        """The nnparity function ``"package.module:function"``, called in the worker with the user's module first."""
        return self._request(("run", func_path, args, kwargs, None), func_path)

    def _request(self, request, label: str) -> Outcome:
        if self._process is None or self._process.poll() is not None:
            self.start()
        reply, output = self._exchange((request, self.timeout), self.timeout)
        if reply["ok"]:
            try:
                value = _loads(reply["value"])
            except Exception as exc:  # e.g. an instance of a class defined in the user's code
                return Outcome(False, kind="raised", output=output,
                               error=f"{label} returned a value that cannot be read outside its code "
                                     f"({first_line(exc)}); return arrays, numbers, tuples, lists or dicts")
            return Outcome(True, value=value, output=output,
                           changed=tuple(tuple(c) for c in reply.get("changed", ())))
        if reply["kind"] in ("timeout", "crash"):
            self.close()  # killed, or no longer trusted: the next call starts a fresh worker
        error = reply["error"]
        if reply["kind"] == "timeout":
            error = f"{label} did not return within {self.timeout:g} s; stopped"
        elif reply["kind"] == "crash":
            error = f"the process running {label} died ({error})"
        return Outcome(False, kind=reply["kind"], error=error, where=reply["where"], output=output)

    def _exchange(self, message, seconds: float) -> tuple[dict, str]:
        """Send ``message``; the worker's reply (or a "timeout"/"crash" one made up here) and the output."""
        try:
            self._connection.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            if self._connection.poll(seconds + GRACE):
                reply = _loads(self._connection.recv_bytes())
                return reply, self._output.piece(timeout=5.0)
            kind = "timeout"
            self._process.send_signal(signal.SIGABRT)  # faulthandler writes where it is stuck, then it dies
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
        except (EOFError, OSError):  # the worker died
            kind = "crash"
        self._kill()
        output = self._output.piece(timeout=2.0)
        fault = output.find("Fatal Python error")
        frames = reversed(_FAULT.findall(output[fault:])) if fault >= 0 else ()
        where = self._frames.innermost((filename, int(line)) for filename, line in frames)
        if kind == "timeout" and fault >= 0:
            output = output[:fault]  # the traceback asked for above is not the user's output
        return {"ok": False, "kind": kind, "error": _died(self._process.returncode), "where": where}, output

    def _load_error(self, reply: dict) -> str:
        where = f" ({reply['where']})" if reply["where"] else ""
        name = self.target.display
        guard = "put the code that runs when the file is executed under `if __name__ == \"__main__\":`"
        if reply["kind"] == "timeout":
            return f"{name}: loading it took longer than {self.load_timeout:g} s{where}; {guard}"
        if reply["kind"] == "exit":
            return f"{name}: it calls sys.exit while loading{where}; {guard}"
        if reply["kind"] == "crash":
            return f"{name}: the process loading it died ({reply['error']}){where}; fix the code that crashes it"
        fix = {"file": f"fix it so that `python {name}` runs", "notebook": "fix that cell's imports and definitions",
               "module": f"fix it so that `python -c \"import {name}\"` runs"}[self.target.kind]
        return f"{name}: loading it raised {reply['error']}{where}; {fix}"

    def _kill(self):
        try:
            os.killpg(self._process.pid, signal.SIGKILL)  # the worker and anything it started
        except (ProcessLookupError, PermissionError):
            pass
        self._process.wait()

    def close(self):
        """Kill the worker (and its children) and reap it; the sandbox can be started again."""
        if self._process is not None:
            self._kill()
            self._connection.close()
            self._output.join(timeout=5.0)
        self._process = self._connection = self._output = None


class _Unpickler(pickle.Unpickler):
    """Reads a returned value using only modules this process has already imported: unpickling an instance of
    a class of the user's must not import (run) the user's code here, outside the sandbox."""

    def find_class(self, module, name):
        if module not in sys.modules and module.split(".")[0] not in _LIBRARIES:
            raise pickle.UnpicklingError(f"it is an object of {module}.{name}, defined in code the checker does "
                                         "not run")
        return super().find_class(module, name)


def _loads(data: bytes):
    return _Unpickler(io.BytesIO(data)).load()


def _died(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"
