"""``nnparity explain``'s page: explain.html (self-contained: MathML, Pygments-highlighted code, figures as
base64 PNG, nothing loaded from the network) and explain.md (the same, equations as text, figures as PNG files
beside it), and one section as terminal text (``--equation``).  Renders ``nnparity.explain.gather``'s result."""

from __future__ import annotations

import base64
import functools
import html
import textwrap

from nnparity.explain import (
    AUTODIFF_COLUMNS,
    COLUMNS,
    COMPILED,
    CONV_CASES,
    EXPECTED,
    GROUPS,
    STEPS,
)
from nnparity.numbers import number, sci

#: The detection-power column (``harness.detect_rel``): its header, and the definition the page gives once, before
#: the first table.
FLAGGED = "smallest flagged change (rel.)"
FLAGGED_MEANS = (f"{FLAGGED}: the detection power of the rows' tolerance, the smallest relative change of the "
                 "quantity (a bug scaling it by 1 + delta) that the tolerance flags (harness.detect_rel; the "
                 "smallest over the rows); a bug that changes the quantity by less passes unseen; inf: no row gates")
MEASURES = (("max_abs_err", "max abs", sci), ("max_rel_err", "norm-wise rel", sci),
            ("max_ulp", "max ulp", lambda x: number(x, ".3g")),
            ("bound_ratio", "bound ratio", lambda x: number(x, ".2g")),
            ("detect_rel", FLAGGED, sci),
            ("fp64", "float64 distance (honest float32's)",
             lambda x: "" if not isinstance(x, tuple) else f"{sci(x[0])} ({sci(x[1])})"))


def _images(tier: int) -> str:
    """The conv sections' images in a tier (0 quick, 1 full): "2 images 5 x 8 x 4"."""
    c = CONV_CASES["conv-max"][tier]
    return f"{c['m']} images {c['n_H_prev']} x {c['n_W_prev']} x {c['n_C_prev']}"


#: What each tier runs, in one line (the page and the terminal say which ran).
TIER_MEANS = {"quick": f"quick (the default): each section's case on a small network of two inputs, {STEPS['quick']} "
                       f"gradient steps (mini-batches: two epochs), the conv sections' one conv and pool layer on "
                       f"{_images(0)}; --full runs the longer cases",
              "full": f"full (--full): each section's case on the notes' deeper network where the equation has one, "
                      f"{STEPS['full']} gradient steps (mini-batches: two epochs), the conv sections' on {_images(1)}"}


# --------------------------------------------------------------------------- known divergences, in words

_PHASES = {"forward": "in the forward pass", "backward": "in the backward pass", "update": "after the first update",
           "trajectory": "on the free-running trajectory", "final": "in the final parameters"}
_CONDITIONS = {"optimizer": "the optimizer is", "dtype": "the dtype is", "activations": "a layer's activation is",
               "decay": "the learning rate decays:", "loss": "the loss is"}


def when_text(divergence) -> str:
    """``Divergence.when`` in words: "the optimizer is adam", "the dtype is float64 and a layer's activation is
    leaky_relu"."""
    parts = []
    for key, values in divergence.when.items():
        words = " or ".join(str(v).replace("_", " ") if key != "activations" else str(v) for v in values)
        parts.append(f"{_CONDITIONS.get(key, key.replace('_', ' ') + ' is')} {words}")
    return " and ".join(parts) or "always"


def first_failure_text(divergence) -> str:
    """``Divergence.first_failure`` in words: "any parameter after the first update (step 0)"."""
    phase, quantity, layer, step = divergence.first_failure
    what = (f"{quantity}{'' if layer is None else layer}" if quantity
            else "any parameter" if phase in ("update", "final") else "any quantity")
    when = " at any step" if step is None and phase == "trajectory" else "" if step is None else f" (step {step})"
    later = ("; in float32 it may show only later, in the free run the float64 arbiter judges"
             if divergence.float32_later else "")
    return f"{what} {_PHASES.get(phase, phase)}{when}{later}"


def divergence_text(record) -> str:
    """A known divergence's record (``nnparity.divergences.records``) as one readable sentence's parts."""
    from nnparity.divergences import BY_ID

    d = BY_ID.get(record["id"])
    if d is None:
        return f"{record['id']} ({record['implementations']}): {record['what']}"
    return (f"{record['id']} ({record['implementations']}; applies when {when_text(d)}; its first failing row: "
            f"{first_failure_text(d)}): {record['what']}")


