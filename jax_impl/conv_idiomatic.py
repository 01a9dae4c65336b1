"""The course's conv and pool layers as idiomatic JAX: a ``flax.linen`` ``nn.Conv`` then ``nn.max_pool`` /
``nn.avg_pool``, gradients from ``jax.vjp``, the pass compiled by ``jax.jit``.

Side by side with ``jax_impl.conv`` (the course's functions in ``jax.lax``): the same chain, but W and b are the
``nn.Conv`` module's parameters ``{"kernel", "bias"}``, and ``jax.vjp`` differentiates ``conv.apply`` with respect
to the input and those parameters.

================  ==========================================================================
course            here
================  ==========================================================================
``A_prev``        as is: flax's images are (m, n_H, n_W, n_C), the course's NHWC
``zero_pad``      ``nn.Conv(..., padding=((pad, pad), (pad, pad)))`` (zeros)
``W (f, f,        ``params["kernel"]``, stored (f, f, n_C_prev, n_C) (HWIO): the course's layout, no transpose
n_C_prev, n_C)``
``b (1,1,1,n_C)`` ``params["bias"]``, shape (n_C,): ``b.ravel()``
``Z``, ``A``      ``conv.apply({"params": params}, A_prev)`` and ``nn.max_pool`` / ``nn.avg_pool(Z, (f, f),
                  strides, padding="VALID")``
``dZ``            the pool's ``jax.vjp`` applied to dA
``dA_prev``,      the conv's ``jax.vjp`` applied to dZ: the gradients of the input and of the parameters
``dW``, ``db``    ``{"kernel", "bias"}`` (the bias reshaped to (1, 1, 1, n_C))
================  ==========================================================================

float64 needs ``jax_enable_x64``, set by ``jax_impl/__init__.py``; the module is made with ``dtype`` and
``param_dtype`` the case's.
"""

from functools import partial

import flax.linen as nn
import jax

from jax_impl.conv import DTYPES, to_numpy, to_tensor

POOLS = {"max": nn.max_pool, "average": nn.avg_pool}


def build_layers(case):
    """``nn.Conv(n_C, (f, f), strides, padding=((pad, pad), (pad, pad)))`` and the case's pooling function."""
    conv = nn.Conv(case.n_C, (case.f, case.f), strides=(case.stride, case.stride),
                   padding=((case.pad, case.pad), (case.pad, case.pad)),
                   dtype=DTYPES[case.dtype], param_dtype=DTYPES[case.dtype])
    pool = partial(POOLS[case.mode], window_shape=(case.pool_f, case.pool_f),
                   strides=(case.pool_stride, case.pool_stride), padding="VALID")
    return conv, pool


def chain(A_prev, params, dA, case):
    """Z = conv(A_prev), A = pool(Z), then the vector-Jacobian products back from dA, as jax arrays."""
    conv, pool = build_layers(case)
    Z, conv_vjp = jax.vjp(lambda A_prev, params: conv.apply({"params": params}, A_prev), A_prev, params)
    A, pool_vjp = jax.vjp(pool, Z)
    (dZ,) = pool_vjp(dA)
    dA_prev, grads = conv_vjp(dZ)
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": grads["kernel"], "db": grads["bias"]}


#: ``chain`` compiled by ``jax.jit``, once per case (static: its hyper-parameters make the layers).
compiled_chain = jax.jit(chain, static_argnames="case")


def clear_compiled():
    """Forget every compiled chain of this module (see ``jax_impl.model.clear_compiled``)."""
    compiled_chain.clear_cache()


def forward_backward(A_prev, W, b, dA, case):
    """The contract's chain (``nnparity.convspec``), NumPy in and out in the course's layout."""
    params = {"kernel": to_tensor(W, case.dtype), "bias": to_tensor(b.ravel(), case.dtype)}  # the kernel is HWIO
    captured = compiled_chain(to_tensor(A_prev, case.dtype), params, to_tensor(dA, case.dtype), case=case)
    captured = {k: to_numpy(v) for k, v in captured.items()}
    captured["db"] = captured["db"].reshape(1, 1, 1, -1)
    return captured
