"""``nnparity upgrade-check PIN [PIN ...]``: may I upgrade? For several candidates at once, on this machine or Ray.

For each candidate (pins: ``tensorflow-cpu==2.20.0``, several of one candidate joined by commas:
``torch==2.12.0,numpy==2.3.5``; ``nnparity.candidates``):

1. its environment, prepared **first** by the executor (``nnparity.executors``: built here as a cached virtual
   environment, or left to Ray's ``runtime_env`` on the node that runs it), so that a candidate that cannot be built
   fails before any report runs;
2. the same ``nnparity report`` (same ``--cases``, ``--impl``; the quick tier, or ``--full`` without the self-test
   and catalogue) in the current environment (the baseline: reused from ``<envs>/baselines/`` while the code, the
   lock, the Python and the report's options are the same) and in each candidate's;
3. ``nnparity compare`` of each candidate against the baseline (``nnparity.regression``, its gates; drift.md
   rendered and written by ``reports.compare``);
4. a verdict per candidate and implementation (``SAFE``, ``CHANGED``, ``BLOCKED``: ``verdict_of``) with the first
   divergence, one table (``upgrade.md``, ``verdicts.csv``, ``junit.xml``), one exit code; ``--bisect`` finds the
   first version that blocks.

Everything goes to ``--out`` as one directory written atomically (``nnparity.outdir``): a run stopped half-way
(Ctrl-C, an error) leaves what was there before, and a re-run of the same command replaces its own output.

The environment builder and the report runner are parameters (``check(builder=..., runner=...)``), so the
orchestration is tested without installing anything.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nnparity import candidates as candidates_mod
from nnparity.candidates import LOCK, ROOT, canonical, envs_dir, lock_pins
from nnparity.errors import UsageError

EXIT_OK, EXIT_REGRESSION, EXIT_NOT_COMPARABLE, EXIT_NO_ENVIRONMENT = 0, 1, 4, 6
#: The verdicts, per candidate and implementation: nothing moved; moved, every change within the gates; a quantity
#: failed, drifted or grew beyond the budget, compared less, or could not run (``verdict_of``).
SAFE, CHANGED, BLOCKED = "safe", "changed", "blocked"
#: The code whose change makes a cached baseline report stale (with the lock, the Python and the options).
CODE = ("nnparity", "reference", "reports", "torch_impl", "tf_impl", "jax_impl")


# --------------------------------------------------------------------------- the baseline, reused


def baseline_key(cases: str, impl: str, full: bool) -> str:
    """What a baseline report depends on: the code (every ``.py`` of ``CODE``, and an ``--impl`` file's), the lock,
    this Python and its installed distributions, the machine (host, CPU), the thread policy's variables, and the
    report's options."""
    import platform
    from importlib import metadata

    from nnparity import threads
    from nnparity.environment import cpu_info

    digest = hashlib.sha256()
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(LOCK.read_bytes())
    for part in impl.split(","):  # an implementation given as a file: its code, not its path
        if os.path.isfile(part.strip()):
            digest.update(Path(part.strip()).read_bytes())
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"])
    names = {v for group in threads.VARIABLES.values() for v in group} | {"OPENBLAS_CORETYPE", "NNPARITY_THREADS"}
    variables = [f"{k}={os.environ.get(k, '')}" for k in sorted(names)]
    cpu = cpu_info()
    machine = [platform.node(), platform.machine(), cpu["model"], " ".join(cpu["flags"])]  # a cache shared by hosts
    digest.update("\n".join([sys.version, sys.executable, cases, impl, str(full), *machine, *installed,
                             *variables]).encode())
    return digest.hexdigest()[:16]


def envelope_variables(environ=None) -> dict:
    """The environment of the baseline's envelope run: every initial parameter moved by one ulp
    (``NNPARITY_PERTURB_ULP=1``) at the other thread count (2 where every framework runs on 1, else 1)."""
    from nnparity import threads
    from nnparity.arbiter import PERTURB

    other = 1 if max(threads.policy(environ).values(), default=1) > 1 else 2
    return {PERTURB: "1", threads.OVERRIDE: str(other)}


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
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # Ctrl-C: no half copy left in the cache
        raise


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

    from nnparity.regression import _quantity, growth_of

    ratio, _, judged = growth_of(rows)
    rows = rows.assign(_step=rows["step"].astype("Float64").fillna(float("inf")), _ratio=ratio, _judged=judged)
    row = rows.sort_values("_step", kind="stable").iloc[0]
    step = "" if pd.isna(row["step"]) else f" step {int(row['step'])}"
    shown = pd.notna(row["_ratio"]) and row["change"] != "pass → fail"
    what = "distance from float64" if row["_judged"] else "error"
    growth = f", {what} x{float(row['_ratio']):.3g}" if shown else ""
    cause = f"; known cause: {row['cause']}" if row.get("cause", "") else ""
    return f"{row['case']} {_quantity(row)}{step} ({row['change']}{growth}{cause})"


def verdict_of(comparison) -> tuple[str, dict]:
    """The candidate's verdict and, per implementation, ``(verdict, first divergence)``.  ``BLOCKED``: a row went
    from pass to fail, drifted beyond ``--max-drift``, grew beyond the budget, was compared by the baseline only, or
    the pair could not run in the candidate; the reference's or the data's golden values moved (the ``numpy`` row).
    ``CHANGED``: a row moved beyond the baseline's own envelope (``regression.envelope_band``), within every gate
    or explained by a known change (``nnparity.known_changes``: growth and drift the environments' documented cause
    explains are attributed, not blocking).  ``SAFE``: nothing moved beyond that envelope."""
    import pandas as pd

    drift = comparison.drift
    per_impl = {impl: (SAFE, "") for impl in dict.fromkeys(drift["impl"])}
    for impl, rows in comparison.beyond_envelope.groupby("impl", sort=False):
        per_impl[impl] = (CHANGED, _first(rows))

    def unexplained(rows):  # a known change explains growth and drift (a pass → fail stays blocked)
        return rows[rows["cause"].eq("")]

    blocking = pd.concat([comparison.regressions, unexplained(comparison.drifted), unexplained(comparison.grown),
                          comparison.compared_less] + ([comparison.class_changes] if comparison.strict else []))
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
    from nnparity import impls

    seen = candidates_mod.closure(["nnparity"] + [d for n in impl_names for d in getattr(impls.get(n), "requires", ())])
    unused = [f"{name}=={version}" for name, version in pins.items() if canonical(name) not in seen]
    if not unused:
        return ""
    return (f"{', '.join(unused)}: not exercised: no chosen implementation ({', '.join(impl_names) or 'numpy'}) "
            "nor nnparity imports it, so this report cannot see it change; choose --impl accordingly")


def optimizer_note(pins: dict, impl_names: list[str], cases: str) -> str:
    """A sentence for a pinned package whose optimisers a chosen implementation calls (``Impl.optimizers_from``:
    torch.optim, keras.optimizers, optax) when the chosen cases leave some of its optimisers out: a
    gradient-descent-only case cannot see a change to Adam.  Empty when every optimiser runs, or no pin is one."""
    from nnparity import impls
    from nnparity.spec import OPTIMIZERS

    used = _optimizers_run(cases)
    if used is None:
        return ""  # the report itself says that a pattern matches nothing
    missing = [o for o in OPTIMIZERS if o not in used]
    notes = []
    for name, version in pins.items():
        users = [n for n in impl_names if canonical(getattr(impls.get(n), "optimizers_from", "") or "-")
                 == canonical(name)]
        if users and missing:
            ran = ", ".join(o for o in OPTIMIZERS if o in used) or "none"
            notes.append(f"{name}=={version}: the chosen cases run {' and '.join(users)} with the optimisers "
                         f"{ran} only, so a change to {name}'s {', '.join(missing)} cannot show; add cases that use "
                         f"them (e.g. --cases '*-{missing[-1]}-*')")
    return "; ".join(notes)


@functools.lru_cache(maxsize=8)
def _optimizers_run(cases: str) -> frozenset | None:
    """The optimisers the report's cases for ``--cases`` run (once per pattern, not once per candidate); None when
    the pattern matches nothing."""
    from nnparity.conv_models import ModelCase
    from reports.run import select_cases

    try:
        chosen = select_cases(cases)
    except UsageError:
        return None
    return frozenset({c.optimizer for c in chosen if hasattr(c, "optimizer")}
                     | ({"gd"} if any(isinstance(c, ModelCase) for c in chosen) else set()))


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


def output_of(candidates: list[str], cases: str, impl: str, full: bool, gates=None, strict: bool = False,
              executor: str = "local", bisect: bool = False) -> dict:
    """What an ``--out`` of upgrade-check is of (its marker): the same command, with the same settings, replaces its
    own output without ``--force``."""
    import dataclasses

    from nnparity.regression import Gates

    return {"candidates": list(candidates), "cases": cases, "impl": impl, "tier": "full" if full else "quick",
            "gates": dataclasses.asdict(gates or Gates()), "strict": strict, "executor": executor, "bisect": bisect}


def check(candidates: list[str], out: Path, cases: str = "*", impl: str = "all", gates=None, builder=None,
          runner=None, log=print, full: bool = False, force: bool = False, strict: bool = False,
          reuse_baseline: bool = True, versions=None, executor=None) -> tuple[list[Outcome], int]:
    """Prepare every candidate's environment first (``executor``: ``LocalExecutor(builder, runner)`` by default,
    which builds them here; ``RayExecutor`` leaves it to Ray's nodes), then run the same report here (the baseline,
    reused while ``baseline_key`` is the same) and in each candidate's environment (the quick tier, or with ``full``
    the full one), compare; the outcomes and the command's exit code (the worst: 1, then 6, 4, 0; ``strict``:
    ``CHANGED`` exits 1 too).  Everything is written to ``out`` atomically (``nnparity.outdir``, kind ``upgrade``).
    With ``versions`` (a function: package -> the versions the index offers, ``available_versions``;
    ``--bisect``), a blocked candidate of one package is bisected here: the first version between the lock's and
    the candidate's that blocks (each tried in its own cached environment, its report and comparison in
    ``OUT/<candidate>/bisect/``)."""
    from nnparity import impls, regression
    from nnparity.executors import LocalExecutor
    from nnparity.outdir import atomic_directory

    cacheable = reuse_baseline and runner is None  # a caller's runner (tests) is never served from the cache
    # the baseline's key, now: before an executor changes this process (Ray puts its own packages on sys.path)
    key = baseline_key(cases, impl, full) if cacheable else None
    builder = builder or candidates_mod.build_environment
    runner = runner or functools.partial(candidates_mod.run_report, full=full)
    executor = executor or LocalExecutor(builder, runner)
    parsed = [(text, candidates_mod.parse_candidate(text)) for text in candidates]
    pins_of = dict(parsed)
    impl_names = [n for n in impls.parse_list(impl) if n != "numpy"]
    gates = gates or regression.Gates()
    outcomes: dict[str, Outcome] = {}

    def no_environment(text, exc, folder):
        outcomes[text] = Outcome(text, EXIT_NO_ENVIRONMENT, "no environment", str(exc))
        if exc.log is not None and Path(exc.log).is_file():
            (folder / candidates_mod.slug(text)).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(exc.log, folder / candidates_mod.slug(text) / "pip.log")
        log(f"  NO ENVIRONMENT: {exc}")

    of = output_of(candidates, cases, impl, full, gates, strict, executor.name, versions is not None)
    with atomic_directory(out, force, "upgrade", of=of) as tmp, \
            _closing(executor):
        prepared = executor.prepare(parsed, impl_names, log)  # every environment first: a bad one fails fast
        for text, python in prepared.items():
            if isinstance(python, candidates_mod.EnvironmentFailed):
                no_environment(text, python, tmp)
        prepared = {text: p for text, p in prepared.items() if not isinstance(p, candidates_mod.EnvironmentFailed)}
        executor.start(prepared, cases, impl, full, log)  # Ray's tasks run while the baseline runs here
        baseline, envelope = tmp / "baseline", tmp / "baseline-envelope"
        if prepared:
            _baseline(baseline, cases, impl, runner, key, log)
            _baseline(envelope, cases, impl, runner, key and f"{key}-envelope", log, envelope_variables())
        for text, code, report in executor.results(tmp, log):
            if isinstance(code, candidates_mod.EnvironmentFailed):
                no_environment(text, code, tmp)
                continue
            comparison, failed, problem = _judge(baseline, report, code, gates, envelope)
            if comparison is None:
                outcomes[text] = Outcome(text, EXIT_NO_ENVIRONMENT if failed == "no report" else EXIT_NOT_COMPARABLE,
                                         failed, problem)
                log(f"  {failed.upper()}: {problem}")
                continue
            verdict, per_impl = verdict_of(comparison)
            code = EXIT_REGRESSION if verdict == BLOCKED or (strict and verdict == CHANGED) else EXIT_OK
            notes = [_compared(comparison)] + [n for n in [exercised_note(pins_of[text], impl_names),
                                                           optimizer_note(pins_of[text], impl_names, cases)] if n]
            log(f"  {text}: {verdict.upper()}: {comparison.verdict()}")
            if versions is not None and verdict == BLOCKED:
                blocks = functools.partial(_try_version, folder=report.parent / "bisect", baseline=baseline,
                                           envelope=envelope, executor=executor, cases=cases, impl=impl, full=full,
                                           impl_names=impl_names, gates=gates, log=log)
                notes.append(_bisected(pins_of[text], versions, blocks))
            outcomes[text] = Outcome(text, code, verdict, comparison.verdict(), per_impl, notes)
        ordered = [outcomes[text] for text, _ in parsed]
        (tmp / "verdicts.csv").write_text(matrix_frame(ordered).to_csv(index=False), encoding="utf-8")
        (tmp / "upgrade.md").write_text("# nnparity upgrade-check\n\n" + table(ordered) + "\n", encoding="utf-8")
        (tmp / "junit.xml").write_text(junit(ordered, strict), encoding="utf-8")
    codes = {o.code for o in ordered}
    worst = next((c for c in (EXIT_REGRESSION, EXIT_NO_ENVIRONMENT, EXIT_NOT_COMPARABLE) if c in codes), EXIT_OK)
    return ordered, worst


@contextlib.contextmanager
def _closing(executor):
    try:
        yield executor
    finally:
        executor.close()


def _judge(baseline: Path, report: Path, code, gates, envelope: Path):
    """Compare a candidate's ``report`` (its ``nnparity report`` exit ``code``) with ``baseline`` within the
    baseline's ``envelope`` run, writing drift.md beside it: ``(comparison, "", "")``, or
    ``(None, "no report" | "not comparable", why)``."""
    from nnparity import outdir, regression
    from reports.compare import run as compare_and_write  # drift.md: the report renders what regression found

    if code not in (0, 1, 3, 5):
        return None, "no report", f"nnparity report exited {code} in the candidate environment, leaving no report"
    try:
        outdir.verify(report, "report", "candidate")
    except UsageError as exc:
        return None, "no report", (f"nnparity report exited {code} in the candidate environment without a complete "
                                   f"report ({exc})")
    try:
        comparison, _ = compare_and_write(baseline, report, report.parent / "compare", force=True, gates=gates,
                                          envelope_dir=envelope)
    except (regression.NotComparable, UsageError) as exc:
        return None, "not comparable", str(exc)
    return comparison, "", ""


def _baseline(baseline: Path, cases: str, impl: str, runner, key: str | None, log, env: dict | None = None) -> None:
    """The baseline report in ``baseline`` (with ``env``: its envelope run, ``envelope_variables``): a copy of the
    cached one for ``key`` (``baseline_key``; None: not cached), or run here now (and cached when it ran to the
    end)."""
    what = "baseline" if env is None else "baseline's envelope"
    cached = _cached_baseline(key) if key else None
    if cached is not None:
        log(f"{what}: reused {cached} (the same code, lock, Python and options)")
        shutil.copytree(cached, baseline)
        return
    variables = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    log(f"{what}: nnparity report in this environment ({sys.executable})" + (f" with {variables}" if env else ""))
    code = runner(sys.executable, baseline, cases, impl, env=env)
    if code not in (0, 1, 3, 5):
        command = " ".join(filter(None, [variables, f"nnparity report --cases {cases!r} --impl {impl}"]))
        raise UsageError(f"the {what} report failed (nnparity report exit {code}); run `{command}` here to see why")
    if key and code in (0, 1):
        _keep_baseline(baseline, key)


def _try_version(name: str, version: str, *, folder: Path, baseline: Path, envelope: Path, executor, cases, impl,
                 full, impl_names, gates, log) -> bool:
    """Does the lock with only ``name==version`` block?  Its environment and report on the same ``executor`` as the
    candidates' (here, or a Ray task).  A version whose environment or report cannot be made counts as blocking
    (an upgrade engineer cannot land it either)."""
    text = f"{name}=={version}"
    log(f"  bisect: {text}")
    prepared = executor.prepare([(text, {name: version})], impl_names, log)
    if isinstance(prepared[text], candidates_mod.EnvironmentFailed):
        log(f"    no environment ({prepared[text]}): counted as blocking")
        return True
    executor.start(prepared, cases, impl, full, log)
    for _, code, report in executor.results(folder, log):
        if isinstance(code, candidates_mod.EnvironmentFailed):
            log(f"    no environment ({code}): counted as blocking")
            return True
        comparison, failed, problem = _judge(baseline, report, code, gates, envelope)
        if comparison is None:
            log(f"    {failed} ({problem}): counted as blocking")
            return True
        verdict = verdict_of(comparison)[0]
        log(f"    {verdict}")
        return verdict == BLOCKED
    return True  # no result came back: counted as blocking


def _bisected(pins: dict, versions, blocks) -> str:
    """The bisect's sentence for a blocked candidate (``check(versions=...)``)."""
    if len(pins) != 1:
        return "bisect: a candidate of one package only (this one pins " + ", ".join(pins) + ")"
    (name, bad), = pins.items()
    locked = lock_pins(LOCK.read_text(encoding="utf-8")).get(canonical(name))
    if locked is None:
        return f"bisect: {name} is not in the lock, so there is no baseline version to start from"
    good = locked[1]
    if good == bad:
        return f"bisect: {name}=={bad} is the lock's own version; nothing to bisect (another pin or the code blocks)"
    offered = versions(name)
    if not offered:
        return f"bisect: pip could not list the versions of {name} (pip index versions gave none); nothing bisected"
    path = between(offered, good, bad)
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
