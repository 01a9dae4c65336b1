"""``nnparity bench --suite``: where the time of the quick report and of make test goes, per implementation
and phase (``nnparity.timing``), with the tests' JUnit durations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nnparity.bench.processes import ROOT, _policy_words, _progress, _versions, worker_env
from nnparity.bench.render import _fmt
from nnparity.errors import UsageError
from nnparity.numbers import jsonable

#: ``nnparity bench --suite``'s suites: the quick report (``nnparity report``) and make test's pytest command.
SUITES = ("report", "tests")
SUITE_CHOICES = SUITES + ("all",)
#: The table's columns, ``nnparity.timing``'s phases in the order a piece runs them, then the report's own: a
#: piece's ``other`` (its seconds outside every phase) and ``rendering`` (``write_report``).  Others follow.
SUITE_PHASES = ("import", "compile", "reference", "captures", "first update", "trajectory", "predictions", "other",
                "rendering")
#: Rows after the implementations: the reference, the report's pieces outside every phase, its rendering.
SUITE_LAST_ROWS = ("numpy", "harness", "report")
#: make test's command (the Makefile's ``PARALLEL``), quiet and without pytest's cache.
TESTS_COMMAND = ("-m", "pytest", "-n", "auto", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider")
SLOWEST = 10
#: The tests suite's one row for the implementations the tests write themselves (a file in a temporary
#: directory, a fault injected under a name of its own): each its own row said nothing a reader could use.
TESTS_OWN = "the tests' own"


def parse_suite(text: str) -> list[str]:
    """``--suite``'s value: ``report``, ``tests`` or ``all`` (both), as the list of suites to run."""
    if text not in SUITE_CHOICES:
        raise UsageError(f"unknown suite {text!r}; use --suite report, tests or all (--suite alone: all)")
    return list(SUITES) if text == "all" else [text]


def _suite_machine() -> dict:
    import platform

    from nnparity.environment import cpu_info

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu_info()["model"],
            "cores": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def _load() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _run_streamed(cmd, env, timeout, echo, prefix):
    """Run ``cmd`` in the repository root, its output (stdout and stderr together) echoed to stderr line by line
    after ``prefix`` when ``echo``; returns (exit code, wall seconds, the last 20 lines)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    tail = []
    try:
        for line in proc.stdout:
            if echo:
                sys.stderr.write(prefix + line)
                sys.stderr.flush()
            tail = (tail + [line.rstrip()])[-20:]
        proc.wait()
    finally:
        killer.cancel()
    return proc.returncode, time.perf_counter() - started, tail


def _suite_run(label, cmd, env, timeout, echo):
    """The common record of one suite's run: its command, date, load average at start and end, wall time."""
    load_start, started = _load(), time.time()
    code, wall, tail = _run_streamed(cmd, env, timeout, echo, f"[bench] {label}: ")
    return {"command": " ".join(["python"] + cmd[1:]), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                                               time.localtime(started)),
            "load_start": load_start, "load_end": _load(), "wall_s": wall, "exit_code": code, "tail": tail}


def run_report_suite(cases: str = "*", impl: str = "all", echo: bool = True, threads=None, timeout=3600) -> dict:
    """``nnparity report`` as the user runs it (the quick tier, ``--jobs`` by default, in a temporary directory;
    ``cases``, ``impl``: its ``--cases`` and ``--impl``), and its ``timings.csv``: ``rows`` of impl, phase and
    seconds summed over its pieces (``report``'s ``rendering`` included), the command's wall time, the worker
    processes it ran on (``jobs``: its default, at most one per piece)."""
    import pandas as pd

    from nnparity import workers

    env = worker_env(threads)
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-suite-") as tmp:
        out = Path(tmp) / "report"
        cmd = [sys.executable, "-m", "nnparity", "report", "--out", str(out)] + \
              (["--cases", cases] if cases != "*" else []) + (["--impl", impl] if impl != "all" else [])
        record = _suite_run("report", cmd, env, timeout, echo)
        if not (out / "timings.csv").exists():  # exit 2 or a crash: no report, nothing to read
            last = next((t for t in reversed(record["tail"]) if t.strip()), "")
            raise RuntimeError(f"nnparity report wrote no timings.csv (exit {record['exit_code']}): "
                               f"{last.strip()}"[:300])
        timings = pd.read_csv(out / "timings.csv")
    pieces = sorted(set(timings["piece"]) - {"report"})
    jobs = workers.default_jobs(env)
    summed = timings.groupby(["impl", "phase"], sort=False)["seconds"].sum()
    return dict(record, suite="report", cases=cases, impl=impl, jobs=jobs, processes=min(jobs, len(pieces)) or 1,
                pieces=len(pieces),
                rows=[{"impl": i, "phase": p, "seconds": float(v)} for (i, p), v in summed.items()])