def _implementations(label: str) -> str:
    return dict(COLUMNS)[label] and " / ".join(dict(COLUMNS)[label])


# --------------------------------------------------------------------------- figures


#: Equation.figure -> what its figure draws, in one line (the page's caption).
CAPTIONS = {
    "activation": "g and g' by each framework near the kink, and |g' - the reference's g'| out to the saturation.",
    "bound-vs-step": "The cost's error / limit at every gradient step of the free-running run, per implementation "
                     "(the bound ratio; float64: rel err / 1e-10), log scale; at or below the red line at 1 passes.",
    "margin": "Each implementation's error / limit for this equation's rows, per dtype (the bound ratio; float64 "
              "also rel err / 1e-12), log scale; the large marker is the worst row, the small ones each layer (a conv "
              "section: each quantity and case); at or below the red line at 1 passes.",
}


def figures(explanation) -> dict:
    """{section id: PNG bytes}: an activation's g and g' per framework; the cost's error / limit against the step;
    or the error / limit of each implementation and dtype (``CAPTIONS``)."""
    from reports.plots import bound_ratio_plot

    out = {}
    for section in explanation.sections:
        kind = section.equation.figure
        png = None
        if kind == "activation" and section.curves:
            png = _activation_figure(section)
        elif kind == "bound-vs-step":
            png = bound_ratio_plot(section.rows)
        elif kind == "margin":
            png = _margin_figure(section)
        if png:
            out[section.equation.id] = png
    return out


def _style(column: str) -> tuple:
    """The colour and line style of a column's curve: the registry's, as the report's plots draw that implementation
    (a plugin's from its ``Impl``, grey where none is known)."""
    from nnparity import impls

    try:
        impl = impls.get(column)
    except Exception:  # a column whose name is no implementation
        return "grey", "-"
    return impl.colour, impl.linestyle


def _activation_figure(section) -> bytes:
    import numpy as np

    from reports.plots import _png, _pyplot

    Z = section.Z
    near = np.abs(Z) <= 4
    fig, (left, right) = _pyplot().subplots(1, 2, figsize=(10, 2.8))
    ref_A, ref_dA = section.curves["numpy"]
    floor = 1e-20
    for column, curve in section.curves.items():
        if isinstance(curve, str):
            continue
        colour, style = _style(column)
        A, dA = curve
        left.plot(Z[near], A[near], color=colour, linestyle=style, label=f"g: {column}")
        left.plot(Z[near], dA[near], color=colour, linestyle=style, alpha=0.55, linewidth=2.5, label=f"g': {column}")
        if column != "numpy":
            diff = np.maximum(np.abs(dA - ref_dA), floor)
            right.semilogy(Z, diff, color=colour, linestyle=style, label=f"{column}: g'(0) = {dA[Z == 0][0]:.3g}")
    left.axvline(0, color="grey", linewidth=0.5)
    left.set_xlabel("Z")
    left.set_title(f"g and g' near the kink (reference g'(0) = {ref_dA[Z == 0][0]:.3g})", fontsize=9)
    left.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    right.set_xlabel("Z (to the saturation)")
    right.set_title("|g' - reference g'| (1e-20 = identical)", fontsize=9)
    right.set_ylim(floor / 10, 1)
    right.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return _png(fig)


_DTYPE_MARKERS = {"float64": ("o", -0.15), "float32": ("^", 0.15)}  # marker, offset from the implementation's tick


