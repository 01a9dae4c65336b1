"""``nnparity explain``'s conv and pool sections: after the dense ones in the notes' order, code from every
framework column (the reference's loops, the frameworks' conv modules, torch's layout conversion), numbers that are
the conv harness's own (computed again here, independently of explain) and within bound, the catalogue entries of
each section, and ``--equation`` naming them (an unknown name still one line, exit 2, listing every id)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

from nnparity import explain
from nnparity.convspec import QUANTITIES, ConvCase
from reports import explain as page

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONV_IDS = ("conv-output-size", "zero-pad", "conv", "pool", "conv-backward", "pool-backward")
LABELS = [label for label, _ in explain.COLUMNS]


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _nnparity(*args, env=None):
    return subprocess.run([sys.executable, "-m", "nnparity", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.fixture(scope="module")
def live():
    """The six conv sections measured by explain itself (every implementation, both dtypes, the quick tier)."""
    return explain.gather(list(CONV_IDS), figures=False)


def _sections(live) -> dict:
    return {s.equation.id: s for s in live.sections}


# --------------------------------------------------------------------------- the equations


def test_the_conv_sections_follow_the_dense_ones_in_the_notes_order():
    ids = [e.id for e in explain.EQUATIONS]
    assert tuple(ids[-len(CONV_IDS):]) == CONV_IDS
    assert ids.index("lr-decay") < ids.index("conv-output-size")
    assert {explain.BY_ID[i].group for i in CONV_IDS} == {"convolution"} and explain.GROUPS[-1] == "convolution"
    assert explain.BY_ID["conv-output-size"].text.startswith("n_H = floor((n_H_prev + 2p - f) / s) + 1")
    assert "A_prev_pad[i, hs + h', ws + w', c'] W[h', w', c', c] + b[c]" in explain.BY_ID["conv"].text
    assert "max_(h', w' < f) Z[i, hs + h', ws + w', c]" in explain.BY_ID["pool"].text
    assert "create_mask_from_window" in explain.BY_ID["pool-backward"].text
    assert "distribute_value" in explain.BY_ID["pool-backward"].text
    for eid in CONV_IDS:  # each id, and its snake_case spelling, names its section
        assert explain.get(eid).id == eid and explain.get(eid.replace("-", "_")).id == eid


def test_each_conv_section_is_measured_by_conv_cases_and_names_its_catalogue_entries():
    by = explain.BY_ID
    assert explain.needs_training([by[i] for i in CONV_IDS]) == {"conv-max": False, "conv-average": False}
    assert by["pool"].keys == by["pool-backward"].keys == ("conv-max", "conv-average")
    assert by["conv"].keys == ("conv-max",)
    assert {"conv-same-padding", "conv-kernel-layout"} <= set(by["conv"].catalogue)
    assert {"avg-pool-padding", "torch-pool-ceil-mode"} <= set(by["pool"].catalogue)
    assert "maxpool-tied-gradient" in by["pool-backward"].catalogue
    from nnparity.catalogue import ENTRIES

    for eid in CONV_IDS:
        assert set(by[eid].catalogue) <= {e.id for e in ENTRIES}, eid
    for tier in explain.TIERS:
        for key in explain.CONV_CASES:
            for dtype in explain.MEASURED_DTYPES:
                case = explain.case_for(key, dtype, tier)
                assert isinstance(case, ConvCase) and case.dtype == dtype
                assert case.id == f"explain-{key}-{tier}-{dtype}" and case.mode == key.split("-")[1]
                assert case.id in explain.describe_case(case) and str(case.shapes()["Z"]) in explain.describe_case(case)
    quick = explain.case_for("conv-max", "float64")
    assert (quick.n_W_prev + 2 * quick.pad - quick.f) % quick.stride  # n_W's floor drops a column
    assert quick.pool_stride < quick.pool_f  # overlapping pool windows: the backward's sums add up


# --------------------------------------------------------------------------- the code


def _obj(module, name):
    obj = importlib.import_module(module)
    for part in filter(None, name.split(".")):
        obj = getattr(obj, part)
    return obj


def test_each_conv_section_has_code_from_every_framework_column():
    for eid in CONV_IDS:
        equation = explain.BY_ID[eid]
        assert list(equation.code) == LABELS, eid
        for label, excerpts in explain.excerpts_of(equation).items():
            assert excerpts, (eid, label)
            for x in excerpts:
                if x.error:  # a framework that is not installed here
                    assert not installed(x.source.module.split(".")[0]) or "not available" in x.error, x.error
                    continue
                lines, start = inspect.getsourcelines(inspect.unwrap(_obj(x.source.module, x.source.name)))
                start = max(start, 1)
                assert x.text == "".join(lines[x.first - start:x.last - start + 1]), (eid, label, x.qualname)
                if x.source.marker:
                    assert x.source.marker in x.text.splitlines()[0], (eid, label, x.source.marker)
    code = {eid: {label: "".join(x.text for x in xs) for label, xs in explain.excerpts_of(explain.BY_ID[eid]).items()}
            for eid in CONV_IDS}
    # the reference's column: the course's loops
    assert "conv_single_step(a_slice_prev, W[:, :, :, c], b[:, :, :, c])" in code["conv"]["numpy"]
    assert "mask = create_mask_from_window(a_prev_slice)" in code["pool-backward"]["numpy"]
    assert "distribute_value(da, (f, f))" in code["pool-backward"]["numpy"]
    assert "dW[:, :, :, c] += a_slice * dZ[i, h, w, c]" in code["conv-backward"]["numpy"]
    assert "return (n_prev + 2 * pad - f) // stride + 1" in code["conv-output-size"]["numpy"]
    if installed("torch"):  # torch's layout conversion, where a learner sees it
        assert "W = to_oihw(to_tensor(W, case.dtype))" in code["conv"]["torch"]
        assert "return W.permute(3, 2, 0, 1)" in code["conv"]["torch"]
        assert "dW = to_numpy(to_hwio(dW))" in code["conv-backward"]["torch"]
        assert "conv.weight.copy_(to_oihw(" in code["conv"]["torch-nn"]
        assert "torch.autograd.grad(Z, (A_prev, W, b), grad_outputs=dZ)" in code["conv-backward"]["torch"]
    if installed("tensorflow"):
        assert "tf.nn.conv2d(" in code["conv"]["tf"] and "keras.layers.Conv2D(" in code["conv"]["keras"]
    if installed("jax"):
        assert 'DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")' in code["conv"]["jax"]
        assert "(dZ,) = pool_vjp(dA)" in code["pool-backward"]["flax"]


# --------------------------------------------------------------------------- the measured numbers


@pytest.fixture(scope="module")
def harness_frames():
    """{(case key, dtype, implementation): rows}: the conv harness run here on the conv sections' cases, not through
    explain's measurement."""
    from nnparity import conv_harness

    frames = {}
    for key in explain.CONV_CASES:
        for dtype in explain.MEASURED_DTYPES:
            ref = conv_harness.run_reference(explain.case_for(key, dtype))
            for name in explain.measured_names():
                frames[key, dtype, name] = conv_harness.compare_conv(ref, name)
    return frames


