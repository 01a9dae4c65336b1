"""The candidate environments of ``nnparity upgrade-check``: pins, lock files, virtual environments, reports.

* a candidate is pins (``parse_candidate``: ``torch==2.12.0``, several joined by commas); its lock is the lock file
  (``constraints.txt``) with only those pins changed (``candidate_lock``); ``changed_pins`` finds the pins a lock
  edit changes (``--changed-since``);
* ``build_environment``: ``python -m venv``, then ``pip install -c <candidate lock>`` of nnparity's own requirements,
  the frameworks of ``--impl`` and the pinned packages, then nnparity itself with ``--no-deps -e`` (pyproject's
  ranges do not get in the way of a candidate outside them); cached in ``~/.cache/nnparity/envs/<SHA-256 of what it
  installs>`` (``NNPARITY_ENVS`` overrides the folder) and reused while the lock and the pins are the same.  pip's
  whole output goes to ``<key>.log`` beside it, a line on the terminal every ``HEARTBEAT`` seconds says it is still
  working, and a failed build names the conflict pip found (``pip_reason``); a failed or interrupted build leaves
  no half-built environment;
* ``run_report``: ``nnparity report`` with a candidate's Python.

Imports nothing heavy: the command line parses candidates before any work.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nnparity.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
#: Seconds between the terminal's lines while pip works (its whole output goes to the build's log).
HEARTBEAT = 20
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_candidate(text: str) -> dict:
    """``'tensorflow-cpu==2.20.0'`` (or pins joined by commas) -> ``{'tensorflow-cpu': '2.20.0'}``; a one-line
    ``UsageError`` for anything else."""
    pins = {}
    for part in [p.strip() for p in text.split(",") if p.strip()] or [text]:
        match = _PIN.match(part)
        if not match:
            raise UsageError(f"candidate {text!r}: {part!r} is not a pin; write NAME==VERSION, e.g. "
                             "tensorflow-cpu==2.20.0 (several pins of one candidate joined by commas)")
        pins[match.group(1)] = match.group(2)
    return pins


def candidate_lock(lock: str, pins: dict) -> str:
    """The lock file's text with only ``pins`` changed (a pinned package the lock lacks is added at the end)."""
    wanted = {canonical(name): (name, version) for name, version in pins.items()}
    lines, seen = [], set()
    for line in lock.splitlines():
        name = re.split(r"[=<>!~;\[ ]", line.strip(), maxsplit=1)[0]
        key = canonical(name) if name and not line.lstrip().startswith("#") else None
        if key in wanted:
            lines.append(f"{wanted[key][0]}=={wanted[key][1]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{name}=={version}" for key, (name, version) in wanted.items() if key not in seen]
    return "\n".join(lines) + "\n"


def lock_pins(text: str) -> dict:
    """A lock file's pins: canonical name -> (name as written, version)."""
    found = {}
    for line in text.splitlines():
        match = _PIN.match(line.split("#", 1)[0].split(";", 1)[0].strip())
        if match:
            found[canonical(match.group(1))] = (match.group(1), match.group(2))
    return found


def changed_pins(old_lock: str, new_lock: str) -> str:
    """One candidate (``name==version`` joined by commas) of every pin of ``new_lock`` that ``old_lock`` pins
    otherwise or not at all: what a pull request that edits the lock (Dependabot, Renovate) upgrades.  ``""`` when
    nothing changed."""
    old, new = lock_pins(old_lock), lock_pins(new_lock)
    return ",".join(f"{name}=={version}" for key, (name, version) in new.items()
                    if old.get(key, (None, None))[1] != version)


def requirements(impl_names: list[str], pins: dict) -> list[str]:
    """What the candidate environment installs (under the candidate lock): nnparity's own requirements, the
    distributions of the chosen implementations' frameworks, and the pinned packages."""
    from importlib import metadata

    from nnparity import impls

    own = [r.split(";")[0].strip() for r in metadata.requires("nnparity") or [] if "extra ==" not in r]
    frameworks = [d for name in impl_names for d in getattr(impls.get(name), "requires", ())]
    return list(dict.fromkeys(own + frameworks + list(pins)))


def closure(names) -> set[str]:
    """``names`` (distributions) and everything they require, directly or not, as this environment's metadata says
    (canonical names; extras left out)."""
    from importlib import metadata

    seen, todo = set(), list(names)
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    return seen


def envs_dir() -> Path:
    return Path(os.environ.get("NNPARITY_ENVS") or Path.home() / ".cache" / "nnparity" / "envs")


def environment_key(lock_text: str, wanted: list[str]) -> str:
    return hashlib.sha256((lock_text + "\n--\n" + "\n".join(wanted) + "\n--\n" + sys.version).encode()).hexdigest()[:16]


def build_environment(pins: dict, impl_names: list[str], log) -> Path:
    """The candidate's Python: a cached virtual environment of the lock with ``pins`` changed (built now if it is
    not cached yet).  pip's output goes to ``<envs>/<key>.log``; a failed install, or any interruption, removes the
    half-built environment and raises (``EnvironmentFailed`` names the conflict and the log)."""
    lock_text = candidate_lock(LOCK.read_text(encoding="utf-8"), pins)
    wanted = requirements(impl_names, pins)
    key = environment_key(lock_text, wanted)
    target = envs_dir() / key
    python = target / "bin" / "python"
    if (target / ".complete").is_file():
        log(f"  environment cached: {target}")
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with _building(target.parent / f"{key}.lock", log):  # another nnparity building it: wait, then reuse it
        if (target / ".complete").is_file():
            log(f"  environment cached: {target} (built meanwhile by another nnparity)")
            return python
        return _build(target, key, lock_text, wanted, pins, log)


