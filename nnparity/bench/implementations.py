"""What bench runs: the registry's implementations and ``torch-compile`` (torch with ``torch.compile``,
bench only), in ``BENCH_IMPLS``, and the lookup of one by name in a worker."""

from __future__ import annotations

from nnparity.errors import UsageError


def _bench_impls():
    """The registry's implementations, and torch with ``torch.compile`` (bench only) after torch, then the
    implementations installed packages register (``nnparity.impls.plugins``)."""
    from nnparity import impls  # the registry imports no framework

    names = list(impls.IMPLS)
    names.insert(names.index("torch") + 1, "torch-compile")
    return tuple(names + [name for name in impls.plugins() if name not in names])


#: Implementations the benchmark knows.
BENCH_IMPLS = _bench_impls()


_COMPILED = {}


def _forward_cost(parameters, X, Y, case):
    """``torch_impl.model``'s forward pass and cost: what ``torch-compile`` compiles."""
    from torch_impl import model as M

    AL, _ = M.model_forward(X, parameters, case)
    return M.compute_cost(AL, Y, parameters, case)


def train_torch_compile(parameters, X, Y, case, schedule=None, masks=None, on_step=None):
    """``torch_impl.model.train`` with the forward pass and cost compiled by
    ``torch.compile(backend="inductor")`` (AOTAutograd compiles their backward too).
    ``torch.autograd.grad`` and the update stay eager: Dynamo does not trace
    ``torch.autograd.grad`` (a graph break), so the whole step does not compile as one graph."""
    import torch

    from torch_impl import model as M

    if schedule is not None or masks is not None:
        raise UsageError("torch-compile is benchmarked on full-batch runs without dropout only")
    M.setup(case.seed)
    key = case.replace(epochs=1, name="")
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(lambda P, X_, Y_: _forward_cost(P, X_, Y_, key), backend="inductor")
    forward_cost = _COMPILED[key]
    parameters = {k: M.to_tensor(v, case.dtype).requires_grad_() for k, v in parameters.items()}
    state = M.initialize_optimizer_state(parameters, case.optimizer)
    X, Y = M.to_tensor(X, case.dtype), M.to_tensor(Y, case.dtype)
    costs = torch.empty(case.epochs, dtype=M.DTYPES[case.dtype])
    for step in range(case.epochs):
        cost = forward_cost(parameters, X, Y)
        costs[step] = cost.detach()
        grads = M.model_backward(cost, parameters)
        parameters, state = M.update(parameters, grads, state, case, t=step + 1)
        if on_step is not None:
            on_step(step)
    return {k: M.to_numpy(v) for k, v in parameters.items()}, M.to_numpy(costs)


class _TorchCompile:
    name = "torch-compile"
    framework = "torch"

    def _load(self):
        import torch
        import torch._dynamo

        import torch_impl.model  # noqa: F401  (imported here, so that its import is timed as the framework's)

        torch._dynamo.config.cache_size_limit = 64  # one graph per network x dtype in this worker
        return torch

    def train(self, parameters, X, Y, case, schedule=None, masks=None, on_step=None):
        return train_torch_compile(parameters, X, Y, case, schedule, masks, on_step)

    forward_backward = None


def _impl(name):
    if name == "torch-compile":
        return _TorchCompile()
    from nnparity import impls

    return impls.get(name)
