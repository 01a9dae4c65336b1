"""The classic course's functions: their names, arguments and layouts, and what the reference says they return.

Each course function has a *probe*: given a generated network (``Net``: parameters, data, the float64
reference's every intermediate and the derived rounding bound of each), it builds the call a learner's
function receives -- the course's argument order, dict keys (``W1``, ``dW1``, ``dA0``) and cache layouts
(``((A_prev, W, b), Z)`` per layer) -- and the quantities its result must hold, each with its expected
value and bound.  The reference (``reference/``) computes every expected value; this module only lays
them out the way the course does.

Where the course's convention and the reference's differ, a quantity carries both (``Expect.alternatives``)
and the checker says which one the learner used: the gradient returned after dropout (the course's ``dA``
is taken after the mask and the 1/keep_prob, the reference's before), the seed and scale of the course's
initialisers (``np.random.seed(3)`` and 0.01 in the step-by-step notebook, ``seed(1)`` and
``1/sqrt(n[l-1])`` in the application).

One module per notebook: ``logistic`` (logistic regression), ``planar`` (the 2-layer planar network),
``step_by_step`` (the deep network step by step), ``regularization`` (L2 and dropout), ``optimization``
(mini-batches, momentum, Adam, learning-rate decay), ``gradient_checking`` (its 1-D functions) and ``convolution``
(the convolution model's conv and pool layers, forward and backward); ``dnn_utils``
(the course's helpers), ``common`` (what their probes share), ``interfaces`` (the notebooks' functions, and how a
module is recognised) and ``probes`` (each function's probe and networks).  This module re-exports their public
names: ``from nnparity.check import course`` then ``course.probes_for(...)`` as before.
"""

from __future__ import annotations

from nnparity.check.course.common import Expect, LayoutError, Net, Probe, make_net, nets
from nnparity.check.course.convolution import (
    probe_conv_backward,
    probe_conv_forward,
    probe_conv_single_step,
    probe_create_mask_from_window,
    probe_distribute_value,
    probe_pool_backward,
    probe_pool_forward,
    probe_zero_pad,
)
from nnparity.check.course.dnn_utils import (
    COURSE_KINK,
    KINK,
    OTHER_KINK,
    probe_relu,
    probe_relu_backward,
    probe_relu_kink,
    probe_sigmoid,
    probe_sigmoid_backward,
    probe_softmax,
)
from nnparity.check.course.gradient_checking import (
    ONE_D_POINTS,
    probe_backward_propagation_1d,
    probe_forward_propagation_1d,
    probe_gradient_check,
)
from nnparity.check.course.interfaces import (
    COMPOSED_CALLS,
    DISTINCTIVE,
    EQUATIONS,
    HELPERS,
    INTERFACES,
    NOTES,
    ONE_D,
    UPDATED_IN_PLACE,
    recognise,
)
from nnparity.check.course.logistic import (
    probe_initialize_with_zeros,
    probe_optimize,
    probe_predict_logistic,
    probe_propagate,
)
from nnparity.check.course.optimization import (
    probe_initialize_adam,
    probe_initialize_velocity,
    probe_random_mini_batches,
    probe_schedule_lr_decay,
    probe_update_lr,
    probe_update_parameters_with_adam,
    probe_update_parameters_with_momentum,
)
from nnparity.check.course.planar import (
    probe_backward_propagation,
    probe_forward_propagation,
    probe_initialize_parameters,
    probe_layer_sizes,
    probe_nn_model,
    probe_predict_two_layer,
    probe_update_parameters,
)
from nnparity.check.course.probes import PROBES, networks, probes_for
from nnparity.check.course.regularization import (
    probe_backward_propagation_with_dropout,
    probe_backward_propagation_with_regularization,
    probe_compute_cost_with_regularization,
    probe_forward_propagation_with_dropout,
)
from nnparity.check.course.step_by_step import (
    EVERY_LABEL,
    probe_compute_cost,
    probe_deep_training,
    probe_initialize_parameters_deep,
    probe_L_model_backward,
    probe_L_model_forward,
    probe_linear_activation_backward,
    probe_linear_activation_forward,
    probe_linear_backward,
    probe_linear_forward,
    saturated,
)

__all__ = [
    "INTERFACES", "DISTINCTIVE", "ONE_D", "HELPERS", "EQUATIONS", "COMPOSED_CALLS", "UPDATED_IN_PLACE", "recognise",
    "Expect", "Probe", "LayoutError", "Net", "make_net", "nets", "probe_sigmoid", "probe_relu", "probe_softmax",
    "probe_sigmoid_backward", "probe_relu_backward", "KINK", "COURSE_KINK", "OTHER_KINK", "probe_relu_kink",
    "probe_initialize_with_zeros", "probe_predict_logistic", "probe_propagate", "probe_optimize",
    "probe_initialize_parameters", "probe_layer_sizes", "probe_update_parameters", "probe_forward_propagation",
    "probe_backward_propagation", "probe_predict_two_layer", "probe_nn_model", "probe_initialize_parameters_deep",
    "probe_linear_forward", "probe_linear_activation_forward", "probe_L_model_forward", "probe_compute_cost",
    "EVERY_LABEL", "probe_linear_backward", "probe_linear_activation_backward", "probe_L_model_backward", "saturated",
    "probe_deep_training", "probe_compute_cost_with_regularization", "probe_backward_propagation_with_regularization",
    "probe_forward_propagation_with_dropout", "probe_backward_propagation_with_dropout", "probe_initialize_velocity",
    "probe_initialize_adam", "probe_update_parameters_with_momentum", "probe_update_parameters_with_adam",
    "probe_random_mini_batches", "probe_update_lr", "probe_schedule_lr_decay", "ONE_D_POINTS",
    "probe_forward_propagation_1d", "probe_backward_propagation_1d", "probe_gradient_check", "PROBES", "networks",
    "probes_for", "NOTES", "probe_zero_pad", "probe_conv_single_step", "probe_conv_forward", "probe_pool_forward",
    "probe_conv_backward", "probe_create_mask_from_window", "probe_distribute_value", "probe_pool_backward",
]