@contextlib.contextmanager
def _building(lock: Path, log):
    """Hold ``lock`` (an exclusive ``flock``, released by the kernel if this process dies) while building; when
    another process holds it, say so and wait for it."""
    import fcntl

    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  another nnparity is building this environment ({lock}); waiting for it ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(target: Path, key: str, lock_text: str, wanted: list[str], pins: dict, log) -> Path:
    python = target / "bin" / "python"
    shutil.rmtree(target, ignore_errors=True)
    build_log = target.parent / f"{key}.log"
    build_log.write_text(f"# nnparity upgrade-check: {' '.join(f'{k}=={v}' for k, v in pins.items())}\n",
                         encoding="utf-8")
    log(f"  building the environment in {target} (pip; minutes the first time; its output: {build_log}) ...")
    started = time.monotonic()
    try:
        _pip([sys.executable, "-m", "venv", str(target)], "python -m venv", build_log, log)
        (target / "constraints.txt").write_text(lock_text, encoding="utf-8")
        _pip([str(python), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
              "-c", str(target / "constraints.txt"), *wanted], "pip install", build_log, log)
        _pip([str(python), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
              "--no-deps", "-e", str(ROOT)], "pip install -e", build_log, log)
    except BaseException:  # a failure, or Ctrl-C: no half-built environment is left to be mistaken for one
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / ".complete").write_text(" ".join(wanted) + "\n", encoding="utf-8")
    log(f"  built in {time.monotonic() - started:.0f} s")
    return python


class EnvironmentFailed(Exception):
    """A candidate environment could not be built (exit 6 for that candidate); ``log``: pip's whole output."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


def _pip(command: list[str], what: str, build_log: Path, log) -> None:
    """Run ``command`` with its output appended to ``build_log``, a line to ``log`` every ``HEARTBEAT`` seconds
    (what pip is doing); ``EnvironmentFailed`` with pip's reason if it fails.  Ctrl-C ends it first."""
    with open(build_log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started = next_line = time.monotonic()
        try:
            while process.poll() is None:
                time.sleep(0.2)
                if time.monotonic() - next_line >= HEARTBEAT:
                    next_line = time.monotonic()
                    log(f"  {what}: still working after {next_line - started:.0f} s "
                        f"({_last_line(build_log) or 'no output yet'})")
        except BaseException:
            process.kill()
            process.wait()
            raise
    if process.returncode:
        raise EnvironmentFailed(f"{what} failed: {pip_reason(build_log.read_text(encoding='utf-8', errors='replace'))}"
                                f" (pip's output: {build_log})", build_log)


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip() and not line.startswith(("$", "#"))]
    return lines[-1][:100] if lines else ""


def pip_reason(output: str) -> str:
    """pip's reason for a failed install, on one line: the conflict it found (who needs what: pip's "The conflict is
    caused by:" lines) when it is a resolution failure, else its first ``ERROR`` line."""
    lines = [line.strip() for line in output.splitlines()]
    if "The conflict is caused by:" in lines:
        first = lines.index("The conflict is caused by:") + 1
        cause = []
        for line in lines[first:]:
            if not line:
                break
            cause.append(line)
        if cause:
            return "conflicting requirements: " + "; ".join(cause)
    errors = [line for line in lines if line.startswith("ERROR")]
    return errors[0] if errors else next((line for line in reversed(lines) if line), "no output")


def run_report(python: Path | str, out: Path, cases: str, impl: str, full: bool = False,
               env: dict | None = None) -> int:
    """``nnparity report`` with ``python`` into ``out`` in the quick tier, or with ``full`` the full one without its
    self-test and catalogue (its exit code: 0, 1, 3 and 5 leave a report); ``env``: variables set for it (the
    baseline's envelope run: ``NNPARITY_PERTURB_ULP``, ``NNPARITY_THREADS``)."""
    command = [str(python), "-m", "nnparity", "report", "--out", str(out), "--force", "--cases", cases,
               "--impl", impl] + (["--full", "--no-selftest", "--no-catalogue"] if full else [])
    env = dict(os.environ, CI="1", PYTHONPATH=str(ROOT), **(env or {}))  # its progress: one line per case, on stderr
    with subprocess.Popen(command, env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1) as process:
        try:
            forward_output(process.stdout, sys.stderr)
            return process.wait()
        except BaseException:  # Ctrl-C, or stderr closed: the report ends with this command
            process.kill()
            raise


#: A line of a framework's C++ log, absl's format (``E1207 23:35:38.661989 1026 cpu_aot_loader.cc:195] ...``):
#: group 1 is the source line that wrote it.  Not anchored: a worker's log can start in the middle of another
#: process's progress line that had no newline yet.
NATIVE_LOG = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ ([\w.-]+:\d+)\] ")


def forward_output(lines, sink) -> None:
    """Copy a report's output (``lines``) to ``sink`` as it comes, except a framework's C++ log line from a source
    line already shown: counted, and the counts said in one line at the end.  jaxlib 0.10.1 wrote one warning
    per compiled program it loaded from JAX's cache (``cpu_aot_loader.cc:195``, 4,552 lines in one candidate's
    quick report) over the table the engineer came for."""
    shown: dict[str, int] = {}
    for line in lines:
        native = NATIVE_LOG.search(line)
        if native:
            if native.start():  # the text before it is another process's, on a line of its own
                sink.write(line[:native.start()] + "\n")
            where = native.group(1)
            shown[where] = shown.get(where, 0) + 1
            if shown[where] > 1:
                sink.flush()
                continue
        sink.write(line)
        sink.flush()
    repeated = [f"{n - 1:,} more from {where}" for where, n in shown.items() if n > 1]
    if repeated:
        sink.write(f"(framework log lines like the ones above, not shown: {'; '.join(repeated)})\n")
        sink.flush()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]", "_", text)
