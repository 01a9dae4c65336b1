"""Known changes as data: a record per documented cause of a numerical change, and the rows it explains.

A comparison (``nnparity.regression``) sees *that* a row moved; a record says *why*, when the two reports'
environments show a documented cause: a package crossing a version (NumPy 1 -> 2), an environment setting that
switches a framework's numerics (``TF_ENABLE_ONEDNN_OPTS``), another thread count or BLAS kernel.  A record matches a
comparison when one of its ``environment`` keys (globs over the flattened ``env.json``, ``nnparity.environment``)
changed, or its ``package`` went from a version in ``before`` to one in ``after`` (either way round); it then
explains the changed rows of its ``impls`` and ``dtypes``.  ``upgrade-check`` turns growth that a record explains
into an attributed change (``changed``, the record named) instead of ``blocked``; a pass -> fail stays blocked
whatever explains it.  A record is added only with its source: the release note or documentation that states the
change (``link``), and a test that recognises it (``parity_tests/test_known_changes.py``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownChange:
    id: str
    what: str  # what it changes, one sentence
    link: str  # the release note or documentation that states it
    environment: tuple = ()  # env.json keys (flattened, globs) whose change is this cause
    package: str = ""  # or: a package whose version crossed from ``before`` to ``after`` (either way)
    before: str = ""  # a version specifier (packaging), e.g. "<2"
    after: str = ""
    impls: tuple = ("*",)  # the implementations whose rows it explains (globs)
    dtypes: tuple = ("float32", "float64")

    def matches(self, changes: list[tuple[str, str, str]]) -> bool:
        """Whether the environment changes (``regression.environment_changes``: (key, baseline, candidate)) show
        this cause."""
        for key, old, new in changes:
            if any(fnmatch.fnmatchcase(key, pattern) for pattern in self.environment):
                return True
            if self.package and key == f"versions.{self.package}" and _crossed(old, new, self.before, self.after):
                return True
        return False

    def explains(self, impl: str, dtype: str) -> bool:
        return any(fnmatch.fnmatchcase(str(impl), p) for p in self.impls) and str(dtype) in self.dtypes


def _crossed(old: str, new: str, before: str, after: str) -> bool:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        a, b = Version(str(old).split("+")[0]), Version(str(new).split("+")[0])
    except InvalidVersion:
        return False
    early, late = SpecifierSet(before), SpecifierSet(after)
    return (a in early and b in late) or (b in early and a in late)


#: The records.  Each states a cause in its source's words and how a comparison recognises it.
KNOWN_CHANGES = (
    KnownChange(
        id="thread-count",
        what="another thread count splits the BLAS, oneDNN and Eigen reductions differently: the same sums in "
             "another order (\"to get reproducible results from run to run, ensure that the number of threads is "
             "fixed and constant\", oneMKL's reproducibility conditions), a rounding-level difference that a "
             "training run can amplify",
        link="https://www.intel.com/content/www/us/en/docs/onemkl/developer-reference-c/2026-0/"
             "reproducibility-conditions.html",
        environment=("threads.policy.*", "threads.override", "threads.variables.*.value", "env_vars.*_NUM_THREADS",
                     "env_vars.*_THREADS", "blas.threadpools.*.num_threads", "tensorflow.*_parallelism_threads"),
    ),
    KnownChange(
        id="openblas-kernel",
        what="OpenBLAS chose other kernels (OPENBLAS_CORETYPE, or another CPU): its GEMM blocks and accumulates in "
             "another order, so NumPy's products (the reference's) round differently",
        link="https://github.com/OpenMathLib/OpenBLAS/blob/develop/README.md",
        environment=("env_vars.OPENBLAS_CORETYPE", "blas.threadpools.*openblas.architecture"),
    ),
    KnownChange(
        id="tf-onednn",
        what="TensorFlow's oneDNN optimisations were switched (TF_ENABLE_ONEDNN_OPTS): they \"can yield slightly "
             "different numerical results ... due to floating-point round-off errors from different computation "
             "approaches and orders\" (TensorFlow 2.15's release notes)",
        link="https://github.com/tensorflow/tensorflow/releases/tag/v2.15.0",
        environment=("env_vars.TF_ENABLE_ONEDNN_OPTS", "tensorflow.TF_ENABLE_ONEDNN_OPTS", "tensorflow.onednn_enabled"),
        impls=("tf", "tf-function", "keras"),
    ),
    KnownChange(
        id="numpy-nep50",
        what="NumPy 2 promotes by NEP 50: a NumPy scalar keeps its own dtype, so a float32 array combined with a "
             "float64 scalar computes in float64 where NumPy 1 stayed in float32",
        link="https://numpy.org/neps/nep-0050-scalar-promotion.html",
        package="numpy", before="<2", after=">=2",
        dtypes=("float32",),
    ),
)


def matching(changes: list[tuple[str, str, str]] | str, records=KNOWN_CHANGES) -> list[KnownChange]:
    """The records whose cause the environment changes show (none when env.json is missing: ``changes`` a
    sentence)."""
    if isinstance(changes, str):
        return []
    return [record for record in records if record.matches(changes)]


def cause_of(impl: str, dtype: str, records: list[KnownChange]) -> str:
    """The ids of the matched records that explain a row of ``impl`` in ``dtype``, joined by commas ("" if none)."""
    return ",".join(r.id for r in records if r.explains(impl, dtype))
