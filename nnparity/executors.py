"""Where ``upgrade-check`` runs each candidate's report: an executor per engine, one interface.

A task is one candidate environment's report: the candidate's pins, the report's ``--cases``, ``--impl`` and tier
go in; the report directory's files (``details.csv``, ``trajectories.csv``, ``env.json``, ... : its result frames,
as bytes) come out and are written by the caller, then compared with the baseline as usual.

* ``LocalExecutor`` (the default): the candidate environment is a virtual environment on this machine
  (``nnparity.candidates.build_environment``, cached), every one built before any report runs, and the report runs in
  it as a local process.
* ``RayExecutor`` (``--executor ray``, ``--address`` for a cluster; the ``cluster`` extra installs Ray): each task
  is a Ray task whose ``runtime_env`` installs the candidate's pins with pip on the node that runs it (Ray clones
  the driver's environment and installs on top; the node caches it), with nnparity's code as the job's
  ``working_dir``.  What crosses the wire: the pins, the options and the code in; the report's files out.

Both prepare the environments (``prepare``: built here, or Ray connected), start the reports (``start``: Ray's
tasks are submitted before the baseline runs here) and yield ``(candidate, exit code of its report or an
EnvironmentFailed, report directory)`` as each finishes (``results``).
Ray is imported only by ``RayExecutor``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from nnparity import candidates
from nnparity.errors import UsageError

#: Left out of the code a Ray task receives (its ``working_dir``): environments, outputs, the repository's history.
RAY_EXCLUDES = ["/.venv", "/.git", "/reports/latest", "/bench", "/explain", "/upgrade", "/out", "/*.egg-info",
                ".pytest_cache", "__pycache__"]


class LocalExecutor:
    """Candidate environments as cached virtual environments here; reports as local processes."""

    name = "local"

    def __init__(self, builder, runner):
        """``builder(pins, impl_names, log)`` -> the candidate's Python (``candidates.build_environment``);
        ``runner(python, out, cases, impl)`` -> the exit code of its report (``candidates.run_report``)."""
        self.builder, self.runner = builder, runner

    def close(self) -> None:
        pass

    def prepare(self, parsed: list[tuple[str, dict]], impl_names: list[str], log) -> dict:
        """Build every candidate's environment now (the caller runs the baseline after): ``{candidate: python or
        EnvironmentFailed}``."""
        prepared = {}
        for text, pins in parsed:
            log(f"candidate {text}: environment")
            try:
                prepared[text] = self.builder(pins, impl_names, log)
            except candidates.EnvironmentFailed as exc:
                prepared[text] = exc
        return prepared

    def start(self, prepared: dict, cases: str, impl: str, full: bool, log) -> None:
        """Nothing starts before the baseline: the reports run here, one after another (``results``)."""
        self.work = prepared, cases, impl

    def results(self, folder: Path, log):
        """``(candidate, report's exit code, report directory)`` for every candidate with an environment."""
        prepared, cases, impl = self.work
        for text, python in prepared.items():
            if isinstance(python, Exception):
                continue
            log(f"candidate {text}: report")
            report = folder / candidates.slug(text) / "report"
            yield text, self.runner(python, report, cases, impl), report


class RayExecutor:
    """Each candidate's report as a Ray task in a ``runtime_env`` that pip-installs the candidate's pins."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address, self.num_cpus, self.started, self.temp_dir, self.running = address, num_cpus, False, None, {}

    def _ray(self):
        """Ray, connected: to ``address``, or a local Ray started now (and ended by ``close``).  The job's
        ``working_dir`` is nnparity's code, uploaded to every node that runs a task."""
        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs Ray, which is not installed; install the cluster extra: "
                             "pip install -c constraints.txt -e '.[cluster]'") from None
        if not ray.is_initialized():
            job = {"working_dir": str(candidates.ROOT), "excludes": RAY_EXCLUDES}
            if self.address:
                ray.init(address=self.address, runtime_env=job, log_to_driver=False)
            else:  # its session files (a clone of this environment per runtime_env: GBs) go with it at close()
                self.temp_dir = tempfile.mkdtemp(prefix="nnparity-ray-")
                ray.init(num_cpus=self.num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         runtime_env=job, _temp_dir=self.temp_dir)
            self.started = True
        return ray

    def close(self) -> None:
        """End the Ray this executor started (a cluster it connected to keeps running)."""
        if self.started:
            import ray

            ray.shutdown()
            self.started = False
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def prepare(self, parsed: list[tuple[str, dict]], impl_names: list[str], log) -> dict:
        """Nothing is built here: each task's node builds its environment (``runtime_env``) when it runs it."""
        self._ray()
        log(f"ray: {len(parsed)} candidate(s), each environment built by Ray's runtime_env on its node")
        return {text: (pins, impl_names) for text, pins in parsed}

    def start(self, prepared: dict, cases: str, impl: str, full: bool, log) -> None:
        """Submit every candidate's task now, before the baseline runs here: the nodes build the environments
        meanwhile, and one that cannot be built fails early."""
        ray = self._ray()
        task = ray.remote(num_cpus=1)(candidate_report)
        self.running = {}
        for text, (pins, impl_names) in prepared.items():
            env = runtime_env(pins, impl_names)
            self.running[task.options(runtime_env=env).remote(cases, impl, full)] = text
            log(f"candidate {text}: submitted to Ray ({len(env['pip']['packages'])} pinned requirements)")

    def results(self, folder: Path, log):
        """``(candidate, report's exit code or EnvironmentFailed, report directory)`` as each task finishes (its
        files written under ``folder``); a task that fails (its environment, its worker, Ray) is an
        ``EnvironmentFailed`` or exit code -1.  Ended early (Ctrl-C), the tasks still running are cancelled."""
        ray = self._ray()
        running, started = self.running, time.monotonic()
        try:
            while running:
                done, _ = ray.wait(list(running), num_returns=1, timeout=candidates.HEARTBEAT)
                if not done:  # Ray builds the environments and runs the reports: say it is still working
                    log(f"ray: {len(running)} candidate(s) still running after {time.monotonic() - started:.0f} s "
                        f"(environments by runtime_env, then the reports): {', '.join(running.values())}")
                    continue
                text = running.pop(done[0])
                report = folder / candidates.slug(text) / "report"
                try:
                    code, files = ray.get(done[0])
                except ray.exceptions.RuntimeEnvSetupError as exc:
                    yield text, candidates.EnvironmentFailed(f"Ray's runtime_env: {candidates.pip_reason(str(exc))}"), \
                        report
                    continue
                except ray.exceptions.RayError as exc:  # the task raised, its worker died, Ray lost it
                    log(f"candidate {text}: the Ray task failed: {str(exc).strip().splitlines()[0][:300]}")
                    yield text, -1, report
                    continue
                for name, content in files.items():
                    path = report / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
                log(f"candidate {text}: report back from Ray ({len(files)} files)")
                yield text, code, report
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
            running.clear()