def impl_of_test(name: str, names=None) -> str | None:
    """The implementation a parity pair's test runs (its id ends in ``-<impl>]``), or None."""
    from nnparity.impls import IMPLS

    for impl in sorted(names or IMPLS, key=len, reverse=True):
        if name.endswith(f"-{impl}]"):
            return impl
    return None


def junit_tests(path) -> list[dict]:
    """Every test case of a JUnit XML file: ``{"test": "file::name", "seconds", "outcome"}``."""
    import xml.etree.ElementTree as ET

    tests = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        name = case.get("name", "")
        if name.rfind("@") > name.rfind("]"):  # --dist loadgroup's suffix, "@<xdist_group>": not the test's id
            name = name[:name.rfind("@")]
        tests.append({"test": f"{case.get('classname', '')}::{name}",
                      "seconds": float(case.get("time") or 0.0), "outcome": outcome})
    return tests


def junit_summary(tests: list[dict]) -> dict:
    """The tests' seconds summed per implementation (parity pairs by their id; every other test: ``other
    tests``), and the ``SLOWEST`` slowest tests."""
    per_impl: dict[str, dict] = {}
    for t in tests:
        key = impl_of_test(t["test"]) or "other tests"
        entry = per_impl.setdefault(key, {"impl": key, "tests": 0, "seconds": 0.0})
        entry["tests"] += 1
        entry["seconds"] += t["seconds"]
    order = _row_order(per_impl)
    return {"tests": len(tests), "seconds": sum(t["seconds"] for t in tests),
            "failed": sum(t["outcome"] in ("failure", "error") for t in tests),
            "per_impl": [per_impl[k] for k in order],
            "slowest": sorted(tests, key=lambda t: -t["seconds"])[:SLOWEST]}


def run_tests_suite(pytest_args=(), echo: bool = True, threads=None, timeout=7200) -> dict:
    """make test's pytest command (``TESTS_COMMAND``, the quick tier, ``pytest_args`` after it) with
    ``NNPARITY_TIMINGS_DIR`` set, so that each pytest process writes its seconds per implementation and phase
    (parity_tests/conftest.py), and ``--junitxml``: ``rows`` summed over the processes, the wall time, the
    processes that ran tests (xdist's workers, or the one process without xdist), and the JUnit durations."""
    from nnparity import timing

    env = worker_env(threads)
    with tempfile.TemporaryDirectory(prefix="nnparity-bench-tests-") as tmp:
        env[timing.DIRECTORY] = str(Path(tmp) / "timings")
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, *TESTS_COMMAND, f"--junitxml={junit}", *pytest_args]
        record = _suite_run("tests", cmd, env, timeout, echo)
        files = timing.read(Path(tmp) / "timings") if (Path(tmp) / "timings").is_dir() else []
        if not junit.exists() or not files:
            last = next((t for t in reversed(record["tail"]) if t.strip()), "")
            raise RuntimeError(f"pytest left no JUnit XML or timings (exit {record['exit_code']}): "
                               f"{last.strip()}"[:300])
        tests = junit_tests(junit)
    testing = [d for d in files if d["label"].startswith("gw")] or files  # xdist's controller runs no test
    return dict(record, suite="tests", processes=len(testing), pytest_args=list(pytest_args),
                rows=tests_rows(files), junit=junit_summary(tests))


def tests_rows(files) -> list[dict]:
    """The pytest processes' seconds (``nnparity.timing.read``) summed per implementation and phase, the
    implementations outside the registry (the tests' own) in one row, ``TESTS_OWN``."""
    from nnparity.impls import REGISTRY

    summed: dict[tuple[str, str], float] = {}
    for document in files:
        for row in document["seconds"]:
            impl = row["impl"] if row["impl"] in REGISTRY or row["impl"] in SUITE_LAST_ROWS else TESTS_OWN
            summed[impl, row["phase"]] = summed.get((impl, row["phase"]), 0.0) + row["seconds"]
    return [{"impl": i, "phase": p, "seconds": v} for (i, p), v in summed.items()]


