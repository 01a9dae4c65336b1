"""The two tiers (nnparity/tiers.py): what quick keeps, what it leaves to full, and that quick is not blind.

The coverage is computed here from the case definitions, by a feature list of this file's own (not
``grid.features``), so that a feature the grids gain cannot silently fall out of the quick tier.
"""

from __future__ import annotations

import functools
import html
import json

import numpy as np
import pytest

from nnparity import data, grid, harness, impls, tiers
from nnparity.spec import Case
from nnparity.testing import reference_run
from test_cli import nnparity

LAST_BATCH_SMALLER = {"digits-3v8": 267 % 64 != 0, "digits": 1347 % 64 != 0, "planar": 400 % 64 != 0}


def needs(case: Case) -> set:
    """Every feature ``case`` exercises, written out from its fields: each with its dtype, and the combinations
    that change a formula (a regulariser on a smaller last mini-batch; an optimiser under a decay)."""
    regulariser = "l2" if case.lambd > 0 else "dropout" if case.keep_prob < 1 and case.L > 1 else "none"
    plain = {("L", case.L), ("output", case.output_activation), ("loss", case.loss), ("optimizer", case.optimizer),
             ("regulariser", regulariser), ("decay", case.decay), ("init", case.init),
             ("batch", case.batch_size is None), ("biases", case.bias_scale != 0)}
    if case.L > 1:
        plain.add(("hidden", case.hidden_activation))
    if case.batch_size is not None and regulariser != "none" and LAST_BATCH_SMALLER[case.data]:
        plain.add(("smaller last batch", regulariser))
    found = {(kind, value, case.dtype) for kind, value in plain}
    if case.decay != "none":
        found.add(("decay with", case.optimizer, ""))
    return found


def both_dtypes(features: set) -> set:
    return {(kind, value, dtype) for kind, value, typed in features for dtype in (grid.DTYPES if typed else ("",))}


def test_the_report_grid_meets_every_feature_of_every_grid_in_both_dtypes():
    """Every implementation runs every default case in both tiers; those cases exercise every feature of every
    grid in float64 and in float32, each regulariser on a smaller last mini-batch and each optimiser under a
    decay (issue 22's faults: Adam only in float32, L2 only with full batches, no leaky ReLU)."""
    wanted = both_dtypes(set().union(*map(needs, grid.every_case())))
    met = set().union(*map(needs, grid.default_grid()))
    assert not wanted - met, sorted(wanted - met, key=str)
    assert {("decay with", o, "") for o in grid.OPTIMIZER_RATES} <= met
    assert {("smaller last batch", r, d) for r in ("l2", "dropout") for d in grid.DTYPES} <= met
    assert set(grid.POWER_CASES) <= {c.name for c in grid.default_grid()}


@functools.cache  # the same for every implementation's test
def parity_pairs(tier: str) -> list[tuple]:
    """The ``(case, impl)`` pairs the three parity test files run in ``tier``, read from their own parametrize
    marks (what pytest collects)."""
    import test_checkpoints
    import test_parity_grid
    import test_parity_training

    found = []
    for test in (test_parity_grid.test_parity, test_parity_training.test_training_parity,
                 test_checkpoints.test_power_cases_pass_with_checkpoints):
        mark = next(m for m in test.pytestmark if m.name == "parametrize")
        found += [p.values for p in mark.args[1] if tier in next(m for m in p.marks if m.name == "tiers").args]
    return found


@pytest.mark.parametrize("name", impls.frameworks())
def test_the_quick_tier_meets_every_feature_of_the_grids_for_every_implementation(name):
    """make test's worth: each implementation's quick pairs of the three parity grids (one cover of them all)
    exercise every feature of those grids in each dtype it has, every power case among them, and the full tier runs
    every pair the quick tier runs."""
    quick = [case for case, impl in parity_pairs("quick") if impl == name]
    full = [case for case, impl in parity_pairs("full") if impl == name]
    every = grid.parity_cases()
    wanted = set().union(*map(needs, every))
    met = set().union(*map(needs, quick)) if quick else set()
    assert not wanted - met, sorted(wanted - met, key=str)
    assert set(grid.power_grid()) <= set(quick) <= set(full)
    assert len(quick) <= len(every) / 6  # 19 of the 139 cases


def test_only_the_eager_twins_are_cut_and_only_in_the_quick_tier():
    cut = [n for n in impls.frameworks() if tiers.horizon(impls.get(n), tiers.QUICK) is not None]
    assert cut == ["tf", "jax"]
    for name in cut:
        twin = impls.get(impls.get(name).compiled_twin)
        assert twin.module == impls.get(name).module and tiers.horizon(twin, tiers.QUICK) is None
    assert all(tiers.horizon(impls.get(n), tiers.FULL) is None for n in impls.frameworks())


def test_a_horizon_is_whole_epochs_of_the_same_rates():
    case = next(c for c in grid.training_grid() if c.name == "sigmoid-gd-none-inverse-time-decay-float64-minibatch")
    steps = case.steps(data.size(case.data))  # 40 epochs of 5 mini-batches
    assert harness.horizon_steps(case, steps, 50) == 50
    assert harness.horizon_steps(case, steps, 51) == 55
    assert harness.horizon_steps(case, steps, None) == steps == harness.horizon_steps(case, steps, 10_000)
    full = grid.case_for(2, "tanh", "float64", False)
    assert harness.horizon_steps(full, 1000, 50) == 50


