"""NumPy reference: the networks of the notes, written the way the notes derive them."""

from reference.activations import (
    leaky_relu,
    linear,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from reference.gradient_check import gradient_check
from reference.initializers import initialize_parameters
from reference.losses import cost_backward, l1, l2
from reference.model import (
    compute_cost,
    forward_backward,
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    linear_forward,
    model_backward,
    model_forward,
    predict,
    train,
    update_parameters,
)
from reference.utils import image2vector, minibatch_schedule, normalize_rows

NAME = "numpy"

__all__ = [  # every name above (a literal list, so that linters see the re-exports), the submodules too
    "NAME", "activations", "compute_cost", "cost_backward", "forward_backward", "gradient_check", "image2vector",
    "initialize_parameters", "initializers", "l1", "l2", "leaky_relu", "linear", "linear_activation_backward",
    "linear_activation_forward", "linear_backward", "linear_forward", "losses", "minibatch_schedule", "model",
    "model_backward", "model_forward", "normalize_rows", "optimizers", "predict", "relu", "sigmoid", "softmax", "tanh",
    "train", "update_parameters", "utils",
]
