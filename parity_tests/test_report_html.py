"""report.html, env.json, the figures, an unavailable framework end to end, and progress output.

Synthetic detail frames (as in test_report) except for the unavailable-framework
test, which runs the real command in-process with torch's module made unimportable.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from nnparity import cli, impls, progress
from nnparity.spec import Case
from reports import write_report
from reports.plots import FIGURES, ZERO_FLOOR, layer_columns
from test_report import META, details, unavailable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Tags, tables, image sources, links, and the text of each table cell."""

    def __init__(self):
        super().__init__()
        self.tags, self.images, self.links, self.tables, self.cells = [], [], [], 0, []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("a", "link", "script", "iframe", "source") or "src" in attrs and tag != "img":
            self.links.append((tag, attrs.get("href") or attrs.get("src") or ""))
        if tag == "table":
            self.tables += 1
        if tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell.strip())
            self._cell = None


def _trajectories(frame):
    steps = frame[frame["phase"] == "trajectory"]
    cost = pd.DataFrame({"case": steps["case"], "impl": steps["impl"], "step": steps["step"].astype(int),
                         "cost": 0.7 - 0.01 * steps["step"].astype(float)})
    reference = cost[cost["impl"] == cost["impl"].iloc[0]].assign(impl="numpy")
    return pd.concat([reference, cost], ignore_index=True)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    frame = pd.concat([details(), details(impl="tf", fail={"dW2", "step 1"}), unavailable(impl="tf-function")],
                      ignore_index=True)
    frame.loc[frame["quantity"].eq("Z") & frame["layer"].eq(1), ["max_abs_err", "max_rel_err"]] = 0.0
    case = Case(layer_dims=(2, 4, 1), dtype="float32", name="l2-relu-float32-fullbatch")
    out = write_report(frame, tmp_path_factory.mktemp("html") / "r", META, cases=[case],
                       trajectories=_trajectories(frame))
    return out, frame


def test_report_directory_lists_every_file(html_report):
    out, _ = html_report
    assert {p.name for p in out.iterdir()} >= {  # (with cases, also reports.golden's files)
        "bound_ratio_heatmap.png", "bound_ratio_vs_step.png", "details.csv", "env.json", "nnparity.json",
        "report.html", "report.md", "summary.csv", "summary.json", "trajectories.csv", "trajectory_differences.png"}
    for name in FIGURES:
        assert (out / name).read_bytes().startswith(PNG)
    back = pd.read_csv(out / "trajectories.csv")
    assert list(back.columns) == ["case", "impl", "step", "cost"] and set(back["impl"]) == {"numpy", "torch", "tf"}


