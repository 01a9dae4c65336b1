"""The gradient-checking notebook, 1-D (J = theta x): forward_propagation(x, theta), backward_propagation(x, theta) and
gradient_check."""

from __future__ import annotations

from nnparity import tolerances as tol
from nnparity.check.course.common import _scalar_probe, _u

ONE_D_POINTS = ((2.0, 4.0), (-0.5, 3.0), (3.0, -1e-3))


def probe_forward_propagation_1d(_net=None):
    return [_scalar_probe("forward_propagation", f"x = {x}, theta = {theta}", (x, theta), {}, theta * x,
                          _u("float64") * abs(theta * x), {"x": x, "theta": theta}) for x, theta in ONE_D_POINTS]


def probe_backward_propagation_1d(_net=None):
    return [_scalar_probe("backward_propagation", f"x = {x}, theta = {theta}", (x, theta), {}, x, 0.0,
                          {"x": x, "theta": theta}) for x, theta in ONE_D_POINTS]


def probe_gradient_check(_net=None, epsilon=1e-7):
    """The course's 1-D ``gradient_check(x, theta, epsilon)`` against the reference's ``gradient_check_function``.

    The difference is mostly rounding: J(theta + eps) - J(theta - eps) cancels, so each J's two roundings
    (gamma_2 |J|) divided by 2 eps is gradapprox's error E; the difference then moves by at most
    2 E / (|grad| + |gradapprox|) plus four roundings."""
    from reference.gradient_check import gradient_check_function

    out = []
    for x, theta in ONE_D_POINTS:
        value = gradient_check_function(lambda t: t * x, x, theta, epsilon)
        J = abs(x) * (abs(theta) + epsilon)
        E = (tol.gamma(2, _u("float64")) * 2 * J + _u("float64") * 2 * abs(x) * epsilon) / (2 * epsilon)
        bound = 2 * E / (2 * abs(x)) + 4 * _u("float64")
        out.append(_scalar_probe("gradient_check", f"x = {x}, theta = {theta}", (x, theta), {"epsilon": epsilon},
                                 value, bound, {"x": x, "theta": theta}))
    return out
