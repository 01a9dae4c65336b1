"""The command line as a user runs it: outputs, exit codes, one-line errors, nothing half-written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def nnparity(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "nnparity", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_help_lists_commands_and_imports_no_framework():
    out = nnparity("--help")
    assert out.returncode == 0 and "report" in out.stdout and "train" in out.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, nnparity.cli as c; c.build_parser();"
         "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert probe.stdout.strip() == "[]"


def test_train_json_full_batch():
    out = nnparity("train", "--json", "--data", "planar", "--layer-dims", "2,4,1", "--hidden-activation", "tanh",
                   "--learning-rate", "1.2", "--epochs", "50")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"impl", "costs", "train_accuracy", "test_accuracy"}
    assert result["impl"] == "numpy" and len(result["costs"]) == 50 and result["test_accuracy"] is None
    assert 0 <= result["train_accuracy"] <= 1
    assert result["costs"][-1] < result["costs"][0]
    # step 0's cost is the cross-entropy of the untrained network: with W ~ 1e-1 it is close to log 2
    assert abs(result["costs"][0] - np.log(2)) < 0.1


def test_train_json_minibatch_steps_and_test_accuracy():
    out = nnparity("train", "--json", "--data", "digits-3v8", "--test-data", "digits-3v8", "--layer-dims", "64,5,1",
                   "--batch-size", "64", "--epochs", "3", "--learning-rate", "0.1")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["costs"]) == 3 * 5  # 267 examples: 4 full batches of 64 and a remainder of 11
    assert 0 <= result["test_accuracy"] <= 1


def test_train_torch_matches_numpy_float64():
    args = ["train", "--json", "--data", "planar", "--layer-dims", "2,4,1", "--hidden-activation", "tanh",
            "--learning-rate", "1.2", "--epochs", "30"]
    ref = json.loads(nnparity(*args).stdout)["costs"]
    torch = json.loads(nnparity(*args, "--impl", "torch").stdout)["costs"]
    np.testing.assert_allclose(torch, ref, rtol=1e-12, atol=0)


def test_train_human_output():
    out = nnparity("train", "--epochs", "20")
    assert out.returncode == 0
    assert "step      0" in out.stdout and "train accuracy" in out.stdout


def _npz(tmp_path, X, y, name="d.npz"):
    path = tmp_path / name
    np.savez(path, X=X, y=y)
    return path


BAD = {
    "unknown-impl": (["--impl", "mxnet"], "unknown implementation"),
    "unknown-activation": (["--hidden-activation", "swish"], "unknown hidden activation"),
    "unknown-init": (["--init", "glorot"], "unknown initialiser"),
    "unknown-dtype": (["--dtype", "float16"], "unknown dtype"),
    "unknown-loss": (["--loss", "hinge"], "unknown loss"),
    "unknown-data": (["--data", "mnist"], "mnist"),
    "bad-layer-dims": (["--layer-dims", "2,x,1"], "--layer-dims"),
    "one-layer-dim": (["--layer-dims", "2"], "--layer-dims"),
    "zero-units": (["--layer-dims", "2,0,1"], "--layer-dims"),
    "wrong-input-size": (["--layer-dims", "5,4,1"], "features"),
    "two-outputs": (["--layer-dims", "2,4,2"], "output layer"),
    "zero-learning-rate": (["--learning-rate", "0"], "--learning-rate"),
    "nan-learning-rate": (["--learning-rate", "nan"], "--learning-rate"),
    "negative-epochs": (["--epochs", "-3"], "--epochs"),
    "zero-batch": (["--batch-size", "0"], "--batch-size"),
    "missing-file": (["--data", "no/such/file.npz"], "not found"),
    "missing-test-file": (["--test-data", "no/such/test.csv"], "not found"),
    "no-test-split": (["--test-data", "planar"], "planar"),
    "leaky-slope": (["--leaky-slope", "1.5"], "--leaky-slope"),
    "unknown-decay": (["--decay", "exponential"], "unknown learning-rate decay 'exponential'; use --decay"),
    "decay-without-rate": (["--decay", "inverse-time"], "--decay inverse-time needs a --decay-rate above 0"),
    "negative-decay-rate": (["--decay", "scheduled", "--decay-rate", "-1"], "--decay-rate must be a non-negative"),
    "zero-time-interval": (["--decay", "scheduled", "--decay-rate", "1", "--time-interval", "0"],
                           "--time-interval must be a positive integer"),
}


@pytest.mark.parametrize("args,expected", list(BAD.values()), ids=list(BAD))
def test_bad_input_is_one_line_exit_2(args, expected, tmp_path):
    out = nnparity("train", "--epochs", "2", *args, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert expected in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_bad_data_files(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(6, 2)
    cases = {
        "labels": (_npz(tmp_path, X, np.array([0, 1, 2, 0, 1, 0]), "labels.npz"), "0 or 1"),
        "nan": (_npz(tmp_path, np.where(np.eye(6, 2) > 0, np.nan, X), np.array([0, 1, 1, 0, 1, 0]), "nan.npz"), "NaN"),
        "inf": (_npz(tmp_path, np.where(np.eye(6, 2) > 0, np.inf, X), np.array([0, 1, 1, 0, 1, 0]), "inf.npz"), "inf"),
        "lengths": (_npz(tmp_path, X, np.array([0, 1, 1]), "len.npz"), "y"),
    }
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    cases["unreadable"] = (garbage, "garbage.npz")
    before = sorted(tmp_path.iterdir())
    for name, (path, expected) in cases.items():
        out = nnparity("train", "--data", path, "--layer-dims", "2,3,1", "--epochs", "2", cwd=tmp_path)
        assert out.returncode == 2, (name, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, (name, out.stderr)
        assert expected in lines[0], (name, lines[0])
    assert sorted(tmp_path.iterdir()) == before


def test_train_reads_csv_file(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(20, 3)
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",")
    out = nnparity("train", "--json", "--data", path, "--test-data", path, "--layer-dims", "3,1", "--epochs", "5",
                   "--learning-rate", "0.5")
    result = json.loads(out.stdout)
    assert len(result["costs"]) == 5 and result["train_accuracy"] == result["test_accuracy"]


def test_report_writes_refuses_and_forces(tmp_path):
    out_dir = tmp_path / "r"
    args = ["report", "--out", out_dir, "--cases", "l1-logreg-float64-fullbatch", "--impl", "torch",
            "--no-selftest", "--no-catalogue"]
    first = nnparity(*args)
    assert first.returncode == 0, first.stderr
    files = {p.name for p in out_dir.iterdir()}
    assert {"summary.csv", "details.csv", "report.md", "summary.json"} <= files
    stamp = (out_dir / "summary.csv").stat().st_mtime_ns
    again = nnparity(*args)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1 and "--force" in again.stderr
    assert (out_dir / "summary.csv").stat().st_mtime_ns == stamp
    forced = nnparity(*args, "--force")
    assert forced.returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_report_bad_case_pattern_writes_nothing(tmp_path):
    out = nnparity("report", "--out", tmp_path / "r", "--cases", "l9-*")
    assert out.returncode == 2 and "matches no case" in out.stderr
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- every failure is one line


def _main(capsys, *args):
    """Run the command line in-process: (exit code, stdout, stderr lines)."""
    from nnparity import cli

    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def _one_line_error(code, out, err, *expected):
    assert code == 2 and out == "", (code, out, err)
    assert len(err) == 1 and "Traceback" not in err[0], err
    for text in expected:
        assert text in err[0], err[0]


def test_drift_with_only_the_reference_is_one_line(capsys):
    _one_line_error(*_main(capsys, "drift", "--impl", "numpy"), "--impl numpy", "torch")


def test_drift_csv_checked_before_any_work(capsys, tmp_path):
    _one_line_error(*_main(capsys, "drift", "--impl", "torch", "--csv", tmp_path), "is a directory")
    _one_line_error(*_main(capsys, "drift", "--impl", "torch", "--csv", tmp_path / "no" / "d.csv"), "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_closed_pipe_exits_quietly():
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-m", "nnparity", "train", "--epochs", "50", "--json"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the first write, as with `| head` finishing early
    err = proc.stderr.read()
    assert proc.wait(timeout=600) == 141
    assert err == ""


def test_broken_pipe_in_process_is_silent(capsys, monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    from nnparity import cli

    assert cli.main(["train", "--epochs", "2"]) == 141
    assert capsys.readouterr().err == ""


def test_a_run_too_large_for_memory_is_refused_before_allocating(capsys):
    # 10**12 hidden units: W1 alone is 16 TB in float64; no machine has that free
    _one_line_error(*_main(capsys, "train", "--layer-dims", f"2,{10**12},1", "--epochs", "2"),
                    "GiB", "layer 1: 1000000000000 units x 2 inputs", "use smaller --layer-dims")


def test_memory_estimate_names_the_size_and_the_largest_layer():
    from nnparity.errors import UsageError
    from nnparity.memory import check_memory
    from nnparity.spec import Case

    case = Case(layer_dims=(12288, 1000000, 1))
    # counted by hand: W, b and their gradients (2 copies), Z, A, dZ, dA of 209 examples per layer, X, 100 costs
    n_bytes = 8 * (2 * (1000000 * 12289 + 1 * 1000001) + 4 * (1000000 + 1) * 209 + 12288 * 209 + 100)
    with pytest.raises(UsageError) as info:
        check_memory(case, 209, available=22 * 2**30)
    message = str(info.value)
    assert f"needs about {n_bytes / 2**30:.1f} GiB" in message
    assert "layer 1: 1000000 units x 12288 inputs, 209 examples a batch" in message
    assert "22.0 GiB available" in message and "\n" not in message
    check_memory(case, 209, available=n_bytes)  # exactly enough: accepted
    adam = case.replace(optimizer="adam")  # two more copies of every parameter
    with pytest.raises(UsageError):
        check_memory(adam, 209, available=n_bytes)


def test_memory_error_is_one_line(capsys, monkeypatch):
    from nnparity.commands import train

    def allocate(args):
        raise MemoryError("Unable to allocate 91.6 GiB for an array with shape (1000000, 12288)")

    monkeypatch.setattr(train, "run", allocate)
    _one_line_error(*_main(capsys, "train"), "out of memory", "91.6 GiB", "--layer-dims")


def test_seed_beyond_randomstate_is_one_line(capsys):
    _one_line_error(*_main(capsys, "train", "--seed", 2**32, "--epochs", "2"), "--seed", "2**32")


# --------------------------------------------------------------------------- divergence and saturation


def test_divergence_stops_with_the_step_and_the_fix():
    from nnparity.data import load_data
    from nnparity.spec import Case
    from reference.initializers import initialize_parameters
    from reference.model import train

    # where the costs turn nan, from the reference itself (not from the command line)
    ds = load_data("planar")
    case = Case(layer_dims=(2, 4, 1), learning_rate=1e6, epochs=5)
    with np.errstate(all="ignore"):
        _, costs = train(initialize_parameters(case.layer_dims, case.init, case.init_scale, case.seed, "float64"),
                         ds.X, ds.Y, case)
    first_nan = int(np.flatnonzero(np.isnan(costs))[0])

    out = nnparity("train", "--learning-rate", "1e6", "--epochs", "5", "--json")
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["diverged_at_step"] == first_nan and len(result["costs"]) == first_nan + 1
    assert result["costs"][0] == pytest.approx(costs[0], rel=1e-15) and result["costs"][-1] is None
    assert "lower --learning-rate" in result["error"]
    assert out.stderr.strip().splitlines() == [
        f"nnparity train: error: training diverged: the cost is nan at step {first_nan} (learning rate 1e+06); "
        "lower --learning-rate"]  # one line, no RuntimeWarning from NumPy

    human = nnparity("train", "--learning-rate", "1e6", "--epochs", "5")
    assert human.returncode == 1 and "Warning" not in human.stderr and len(human.stderr.strip().splitlines()) == 1
    assert f"step {first_nan:>6}  cost nan" in human.stdout and "train accuracy" not in human.stdout


def test_non_finite_parameters_are_divergence_even_with_finite_costs():
    from nnparity.commands.train import divergence

    finite = {"W1": np.ones((2, 2)), "b1": np.zeros((2, 1))}
    assert divergence([0.7, 0.6], finite, 0.1) == {}
    broken = dict(finite, W1=np.array([[1.0, np.inf]]))
    problem = divergence([0.7, 0.6], broken, 0.1)
    assert problem["diverged_at_step"] == 2 and "not finite" in problem["error"]


def test_saturated_outputs_with_finite_parameters_keep_training(capsys):
    code, out, err = _main(capsys, "train", "--output-gradient", "fused", "--learning-rate", "1e6", "--epochs", "5",
                           "--json")
    result = json.loads(out)
    assert code == 0 and len(result["costs"]) == 5
    first_inf = result["saturated_from_step"]
    assert result["costs"][first_inf] is None and all(c is not None for c in result["costs"][:first_inf])
    assert len(err) == 1 and f"infinite from step {first_inf} because outputs saturated" in err[0]
    assert "--output-gradient fused" not in err[0]  # already fused: nothing to suggest
    assert divergence_note_for_chained()


def divergence_note_for_chained():
    from nnparity.commands.train import _saturation_note
    from nnparity.spec import Case

    return "--output-gradient fused" in _saturation_note("the cost is infinite", Case(layer_dims=(2, 1)))


# --------------------------------------------------------------------------- flags without effect


INEFFECTIVE = {
    "beta-gd": (["--beta", "0.5"], "--beta has no effect with --optimizer gd"),
    "beta-adam": (["--optimizer", "adam", "--beta", "0.5"], "--beta has no effect with --optimizer adam"),
    "beta1-rmsprop": (["--optimizer", "rmsprop", "--beta1", "0.5"], "--beta1 has no effect"),
    "beta2-gd": (["--beta2", "0.5"], "--beta2 has no effect"),
    "beta2-momentum": (["--optimizer", "momentum", "--beta2", "0.5"], "--beta2 has no effect"),
    "epsilon-momentum": (["--optimizer", "momentum", "--epsilon", "1e-7"], "--epsilon has no effect"),
    "keep-prob-logreg": (["--layer-dims", "2,1", "--keep-prob", "0.8"], "--keep-prob has no effect"),
    "leaky-slope-relu": (["--leaky-slope", "0.1"], "--leaky-slope has no effect"),
    "init-scale": (["--init-scale", "0.1"], "--init-scale has no effect with --init inv-sqrt"),
    "dropout-seed": (["--dropout-seed", "5"], "--dropout-seed has no effect"),
    "shuffle-seed": (["--shuffle-seed", "5"], "--shuffle-seed has no effect"),
    "decay-rate-without-decay": (["--decay-rate", "0"], "--decay-rate has no effect without a learning-rate decay"),
    "time-interval-inverse-time": (["--decay", "inverse-time", "--decay-rate", "1", "--time-interval", "10"],
                                   "--time-interval has no effect with --decay inverse-time"),
}


@pytest.mark.parametrize("args,expected", list(INEFFECTIVE.values()), ids=list(INEFFECTIVE))
def test_a_flag_without_effect_is_refused(args, expected, capsys):
    code, out, err = _main(capsys, "train", "--epochs", "2", *args)
    _one_line_error(code, out, err, expected, "drop it or")


def test_flags_with_effect_are_accepted_and_defaults_unchanged(capsys):
    runs = {}
    for name, args in {"default": [], "explicit": ["--beta", "0.9"]}.items():
        code, out, _ = _main(capsys, "train", "--optimizer", "momentum", "--epochs", "5", "--json", *args)
        assert code == 0
        runs[name] = json.loads(out)["costs"]
    assert runs["default"] == runs["explicit"]  # omitting --beta gives the Case default 0.9
    for args in (["--optimizer", "adam", "--beta1", "0.8", "--beta2", "0.99", "--epsilon", "1e-7"],
                 ["--hidden-activation", "leaky_relu", "--leaky-slope", "0.1"],
                 ["--init", "small-random", "--init-scale", "0.1"],
                 ["--keep-prob", "0.8", "--dropout-seed", "5"],
                 ["--batch-size", "64", "--shuffle-seed", "5"],
                 ["--decay", "scheduled", "--decay-rate", "1", "--time-interval", "1"]):
        code, _, err = _main(capsys, "train", "--epochs", "2", "--json", *args)
        assert code == 0, (args, err)


# --------------------------------------------------------------------------- messages and help


def test_ten_classes_with_a_sigmoid_suggest_softmax(capsys):
    code, out, err = _main(capsys, "train", "--data", "digits", "--epochs", "2")
    _one_line_error(code, out, err, "--output-activation softmax", "10")
    assert "--loss l2" not in err[0]


def test_train_help_lists_every_embedded_data_set(capsys):
    from nnparity import cli
    from nnparity.data import EMBEDDED, load_data

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    data_help = text[text.index("--data DATA training data"):text.index("--test-data TEST_DATA test data")]
    assert len(EMBEDDED) >= 7
    for name in EMBEDDED:
        assert name in data_help
        assert load_data(name).m > 0  # each listed name loads


def test_selftest_help_prints_percent_once(capsys):
    from nnparity import cli

    with pytest.raises(SystemExit):
        cli.main(["selftest", "--help"])
    text = capsys.readouterr().out
    assert "90%" in text and "%%" not in text


# --------------------------------------------------------------------------- progress


def test_train_counts_steps_on_stderr_and_json_stays_pure(capsys, monkeypatch):
    from nnparity import progress

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(progress.PlainProgress, "interval", 0.0)  # a line at every step
    code, out, err = _main(capsys, "train", "--epochs", "3", "--json")
    assert code == 0 and len(json.loads(out)["costs"]) == 3
    assert [line.split(" (")[0] for line in err] == [f"[train numpy] step {k}/3" for k in (1, 2, 3)]


def test_short_train_runs_print_no_progress(capsys):
    code, _, err = _main(capsys, "train", "--epochs", "3")
    assert code == 0 and err == []


def test_selftest_and_catalogue_report_each_item(capsys):
    from nnparity import selftest
    from nnparity.catalogue import run_catalogue

    faults = [f for f in selftest.catalogue() if f.id == "missing-1/m-in-dW"]
    assert len(faults) == 1
    selftest.run_selftest(repeats=1, faults=faults)
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err] == ["[1/2] self-test fault missing-1/m-in-dW: pass",
                                                     "[2/2] self-test unaltered cases, repetition 1: pass"]
    run_catalogue(ids=["torch-sgd-momentum-first-step"])
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err] == ["[1/1] catalogue torch-sgd-momentum-first-step: ok"]


def test_drift_reports_each_case_and_implementation(capsys):
    code, out, err = _main(capsys, "drift", "--cases", "l1-logreg-float64-fullbatch", "--steps", "5", "--impl", "torch")
    assert code == 0 and "l1-logreg-float64-fullbatch" in out
    assert [line.split(" (")[0] for line in err] == ["[1/1] l1-logreg-float64-fullbatch torch: done"]


@pytest.mark.parametrize("words, hint", [
    (["report", "--case", "x"], "--case: did you mean --cases?"),
    (["report", "--imp", "torch"], "--imp: did you mean --impl?"),
    (["train", "--lr", "0.1"], "--lr: did you mean --learning-rate?"),
])
def test_no_option_is_taken_from_a_prefix_and_the_error_names_the_option(words, hint, capsys):
    """Issue 23: ``--case`` ran as ``--cases`` (argparse's abbreviations): one typo started a 7-minute run.  Now it
    is a one-line usage error, exit 2, that names the option meant; nothing runs."""
    from nnparity import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(words)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and hint in err and "unrecognized arguments" in err


def test_drift_reaches_the_case_ids_report_reaches():
    """Issue 23: ``drift --cases`` chose from the default grid only, ``report --cases`` from every grid; its own
    default case had left the default grid.  Both parse the same ids now."""
    from nnparity import cli, grid

    parser = cli.build_parser()
    default = parser.parse_args(["drift"]).cases
    assert grid.select(grid.every_case(), default) and default not in {c.id for c in grid.default_grid()}
    for case in ("sigmoid-adam-dropout-float64-fullbatch", "l2-relu-float32-minibatch"):
        assert nnparity("drift", "--cases", case, "--steps", "1", "--impl", "torch").returncode in (0, 1), case


def test_report_says_which_cases_a_pattern_matched(tmp_path, monkeypatch, capsys):
    """Issue 23: 'sigmoid-adam-none-*' also matches the scheduled-decay case; the report says what matched, before
    any work."""
    from nnparity import cli, harness

    class Chosen(Exception):
        pass

    def stop(*args, **kwargs):
        raise Chosen()

    monkeypatch.setattr(harness, "run_reference", stop)
    with pytest.raises(Chosen):
        cli.main(["report", "--cases", "sigmoid-adam-none-*", "--impl", "torch", "--jobs", "1",
                  "--out", str(tmp_path / "r")])
    line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("--cases")][0]
    assert line.startswith("--cases 'sigmoid-adam-none-*' matched 5 cases: ")
    assert "sigmoid-adam-none-scheduled-decay-float32-minibatch" in line
    assert "sigmoid-adam-none-float64-fullbatch" in line
