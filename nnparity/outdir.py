"""The directories nnparity writes (``report``, ``compare``, ``bench`` ``--out``): nnparity's alone.

Every such directory ends with a **marker**, ``nnparity.json``, written last::

    {"format": "nnparity-report", "format_version": 2, "kind": "report",
     "files": {"details.csv": {"size": 48213, "sha256": "..."}, ...}}

listing every file with its size and SHA-256: a directory with the marker was
written completely by nnparity, and ``verify`` tells a half-written, altered,
older or foreign one apart.  The kinds are ``report``, ``compare``,
``benchmark``, ``explain`` and ``upgrade``.

``claim(out, force, kind)`` is taken before any work:

* ``--out`` is checked (``check_out``): a file, a symbolic link, a non-empty
  directory without the marker of the same kind are refused, ``--force`` or
  not (``--force`` replaces only a directory nnparity wrote); an existing one of
  the same kind needs ``--force``; an empty directory may be used.
* a lock is taken: an exclusive ``flock`` on ``<parent>/.<name>.lock`` (holding
  the writer's pid), held until the new directory is renamed into place, then
  removed.  A second run into the same ``--out`` fails at once.  The kernel drops
  the lock of a killed process, so a stale lock file never blocks.
  Creating the lock file is also the proof that the parent is writable.

``atomic_directory`` writes into a temporary sibling (``.tmp-*``), writes the
marker last and renames it into place; on any error the temporary directory is
removed and whatever was at ``--out`` is left as it was.

Imports nothing heavy: the checks run before a command imports pandas or a framework.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from nnparity.errors import UsageError

MARKER = "nnparity.json"
FORMAT_VERSION = 2
FORMATS = {"report": "nnparity-report", "compare": "nnparity-compare", "benchmark": "nnparity-bench",
           "explain": "nnparity-explain", "upgrade": "nnparity-upgrade"}
TMP_PREFIX = ".tmp-"

#: Lock file descriptors this process holds, by the directory they guard (real parent / name).
_HELD: dict[Path, int] = {}


# --------------------------------------------------------------------------- the marker


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def comparison_of(baseline_dir, candidate_dir, envelope_dir=None) -> dict:
    """What a comparison directory is of, as its marker records it: the two reports' real paths (and the
    baseline's envelope run's, when there is one)."""
    of = {"baseline": os.path.realpath(baseline_dir), "candidate": os.path.realpath(candidate_dir)}
    return of if envelope_dir is None else {**of, "envelope": os.path.realpath(envelope_dir)}


def seal(directory: Path, kind: str, of: dict | None = None) -> None:
    """Write the marker into ``directory``, last: its format, version, kind, what it is ``of`` (a comparison: its
    two reports; rewriting the same one needs no ``--force``), and every file's size and SHA-256."""
    directory = Path(directory)
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MARKER):
        files[path.relative_to(directory).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    marker = {"format": FORMATS[kind], "format_version": FORMAT_VERSION, "kind": kind, "files": files}
    if of is not None:
        marker["of"] = of
    (directory / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def read_marker(directory: Path) -> dict | None:
    """The marker of ``directory`` if it is one nnparity wrote (a known format), else None."""
    try:
        marker = json.loads((Path(directory) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") not in FORMATS.values():
        return None
    return marker


def _kind(marker: dict) -> str:
    return {v: k for k, v in FORMATS.items()}[marker["format"]]


#: Files by which a directory written before the marker existed is recognised, per kind.
_LEGACY = {"report": ("details.csv", "summary.csv")}


def verify(directory, kind: str, role: str) -> dict:
    """Check that ``directory`` is a complete ``kind`` directory of this format and return its marker; otherwise a
    one-line ``UsageError`` saying whether it is missing, a temporary leftover, half-written, altered, older or
    foreign, and what to do."""
    directory = Path(directory)
    what = f"{role} {directory}"
    fix = f"pass a directory written by `nnparity {kind} --out DIR` as {role}"
    rerun = f"re-run `nnparity {kind}` with this version"
    if not directory.exists():
        raise UsageError(f"{what} does not exist; {fix}")
    if not directory.is_dir():
        raise UsageError(f"{what} is not a directory; {fix}")
    if directory.name.startswith(TMP_PREFIX):
        raise UsageError(f"{what} is a temporary directory left by an interrupted nnparity run ({TMP_PREFIX}*), "
                         f"not a {kind}; delete it and {fix}")
    marker = read_marker(directory)
    if marker is None:
        if (directory / MARKER).exists():
            raise UsageError(f"{what} is not an nnparity {kind} directory ({MARKER} is not nnparity's marker); {fix}")
        legacy = _LEGACY.get(kind, ())
        if not legacy or not all((directory / name).is_file() for name in legacy):
            raise UsageError(f"{what} is not a {kind} directory (no {MARKER}"
                             + "".join(f", no {n}" for n in legacy if not (directory / n).is_file()) + f"); {fix}")
        if _format_version(directory / "summary.json") is not None:
            raise UsageError(f"{what} is incomplete: it has no completion marker ({MARKER}), the run writing it "
                             f"was interrupted or the directory was copied in part; {rerun}")
        raise UsageError(f"{what} was written by an older nnparity (no format marker); {rerun}")
    if _kind(marker) != kind:
        raise UsageError(f"{what} is an nnparity {_kind(marker)} directory, not a {kind} directory; {fix}")
    version = marker.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UsageError(f"{what} was written by a newer nnparity (format version {version}; this one reads "
                         f"{FORMAT_VERSION}); use that nnparity, or {rerun}")
    if version < FORMAT_VERSION:
        raise UsageError(f"{what} was written by an older nnparity (format version {version}); {rerun}")
    for name, expected in (marker.get("files") or {}).items():
        path = directory / name
        if not path.is_file():
            raise UsageError(f"{what} is incomplete: {name} is missing (listed in {MARKER}); {rerun}")
        size = path.stat().st_size
        if size != expected.get("size"):
            raise UsageError(f"{what} is truncated or altered: {name} has {size} bytes, {MARKER} lists "
                             f"{expected.get('size')}; {rerun}")
        if _sha256(path) != expected.get("sha256"):
            raise UsageError(f"{what} is altered: the SHA-256 of {name} differs from the one in {MARKER}; {rerun}")
    return marker


def _format_version(path: Path):
    """``format_version`` of a JSON document (``summary.json``), None if it has none or cannot be read."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document.get("format_version") if isinstance(document, dict) else None


def compare_out(baseline_dir, candidate_dir) -> Path:
    """``compare``'s default ``--out``: ``CANDIDATE/compare-vs-<BASELINE's name>``."""
    name = Path(os.path.abspath(baseline_dir)).name or "baseline"
    return Path(candidate_dir) / f"compare-vs-{name}"


# --------------------------------------------------------------------------- checking and claiming --out


def _target(out_dir) -> Path:
    """``out_dir`` as an absolute path, its parent resolved (symbolic links in the parent followed)."""
    out = Path(os.path.abspath(out_dir))
    return Path(os.path.realpath(out.parent)) / out.name


def check_out(out_dir, force: bool, kind: str, of: dict | None = None) -> Path:
    """May ``nnparity <kind> --out out_dir`` write there? The target path, or a one-line ``UsageError``.

    ``of``: what the output is of (``seal``); a directory of the same kind sealed with the same ``of`` is this
    command's own earlier output, replaced without ``--force``.  Checks only; writes nothing (``claim`` proves the
    parent writable by creating the lock file).
    """
    try:
        return _check_out(out_dir, force, kind, of)
    except OSError as exc:
        raise UsageError(f"cannot check --out {out_dir} ({exc.strerror}); choose another --out") from None


def _check_out(out_dir, force: bool, kind: str, of: dict | None = None) -> Path:
    out = _target(out_dir)
    flag = f"--out {out_dir}"
    if out.name in ("", ".", "..") or out == out.parent:
        raise UsageError(f"{flag} names no directory nnparity can replace; pass a new directory path")
    if os.path.islink(out):
        raise UsageError(f"{flag} is a symbolic link; pass the directory it points to, or choose another --out")
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"{flag} is a file; nnparity never replaces a file, --force or not: choose another --out")
        with os.scandir(out) as entries:
            empty = next(entries, None) is None
        if not empty:
            marker = read_marker(out)
            if marker is None and all((out / name).is_file() for name in _LEGACY.get(kind, ("?",))):
                raise UsageError(f"{flag} looks like a {kind} of an older nnparity (no {MARKER}), which --force does "
                                 f"not replace: delete it yourself once, or choose another --out")
            if marker is None:
                raise UsageError(f"{flag} is a directory nnparity did not write (no {MARKER}); nnparity replaces only "
                                 f"its own directories, --force or not: choose another --out or empty it yourself")
            if _kind(marker) != kind:
                raise UsageError(f"{flag} is an nnparity {_kind(marker)} directory, not a {kind} directory; "
                                 "choose another --out")
            if not force and not (of is not None and marker.get("of") == of):
                raise UsageError(f"{kind} directory {out_dir} exists; "
                                 "pass --force to replace it or choose another --out")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{flag}: {ancestor} is a file, not a directory; choose another --out")
    return out


@contextmanager
def claim(out_dir, force: bool, kind: str, of: dict | None = None):
    """Check ``--out`` and lock it for this run (see the module's docstring); yields the target path.

    Re-entrant within one process: ``atomic_directory`` inside a ``claim`` of the same path re-checks only.
    Missing parent directories are created, and removed again if the run fails.
    """
    out = check_out(out_dir, force, kind, of)
    if out in _HELD:
        yield out
        return
    created = []
    parent = out.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = _lock(out, out_dir)
    except BaseException:
        _remove_empty(created)
        raise
    _HELD[out] = fd
    try:
        check_out(out_dir, force, kind, of)  # again, under the lock: another run may have finished in between
        yield out
    except BaseException:
        _release(out)
        _remove_empty(created)
        raise
    _release(out)


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _lock(out: Path, out_dir) -> int:
    """An exclusive ``flock`` on the lock file of ``out``, with this process's pid in it; fails at once if held."""
    path = _lock_path(out)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write in {out.parent} ({exc.strerror}); choose a writable --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise UsageError(f"cannot lock {path} ({exc.strerror}); choose another --out") from None
            raise UsageError(f"another nnparity run is writing {out_dir} (pid {pid}); wait for it or choose another "
                             "--out") from None
        try:  # the previous holder removes the file when done: make sure ours is still the one at the path
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _release(out: Path) -> None:
    fd = _HELD.pop(out)
    try:
        os.unlink(_lock_path(out))  # while still holding it: nobody can lock this file after us
    except FileNotFoundError:
        pass
    os.close(fd)


def _remove_empty(directories: list[Path]) -> None:
    """Remove the directories ``claim`` created (deepest first), if they are still empty."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return


# --------------------------------------------------------------------------- writing


@contextmanager
def atomic_directory(out_dir, force, kind: str = "report", prefix: str = TMP_PREFIX, of: dict | None = None):
    """Yield a temporary sibling of ``out_dir`` to write into; when the block ends the marker is written into it
    and it replaces ``out_dir`` by a rename (a reader sees the old directory or the new one, never half of one).

    ``out_dir`` is claimed first (``claim``: checked and locked, unless this process holds it already).
    On any error the temporary directory is removed and the old ``out_dir`` is left as it was.
    """
    with claim(out_dir, force, kind, of) as out:
        try:
            tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=prefix))
        except OSError as exc:
            raise UsageError(f"cannot write in {out.parent} ({exc.strerror}); choose a writable --out") from None
        try:
            yield tmp
            seal(tmp, kind, of)
            os.chmod(tmp, 0o777 & ~_umask())
            _replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _replace(new: Path, out_dir: Path) -> None:
    """Rename ``new`` to ``out_dir``; an existing ``out_dir`` is moved aside first and removed after."""
    if not os.path.lexists(out_dir):
        os.rename(new, out_dir)
        return
    aside = Path(tempfile.mkdtemp(dir=new.parent, prefix=TMP_PREFIX + "old-"))
    os.rename(out_dir, aside / "old")
    try:
        os.rename(new, out_dir)
    except BaseException:
        os.rename(aside / "old", out_dir)  # put the old directory back
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
