"""pandas turns comparisons into reports people read and machines diff.

``run_report`` runs a report from Python (what ``nnparity report`` does), ``write_report`` writes one from
comparison rows you already have, ``summarize`` folds those rows into one per case x implementation.

Each is imported when first asked for (``from reports import run_report``): importing ``reports.run`` alone
imports no pandas, so that ``nnparity report`` refuses a bad ``--out`` before anything heavy loads."""

__all__ = ["ReportResult", "run_report", "summarize", "write_report"]


def __getattr__(name):
    if name in ("summarize", "write_report"):
        from reports import build

        return getattr(build, name)
    if name in ("ReportResult", "run_report"):
        from reports import run

        return getattr(run, name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
