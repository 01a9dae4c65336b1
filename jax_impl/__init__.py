"""JAX implementations: the notes' equations in ``jax.numpy`` (``jax_impl.model``), eagerly and under
``jax.jit``; ``flax.nnx`` layers and ``optax`` optimisers (``jax_impl.idiomatic``).

float64 needs ``jax_enable_x64``, set here, at import, for the whole process: without it JAX
silently computes in float32 when asked for float64 (``jnp.asarray(x, jnp.float64)`` returns a
float32 array, with a warning at most), so a "float64" run would be a float32 run that the float64
tolerances reject (measured in ``parity_tests/test_jax.py::test_float64_without_x64_is_float32``).
"""

import jax

jax.config.update("jax_enable_x64", True)  # float64 is float64 (see above); float32 arrays stay float32