def _independent(section, frames) -> dict:
    """{(impl, dtype): (worst bound ratio, worst max abs err)} of the section's quantities over its cases."""
    quantities = {quantity for _, quantity, _ in section.equation.rows}
    worst = {}
    for (key, dtype, name), frame in frames.items():
        if key not in section.equation.keys or (frame["phase"] == "unavailable").any():
            continue
        rows = frame[frame["quantity"].isin(quantities)]
        assert len(rows) == len(quantities), (section.equation.id, name)
        ratio, err = worst.get((name, dtype), (0.0, 0.0))
        worst[name, dtype] = (max(ratio, rows["bound_ratio"].max()), max(err, rows["max_abs_err"].max()))
    return worst


def test_each_conv_section_shows_the_conv_harness_numbers_within_bound(live, harness_frames):
    sections = _sections(live)
    assert list(sections) == list(CONV_IDS)
    for eid in CONV_IDS:
        section = sections[eid]
        quantities = [q for _, q, _ in section.equation.rows]
        assert set(quantities) <= set(QUANTITIES)
        rows = section.rows[section.rows["phase"] != "unavailable"]
        assert set(rows["quantity"]) == set(quantities), eid
        assert set(rows["case"]) == {explain.case_for(k, d).id for k in section.equation.keys
                                     for d in explain.MEASURED_DTYPES}, eid
        assert len(section.cases) == 2 * len(section.equation.keys)
        keys = section.equation.keys
        worst = _independent(section, harness_frames)
        measured = {(r["impl"], r["dtype"]): r for r in section.measured.to_dict("records") if r.get("rows")}
        assert set(measured) == set(worst), eid
        for (impl, dtype), (ratio, err) in worst.items():
            r = measured[impl, dtype]
            assert r["bound_ratio"] == ratio and r["max_abs_err"] == err, (eid, impl, dtype, r, ratio, err)
            assert r["passed"] and r["bound_ratio"] <= 1, (eid, impl, dtype)
            assert r["rows"] == len(quantities) * len(keys), (eid, impl, dtype)
        assert any(impl == "torch" for impl, _ in worst) or not installed("torch")
        text = page.render_terminal(section, 200, tier="quick")
        for (impl, dtype), (ratio, err) in worst.items():
            line = next(line for line in text.splitlines() if line.split()[:2] == [impl, dtype])
            assert page.MEASURES[0][2](err) in line and page.MEASURES[3][2](ratio) in line, (eid, line)
        for record in section.catalogue:
            assert f"catalogue {record['id']}:" in text.replace("\n    ", " ")
        assert [r["id"] for r in section.catalogue] == list(section.equation.catalogue), eid
        for case in section.cases:
            assert case.split(":")[0] in text


