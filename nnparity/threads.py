"""The thread policy: how many threads each framework's kernels use in nnparity's own runs.

The notes' networks are small (at most 64 x 400 activations; the cat network's first layer is the one
large product), so a second thread mostly adds synchronisation, and on a shared machine a pool of two
threads collapses when the other core is busy.  ``nnparity bench --threads`` measures 1 against 2 threads
for every framework on every network, quiet and with both cores kept busy, and whether the results stay
bit-identical; docs/performance.md ("Threads") says what ``POLICY`` rests on.

The policy is applied through the environment before a framework is imported (``apply``), so it also
reaches every process nnparity starts.  A variable the user has set is left as it is: the user's
choice wins and ``env.json`` records which values came from where (``describe``).
``NNPARITY_THREADS=N`` sets every framework to N threads.

Each framework declares its threads and variables in its own folder (``<package>/framework.py``: ``threads``,
``thread_variables``, ``thread_value``; ``nnparity.impls.described``).
"""

from __future__ import annotations

import os

from nnparity.impls import described

#: Threads per framework (see the module's docstring and docs/performance.md, "Threads").
POLICY = {f.name: f.threads for f in described() if f.thread_variables}

#: The variables each framework reads at start-up for its thread pools.  OpenBLAS (NumPy's BLAS) reads
#: OPENBLAS_NUM_THREADS; torch's intra-op pool OMP_NUM_THREADS; TensorFlow its TF_NUM_* pair; XLA (JAX) takes
#: its CPU threads from XLA_FLAGS.
VARIABLES = {f.name: tuple(f.thread_variables) for f in described() if f.thread_variables}

#: How a framework writes a number of threads into one of its variables (default: the number).
_VALUES = {v: f.thread_value for f in described() if f.thread_value is not None for v in f.thread_variables}

OVERRIDE = "NNPARITY_THREADS"
MARK = "NNPARITY_THREADS_SET"  # the variables ``apply`` set (not the user)


def _value(variable: str, threads: int) -> str:
    value = _VALUES.get(variable)
    return str(threads) if value is None else value(variable, threads)


def policy(environ=None) -> dict:
    """Threads per framework: ``POLICY``, or ``NNPARITY_THREADS`` for all of them when it is a positive integer."""
    environ = os.environ if environ is None else environ
    override = environ.get(OVERRIDE, "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            from nnparity.errors import UsageError

            raise UsageError(f"{OVERRIDE}={override!r} is not a number of threads; set it to a positive integer "
                             f"(e.g. {OVERRIDE}=2) or unset it for the policy {POLICY}")
        return {framework: int(override) for framework in POLICY}
    return dict(POLICY)


def apply(environ=None) -> dict:
    """Set every policy variable the user has not set; return ``describe``'s record.  Call it before a framework
    is imported: a pool is sized when its library loads."""
    environ = os.environ if environ is None else environ
    chosen = policy(environ)
    ours = set(filter(None, environ.get(MARK, "").split(",")))
    for framework, variables in VARIABLES.items():
        for variable in variables:
            if variable not in environ or variable in ours:
                environ[variable] = _value(variable, chosen[framework])
                ours.add(variable)
    environ[MARK] = ",".join(sorted(ours))  # inherited by the processes nnparity starts
    return describe(environ)


def describe(environ=None) -> dict:
    """What ``env.json`` records: the policy, each variable's value and whether it came from the policy or from
    the user's environment (``apply`` marks its own values), and the sizes the loaded libraries report."""
    environ = os.environ if environ is None else environ
    chosen = policy(environ)
    ours = set(environ.get(MARK, "").split(","))
    variables = {}
    for names in VARIABLES.values():
        for variable in names:
            value = environ.get(variable)
            variables[variable] = {"value": "unset" if value is None else value,
                                   "source": "unset" if value is None else "policy" if variable in ours else "user"}
    return {"policy": chosen, "override": environ.get(OVERRIDE, "unset"), "variables": variables}
