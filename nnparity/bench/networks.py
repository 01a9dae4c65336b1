"""The standard networks bench trains (``NETWORKS``), their data, and the default repetitions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnparity.spec import Case


@dataclass(frozen=True)
class Network:
    name: str
    layer_dims: tuple[int, ...]
    hidden_activation: str
    output_activation: str
    loss: str
    m: int
    data: str  # "random" (generated here, fixed seed) or an embedded data set
    learning_rate: float
    steps: int  # default steps per timed call
    quick_steps: int
    description: str

    def case(self, dtype: str, steps: int) -> Case:
        return Case(layer_dims=self.layer_dims, hidden_activation=self.hidden_activation,
                    output_activation=self.output_activation, loss=self.loss, dtype=dtype,
                    learning_rate=self.learning_rate, epochs=steps, data=self.data,
                    name=f"bench-{self.name}-{dtype}").validate()


NETWORKS = {
    "cat": Network("cat", (12288, 20, 7, 5, 1), "relu", "sigmoid", "cross_entropy", 209, "random", 0.0075, 30, 5,
                   "the notes' L-layer relu network on the cat task's shape: 209 random 64x64x3 'images'"),
    "planar": Network("planar", (2, 4, 1), "tanh", "sigmoid", "cross_entropy", 400, "planar", 1.2, 300, 20,
                      "the notes' 2-layer tanh network on the 400-point planar flower"),
    "wide": Network("wide", (784, 256, 128, 10), "relu", "softmax", "categorical_cross_entropy", 1000, "random",
                    0.05, 15, 4, "a wider relu/softmax network: 1000 random 28x28 'digits', 10 classes"),
}


QUICK_REPEATS = 3
DEFAULT_REPEATS = 5


def make_data(network: Network, dtype: str):
    """X, Y and the reference's initial parameters for ``network`` in ``dtype`` (random data: seed 0)."""
    from reference.initializers import initialize_parameters
    from reference.utils import one_hot

    if network.data == "random":
        rng = np.random.RandomState(0)
        X = rng.rand(network.layer_dims[0], network.m)  # pixel-like values in [0, 1)
        classes = 2 if network.output_activation == "sigmoid" else network.layer_dims[-1]
        labels = rng.randint(0, classes, size=(1, network.m))
    else:
        from nnparity import data as data_mod

        dataset = data_mod.load_data(network.data)
        X, labels = dataset.X, dataset.Y
    Y = labels if network.output_activation == "sigmoid" else one_hot(labels, network.layer_dims[-1])
    parameters = initialize_parameters(network.layer_dims, "inv-sqrt", 0.01, 1, dtype)
    return X.astype(dtype), Y.astype(dtype), parameters