def _margin_figure(section) -> bytes | None:
    """Error / limit (``reports.margin.with_margin``) of every row of the section, per implementation (x) and
    dtype (marker): each row a small point, the worst a large one, the limit drawn at 1, log scale."""
    import numpy as np

    from reports.margin import with_margin
    from reports.plots import RATIO_FLOOR, _log_axis, _mark_zero, _png, _pyplot

    rows = section.rows[section.rows["phase"].isin(["forward", "backward"])]
    if rows.empty:
        return None
    rows = with_margin(rows)
    impls = list(dict.fromkeys(rows["impl"]))
    fig, ax = _pyplot().subplots(figsize=(max(5.0, 0.9 * len(impls) + 1.5), 2.6), layout="constrained")
    used = rows["used"].to_numpy(dtype=float)
    top = max(3.0, float(np.nanmax(np.where(np.isfinite(used), used, np.nan), initial=0)) * 3)
    for x, impl in enumerate(impls):
        colour = _style(impl)[0]
        for dtype, (marker, offset) in _DTYPE_MARKERS.items():
            values = rows.loc[(rows["impl"] == impl) & (rows["dtype"] == dtype), "used"].to_numpy(dtype=float)
            if values.size == 0:
                continue
            shown = np.where(values == 0, RATIO_FLOOR, np.minimum(values, top))
            ax.scatter(np.full(values.size, x + offset), shown, s=9, marker=marker, color=colour, alpha=0.5)
            ax.scatter([x + offset], [shown.max()], s=48, marker=marker, color=colour,
                       edgecolors="black", linewidths=0.6, label=dtype if x == 0 else None)
    ax.axhline(1, color="#c00000", linewidth=1.2, zorder=1)
    ax.annotate("limit", xy=(0, 1), xycoords=("axes fraction", "data"), xytext=(3, 2), textcoords="offset points",
                fontsize=7, color="#c00000", va="bottom")
    _log_axis(ax, RATIO_FLOOR, top)
    if (used == 0).any():
        _mark_zero(ax, RATIO_FLOOR)
    ax.set_xticks(range(len(impls)), impls, fontsize=8)
    ax.set_ylabel("error / limit", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3, axis="y")
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    for handle in legend.legend_handles:
        handle.set_color("grey")
    ax.set_title(f"{section.equation.title}: error / limit per implementation and dtype", fontsize=9)
    return _png(fig)


# --------------------------------------------------------------------------- HTML

#: The page's skeleton, a template file of this package (``reports/templates/``, read through the package's loader:
#: package data, found wherever the package is installed, at no path of ours); it includes the styles,
#: ``explain.css``, and gets Pygments' styles, the introduction, the table of contents and the sections (HTML built
#: and escaped below) as ``Markup``.
PAGE = "explain.html.j2"


@functools.cache
def templates():
    """The page's Jinja environment: ``reports/templates/`` through ``PackageLoader``, autoescaped; trailing newlines
    kept (the page and its styles end in one, as the files do)."""
    from jinja2 import Environment, PackageLoader

    return Environment(loader=PackageLoader("reports", "templates"), autoescape=True, keep_trailing_newline=True)


def _highlight(text: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(text, PythonLexer(stripnl=False, ensurenl=False), HtmlFormatter(cssclass="hl"))


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="hl").get_style_defs(".hl")


def _excerpt_html(x) -> str:
    if x.error:
        return (f'<p class="missing">{html.escape(x.qualname)}: {html.escape(x.error)} (the page shows no code for '
                "this column)</p>")
    marker = "" if x.source.marker is None else f' data-marker="{html.escape(x.source.marker, quote=True)}"'
    what = "the function" if x.source.marker is None else "the statement"
    return (f'<div class="excerpt" data-module="{x.source.module}" data-name="{x.source.name}" '
            f'data-lines="{x.first}-{x.last}"{marker}><p class="where">{what} {html.escape(x.qualname)} '
            f"&mdash; {html.escape(x.path)}:{x.first}&ndash;{x.last}</p>{_highlight(x.text)}</div>")


