"""The report's figures, drawn headless (matplotlib's Agg backend) as PNG bytes.  They show the **margin**:
how close each comparison came to failing, not the raw error (which mostly shows float32 against float64).

* ``bound_ratio_vs_step.png`` — the cost's error / its limit (the bound ratio; float64: rel err / 1e-10; float32
  after step 1: the float64 arbiter's ratio, ``nnparity.arbiter``) at every step, one panel per case, log
  scale, the limit drawn at 1; float32 steps after step 1 shaded.
* ``trajectory_differences.png`` — ``|J_impl − J_ref| / |J_ref|`` at every step, one panel per case, log
  scale: where the trajectories part, instead of curves drawn on top of each other.
* ``bound_ratio_heatmap.png`` — case × implementation, the worst error / limit of the pair over every gated
  row, the value written in each cell.

Colours, markers and line styles come from the registry (``nnparity.impls``); the legend sits below the
panels, on no data.  Each function returns ``None`` when there is nothing to draw.  Nothing here imports a
framework.
"""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np
import pandas as pd

from nnparity.harness import GATED_FLOAT32_STEPS
from nnparity.impls import REGISTRY
from nnparity.spec import REFERENCE_IMPL, backward_names, forward_names
from reports.margin import gated, with_margin

#: Where an exact zero (bit-identical) is drawn on a log axis: relative cost differences, and errors / limits.
ZERO_FLOOR = 1e-17
RATIO_FLOOR = 1e-7

