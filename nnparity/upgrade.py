"""``nnparity upgrade-check PIN [PIN ...]``: the upgrade question in one command, for several candidates at once.

For each candidate pin (``tensorflow-cpu==2.20.0``; several pins of one candidate joined by a comma:
``torch==2.12.0,numpy==2.3.5``):

1. the candidate environment, built **first** (a candidate that cannot be built fails before any report runs): the
   lock file (``constraints.txt``) with only those pins changed (``candidate_lock``), a virtual environment built
   from it (``build_environment``: ``python -m venv``, then ``pip install -c <candidate lock>`` of nnparity's own
   requirements, the frameworks of ``--impl`` and the pinned packages, then nnparity itself with ``--no-deps -e``:
   pyproject's ranges do not get in the way of a candidate outside them), cached in
   ``~/.cache/nnparity/envs/<SHA-256 of what it installs>`` (``NNPARITY_ENVS`` overrides the folder) and reused
   while the lock and the pins are the same.  pip's whole output goes to ``<key>.log`` beside it (a line on the
   terminal every ``HEARTBEAT`` seconds says it is still working); a failed build names the conflict pip found;
2. the same ``nnparity report`` (same ``--cases``, ``--impl``; the quick tier, or ``--full`` without the self-test
   and catalogue) in the current environment (the baseline: reused from ``<envs>/baselines/`` while the code, the
   lock, the Python and the report's options are the same) and in each candidate's;
3. ``nnparity compare`` of each candidate against the baseline (``nnparity.regression``, its gates; drift.md
   rendered and written by ``reports.compare``);
4. a verdict per candidate and implementation (``SAFE``, ``CHANGED``, ``BLOCKED``), one table, one exit code.

Everything goes to ``--out`` as one directory written atomically (``nnparity.outdir``): a run stopped half-way
(Ctrl-C, an error) leaves what was there before, and a re-run of the same command replaces its own output.

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
import time
from dataclasses import dataclass, field
from pathlib import Path

from nnparity.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
EXIT_OK, EXIT_REGRESSION, EXIT_NOT_COMPARABLE, EXIT_NO_ENVIRONMENT = 0, 1, 4, 6
#: The verdicts, per candidate and implementation: nothing moved; moved, every change within the gates; a quantity
#: failed, drifted or grew beyond the budget, compared less, or could not run (``verdict_of``).
SAFE, CHANGED, BLOCKED = "safe", "changed", "blocked"
#: Seconds between the terminal's lines while pip works (its whole output goes to the build's log).
HEARTBEAT = 20
#: The code whose change makes a cached baseline report stale (with the lock, the Python and the options).
CODE = ("nnparity", "reference", "reports", "torch_impl", "tf_impl", "jax_impl")
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


def lock_pins(text: str) -> dict:
    """A lock file's pins: canonical name -> (name as written, version)."""
    found = {}
    for line in text.splitlines():
        match = _PIN.match(line.split("#", 1)[0].split(";", 1)[0].strip())
        if match:
            found[_canonical(match.group(1))] = (match.group(1), match.group(2))
    return found


