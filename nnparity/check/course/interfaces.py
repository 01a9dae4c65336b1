"""The course's interfaces (one per notebook) and their functions: how a learner's module is recognised, the notes'
equation of each function, and what the checks allow (the composed calls, the arguments updated in place)."""

from __future__ import annotations

#: The interfaces ``nnparity check`` recognises, in the order it checks them, and their functions in the
#: order of computation (so that the first divergence is the first thing that went wrong).
INTERFACES = {
    "logistic": ("sigmoid", "initialize_with_zeros", "propagate", "optimize", "predict"),
    "two-layer": ("layer_sizes", "initialize_parameters", "forward_propagation", "compute_cost",
                  "backward_propagation", "update_parameters", "nn_model", "predict"),
    "deep": ("sigmoid", "relu", "initialize_parameters_deep", "linear_forward", "linear_activation_forward",
             "L_model_forward", "compute_cost", "sigmoid_backward", "relu_backward", "linear_backward",
             "linear_activation_backward", "L_model_backward", "update_parameters"),
    "optimisation": ("random_mini_batches", "initialize_velocity", "update_parameters_with_momentum",
                     "initialize_adam", "update_parameters_with_adam", "update_lr", "schedule_lr_decay",
                     "forward_propagation_with_dropout", "compute_cost_with_regularization",
                     "backward_propagation_with_regularization", "backward_propagation_with_dropout"),
    "gradient-checking": ("forward_propagation", "backward_propagation", "gradient_check"),
    "convolution": ("zero_pad", "conv_single_step", "conv_forward", "pool_forward", "conv_backward",
                    "create_mask_from_window", "distribute_value", "pool_backward"),
}

#: The functions that tell an interface apart (a shared name such as ``sigmoid`` or ``compute_cost`` alone
#: does not say which notebook a file follows).
DISTINCTIVE = {
    "logistic": ("initialize_with_zeros", "propagate", "optimize"),
    "two-layer": ("layer_sizes", "forward_propagation", "backward_propagation", "nn_model"),
    "deep": ("initialize_parameters_deep", "linear_forward", "linear_activation_forward", "L_model_forward",
             "linear_backward", "linear_activation_backward", "L_model_backward", "relu_backward",
             "sigmoid_backward"),
    "optimisation": INTERFACES["optimisation"],
    "gradient-checking": ("gradient_check",),
    "convolution": INTERFACES["convolution"],
}

#: The gradient-checking notebook's 1-D functions share the 2-layer notebook's names; their arguments tell them
#: apart: ``forward_propagation(x, theta)``, ``backward_propagation(x, theta)``.
ONE_D = ("x", "theta")

#: The course's helpers (``dnn_utils``): checked wherever a module defines them, absent only from the deep notebook.
HELPERS = ("sigmoid", "relu", "softmax")

