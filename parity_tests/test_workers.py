"""nnparity.workers: pieces of one command in worker processes, and ``nnparity report --jobs``.

A report made by two workers must be the report one process makes: the same rows, bit for bit, in the same order.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnparity import workers

ROOT = Path(__file__).resolve().parents[1]


def test_one_job_runs_the_pieces_in_order_in_this_process():
    pieces = [(str(n), os.getpid, ()) for n in range(3)]
    assert [(label, result) for label, result, _, _ in workers.run(pieces, jobs=1)] == [(str(n), os.getpid())
                                                                                   for n in range(3)]


def test_two_jobs_run_every_piece_elsewhere_and_return_each_result_once():
    pieces = [(str(n), math.factorial, (n,)) for n in range(6)] + [("pid", os.getpid, ())]
    results = {label: result for label, result, seconds, _ in workers.run(pieces, jobs=2)}
    assert results == {**{str(n): math.factorial(n) for n in range(6)}, "pid": results["pid"]}
    assert results["pid"] != os.getpid()


def test_a_piece_that_raises_raises_here():
    with pytest.raises(ValueError, match="math domain error"):
        list(workers.run([("sleeps", time.sleep, (0.01,)), ("bad", math.sqrt, (-1.0,))], jobs=2))


def test_a_worker_that_dies_is_one_error_naming_the_piece():
    with pytest.raises(RuntimeError, match=r"a worker process died while running (dies|sleeps).*--jobs 1"):
        list(workers.run([("dies", os._exit, (3,)), ("sleeps", time.sleep, (5.0,))], jobs=2))


def _report(out: Path, jobs: int, selftest: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnparity", "report", "--impl", "torch,torch-nn",
                           "--cases", "l1-logreg-float64-fullbatch,l2-tanh-float32-minibatch,l1-logreg-saturating-*",
                           "--full", "--no-catalogue", "--selftest-repeats", "1", "--jobs", str(jobs),
                           "--out", str(out)] + ([] if selftest else ["--no-selftest"]),
                          capture_output=True, text=True, cwd=ROOT, timeout=900)


def test_a_report_by_two_workers_is_the_report_of_one_process(tmp_path, tier):
    """The pieces are the cases and, in the full tier, the self-test (the quick tier leaves its 7 s a report to
    test_selftest.py and the full tier's run of this test)."""
    selftest = tier == "full"
    one, two = _report(tmp_path / "one", 1, selftest), _report(tmp_path / "two", 2, selftest)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    for name in ("details.csv", "trajectories.csv", "summary.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for name in ("one", "two"):  # every case, the self-test's verdict: one line each as it finishes
        lines = [line for line in (one if name == "one" else two).stderr.splitlines() if line.startswith("[")]
        assert len(lines) == 3 + selftest, lines
        assert any(line.split("] ")[1].startswith("self-test: pass") for line in lines) == selftest, lines
    env = [json.loads((tmp_path / name / "env.json").read_text()) for name in ("one", "two")]
    assert env[0]["torch"] == env[1]["torch"] and env[1]["torch"]["status"] == "imported"
    assert env[1]["tensorflow"]["status"] == "not imported"  # the workers' frameworks, not the parent's
    report = (tmp_path / "two" / "report.md").read_text()
    assert ("## Self-test" in report) == selftest
    details = pd.read_csv(tmp_path / "two" / "details.csv")
    assert sorted(details["case"].unique()) == ["l1-logreg-float64-fullbatch", "l1-logreg-saturating-float64-fullbatch",
                                                "l2-tanh-float32-minibatch"]


def test_nnparity_jobs_sets_the_default_and_a_bad_value_is_a_usage_error():
    from nnparity.errors import UsageError

    assert workers.default_jobs({"NNPARITY_JOBS": "3"}) == 3
    assert workers.default_jobs({}) == len(os.sched_getaffinity(0))
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(UsageError, match="NNPARITY_JOBS.*whole number"):
            workers.default_jobs({"NNPARITY_JOBS": bad})


def test_a_bad_nnparity_jobs_is_one_line_exit_2_and_writes_nothing(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nnparity", "report", "--impl", "torch", "--cases", "l1-logreg-*",
                             "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "NNPARITY_JOBS": "many"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "NNPARITY_JOBS" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "r").exists()


def test_a_piece_counts_its_own_seconds_and_the_process_keeps_its_totals():
    """A piece's phases are its own; the process's totals (a pytest process's, ``NNPARITY_TIMINGS_DIR``) keep
    what was counted before it."""
    from nnparity import timing

    before = timing.snapshot()
    try:
        timing.SECONDS["earlier", "import"] += 1.0
        ((label, result, seconds, phases),) = list(workers.run([("p", _phased, ())], jobs=1))
        assert result == 2 and set(phases) == {("piece", "trajectory")}
        assert timing.SECONDS["earlier", "import"] == before.get(("earlier", "import"), 0.0) + 1.0
        assert timing.SECONDS["piece", "trajectory"] >= phases["piece", "trajectory"] > 0
    finally:
        timing.reset()
        timing.add(before)


def _phased():
    from nnparity import timing

    with timing.phase("piece", "trajectory"):
        time.sleep(0.01)
    return 2


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads the process tree from /proc (Linux)")
def test_ctrl_c_says_stopping_and_ends_the_workers_within_seconds_leaving_nothing(tmp_path):
    """Issue 23: Ctrl-C was ignored for up to 50 s while the workers went on with their pieces.  Now the first one
    says "stopping" at once, the workers end within seconds, the command exits 130 and writes nothing."""
    import signal

    out = tmp_path / "r"
    slow = tmp_path / "slow_impl.py"  # each piece's train says it started, then takes a minute
    slow.write_text("import os, time\nfrom reference.model import forward_backward, predictions\n\n\n"
                    "def train(*args, **kwargs):\n"
                    f"    open(os.path.join({str(tmp_path)!r}, f'started-{{os.getpid()}}'), 'w').close()\n"
                    "    time.sleep(60)\n")
    def as_from_a_terminal():  # Ctrl-C's disposition a shell gives a foreground command, whatever this runner's is
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    report = subprocess.Popen([sys.executable, "-m", "nnparity", "report", "--impl", str(slow), "--jobs", "2",
                               "--cases", "l1-logreg-float64-*,l2-tanh-float64-*", "--out", str(out)],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "1"},
                              preexec_fn=as_from_a_terminal)
    workers_seen = set()
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("started-*"))) < 2 and time.monotonic() < deadline and report.poll() is None:
        workers_seen |= _children(report.pid)
        time.sleep(0.2)
    workers_seen |= _children(report.pid)
    assert len(list(tmp_path.glob("started-*"))) == 2, "both workers should be busy in a train"
    interrupted = time.monotonic()
    report.send_signal(signal.SIGINT)
    try:
        _, err = report.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # say how the report held the signal, end it and its workers, then fail
        status = open(f"/proc/{report.pid}/status").read().splitlines()
        held = [line for line in status if line.startswith(("State", "SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd"))]
        for pid in workers_seen | {report.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        report.communicate()
        pytest.fail(f"the report did not end within 60 s of SIGINT; its signal state: {held}")
    assert report.returncode == 130, err
    assert time.monotonic() - interrupted < 15, "the workers should end within seconds"
    assert "stopping (Ctrl-C)" in err and "nothing was written" in err and "Traceback" not in err
    time.sleep(1)
    left = {pid: open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[:120] for pid in workers_seen
            if os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"}
    assert not left, left
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("started-")) == ["slow_impl.py"]