def run_suites(which, cases="*", impl="all", pytest_args=(), echo=True, threads=None) -> dict:
    """Run the chosen suites (``parse_suite``); the result document (``format_suites``, ``write_suite_outputs``)."""
    started = time.time()
    document = {"meta": {"command": " ".join(["nnparity"] + sys.argv[1:]) if sys.argv else "nnparity bench --suite",
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                         "machine": _suite_machine(), "versions": _versions(),
                         "threads": threads or f"nnparity's policy ({_policy_words()})"},
                "suites": {}}
    for name in which:
        if echo:
            _progress(f"--suite {name}: " + ("nnparity report (quick tier)" if name == "report" else
                                             "make test's pytest (quick tier; minutes)"))
        document["suites"][name] = (run_report_suite(cases, impl, echo, threads) if name == "report"
                                    else run_tests_suite(pytest_args, echo, threads))
    return document


def _row_order(names) -> list[str]:
    """The implementations in the registry's order, then ``SUITE_LAST_ROWS``, then the rest by name."""
    from nnparity.impls import IMPLS

    names = list(dict.fromkeys(names))
    first = [n for n in IMPLS if n in names and n not in SUITE_LAST_ROWS]
    last = [n for n in SUITE_LAST_ROWS if n in names]
    return first + sorted(n for n in names if n not in first + last) + last


def phase_table(rows):
    """Rows of impl, phase, seconds as one table: a row per implementation (``_row_order``), a column per phase
    (``SUITE_PHASES`` that occur, then others), ``total``; a last row ``total``.  Empty where nothing was
    counted."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["impl", "phase", "seconds"])
    wide = frame.pivot_table(index="impl", columns="phase", values="seconds", aggfunc="sum")
    phases = [p for p in SUITE_PHASES if p in wide.columns] + sorted(set(wide.columns) - set(SUITE_PHASES))
    wide = wide.reindex(index=_row_order(wide.index), columns=phases)
    wide["total"] = wide.sum(axis=1, skipna=True)
    wide.loc["total"] = wide.sum(axis=0, skipna=True)
    wide.columns.name = None
    return wide.rename_axis("impl").reset_index()


def suite_table(document):
    """Every suite's phase table, one after the other (column ``suite`` first): ``suite.csv``."""
    import pandas as pd

    tables = [phase_table(r["rows"]).assign(suite=name) for name, r in document["suites"].items()]
    table = pd.concat(tables, ignore_index=True)
    return table[["suite"] + [c for c in table.columns if c != "suite"]]


def suite_header(document, name) -> str:
    """The one line above a suite's table: what ran, when, where, the wall time and the load."""
    r, machine = document["suites"][name], document["meta"]["machine"]
    if name == "report":
        what = ("nnparity report (quick tier, " + ("default grid" if r["cases"] == "*" else f"--cases {r['cases']}")
                + ("" if r["impl"] == "all" else f", --impl {r['impl']}") + ")")
    else:
        what = ("make test (python -m pytest -n auto --dist loadgroup, quick tier"
                + "".join(" " + a for a in r["pytest_args"]) + ")")
    load = lambda values: "n/a" if not values else f"{values[0]:.2f}"  # noqa: E731
    processes = (f"{r['processes']} processes (seconds summed over them: the total can exceed the wall time)"
                 if r["processes"] > 1 else "1 process")
    return (f"{what}: {r['started'][:16].replace('T', ' ')}, {machine['platform']}, {machine['cpu_model']}, "
            f"{machine['cores']} cores; wall {r['wall_s']:.1f} s on {processes}; "
            f"load average {load(r['load_start'])} at start, "
            f"{load(r['load_end'])} at end; exit {r['exit_code']}")


def _cells(table):
    shown = table.copy()
    for column in shown.columns[1:]:
        shown[column] = shown[column].map(lambda x: _fmt(x, ".1f"))
    return shown


def _markdown_table(table) -> str:
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|---" + "|--:" * (len(columns) - 1) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


SUITE_NOTE = ("seconds per implementation and phase (nnparity.timing): import (the framework's first load), "
              "compile (JAX's backend compiles), reference (the numpy reference's run), captures (step 0 and the "
              "checkpoints), first update, trajectory (the free run), predictions; the report adds harness/other (a "
              "piece's seconds outside every phase: comparing, data) and report/rendering (write_report)")


