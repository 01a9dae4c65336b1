"""Random initialisation, drawn exactly as the classic course notebooks draw.

``numpy.random.RandomState(seed)``, one ``randn(n[l], n[l-1])`` per layer in layer
order, scaled per scheme; biases zero.  Every implementation starts from these
arrays (cast once to the case's dtype), so a learner's numbers match the course's.
"""

import numpy as np


def _scale(init, n_prev, n, scale):
    if init == "small-random":
        return scale
    if init == "inv-sqrt":
        return 1 / np.sqrt(n_prev)
    if init == "he":
        return np.sqrt(2 / n_prev)
    if init == "xavier":
        return np.sqrt(2 / (n_prev + n))
    raise ValueError(f"unknown initialiser {init!r}")


def initialize_parameters(layer_dims, init="inv-sqrt", scale=0.01, seed=1, dtype="float64", bias_scale=0.0):
    """{'W1': (n1, n0), 'b1': (n1, 1), ...} for ``layer_dims = [n0, n1, ..., nL]``.

    ``zeros`` gives all-zero weights (to show the symmetry problem: every unit of a
    layer stays identical); ``small-random`` randn * scale; ``inv-sqrt`` randn / sqrt(n[l-1]);
    ``he`` randn * sqrt(2 / n[l-1]); ``xavier`` randn * sqrt(2 / (n[l-1] + n[l])).  Biases are zero, or with
    ``bias_scale`` randn * bias_scale from ``RandomState(seed + 1)``, layer by layer, after the weights.
    """
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        n_prev, n = layer_dims[l - 1], layer_dims[l]
        if init == "zeros":
            W = np.zeros((n, n_prev))
        elif init == "inv-sqrt":
            W = rng.randn(n, n_prev) / np.sqrt(n_prev)  # the notebooks divide, not multiply
        else:
            W = rng.randn(n, n_prev) * _scale(init, n_prev, n, scale)
        parameters[f"W{l}"] = W.astype(dtype)
        parameters[f"b{l}"] = np.zeros((n, 1), dtype=dtype)
    if bias_scale:  # non-zero biases from the start (the notes start at zero): drawn after, so W is unchanged
        biases = np.random.RandomState(seed + 1)
        for l in range(1, len(layer_dims)):
            parameters[f"b{l}"] = (biases.randn(layer_dims[l], 1) * bias_scale).astype(dtype)
    return parameters