#: The figures' file names, in the order the report shows them.
FIGURES = ("bound_ratio_vs_step.png", "trajectory_differences.png", "bound_ratio_heatmap.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: never a window, never a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    buffer = io.BytesIO()
    # a constrained layout has already fitted every title, label and legend into the figure: measuring the tight
    # box again while saving cost a fifth of a report's figure time (issue 22); other figures still need it
    constrained = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    fig.savefig(buffer, format="png", dpi=80, bbox_inches=None if constrained else "tight",
                metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _panels(n: int, columns: int = 4, width: float = 3.9, height: float = 2.5):
    """``n`` panels, ``columns`` a row (the default grid: a network a row, dtype × batch across)."""
    plt = _pyplot()
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + 0.9), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _line_style(impl: str) -> dict:
    """The registry's colour and marker for ``impl``, as points: a step that is exactly equal (drawn at the floor)
    would break a line into a comb."""
    entry = REGISTRY.get(impl)
    if entry is None:
        return dict(linestyle="none", marker=".", markersize=2.5)
    return dict(color=entry.colour, linestyle="none", marker=entry.marker, markersize=2.5)


def _legend_below(fig, axes) -> None:
    """One legend for every panel, outside the axes below them: it covers no data."""
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if handles:
        shown = [_short_label(label) for label in labels]
        fig.legend([handles[l] for l in labels], shown, loc="outside lower center",
                   ncols=legend_columns(shown, fig.get_figwidth()), fontsize=8, frameon=False, markerscale=2.5)


#: A legend's width at 8 points, fitted to matplotlib's own (``parity_tests/test_report.py`` draws them): 18
#: characters of its columns' longest labels an inch (DejaVu Sans measured 19), and 0.6 inch a column for the
#: marker and the gaps (measured 0.57); it is kept within 95 % of the figure's width.
LEGEND_CHARS_PER_INCH, LEGEND_COLUMN_INCHES, LEGEND_SHARE = 18, 0.6, 0.95


def legend_columns(labels: list[str], width: float, most: int = 10) -> int:
    """The most columns (up to ``most``) whose legend fits ``width`` inches.  matplotlib fills the columns top to
    bottom, split as ``np.array_split`` splits the entries (matplotlib/legend.py, ``_init_legend_box``), each
    column as wide as its longest label: one long label (the arbiter's shading, a user's implementation file)
    widens only its own column.  Counting every column as wide as the longest label gave a two-panel figure's
    legend ten rows, which squeezed its panels."""
    for columns in range(min(len(labels), most), 1, -1):
        chunks = [c for c in np.array_split(np.array(labels, dtype=object), columns) if len(c)]
        inches = sum(max(map(len, chunk)) for chunk in chunks) / LEGEND_CHARS_PER_INCH + LEGEND_COLUMN_INCHES * columns
        if inches <= LEGEND_SHARE * width:
            return columns
    return 1


def _short_label(label: str, limit: int = 40) -> str:
    """A legend label: a long path (a user's implementation file) as ``.../name.py``."""
    if len(label) <= limit or "/" not in label:
        return label
    return ".../" + label.rstrip("/").rsplit("/", 1)[-1]


def _log_axis(ax, floor: float, top: float | None = None) -> None:
    ax.set_yscale("log")
    # no minor ticks: the grid is on the major ones, and laying out a log axis's minor ticks was half of every
    # figure's drawing time (issue 22)
    ax.yaxis.set_minor_locator(_pyplot().NullLocator())
    low, high = ax.get_ylim()
    ax.set_ylim(floor / 3, max(high, top or floor * 10))


def _mark_zero(ax, floor: float) -> None:
    ax.axhline(floor, color="grey", linewidth=0.8, linestyle=(0, (1, 2)), zorder=0)
    ax.annotate("= 0", xy=(1, floor), xycoords=("axes fraction", "data"), xytext=(2, 0), textcoords="offset points",
                fontsize=7, color="dimgrey", va="center")


#: A panel's title wraps at hyphens after this many characters (a training case's name is up to 70 long, and a
#: 3.9-inch panel holds about 48 at 9 points: unwrapped, neighbouring titles ran into each other).
TITLE_WIDTH = 44


def _panel_labels(ax, title: str, ylabel: str) -> None:
    ax.set_title("\n".join(textwrap.wrap(title, TITLE_WIDTH, break_long_words=False)) or title, fontsize=9)
    ax.set_xlabel("gradient step", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="major")


def bound_ratio_plot(details: pd.DataFrame) -> bytes | None:
    """The cost's error / its limit at every step, log scale, the limit line at 1, one panel per case."""
    rows = details[(details["phase"] == "trajectory") & details["step"].notna()]
    if rows.empty:
        return None
    rows = with_margin(rows)
    cases = list(dict.fromkeys(rows["case"]))
    fig, axes = _panels(len(cases))
    top = max(3.0, float(np.nanmax(np.where(np.isfinite(rows["used"]), rows["used"], np.nan), initial=0)) * 3)
    for ax, case in zip(axes, cases):
        any_zero = False
        for impl, line in rows[rows["case"] == case].groupby("impl", sort=False):
            line = line.sort_values("step")
            steps = line["step"].to_numpy(dtype=float)
            used = line["used"].to_numpy(dtype=float)
            any_zero |= bool((used == 0).any())
            shown = np.where(used == 0, RATIO_FLOOR, used)
            ax.plot(steps, shown, label=impl, alpha=0.6, **_line_style(impl))
            failing = ~line["passed"].astype(bool).to_numpy()
            recorded = _recorded(line).to_numpy()  # fails exactly as nnparity/divergences.py records: no failure
            if (failing & ~recorded).any():
                ax.scatter(steps[failing & ~recorded], shown[failing & ~recorded], marker="x", color="red", s=18,
                           zorder=10, label="failing step")
            if (failing & recorded).any():
                ax.scatter(steps[failing & recorded], shown[failing & recorded], marker="o", facecolors="none",
                           edgecolors=EXPECTED_COLOUR, s=18, zorder=10, label="recorded divergence (expected)")
        ax.axhline(1, color="#c00000", linewidth=1.2, zorder=1)
        ax.annotate("limit", xy=(0, 1), xycoords=("axes fraction", "data"), xytext=(3, 2), textcoords="offset points",
                    fontsize=7, color="#c00000", va="bottom")
        if rows.loc[rows["case"] == case, "dtype"].iloc[0] == "float32":
            ax.axvspan(GATED_FLOAT32_STEPS - 0.5, max(float(rows.loc[rows["case"] == case, "step"].max()), 2) + 0.5,
                       color="#eeeeee", zorder=0, label="float32 after step 1: judged by the float64 arbiter")
        _log_axis(ax, RATIO_FLOOR, top)
        if any_zero:
            _mark_zero(ax, RATIO_FLOOR)
        _panel_labels(ax, case, "error / limit")
    _legend_below(fig, axes)
    fig.suptitle("Margin of the cost at every step: error / limit, log scale; at or below the red line at 1 passes.\n"
                 "(bound ratio; float64: rel err / 1e-10; float32 after step 1: the float64 arbiter's ratio)",
                 fontsize=10)  # two lines: the explain page's figure is two panels wide
    return _png(fig)


def trajectory_difference_plot(trajectories: pd.DataFrame | None) -> bytes | None:
    """``|J_impl − J_ref| / |J_ref|`` at every step, log scale, one panel per case, a line per implementation."""
    if trajectories is None or trajectories.empty:
        return None
    reference = trajectories[trajectories["impl"] == REFERENCE_IMPL].set_index(["case", "step"])["cost"]
    others = trajectories[trajectories["impl"] != REFERENCE_IMPL]
    if others.empty or reference.empty:
        return None
    ref = reference.reindex(pd.MultiIndex.from_arrays([others["case"], others["step"]])).to_numpy(dtype=float)
    cost = others["cost"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = np.where(cost == ref, 0.0, np.abs(cost - ref) / np.abs(ref))
    others = others.assign(difference=difference)
    cases = list(dict.fromkeys(others["case"]))
    fig, axes = _panels(len(cases))
    for ax, case in zip(axes, cases):
        any_zero = False
        for impl, line in others[others["case"] == case].groupby("impl", sort=False):
            line = line.sort_values("step")
            values = line["difference"].to_numpy(dtype=float)
            any_zero |= bool((values == 0).any())
            ax.plot(line["step"].to_numpy(dtype=float), np.where(values == 0, ZERO_FLOOR, values), label=impl,
                    alpha=0.6, **_line_style(impl))
        _log_axis(ax, ZERO_FLOOR)
        if any_zero:
            _mark_zero(ax, ZERO_FLOOR)
        _panel_labels(ax, case, "|J_impl − J_ref| / |J_ref|")
    _legend_below(fig, axes)
    fig.suptitle("How far each implementation's cost is from the reference's at every step (relative, log scale)",
                 fontsize=10)
    return _png(fig)


def pair_margins(details: pd.DataFrame) -> pd.DataFrame:
    """Case × implementation: the worst error / limit over the pair's gated rows (NaN where the pair did not run)."""
    rows = with_margin(details)
    rows = rows[gated(rows)]
    cases = list(dict.fromkeys(details["case"]))
    impls = [i for i in dict.fromkeys(details["impl"])]
    table = rows.groupby(["case", "impl"], sort=False)["used"].max().unstack("impl")
    return table.reindex(index=cases, columns=impls)


#: Heatmap colour bands of error / limit: (upper edge, colour); above the last edge fails.
BANDS = ((1e-3, "#e5f5e0"), (1e-2, "#c7e9c0"), (1e-1, "#a1d99b"), (0.5, "#fff3b0"), (1.0, "#fdd49e"))
FAIL_COLOUR = "#f4a3a3"
#: A pair that fails exactly as nnparity/divergences.py records (the verdict counts no failure): amber, not red.
EXPECTED_COLOUR = "#d98c00"


def _recorded(rows: pd.DataFrame) -> pd.Series:
    """Rows of a pair that diverges as recorded (the report's ``divergence`` column set)."""
    if "divergence" not in rows.columns:
        return pd.Series(False, index=rows.index)
    return rows["divergence"].fillna("").astype(str).str.len() > 0


def bound_ratio_heatmap(details: pd.DataFrame) -> bytes | None:
    """Worst error / limit per case × implementation, banded colours, the value written in each cell."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch, Rectangle

    from nnparity.numbers import number

    table = pair_margins(details)
    if table.empty or table.isna().all().all():
        return None
    plt = _pyplot()
    data = table.to_numpy(dtype=float)
    edges = [0.0] + [edge for edge, _ in BANDS] + [np.inf]
    cmap = ListedColormap([colour for _, colour in BANDS] + [FAIL_COLOUR]).with_extremes(bad="#dddddd")
    norm = BoundaryNorm(edges[:-1] + [1e300], cmap.N)
    # at least as wide as the title and the legend below it: one column alone must not squeeze the cells to nothing
    fig, ax = plt.subplots(figsize=(max(2.4 + 1.05 * len(table.columns), 8.0), 1.3 + 0.34 * len(table.index)),
                           layout="constrained")
    ax.imshow(np.ma.masked_invalid(np.where(np.isinf(data), 1e299, data)), aspect="auto", cmap=cmap, norm=norm,
              interpolation="nearest")
    recorded = details[_recorded(details)].groupby(["case", "impl"]).size().index
    for (i, j), value in np.ndenumerate(data):
        text = "not run" if np.isnan(value) else number(value)
        if (table.index[i], table.columns[j]) in recorded:  # as recorded: amber, named, never the failing red
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color=EXPECTED_COLOUR, alpha=0.45, linewidth=0))
            text = "recorded"
        ax.text(j, i, text, ha="center", va="center", fontsize=7.5,
                fontweight="bold" if value > 1 and text != "recorded" else "normal", color="#333333")
    ax.set_xticks(range(len(table.columns)), [_short_label(c, 16) for c in table.columns], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    labels = ["< 1e-3", "< 1e-2", "< 0.1", "< 0.5", "≤ 1", "> 1 fails", "recorded divergence", "not run"]
    colours = [c for _, c in BANDS] + [FAIL_COLOUR, EXPECTED_COLOUR, "#dddddd"]
    fig.legend([Patch(color=c) for c in colours], labels, loc="outside lower center",
               ncols=max(1, min(len(labels), int(fig.get_figwidth() * 13 // 24))), fontsize=8, frameon=False)
    fig.suptitle("Worst error / limit of each case × implementation (every gated row; ≤ 1 passes)", fontsize=10)
    return _png(fig)


def layer_columns(details: pd.DataFrame) -> list[str]:
    """Forward then backward names in the order of computation for the deepest case; shallower cases fit in."""
    layers = details["layer"].dropna()
    L = int(layers.max()) if len(layers) else 0
    if L == 0:
        return []
    return forward_names(L) + ["cost"] + backward_names(L)


def draw_all(details: pd.DataFrame, trajectories: pd.DataFrame | None) -> dict[str, bytes]:
    """``{file name: PNG bytes}`` of every figure there is something to draw for, in ``FIGURES`` order."""
    details = with_margin(details)
    figures = dict(zip(FIGURES, (bound_ratio_plot(details), trajectory_difference_plot(trajectories),
                                 bound_ratio_heatmap(details))))
    return {name: png for name, png in figures.items() if png is not None}
