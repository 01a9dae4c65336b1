"""Each course function's probe and the networks it runs on (``PROBES``, ``networks``), and the probes of a learner's
function, picked by its signature (``probes_for``)."""

from __future__ import annotations

from nnparity.check.course.common import Net, Probe, _predict_probe, make_net, nets
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
    probe_relu,
    probe_relu_backward,
    probe_sigmoid,
    probe_sigmoid_backward,
    probe_softmax,
)
from nnparity.check.course.gradient_checking import (
    probe_backward_propagation_1d,
    probe_forward_propagation_1d,
    probe_gradient_check,
)
from nnparity.check.course.interfaces import ONE_D
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
from nnparity.check.course.regularization import (
    probe_backward_propagation_with_dropout,
    probe_backward_propagation_with_regularization,
    probe_compute_cost_with_regularization,
    probe_forward_propagation_with_dropout,
)
from nnparity.check.course.step_by_step import (
    EVERY_LABEL,
    probe_compute_cost,
    probe_initialize_parameters_deep,
    probe_L_model_backward,
    probe_L_model_forward,
    probe_linear_activation_backward,
    probe_linear_activation_forward,
    probe_linear_backward,
    probe_linear_forward,
)

#: function -> (which networks, the probe), in the order of computation within each interface.
PROBES = {
    "sigmoid": ("deep", probe_sigmoid),
    "relu": ("deep", probe_relu),
    "softmax": (None, probe_softmax),
    "initialize_with_zeros": (None, probe_initialize_with_zeros),
    "layer_sizes": ("two-layer", probe_layer_sizes),
    "initialize_parameters": (None, probe_initialize_parameters),
    "initialize_parameters_deep": (None, probe_initialize_parameters_deep),
    "random_mini_batches": (None, probe_random_mini_batches),
    "propagate": ("logistic", probe_propagate),
    "forward_propagation": ("two-layer", probe_forward_propagation),
    "linear_forward": ("deep", probe_linear_forward),
    "linear_activation_forward": ("deep", probe_linear_activation_forward),
    "L_model_forward": ("deep", probe_L_model_forward),
    "forward_propagation_with_dropout": ("dropout", probe_forward_propagation_with_dropout),
    "compute_cost": ("deep", probe_compute_cost),
    "compute_cost_with_regularization": ("l2", probe_compute_cost_with_regularization),
    "sigmoid_backward": ("deep", probe_sigmoid_backward),
    "relu_backward": ("deep", probe_relu_backward),
    "linear_backward": ("deep", probe_linear_backward),
    "linear_activation_backward": ("deep", probe_linear_activation_backward),
    "L_model_backward": ("deep", probe_L_model_backward),
    "backward_propagation": ("two-layer", probe_backward_propagation),
    "backward_propagation_with_regularization": ("l2", probe_backward_propagation_with_regularization),
    "backward_propagation_with_dropout": ("dropout", probe_backward_propagation_with_dropout),
    "initialize_velocity": ("deep", probe_initialize_velocity),
    "initialize_adam": ("deep", probe_initialize_adam),
    "update_parameters": ("two-layer", probe_update_parameters),
    "update_parameters_with_momentum": ("deep", probe_update_parameters_with_momentum),
    "update_parameters_with_adam": ("deep", probe_update_parameters_with_adam),
    "update_lr": (None, probe_update_lr),
    "schedule_lr_decay": (None, probe_schedule_lr_decay),
    "gradient_check": (None, probe_gradient_check),
    "optimize": ("logistic", probe_optimize),
    "nn_model": ("two-layer", probe_nn_model),
    "predict": ("two-layer", probe_predict_two_layer),
    "zero_pad": (None, probe_zero_pad),
    "conv_single_step": (None, probe_conv_single_step),
    "conv_forward": (None, probe_conv_forward),
    "pool_forward": (None, probe_pool_forward),
    "conv_backward": (None, probe_conv_backward),
    "create_mask_from_window": (None, probe_create_mask_from_window),
    "distribute_value": (None, probe_distribute_value),
    "pool_backward": (None, probe_pool_backward),
}


def networks(kind) -> list[Net]:
    """The generated networks of a probe kind (cached per process: they cost a reference pass each)."""
    if kind not in _NETS:
        if kind == "l2":
            _NETS[kind] = [make_net(lbl, dims, dt, m, seed=20 + i, output_gradient="fused", lambd=0.7, kink=k)
                           for dt in ("float64", "float32")
                           for i, (lbl, dims, m, k) in enumerate((("m = 1", (3, 5, 3, 1), 1, False),
                                                                  ("relu kink", (4, 5, 3, 1), 6, True)))]
        elif kind == "labels":
            _NETS[kind] = [make_net(EVERY_LABEL[y], (5, 4, 3, 1), dt, 6, seed=40 + y, labels=y)
                           for dt in ("float64", "float32") for y in EVERY_LABEL]
        elif kind == "dropout":
            _NETS[kind] = [make_net(lbl, dims, dt, m, seed=30 + i, output_gradient="fused", keep_prob=0.8, kink=k)
                           for dt in ("float64", "float32")
                           for i, (lbl, dims, m, k) in enumerate((("m = 1", (3, 5, 3, 1), 1, False),
                                                                  ("relu kink", (4, 5, 3, 1), 6, True)))]
        else:
            _NETS[kind] = nets(kind)
    return _NETS[kind]


_NETS: dict = {}


def probes_for(function, parameters: tuple[str, ...]) -> list[Probe]:
    """Every probe of a course function; ``parameters`` (the learner's parameter names) pick between the
    course's signatures of one name (``predict(w, b, X)`` or ``predict(parameters, X)``; ``compute_cost(A2, Y)``
    or ``compute_cost(A2, Y, parameters)``)."""
    kind, probe = PROBES[function]
    if function == "predict" and len(parameters) >= 3 and parameters[:2] == ("w", "b"):
        kind, probe = "logistic", probe_predict_logistic
    if function == "predict" and parameters[:1] == ("X",):  # the application notebook's predict(X, y, parameters)
        return [_predict_probe(net, (net.X, net.Y, net.params()), "p") for net in networks("deep")]
    if function in ("forward_propagation", "backward_propagation") and tuple(parameters[:2]) == ONE_D:
        return (probe_forward_propagation_1d if function == "forward_propagation" else probe_backward_propagation_1d)()
    if kind is None:
        return probe()
    out = []
    for net in networks(kind) + (networks("labels") if function == "compute_cost" else []):
        if function == "compute_cost" and len(parameters) >= 3:
            out += probe_compute_cost(net, with_parameters=True)
        else:
            out += probe(net)
    return out
