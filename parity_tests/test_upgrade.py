"""``nnparity upgrade-check`` and what it stands on: the candidate lock, the cached environments, the
orchestration (with an injected environment builder and report runner: nothing is installed), and
``nnparity report``'s exit 5 when an implementation raises at run time."""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from nnparity import candidates, cli, grid, upgrade
from nnparity.errors import UsageError
from nnparity.outdir import atomic_directory
from reports.summary import summarize

LOCK = "absl-py==2.5.1\nkeras==3.15.1\nnumpy==2.4.6\ntensorflow-cpu==2.21.0\ntorch==2.13.0\n"


def test_the_candidate_lock_changes_only_the_pins():
    text = candidates.candidate_lock(LOCK, candidates.parse_candidate("tensorflow_cpu==2.20.0,optax==0.2.4"))
    assert text.splitlines() == ["absl-py==2.5.1", "keras==3.15.1", "numpy==2.4.6", "tensorflow_cpu==2.20.0",
                                 "torch==2.13.0", "optax==0.2.4"]
    assert candidates.parse_candidate("torch==2.13.0+cpu") == {"torch": "2.13.0+cpu"}


@pytest.mark.parametrize("bad", ["tensorflow-cpu", "tensorflow-cpu>=2.20", "numpy==2.0,scipy"])
def test_a_candidate_that_is_not_a_pin_is_one_line_exit_2(bad, capsys, tmp_path):
    with pytest.raises(UsageError, match="is not a pin; write NAME==VERSION"):
        candidates.parse_candidate(bad)
    assert cli.main(["upgrade-check", bad, "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NAME==VERSION" in err and not (tmp_path / "u").exists()


def test_a_cached_environment_is_reused_without_pip(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARITY_ENVS", str(tmp_path))
    pins = {"tensorflow-cpu": "2.20.0"}
    wanted = candidates.requirements(["tf"], pins)
    assert "tensorflow-cpu" in wanted and any(r.startswith("numpy") for r in wanted)
    lock = candidates.candidate_lock(candidates.LOCK.read_text(), pins)
    target = tmp_path / candidates.environment_key(lock, wanted)
    (target / "bin").mkdir(parents=True)
    (target / ".complete").write_text("")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a cached environment ran a subprocess")

    monkeypatch.setattr(candidates.subprocess, "run", no_subprocess)
    assert candidates.build_environment(pins, ["tf"], log=lambda line: None) == target / "bin" / "python"
    other = candidates.candidate_lock(candidates.LOCK.read_text(), {"tensorflow-cpu": "2.19.0"})
    assert candidates.environment_key(other, wanted) != target.name  # another pin, another environment


def _fake_report(out: Path, dW1_err: float, env: dict | None = None, fail: bool = False) -> None:
    """A sealed report of one float64 case x torch: every row 1 ulp and 1e-6 of its tolerance, dW1 ``dW1_err``
    (failing with ``fail``); ``env``: its env.json."""
    from test_compare import F64_CASE, ULP_AT_HALF
    from test_report import details

    frame = details(case=F64_CASE, impl="torch", L=1, dtype="float64")
    frame[["max_abs_err", "max_rel_err", "bound_ratio"]] = [ULP_AT_HALF, 2 * ULP_AT_HALF, 1e-6]
    dW1 = (frame["quantity"] == "dW") & (frame["layer"] == 1)
    frame.loc[dW1, ["max_abs_err", "max_rel_err"]] = [dW1_err, 2 * dW1_err]
    if fail:
        frame.loc[dW1, "passed"] = False
    with atomic_directory(out, True, "report") as tmp:
        if env is not None:
            (tmp / "env.json").write_text(json.dumps(env), encoding="utf-8")
        frame.to_csv(tmp / "details.csv", index=False)
        summarize(frame).to_csv(tmp / "summary.csv", index=False)


@pytest.fixture
def envs(tmp_path, monkeypatch):
    """An empty cache of environments and baselines: a test's fake baseline never reaches the user's cache."""
    monkeypatch.setenv("NNPARITY_ENVS", str(tmp_path / "envs"))
    return tmp_path / "envs"


def _fakes(events, growth):
    """A builder that fails for a candidate pinning scipy (leaving a pip log) and a runner whose report has dW1
    ``growth[python]`` times the baseline's error (the baseline's envelope run: ``growth["envelope"]``, default 1);
    both append what they do to ``events`` (the envelope run as ``("envelope", python, cases, impl, env)``)."""
    from test_compare import ULP_AT_HALF

    def builder(pins, impl_names, log):
        events.append(("build", dict(pins), list(impl_names)))
        if "scipy" in pins:
            pip_log = Path(os.environ["NNPARITY_ENVS"]) / "failed.log"
            pip_log.parent.mkdir(parents=True, exist_ok=True)
            pip_log.write_text(PIP_CONFLICT)
            raise candidates.EnvironmentFailed("pip install failed: " + candidates.pip_reason(PIP_CONFLICT), pip_log)
        return f"python-{pins['torch']}"

    def runner(python, out, cases, impl, env=None):
        if env is not None:
            events.append(("envelope", str(python), cases, impl, env))
            _fake_report(out, ULP_AT_HALF * growth.get("envelope", 1))
            return 0
        events.append(("report", str(python), cases, impl))
        _fake_report(out, ULP_AT_HALF * growth.get(str(python), 1))
        return 0

    return builder, runner


#: pip 25's own output for a constraint that its requirements exclude (``pip install --dry-run -c c.txt
#: pandas==2.2.3`` with ``numpy==1.22.0`` in c.txt), copied from a terminal.
PIP_CONFLICT = """\
ERROR: Cannot install pandas==2.2.3 because these package versions have conflicting dependencies.

The conflict is caused by:
    pandas 2.2.3 depends on numpy>=1.23.2; python_version == "3.11"
    The user requested (constraint) numpy==1.22.0

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/
"""


def test_upgrade_check_builds_first_then_reports_and_gives_a_verdict_per_candidate_and_implementation(tmp_path, envs):
    """Four candidates: the same as the baseline (safe), dW1 x3 (changed: within the budget of x10), dW1 x1e3
    (blocked), and one whose environment cannot be built (pip's conflict named, its log kept)."""
    events = []
    builder, runner = _fakes(events, {"python-3": 8, "python-9.9": 1000})
    candidates = ["torch==2.13.0", "torch==3", "torch==9.9", "scipy==0.0,torch==1"]
    outcomes, code = upgrade.check(candidates, tmp_path / "u", cases="l1-*", impl="torch", builder=builder,
                                   runner=runner, log=lambda line: None)
    # every environment before any report; the baseline, then its envelope run (one ulp, the other thread count)
    assert [e[0] for e in events] == ["build"] * 4 + ["report", "envelope"] + ["report"] * 3
    assert events[0][1:] == ({"torch": "2.13.0"}, ["torch"])
    assert [e[1] for e in events[4:]] == [upgrade.sys.executable] * 2 + ["python-2.13.0", "python-3", "python-9.9"]
    assert {e[2:4] for e in events[4:]} == {("l1-*", "torch")}  # the same report here and in each candidate
    assert events[5][4] == {"NNPARITY_PERTURB_ULP": "1", "NNPARITY_THREADS": "2"}
    assert [(o.verdict, o.code) for o in outcomes] == [("safe", 0), ("changed", 0), ("blocked", 1),
                                                       ("no environment", 6)]
    assert code == upgrade.EXIT_REGRESSION
    assert outcomes[2].per_impl == {"torch": ("blocked", "l1-logreg-float64-fullbatch backward dW1 step 0 "
                                                         "(changed, error x1e+03)")}
    assert outcomes[2].summary.startswith("REGRESSION: 1 quantity grew beyond the budget")
    assert outcomes[3].summary == ("pip install failed: conflicting requirements: pandas 2.2.3 depends on "
                                   "numpy>=1.23.2; python_version == \"3.11\"; The user requested (constraint) "
                                   "numpy==1.22.0")
    out = tmp_path / "u"
    assert (out / "scipy==0.0_torch==1" / "pip.log").read_text() == PIP_CONFLICT
    assert (out / "torch==9.9" / "compare" / "drift.md").is_file()
    lines = upgrade.table(outcomes).splitlines()
    assert lines[:6] == ["| candidate | implementation | verdict | first divergence |", "|---|---|---|---|",
                         "| torch==2.13.0 | torch | safe | — |",
                         "| torch==3 | torch | changed | l1-logreg-float64-fullbatch backward dW1 step 0 (changed, "
                         "error x8) |",
                         "| torch==9.9 | torch | blocked | l1-logreg-float64-fullbatch backward dW1 step 0 (changed, "
                         "error x1e+03) |",
                         "| scipy==0.0,torch==1 | (all) | no environment | " + outcomes[3].summary + " |"]
    assert "- torch==3: compared 12 rows: 1 cases x 1 implementations (torch)" in lines
    frame = pd.read_csv(out / "verdicts.csv")
    assert list(frame["verdict"]) == ["safe", "changed", "blocked", "no environment"]
    assert (out / "upgrade.md").read_text().count("| torch==") == 3

    # --strict: a changed candidate exits 1 too; the same command into its own --out needs no --force
    outcomes, code = upgrade.check(["torch==3"], tmp_path / "s", cases="l1-*", impl="torch", builder=builder,
                                   runner=runner, log=lambda line: None, strict=True)
    assert (outcomes[0].verdict, outcomes[0].code, code) == ("changed", 1, 1)


def test_the_verdict_measures_movement_against_the_baselines_own_envelope(tmp_path, envs):
    """The baseline's envelope run moved dW1 from 1 to 4 ulp by rounding alone, so its envelope reaches
    ``ENVELOPE_FACTOR`` (8) times 3 ulp beyond 1 ulp: a candidate at 20 ulp lies inside (safe), one at 40 ulp
    outside (changed: within the budget of x10 and +256 ulp), one at 1000 ulp beyond both (blocked); with an
    envelope run at 2000 ulp the 1000-ulp candidate is rounding too (safe).  drift.csv says which rows lie within
    the envelope."""
    from nnparity.regression import ENVELOPE_FACTOR
    from test_compare import ULP_AT_HALF

    assert ENVELOPE_FACTOR == 8
    events = []
    builder, runner = _fakes(events, {"python-20": 20, "python-40": 40, "python-1000": 1000, "envelope": 4})
    outcomes, _ = upgrade.check(["torch==20", "torch==40", "torch==1000"], tmp_path / "u", cases="l1-*",
                                impl="torch", builder=builder, runner=runner, log=lambda line: None)
    assert [o.verdict for o in outcomes] == ["safe", "changed", "blocked"]
    assert "within the baseline's own envelope" in outcomes[0].summary
    drift = pd.read_csv(tmp_path / "u" / "torch==40" / "compare" / "drift.csv")
    assert list(drift["within_envelope"]) == [False]
    assert drift["envelope_high"].iloc[0] == pytest.approx(25 * ULP_AT_HALF)
    assert (tmp_path / "u" / "baseline-envelope" / "details.csv").is_file()
    builder, runner = _fakes(events, {"python-1000": 1000, "envelope": 2000})
    outcomes, code = upgrade.check(["torch==1000"], tmp_path / "w", cases="l1-*", impl="torch", builder=builder,
                                   runner=runner, log=lambda line: None)
    assert (outcomes[0].verdict, code) == ("safe", 0)


def test_the_baseline_is_reused_while_code_lock_and_options_are_the_same(tmp_path, envs, monkeypatch):
    """The cache is filled by the real report runner only (``candidates.run_report``, replaced here by a fake that
    writes a report), never by a runner handed to ``check``."""
    events, lines = [], []
    builder, runner = _fakes(events, {})
    monkeypatch.setattr(candidates, "run_report", lambda python, out, cases, impl, full=False, env=None:
                        runner(python, out, cases, impl, env=env))
    for _ in range(2):
        upgrade.check(["torch==2.13.0"], tmp_path / "u", cases="l1-*", impl="torch", builder=builder,
                      log=lines.append)
    baselines = [e for e in events if e[0] in ("report", "envelope") and e[1] == upgrade.sys.executable]
    assert [e[0] for e in baselines] == ["report", "envelope"]  # both run once, then reused
    assert any(line.startswith("baseline: reused") for line in lines)
    assert any(line.startswith("baseline's envelope: reused") for line in lines)
    # an executor that changes this process as it prepares (Ray puts its own packages on sys.path) changes no key
    from nnparity.executors import LocalExecutor

    extra = tmp_path / "site" / "rays_own-1.0.dist-info"
    extra.mkdir(parents=True)
    (extra / "METADATA").write_text("Metadata-Version: 2.1\nName: rays-own\nVersion: 1.0\n")

    class Changing(LocalExecutor):
        name = "changing"

        def prepare(self, parsed, impl_names, log):
            monkeypatch.syspath_prepend(str(extra.parent))
            return super().prepare(parsed, impl_names, log)

    events.clear()
    upgrade.check(["torch==2.13.0"], tmp_path / "x", cases="l1-*", impl="torch", executor=Changing(builder, runner),
                  log=lines.append)
    assert not [e for e in events if e[0] in ("report", "envelope") and e[1] == upgrade.sys.executable]
    assert (tmp_path / "u" / "baseline" / "details.csv").is_file()
    events.clear()
    upgrade.check(["torch==2.13.0"], tmp_path / "v", cases="l1-logreg-*", impl="torch", builder=builder,
                  log=lines.append)  # other --cases: another baseline
    assert [e[1] for e in events if e[0] == "report"][0] == upgrade.sys.executable
    assert upgrade.baseline_key("l1-*", "torch", False) != upgrade.baseline_key("l1-*", "torch", True)
    (tmp_path / "mine.py").write_text(GOOD)
    key = upgrade.baseline_key("l1-*", str(tmp_path / "mine.py"), False)
    (tmp_path / "mine.py").write_text(GOOD + "# changed\n")
    assert upgrade.baseline_key("l1-*", str(tmp_path / "mine.py"), False) != key  # an --impl file's code counts
    events.clear()
    upgrade.check(["torch==2.13.0"], tmp_path / "w", cases="l1-*", impl="torch", builder=builder, runner=runner,
                  log=lines.append)  # a runner of the caller's: never served from, nor written to, the cache
    assert [e[1] for e in events if e[0] == "report"][0] == upgrade.sys.executable


def test_out_is_replaced_only_when_upgrade_check_wrote_it_for_the_same_command_or_with_force(tmp_path, envs, capsys):
    events = []
    builder, runner = _fakes(events, {})
    run = functools.partial(upgrade.check, cases="l1-*", impl="torch", builder=builder, runner=runner,
                            log=lambda line: None)
    run(["torch==2.13.0"], tmp_path / "u")
    run(["torch==2.13.0"], tmp_path / "u")  # the same command: its own output, replaced
    with pytest.raises(UsageError, match="upgrade directory .* exists; pass --force"):
        run(["torch==3"], tmp_path / "u")
    run(["torch==3"], tmp_path / "u", force=True)
    assert json.loads((tmp_path / "u" / "nnparity.json").read_text())["of"]["candidates"] == ["torch==3"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert cli.main(["upgrade-check", "torch==3", "--out", str(tmp_path / "mine"), "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not write" in err and (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_ctrl_c_leaves_no_output_no_partial_environment_and_no_running_pip(tmp_path, envs, monkeypatch):
    events = []
    builder, runner = _fakes(events, {})

    def interrupted(python, out, cases, impl, env=None):
        if python != upgrade.sys.executable:
            raise KeyboardInterrupt
        return runner(python, out, cases, impl)

    with pytest.raises(KeyboardInterrupt):
        upgrade.check(["torch==2.13.0"], tmp_path / "u", cases="l1-*", impl="torch", builder=builder,
                      runner=interrupted, log=lambda line: None)
    assert {p.name for p in tmp_path.iterdir()} <= {"envs"}  # no --out, no temporary directory, no lock

    # the build: pip is ended, the half-built environment removed
    monkeypatch.setattr(candidates, "HEARTBEAT", 0.3)
    pids = []

    def stop(line):
        raise KeyboardInterrupt

    real_popen = candidates.subprocess.Popen

    def popen(command, **kwargs):
        process = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        pids.append(process)
        return process

    monkeypatch.setattr(candidates.subprocess, "Popen", popen)
    with pytest.raises(KeyboardInterrupt):
        candidates.build_environment({"torch": "2.13.0"}, ["torch"], log=lambda line: None if "still" not in line
                                  else stop(line))
    assert len(pids) == 1 and pids[0].poll() is not None  # pip was ended, not left running
    left = sorted(p.name for p in envs.iterdir())
    # pip's output kept and the (empty, released) build lock; no half-built environment
    assert sorted(Path(name).suffix for name in left) == [".lock", ".log"]


def test_a_failed_pip_names_the_conflict_on_one_line():
    assert candidates.pip_reason(PIP_CONFLICT) == ("conflicting requirements: pandas 2.2.3 depends on numpy>=1.23.2; "
                                                "python_version == \"3.11\"; The user requested (constraint) "
                                                "numpy==1.22.0")
    assert candidates.pip_reason("Collecting x\nERROR: No matching distribution found for torch==0.0\n") == \
        "ERROR: No matching distribution found for torch==0.0"


def test_a_pinned_package_no_chosen_implementation_uses_is_named_as_not_exercised():
    note = upgrade.exercised_note({"torch": "2.12.0", "numpy": "2.3.5"}, ["tf", "tf-function"])
    assert note.startswith("torch==2.12.0: not exercised: no chosen implementation (tf, tf-function)")
    assert upgrade.exercised_note({"numpy": "2.3.5"}, ["torch"]) == ""  # nnparity itself needs NumPy
    assert upgrade.exercised_note({"ml-dtypes": "0.5.0"}, ["jax"]) == ""  # jax needs it, through jaxlib
    assert upgrade.exercised_note({"ml-dtypes": "0.5.0"}, ["torch"]).startswith("ml-dtypes==0.5.0: not exercised")


GOOD = "from reference.model import forward_backward, predictions, train  # noqa: F401\n"
RAISES = GOOD + """

def train(parameters, X, Y, case, schedule=None, masks=None):
    raise TypeError("Optimizer.__init__() got an unexpected keyword argument 'lr'")
"""


def test_an_implementation_raising_at_run_time_leaves_a_report_and_exits_5(tmp_path, monkeypatch, capsys):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "raises.py").write_text(RAISES)
    small = grid.case_for(2, "tanh", "float64", False, epochs=3)
    monkeypatch.setattr(grid, "every_case", lambda: [small])
    import reports.plots

    monkeypatch.setattr(reports.plots, "draw_all", lambda details, trajectories: {})  # figures: test_report_html's
    out = tmp_path / "r"
    code = cli.main(["report", "--out", str(out), "--cases", small.id, "--impl",
                     f"{tmp_path / 'good.py'},{tmp_path / 'raises.py'}", "--no-selftest", "--no-catalogue"])
    assert code == 5
    assert "CRASHED" in capsys.readouterr().out
    details = pd.read_csv(out / "details.csv")
    raised = details[details["impl"].str.endswith("raises.py")]
    good = details[details["impl"].str.endswith("good.py")]
    assert good["passed"].all() and len(good) > 10  # the others' results are all there
    trained = raised[raised["phase"].isin(["update", "trajectory"])]
    assert len(trained) and not trained["passed"].any()
    assert trained["note"].str.startswith("train raised TypeError: Optimizer.__init__() got an unexpected").all()
    assert json.loads((out / "nnparity.json").read_text())["files"]["details.csv"]


def test_report_cases_reach_every_grid_and_the_default_grid_trains_every_way(tmp_path, monkeypatch):
    from nnparity import harness

    chosen = grid.select(grid.every_case(), "sigmoid-adam-*")
    assert chosen and all(c.optimizer == "adam" and c.output_activation == "sigmoid" for c in chosen)
    ids = [c.id for c in grid.every_case()]
    assert len(ids) == len(set(ids)) and {c.id for c in grid.training_grid()} <= set(ids)
    default = grid.default_grid()
    for dtype in grid.DTYPES:
        typed = [c for c in default if c.dtype == dtype]
        assert {c.optimizer for c in typed} == set(grid.OPTIMIZER_RATES)
        assert any(c.lambd > 0 for c in typed) and any(c.keep_prob < 1 for c in typed)
        assert any(c.output_activation == "softmax" for c in typed) and any(c.decay != "none" for c in typed)
    assert {c.optimizer for c in default if c.decay != "none"} == set(grid.OPTIMIZER_RATES)

    class Chosen(Exception):
        pass

    def stop(case, dataset, checkpoints=None):
        raise Chosen(case.id)

    monkeypatch.setattr(harness, "run_reference", stop)  # the case report chose, before any work
    (tmp_path / "good.py").write_text(GOOD)
    with pytest.raises(Chosen, match="^sigmoid-adam-dropout-float64-fullbatch$"):
        cli.main(["report", "--out", str(tmp_path / "r"), "--cases", "sigmoid-adam-dropout-float64-full*", "--impl",
                  str(tmp_path / "good.py"), "--no-selftest", "--no-catalogue"])


def test_changed_pins_are_the_pins_a_lock_edit_changes():
    old = "# lock\nnumpy==2.4.6\ntorch==2.13.0\nkeras==3.15.1 ; python_version >= '3.10'\n"
    new = "# lock\nnumpy==2.4.6\ntorch==2.12.0\nKeras==3.12.0 ; python_version >= '3.10'\nml_dtypes==0.5.0\n"
    assert candidates.changed_pins(old, new) == "torch==2.12.0,Keras==3.12.0,ml_dtypes==0.5.0"
    assert candidates.changed_pins(new, new) == ""


def test_changed_since_checks_the_lock_edit_or_says_there_is_none(tmp_path, capsys):
    same = tmp_path / "base.txt"
    same.write_text(candidates.LOCK.read_text())
    assert cli.main(["upgrade-check", "--changed-since", str(same), "--out", str(tmp_path / "u")]) == 0
    assert "nothing to check" in capsys.readouterr().err and not (tmp_path / "u").exists()
    absent = str(tmp_path / "absent.txt")
    assert cli.main(["upgrade-check", "--changed-since", absent, "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--changed-since" in err and "git show" in err
    assert cli.main(["upgrade-check", "--out", str(tmp_path / "u")]) == 2
    assert "give a candidate PIN" in capsys.readouterr().err
    assert cli.main(["upgrade-check", "torch==2.12.0", "--address", "head:6379", "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --executor ray" in err and not (tmp_path / "u").exists()


def test_junit_fails_a_blocked_candidate_and_errors_one_without_environment(tmp_path, envs):
    import xml.etree.ElementTree as ET

    builder, runner = _fakes([], {"python-9.9": 1000, "python-3": 8})
    outcomes, _ = upgrade.check(["torch==3", "torch==9.9", "scipy==0.0,torch==1"], tmp_path / "u", cases="l1-*",
                                impl="torch", builder=builder, runner=runner, log=lambda line: None)
    suite = ET.parse(tmp_path / "u" / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite}
    assert cases["torch==9.9 torch"].find("failure").get("message").startswith("blocked: l1-logreg-float64")
    assert cases["scipy==0.0,torch==1 (all)"].find("error") is not None
    assert cases["torch==3 torch"].find("failure") is None
    strict = ET.fromstring(upgrade.junit(outcomes, strict=True).encode())
    assert strict.get("failures") == "2"  # changed fails too


def test_the_example_workflow_runs_commands_that_exist_on_lock_edits():
    """examples/upgrade-check.yml: valid YAML, triggered by a change of the lock, its nnparity commands accepted by
    the command line's parser, its make target in the Makefile, and the files it publishes written by
    upgrade-check (the orchestration test above checks their content)."""
    import shlex

    import yaml

    root = Path(candidates.ROOT)
    workflow = yaml.safe_load((root / "examples" / "upgrade-check.yml").read_text())
    assert workflow[True]["pull_request"]["paths"] == ["constraints.txt"]  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["upgrade-check"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    commands = [shlex.split(line.strip()) for line in script.splitlines()
                if line.strip().startswith(".venv/bin/nnparity")]
    assert commands and all(c[1] == "upgrade-check" for c in commands)
    parser = cli.build_parser()
    for command in commands:
        args = parser.parse_args(command[1:])
        assert args.changed_since == "base-constraints.txt" and args.out == "upgrade"
    assert "make setup" in script and "\nsetup:" in (root / "Makefile").read_text()
    published = [step["with"]["report_paths"] for step in steps if "junit" in step.get("uses", "")]
    assert published == ["upgrade/junit.xml"] and "cat upgrade/upgrade.md" in script


def test_between_orders_the_final_releases_from_the_good_end():
    offered = ["2.14.0", "2.13.3", "2.13.2rc1", "2.13.2", "2.13.1", "not-a-version", "2.13.0", "2.12.0"]
    assert upgrade.between(offered, "2.13.0", "2.14.0") == ["2.13.1", "2.13.2", "2.13.3"]
    assert upgrade.between(offered, "2.14.0", "2.13.0") == ["2.13.3", "2.13.2", "2.13.1"]  # a downgrade
    assert upgrade.between(offered, "2.13.0", "2.13.1") == []


@pytest.mark.parametrize("first", [0, 1, 4, 6, 7])
def test_bisect_finds_the_first_blocking_version_in_log2_tries(first):
    path = [f"v{i}" for i in range(7)]
    found, tried = upgrade.bisect(path, lambda version: int(version[1:]) >= first)
    assert found == first and len(tried) <= 3  # 8 intervals: 3 halvings
    assert all(blocked == (int(v[1:]) >= first) for v, blocked in tried)


def test_bisect_runs_for_a_blocked_candidate_and_names_the_first_version_that_blocks(tmp_path, envs):
    events = []
    growth = {f"python-2.13.{i}": 1000 for i in (3, 4, 5)}  # 2.13.3 and later grew the error x1e3
    builder, runner = _fakes(events, growth)
    offered = ["2.13.5", "2.13.4", "2.13.3", "2.13.2", "2.13.1", "2.13.0", "2.12.0"]
    outcomes, code = upgrade.check(["torch==2.13.5", "torch==2.13.1"], tmp_path / "u", cases="l1-*", impl="torch",
                                   builder=builder, runner=runner, log=lambda line: None,
                                   versions=lambda name: offered if name == "torch" else [])
    assert [o.verdict for o in outcomes] == ["blocked", "safe"] and code == 1
    assert candidates.lock_pins(candidates.LOCK.read_text())["torch"][1] == "2.13.0"  # the baseline's end
    assert outcomes[0].notes[-1] == ("bisect: the first version that blocks is torch==2.13.3 (the last that does "
                                     "not: 2.13.2); tried 2.13.2 not blocked, 2.13.3 blocked")
    assert not any(note.startswith("bisect") for note in outcomes[1].notes)  # only a blocked candidate is bisected
    assert (tmp_path / "u" / "torch==2.13.5" / "bisect" / "torch==2.13.3" / "compare" / "drift.md").is_file()
    many, _ = upgrade.check(["torch==2.13.5,numpy==2.4.6"], tmp_path / "v", cases="l1-*", impl="torch",
                            builder=builder, runner=runner, log=lambda line: None, versions=lambda name: offered)
    assert many[0].notes[-1] == "bisect: a candidate of one package only (this one pins torch, numpy)"

    # the bisected versions run on the candidates' executor (Ray's tasks with --executor ray), not here beside it
    from nnparity.executors import LocalExecutor

    class Recording(LocalExecutor):
        name, prepared = "recording", []

        def prepare(self, parsed, impl_names, log):
            self.prepared += [text for text, _ in parsed]
            return super().prepare(parsed, impl_names, log)

    executor = Recording(builder, runner)
    upgrade.check(["torch==2.13.5"], tmp_path / "w", cases="l1-*", impl="torch", runner=runner,
                  log=lambda line: None, versions=lambda name: offered, executor=executor)
    assert executor.prepared == ["torch==2.13.5", "torch==2.13.2", "torch==2.13.3"]


@pytest.mark.tiers("full")
def test_a_candidate_gets_the_same_verdicts_through_local_processes_and_a_local_ray(tmp_path, envs):
    """A candidate through local processes and through a real local Ray (``ray.init(num_cpus=2)``), whose
    runtime_env pip-installs the candidate on its node.  The candidate pins the lock's own versions, so Ray's pip
    finds them installed in the environment it clones (the tests download nothing) and the verdicts must be the same
    and safe; locally the builder hands back this Python, which is what a cached environment of that lock holds."""
    import ray

    from nnparity import executors

    locked = candidates.lock_pins(candidates.LOCK.read_text())
    chosen = [f"scikit-learn=={locked['scikit-learn'][1]},scipy=={locked['scipy'][1]}"]  # Ray clones GBs per candidate
    run = functools.partial(upgrade.check, chosen, cases="l1-logreg-float64-fullbatch", impl="torch",
                            log=lambda line: None)
    local, local_code = run(tmp_path / "local", builder=lambda pins, names, log: sys.executable)
    before = set(Path(tempfile.gettempdir()).glob("nnparity-ray-*"))
    remote, remote_code = run(tmp_path / "ray", executor=executors.RayExecutor(num_cpus=2))
    assert not ray.is_initialized()  # the executor ended the Ray it started, and removed its session's files
    assert set(Path(tempfile.gettempdir()).glob("nnparity-ray-*")) == before
    assert local_code == remote_code == 0
    matrix = upgrade.matrix_frame(local)
    assert matrix.equals(upgrade.matrix_frame(remote)) and list(matrix["verdict"]) == ["safe"]
    report = tmp_path / "ray" / candidates.slug(chosen[0]) / "report"
    env = json.loads((report / "env.json").read_text())  # written by the report Ray ran, in Ray's environment
    assert env["run"]["argv"][0].startswith("/") and "runtime_resources" in env["run"]["argv"][0]
    assert (tmp_path / "ray" / candidates.slug(chosen[0]) / "compare" / "drift.md").is_file()
    assert [o.notes[0] for o in remote] == [o.notes[0] for o in local]  # the same rows compared


def test_a_candidate_report_that_crashes_is_no_report_and_the_others_are_kept(tmp_path, envs):
    """A report that dies with a traceback exits 1 and leaves no sealed report: that candidate is "no report" (exit
    6), the other candidates' verdicts stand, nothing is raised."""
    events = []
    builder, runner = _fakes(events, {})

    def crashing(python, out, cases, impl, env=None):
        if python == "python-7":
            out.mkdir(parents=True)
            (out / "details.csv").write_text("half")  # what a dying process leaves: no marker
            return 1
        return runner(python, out, cases, impl)

    outcomes, code = upgrade.check(["torch==7", "torch==2.13.0"], tmp_path / "u", cases="l1-*", impl="torch",
                                   builder=builder, runner=crashing, log=lambda line: None)
    assert [(o.verdict, o.code) for o in outcomes] == [("no report", 6), ("safe", 0)] and code == 6
    assert "without a complete report" in outcomes[0].summary


def test_bisect_says_why_it_did_not_bisect():
    def never(name, version):
        raise AssertionError("nothing may be tried")

    locked = candidates.lock_pins(candidates.LOCK.read_text())["torch"][1]
    assert "the lock's own version" in upgrade._bisected({"torch": locked}, lambda name: ["9"], never)
    assert "pip could not list the versions of torch" in upgrade._bisected({"torch": "9.9"}, lambda name: [], never)
    assert "not in the lock" in upgrade._bisected({"not-in-the-lock": "1"}, lambda name: ["1"], never)


def test_a_ray_runtime_env_pins_the_candidate_and_its_dependencies_at_the_candidate_lock():
    from nnparity import executors

    env = executors.runtime_env({"jax": "0.10.1", "jaxlib": "0.10.1"}, ["jax"])
    packages = env["pip"]["packages"]
    locked = candidates.lock_pins(candidates.LOCK.read_text())
    assert "jax==0.10.1" in packages and "jaxlib==0.10.1" in packages
    name, version = locked["ml-dtypes"]  # jaxlib's dependency: pinned too, as the lock pins it
    assert f"{name}=={version}" in packages and all("==" in p for p in packages)
    assert env["env_vars"] == {"NNPARITY_JOBS": "1"} and env["pip"]["pip_check"] is False


def test_a_pinned_optimiser_library_that_the_chosen_cases_exercise_only_in_part_is_named():
    """Issue 25: a gradient-descent-only case cannot see an optimiser change.  optax is flax's optimisers, keras
    Keras', torch torch-nn's; the note names what the cases leave out, and is empty when every optimiser runs or
    no chosen implementation calls the pinned library's optimisers."""
    note = upgrade.optimizer_note({"optax": "0.2.4"}, ["flax", "jax"], "l2-tanh-*")
    assert note == ("optax==0.2.4: the chosen cases run flax with the optimisers gd only, so a change to optax's "
                    "momentum, rmsprop, adam cannot show; add cases that use them (e.g. --cases '*-adam-*')")
    assert "keras's momentum, rmsprop, adam" in upgrade.optimizer_note({"keras": "3.12.0"}, ["keras"], "l4-*")
    assert upgrade.optimizer_note({"optax": "0.2.4"}, ["flax"], "*") == ""  # the default grid runs all four
    assert upgrade.optimizer_note({"optax": "0.2.4"}, ["jax", "torch"], "l2-tanh-*") == ""  # their own updates
    assert "adam" not in upgrade.optimizer_note({"torch": "2.12.0"}, ["torch-nn"], "*-adam-*").split("change to")[1]


def test_a_second_process_waits_for_the_one_building_the_same_environment_then_reuses_it(tmp_path, monkeypatch):
    """Two upgrade-checks of the same candidate at once: the second neither removes nor rebuilds the first's
    half-built environment; it says it waits, and takes the finished one."""
    import subprocess
    import time

    monkeypatch.setenv("NNPARITY_ENVS", str(tmp_path))
    pins = {"tensorflow-cpu": "2.20.0"}
    wanted = candidates.requirements(["tf"], pins)
    key = candidates.environment_key(candidates.candidate_lock(candidates.LOCK.read_text(), pins), wanted)
    target = tmp_path / key
    builder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, pathlib, sys, time\n"
        f"handle = open({str(tmp_path / (key + '.lock'))!r}, 'a+'); fcntl.flock(handle, fcntl.LOCK_EX)\n"
        "print('locked', flush=True); time.sleep(1.5)\n"
        f"target = pathlib.Path({str(target)!r}); (target / 'bin').mkdir(parents=True)\n"
        "(target / '.complete').write_text('')\n")], stdout=subprocess.PIPE, text=True)
    assert builder.stdout.readline().strip() == "locked"
    target.mkdir()  # the first one's half-built environment: not ours to remove

    def no_build(*args, **kwargs):
        raise AssertionError("built an environment another process was building")

    monkeypatch.setattr(candidates, "_build", no_build)
    lines, started = [], time.monotonic()
    assert candidates.build_environment(pins, ["tf"], lines.append) == target / "bin" / "python"
    assert time.monotonic() - started >= 1.0 and builder.wait() == 0
    assert any("another nnparity is building this environment" in line for line in lines)


def test_a_frameworks_repeated_native_log_lines_are_counted_not_shown():
    """A candidate's jaxlib 0.10.1 wrote 4,552 copies of one C++ warning over the upgrade-check's output."""
    import io

    warning = ("E1207 23:35:38.661989    1026 cpu_aot_loader.cc:195] Loading XLA:CPU AOT result. Target machine "
               "feature +prefer-no-gather is not supported on the host machine.\n")
    other = "W1207 23:35:39.000001    1026 pjrt_client.cc:7] another message\n"
    lines = ["[1/3] l1-logreg: pass (3.6 s)\n", warning, warning.replace("gather", "scatter"), other, warning,
             "[2/3] l2-tanh: pass (4.2 s)\n", "Traceback (most recent call last):\n", warning,
             "[3/3] l4-relu: pass (2.5 s)" + warning]  # a worker's log line began before the progress line ended
    sink = io.StringIO()
    candidates.forward_output(iter(lines), sink)
    assert sink.getvalue().splitlines() == [
        "[1/3] l1-logreg: pass (3.6 s)", warning.strip(), other.strip(), "[2/3] l2-tanh: pass (4.2 s)",
        "Traceback (most recent call last):", "[3/3] l4-relu: pass (2.5 s)",
        "(framework log lines like the ones above, not shown: 4 more from cpu_aot_loader.cc:195)"]
    quiet = io.StringIO()
    candidates.forward_output(iter(lines[:1]), quiet)
    assert quiet.getvalue() == lines[0]  # nothing repeated: no count line
