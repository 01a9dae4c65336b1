"""nnparity: the networks of the notes in NumPy, PyTorch and TensorFlow, and proof that they agree.

Importing this package makes TensorFlow's start-up quiet for every path that later imports it
(``tf_impl``, the catalogue, Keras): ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2, and TensorFlow's
own import runs with file descriptor 2 pointed at ``/dev/null``, because its C++ notices ("oneDNN
custom operations are on. You may see slightly different numerical results ...", the CPU
feature hint) are written before its logging reads ``TF_CPP_MIN_LOG_LEVEL``.  A user who sets
``TF_CPP_MIN_LOG_LEVEL=0`` sees them all.  oneDNN's once-per-process ERROR "supports DT_INT64 only on platforms
with AVX-512" (at the first transpose of an int64 tensor, a prediction's labels) is said inside that import too.
Whether oneDNN is on is recorded in ``env.json``
(``tensorflow.onednn_enabled``, ``env_vars.TF_ENABLE_ONEDNN_OPTS``).  Nothing here imports
TensorFlow; an import error still raises as usual.
"""

import contextlib
import os
import sys

__version__ = "0.1.0"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _stderr_to_devnull():
    """File descriptor 2 (C++ writes included) to /dev/null inside the block."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietLoader:
    """Runs a module's loader inside :func:`_stderr_to_devnull`, then leaves the module with that loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # nothing else ever sees this wrapper
        with _stderr_to_devnull():
            self.loader.exec_module(module)
            # oneDNN says once per process, at the first transpose of an int64 tensor (a prediction's labels), that it
            # "supports DT_INT64 only on platforms with AVX-512", at ERROR level on every CPU without AVX-512: that
            # once is here, quietly (env.json records whether oneDNN is on).
            module.transpose(module.zeros((1, 1), module.int64))


class _QuietTensorFlowImport:
    """A ``sys.meta_path`` finder: ``tensorflow``'s spec as the other finders give it, loaded quietly.

    It stays in place: a ``find_spec("tensorflow")`` that imports nothing (torch's ``_dynamo`` asks)
    must not use up the quiet import.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlowImport())