def runtime_env(pins: dict, impl_names: list[str]) -> dict:
    """The Ray ``runtime_env`` of a candidate: pip installs what ``build_environment`` would, each requirement and
    each of their dependencies at the candidate lock's version (the lock with the pins changed).  nnparity's code
    is the job's ``working_dir`` (``RayExecutor``)."""
    locked = candidates.lock_pins(candidates.candidate_lock(candidates.LOCK.read_text(encoding="utf-8"), pins))
    wanted = candidates.requirements(impl_names, pins)
    names = [re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0] for requirement in wanted]
    packages = [f"{locked[c][0]}=={locked[c][1]}" if (c := candidates.canonical(n)) in locked else r
                for n, r in zip(names, wanted)]
    # their dependencies too, at the candidate lock's versions, as far as this environment knows the tree (pip's
    # runtime_env takes no constraints file): nothing floats to whatever the index offers that day
    chosen = {candidates.canonical(n) for n in names}
    packages += [f"{locked[c][0]}=={locked[c][1]}" for c in sorted(candidates.closure(names) - chosen) if c in locked]
    # the task holds one CPU of Ray's (ray.remote(num_cpus=1)): its report runs its pieces in one process
    return {"pip": {"packages": packages, "pip_check": False}, "env_vars": {"NNPARITY_JOBS": "1"}}


def candidate_report(cases: str, impl: str, full: bool) -> tuple[int, dict]:
    """The Ray task: ``nnparity report`` with this worker's Python (the candidate environment) into a temporary
    directory; its exit code and its files as ``{relative path: bytes}``."""
    with tempfile.TemporaryDirectory(prefix="nnparity-ray-") as directory:
        out = Path(directory) / "report"
        code = candidates.run_report(sys.executable, out, cases, impl, full)
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} \
            if out.is_dir() else {}
    return code, files
