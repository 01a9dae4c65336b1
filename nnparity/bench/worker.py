"""A worker process's entry point (``python -m nnparity.bench --worker SPEC OUT``): one kind of worker, its
result written for the parent."""

from __future__ import annotations

import json
from pathlib import Path

from nnparity.bench.limits import _worker_limits
from nnparity.bench.report_profile import _worker_report_profile
from nnparity.bench.steps import _worker_impl
from nnparity.bench.thread_study import _worker_threads
from nnparity.numbers import json_default


def _worker_main(argv):
    spec, out_path = json.loads(argv[0]), argv[1]
    kind = spec["kind"]
    result = {"impl": _worker_impl, "limits": _worker_limits, "report-profile": _worker_report_profile,
              "threads": _worker_threads}[kind](spec)
    # to the parent, which reads NaN back as NaN (bench.json is written strict, by write_outputs)
    Path(out_path).write_text(json.dumps(result, default=json_default), encoding="utf-8")
    return 0
