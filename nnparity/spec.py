"""The contract every implementation and the harness share.

A ``Case`` says everything needed to train one network the way the notes do:
the layer sizes ``n[0..L]``, the activations, the loss, the initialiser, the
dtype, and the optimisation schedule.  The names of quantities are the notes'
symbols: parameters ``W1, b1, ..., WL, bL``; forward ``Z1, A1, ..., ZL, AL``;
backward ``dZl, dWl, dbl, dA(l-1)``.

Shapes (examples as columns, as in the notes)::

    X   (n[0], m)        Y   (1, m), or (C, m) one-hot for a softmax output
    Wl  (n[l], n[l-1])   bl  (n[l], 1)
    Zl, Al  (n[l], m)

Nothing here imports a framework.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from nnparity.errors import UsageError

HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "linear")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")
# cross_entropy: binary, with a sigmoid output; categorical_cross_entropy: with a softmax output.
LOSSES = ("cross_entropy", "categorical_cross_entropy", "l1", "l2")
INITS = ("zeros", "small-random", "inv-sqrt", "he", "xavier")
OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")
# The course's learning-rate decay, applied per epoch: inverse-time (update_lr) or scheduled (schedule_lr_decay).
DECAYS = ("none", "inverse-time", "scheduled")
DTYPES = ("float64", "float32")
# How backpropagation starts at the output: chained through dAL and g'(ZL) (the L-layer notes), or fused as
# dZL = AL - Y (the 2-layer notes; sigmoid with cross_entropy, softmax with categorical_cross_entropy only).
OUTPUT_GRADIENTS = ("chained", "fused")
# The reference's name; every implementation's is in the registry (nnparity.impls).
REFERENCE_IMPL = "numpy"


def _choice(kind: str, value: str, choices: tuple[str, ...], flag: str) -> None:
    if value not in choices:
        raise UsageError(f"unknown {kind} {value!r}; use {flag} with one of: {', '.join(choices)}")


@dataclass(frozen=True)
class Case:
    """One network, one dataset, one schedule: what every implementation runs."""

    layer_dims: tuple[int, ...]
    hidden_activation: str = "relu"
    output_activation: str = "sigmoid"
    loss: str = "cross_entropy"
    leaky_slope: float = 0.01
    init: str = "inv-sqrt"
    init_scale: float = 0.01
    bias_scale: float = 0.0  # initial biases ~ N(0, bias_scale^2) from RandomState(seed + 1); 0: zeros, as the notes
    seed: int = 1
    dtype: str = "float64"
    learning_rate: float = 0.0075
    epochs: int = 100
    batch_size: int | None = None  # None: full batch, one gradient step per epoch
    shuffle_seed: int = 0
    optimizer: str = "gd"  # gd, momentum, rmsprop, adam
    beta: float = 0.9  # momentum
    beta1: float = 0.9  # Adam's first moment
    beta2: float = 0.999  # RMSprop's and Adam's second moment
    epsilon: float = 1e-8  # RMSprop, Adam
    lambd: float = 0.0  # L2 regularisation (the course's spelling: lambda is a Python keyword)
    keep_prob: float = 1.0  # inverted dropout on the hidden layers; 1 = off
    dropout_seed: int = 3  # step t's masks come from RandomState(dropout_seed + t)
    output_gradient: str = "chained"  # chained: dAL through g'(ZL); fused: dZL = AL - Y (see OUTPUT_GRADIENTS)
    decay: str = "none"  # learning-rate decay per epoch (see DECAYS); reference.optimizers.learning_rate_at
    decay_rate: float = 0.0
    time_interval: int = 1000  # scheduled decay: the rate changes every time_interval epochs
    data: str = "planar"
    name: str = field(default="", compare=False)

    @property
    def classes(self) -> int:
        """Number of classes: 2 for a sigmoid output (one unit), n[L] for softmax."""
        return 2 if self.output_activation == "sigmoid" else self.layer_dims[-1]

    @property
    def L(self) -> int:
        """Number of layers with parameters (the input layer is not counted)."""
        return len(self.layer_dims) - 1

    @property
    def dropout(self) -> bool:
        return self.keep_prob < 1 and self.L > 1

    def activations(self) -> tuple[str, ...]:
        """Activation g[l] of layers 1..L."""
        return (self.hidden_activation,) * (self.L - 1) + (self.output_activation,)

    def replace(self, **changes) -> "Case":
        return dataclasses.replace(self, **changes)

    def steps(self, examples: int) -> int:
        """Gradient steps of the case on ``examples`` examples: one per epoch, or one per mini-batch."""
        return self.epochs if self.batch_size is None else self.epochs * -(-examples // self.batch_size)

    def step_case(self, keep_epochs: bool = False) -> "Case":
        """The case as a compiled training step sees it: the key of what an implementation compiles once per
        network in a process.  Its name and batch size (which no step reads) are set aside, and its length too
        unless ``keep_epochs`` (a schedule built into the step, as flax's decay, is as long as the run), so a
        case's one-step first update, its full run and its full- and mini-batch runs share one step."""
        return self.replace(epochs=self.epochs if keep_epochs else 1, batch_size=None, name="")

    def validate(self) -> "Case":
        """Raise UsageError (one line: problem and fix) for an impossible case."""
        dims = self.layer_dims
        if len(dims) < 2:
            raise UsageError(
                f"--layer-dims needs at least two sizes (input and output), got {','.join(map(str, dims)) or 'none'}; "
                "e.g. --layer-dims 2,4,1"
            )
        if any(int(d) != d or d < 1 for d in dims):
            raise UsageError(f"--layer-dims sizes must be positive integers, got {','.join(map(str, dims))}")
        _choice("hidden activation", self.hidden_activation, HIDDEN_ACTIVATIONS, "--hidden-activation")
        _choice("output activation", self.output_activation, OUTPUT_ACTIVATIONS, "--output-activation")
        _choice("loss", self.loss, LOSSES, "--loss")
        if self.output_activation == "sigmoid" and dims[-1] != 1:
            raise UsageError(
                f"the output layer must have 1 unit for a sigmoid output, got {dims[-1]}; end --layer-dims with 1 "
                "(or use --output-activation softmax for several classes)"
            )
        if self.output_activation == "softmax" and dims[-1] < 2:
            raise UsageError(f"a softmax output needs at least 2 units (one per class), got {dims[-1]}; "
                             "end --layer-dims with the number of classes")
        if (self.loss == "categorical_cross_entropy") != (self.output_activation == "softmax"):
            raise UsageError(f"--loss {self.loss} does not fit a {self.output_activation} output; use "
                             "categorical_cross_entropy with softmax, cross_entropy (or l1, l2) with sigmoid")
        _choice("output gradient", self.output_gradient, OUTPUT_GRADIENTS, "--output-gradient")
        if self.output_gradient == "fused" and self.loss not in ("cross_entropy", "categorical_cross_entropy"):
            raise UsageError(f"--output-gradient fused (dZL = AL - Y) holds for cross-entropy only, not --loss "
                             f"{self.loss}; use --loss cross_entropy (sigmoid) or --output-gradient chained")
        _choice("initialiser", self.init, INITS, "--init")
        _choice("dtype", self.dtype, DTYPES, "--dtype")
        for flag, value in (("--learning-rate", self.learning_rate), ("--init-scale", self.init_scale)):
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"{flag} must be a positive finite number, got {value}")
        if not (math.isfinite(self.bias_scale) and self.bias_scale >= 0):
            raise UsageError(f"the initial biases' scale must be a non-negative finite number, got {self.bias_scale}")
        if not (math.isfinite(self.leaky_slope) and 0 <= self.leaky_slope < 1):
            raise UsageError(f"--leaky-slope must be in [0, 1), got {self.leaky_slope}")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be a positive integer, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be a positive integer, got {self.batch_size}")
        _choice("optimizer", self.optimizer, OPTIMIZERS, "--optimizer")
        _choice("learning-rate decay", self.decay, DECAYS, "--decay")
        if not (math.isfinite(self.decay_rate) and self.decay_rate >= 0):
            raise UsageError(f"--decay-rate must be a non-negative finite number, got {self.decay_rate}")
        if self.decay != "none" and self.decay_rate == 0:
            raise UsageError(f"--decay {self.decay} needs a --decay-rate above 0 (0 keeps the rate constant); "
                             "e.g. --decay-rate 0.3")
        if self.decay == "none" and self.decay_rate:
            raise UsageError(f"--decay-rate {self.decay_rate} has no effect without a decay; add --decay "
                             "inverse-time or --decay scheduled")
        if int(self.time_interval) != self.time_interval or self.time_interval < 1:
            raise UsageError(f"--time-interval must be a positive integer (epochs), got {self.time_interval}")
        for flag, value in (("--beta", self.beta), ("--beta1", self.beta1), ("--beta2", self.beta2)):
            if not (math.isfinite(value) and 0 <= value < 1):
                raise UsageError(f"{flag} must be in [0, 1), got {value}")
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise UsageError(f"--epsilon must be a positive finite number, got {self.epsilon}")
        if not (math.isfinite(self.lambd) and self.lambd >= 0):
            raise UsageError(f"--l2 must be a non-negative finite number, got {self.lambd}")
        if not (math.isfinite(self.keep_prob) and 0 < self.keep_prob <= 1):
            raise UsageError(f"--keep-prob must be in (0, 1], got {self.keep_prob}; 1 turns dropout off")
        # RandomState takes seeds below 2**32; epoch e adds e to the shuffle seed, step t adds t to the dropout seed
        for flag, value, added, used in (("--seed", self.seed, 0, True),
                                         ("--shuffle-seed", self.shuffle_seed, self.epochs, self.batch_size),
                                         ("--dropout-seed", self.dropout_seed, self.epochs, self.dropout)):
            if value < 0:
                raise UsageError(f"{flag} must be a non-negative integer, got {value}")
            if used and value + added >= 2**32:
                raise UsageError(f"{flag} {value} is beyond NumPy's RandomState seeds (below 2**32 = 4294967296"
                                 f"{', less the epochs' if added else ''}); use a smaller {flag}")
        return self

    @property
    def id(self) -> str:
        """Readable id, e.g. ``l4-relu-float32-minibatch``."""
        if self.name:
            return self.name
        act = "logreg" if self.L == 1 else self.hidden_activation.replace("_", "")
        batch = "fullbatch" if self.batch_size is None else f"minibatch{self.batch_size}"
        out = "" if self.output_activation == "sigmoid" else f"-{self.output_activation}"
        extra = "" if self.optimizer == "gd" else f"-{self.optimizer}"
        extra += "-l2" if self.lambd else ""
        extra += "-dropout" if self.keep_prob < 1 else ""
        extra += "-fused" if self.output_gradient == "fused" else ""
        extra += "-biased" if self.bias_scale else ""
        extra += "" if self.decay == "none" else f"-{self.decay}-decay"
        return f"l{self.L}-{act}{out}{extra}-{self.dtype}-{batch}"


def param_names(L: int) -> list[str]:
    """``['W1', 'b1', ..., 'WL', 'bL']``: the parameter order every implementation uses."""
    return [f"{p}{l}" for l in range(1, L + 1) for p in ("W", "b")]


def forward_names(L: int) -> list[str]:
    """Forward quantities in the order of computation: Z1, A1, ..., ZL, AL."""
    return [f"{q}{l}" for l in range(1, L + 1) for q in ("Z", "A")]


def backward_names(L: int) -> list[str]:
    """Backward quantities in the order of computation: dZL, dWL, dbL, dA(L-1), ..., dZ1, dW1, db1."""
    names = []
    for l in range(L, 0, -1):
        names += [f"dZ{l}", f"dW{l}", f"db{l}"]
        if l > 1:
            names.append(f"dA{l - 1}")
    return names


def split_name(quantity: str) -> tuple[str, int | None]:
    """``'dW3'`` -> ``('dW', 3)``; ``'cost'`` -> ``('cost', None)``."""
    stem = quantity.rstrip("0123456789")
    digits = quantity[len(stem):]
    return stem, (int(digits) if digits else None)