def _late_fault(step_from):
    """The reference, its learning rate 1e-5 too large from step ``step_from`` on: a fault only a free run
    reaching that step can see."""
    from reference import model

    class Faulty:
        name = "late-fault"
        offers_predictions = True

        def forward_backward(self, parameters, X, Y, case, masks=None):
            return model.forward_backward(parameters, X, Y, case, masks)

        def predictions(self, parameters, X, case):
            return model.predictions(parameters, X, case)

        def train(self, parameters, X, Y, case, schedule=None, masks=None):
            original = model.learning_rates

            def rates(case_, steps):
                return [r * (1 + 1e-5) if t >= step_from else r for t, r in enumerate(original(case_, steps))]

            model.learning_rates = rates
            try:
                return model.train(parameters, X, Y, case, schedule, masks)
            finally:
                model.learning_rates = original

    return Faulty()


def test_a_cut_free_run_compares_every_step_it_runs_against_the_same_bound():
    """A fault from step 20 fails a run cut at 50 at step 21 (the first cost after the faulty update), exactly as
    the whole run does; a fault from step 60 is beyond the horizon: the cut run passes and says where it stopped,
    the whole run fails."""
    case = grid.case_for(2, "tanh", "float64", False, epochs=100)
    ref = reference_run(case)
    for step_from, cut_fails in ((20, True), (60, False)):
        impl = _late_fault(step_from)
        cut = harness.compare_impl(ref, impl, horizon=50)
        whole = harness.compare_impl(ref, impl)
        trajectory = cut[cut["phase"] == "trajectory"]
        assert len(trajectory) == 50 and "final" not in set(cut["phase"])
        assert "free run cut to 50 of 100 steps" in trajectory["note"].iloc[-1]
        assert not whole["passed"].all()
        assert cut["passed"].all() != cut_fails
        if cut_fails:
            assert harness.failures(cut).iloc[0]["step"] == harness.failures(whole).iloc[0]["step"] == step_from + 1


def test_the_data_pins_hold_for_independently_derived_data_and_catch_a_scaling():
    """The pins match the data sets derived here from scikit-learn's digits and the course's planar formula, and a
    loader that scales the digits by 1/255 (which every implementation would share, invisible to parity) fails."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.flatnonzero((digits.target == 3) | (digits.target == 8))
    order = np.random.RandomState(0).permutation(keep.size)[: (3 * keep.size) // 4]
    derived = data.Dataset("digits-3v8", (digits.data[keep[order]] / 16).T,
                           (digits.target[keep[order]] == 8).astype(float).reshape(1, -1), None, None, "")
    assert data.pin_problems("digits-3v8", derived) == []
    scaled = data.Dataset("digits-3v8", derived.X * 16 / 255, derived.Y, None, None, "")
    problems = data.pin_problems("digits-3v8", scaled)
    assert len(problems) == 3 and all(p.startswith("data set digits-3v8: X's") for p in problems)

    rng = np.random.RandomState(1)
    X, Y = np.zeros((400, 2)), np.zeros((400, 1))
    for j in range(2):  # the course's load_planar_dataset, written out
        ix = range(200 * j, 200 * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, 200) + rng.randn(200) * 0.2
        r = 4 * np.sin(4 * t) + rng.randn(200) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    assert data.pin_problems("planar", data.Dataset("planar", X.T, Y.T, None, None, "")) == []
    assert all(data.pin_problems(name) == [] for name in data.PINS)


def test_quick_and_full_reports_say_their_tier_and_compare_refuses_to_mix_them(tmp_path):
    """A quick report says what it left out on its first screen and in summary.json; --full leaves nothing out;
    compare calls the two not comparable unless --intersection, which compares the pairs both ran alike."""
    case = "l1-logreg-saturating-float64-fullbatch"  # 200 steps: tf's free run is cut to 50 in the quick tier
    quick, full = tmp_path / "quick", tmp_path / "full"
    out = nnparity("report", "--cases", case, "--impl", "torch,tf", "--jobs", "1", "--out", quick)
    assert out.returncode == 0, out.stderr
    document = json.loads((quick / "summary.json").read_text())
    assert document["tier"] == "quick" and document["meta"]["data_pins"] == "ok"
    left_out = document["meta"]["left_out"]
    assert left_out.startswith("quick tier: left out tf's free runs after 50 steps") and "self-test" in left_out
    assert left_out in (quick / "report.md").read_text()
    assert left_out in html.unescape((quick / "report.html").read_text())
    assert not (quick / "catalogue.csv").exists()
    out = nnparity("report", "--full", "--no-selftest", "--no-catalogue", "--cases", case, "--impl", "torch,tf",
                   "--jobs", "1", "--out", full)
    assert out.returncode == 0, out.stderr
    document = json.loads((full / "summary.json").read_text())
    assert document["tier"] == "full" and not document["meta"]["left_out"]
    steps = {tier: document["coverage"][case]["tf"]["trajectory"] for tier, document in (
        ("quick", json.loads((quick / "summary.json").read_text())), ("full", document))}
    assert steps == {"quick": 50, "full": 200}
    refused = nnparity("compare", full, quick)
    assert refused.returncode == 4 and "the baseline ran the full tier, the candidate the quick tier" in refused.stderr
    both = nnparity("compare", full, quick, "--intersection", "--out", tmp_path / "cmp")
    assert both.returncode == 0, both.stderr + both.stdout
