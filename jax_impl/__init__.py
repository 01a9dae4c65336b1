"""JAX implementations: the notes' equations in ``jax.numpy`` (``jax_impl.model``), eagerly and under
``jax.jit``; ``flax.nnx`` layers and ``optax`` optimisers (``jax_impl.idiomatic``).

float64 needs ``jax_enable_x64``, set here, at import, for the whole process: without it JAX
silently computes in float32 when asked for float64 (``jnp.asarray(x, jnp.float64)`` returns a
float32 array, with a warning at most), so a "float64" run would be a float32 run that the float64
tolerances reject (measured in ``parity_tests/test_jax.py::test_float64_without_x64_is_float32``).

JAX's persistent compilation cache is turned on here too (``configure_compilation_cache``): every
process nnparity starts compiles the same steps and passes again (and eager jax each operation per
shape and dtype), and the cache lets a later process load what an earlier one compiled.
``NNPARITY_JAX_CACHE`` names its directory, or is ``off``; by default it is the user's
``$XDG_CACHE_HOME/nnparity/jax`` (``~/.cache/nnparity/jax``), never the repository.  A directory that
cannot be made or written leaves the cache off, with one line on stderr.

A cached program gives the same bits as a fresh compile because JAX's key (jax/_src/cache_key.py, ``get``)
hashes everything that changes the executable: the lowered StableHLO with its debug locations stripped (the
program itself, so the dtypes ``jax_enable_x64`` picks, the shapes, and every constant and hyper-parameter a
compiled step bakes in), the jaxlib version, the platform and its version, ``XLA_FLAGS`` and the ``--xla``
arguments (the thread policy's ``--xla_cpu_multi_thread_eigen`` and ``intra_op_parallelism_threads``), the
serialised compile options (XLA's debug options, dump settings cleared), the devices' topology fingerprint
and the compression; the entry is the serialised executable itself, not a re-lowering.  An entry compiled on
a CPU with features this one lacks is refused by XLA when loaded (JAX warns and compiles afresh).
``parity_tests/test_jax.py::test_compilation_cache_gives_the_same_bits`` compares runs with and without it.
"""

import os
import sys

import jax

from nnparity.caches import unwritable, user_cache

jax.config.update("jax_enable_x64", True)  # float64 is float64 (see above); float32 arrays stay float32

CACHE_VARIABLE = "NNPARITY_JAX_CACHE"

#: Compiles shorter than this are not written to the cache (JAX's default, 1 s, keeps out every eager operation).
#: 0 caches them all: a warm ``report --cases 'l2-tanh-*' --jobs 1`` took 58 s against 77 s for eager jax (241
#: entries, 1.1 MB, against none) and 36 s against 39 s for jax-jit and flax (98 entries against 16), at load 6-7.
MIN_COMPILE_TIME_SECS = 0.0


def compilation_cache_dir(environ=None):
    """The cache's directory for ``environ`` (default ``os.environ``), or None for no cache: ``off``, or a
    directory that cannot be made or written to (then one line on stderr says why)."""
    environ = os.environ if environ is None else environ
    value = environ.get(CACHE_VARIABLE, "").strip()
    if value.lower() == "off":
        return None
    path = os.path.abspath(os.path.expanduser(value)) if value else user_cache("jax", environ)
    error = unwritable(path)
    if error is not None:
        print(f"nnparity: JAX's compilation cache is off: {path} is not a writable directory "
              f"({error.strerror or error}); set {CACHE_VARIABLE} to a directory, or to off", file=sys.stderr)
        return None
    return path


def configure_compilation_cache(environ=None):
    """Point JAX's persistent compilation cache at ``compilation_cache_dir`` (or turn it off); returns the
    directory or None.  Takes effect for the compiles after it (JAX opens the cache at the first compile that
    looks it up).  A ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` the user set is left as it is."""
    environ = os.environ if environ is None else environ
    path = compilation_cache_dir(environ)
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_SECS)
    return path


configure_compilation_cache()
