"""Where nnparity keeps what it caches for the user, outside the repository: ``$XDG_CACHE_HOME/nnparity/<name>``
(``~/.cache/nnparity/<name>``).  Light on purpose (no framework): the test suite's conftest reads it before any
framework loads."""

from __future__ import annotations

import os
import tempfile


def user_cache(name: str, environ=None) -> str:
    """``$XDG_CACHE_HOME/nnparity/<name>`` for ``environ`` (default ``os.environ``); a relative or empty
    ``XDG_CACHE_HOME`` is ignored (the XDG spec), giving ``~/.cache/nnparity/<name>``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nnparity", name)


def unwritable(path: str) -> OSError | None:
    """None when ``path`` is (or can be made) a directory this process can write to, else the error."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # writable, and a directory (not a file)
            pass
    except OSError as error:
        return error
    return None
