"""``nnparity explain``: every code excerpt is the running source it names, every equation has its section, the
measured numbers are there for every installed implementation, nothing loads from the network, and ``--equation``
prints one section (or refuses a bad name in one line).

The page is rendered from the real excerpts and a small measured frame built here (the rendering tests do not
run the harness); one ``--equation dW`` run exercises the live measurement end to end."""

from __future__ import annotations

import dataclasses
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
    found = re.findall(r"<!-- excerpt ([\w.]+):([\w.]*):(\d+):(\d+) -->\n[^\n]*\n\n```python\n(.*?)```\n", md_page,
                       re.S)
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
        assert re.search(r"<math\b[^>]*\sdisplay=\"block\"[^>]*>.+?</math>", section.group(1), re.S), equation.id
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
                                                                                              "momentum": True}
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
    captured = harness.compare_impl(ref, _NoTraining(), (harness.CAPTURES,))
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


# --------------------------------------------------------------------------- issue 23: what the page says


def test_each_section_measures_a_case_that_isolates_its_equation():
    """The cost, optimiser and decay sections no longer share one case: a cost runs plain gradient descent, an
    optimiser its own optimiser with the plain cross-entropy, decay plain gradient descent with the decay."""
    by = explain.BY_ID
    for tier in explain.TIERS:
        for dtype in explain.MEASURED_DTYPES:
            def case(eid):
                return explain.case_for(by[eid].case, dtype, tier)

            for cost in ("cross-entropy", "categorical-cross-entropy", "l1", "l2-loss"):
                c = case(cost)
                assert (c.optimizer, c.decay, c.lambd, c.keep_prob) == ("gd", "none", 0.0, 1.0), (cost, tier)
            assert case("l1").loss == "l1" and case("l2-loss").loss == "l2"
            for optimizer in ("momentum", "rmsprop", "adam"):
                c = case(optimizer)
                assert c.optimizer == optimizer and c.loss in ("cross_entropy", "categorical_cross_entropy")
                assert (c.decay, c.lambd, c.keep_prob) == ("none", 0.0, 1.0), (optimizer, tier)
            c = case("lr-decay")
            assert (c.optimizer, c.decay) == ("gd", "inverse-time")
            assert case("mini-batches").optimizer == "gd" and case("mini-batches").batch_size
    shared = {by[e].case for e in ("categorical-cross-entropy", "adam", "lr-decay")}
    assert len(shared) == 3  # the old page measured all three on one Adam case


def _keras_adam_rows(divergence: str):
    """Harness-like rows of the adam section: keras float64 fails its update rows; ``divergence`` marks them."""
    equation = explain.BY_ID["adam"]
    rows = _fake_rows(equation)
    rows["passed"] = True
    rows["classification"] = "within bound"
    rows["divergence"] = ""
    bad = (rows["impl"] == "keras") & (rows["dtype"] == "float64") & (rows["phase"] == "update")
    rows.loc[bad, ["passed", "classification", "bound_ratio", "divergence"]] = [False, "fail", 4.1e4, divergence]
    return equation, explain.rows_of(equation, rows)


def test_a_recorded_divergence_shows_as_expected_with_its_record_never_as_a_plain_fail():
    equation, rows = _keras_adam_rows("keras-adam-epsilon")
    measured = explain.summarise(rows)
    keras = measured[(measured["impl"] == "keras") & (measured["dtype"] == "float64")].iloc[0]
    assert keras["classification"] == explain.EXPECTED and keras["divergence"] == "keras-adam-epsilon"
    from nnparity import divergences

    record = [r for r in divergences.records() if r["id"] == "keras-adam-epsilon"]
    section = explain.Section(equation, {}, ["case"], measured, rows, [], record)
    table = page._measured_html(section)
    cell = re.search(r"<tr><td>keras</td><td>float64</td>.*?</tr>", table).group(0)
    assert "expected divergence: keras-adam-epsilon" in cell and "class='text expected'" in cell
    assert "'text fail'" not in cell and "FAIL" not in page._measured_md(section)
    text = page.render_terminal(section, 100)
    assert "keras float64: expected divergence, as recorded by keras-adam-epsilon" in text.replace("\n    ", " ")
    assert "known divergence keras-adam-epsilon" in text
    # a failure that is not the recorded one stays a failure
    _, rows = _keras_adam_rows("")
    keras = explain.summarise(rows).query("impl == 'keras' and dtype == 'float64'").iloc[0]
    assert keras["classification"] == "fail" and not keras["divergence"]