def _measured_html(section) -> str:
    frame = section.measured
    if frame.empty:
        return "<p class='note'>No rows measured this equation.</p>"
    head = "".join(f"<th>{h}</th>" for h in ["implementation", "dtype", *[m[1] for m in MEASURES], "class", "rows"])
    body = []
    for r in frame.to_dict("records"):
        if not r.get("rows"):
            body.append(f"<tr><td>{r['impl']}</td><td>{r['dtype']}</td><td class='text fail' colspan='6'>"
                        f"{html.escape(str(r['note']))}</td></tr>")
            continue
        cells = "".join(f"<td>{fmt(r[key])}</td>" for key, _, fmt in MEASURES)
        expected = r.get("classification") == EXPECTED
        status = "pass" if r["passed"] else "expected" if expected else "fail"
        note = f" title=\"{html.escape(r['note'], quote=True)}\"" if r.get("note") else ""
        word = f"{EXPECTED}: {html.escape(r['divergence'])}" if expected else r["classification"]
        body.append(f"<tr><td>{r['impl']}</td><td>{r['dtype']}</td>{cells}<td class='text {status}'{note}>"
                    f"{word}</td><td>{r['rows']}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{_expected_note(frame, html.escape)}"


def _expected_lines(frame) -> list[str]:
    """One sentence per implementation and dtype whose failing rows are a recorded divergence's."""
    if "classification" not in frame:
        return []
    return [f"{r['impl']} {r['dtype']}: {EXPECTED}, as recorded by {r['divergence']} (below): its rows fail where "
            "the record says and pass against the record's aligned reference"
            for r in frame.to_dict("records") if r.get("classification") == EXPECTED]


def _expected_note(frame, escape=None) -> str:
    if escape is None:
        return "".join(f"{line}\n" for line in _expected_lines(frame))
    return "".join(f"<p class='note'>{escape(line)}</p>" for line in _expected_lines(frame))


def _rows_text(section) -> str:
    parts = []
    for phase, quantity, layers in section.equation.rows:
        what = quantity or "every quantity"
        where = "" if layers is None else f" (layers: {layers})"
        parts.append(f"{phase} {what}{where}")
    return "; ".join(parts)


def _catalogue_html(section) -> str:
    items = []
    for r in section.catalogue:
        effect = r.get("effect") or r.get("status", "")
        items.append(f"<li><b>{html.escape(r['id'])}</b> ({html.escape(str(r.get('framework', '')))}): "
                     f"{html.escape(str(r.get('title', '')))}. <i>Measured effect:</i> {html.escape(str(effect))} "
                     f"<i>How this project aligns:</i> {html.escape(str(r.get('how_aligned', '')))}</li>")
    for r in section.divergences:
        text = divergence_text(r)
        items.append(f"<li><b>known divergence {html.escape(r['id'])}</b> {html.escape(text[len(r['id']) + 1:])}</li>")
    if not items:
        return ""
    return "<h3>Where a framework departs from this equation</h3><ul class='note'>" + "".join(items) + "</ul>"


def _section_html(section, pngs) -> str:
    e = section.equation
    columns = []
    for label, _ in COLUMNS:
        excerpts = section.excerpts.get(label) or []
        if not excerpts:
            continue
        compiled = f"<p class='where'>{html.escape(COMPILED[label])}</p>" if label in COMPILED else ""
        columns.append(f"<div class='column'><h3>{html.escape(label)}</h3>"
                       + "".join(_excerpt_html(x) for x in excerpts) + compiled + "</div>")
    autodiff = (f"<p class='autodiff'><b>Autodiff</b> ({', '.join(AUTODIFF_COLUMNS)}: the line that asks for the "
                f"gradient is shown): {html.escape(e.autodiff)}</p>") if e.autodiff else ""
    figure = ""
    if e.id in pngs:
        figure = (f"<figure id='{e.id}-figure'><img alt='{html.escape(e.title)}' src='data:image/png;base64,"
                  f"{base64.b64encode(pngs[e.id]).decode()}'><figcaption class='note'>"
                  f"{html.escape(CAPTIONS[e.figure])}</figcaption></figure>")
    cases = "<br>".join(html.escape(c) for c in section.cases)
    return (f"<section id='{e.id}'><h2>{html.escape(e.title)}</h2>{e.mathml}"
            f"<p class='eqtext'>{html.escape(e.text)}</p><div class='code-grid'>{''.join(columns)}</div>{autodiff}"
            f"<h3>Measured difference from the reference</h3><p class='note'>Worst over the rows {_rows_text(section)} "
            f"of:<br>{cases}</p>{_measured_html(section)}{figure}{_catalogue_html(section)}</section>")


def _toc(explanation, fmt) -> list[str]:
    groups = {}
    for s in explanation.sections:
        groups.setdefault(s.equation.group, []).append(s.equation)
    return [(group, groups[group]) for group in GROUPS if group in groups]


def render_html(explanation, pngs) -> str:
    toc = "".join(f"<div><h3>{g}</h3><ul>" + "".join(f"<li><a href='#{e.id}'>{html.escape(e.title)}</a></li>"
                                                    for e in eqs) + "</ul></div>"
                  for g, eqs in _toc(explanation, "html"))
    body = "".join(_section_html(s, pngs) for s in explanation.sections)
    from markupsafe import Markup

    return templates().get_template(PAGE).render(pygments_css=Markup(_pygments_css()),
                                                 intro=Markup(html.escape(_intro(explanation))),
                                                 toc=Markup(toc), body=Markup(body))


def _intro(explanation) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in explanation.versions.items())
    return (f"Each equation of the notes, the code that computes it in every implementation (extracted from the "
            f"running source when this page was made), and its difference from the NumPy reference measured by "
            f"this run ({', '.join(explanation.names)}; {versions}; {explanation.seconds:.0f} s). Tier: "
            f"{TIER_MEANS[explanation.tier]}. Bound ratio: the difference over twice its derived rounding bound; a "
            f"ratio above 1 fails. {FLAGGED_MEANS[0].upper()}{FLAGGED_MEANS[1:]}. Catalogue: "
            f"{explanation.catalogue_source}.")


