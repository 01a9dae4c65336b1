"""The course's conv and pool layers as idiomatic PyTorch: ``nn.Conv2d`` then ``nn.MaxPool2d`` / ``nn.AvgPool2d``,
gradients from ``backward``.

Side by side with ``torch_impl.conv`` (the course's functions in torch ops): the same chain, but W and b live in
an ``nn.Conv2d`` and the gradients are the ``.grad`` of its parameters, of the input and of the retained Z.

================  ==========================================================================
course            here
================  ==========================================================================
``A_prev``        ``to_nchw(A_prev)``: torch's images are (m, n_C_prev, n_H_prev, n_W_prev)
``W (f, f,        ``conv.weight``, stored (n_C, n_C_prev, f, f) (OIHW): ``to_oihw(W)``
n_C_prev, n_C)``
``b (1,1,1,n_C)`` ``conv.bias``, shape (n_C,): ``b.ravel()``
``zero_pad``      ``nn.Conv2d(..., padding=pad)`` (zeros, ``padding_mode="zeros"``)
``Z``, ``A``      the outputs of ``conv`` and ``pool`` (``nn.MaxPool2d(f, stride)`` / ``nn.AvgPool2d(f, stride)``)
``dZ``            ``Z.grad`` (``retain_grad``) after ``A.backward(dA)``
``dA_prev``       ``A_prev.grad``
``dW``, ``db``    ``to_hwio(conv.weight.grad)``, ``conv.bias.grad`` reshaped to (1, 1, 1, n_C)
================  ==========================================================================

``nn.Conv2d``'s own initialisation is overwritten by the contract's W and b.
"""

import torch
from torch import nn

from torch_impl.conv import DTYPES, setup, to_hwio, to_nchw, to_nhwc, to_numpy, to_oihw, to_tensor

POOLS = {"max": nn.MaxPool2d, "average": nn.AvgPool2d}


def build_layers(case):
    """``nn.Conv2d(n_C_prev, n_C, f, stride, padding=pad)`` and the case's pooling layer, in the case's dtype."""
    conv = nn.Conv2d(case.n_C_prev, case.n_C, case.f, stride=case.stride, padding=case.pad,
                     dtype=DTYPES[case.dtype])
    pool = POOLS[case.mode](case.pool_f, stride=case.pool_stride)
    return conv, pool


def load_weights(conv, W, b, dtype):
    """The course's W (f, f, n_C_prev, n_C) and b (1, 1, 1, n_C) into ``conv``: weight OIHW, bias (n_C,)."""
    with torch.no_grad():
        conv.weight.copy_(to_oihw(to_tensor(W, dtype)))
        conv.bias.copy_(to_tensor(b, dtype).ravel())


def forward_backward(A_prev, W, b, dA, case):
    """The contract's chain (``nnparity.convspec``): Z = conv(A_prev), A = pool(Z), ``A.backward(dA)``.
    NumPy in and out, in the course's layout."""
    setup(case.seed)
    conv, pool = build_layers(case)
    load_weights(conv, W, b, case.dtype)
    A_prev = to_nchw(to_tensor(A_prev, case.dtype)).requires_grad_()
    Z = conv(A_prev)
    Z.retain_grad()
    A = pool(Z)
    A.backward(to_nchw(to_tensor(dA, case.dtype)))
    Z, A, dZ, dA_prev = (to_numpy(to_nhwc(x)) for x in (Z, A, Z.grad, A_prev.grad))
    dW, db = to_numpy(to_hwio(conv.weight.grad)), to_numpy(conv.bias.grad.reshape(1, 1, 1, -1))
    return {"Z": Z, "A": A, "dZ": dZ, "dA_prev": dA_prev, "dW": dW, "db": db}