def format_suites(document, markdown: bool = False) -> str:
    """Each suite's header line and phase table (``markdown``: as Markdown tables); the tests' JUnit durations
    per implementation and the slowest tests."""
    parts = []
    for name, r in document["suites"].items():
        table = _cells(phase_table(r["rows"]))
        parts.append(suite_header(document, name))
        parts.append(_markdown_table(table) if markdown else table.to_string(index=False))
        if name == "tests":
            junit = r["junit"]
            per_impl = [{"impl": e["impl"], "tests": e["tests"], "seconds": _fmt(e["seconds"], ".1f")}
                        for e in junit["per_impl"]]
            slowest = [{"seconds": _fmt(t["seconds"], ".1f"), "test": t["test"]} for t in junit["slowest"]]
            intro = (f"JUnit: {junit['tests']} tests, {junit['seconds']:.1f} s summed over the tests "
                     f"({junit['failed']} failed); per implementation (parity pairs by id):")
            if markdown:
                import pandas as pd

                parts += [intro, _markdown_table(pd.DataFrame(per_impl)), f"the {len(slowest)} slowest tests:",
                          _markdown_table(pd.DataFrame(slowest))]
            else:
                parts.append(intro + "\n" + "\n".join(f"  {e['impl']:>14}  {e['tests']:5d} tests  {e['seconds']:>8} s"
                                                       for e in per_impl))
                parts.append(f"the {len(slowest)} slowest tests:\n" + "\n".join(
                    f"  {t['seconds']:>8} s  {t['test']}" for t in slowest))
    if not markdown:
        parts.append(SUITE_NOTE)
    return "\n\n".join(parts)


#: The README's generated block (``nnparity bench --suite --readme README.md``): the lines between these two
#: markers are ``readme_block``'s, replaced whole on every run; nothing else of the file changes.
README_BEGIN = "<!-- nnparity bench --suite --readme: generated from here; do not edit by hand -->"
README_END = "<!-- nnparity bench --suite --readme: generated up to here -->"


def readme_block(document) -> str:
    """The README's timing block: each suite's header line (what ran, when, where, the wall time, the load) and
    phase table, as Markdown, and the command that regenerates it."""
    parts = []
    for name in document["suites"]:
        parts += [suite_header(document, name), _markdown_table(_cells(phase_table(document["suites"][name]["rows"])))]
    parts.append(f"Seconds per implementation and phase; generated by `{document['meta']['command']}`.")
    return "\n\n".join(parts)


#: ``make coverage``'s block in the README (``.ci/coverage`` with ``COVERAGE_README=README.md``).
COVERAGE_BEGIN = "<!-- make coverage: generated from here; do not edit by hand -->"
COVERAGE_END = "<!-- make coverage: generated up to here -->"


def readme_markers(text: str, name: str, markers=(README_BEGIN, README_END)) -> tuple[int, int]:
    """Where ``text``'s generated block lies (the end of the first marker's line, the start of the second's);
    a ``UsageError`` naming ``name`` and the fix unless each marker is there once, in that order."""
    first, second = markers
    begin, end = text.count(first), text.count(second)
    if begin != 1 or end != 1 or text.index(first) > text.index(second):
        raise UsageError(f"{name}: the file needs the two marker lines {first!r} and then "
                         f"{second!r}, once each (found {begin} and {end}); add them where the table goes")
    return text.index(first) + len(first), text.index(second)


def splice_readme(text: str, block: str, name: str = "README", markers=(README_BEGIN, README_END)) -> str:
    """``text`` with the lines between its markers (``readme_markers``) replaced by ``block``."""
    start, stop = readme_markers(text, name, markers)
    return text[:start] + "\n\n" + block.strip("\n") + "\n\n" + text[stop:]


def write_readme(path, block: str, markers=(README_BEGIN, README_END)) -> None:
    """Replace ``path``'s generated block between ``markers`` with ``block`` (``readme_block``'s, or make
    coverage's table): the new file is written beside it and renamed over it, so a reader never sees half of it."""
    path = Path(path)
    text = splice_readme(path.read_text(encoding="utf-8"), block, str(path), markers)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, path.stat().st_mode & 0o777)
    os.replace(tmp.name, path)


def write_suite_outputs(document, out_dir, force=False) -> Path:
    """``suite.csv`` (``suite_table``), ``suite.json`` (the document) and ``suite.md`` (``format_suites``'
    Markdown) into ``out_dir``, atomically."""
    from nnparity.outdir import atomic_directory

    with atomic_directory(out_dir, force, "benchmark", prefix=".tmp-bench-") as tmp:
        suite_table(document).to_csv(tmp / "suite.csv", index=False)
        (tmp / "suite.json").write_text(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n",
                                        encoding="utf-8")
        (tmp / "suite.md").write_text(format_suites(document, markdown=True) + "\n\n" + SUITE_NOTE + ".\n",
                                      encoding="utf-8")
    return Path(out_dir)
