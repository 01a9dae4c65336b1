"""``nnparity explain``: every code excerpt is the running source it names, every equation has its section, the
measured numbers are there for every installed implementation, nothing loads from the network, and ``--equation``
prints one section (or refuses a bad name in one line).

The page is rendered from the real excerpts and a small measured frame built here (the rendering tests do not
run the harness); one ``--equation dW`` run exercises the live measurement end to end."""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import itertools
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from nnparity import explain
from nnparity.impls import frameworks
from reports import explain as page

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _fake_rows(equation) -> pd.DataFrame:
    """Harness-like rows for every implementation and dtype: measured numbers chosen here, one failing row."""
    rows = []
    for i, impl in enumerate(frameworks()):
        for dtype in explain.MEASURED_DTYPES:
            for (phase, quantity, _), layer in itertools.product(equation.rows, (1, 2, 3, 4)):
                rows.append(dict(case=f"case-{dtype}", impl=impl, dtype=dtype, phase=phase, quantity=quantity or "W",
                                 layer=layer, step=0, max_abs_err=1e-16 * (i + 1), max_rel_err=2e-16 * (i + 1),
                                 max_ulp=float(i), bound_ratio=0.125 * i, tol=1.0, criterion="bound_ratio<=1",
                                 passed=i < 7, classification="within bound" if i < 7 else "fail", note="",
                                 value=float("nan"), key=equation.case))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def explanation():
    sections = []
    for equation in explain.EQUATIONS:
        rows = explain.rows_of(equation, _fake_rows(equation))
        sections.append(explain.Section(equation, explain.excerpts_of(equation), ["case-float64", "case-float32"],
                                        explain.summarise(rows), rows, [], []))
    return explain.Explanation(sections, list(frameworks()), 1.0, "not run (test)", {"numpy": "test"})


@pytest.fixture(scope="module")
def html_page(explanation):
    return page.render_html(explanation, {})


@pytest.fixture(scope="module")
def md_page(explanation):
    return page.render_markdown(explanation, {})


def _source_lines(module: str, name: str):
    obj = importlib.import_module(module)
    for part in filter(None, name.split(".")):
        obj = getattr(obj, part)
    lines, start = inspect.getsourcelines(obj)
    return lines, max(start, 1)


def _check_excerpt(module, name, first, last, text, marker=None):
    lines, start = _source_lines(module, name)
    assert start <= first <= last < start + len(lines), (module, name, first, last)
    assert text == "".join(lines[first - start:last - start + 1]), (module, name)
    if marker is None:
        assert text == inspect.getsource(importlib.import_module(module) if not name else
                                         _obj(module, name)), (module, name)
    else:
        assert marker in text.splitlines()[0], (module, name, marker)


def _obj(module, name):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_html_excerpt_is_exactly_the_source_it_names(html_page):
    found = re.findall(r'<div class="excerpt" data-module="([^"]+)" data-name="([^"]*)" data-lines="(\d+)-(\d+)"'
                       r'(?: data-marker="([^"]*)")?>.*?<pre>(.*?)</pre>', html_page, re.S)
    assert len(found) >= 100
    for module, name, first, last, marker, code in found:
        text = html.unescape(re.sub(r"<[^>]+>", "", code))
        _check_excerpt(module, name, int(first), int(last), text, html.unescape(marker) if marker else None)


def test_every_markdown_excerpt_is_exactly_the_source_it_names(md_page):
    found = re.findall(r"<!-- excerpt ([\w.]+):([\w.]*):(\d+):(\d+) -->\n[^\n]*\n\n```python\n(.*?)```\n", md_page, re.S)
    assert len(found) >= 100
    for module, name, first, last, text in found:
        lines, start = _source_lines(module, name)
        assert text == "".join(lines[int(first) - start:int(last) - start + 1]), (module, name)


