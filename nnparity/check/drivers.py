"""Loops that drive a learner's own functions inside the sandbox's worker (``Sandbox.run``): the composed
checks, where nothing of the reference is fed in between the learner's calls."""


def deep_training(module, X, Y, parameters, learning_rate, steps):
    """The course's L-layer loop from the learner's functions: forward, cost, backward, update, ``steps``
    times.  Returns (parameters, costs), the cost of each step taken before its update."""
    costs = []
    for _ in range(steps):
        AL, caches = module.L_model_forward(X, parameters)
        costs.append(float(module.compute_cost(AL, Y)))
        grads = module.L_model_backward(AL, Y, caches)
        parameters = module.update_parameters(parameters, grads, learning_rate)
    return parameters, costs
