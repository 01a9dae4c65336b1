"""TensorFlow implementations: the notes' equations in TF ops (``tf_impl.model``), eager and tf.function;
Keras layers (``tf_impl.idiomatic``).

TensorFlow's C++ start-up notices (the oneDNN note, absl's log preamble) are written
straight to file descriptor 2, past Python and past ``TF_CPP_MIN_LOG_LEVEL``; importing
``nnparity`` first makes TensorFlow's import quiet (see ``nnparity/__init__.py``), so that
the command line's stderr carries only what nnparity says.  An import error still raises
as usual.
"""

import nnparity  # noqa: F401  (before TensorFlow: its import is then quiet)

# isort: split
import tensorflow  # noqa: F401
