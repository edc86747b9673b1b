"""The report in a real browser: Debian's headless Chromium, driven by Playwright, opens
the file from disk. `make test` installs chromium; on CI a missing browser is a failure,
elsewhere a skip."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import INJECTION, payload

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (`apt-get install chromium`, as `make test` does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def report(browser, grid, page, tmp_path):
    """The report open in a page, with every console error, page error, dialog and
    network request recorded."""
    folder, _, _ = grid
    seen = {"errors": [], "requests": [], "dialogs": []}
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: seen["errors"].append(str(e)))
    tab.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    tab.on("request", lambda r: seen["requests"].append(r.url))
    tab.goto((folder / "report.html").as_uri())
    tab.wait_for_load_state("load")
    yield tab, seen
    tab.close()


def test_report_opens_offline_without_errors_and_saves_a_screenshot(report, tmp_path):
    tab, seen = report
    shot = tmp_path / "report.png"
    tab.screenshot(path=str(shot), full_page=True)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.width >= 1400 and image.height > 1500
    assert seen["errors"] == []
    assert seen["dialogs"] == []  # the class named <script>alert(1)</script> ran nothing
    # The file itself is the only request: styles, script, data and images are inline.
    assert [url for url in seen["requests"] if not url.startswith(("file:", "data:"))] == []
    assert len([url for url in seen["requests"] if url.startswith("file:")]) == 1


def test_clicking_a_header_sorts_the_leaderboard(report):
    tab, seen = report
    header = tab.locator("#leaderboard-table th", has_text="ari").first
    column = tab.locator("#leaderboard-table th").all_inner_texts().index("ari")

    def values():
        cells = tab.locator(f"#leaderboard-table tbody tr td:nth-child({column + 1})")
        return [float(v) for v in cells.evaluate_all("cells => cells.map(c => c.dataset.value)")]

    header.click()
    ascending = values()
    assert ascending == sorted(ascending) and len(set(ascending)) > 1
    header.click()
    assert values() == sorted(ascending, reverse=True)
    assert seen["errors"] == []


def test_filtering_by_component_hides_other_rows(report):
    tab, _ = report
    rows = tab.locator("#leaderboard-table tbody tr")
    total = rows.count()
    tab.locator("select.filter").first.select_option(index=1)
    visible = rows.evaluate_all("rows => rows.filter(r => !r.hidden).length")
    assert 0 < visible < total


def test_hovering_a_map_point_shows_its_thumbnail_and_id(report, page):
    tab, seen = report
    data = payload(page)
    run = data["runs"][0]
    dataset = data["datasets"][run["data"]]
    assert tab.locator("#map circle").count() == len(dataset["ids"])
    # The last point drawn is on top of any other, so the mouse reaches it.
    tab.locator("#map circle").last.hover()
    tooltip = tab.locator("#tooltip")
    assert tooltip.is_visible()
    assert f"id {dataset['ids'][-1]}" in tooltip.inner_text()
    thumb = tooltip.locator(".thumb")
    style = thumb.evaluate("t => { const s = getComputedStyle(t); "
                           "return [s.backgroundImage.slice(0, 30), s.width]; }")
    assert style[0].startswith('url("data:image/png;base64')
    assert style[1] == f"{dataset['size'] * 2}px"
    assert seen["errors"] == []


def test_class_colours_show_user_class_names_as_text(report):
    tab, seen = report
    tab.select_option("#combination", label=next(
        label for label in tab.locator("#combination option").all_inner_texts()
        if label.startswith("named")))
    tab.locator("input[name=colour][value=class]").check()
    legend = tab.locator("#legend").inner_text()
    assert INJECTION in legend  # shown as text...
    assert tab.locator("#legend script").count() == 0  # ...never as markup
    assert seen["dialogs"] == [] and seen["errors"] == []