def test_the_conv_sections_render_in_the_page_with_every_column(live):
    html_page = page.render_html(live, {})
    md = page.render_markdown(live, {})
    for eid in CONV_IDS:
        start = html_page.index(f"<section id='{eid}'>")
        section = html_page[start:html_page.index("</section>", start)]
        for label in LABELS:
            assert f"<h3>{label}</h3>" in section, (eid, label)
        assert "<math" in section and "<table>" in section
        assert f'<a id="{eid}"></a>' in md and f"href='#{eid}'" in html_page
    assert "<h3>convolution</h3>" in html_page


# --------------------------------------------------------------------------- the command line


def test_equation_pool_backward_prints_its_section_on_the_terminal():
    result = _nnparity("explain", "--equation", "pool_backward", "--impl", "torch", env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("pool-backward: Pool backward")
    assert "[numpy] reference.conv.create_mask_from_window" in out and "[numpy] reference.conv.distribute_value" in out
    for key in ("conv-max", "conv-average"):
        for dtype in explain.MEASURED_DTYPES:
            assert explain.describe_case(explain.case_for(key, dtype))[:60] in out.replace("\n    ", " ")
    if installed("torch"):
        assert "[torch] torch_impl.conv.pool_backward" in out
        for dtype in explain.MEASURED_DTYPES:
            assert f"torch {dtype}: within bound" in out or f"torch {dtype}: identical" in out or \
                f"torch {dtype}: <=4 ulp" in out, out
    assert "catalogue maxpool-tied-gradient:" in out


def test_an_unknown_equation_is_still_one_line_exit_2_listing_the_conv_ids_too():
    result = _nnparity("explain", "--equation", "convolution")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'convolution'" in lines[0], result.stderr
    for eid in ("dW", "adam", *CONV_IDS):
        assert eid in lines[0], eid


def test_help_lists_the_conv_ids_with_the_others():
    from nnparity.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    text = sub.choices["explain"].format_help()
    listed = text.split("equations: ")[1].split("\n")[0].split(", ")
    assert listed == [e.id for e in explain.EQUATIONS]
    assert listed[-len(CONV_IDS):] == list(CONV_IDS)