# --------------------------------------------------------------------------- Markdown


def _excerpt_md(x) -> str:
    if x.error:
        return f"*{x.qualname}: {x.error}*\n"
    return (f"<!-- excerpt {x.source.module}:{x.source.name}:{x.first}:{x.last} -->\n"
            f"`{x.qualname}` ({x.path}:{x.first}-{x.last})\n\n```python\n{x.text}```\n")


def _measured_md(section) -> str:
    frame = section.measured
    lines = ["| implementation | dtype | " + " | ".join(m[1] for m in MEASURES) + " | class | rows |",
             "|---|---|" + "---|" * len(MEASURES) + "---|---|"]
    for r in frame.to_dict("records"):
        if not r.get("rows"):
            lines.append(f"| {r['impl']} | {r['dtype']} | {r['note']} |" + " |" * (len(MEASURES) + 1))
            continue
        cells = " | ".join(fmt(r[key]) for key, _, fmt in MEASURES)
        lines.append(f"| {r['impl']} | {r['dtype']} | {cells} | {_class_text(r)} | {r['rows']} |")
    return "\n".join(lines) + "\n\n" + _expected_note(frame)


def _class_text(r) -> str:
    if r.get("classification") == EXPECTED:
        return f"{EXPECTED}: {r['divergence']}"
    return r["classification"] + ("" if r["passed"] else " (FAIL)")


def render_markdown(explanation, figure_files: dict) -> str:
    out = ["# The notes' math through the code\n", _intro(explanation) + "\n"]
    for group, eqs in _toc(explanation, "md"):
        out.append(f"**{group}**: " + ", ".join(f"[{e.title}](#{e.id})" for e in eqs) + "\n")
    for s in explanation.sections:
        e = s.equation
        out.append(f'<a id="{e.id}"></a>\n\n## {e.title}\n\n```\n{e.text}\n```\n')
        for label, _ in COLUMNS:
            excerpts = s.excerpts.get(label) or []
            if excerpts:
                out.append(f"**{label}**" + (f" ({COMPILED[label]})" if label in COMPILED else "") + "\n")
                out += [_excerpt_md(x) for x in excerpts]
        if e.autodiff:
            out.append(f"*Autodiff:* {e.autodiff}\n")
        out.append(f"Measured difference from the reference, worst over the rows {_rows_text(s)} of: "
                   + "; ".join(s.cases) + "\n")
        out.append(_measured_md(s))
        if e.id in figure_files:
            out.append(f"![{e.title}]({figure_files[e.id]})\n\n*{CAPTIONS[e.figure]}*\n")
        for r in s.catalogue:
            out.append(f"* catalogue **{r['id']}**: {r.get('title', '')}. Measured effect: "
                       f"{r.get('effect') or r.get('status', '')}")
        for r in s.divergences:
            out.append(f"* known divergence **{r['id']}** {divergence_text(r)[len(r['id']) + 1:]}")
        out.append("")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- terminal


