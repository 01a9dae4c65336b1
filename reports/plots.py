"""The report's figures, drawn headless (matplotlib's Agg backend) as PNG bytes.

* ``trajectories.png`` — the cost at every gradient step, every implementation
  overlaid on the reference, one panel per case.
* ``error_vs_step.png`` — ``|impl − ref| / |ref|`` of the cost at every step, log
  scale; an exactly equal step is drawn at ``ZERO_FLOOR`` and labelled so.
* ``layer_errors.png`` — a heatmap per implementation of the norm-wise relative
  error of every forward value and gradient, the worst over step 0 and the checkpoints (rows: cases, columns:
  ``Z1, A1, …, cost, dZL, dWL, …``), log colour scale; failing cells are outlined.

Each function returns ``None`` when there is nothing to draw.  Nothing here imports a framework.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from nnparity.impls import REGISTRY
from nnparity.spec import REFERENCE_IMPL, backward_names, forward_names

#: Where an exact zero (bit-identical) is drawn on a log axis.
ZERO_FLOOR = 1e-17

#: impl -> line style, from the registry: the reference thick and solid, the others thinner and broken on top.
STYLE = {name: dict(color=impl.colour, linewidth=1.2, linestyle=impl.linestyle, zorder=2 + i)
         for i, (name, impl) in enumerate(REGISTRY.items())}
STYLE[REFERENCE_IMPL] = dict(color="black", linewidth=2.6, linestyle="-", alpha=0.45, zorder=1)

MARKERS = {name: impl.marker for name, impl in REGISTRY.items() if name != REFERENCE_IMPL}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: never a window, never a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _grid(n: int, columns: int = 3):
    columns = max(1, min(columns, n))
    return math.ceil(n / columns), columns


def _panels(n: int, width: float = 4.6, height: float = 3.0, sharex=False):
    plt = _pyplot()
    rows, columns = _grid(n)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, sharex=sharex)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _style(impl: str) -> dict:
    return STYLE.get(impl, dict(linewidth=1.2, zorder=6))


def trajectory_plot(trajectories: pd.DataFrame | None) -> bytes | None:
    """Cost against step, every implementation overlaid, one panel per case."""
    if trajectories is None or trajectories.empty:
        return None
    cases = list(dict.fromkeys(trajectories["case"]))
    fig, axes = _panels(len(cases))
    for ax, case in zip(axes, cases):
        rows = trajectories[trajectories["case"] == case]
        for impl, line in rows.groupby("impl", sort=False):
            line = line.sort_values("step")
            ax.plot(line["step"].to_numpy(dtype=float), line["cost"].to_numpy(dtype=float), label=impl, **_style(impl))
        ax.set_title(case, fontsize=9)
        ax.set_xlabel("gradient step", fontsize=8)
        ax.set_ylabel("cost J", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Cost trajectories (implementations overlaid on the NumPy reference)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def error_plot(details: pd.DataFrame) -> bytes | None:
    """|impl − ref| / |ref| of the cost at every step, log scale, one panel per case, a line per implementation."""
    rows = details[(details["phase"] == "trajectory") & details["step"].notna()]
    if rows.empty:
        return None
    cases = list(dict.fromkeys(rows["case"]))
    fig, axes = _panels(len(cases))
    for ax, case in zip(axes, cases):
        any_zero = False
        for impl, line in rows[rows["case"] == case].groupby("impl", sort=False):
            line = line.sort_values("step")
            err = line["max_rel_err"].to_numpy(dtype=float)
            any_zero |= bool((err == 0).any())
            shown = np.where(err == 0, ZERO_FLOOR, err)
            colour = _style(impl).get("color")
            ax.plot(line["step"].to_numpy(dtype=float), shown, linestyle="none", marker=MARKERS.get(impl, "."),
                    markersize=2.5, alpha=0.7, color=colour, label=impl)
            failing = ~line["passed"].astype(bool).to_numpy()
            if failing.any():
                ax.scatter(line["step"].to_numpy(dtype=float)[failing], shown[failing], marker="x", color="red",
                           s=14, zorder=10, label=f"{impl}: step fails")
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, ZERO_FLOOR / 3), max(high, ZERO_FLOOR * 10))
        if any_zero:  # the floor line is labelled in the right margin, clear of the data
            ax.axhline(ZERO_FLOOR, color="grey", linewidth=0.8, linestyle=(0, (1, 2)), zorder=0)
            ax.annotate("= 0", xy=(1, ZERO_FLOOR), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", fontsize=7, color="dimgrey", va="center")
        ax.set_title(case, fontsize=9)
        ax.set_xlabel("gradient step", fontsize=8)
        ax.set_ylabel("|J_impl − J_ref| / |J_ref|", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=7, loc="center right", markerscale=2, framealpha=0.85)
    fig.suptitle("Relative cost difference from the reference at every step (log scale)\n"
                 f"bit-identical steps are drawn on the dotted line at {ZERO_FLOOR:g}, marked '= 0'", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def layer_columns(details: pd.DataFrame) -> list[str]:
    """Forward then backward names in the order of computation for the deepest case; shallower cases fit in."""
    layers = details["layer"].dropna()
    L = int(layers.max()) if len(layers) else 0
    if L == 0:
        return []
    return forward_names(L) + ["cost"] + backward_names(L)


def layer_error_table(details: pd.DataFrame, impl: str, column: str = "max_rel_err") -> pd.DataFrame:
    """Rows: cases; columns: ``Z1, A1, …, cost, dZL, …`` (step 0 and the checkpoints: the largest); values: ``column``."""
    rows = details[(details["impl"] == impl) & details["phase"].isin(["forward", "backward"])]
    names = rows["quantity"].astype(str) + rows["layer"].map(lambda l: "" if pd.isna(l) else str(int(l)))
    table = rows.assign(name=names).pivot_table(index="case", columns="name", values=column, aggfunc="max",
                                                sort=False, dropna=False)
    order = [c for c in layer_columns(details) if c in table.columns]
    cases = [c for c in dict.fromkeys(details["case"]) if c in table.index]
    return table.reindex(index=cases, columns=order)


def layer_heatmap(details: pd.DataFrame) -> bytes | None:
    """Norm-wise relative error of every forward value and gradient, one heatmap per implementation."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    captured = details[details["phase"].isin(["forward", "backward"])]
    impls = list(dict.fromkeys(captured["impl"]))
    if not impls:
        return None
    tables = {impl: layer_error_table(details, impl) for impl in impls}
    passed = {impl: layer_error_table(details.assign(passed=details["passed"].astype(float)), impl, "passed")
              for impl in impls}
    values = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()])
    positive = values[np.isfinite(values) & (values > 0)]
    any_zero = bool((values == 0).any())
    vmin = ZERO_FLOOR if any_zero or not positive.size else max(ZERO_FLOOR, float(positive.min()))
    vmax = max(vmin * 10, float(positive.max()) if positive.size else vmin * 10)
    norm = LogNorm(vmin=vmin, vmax=vmax)
    n_rows = max(len(t.index) for t in tables.values())
    n_columns = max(len(t.columns) for t in tables.values())
    width = min(22.0, 2.6 + 0.46 * n_columns)
    fig, axes = plt.subplots(len(impls), 1, figsize=(width, (1.5 + 0.36 * n_rows) * len(impls) + 0.4),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")  # grey: no such layer in this case
    image = None
    for ax, impl in zip(axes[:, 0], impls):
        table = tables[impl]
        data = table.to_numpy(dtype=float)
        shown = np.ma.masked_invalid(np.where(data == 0, ZERO_FLOOR, data))
        image = ax.imshow(shown, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(impl, fontsize=9, loc="left", fontweight="bold")
        ax.set_xticks(range(len(table.columns)), table.columns, fontsize=7, rotation=90)
        ax.set_yticks(range(len(table.index)), table.index, fontsize=7)
        ok = passed[impl].reindex(index=table.index, columns=table.columns).to_numpy(dtype=float)
        for (i, j), value in np.ndenumerate(data):
            if value == 0:
                ax.text(j, i, "0", ha="center", va="center", fontsize=6, color="white")
            if ok[i, j] == 0:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    bar = fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.9, pad=0.01, aspect=30)
    bar.set_label("max|impl − ref| / max|ref|", fontsize=7)
    fig.suptitle("Norm-wise relative error of each forward value and gradient, step 0 and checkpoints, worst (log colour)\n"
                 "0 = bit-identical; grey = the case has no such layer; red outline = fails", fontsize=9)
    bar.ax.tick_params(labelsize=7)
    return _png(fig)


def draw_all(details: pd.DataFrame, trajectories: pd.DataFrame | None) -> dict[str, bytes]:
    """``{file name: PNG bytes}`` of every figure there is something to draw for."""
    figures = {
        "trajectories.png": trajectory_plot(trajectories),
        "error_vs_step.png": error_plot(details),
        "layer_errors.png": layer_heatmap(details),
    }
    return {name: png for name, png in figures.items() if png is not None}
