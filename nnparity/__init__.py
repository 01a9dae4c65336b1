"""nnparity: the networks of the notes in NumPy, PyTorch and TensorFlow, and proof that they agree.

Importing this package makes TensorFlow's start-up quiet for every path that later imports it
(``tf_impl``, the catalogue, Keras): ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2, and TensorFlow's
own import runs with file descriptor 2 pointed at ``/dev/null``, because its C++ notices ("oneDNN
custom operations are on. You may see slightly different numerical results ...", the CPU
feature hint) are written before its logging reads ``TF_CPP_MIN_LOG_LEVEL``.  A user who sets
``TF_CPP_MIN_LOG_LEVEL=0`` sees them all.  Whether oneDNN is on is recorded in ``env.json``
(``tensorflow.onednn_enabled``, ``env_vars.TF_ENABLE_ONEDNN_OPTS``).  Nothing here imports
TensorFlow; an import error still raises as usual.
"""

import contextlib
import importlib.util
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


class _QuietTensorFlowImport:
    """A ``sys.meta_path`` finder that runs the first ``import tensorflow`` inside :func:`_stderr_to_devnull`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import is all it takes; the real finders answer from here on
        if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
            return None
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader

        class QuietLoader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                module.__loader__ = module.__spec__.loader = loader  # nothing else ever sees this wrapper
                with _stderr_to_devnull():
                    loader.exec_module(module)

        spec.loader = QuietLoader()
        return spec


if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path) and "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowImport())