def changed_pins(old_lock: str, new_lock: str) -> str:
    """One candidate (``name==version`` joined by commas) of every pin of ``new_lock`` that ``old_lock`` pins
    otherwise or not at all: what a pull request that edits the lock (Dependabot, Renovate) upgrades.  ``""`` when
    nothing changed."""
    old, new = lock_pins(old_lock), lock_pins(new_lock)
    return ",".join(f"{name}=={version}" for key, (name, version) in new.items()
                    if old.get(key, (None, None))[1] != version)


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
    not cached yet).  pip's output goes to ``<envs>/<key>.log``; a failed install, or any interruption, removes the
    half-built environment and raises (``EnvironmentFailed`` names the conflict and the log)."""
    lock_text = candidate_lock(LOCK.read_text(encoding="utf-8"), pins)
    wanted = requirements(impl_names, pins)
    key = environment_key(lock_text, wanted)
    target = envs_dir() / key
    python = target / "bin" / "python"
    if (target / ".complete").is_file():
        log(f"  environment cached: {target}")
        return python
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    build_log = target.parent / f"{key}.log"
    build_log.write_text(f"# nnparity upgrade-check: {' '.join(f'{k}=={v}' for k, v in pins.items())}\n",
                         encoding="utf-8")
    log(f"  building the environment in {target} (pip; minutes the first time; its output: {build_log}) ...")
    started = time.monotonic()
    try:
        _pip([sys.executable, "-m", "venv", str(target)], "python -m venv", build_log, log)
        (target / "constraints.txt").write_text(lock_text, encoding="utf-8")
        _pip([str(python), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
              "-c", str(target / "constraints.txt"), *wanted], "pip install", build_log, log)
        _pip([str(python), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
              "--no-deps", "-e", str(ROOT)], "pip install -e", build_log, log)
    except BaseException:  # a failure, or Ctrl-C: no half-built environment is left to be mistaken for one
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / ".complete").write_text(" ".join(wanted) + "\n", encoding="utf-8")
    log(f"  built in {time.monotonic() - started:.0f} s")
    return python


class EnvironmentFailed(Exception):
    """A candidate environment could not be built (exit 6 for that candidate); ``log``: pip's whole output."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


def _pip(command: list[str], what: str, build_log: Path, log) -> None:
    """Run ``command`` with its output appended to ``build_log``, a line to ``log`` every ``HEARTBEAT`` seconds
    (what pip is doing); ``EnvironmentFailed`` with pip's reason if it fails.  Ctrl-C ends it first."""
    with open(build_log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started = next_line = time.monotonic()
        try:
            while process.poll() is None:
                time.sleep(0.2)
                if time.monotonic() - next_line >= HEARTBEAT:
                    next_line = time.monotonic()
                    log(f"  {what}: still working after {next_line - started:.0f} s "
                        f"({_last_line(build_log) or 'no output yet'})")
        except BaseException:
            process.kill()
            process.wait()
            raise
    if process.returncode:
        raise EnvironmentFailed(f"{what} failed: {pip_reason(build_log.read_text(encoding='utf-8', errors='replace'))}"
                                f" (pip's output: {build_log})", build_log)


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip() and not line.startswith(("$", "#"))]
    return lines[-1][:100] if lines else ""


def pip_reason(output: str) -> str:
    """pip's reason for a failed install, on one line: the conflict it found (who needs what: pip's "The conflict is
    caused by:" lines) when it is a resolution failure, else its first ``ERROR`` line."""
    lines = [line.strip() for line in output.splitlines()]
    if "The conflict is caused by:" in lines:
        first = lines.index("The conflict is caused by:") + 1
        cause = []
        for line in lines[first:]:
            if not line:
                break
            cause.append(line)
        if cause:
            return "conflicting requirements: " + "; ".join(cause)
    errors = [line for line in lines if line.startswith("ERROR")]
    return errors[0] if errors else next((line for line in reversed(lines) if line), "no output")


def run_report(python: Path | str, out: Path, cases: str, impl: str, full: bool = False) -> int:
    """``nnparity report`` with ``python`` into ``out`` in the quick tier, or with ``full`` the full one without its
    self-test and catalogue (its exit code: 0, 1, 3 and 5 leave a report)."""
    command = [str(python), "-m", "nnparity", "report", "--out", str(out), "--force", "--cases", cases,
               "--impl", impl] + (["--full", "--no-selftest", "--no-catalogue"] if full else [])
    env = dict(os.environ, CI="1", PYTHONPATH=str(ROOT))  # its progress: one line per case, on our stderr
    err = sys.stderr.fileno()
    return subprocess.run(command, env=env, cwd=str(ROOT), stdout=err, stderr=err).returncode


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]", "_", text)


# --------------------------------------------------------------------------- the baseline, reused


def baseline_key(cases: str, impl: str, full: bool) -> str:
    """What a baseline report depends on: the code (every ``.py`` of ``CODE``), the lock, this Python and its
    installed distributions, the thread policy's variables, and the report's options."""
    from importlib import metadata

    from nnparity import threads

    digest = hashlib.sha256()
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(LOCK.read_bytes())
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"])
    names = {v for group in threads.VARIABLES.values() for v in group} | {"OPENBLAS_CORETYPE", "NNPARITY_THREADS"}
    variables = [f"{k}={os.environ.get(k, '')}" for k in sorted(names)]
    digest.update("\n".join([sys.version, sys.executable, cases, impl, str(full), *installed, *variables]).encode())
    return digest.hexdigest()[:16]