def test_mark_divergence_marks_only_a_failure_as_recorded():
    """keras on an Adam case fails its first update exactly as keras-adam-epsilon records, and passes against the
    aligned reference: marked.  The same frame on a case without a record: not marked."""
    from nnparity import harness
    from nnparity.data import load_data

    case = explain.case_for("adam", "float64")
    ref = harness.run_reference(case, load_data(case.data), checkpoints=(), trajectory=False)

    class Keras:  # the reference's pass; its one-step update is Keras' Adam (nnparity.divergences.keras_update)
        name = "keras"

        def forward_backward(self, parameters, X, Y, case, masks=None):
            from reference.model import forward_backward
            return forward_backward(parameters, X, Y, case, masks)

        def train(self, parameters, X, Y, case, schedule=None, masks=None):
            from nnparity.divergences import keras_update, reference_update
            from reference.model import train

            with reference_update(keras_update):
                return train(parameters, X, Y, case, schedule, masks)

    frame = harness.compare_impl(ref, Keras(), (harness.CAPTURES, harness.FIRST_UPDATE))
    assert not frame["passed"].all()
    marked = explain.mark_divergence(ref, Keras(), frame.copy(), True)
    assert set(marked.loc[~marked["passed"], "divergence"]) == {"keras-adam-epsilon"}
    plain = explain.case_for("tanh", "float64")
    plain_ref = harness.run_reference(plain, load_data(plain.data), checkpoints=(), trajectory=False)
    assert (explain.mark_divergence(plain_ref, "keras", frame.copy(), True)["divergence"] == "").all()


def test_the_detection_power_column_is_named_plainly_and_defined_before_its_first_use(html_page, md_page):
    for text in (html.unescape(html_page), md_page):
        assert "a bug hides below" not in text
        first_header = text.index(page.FLAGGED)
        definition = text.index(page.FLAGGED_MEANS[len(page.FLAGGED) + 2:])  # the definition, in the intro
        assert definition < text.index("<table>" if "<table>" in text else "| implementation |")
        assert first_header < definition or text.count(page.FLAGGED) > 1
    section = next(s for s in _sections() if s.equation.id == "dW")
    out = page.render_terminal(section, 120)
    assert "smallest flagged change (rel.): the detection power" in out


def _sections():
    sections = []
    for equation in explain.EQUATIONS:
        rows = explain.rows_of(equation, _fake_rows(equation))
        sections.append(explain.Section(equation, explain.excerpts_of(equation), ["case-float64", "case-float32"],
                                        explain.summarise(rows), rows, [], []))
    return sections


def test_known_divergences_read_as_english_not_as_raw_conditions():
    from nnparity import divergences

    for record in divergences.records():
        text = page.divergence_text(record)
        assert "{" not in text and "}" not in text and " * " not in text and " in {" not in text, text
    adam = page.divergence_text(next(r for r in divergences.records() if r["id"] == "keras-adam-epsilon"))
    assert "applies when the optimizer is adam; its first failing row: any parameter after the first update " \
           "(step 0)" in adam
    leaky = page.divergence_text(next(r for r in divergences.records() if r["id"] == "keras-leaky-relu-float32-alpha"))
    assert "the dtype is float64 and a layer's activation is leaky_relu" in leaky and "A1 in the forward pass" in leaky
    section = next(s for s in _sections() if s.equation.id == "adam")
    section.divergences = [r for r in divergences.records() if r["id"] == "keras-adam-epsilon"]
    for text in (page._catalogue_html(section), page.render_markdown(explain.Explanation(
            [section], [], 1.0, "test", {}), {}), page.render_terminal(section, 100)):
        assert "optimizer in {" not in text and "update * step" not in text