def test_report_html_parses_has_the_tables_and_embeds_its_images(html_report):
    out, _ = html_report
    text = (out / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.tags[0] == "html" and "body" in page.tags
    assert page.tables >= 4  # results, step-0 quantities, cases, environment
    for header in ("case", "impl", "max forward rel err", "max bound ratio", "result", "dW2", "layer dims"):
        assert header in page.cells, header
    assert {"PASS", "FAIL", "UNAVAILABLE"} <= set(page.cells)
    assert "1 of 3 case × implementation comparisons fail" in text
    assert "No module named &#39;tensorflow&#39;" in text or "No module named 'tensorflow'" in text

    assert len(page.images) == 3
    for src in page.images:  # every image is inline: nothing to fetch
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert all(tag == "a" and href.startswith("#") for tag, href in page.links), page.links
    assert "http://" not in text and "https://" not in text and "<script" not in text

    assert "background-color: #f8d0d0" in text and "background-color: #d9f2d9" in text  # fail / pass colouring


def test_env_json_records_the_environment(html_report):
    out, _ = html_report
    env = json.loads((out / "env.json").read_text())
    assert env["versions"]["numpy"] == np.__version__ and env["versions"]["pandas"] == pd.__version__
    assert env["versions"]["python"].count(".") == 2
    assert env["threads"]["os_cpu_count"] == os.cpu_count()
    assert "numpy_build" in env["blas"] and "threadpools" in env["blas"]
    assert env["cpu"]["model"] and isinstance(env["cpu"]["flags"], list)
    assert set(env["env_vars"]) >= {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS"}
    for framework in ("torch", "tensorflow"):
        assert env[framework]["status"] in ("imported", "not imported")
    assert env["run"]["device"].startswith("cpu")


def test_numpy_only_paths_import_no_framework(tmp_path):
    code = (
        "import sys, json\n"
        "sys.path.insert(0, 'parity_tests')\n"
        "from test_report import details\n"
        "from reports import write_report\n"
        f"out = write_report(details(), {str(tmp_path / 'r')!r}, {{'command': 'x'}})\n"
        "env = json.loads((out / 'env.json').read_text())\n"
        "print(env['torch']['status'], env['tensorflow']['status'],\n"
        "      sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))\n"
    )
    probe = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "not imported not imported []"


def test_the_quantity_table_orders_layers_as_computed():
    assert layer_columns(details(L=2)) == ["Z1", "A1", "Z2", "A2", "cost", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1",
                                           "db1"]
    assert ZERO_FLOOR == 1e-17


def test_an_unimportable_framework_still_writes_the_report_and_exits_3(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(impls.REGISTRY, "torch", impls.Impl("torch", "no_such_framework_module.model", "torch"))
    monkeypatch.setenv("CI", "1")
    import time
    import types

    from reports import run as report_run

    clock = iter([1000.0, 1042.5])  # the run's start, then just before writing: the report's seconds
    monkeypatch.setattr(report_run, "time", types.SimpleNamespace(
        time=lambda: next(clock), strftime=time.strftime, localtime=time.localtime, perf_counter=time.perf_counter))
    out = tmp_path / "r"
    # (no self-test or catalogue: they run torch and TF themselves, which is not what this test is about)
    code = cli.main(["report", "--cases", "l1-logreg-float64-fullbatch", "--impl", "torch", "--out", str(out),
                     "--no-selftest", "--no-catalogue"])
    assert code == 3
    captured = capsys.readouterr()
    assert "[1/1] l1-logreg-float64-fullbatch: unavailable" in captured.err
    assert "INCOMPLETE" in captured.out
    summary = pd.read_csv(out / "summary.csv")
    assert summary["status"].iloc[0] == ("unavailable: torch: cannot import torch (ModuleNotFoundError: "
                                         "No module named 'no_such_framework_module')")
    detail = pd.read_csv(out / "details.csv", keep_default_na=False)
    assert list(detail["phase"]) == ["unavailable"] and "no_such_framework_module" in detail["note"].iloc[0]
    assert "## Unavailable implementations" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "no_such_framework_module" in html and "UNAVAILABLE" in html
    assert not (out / "trajectory_differences.png").exists()  # nothing to compare the reference's trajectory with
    assert json.loads((out / "env.json").read_text())["run"]["implementations"] == ["torch"]
    assert json.loads((out / "summary.json").read_text())["meta"]["seconds"] == 42.5
    assert "- **seconds**: 42.5 (wall time: from the start of the command's run to just before writing" in \
        (out / "report.md").read_text()


def test_a_bad_baseline_is_one_line_and_nothing_is_written(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    code = cli.main(["report", "--cases", "l1-logreg-float64-fullbatch", "--impl", "torch", "--out",
                     str(tmp_path / "r"), "--baseline", str(tmp_path / "old"), "--no-selftest", "--no-catalogue"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--baseline" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_report_help_documents_exit_codes():
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["report"].format_help()
    assert "exit codes" in help_text and "3  incomplete" in help_text and "1  a comparison fails" in help_text
    assert "report.html" in help_text and "env.json" in help_text


# --------------------------------------------------------------------------- progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_progress_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream = io.StringIO()
    with progress.progress(2, stream) as bar:
        assert isinstance(bar, progress.PlainProgress) and not isinstance(bar, progress.BarProgress)
        bar.working("ignored")
        bar.finished("l1-logreg-float64-fullbatch", "pass", 4.07)
        bar.finished("l2-tanh-float32-minibatch", "FAIL", 12.0)
    assert stream.getvalue() == ("[1/2] l1-logreg-float64-fullbatch: pass (4.1 s)\n"
                                 "[2/2] l2-tanh-float32-minibatch: FAIL (12.0 s)\n")


def test_a_terminal_gets_a_bar_unless_ci_is_set(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert isinstance(progress.progress(3, _Terminal()), progress.BarProgress)
    monkeypatch.setenv("CI", "true")
    assert not isinstance(progress.progress(3, _Terminal()), progress.BarProgress)


def test_the_bar_prints_each_finished_case(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = _Terminal()
    with progress.progress(2, stream) as bar:
        bar.working("l1-logreg-float64-fullbatch: torch")
        bar.finished("l1-logreg-float64-fullbatch", "pass", 1.0)
    assert "[1/2] l1-logreg-float64-fullbatch" in stream.getvalue() and "pass" in stream.getvalue()


# --------------------------------------------------------------------------- the first screen


def test_the_verdict_and_the_per_implementation_table_come_before_any_details(html_report):
    out, _ = html_report
    text = (out / "report.html").read_text(encoding="utf-8")
    first_details = text.index("<details")
    assert text.index('class="verdict fail"') < text.index('<table id="T_impls"') < first_details
    impls = text[text.index('<table id="T_impls"'):text.index("</table>", text.index('<table id="T_impls"'))]
    page = _Page()
    page.feed(impls)
    assert page.cells[:8] == ["implementation", "forward", "gradients", "trajectory", "final parameters",
                              "cases passed / run", "classes of the compared rows",
                              "where the largest error / limit is"]
    rows = [page.cells[i:i + 8] for i in range(8, len(page.cells), 8)]
    assert [row[0] for row in rows] == ["torch", "tf", "tf-function"]  # one row per implementation
    assert rows[1][2] == "3.4" and rows[1][5] == "0 / 1" and rows[2][5] == "0 / 0, 1 unavailable"


def test_the_cases_cell_is_red_only_for_an_unexpected_failure():
    """Red (bold) when a case failed unexpectedly; amber when the shortfall is cases that could not run or that
    diverged exactly as recorded (the verdict calls neither a failure); green when every case passed."""
    from reports.html import FAIL_BG, PASS_BG, UNAVAILABLE_BG, impls_table

    rows = [("all-pass", 2, 2, 0, 0), ("recorded", 1, 2, 0, 1), ("unrunnable", 2, 2, 1, 0),
            ("fails", 1, 2, 0, 0), ("fails-and-recorded", 0, 2, 0, 1)]
    impls_frame = pd.DataFrame([dict(impl=impl, forward=0.1, gradients=0.1, trajectory=0.1, final=0.1, passed=passed,
                                     run=run, unavailable=unavailable, expected=expected, classes="identical 100%")
                                for impl, passed, run, unavailable, expected in rows])
    impls_frame = impls_frame.rename(columns={"final": "final parameters"})
    text = impls_table(impls_frame)
    cases_column = 5
    colour = {}
    for i, (impl, *_) in enumerate(rows):  # the Styler groups the cells of one style under one CSS rule
        colour[impl] = re.search(rf"#T_impls_row{i}_col{cases_column}(?![0-9])[^{{]*\{{([^}}]*)\}}", text).group(1)
    assert PASS_BG in colour["all-pass"]
    assert UNAVAILABLE_BG in colour["recorded"] and FAIL_BG not in colour["recorded"]
    assert UNAVAILABLE_BG in colour["unrunnable"]
    assert FAIL_BG in colour["fails"] and FAIL_BG in colour["fails-and-recorded"]


def test_long_tables_are_behind_closed_details_and_nothing_is_loaded(html_report):
    out, _ = html_report
    text = (out / "report.html").read_text(encoding="utf-8")
    for table in ('<table id="T_results"', '<table id="T_layers"', '<table id="T_cases"'):
        start = text.index(table)
        assert text.rfind("<details>", 0, start) > text.rfind("</details>", 0, start), table
    assert "<details open" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) and "@import" not in text
    assert "http://" not in text and "https://" not in text and "<script" not in text


def test_a_long_markdown_section_table_goes_behind_details_and_a_short_one_stays_open(tmp_path):
    long = "## Long\n\n| a | b |\n|---|---|\n" + "".join(f"| {i} | x |\n" for i in range(13))
    short = "## Short\n\n| a | b |\n|---|---|\n" + "".join(f"| {i} | y |\n" for i in range(12))
    text = (write_report(details(), tmp_path / "r", META, sections=[long, short]) / "report.html").read_text()
    long_at, short_at = text.index('<h2 id="extra0">Long</h2>'), text.index('<h2 id="extra1">Short</h2>')
    assert "<details><summary>table of 13 rows</summary>" in text[long_at:short_at]
    assert "<details" not in text[short_at:text.index('<h2 id="', short_at + 5)]
