"""The answer of ``nnparity check`` on a terminal: the checklist, the first divergence with an excerpt of
expected vs got, the diagnosis, and the verdict (rich; plain text when stdout is not a terminal)."""

from __future__ import annotations

from nnparity.check.battery import CheckResult, _describe
from nnparity.numbers import number

NAMES = {"logistic": "logistic regression", "two-layer": "the 2-layer network", "deep": "the L-layer network",
         "optimisation": "optimisation and regularisation", "protocol": "the implementation protocol",
         "convolution": "the convolution model"}


def _num(x) -> str:
    return number(x, ".2g", nan="-")


def render(result: CheckResult, show_all: bool = False, console=None) -> None:
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    width = None if sys.stdout.isatty() else 130  # a pipe or a file: one row per line, not 80 columns
    console = console or Console(highlight=False, width=width)
    kinds = ", ".join(NAMES.get(i, i) for i in result.interfaces)
    console.print(f"[bold]nnparity check {escape(result.target)}[/]: {kinds}")
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column, justify in (("", "left"), ("function", "left"), ("calls", "right"), ("bound ratio", "right"),
                            ("max abs err", "right"), ("max rel err", "right"), ("", "left")):
        table.add_column(column, justify=justify, no_wrap=True, overflow="ellipsis", min_width=len(column) or 4)
    table.columns[1].min_width = max(len(name) for name in result.checked) if result.checked else 8
    table.columns[-1].max_width = 60  # the equation or convention: cut, so that the numbers keep their columns
    for f in result.functions():
        mark = "[green]ok[/]" if f["passed"] else "[red]FAIL[/]"
        note = f["conventions"][0] if f["conventions"] else f["equation"]
        if not f["passed"]:
            note = f"{f['failed']} of {f['quantities']} quantities fail"
        table.add_row(mark, f["function"], str(f["calls"]), _num(f["bound_ratio"]), _num(f["max_abs_err"]),
                      _num(f["max_rel_err"]), escape(note))
    console.print(table)
    if result.absent:
        console.print(f"absent (not a failure): {', '.join(result.absent)}")
    for note in result.notes:
        console.print(f"note: {escape(note)}")
    if show_all:
        for row in result.rows:
            console.print(f"  {'ok  ' if row.passed else 'FAIL'} {escape(_describe(row))}")
    if result.first is not None:
        row = result.first
        console.print()
        console.print(f"[bold red]first divergence[/] (in the order of computation): {escape(_describe(row))}")
        if row.expected or row.got:
            console.print(f"  expected {escape(row.expected)}")
            console.print(f"  got      {escape(row.got or '-')}")
        for d in result.diagnoses:
            where = f"{d['function']} {d['quantity']}".strip()  # an exception's diagnosis has no quantity
            console.print(f"[bold]likely mistake[/] ({where}): {escape(d['message'])}")
            console.print(f"  hint: {escape(d['hint'])}")
        if (row.expected or row.got) and not any(d["function"] == row.function for d in result.diagnoses):
            equation = result.equation(row.function)
            console.print(f"no known mistake matches; compare {escape(row.function)} with "
                          + (f"the course's equation, step by step: {escape(equation)}" if equation else
                             "the course's code, step by step"))
    passed = sum(f["passed"] for f in result.functions())
    total = len(result.checked)
    if result.passed:
        console.print(f"[bold green]PASS[/]: {total} functions, {len(result.rows)} quantities within their bounds")
    else:
        console.print(f"[bold red]FAIL[/]: {total - passed} of {total} functions fail")