def terminal_width() -> int:
    """The terminal's width (``shutil.get_terminal_size``: $COLUMNS, the terminal, else 80), at least 40."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def render_terminal(section, width: int | None = None, tier: str | None = None) -> str:
    """One section as text, every line at most ``width`` columns (default: the terminal's), wrapped at word
    boundaries: the equation, the code (two columns side by side when ``width`` allows), the measured difference
    (a table when it fits, else a list), the catalogue entries and known divergences."""
    width = width or terminal_width()
    e = section.equation
    out = _para(f"{e.id}: {e.title}", width) + _para(e.text, width, "  ", "    ") + [""]
    blocks = []
    for label, _ in COLUMNS:
        for x in section.excerpts.get(label) or []:
            head = f"[{label}] {x.qualname}" + ("" if x.error else f"  {x.path}:{x.first}-{x.last}")
            blocks.append([head] + ([x.error] if x.error else x.text.rstrip("\n").splitlines()))
    pairs = 2 if width >= 150 else 1
    col = (width - 3) // pairs if pairs == 2 else width
    for i in range(0, len(blocks), pairs):
        group = [_wrap(b, col) for b in blocks[i:i + pairs]]
        height = max(len(b) for b in group)
        for j in range(height):
            out.append(" | ".join((b[j] if j < len(b) else "").ljust(col) for b in group).rstrip())
        out.append("")
    if e.autodiff:
        out += _para(f"autodiff: {e.autodiff}", width, "", "    ") + [""]
    if tier:
        out += _para(f"tier: {TIER_MEANS[tier]}", width, "", "    ")
    out += _para("measured difference from the reference (worst over the rows " + _rows_text(section) + "):", width)
    for c in section.cases:
        out += _para(c, width, "  ", "    ")
    out += _measured_terminal(section.measured, width)
    out += _para(FLAGGED_MEANS, width, "  ", "    ")
    for line in _expected_lines(section.measured):
        out += _para(line, width, "  ", "    ")
    for r in section.catalogue:
        out += _para(f"catalogue {r['id']}: {r.get('effect') or r.get('status', '')}", width, "", "    ")
    for r in section.divergences:
        out += _para(f"known divergence {divergence_text(r)}", width, "", "    ")
    return "\n".join(out) + "\n"


def _para(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """``text`` wrapped at word boundaries (a word longer than the line is the only thing ever cut)."""
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False) or [""]


def _measured_terminal(frame, width: int) -> list[str]:
    """The measured table when it fits ``width``; else one wrapped paragraph per implementation and dtype."""
    header = ["implementation", "dtype"] + [m[1] for m in MEASURES] + ["class", "rows"]
    table, notes = [header], []
    for r in frame.to_dict("records"):
        if not r.get("rows"):
            notes.append(f"{r['impl']} {r['dtype']}: {r['note']}")
            continue
        table.append([r["impl"], r["dtype"]] + [fmt(r[key]) for key, _, fmt in MEASURES]
                     + [_class_text(r).replace(" (FAIL)", " FAIL"), str(r["rows"])])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    if max(len(line) for line in lines) > width:
        lines = []
        for row in table[1:]:
            measures = ", ".join(f"{name} {value}" for name, value in zip(header[2:-2], row[2:-2]))
            lines += _para(f"{row[0]} {row[1]}: {row[-2]} ({row[-1]} rows); {measures}", width, "  ", "      ")
    return lines + [line for note in notes for line in _para(note, width, "  ", "      ")]


def _wrap(lines: list[str], width: int) -> list[str]:
    """Code lines wrapped at spaces to ``width`` (the continuation indented 4 more than the line); a token longer
    than the line is cut."""
    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()) + 4)
        out += textwrap.wrap(line, width, subsequent_indent=indent if len(indent) < width // 2 else "    ",
                             break_on_hyphens=False, drop_whitespace=True, replace_whitespace=False,
                             expand_tabs=False) or [""]
    return out


# --------------------------------------------------------------------------- writing


def write_explain(explanation, out_dir, force: bool) -> str:
    """Write explain.html, explain.md and the figures' PNGs into ``out_dir``, atomically (``nnparity.outdir``)."""
    from nnparity.outdir import atomic_directory

    pngs = figures(explanation)
    files = {eid: f"{eid}.png" for eid in pngs}
    with atomic_directory(out_dir, force, kind="explain") as tmp:
        (tmp / "explain.html").write_text(render_html(explanation, pngs), encoding="utf-8")
        (tmp / "explain.md").write_text(render_markdown(explanation, files), encoding="utf-8")
        for eid, png in pngs.items():
            (tmp / files[eid]).write_bytes(png)
    return str(out_dir)
