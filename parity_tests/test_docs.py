"""The docs site builds: ``mkdocs build --strict`` (a broken link or anchor, a page left out of nav fails), every
page of ``docs/`` is in the nav, and the README's links into ``docs/`` name pages that exist."""

import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
PAGES = sorted(os.path.relpath(p, os.path.join(ROOT, "docs")) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def _config():
    import yaml  # mkdocs' own dependency: the test extra brings it, and its absence is a failure, not a skip
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def _nav_pages(nav):
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield value


def test_mkdocs_build_strict(tmp_path):
    import material  # noqa: F401  (the theme: installed by the test extra; missing, this test fails)
    import mkdocs  # noqa: F401
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    for page in PAGES:
        built = "index.html" if page == "index.md" else os.path.join(page[:-len(".md")], "index.html")
        assert (site / built).is_file(), built
    # the math is marked for MathJax, which mkdocs.yml loads
    assert 'class="arithmatex"' in (site / "tolerances" / "index.html").read_text(encoding="utf-8")


def test_every_page_is_in_the_nav():
    config = _config()
    assert config["theme"]["name"] == "material" and config.get("strict") is True
    nav = list(_nav_pages(config["nav"]))
    assert len(PAGES) >= 10
    assert sorted(nav) == PAGES, "docs/*.md and mkdocs.yml's nav differ"


def test_the_readme_links_to_pages_that_exist():
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)\s]*)?\)", README)
    assert len({link for link in links if link.endswith(".md")}) >= 10
    for link in links:
        assert os.path.isfile(os.path.join(ROOT, link)), link


def test_the_readme_anchors_exist():
    """A README link to ``docs/page.md#anchor`` names a heading of that page."""
    anchors = re.findall(r"\]\((docs/[^)#\s]+\.md)#([^)\s]+)\)", README)
    assert anchors
    for page, anchor in anchors:
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                 for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}
        assert anchor in slugs, (page, anchor)


#: A block a tool writes into a page between two marker lines (``nnparity bench --suite --readme``, ``make
#: coverage``): the tool's output, dated, not prose.
GENERATED = re.compile(r"<!-- [^>]*generated from here[^>]*-->.*?<!-- [^>]*generated up to here -->", re.S)


def test_no_dated_measurements_in_the_prose():
    """Measured figures live in generated outputs (report, bench, catalogue, self-test, and the README's blocks
    that bench --suite --readme and make coverage write), not in hand-written pages."""
    pages = [README] + [open(os.path.join(ROOT, "docs", p), encoding="utf-8").read() for p in PAGES]
    assert len(GENERATED.findall(README)) == 2  # the timing tables and the coverage
    for text in (GENERATED.sub("", page) for page in pages):
        assert not re.search(r"Measured (on|with) (20\d\d|this machine)", text)
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text)