def _cached_baseline(key: str) -> Path | None:
    from nnparity import outdir

    cached = envs_dir() / "baselines" / key
    try:
        outdir.verify(cached, "report", "baseline")
    except Exception:  # noqa: BLE001 - absent, half-copied or altered: not reused
        return None
    return cached


def _keep_baseline(report: Path, key: str) -> None:
    """Copy a finished baseline report into the cache (a sibling first, renamed into place: never half a copy)."""
    target = envs_dir() / "baselines" / key
    partial = target.with_name(f".partial-{key}-{os.getpid()}")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(report, partial)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(partial, target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # a cache that cannot be written costs a re-run, nothing else


# --------------------------------------------------------------------------- verdicts


@dataclass
class Outcome:
    candidate: str
    code: int
    verdict: str  # SAFE, CHANGED, BLOCKED, or "no environment" / "no report" / "not comparable"
    summary: str  # one line: compare's verdict, or why there is none
    per_impl: dict = field(default_factory=dict)  # implementation -> (verdict, first divergence or "")
    notes: list = field(default_factory=list)  # what was compared; a pinned package no chosen case exercises


def _first(rows) -> str:
    """The earliest row (by step; rows without a step last) as ``case quantity step N (what changed)``."""
    import pandas as pd

    from nnparity.regression import _quantity

    rows = rows.assign(_step=rows["step"].astype("Float64").fillna(float("inf")))
    row = rows.sort_values("_step", kind="stable").iloc[0]
    step = "" if pd.isna(row["step"]) else f" step {int(row['step'])}"
    ratio = row.get("error_ratio")
    shown = ratio is not None and pd.notna(ratio) and row["change"] != "pass → fail"
    growth = f", error x{float(ratio):.3g}" if shown else ""
    return f"{row['case']} {_quantity(row)}{step} ({row['change']}{growth})"


def verdict_of(comparison) -> tuple[str, dict]:
    """The candidate's verdict and, per implementation, ``(verdict, first divergence)``.  ``BLOCKED``: a row went
    from pass to fail, drifted beyond ``--max-drift``, grew beyond the budget, was compared by the baseline only, or
    the pair could not run in the candidate; the reference's or the data's golden values moved (the ``numpy`` row).
    ``CHANGED``: a row moved, within every gate.  ``SAFE``: nothing moved."""
    import pandas as pd

    drift = comparison.drift
    per_impl = {impl: (SAFE, "") for impl in dict.fromkeys(drift["impl"])}
    for impl, rows in comparison.changed.groupby("impl", sort=False):
        per_impl[impl] = (CHANGED, _first(rows))
    blocking = pd.concat([comparison.regressions, comparison.drifted, comparison.grown, comparison.compared_less]
                         + ([comparison.class_changes] if comparison.strict else []))
    blocked = {}
    for impl, rows in blocking.groupby("impl", sort=False):
        blocked[impl] = _first(rows)
    for pair in comparison.pair_regressions + comparison.lost:
        blocked.setdefault(pair["impl"], f"{pair['case']}: {pair['baseline']} → {pair['candidate']}")
    for finding in comparison.golden_problems:
        blocked.setdefault("numpy", finding["text"])
    for impl, first in blocked.items():
        per_impl[impl] = (BLOCKED, first)
    verdicts = {v for v, _ in per_impl.values()}
    return (BLOCKED if BLOCKED in verdicts else CHANGED if CHANGED in verdicts else SAFE), per_impl


def exercised_note(pins: dict, impl_names: list[str]) -> str:
    """A sentence naming the pinned packages that nothing the report runs imports (no chosen implementation's
    framework needs them, directly or through its dependencies, nor does nnparity): the report cannot see them
    change.  Empty when every pin is exercised."""
    from importlib import metadata

    from nnparity import impls

    seen, todo = set(), ["nnparity"] + [d for n in impl_names for d in getattr(impls.get(n), "requires", ())]
    while todo:
        name = _canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    unused = [f"{name}=={version}" for name, version in pins.items() if _canonical(name) not in seen]
    if not unused:
        return ""
    return (f"{', '.join(unused)}: not exercised: no chosen implementation ({', '.join(impl_names) or 'numpy'}) "
            "nor nnparity imports it, so this report cannot see it change; choose --impl accordingly")


def _compared(comparison) -> str:
    pairs = comparison.drift[["case", "impl"]].drop_duplicates()
    return (f"compared {len(comparison.drift):,} rows: {pairs['case'].nunique()} cases x "
            f"{pairs['impl'].nunique()} implementations ({', '.join(dict.fromkeys(pairs['impl']))})")


# --------------------------------------------------------------------------- bisect


def available_versions(name: str) -> list[str]:
    """The versions of ``name`` the package index offers (``pip index versions``); ``[]`` if pip cannot say."""
    done = subprocess.run([sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check"],
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return []


def between(versions: list[str], good: str, bad: str) -> list[str]:
    """The final releases strictly between ``good`` and ``bad``, in order from ``good`` to ``bad`` (a downgrade
    is bisected downwards)."""
    from packaging.version import InvalidVersion, Version

    low, high = sorted([Version(good), Version(bad)])
    inside = []
    for text in versions:
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if low < version < high and not version.is_prerelease:
            inside.append(version)
    inside = sorted(set(inside), reverse=Version(bad) < Version(good))
    return [str(v) for v in inside]


def bisect(path: list[str], blocks) -> tuple[int, list]:
    """The first version of ``path`` (ordered from the good end to the bad end, both ends excluded: the baseline
    does not block, the candidate does) for which ``blocks(version)`` is true, as an index (``len(path)``: the
    candidate itself is the first), assuming that once a version blocks every later one does; and the versions
    tried, with their answers, in order."""
    low, high, tried = -1, len(path), []  # path[low] does not block (-1: the baseline), path[high] does
    while high - low > 1:
        middle = (low + high) // 2
        blocked = bool(blocks(path[middle]))
        tried.append((path[middle], blocked))
        if blocked:
            high = middle
        else:
            low = middle
    return high, tried


def output_of(candidates: list[str], cases: str, impl: str, full: bool) -> dict:
    """What an ``--out`` of upgrade-check is of (its marker): the same command replaces its own output."""
    return {"candidates": list(candidates), "cases": cases, "impl": impl, "tier": "full" if full else "quick"}


def check(candidates: list[str], out: Path, cases: str = "*", impl: str = "all", gates=None, builder=None,
          runner=None, log=print, full: bool = False, force: bool = False, strict: bool = False,
          reuse_baseline: bool = True, versions=None) -> tuple[list[Outcome], int]:
    """Build every candidate's environment first, then run the same report here (the baseline, reused while
    ``baseline_key`` is the same) and in each candidate's (the quick tier, or with ``full`` the full one), compare;
    the outcomes and the command's exit code (the worst: 1, then 6, 4, 0; ``strict``: ``CHANGED`` exits 1 too).
    Everything is written to ``out`` atomically (``nnparity.outdir``, kind ``upgrade``).  With ``versions`` (a
    function: package -> the versions the index offers, ``available_versions``; ``--bisect``), a blocked
    candidate of one package is bisected: the first version between the lock's and the candidate's that blocks
    (each tried in its own cached environment, its report and comparison in ``OUT/<candidate>/bisect/``)."""
    from nnparity import impls, regression
    from nnparity.outdir import atomic_directory
    from reports.compare import run as compare_and_write  # drift.md: the report renders what regression found

    builder = builder or build_environment
    runner = runner or functools.partial(run_report, full=full)
    parsed = [(text, parse_candidate(text)) for text in candidates]
    impl_names = [n for n in impls.parse_list(impl) if n != "numpy"]
    of = output_of(candidates, cases, impl, full)
    outcomes: dict[str, Outcome] = {}
    with atomic_directory(out, force, "upgrade", of=of) as tmp:
        pythons = {}
        for text, pins in parsed:  # every environment first: a candidate that cannot be built fails fast
            log(f"candidate {text}: environment")
            try:
                pythons[text] = builder(pins, impl_names, log)
            except EnvironmentFailed as exc:
                outcomes[text] = Outcome(text, EXIT_NO_ENVIRONMENT, "no environment", str(exc))
                if exc.log is not None and Path(exc.log).is_file():
                    (tmp / _slug(text)).mkdir(exist_ok=True)
                    shutil.copyfile(exc.log, tmp / _slug(text) / "pip.log")
                log(f"  NO ENVIRONMENT: {exc}")
        baseline = tmp / "baseline"
        if pythons:
            key = baseline_key(cases, impl, full) if reuse_baseline else None
            cached = _cached_baseline(key) if key else None
            if cached is not None:
                log(f"baseline: reused {cached} (the same code, lock, Python and options)")
                shutil.copytree(cached, baseline)
            else:
                log(f"baseline: nnparity report in this environment ({sys.executable})")
                code = runner(sys.executable, baseline, cases, impl)
                if code not in (0, 1, 3, 5):
                    raise UsageError(f"the baseline report failed (nnparity report exit {code}); run `nnparity "
                                     f"report --cases {cases!r} --impl {impl}` here to see why")
                if key and code in (0, 1):
                    _keep_baseline(baseline, key)
        for text, pins in parsed:
            if text not in pythons:
                continue
            slug = _slug(text)
            log(f"candidate {text}: report")
            report = tmp / slug / "report"
            code = runner(pythons[text], report, cases, impl)
            if code not in (0, 1, 3, 5):
                outcomes[text] = Outcome(text, EXIT_NO_ENVIRONMENT, "no report", f"nnparity report exited {code} in "
                                                                                 f"the candidate environment")
                log(f"  NO REPORT: {outcomes[text].summary}")
                continue
            try:
                comparison, _ = compare_and_write(baseline, report, tmp / slug / "compare", force=True,
                                                  gates=gates or regression.Gates())
            except regression.NotComparable as exc:
                outcomes[text] = Outcome(text, EXIT_NOT_COMPARABLE, "not comparable", str(exc))
                log(f"  NOT COMPARABLE: {exc}")
                continue
            verdict, per_impl = verdict_of(comparison)
            code = EXIT_REGRESSION if verdict == BLOCKED or (strict and verdict == CHANGED) else EXIT_OK
            notes = [_compared(comparison)] + [n for n in [exercised_note(pins, impl_names)] if n]
            log(f"  {verdict.upper()}: {comparison.verdict()}")
            if versions is not None and verdict == BLOCKED:
                blocks = functools.partial(_try_version, folder=tmp / slug / "bisect", baseline=baseline,
                                           builder=builder, runner=runner, cases=cases, impl=impl,
                                           impl_names=impl_names, gates=gates or regression.Gates(), log=log)
                notes.append(_bisected(pins, versions, blocks))
            outcomes[text] = Outcome(text, code, verdict, comparison.verdict(), per_impl, notes)
        ordered = [outcomes[text] for text, _ in parsed]
        (tmp / "verdicts.csv").write_text(matrix_frame(ordered).to_csv(index=False), encoding="utf-8")
        (tmp / "upgrade.md").write_text("# nnparity upgrade-check\n\n" + table(ordered) + "\n", encoding="utf-8")
        (tmp / "junit.xml").write_text(junit(ordered, strict), encoding="utf-8")
    codes = {o.code for o in ordered}
    worst = next((c for c in (EXIT_REGRESSION, EXIT_NO_ENVIRONMENT, EXIT_NOT_COMPARABLE) if c in codes), EXIT_OK)
    return ordered, worst


def _try_version(name: str, version: str, *, folder: Path, baseline: Path, builder, runner, cases, impl, impl_names,
                 gates, log) -> bool:
    """Does the lock with only ``name==version`` block?  A version whose environment or report cannot be made
    counts as blocking (an upgrade engineer cannot land it either)."""
    from nnparity import regression
    from reports.compare import run as compare_and_write

    log(f"  bisect: {name}=={version}")
    try:
        python = builder({name: version}, impl_names, log)
    except EnvironmentFailed as exc:
        log(f"    no environment ({exc}): counted as blocking")
        return True
    report = folder / _slug(f"{name}=={version}") / "report"
    if runner(python, report, cases, impl) not in (0, 1, 3, 5):
        log("    no report: counted as blocking")
        return True
    try:
        comparison, _ = compare_and_write(baseline, report, report.parent / "compare", force=True, gates=gates)
    except regression.NotComparable as exc:
        log(f"    not comparable ({exc}): counted as blocking")
        return True
    verdict = verdict_of(comparison)[0]
    log(f"    {verdict}")
    return verdict == BLOCKED


def _bisected(pins: dict, versions, blocks) -> str:
    """The bisect's sentence for a blocked candidate (``check(versions=...)``)."""
    if len(pins) != 1:
        return "bisect: a candidate of one package only (this one pins " + ", ".join(pins) + ")"
    (name, bad), = pins.items()
    locked = lock_pins(LOCK.read_text(encoding="utf-8")).get(_canonical(name))
    if locked is None:
        return f"bisect: {name} is not in the lock, so there is no baseline version to start from"
    good = locked[1]
    path = between(versions(name), good, bad)
    if not path:
        return f"bisect: the index offers no release between {name}=={good} and {name}=={bad}: {bad} is the first"
    first, tried = bisect(path, functools.partial(blocks, name))
    found = path[first] if first < len(path) else bad
    last_good = path[first - 1] if first > 0 else good
    steps = ", ".join(f"{v} {'blocked' if b else 'not blocked'}" for v, b in tried)
    return (f"bisect: the first version that blocks is {name}=={found} (the last that does not: {last_good}); "
            f"tried {steps}")


def matrix_frame(outcomes: list[Outcome]):
    """Candidate x implementation: the verdict and the first divergence (one row, implementation ``(all)``, for a
    candidate without a comparison)."""
    import pandas as pd

    rows = []
    for o in outcomes:
        if not o.per_impl:
            rows.append(dict(candidate=o.candidate, implementation="(all)", verdict=o.verdict,
                             first_divergence=o.summary))
        for impl, (verdict, first) in o.per_impl.items():
            rows.append(dict(candidate=o.candidate, implementation=impl, verdict=verdict, first_divergence=first))
    return pd.DataFrame(rows, columns=["candidate", "implementation", "verdict", "first_divergence"])


def junit(outcomes: list[Outcome], strict: bool = False) -> str:
    """JUnit XML for a CI job: a test per candidate and implementation, failed when blocked (``strict``: or changed),
    an error when the candidate has no environment, report or comparison."""
    from xml.sax.saxutils import quoteattr

    frame = matrix_frame(outcomes)
    failing = {BLOCKED} | ({CHANGED} if strict else set())
    cases, failures, errors = [], 0, 0
    for r in frame.itertuples():
        name = quoteattr(f"{r.candidate} {r.implementation}")
        message = quoteattr(f"{r.verdict}: {r.first_divergence}" if r.first_divergence else r.verdict)
        if r.verdict in failing:
            failures += 1
            body = f"<failure message={message}/>"
        elif r.verdict not in (SAFE, CHANGED):
            errors += 1
            body = f"<error message={message}/>"
        else:
            body = f"<system-out>{r.verdict}</system-out>"
        cases.append(f'  <testcase classname="nnparity.upgrade-check" name={name}>{body}</testcase>')
    head = (f'<testsuite name="nnparity upgrade-check" tests="{len(cases)}" failures="{failures}" '
            f'errors="{errors}">')
    return "\n".join(['<?xml version="1.0" encoding="utf-8"?>', head, *cases, "</testsuite>"]) + "\n"


def table(outcomes: list[Outcome]) -> str:
    """The candidate x implementation table (Markdown), the verdict of each, and under it each candidate's notes."""
    frame = matrix_frame(outcomes)
    lines = ["| candidate | implementation | verdict | first divergence |", "|---|---|---|---|"]
    lines += [f"| {r.candidate} | {r.implementation} | {r.verdict} | {r.first_divergence or '—'} |"
              for r in frame.itertuples()]
    notes = [f"- {o.candidate}: {note}" for o in outcomes for note in o.notes]
    return "\n".join(lines + ([""] + notes if notes else []))
