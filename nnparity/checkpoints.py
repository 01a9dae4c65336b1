"""Which steps the harness re-runs from the reference's own parameters (``--checkpoints``): the names, the
default, and the parsing of a user's choice.  Light on purpose (no NumPy, no pandas): the command line parses
``--checkpoints`` before anything heavy is imported, so a bad ``--out`` is still refused first."""

from __future__ import annotations

#: Checkpoints found from the reference's own run (``--checkpoints`` names): ``saturation``, the step whose
#: outputs are most saturated (the largest fraction of AL within ``SATURATED`` of 0 or 1; ties: the smallest
#: min AL (1 - AL)), and ``gradient-peak``, the step whose update is largest relative to its learning rate
#: (for gradient descent the norm of the gradient itself; for momentum, RMSprop and Adam the step's size).
FOUND_CHECKPOINTS = ("saturation", "gradient-peak")
#: Checkpoints named by position: ``middle`` (steps // 2) and ``last`` (steps - 1).
NAMED_STEPS = ("middle", "last")
#: The default checkpoints: step 0, early steps (biases already moved away from zero), the middle, the
#: reference's most saturated step and its gradient peak, and the last step.
DEFAULT_CHECKPOINTS = (0, 1, 2, 5, "middle", "saturation", "gradient-peak", "last")
SATURATED = 1e-3


def parse_checkpoints(text: str) -> tuple:
    """``--checkpoints``: ``default``, or comma-separated steps and names (``0,1,50,last``) -> a tuple of ints
    and names; UsageError (one line) for anything else."""
    from nnparity.errors import UsageError

    if text.strip() == "default":
        return DEFAULT_CHECKPOINTS
    names = NAMED_STEPS + FOUND_CHECKPOINTS
    chosen = []
    for token in (t.strip() for t in text.split(",")):
        if token in names:
            chosen.append(token)
        elif token.isdigit():
            chosen.append(int(token))
        else:
            raise UsageError(f"--checkpoints {text!r}: {token!r} is not a step; give comma-separated steps (0, 1, "
                             f"50) or names ({', '.join(names)}), e.g. --checkpoints 0,1,50,last, or default")
    return tuple(dict.fromkeys(chosen))


def fixed_checkpoints(spec, steps: int, case_id: str = "the case") -> set[int]:
    """The steps of ``spec`` (``parse_checkpoints``) known before training, in a run of ``steps`` steps; a step
    beyond the run is a UsageError naming the case (the default's early steps are left out of a shorter run)."""
    from nnparity.errors import UsageError

    chosen = set()
    for t in spec:
        if t in FOUND_CHECKPOINTS:
            continue
        step = {"middle": steps // 2, "last": steps - 1}.get(t, t)
        if step >= steps and tuple(spec) == DEFAULT_CHECKPOINTS:
            continue
        if not 0 <= step < steps:
            raise UsageError(f"--checkpoints step {step}: {case_id} has {steps} steps (0..{steps - 1}); "
                             "choose a smaller step or use last")
        chosen.add(step)
    return chosen


