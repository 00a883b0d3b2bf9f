"""`release report`: the agent's history as self-contained HTML pages that show what the gate saw."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from conftest import REPO, run_release
from test_bad_input import assert_one_line_error

PATCHES = REPO / "specs" / "candidates"


class Page(HTMLParser):
    """The page's table rows (class and cells), links, and anything that would load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.links: list[str] = []
        self.external: list[str] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append((attrs.get("class") or "", []))
        if tag in ("td", "th"):
            self.cell = []
        if tag == "a":
            self.links.append(attrs.get("href") or "")
        if tag in ("script", "link", "img", "iframe") or re.match(r"https?:", attrs.get("src") or ""):
            self.external.append(tag)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and self.rows:
            self.rows[-1][1].append("".join(self.cell))
            self.cell = None


def test_the_report_of_a_rejected_candidate_shows_its_regressions(cli, workspace):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    cli("gate", "--candidate", str(PATCHES / "02-true-division.patch"), code=1)  # v3: 3 confirmed regressions
    path = cli("report", "v3").stdout.strip()
    page = Page()
    page.feed(open(path, encoding="utf-8").read())
    regressions = sorted(cells[0] for cls, cells in page.rows if cls == "regression")
    assert regressions == ["sub-2", "sub-4", "sub-6"]
    assert any(cls == "fix" for cls, _ in page.rows)
    assert page.external == [] and all(not re.match(r"https?:", link) for link in page.links)
    assert "calc-v2.html" in page.links and "calc-v1.html" in page.links  # the line links to the other versions
    line = {cells[0]: cells for cls, cells in page.rows if cells and cells[0] in ("v1", "v2", "v3")}
    assert line["v3"][1] == "rejected" and line["v3"][3].endswith("%")  # status, and its gate-split pass rate


def test_the_report_is_a_folder_of_pages_whose_links_all_resolve(cli, workspace):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    cli("gate", "--candidate", str(PATCHES / "02-true-division.patch"), code=1)
    index = Path(cli("report").stdout.strip())
    assert index.name == "calc.html"
    pages = {path.name: path.read_text(encoding="utf-8") for path in index.parent.glob("*.html")}
    run_pages = sorted(name for name in pages if "-run" in name)
    assert {"calc.html", "calc-v1.html", "calc-v2.html", "calc-v3.html"} <= set(pages) and run_pages
    for name, text in pages.items():
        page = Page()
        page.feed(text)
        assert page.external == [], name
        assert all(link in pages for link in page.links), (name, page.links)
    line = Page()
    line.feed(pages["calc.html"])
    moves = [cells for _, cells in line.rows if cells[:2] and cells[1] == "promote"]
    assert moves and moves[-1][3] == "v2"  # the head moves, the last one to v2

    v3_gate_run = cli.json("show", "v3")["runs"][-1]["id"]
    path = Path(cli("report", "--run", str(v3_gate_run)).stdout.strip())
    run = Page()
    run.feed(path.read_text(encoding="utf-8"))
    sub2 = next(cells for _, cells in run.rows if cells and cells[0] == "sub-2")
    assert "fail" in sub2[1:-2] and sub2[-2].startswith("0/")  # the regressed task's verdicts per repeat


def test_a_report_of_an_unknown_run_is_one_line(workspace):
    assert_one_line_error(run_release(workspace, "report", "--run", "999"), "no run #999")
