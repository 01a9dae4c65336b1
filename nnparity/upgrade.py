"""``nnparity upgrade-check PIN [PIN ...]``: the upgrade question in one command.

For each candidate pin (``tensorflow-cpu==2.20.0``; several pins of one candidate joined by a comma:
``torch==2.12.0,numpy==2.3.5``):

1. the candidate environment: the lock file (``constraints.txt``) with only those pins changed
   (``candidate_lock``), a virtual environment built from it (``build_environment``: ``python -m venv``,
   then ``pip install -c <candidate lock>`` of nnparity's own requirements, the frameworks of ``--impl``
   and the pinned packages, then nnparity itself with ``--no-deps -e``: pyproject's ranges do not get in
   the way of a candidate outside them), cached in ``~/.cache/nnparity/envs/<SHA-256 of what it
   installs>`` (``NNPARITY_ENVS`` overrides the folder) and reused while the lock and the pins are the same;
2. the same ``nnparity report`` (same ``--cases``, ``--impl``; the quick tier, or ``--full`` without the self-test and
   catalogue) in the
   current environment (the baseline, once) and in each candidate's;
3. ``nnparity compare`` of each candidate against the baseline (``nnparity.regression``, its gates; drift.md
   rendered and written by ``reports.compare``);
4. one verdict per candidate, a case x candidate table, and one exit code (``EXIT_*``).

The environment builder and the report runner are parameters (``check(builder=..., runner=...)``), so the
orchestration is tested without installing anything.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nnparity.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
EXIT_OK, EXIT_REGRESSION, EXIT_INCOMPLETE, EXIT_NOT_COMPARABLE, EXIT_NO_ENVIRONMENT = 0, 1, 3, 4, 6
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_candidate(text: str) -> dict:
    """``'tensorflow-cpu==2.20.0'`` (or pins joined by commas) -> ``{'tensorflow-cpu': '2.20.0'}``; a one-line
    ``UsageError`` for anything else."""
    pins = {}
    for part in [p.strip() for p in text.split(",") if p.strip()] or [text]:
        match = _PIN.match(part)
        if not match:
            raise UsageError(f"candidate {text!r}: {part!r} is not a pin; write NAME==VERSION, e.g. "
                             "tensorflow-cpu==2.20.0 (several pins of one candidate joined by commas)")
        pins[match.group(1)] = match.group(2)
    return pins


def candidate_lock(lock: str, pins: dict) -> str:
    """The lock file's text with only ``pins`` changed (a pinned package the lock lacks is added at the end)."""
    wanted = {_canonical(name): (name, version) for name, version in pins.items()}
    lines, seen = [], set()
    for line in lock.splitlines():
        name = re.split(r"[=<>!~;\[ ]", line.strip(), maxsplit=1)[0]
        key = _canonical(name) if name and not line.lstrip().startswith("#") else None
        if key in wanted:
            lines.append(f"{wanted[key][0]}=={wanted[key][1]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{name}=={version}" for key, (name, version) in wanted.items() if key not in seen]
    return "\n".join(lines) + "\n"


def requirements(impl_names: list[str], pins: dict) -> list[str]:
    """What the candidate environment installs (under the candidate lock): nnparity's own requirements, the
    distributions of the chosen implementations' frameworks, and the pinned packages."""
    from importlib import metadata

    from nnparity import impls

    own = [r.split(";")[0].strip() for r in metadata.requires("nnparity") or [] if "extra ==" not in r]
    frameworks = [d for name in impl_names for d in getattr(impls.get(name), "requires", ())]
    return list(dict.fromkeys(own + frameworks + list(pins)))


def envs_dir() -> Path:
    return Path(os.environ.get("NNPARITY_ENVS") or Path.home() / ".cache" / "nnparity" / "envs")


def environment_key(lock_text: str, wanted: list[str]) -> str:
    return hashlib.sha256((lock_text + "\n--\n" + "\n".join(wanted) + "\n--\n" + sys.version).encode()).hexdigest()[:16]