def test_a_marker_names_one_statement_and_a_moved_marker_is_an_error():
    excerpt = explain.extract("numpy", explain.Source("reference.model", "linear_backward", "dW = 1 / m"))
    assert excerpt.text.strip() == "dW = 1 / m * (dZ @ A_prev.T)"
    assert excerpt.path == os.path.join("reference", "model.py")
    with pytest.raises(LookupError):
        explain.extract("numpy", explain.Source("reference.model", "linear_backward", "no such code"))
    with pytest.raises(LookupError):  # two statements: db = ... and dW = ... both contain "1 / m"
        explain.extract("numpy", explain.Source("reference.model", "linear_backward", "= 1 / m"))


def test_every_equation_has_an_anchor_a_mathml_block_and_code_in_every_column(html_page, md_page):
    assert len(explain.EQUATIONS) >= 27
    for equation in explain.EQUATIONS:
        section = re.search(rf"<section id='{re.escape(equation.id)}'>(.*?)</section>", html_page, re.S)
        assert section, equation.id
        assert re.search(r"<math display=\"block\">.+?</math>", section.group(1), re.S), equation.id
        assert f"href='#{equation.id}'" in html_page  # the table of contents
        assert f'<a id="{equation.id}"></a>' in md_page
        assert set(equation.code) == {label for label, _ in explain.COLUMNS}, equation.id
    for required in ("Z", "sigmoid", "tanh", "relu", "leaky-relu", "softmax", "cross-entropy",
                     "categorical-cross-entropy", "l1", "l2-loss", "dZ-sigmoid", "dZ-tanh", "dZ-relu", "dZ-leaky-relu",
                     "dZ-softmax", "dW", "db", "dA-prev", "update", "momentum", "rmsprop", "adam", "l2-regularisation",
                     "dropout", "initialisation", "mini-batches", "lr-decay"):
        assert required in explain.BY_ID


def test_measured_numbers_for_each_implementation_and_dtype(html_page, explanation):
    section = re.search(r"<section id='dW'>(.*?)</section>", html_page, re.S).group(1)
    for i, impl in enumerate(frameworks()):
        for dtype in explain.MEASURED_DTYPES:
            assert f"<tr><td>{impl}</td><td>{dtype}</td><td>{1e-16 * (i + 1):.1e}" in section, (impl, dtype)
    assert "fail" in section  # the eighth implementation's rows failed


def test_nothing_is_loaded_from_the_network(html_page):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html_page, re.I)
    assert "<script" not in html_page and "@import" not in html_page and "url(" not in html_page


def test_a_framework_that_does_not_import_is_said_so_in_its_column():
    excerpt = explain.extract("torch", explain.Source("no_such_framework_impl.model", "linear_forward"))
    assert excerpt.error.startswith("not available here: ModuleNotFoundError")
    assert "not available here" in page._excerpt_html(excerpt)


