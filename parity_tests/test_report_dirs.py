"""Directories nnparity writes (``report``, ``compare``, ``bench`` ``--out``) are nnparity's alone.

The marker (``nnparity.json``) written last; ``--force`` replaces only a directory
nnparity wrote; ``--out`` checked before any work; a lock against a second run into
the same ``--out``; nothing half-written left behind.  Every command-line run here
fails before any work, so each takes an interpreter start and no more.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nnparity.errors import UsageError
from nnparity.outdir import atomic_directory, claim
from reports import write_report
from test_report import META, details

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--cases", "l1-logreg-float64-fullbatch", "--impl", "torch", "--no-selftest", "--no-catalogue"]


def nnparity(*args):
    return subprocess.run([sys.executable, "-m", "nnparity", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT, CI="1"))


def one_line(result, code=2) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def snapshot(directory: Path) -> dict:
    """Every path under ``directory`` (the directory itself included) with its content; None for a directory."""
    paths = [directory, *sorted(directory.rglob("*"))] if directory.is_dir() else [directory]
    return {str(p): None if p.is_dir() else p.read_bytes() for p in paths}


# --------------------------------------------------------------------------- the marker


def test_the_marker_lists_every_file_with_its_size_and_sha256(tmp_path):
    out = write_report(details(), tmp_path / "r", META)
    marker = json.loads((out / "nnparity.json").read_text())
    assert (marker["format"], marker["format_version"], marker["kind"]) == ("nnparity-report", 2, "report")
    files = sorted(p.name for p in out.iterdir() if p.name != "nnparity.json")
    assert sorted(marker["files"]) == files and "details.csv" in files and "report.html" in files
    for name in files:
        data = (out / name).read_bytes()
        assert marker["files"][name] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["format"], summary["format_version"]) == ("nnparity-report", 2)


# --------------------------------------------------------------------------- --force replaces only nnparity's own


def _thesis(path: Path):
    path.mkdir()
    (path / "thesis.txt").write_text("three years of work")


def _compare_dir(path: Path):
    with atomic_directory(path, False, "compare") as tmp:
        (tmp / "drift.md").write_text("# nnparity compare\n")


FOREIGN = [
    (_thesis, "is a directory nnparity did not write (no nnparity.json)"),
    (lambda p: p.write_text("a file"), "is a file; nnparity never replaces a file"),
    (_compare_dir, "is an nnparity compare directory, not a report directory"),
    (lambda p: (p.parent / "elsewhere").mkdir() or p.symlink_to(p.parent / "elsewhere"), "is a symbolic link"),
]


@pytest.mark.parametrize("make, expected", FOREIGN)
def test_force_never_replaces_what_is_not_a_report(tmp_path, make, expected):
    out = tmp_path / "out"
    make(out)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=re.escape(expected)):
        write_report(details(), out, {**META, "force": True})
    line = one_line(nnparity("report", "--out", out, "--force", *SMALL))
    assert expected in line and str(out) in line and "choose another --out" in line
    assert snapshot(tmp_path) == before  # nothing touched, no temporary directory, no lock file


def test_an_empty_directory_may_be_used(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    write_report(details(), out, META)
    assert (out / "nnparity.json").is_file() and (out / "details.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_report_directory_is_replaced_only_with_force(tmp_path):
    out = write_report(details(), tmp_path / "r", META)
    before = snapshot(tmp_path)
    line = one_line(nnparity("report", "--out", out, *SMALL))
    assert f"report directory {out} exists; pass --force" in line
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- --out checked before any work


def _in_process(argv) -> dict:
    """Run ``nnparity.cli.main(argv)`` in a fresh interpreter: its exit code, stderr, and whether the run got as far
    as importing pandas or the harness (it must not, when --out is bad)."""
    code = ("import json, sys\nfrom nnparity import cli\n"
            f"rc = cli.main({[str(a) for a in argv]!r})\n"
            "print(json.dumps({'rc': rc, 'pandas': 'pandas' in sys.modules, "
            "'harness': 'nnparity.harness' in sys.modules}))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "stderr": run.stderr}


BAD_OUT = [
    (lambda t: t / "afile" / "r", "afile is a file, not a directory"),
    (lambda t: "/proc/nnparity-test-out", "cannot write in /proc"),  # /proc takes no new entries, even from root
    (lambda t: t / "afile", "is a file; nnparity never replaces a file"),
]


@pytest.mark.parametrize("out, expected", BAD_OUT)
@pytest.mark.parametrize("command", ["report", "bench", "compare"])
def test_a_bad_out_is_refused_before_any_work(tmp_path, out, expected, command):
    (tmp_path / "afile").write_text("not a directory")
    report = write_report(details(), tmp_path / "report", META) if command == "compare" else None
    argv = {"report": ["report", *SMALL], "bench": ["bench", "--quick", "--networks", "planar", "--impl", "numpy"],
            "compare": ["compare", report, report]}[command] + ["--out", out(tmp_path), "--force"]
    before = snapshot(tmp_path)
    result = _in_process(argv)
    assert result["rc"] == 2 and not result["pandas"] and not result["harness"], result
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "--out" in lines[0], result["stderr"]
    assert snapshot(tmp_path) == before


def test_a_failed_run_leaves_nothing_not_even_the_parents_it_created(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_markdown", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(details(), tmp_path / "new" / "deeper" / "r", META)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- one writer at a time


def test_a_second_run_into_the_same_out_fails_at_once(tmp_path):
    out = tmp_path / "latest"
    with claim(out, False, "report"):  # this process is writing out
        line = one_line(nnparity("report", "--out", out, "--force", *SMALL))
        assert line.endswith(f"another nnparity run is writing {out} (pid {os.getpid()}); wait for it or choose "
                             "another --out")
        (tmp_path / "link").symlink_to(tmp_path)  # the same directory, reached another way
        line = one_line(nnparity("report", "--out", tmp_path / "link" / "latest", "--force", *SMALL))
        assert f"another nnparity run is writing {tmp_path / 'link' / 'latest'} (pid {os.getpid()})" in line
        assert (tmp_path / ".latest.lock").read_text().strip() == str(os.getpid())
        other = write_report(details(), tmp_path / "other", META)  # another --out is free
        assert (other / "nnparity.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "other"]  # the lock file is removed after the run


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    out = tmp_path / "latest"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom nnparity.outdir import claim\n"
         f"with claim({str(out)!r}, False, 'report'):\n    print('locked', flush=True)\n    time.sleep(300)\n"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=f"pid {holder.pid}"):
            write_report(details(), out, META)
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the lock file stays
        holder.wait()
    assert (tmp_path / ".latest.lock").read_text().strip() == str(holder.pid)
    write_report(details(), out, META)
    assert (out / "nnparity.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]


def test_a_report_of_an_older_nnparity_is_not_replaced_and_the_line_says_why(tmp_path):
    out = write_report(details(), tmp_path / "latest", META)
    (out / "nnparity.json").unlink()  # what nnparity wrote before the marker existed
    before = snapshot(tmp_path)
    line = one_line(nnparity("report", "--out", out, "--force", *SMALL))
    assert "looks like a report of an older nnparity (no nnparity.json)" in line and "delete it yourself" in line
    assert snapshot(tmp_path) == before
