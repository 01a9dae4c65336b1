"""The cost J in torch ops: the notes' formulas, mean over the m examples (see reference.losses)."""

import torch
import torch.nn.functional as F


def compute_cost(AL, Y, loss="cross_entropy"):
    """The cost J: the notes' formulas in torch ops (mean over the m examples)."""
    m = Y.shape[1]
    if loss == "cross_entropy":  # 0 log 0 = 0, as the reference: inf, not NaN, where AL saturated
        return -1 / m * torch.sum(torch.where(Y != 0, Y * torch.log(AL), 0)
                                  + torch.where(Y != 1, (1 - Y) * torch.log(1 - AL), 0))
    if loss == "categorical_cross_entropy":
        return -1 / m * torch.sum(torch.where(Y != 0, Y * torch.log(AL), 0))
    if loss == "l1":
        return torch.sum(torch.abs(Y - AL)) / m
    if loss == "l2":
        return torch.sum((Y - AL) ** 2) / m
    raise ValueError(f"unknown loss {loss!r}")


def logits_cost(ZL, Y, loss="cross_entropy"):
    """The same cross-entropy J from the logits ZL (examples as columns), by torch's fused losses.

    Autograd's dJ/dZL is then ``(AL - Y) / m``: ``binary_cross_entropy_with_logits_backward`` is
    ``(input.sigmoid() - target) * grad / numel`` (``aten/src/ATen/native/Loss.cpp``); ``F.cross_entropy``
    with class probabilities differentiates ``log_softmax``: ``(softmax(ZL) - Y) / m``.  Finite where AL saturated.
    """
    if loss == "cross_entropy":
        return F.binary_cross_entropy_with_logits(ZL, Y)  # mean over the (1, m) entries: 1/m sum
    if loss == "categorical_cross_entropy":
        return F.cross_entropy(ZL.T, Y.T)  # rows: examples; one-hot probabilities; mean over the m rows
    raise ValueError(f"no logits form of loss {loss!r}")