def _nnparity(*args, env=None):
    return subprocess.run([sys.executable, "-m", "nnparity", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_bad_equation_is_one_line_exit_2_naming_the_valid_ones():
    result = _nnparity("explain", "--equation", "dQ")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "dQ" in lines[0] and "dW" in lines[0] and "adam" in lines[0], result.stderr


def test_equation_dW_prints_the_code_side_by_side_and_the_measured_difference():
    result = _nnparity("explain", "--equation", "dW", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dW = 1 / m * (dZ @ A_prev.T)" in out
    if installed("torch"):
        assert "grads_list = torch.autograd.grad(cost, inputs)" in out
        assert 'grads = {f"d{k}": g for k, g in zip(names, grads_list)}' in out
    table = out.split("measured difference from the reference")[1]
    for impl in frameworks():
        for dtype in explain.MEASURED_DTYPES:
            assert re.search(rf"^  {re.escape(impl)} +{dtype} +(\S+ +){{5}}(identical|<=4 ulp|within bound)",
                             table, re.M) or f"{impl}" in table and "cannot import" in table, (impl, dtype)
    assert "not an equation" not in result.stderr
    for dtype in explain.MEASURED_DTYPES:  # the page names the case that measured it
        assert explain.describe_case(explain.case_for("tanh", dtype)) in out


def test_only_the_work_the_shown_rows_need_is_run():
    by = explain.BY_ID
    assert explain.needs_training([by["dW"]]) == {"tanh": False}  # a gradient: the step-0 pass only
    assert explain.needs_training([by["dW"], by["update"]]) == {"tanh": True}
    assert explain.needs_training([by["leaky-relu"], by["dZ-leaky-relu"], by["momentum"]]) == {"leaky": False,
                                                                                              "relu": True}
    for cost in ("cross-entropy", "categorical-cross-entropy", "l1", "l2-loss"):  # its value at every step
        assert explain.needs_training([by[cost]]) == {by[cost].case: True}, cost


class _NoTraining:
    """An implementation whose forward_backward is the reference's and whose train and predictions fail."""

    name = "no-training"

    def forward_backward(self, parameters, X, Y, case, masks=None):
        from reference.model import forward_backward
        return forward_backward(parameters, X, Y, case, masks)

    def train(self, *args, **kwargs):
        raise AssertionError("train called")

    def predictions(self, *args, **kwargs):
        raise AssertionError("predictions called")


def test_a_capture_only_comparison_calls_neither_train_nor_predictions():
    from nnparity import harness
    from nnparity.data import load_data

    case = explain.case_for("tanh", "float64")
    ref = harness.run_reference(case, load_data(case.data), checkpoints=())
    captured = harness.compare_impl(ref, _NoTraining(), training=False)
    assert set(captured["phase"]) == {"forward", "backward"}
    assert captured["passed"].all() and (captured["max_abs_err"] == 0).all()
    trained = harness.compare_impl(ref, _NoTraining())  # the default trains: its failure is a row
    assert not trained.loc[trained["phase"] == "trajectory", "passed"].any()
    assert trained["note"].str.contains("train raised AssertionError").any()


def _png_size(png: bytes) -> tuple[int, int]:
    import struct

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_figures_of_the_costs_optimisers_and_gradients_are_drawn_and_referenced(explanation, tmp_path):
    drawn = page.figures(explanation)
    kinds = {e.id: e.figure for e in explain.EQUATIONS}
    for eid in ("cross-entropy", "categorical-cross-entropy", "l1", "l2-loss", "update", "adam", "mini-batches"):
        assert kinds[eid] == "bound-vs-step", eid
    for eid in ("dZ-sigmoid", "dZ-tanh", "dZ-relu", "dZ-leaky-relu", "dZ-softmax", "dW", "db", "dA-prev"):
        assert kinds[eid] == "margin", eid
    for eid, kind in kinds.items():
        if kind in ("bound-vs-step", "margin"):
            width, height = _png_size(drawn[eid])
            assert 200 < width <= 1360 and 100 < height < 700, (eid, width, height)  # readable at 1400 px
    html_page = page.render_html(explanation, drawn)
    for eid in drawn:
        section = re.search(rf"<section id='{re.escape(eid)}'>(.*?)</section>", html_page, re.S).group(1)
        assert f"<figure id='{eid}-figure'><img" in section and page.CAPTIONS[kinds[eid]] in html.unescape(section)
    page.write_explain(explanation, str(tmp_path / "out"), False)
    md = (tmp_path / "out" / "explain.md").read_text()
    for eid, png in drawn.items():
        assert f"]({eid}.png)" in md and (tmp_path / "out" / f"{eid}.png").read_bytes() == png


def test_a_margin_figure_needs_compared_rows(explanation):
    section = next(s for s in explanation.sections if s.equation.id == "dW")
    empty = explain.Section(section.equation, {}, [], section.measured, section.rows.iloc[0:0], [], [])
    assert page._margin_figure(empty) is None
