"""``report.html``: the report as one self-contained page.

pandas ``Styler`` tables (pass/fail coloured), the figures embedded as
``data:image/png;base64`` URIs, inline CSS, no script, nothing fetched from
anywhere: the file can be mailed, attached to a CI run or opened offline.
The page's skeleton and CSS are template files (``reports/templates/report.html.j2``, ``report.css``).
Nothing here imports a framework.
"""

from __future__ import annotations

import base64
import functools
import html
import math
import re

import pandas as pd
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from nnparity.numbers import jsonable, sci
from reports.margin import MARGIN, PHASES, impl_table
from reports.plots import layer_columns

PASS_BG, FAIL_BG, UNAVAILABLE_BG = "#d9f2d9", "#f8d0d0", "#fde8c4"

CAPTIONS = {
    "bound_ratio_vs_step.png": "The cost's difference from the reference divided by its limit at every step (the "
                               "bound ratio; float64: rel err / 1e-10), log scale: the red line at 1 is the limit, "
                               "the distance below it the margin. Float32 steps after step 1 (shaded) are judged by "
                               "the float64 arbiter: the distance from the float64 run over its limit (8 times that "
                               "of honest float32 runs). Exact zeros are drawn on the dotted line marked '= 0'.",
    "trajectory_differences.png": "|J_impl − J_ref| / |J_ref| at every step, log scale: where and how fast each "
                                  "implementation's trajectory leaves the reference's (exact zeros on the dotted "
                                  "line marked '= 0').",
    "bound_ratio_heatmap.png": "The worst error / limit over every gated row of each case × implementation, the "
                               "value in each cell; grey: the pair did not run.",
}

#: A table with more rows than this goes behind a closed <details> (the CSVs hold every row).
LONG_TABLE = 12

#: The page's skeleton, a template file of this package (``reports/templates/``, read through the package's loader:
#: package data, found wherever the package is installed, at no path of ours); it includes the styles, ``report.css``.
PAGE = "report.html.j2"


