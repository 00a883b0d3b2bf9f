"""`release report` in a real browser: headless Chromium renders the example's pages with no console error, the
rows are in the DOM it built, and it takes screenshots (saved beside the test's files; RELEASE_SCREENSHOTS=DIR
copies them there, which is how the README's picture was made)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO
from test_html_report import Page

PATCHES = REPO / "specs" / "candidates"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUIET_FLAGS = (  # no network of its own: this machine's is closed, and a report fetches nothing
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("RELEASE_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed, and RELEASE_REQUIRE_BROWSER is set")
        pytest.skip("needs Debian's chromium (scripts/ensure-system-packages.sh installs it)")
    return CHROMIUM


def browse(chromium: str, page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """What Chromium printed (the DOM with --dump-dom) and the console messages the page logged."""
    done = subprocess.run(
        [
            chromium,
            *QUIET_FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [m.group(1) for m in CONSOLE.finditer(done.stderr)]


def test_the_browser_check_sees_a_broken_page(chromium, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!doctype html><p>x</p><script>console.error("boom"); missing();</script>')
    _, console = browse(chromium, broken, tmp_path / "profile", "--dump-dom")
    assert any("boom" in m for m in console) and any("ReferenceError" in m for m in console)


def test_the_example_reports_render_in_chromium_without_errors(chromium, cli, tmp_path):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    cli("gate", "--candidate", str(PATCHES / "02-true-division.patch"), code=1)  # v3: 3 confirmed regressions
    v3 = Path(cli("report", "v3").stdout.strip())
    run_id = cli.json("show", "v3")["runs"][-1]["id"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    for name in ("calc.html", "calc-v3.html", f"calc-run{run_id}.html"):
        dom, console = browse(chromium, v3.parent / name, tmp_path / "profile", "--dump-dom")
        assert console == [], (name, console)
        page = Page()
        page.feed(dom)
        assert page.rows and page.external == [], name
        if name == "calc-v3.html":
            assert sorted(cells[0] for cls, cells in page.rows if cls == "regression") == ["sub-2", "sub-4", "sub-6"]
            assert "<svg" in dom and "<rect" in dom  # the chart was parsed as SVG, bars and all
        shot = shots / name.replace(".html", ".png")
        browse(chromium, v3.parent / name, tmp_path / "profile", "--window-size=1280,1600", f"--screenshot={shot}")
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RELEASE_SCREENSHOTS"):
        shutil.copytree(shots, os.environ["RELEASE_SCREENSHOTS"], dirs_exist_ok=True)
