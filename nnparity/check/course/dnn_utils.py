"""The course's helpers (``dnn_utils``): sigmoid, relu and softmax, the backward functions of sigmoid and relu, and
relu's kink."""

from __future__ import annotations

import numpy as np

from nnparity import tolerances as tol
from nnparity.check.course.common import Expect, Net, Probe, _u
from reference.losses import cost_backward


def probe_sigmoid(net: Net):
    """sigmoid(Z) on the output layer's Z, and on values that saturate: the course's helper returns (A, Z)."""
    L = net.case.L
    Zs = [(net.C[f"Z{L}"], net.C[f"A{L}"], net.B[f"A{L}"])]
    if net.label == "m = 1":  # saturation: exp(-Z) below u, and exp(Z) near the dtype's range
        Z = np.array([[-30.0, -12.0, -1e-3, 0.0, 1e-3, 12.0, 30.0]])
        from reference.activations import sigmoid
        A = sigmoid(Z)
        Zs.append((Z, A, tol.C_G * _u(net.dtype) * A + tol.UNDERFLOW[net.dtype]))
    probes = []
    for Z, A, B in Zs:
        def extract(result):
            return {"A": result[0] if isinstance(result, (tuple, list)) else result}
        label = net.label if Z.shape != (1, 7) else "saturation"
        probes.append(Probe("sigmoid", label, net.dtype, (net.cast(Z),), {},
                            {"A": Expect(A, B, layer=L)}, extract, {"Z": Z, "activation": "sigmoid"}))
    return probes


def probe_relu(net: Net):
    def extract(result):
        return {"A": result[0] if isinstance(result, (tuple, list)) else result}
    Z = net.C["Z1"]
    return [Probe("relu", net.label, net.dtype, (net.cast(Z),), {},
                  {"A": Expect(np.maximum(Z, 0), tol.C_G * _u(net.dtype) * np.abs(net.C["A1"]), layer=1)},
                  extract, {"Z": Z, "activation": "relu"})]


def probe_softmax(_net=None):
    """softmax(Z) in the notes' layout: Z of shape (classes, examples), each column normalised (axis 0)."""
    from reference.activations import softmax

    out = []
    for dtype in ("float64", "float32"):
        rng = np.random.RandomState(4)
        for label, Z in (("3 classes, m = 5", rng.randn(3, 5) * 2), ("large logits", np.array([[30.0, -5.0],
                                                                                              [0.0, 2.0]]))):
            Z = Z.astype(dtype).astype(np.float64)
            A = softmax(Z)
            C = Z.shape[0]  # exp(Z - max): C_G u each; the sum of C terms; the division (see tolerances)
            B = (tol.C_G + C + 1) * _u(dtype) * A + tol.UNDERFLOW[dtype]
            out.append(Probe("softmax", label, dtype, (Z.astype(dtype),), {}, {"A": Expect(A, B)},
                             lambda r: {"A": r[0] if isinstance(r, (tuple, list)) else r},
                             {"Z": Z, "activation": "softmax"}))
    return out


def _dAL(net):
    L = net.case.L
    return cost_backward(net.C[f"A{L}"], net.Y.astype(np.float64), net.case.loss)


def probe_sigmoid_backward(net: Net):
    L = net.case.L
    dA, Z = _dAL(net), net.C[f"Z{L}"]
    return [Probe("sigmoid_backward", net.label, net.dtype, (net.cast(dA), net.cast(Z)), {},
                  {"dZ": Expect(net.C[f"dZ{L}"], net.B[f"dZ{L}"], layer=L)}, lambda r: {"dZ": r},
                  {"dA": dA, "Z": Z, "A": net.C[f"A{L}"], "activation": "sigmoid"})]


def probe_relu_backward(net: Net):
    out = []
    for l in range(1, net.case.L):
        dA, Z = net.C[f"dA{l}"], net.C[f"Z{l}"]
        out.append(Probe("relu_backward", net.label, net.dtype, (net.cast(dA), net.cast(Z)), {},
                         {"dZ": Expect(net.C[f"dZ{l}"], net.B[f"dZ{l}"], layer=l)}, lambda r: {"dZ": r},
                         {"dA": dA, "Z": Z, "A": net.C[f"A{l}"], "activation": "relu"}))
    if net.label == "relu kink":
        out.append(probe_relu_kink(net))
    return out


KINK = "Z = 0 exactly (relu's kink)"
COURSE_KINK, OTHER_KINK = "relu'(0) = 0 (the course's)", "relu'(0) = 1"


def probe_relu_kink(net: Net):
    """relu_backward where a third of Z is exactly 0 and dA is nonzero everywhere: dZ is dA or 0, so it is
    compared exactly, and the two conventions of the kink (relu'(0) = 0, the course's; or 1) differ there."""
    rng = np.random.RandomState(8)
    Z = net.cast(net.C["Z1"]).astype(np.float64)
    Z.flat[::3] = 0.0
    dA = net.cast(rng.uniform(0.5, 1.5, Z.shape) * np.where(rng.rand(*Z.shape) < 0.5, -1.0, 1.0)).astype(np.float64)
    expect = Expect(np.where(Z > 0, dA, 0.0), np.zeros(Z.shape), layer=1, exact=True, convention=COURSE_KINK,
                    slips={OTHER_KINK: np.where(Z >= 0, dA, 0.0)})
    return Probe("relu_backward", KINK, net.dtype, (net.cast(dA), net.cast(Z)), {}, {"dZ": expect},
                 lambda r: {"dZ": r}, {"dA": dA, "Z": Z, "activation": "relu"})