@functools.cache
def templates() -> Environment:
    """The page's Jinja environment: ``reports/templates/`` through ``PackageLoader``, autoescaped (the tables and
    prose built here arrive as ``Markup``)."""
    return Environment(loader=PackageLoader("reports", "templates"), autoescape=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _inline_markdown(text: str) -> Markup:
    """``**bold**`` and ```code``` of the markdown report's prose, the rest escaped."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
    return Markup(escaped)


def _status_colour(status: str) -> str:
    if status == "PASS":
        return f"background-color: {PASS_BG}"
    if status == "FAIL":
        return f"background-color: {FAIL_BG}; font-weight: 600"
    return f"background-color: {UNAVAILABLE_BG}"


def _ratio_colour(text: str) -> str:
    """A bound ratio (formatted) > 1 is red, > 0.5 amber."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return ""
    if value > 1 or math.isnan(value):
        return f"background-color: {FAIL_BG}"
    return "background-color: #fff3c4" if value > 0.5 else ""


def _styled(table: pd.DataFrame, numeric: tuple = (), uuid: str = "t") -> pd.io.formats.style.Styler:
    """A Styler of already formatted text: no index, numeric columns right-aligned, stable ids."""
    styler = table.style.hide(axis="index").set_uuid(uuid)
    if numeric:
        styler = styler.set_properties(subset=list(numeric), **{"text-align": "right",
                                                                "font-variant-numeric": "tabular-nums"})
    return styler


def results_table(summary: pd.DataFrame) -> str:
    bound_columns = ["max_bound_ratio_forward", "max_bound_ratio_backward", "max_bound_ratio_trajectory"]
    table = pd.DataFrame({
        "case": summary["case"],
        "impl": summary["impl"],
        "dtype": summary["dtype"],
        "max forward rel err": summary["max_forward_rel_err"].map(sci),
        "max gradient rel err": summary["max_gradient_rel_err"].map(sci),
        "max cost-trajectory rel err": summary["max_trajectory_rel_err"].map(sci),
        "max final-parameter rel err": summary["max_final_rel_err"].map(sci),
        "max bound ratio": summary[bound_columns].max(axis=1).map(sci),
        "steps": summary["steps"].astype(str),
        "result": summary["status"].map(lambda s: s.split(":")[0].upper()),
        "first failure / reason": [s.split(": ", 1)[1] if s.startswith("unavailable") else f
                                   for s, f in zip(summary["status"], summary["first_failure"].fillna(""))],
    })
    if not table["first failure / reason"].astype(bool).any():
        table = table.drop(columns="first failure / reason")
    numeric = tuple(table.columns[3:9])
    styler = _styled(table, numeric, "results")
    if "first failure / reason" in table.columns:
        styler = styler.set_td_classes(pd.DataFrame("", index=table.index, columns=table.columns).assign(
            **{"first failure / reason": "wrap"}))
    styler = styler.map(_status_colour, subset=["result"]).map(_ratio_colour, subset=["max bound ratio"])
    failing = table["result"].eq("FAIL").to_numpy()
    styler = styler.apply(lambda column: [f"background-color: {FAIL_BG}" if bad else "" for bad in failing],
                          axis=0, subset=["case", "impl"])
    return styler.to_html()


def layers_table(details: pd.DataFrame) -> str | None:
    """(case, impl) x (Z1, A1, ..., dW1, db1): the norm-wise relative errors (worst over step 0 and the checkpoints),
    failing cells red."""
    captured = details[details["phase"].isin(["forward", "backward"])]
    if captured.empty:
        return None
    names = captured["quantity"].astype(str) + captured["layer"].map(lambda l: "" if pd.isna(l) else str(int(l)))
    frame = captured.assign(name=names)
    order = [c for c in layer_columns(details) if c in set(frame["name"])]
    values = frame.pivot_table(index=["case", "impl"], columns="name", values="max_rel_err", aggfunc="max",
                               sort=False).reindex(columns=order)
    ok = frame.assign(ok=frame["passed"].astype(float)).pivot_table(
        index=["case", "impl"], columns="name", values="ok", aggfunc="min", sort=False).reindex(columns=order)
    text = values.map(lambda v: "" if pd.isna(v) else sci(v)).reset_index()
    failing = (ok == 0).reset_index(drop=True)

    def colour(column: pd.Series) -> list[str]:
        if column.name not in failing.columns:
            return [""] * len(column)
        return [f"background-color: {FAIL_BG}; font-weight: 600" if bad else "" for bad in failing[column.name]]

    styler = _styled(text, tuple(order), "layers").apply(colour, axis=0, subset=order)
    return styler.set_table_attributes('class="compact"').to_html()


def cases_table(cases: list, summary: pd.DataFrame) -> str | None:
    if not cases:
        return None
    steps = summary.groupby("case")["steps"].max() if len(summary) else pd.Series(dtype=int)
    table = pd.DataFrame([{
        "case": case.id,
        "layer dims": ", ".join(map(str, case.layer_dims)),
        "activation": f"{case.hidden_activation} / {case.output_activation}" if case.L > 1 else case.output_activation,
        "loss": case.loss,
        "dtype": case.dtype,
        "batch": "full" if case.batch_size is None else str(case.batch_size),
        "learning rate": f"{case.learning_rate:g}",
        "epochs": str(case.epochs),
        "steps": str(int(steps[case.id])) if case.id in steps.index else "n/a",
        "data": case.data,
    } for case in cases])
    return _styled(table, ("learning rate", "epochs", "steps"), "cases").to_html()


def environment_table(env: dict | None) -> str | None:
    """The handful of env.json entries that most often explain a difference."""
    if not env:
        return None
    from nnparity.environment import flatten

    flat = flatten(env)
    wanted = [
        "versions.python", "versions.numpy", "versions.pandas", "versions.torch", "versions.tensorflow",
        "run.device", "cpu.model", "cpu.logical_cpus", "threads.os_cpu_count",
        "torch.status", "torch.num_threads", "torch.deterministic_algorithms", "torch.float32_matmul_precision",
        "torch.cuda_matmul_allow_tf32", "torch.cudnn_allow_tf32",
        "tensorflow.status", "tensorflow.intra_op_parallelism_threads", "tensorflow.inter_op_parallelism_threads",
        "tensorflow.op_determinism", "tensorflow.tensor_float_32_execution", "tensorflow.TF_ENABLE_ONEDNN_OPTS",
        "env_vars.OMP_NUM_THREADS", "env_vars.MKL_NUM_THREADS", "env_vars.OPENBLAS_NUM_THREADS",
    ]
    def shown(value):
        return "(unset)" if value is None else str(value)

    rows = [(key, shown(flat[key])) for key in wanted if key in flat]
    blas = env.get("blas", {})
    for name, dep in (blas.get("numpy_build") or {}).items():
        rows.append((f"numpy {name}", f"{dep.get('name', '?')} {dep.get('version', '')}".strip()))
    pools = blas.get("threadpools")
    if isinstance(pools, list):
        for pool in pools:
            rows.append((f"thread pool {pool.get('library', '?')}",
                         f"{pool.get('internal_api')} {pool.get('version') or ''}, {pool.get('num_threads')} threads"))
    table = pd.DataFrame(rows, columns=["setting", "value"]).astype(str)
    classes = pd.DataFrame({"setting": "", "value": "wrap"}, index=table.index)
    return _styled(table, (), "env").set_td_classes(classes).to_html()


def _verdict_class(summary: pd.DataFrame) -> str:
    if len(summary) and (summary["status"] == "fail").any():
        return "fail"
    if len(summary) and summary["status"].str.startswith("unavailable").any():
        return "incomplete"
    return "pass" if len(summary) else "incomplete"


def markdown_sections(sections: list[str]) -> list[tuple[str, str, Markup]]:
    """Extra report sections, each Markdown starting with a ``## Title`` line, as (anchor, title, HTML)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    out = []
    for i, text in enumerate(sections):
        head, _, body = text.strip().partition("\n")
        title = head.lstrip("#").strip()
        html = re.sub(r"<table>.*?</table>", _boxed_table, md.render(body), flags=re.S)
        out.append((f"extra{i}", title, Markup(html)))
    return out


def _boxed_table(match: re.Match) -> str:
    """A rendered Markdown table in its own scrolling box; one longer than ``LONG_TABLE`` rows behind a closed
    ``<details>`` saying how many rows it has."""
    table = match.group(0).replace("<table>", '<table class="dataframe">', 1)
    rows = table.count("<tr>") - 1
    boxed = f'<div class="box">{table}</div>'
    return f"<details><summary>table of {rows} rows</summary>{boxed}</details>" if rows > LONG_TABLE else boxed


def impls_table(impls: pd.DataFrame) -> str:
    """The first screen's table: a row per implementation, error / limit coloured (> 0.5 amber, > 1 red), the cases
    cell red when a case fails unexpectedly, amber when one could not run or diverged exactly as recorded (as
    the Results table colours those statuses: the verdict above calls neither a failure)."""
    table = impl_table(impls)
    phases = [c for c, _ in PHASES]
    styler = _styled(table, tuple(phases), "impls").map(_ratio_colour, subset=phases)
    colours = [f"background-color: {FAIL_BG}; font-weight: 600" if row["passed"] + row["expected"] < row["run"] else
               f"background-color: {UNAVAILABLE_BG}" if row["unavailable"] or row["expected"] else
               f"background-color: {PASS_BG}" for _, row in impls.iterrows()]
    styler = styler.apply(lambda column: colours, axis=0, subset=["cases passed / run"])
    return styler.set_table_attributes('class="impls"').to_html()


def render_html(summary: pd.DataFrame, details: pd.DataFrame, meta: dict, cases: list | None = None,
                env: dict | None = None, figures: dict[str, bytes] | None = None,
                sections_md: list[str] | None = None, impls: pd.DataFrame | None = None,
                baseline: list[str] | None = None) -> str:
    """The whole ``report.html``: first the verdict, ``impls`` (``reports.margin.impl_summary``: a row per
    implementation) and ``baseline`` (what changed since a previous report, as lines), then the figures and, behind
    closed ``<details>``, the long tables; ``sections_md`` are extra Markdown sections (``markdown_sections``)."""
    from reports.summary import UNAVAILABLE, _how_to_read, meta_text, verdict

    meta_items = [(key, meta_text(key, value)) for key, value in meta.items() if key not in ("force", "left_out")]
    pins = [] if meta.get("data_pins", "ok") == "ok" else list(meta["data_pins"])
    failing = summary[summary["status"] == "fail"]
    missing = summary[summary["status"].str.startswith(UNAVAILABLE)] if len(summary) else summary
    unavailable = [(impl, len(group), status[len(UNAVAILABLE) + 2:])
                   for (impl, status), group in missing.groupby(["impl", "status"], sort=False)]
    figure_list = [(name, data_uri(png), CAPTIONS.get(name, "")) for name, png in (figures or {}).items()]
    parts = dict(
        results=Markup(results_table(summary)),
        layers=Markup(t) if (t := layers_table(details)) else None,
        cases=Markup(t) if (t := cases_table(cases or [], summary)) else None,
        environment=Markup(t) if (t := environment_table(env)) else None,
    )
    sections = [("figures", "Figures") if figure_list else None, ("results", "Results"),
                ("layers", "Step 0 per quantity") if parts["layers"] else None,
                ("cases", "Cases") if parts["cases"] else None, ("failures", "Failures"),
                ("unavailable", "Unavailable") if unavailable else None]
    extra = markdown_sections(sections_md or [])
    sections += [(anchor, title) for anchor, title, _ in extra]
    sections += [("environment", "Environment") if parts["environment"] else None, ("how", "How to read")]
    how = _how_to_read().split("\n\n", 1)[1]
    template = templates().get_template(PAGE)
    return template.render(
        verdict=verdict(summary), verdict_class=_verdict_class(summary), meta=meta_items, pins=pins,
        left_out=meta.get("left_out", ""),
        sections=[s for s in sections if s], figures=figure_list,
        failures=[(row.case, row.impl, row.first_failure) for row in failing.itertuples()],
        unavailable=unavailable, how_to_read=_inline_markdown(how), extra=extra, results_rows=len(summary),
        impls=Markup(impls_table(impls)) if impls is not None and len(impls) else None,
        margin=_inline_markdown(MARGIN), baseline=[_inline_markdown(line) for line in baseline or []], **parts,
    )


def write_extras(directory, details: pd.DataFrame, meta: dict, cases: list | None = None,
                 trajectories: pd.DataFrame | None = None, env: dict | None = None,
                 sections_md: list[str] | None = None, figures: dict[str, bytes] | None = None,
                 impls: pd.DataFrame | None = None, baseline: list[str] | None = None,
                 summary: pd.DataFrame | None = None) -> list[str]:
    """Into ``directory`` (the report's temporary directory): ``env.json``, the ``figures`` (``{name: PNG}``,
    drawn now by ``reports.plots.draw_all`` when not given), ``trajectories.csv`` (when given) and
    ``report.html``; ``summary`` and ``impls`` are computed from ``details`` when not given.  ``env`` defaults to
    what ``nnparity.environment.collect`` finds now (no framework is imported for it).  Returns the names written."""
    import json
    from pathlib import Path

    from nnparity import environment
    from reports.margin import impl_summary
    from reports.plots import draw_all
    from reports.summary import summarize

    directory = Path(directory)
    if env is None:
        env = environment.collect(command=meta.get("command"), started=meta.get("started"),
                                  seconds=meta.get("seconds"))
    written = ["env.json"]
    (directory / "env.json").write_text(json.dumps(jsonable(env), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if trajectories is not None and len(trajectories):
        trajectories.to_csv(directory / "trajectories.csv", index=False)
        written.append("trajectories.csv")
    figures = draw_all(details, trajectories) if figures is None else figures
    for name, png in figures.items():
        (directory / name).write_bytes(png)
        written.append(name)
    summary = summarize(details) if summary is None else summary
    impls = impl_summary(details, summary=summary) if impls is None else impls
    page = render_html(summary, details, meta, cases, env, figures, sections_md, impls, baseline)
    (directory / "report.html").write_text(page, encoding="utf-8")
    return written + ["report.html"]