#: The notes' equation each function implements, for the checklist and the hints.
EQUATIONS = {
    "sigmoid": "A = 1 / (1 + exp(-Z))",
    "relu": "A = max(0, Z)",
    "softmax": "A = exp(Z) / sum(exp(Z), axis=0)",
    "sigmoid_backward": "dZ = dA * s * (1 - s), s = sigmoid(Z)",
    "relu_backward": "dZ = dA where Z > 0, else 0",
    "initialize_with_zeros": "w = zeros((dim, 1)), b = 0",
    "propagate": "A = sigmoid(w.T X + b); dw = 1/m X (A - Y).T; db = 1/m sum(A - Y)",
    "optimize": "w = w - alpha dw; b = b - alpha db, num_iterations times",
    "predict": "Y_prediction = 1 where A > 0.5, else 0",
    "layer_sizes": "n_x = X.shape[0], n_h = 4, n_y = Y.shape[0]",
    "initialize_parameters": "W[l] = randn(n[l], n[l-1]) * 0.01, b[l] = zeros((n[l], 1))",
    "initialize_parameters_deep": "W[l] = randn(n[l], n[l-1]) * 0.01 (or / sqrt(n[l-1])), b[l] = 0",
    "forward_propagation": "Z1 = W1 X + b1; A1 = tanh(Z1); Z2 = W2 A1 + b2; A2 = sigmoid(Z2)",
    "linear_forward": "Z[l] = W[l] A[l-1] + b[l]",
    "linear_activation_forward": "A[l] = g(W[l] A[l-1] + b[l])",
    "L_model_forward": "[LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID",
    "compute_cost": "J = -1/m sum(Y log AL + (1 - Y) log(1 - AL))",
    "backward_propagation": "dZ2 = A2 - Y; dW2 = 1/m dZ2 A1.T; dZ1 = W2.T dZ2 * (1 - A1^2); ...",
    "linear_backward": "dW = 1/m dZ A_prev.T; db = 1/m sum(dZ, axis=1, keepdims=True); dA_prev = W.T dZ",
    "linear_activation_backward": "dZ = dA * g'(Z), then linear_backward",
    "L_model_backward": "dAL = -(Y/AL - (1 - Y)/(1 - AL)), then layers L..1",
    "update_parameters": "W[l] = W[l] - alpha dW[l]; b[l] = b[l] - alpha db[l]",
    "nn_model": "initialize, then forward, cost, backward, update num_iterations times",
    "random_mini_batches": "shuffle with np.random.seed(seed), cut into batches of mini_batch_size",
    "initialize_velocity": "v[dW[l]] = zeros like W[l]",
    "update_parameters_with_momentum": "v = beta v + (1 - beta) dW; W = W - alpha v",
    "initialize_adam": "v = s = zeros like each parameter",
    "update_parameters_with_adam": "v = b1 v + (1-b1) dW; s = b2 s + (1-b2) dW^2; "
                                   "W = W - alpha v/(1-b1^t) / (sqrt(s/(1-b2^t)) + eps)",
    "forward_propagation_with_dropout": "D = rand < keep_prob; A = A * D / keep_prob",
    "compute_cost_with_regularization": "J = cross-entropy + lambda/(2m) sum ||W[l]||^2",
    "backward_propagation_with_regularization": "dW[l] = 1/m dZ[l] A[l-1].T + lambda/m W[l]",
    "backward_propagation_with_dropout": "dA[l] = dA[l] * D[l] / keep_prob",
    "update_lr": "alpha = alpha0 / (1 + decay_rate * epoch_num)",
    "schedule_lr_decay": "alpha = alpha0 / (1 + decay_rate * floor(epoch_num / time_interval))",
    "forward_propagation (1-D)": "J = theta x",
    "backward_propagation (1-D)": "dtheta = x",
    "gradient_check": "gradapprox = (J(theta + eps) - J(theta - eps)) / (2 eps); "
                      "difference = |grad - gradapprox| / (|grad| + |gradapprox|)",
    "forward_backward": "every Z, A, cost, dZ, dW, db, dA of one pass",
    "train": "the parameters after the first update, the cost of every step, the final parameters",
    "predictions": "predict on the reference's final parameters",
    "zero_pad": "X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))",
    "conv_single_step": "Z = sum(a_slice_prev * W) + b",
    "conv_forward": "Z[i, h, w, c] = sum(a_prev_pad[h s:h s + f, w s:w s + f, :] * W[..., c]) + b[..., c]; "
                    "n_H = int((n_H_prev - f + 2 pad) / s) + 1",
    "pool_forward": "A[i, h, w, c] = max (or mean) of A_prev[i, h s:h s + f, w s:w s + f, c]; "
                    "n_H = int((n_H_prev - f) / s) + 1",
    "conv_backward": "da_prev_pad[window] += W[..., c] dZ[i, h, w, c]; dW[..., c] += a_slice dZ[i, h, w, c]; "
                     "db[..., c] += dZ[i, h, w, c]",
    "create_mask_from_window": "mask = (x == np.max(x))",
    "distribute_value": "a = np.ones(shape) * dz / (n_H * n_W)",
    "pool_backward": "dA_prev[i, window, c] += mask * dA[i, h, w, c] (max), or distribute_value(dA[i, h, w, c], "
                     "(f, f)) (average)",
}


#: What the answer says about a function whenever it is checked (what its checks leave out, and why).
NOTES = {"conv_backward": "conv_backward is checked with pad >= 1 only, as the notebook calls it: the notebook's "
                          "da_prev_pad[pad:-pad, pad:-pad, :] is empty for pad = 0 (da_prev_pad[pad:pad + n_H_prev, "
                          "pad:pad + n_W_prev, :] works for every pad)"}


#: What the composed checks call of the learner's functions (the drivers' loops).
COMPOSED_CALLS = {"training (composed)": ("L_model_forward", "compute_cost", "L_model_backward", "update_parameters")}

#: Arguments the course's own code updates in place (its older notebooks assign into the dict they are given):
#: function -> the positions of those arguments, never reported as changed in place.
UPDATED_IN_PLACE = {"update_parameters": {0}, "update_parameters_with_momentum": {0, 2},
                    "update_parameters_with_adam": {0, 2, 3}, "optimize": {0, 1}}


def recognise(functions) -> list[str]:
    """The interfaces a learner's module offers (by the functions that tell them apart), in check order."""
    one_d = tuple(functions.get("forward_propagation", ())[:2]) == ONE_D
    found = []
    for name, distinctive in DISTINCTIVE.items():
        present = [f for f in distinctive if f in functions]
        if name == "two-layer" and one_d:  # the gradient-checking notebook's 1-D functions, not the planar network's
            present = [f for f in present if f not in ("forward_propagation", "backward_propagation")]
        if name == "gradient-checking" and one_d:
            present.append("forward_propagation")
        if present:
            found.append(name)
    if "protocol" not in found and all(f in functions for f in ("forward_backward", "train")):
        found.append("protocol")
    if not found and any(f in functions for f in ("sigmoid", "compute_cost", "update_parameters", "predict")):
        found.append("deep" if "sigmoid" in functions and "predict" not in functions else "logistic")
    return found
