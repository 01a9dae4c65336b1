"""The two tiers every command names the same: ``quick`` (the default) and ``full`` (``--full``).

``quick`` keeps every implementation on every case it is given, each pair compared at step 0, its first update,
every checkpoint (from the reference's own parameters) and its predictions; compiled implementations and the
eager ones without a compiled twin keep their whole free-running trajectory.  An eager twin whose compiled twin
runs the same source (``tf`` beside ``tf-function``, ``jax`` beside ``jax-jit``; the registry's ``compiled_twin``)
runs its free trajectory for ``EAGER_HORIZON`` steps at least, rounded up to whole epochs; its checkpoints stay.
``full`` runs everything to the end, and adds what quick leaves to it (the report's self-test and catalogue, the
pytest grids' every pair).  Nothing here loosens a tolerance: a shorter horizon compares fewer steps, each one
against the same bound.

Light on purpose (no NumPy): the command line reads it while parsing.
"""

from __future__ import annotations

QUICK, FULL = "quick", "full"
TIERS = (QUICK, FULL)

#: Steps of an eager twin's free run in the quick tier (at least; whole epochs): the first update and 49 more
#: carry every formula of the step through the optimiser's state, and the checkpoints reach the run's end.
EAGER_HORIZON = 50

FULL_HELP = ("the full tier: every implementation's whole free-running trajectory, and what the quick tier "
             "(the default) leaves out")


def tier_of(full: bool) -> str:
    return FULL if full else QUICK


def horizon(impl, tier: str) -> int | None:
    """The steps of ``impl``'s free run in ``tier`` (at least; ``harness.compare_impl`` rounds up to whole
    epochs), or ``None`` for the whole run."""
    if tier == QUICK and getattr(impl, "compiled_twin", None):
        return EAGER_HORIZON
    return None


def shortened(names, tier: str) -> list[str]:
    """The implementations among ``names`` whose free run ``tier`` shortens (``horizon``)."""
    from nnparity import impls

    return [n for n in names if horizon(impls.get(n), tier) is not None]
