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


#: The cases a protocol implementation is checked on: the notes' 2-layer tanh network on the planar data,
#: float64 and float32, full batch and mini-batch, with few steps (the checks are per step, not per run).
PROTOCOL_CASES = ("l2-tanh-float64-fullbatch", "l2-tanh-float32-minibatch")
PROTOCOL_EPOCHS = 20


def protocol(module, case_ids=PROTOCOL_CASES, epochs=PROTOCOL_EPOCHS):
    """The project's harness on a learner's ``forward_backward`` and ``train``: every Z, A, cost, dZ, dW, db
    and dA at step 0 and the checkpoints, the first update, the trajectory and the final parameters, as
    ``nnparity report`` compares the built-in implementations.  Returns the rows as plain dicts."""
    from nnparity import data, grid, harness
    from nnparity.impls import External

    impl = External(getattr(module, "__name__", "learner"), module)
    rows = []
    for case in grid.select(grid.test_grid(), ",".join(case_ids)):
        case = case.replace(epochs=epochs)
        ref = harness.run_reference(case, data.load_data(case.data))
        frame = harness.compare_impl(ref, impl)
        for record in frame.to_dict("records"):
            rows.append({k: (None if _missing(v) else v) for k, v in record.items() if k != "value"})
    return rows


def _missing(value):
    try:
        return value is None or value != value  # NaN, pandas' NA
    except (TypeError, ValueError):
        return True