def build_environment(pins: dict, impl_names: list[str], log) -> Path:
    """The candidate's Python: a cached virtual environment of the lock with ``pins`` changed (built now if it is
    not cached yet).  A failed install raises ``EnvironmentFailed`` with pip's last line."""
    lock_text = candidate_lock(LOCK.read_text(encoding="utf-8"), pins)
    wanted = requirements(impl_names, pins)
    target = envs_dir() / environment_key(lock_text, wanted)
    python = target / "bin" / "python"
    if (target / ".complete").is_file():
        log(f"  environment cached: {target}")
        return python
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"  building the environment in {target} (pip; minutes the first time) ...")
    _pip([sys.executable, "-m", "venv", str(target)], "python -m venv", target)
    (target / "constraints.txt").write_text(lock_text, encoding="utf-8")
    _pip([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-c", str(target / "constraints.txt"), *wanted], "pip install", target)
    _pip([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "-e",
          str(ROOT)], "pip install -e", target)
    (target / ".complete").write_text(" ".join(wanted) + "\n", encoding="utf-8")
    return python


class EnvironmentFailed(Exception):
    """A candidate environment could not be built (exit 6 for that candidate)."""


def _pip(command: list[str], what: str, target: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        shutil.rmtree(target, ignore_errors=True)
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        useful = [line for line in lines if line.startswith("ERROR")] or lines or [f"exit {done.returncode}"]
        raise EnvironmentFailed(f"{what} failed: {useful[0]}" + (f" ... {useful[-1]}" if len(useful) > 1 else ""))


def run_report(python: Path | str, out: Path, cases: str, impl: str, full: bool = False) -> int:
    """``nnparity report`` with ``python`` into ``out`` in the quick tier, or with ``full`` the full one without its
    self-test and catalogue (its exit code: 0, 1, 3 and 5 leave a report)."""
    command = [str(python), "-m", "nnparity", "report", "--out", str(out), "--force", "--cases", cases,
               "--impl", impl] + (["--full", "--no-selftest", "--no-catalogue"] if full else [])
    env = dict(os.environ, CI="1", PYTHONPATH=str(ROOT))  # its progress: one line per case, on our stderr
    err = sys.stderr.fileno()
    return subprocess.run(command, env=env, cwd=str(ROOT), stdout=err, stderr=err).returncode


@dataclass
class Outcome:
    candidate: str
    code: int
    verdict: str
    per_case: dict  # case -> "unchanged" / "changed" / "REGRESSION" / ...


def _per_case(comparison) -> dict:
    from nnparity.regression import collapse

    status = {case: "unchanged" for case in dict.fromkeys(comparison.drift["case"])}
    for case in set(collapse(comparison.changed)["case"]) if len(comparison.changed) else ():
        status[case] = "changed"
    bad = list(comparison.regressions["case"]) + list(comparison.drifted["case"]) + list(comparison.grown["case"])
    bad += [p["case"] for p in comparison.pair_regressions]
    bad += [g["case"] for g in comparison.golden_problems if "case" in g]
    if comparison.strict:
        bad += list(comparison.class_changes["case"])
    for case in bad:
        status[case] = "REGRESSION"
    for p in comparison.lost:
        status.setdefault(p["case"], "unchanged")
        if status[p["case"]] != "REGRESSION":
            status[p["case"]] = "lost"
    return status


def check(candidates: list[str], out: Path, cases: str = "*", impl: str = "all", gates=None, builder=None,
          runner=None, log=print, full: bool = False) -> tuple[list[Outcome], int]:
    """Build each candidate's environment, run the same report in it and here (the quick tier, or with ``full`` the
    full one), compare; the outcomes and the command's exit code (the worst: 1, then 6, 4, 3, 0)."""
    from nnparity import impls, regression
    from reports.compare import run as compare_and_write  # drift.md: the report renders what regression found

    builder = builder or build_environment
    runner = runner or functools.partial(run_report, full=full)
    parsed = [(text, parse_candidate(text)) for text in candidates]
    impl_names = [n for n in impls.parse_list(impl) if n != "numpy"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    baseline = out / "baseline"
    log(f"baseline: nnparity report in this environment ({sys.executable}) -> {baseline}")
    code = runner(sys.executable, baseline, cases, impl)
    if code not in (0, 1, 3, 5):
        raise UsageError(f"the baseline report failed (nnparity report exit {code}); run `nnparity report --cases "
                         f"{cases!r} --impl {impl}` here to see why")
    outcomes = []
    for text, pins in parsed:
        slug = re.sub(r"[^A-Za-z0-9.=+-]", "_", text)
        log(f"candidate {text}:")
        try:
            python = builder(pins, impl_names, log)
        except EnvironmentFailed as exc:
            outcomes.append(Outcome(text, EXIT_NO_ENVIRONMENT, f"NO ENVIRONMENT: {exc}", {}))
            log(f"  {outcomes[-1].verdict}")
            continue
        report = out / slug / "report"
        code = runner(python, report, cases, impl)
        if code not in (0, 1, 3, 5):
            outcomes.append(Outcome(text, EXIT_NO_ENVIRONMENT, f"NO REPORT: nnparity report exited {code} in the "
                                                               f"candidate environment ({python})", {}))
            log(f"  {outcomes[-1].verdict}")
            continue
        try:
            comparison, _ = compare_and_write(baseline, report, out / slug / "compare", force=True,
                                              gates=gates or regression.Gates())
        except regression.NotComparable as exc:
            outcomes.append(Outcome(text, EXIT_NOT_COMPARABLE, f"NOT COMPARABLE: {exc}", {}))
            log(f"  {outcomes[-1].verdict}")
            continue
        outcomes.append(Outcome(text, comparison.exit_code, comparison.verdict(), _per_case(comparison)))
        log(f"  {comparison.verdict()} (drift.md: {out / slug / 'compare'})")
    codes = {o.code for o in outcomes}
    worst = next((c for c in (EXIT_REGRESSION, EXIT_NO_ENVIRONMENT, EXIT_NOT_COMPARABLE, EXIT_INCOMPLETE)
                  if c in codes), EXIT_OK)
    return outcomes, worst


def table(outcomes: list[Outcome]) -> str:
    """The case x candidate table (Markdown)."""
    cases = list(dict.fromkeys(case for o in outcomes for case in o.per_case))
    header = "| case | " + " | ".join(o.candidate for o in outcomes) + " |"
    rule = "|---" * (len(outcomes) + 1) + "|"
    rows = [f"| {case} | " + " | ".join(o.per_case.get(case, "—") for o in outcomes) + " |" for case in cases]
    return "\n".join([header, rule] + rows)