def test_the_terminal_view_fits_80_columns_and_wraps_at_word_boundaries(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert page.terminal_width() == 80
    for section in _sections():
        out = page.render_terminal(section, tier="quick")  # the terminal's width: $COLUMNS
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= 80, section.equation.id
        words = set(out.split())
        for excerpts in section.excerpts.values():
            for x in excerpts:
                for token in x.text.split():
                    if len(token) <= 60:  # a longer one cannot fit a line and is cut
                        assert token in words, (section.equation.id, token)
        for r in section.measured.to_dict("records"):
            assert f"{r['impl']} {r['dtype']}:" in out  # the narrow list, one entry per implementation and dtype
        assert "tier: quick" in out


def _mathml_tree(mathml: str):
    """The MathML as an element tree, its tags without the MathML namespace (it must be well-formed XML)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(mathml)
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


def _text(element) -> str:
    return "".join(element.itertext())


def test_mathml_scripts_never_nest_on_a_scripted_base():
    """A^[l-1]^T is one msup whose superscript row holds [l-1] and T (no T floating above the bracket); a symbol
    with a sub- and a superscript is one msubsup; a power of a scripted symbol is parenthesised."""
    scripts = ("msup", "msub", "msubsup", "munder", "mover", "munderover")
    for equation in explain.EQUATIONS:
        for element in _mathml_tree(equation.mathml).iter():
            if element.tag in scripts:
                base = list(element)[0]
                while base.tag == "mrow" and len(base) == 1:  # a group of one element: {A^{[l]}}^T
                    base = list(base)[0]
                assert base.tag not in ("msup", "msub", "msubsup"), (equation.id, element.tag)
                if element.tag in ("msup", "msub", "msubsup"):  # a script is never on a bracket alone: (A^[l])^2
                    assert not (base.tag == "mo" and base.text in ")]}"), (equation.id, element.tag)
    dw = _mathml_tree(explain.BY_ID["dW"].mathml)
    transposed = [e for e in dw.iter("msup") if _text(list(e)[0]) == "A"]
    assert len(transposed) == 1
    script = list(transposed[0])[1]
    assert script.tag == "mrow" and [c.tag for c in script][-1] == "mi" and list(script)[-1].text == "T"
    assert _text(script) == "[l\u22121]T"
    adam = _mathml_tree(explain.BY_ID["adam"].mathml)
    assert [(_text(list(e)[0]), _text(list(e)[1]), _text(list(e)[2]))
            for e in adam.iter("msubsup")] == [("\u03b2", "1", "t"), ("\u03b2", "2", "t")]
    db = _mathml_tree(explain.BY_ID["db"].mathml)
    assert [_text(list(e)[0]) for e in db.iter("msubsup")] == ["dZ"]
    squared = [e for e in _mathml_tree(explain.BY_ID["dZ-tanh"].mathml).iter("msup") if list(e)[1].text == "2"]
    assert len(squared) == 1 and list(squared[0])[0].tag == "mrow" and list(list(squared[0])[0])[0].text == "("


def test_each_equation_is_one_latex_string_its_mathml_and_text_read_from_it():
    from latex2mathml.converter import convert

    for equation in explain.EQUATIONS:
        assert equation.mathml == convert(equation.latex, display="block"), equation.id
        _mathml_tree(equation.mathml)  # well-formed: no bare & or < from the conversion
        assert equation.text == explain.plain_text(equation.latex), equation.id
        assert "\\" not in equation.text and "\0" not in equation.text, (equation.id, equation.text)
    assert {f.name for f in dataclasses.fields(explain.Equation)} & {"text", "mathml"} == set()
    assert explain.BY_ID["Z"].text == "Z[l] = W[l] A[l-1] + b[l]"
    assert explain.BY_ID["dW"].text == "dW[l] = 1/m dZ[l] A[l-1]^T"
    assert explain.BY_ID["dA-prev"].text == "dA[l-1] = W[l]^T dZ[l]"
    assert explain.BY_ID["db"].text == "db[l] = 1/m sum_i dZ[l](:,i)"
    assert explain.BY_ID["sigmoid"].text == "A = sigma(Z) = 1 / (1 + e^(-Z))"
    assert explain.BY_ID["update"].text == "W[l] = W[l] - alpha dW[l];  b[l] = b[l] - alpha db[l]"
    assert explain.BY_ID["leaky-relu"].text == "A = Z if Z > 0, slope * Z otherwise"
    assert explain.BY_ID["adam"].text.endswith(";  W[l] = W[l] - alpha vhat / (sqrt(shat) + eps)")


def test_plain_text_reads_each_construct_and_refuses_an_unknown_command():
    cases = {
        r"\frac{\lambda}{2m}": "lambda / (2m)",
        r"\frac{1}{\sqrt{n^{[l-1]}}}": "1/sqrt(n[l-1])",
        r"e^{-Z} + \beta_1^t": "e^(-Z) + beta_1^t",
        r"\left(A^{[l]}\right)^2": "(A[l])^2",
        r"X^{\{t\}}": "X{t}",
        r"\hat{y}_i \ast \mathit{keep\_prob}": "yhat_i * keep_prob",
        r"a;\quad \text{(note: x_1)}": "a;  (note: x_1)",
        r"\begin{cases} 1 & \text{if } x > 0 \\ 0 & \text{otherwise} \end{cases}": "1 if x > 0, 0 otherwise",
        r"\begin{align*} a &= 1 \\ b &= 2 \end{align*}": "a = 1;  b = 2",
    }
    for latex, text in cases.items():
        assert explain.plain_text(latex) == text, latex
    with pytest.raises(ValueError, match=r"\\nabla"):
        explain.plain_text(r"\nabla J")


def test_the_page_says_which_tier_ran(explanation):
    assert "Tier: quick (the default" in html.unescape(page.render_html(explanation, {}))
    full = explain.Explanation(explanation.sections, explanation.names, 1.0, "test", {}, "full")
    assert "Tier: full (--full)" in page.render_markdown(full, {})


def test_full_flag_parses_and_quick_is_the_default():
    from nnparity.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["explain", "--equation", "dW"]).full is False
    assert parser.parse_args(["explain", "--full"]).full is True
    for tier in explain.TIERS:
        for key in explain.CASES:
            for dtype in explain.MEASURED_DTYPES:
                case = explain.case_for(key, dtype, tier)
                assert case.id == f"explain-{key}-{tier}-{dtype}" and case.dtype == dtype
    assert explain.case_for("relu", "float64", "quick").layer_dims == (2, 4, 1)
    assert explain.case_for("relu", "float64", "full").layer_dims == (64, 20, 7, 5, 1)


def test_the_work_is_split_in_two_and_a_forked_result_comes_back():
    names = list(frameworks())
    for equations in ([explain.BY_ID["dW"]], list(explain.EQUATIONS)):
        here, there = explain.split(names, explain.needs_training(equations))
        assert sorted(here + there) == sorted(names) and here and there
    assert explain._fork(lambda: {"rows": [1, 2]}, ["x"]).result() == {"rows": [1, 2]}

    def broken():
        raise ValueError("no such case")

    with pytest.raises(RuntimeError, match="ValueError: no such case"):
        explain._fork(broken, ["x"]).result()
