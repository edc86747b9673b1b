"""Screenshots of a report for the manual (docs/figures): its top (summary and leaderboard), the
recommendation, the ranking across datasets, and the explorer with a map point hovered.
Needs Debian's chromium (`make browser`) and Playwright (a test extra).

    python experiments/figures/report_screenshots.py REPORT.html docs/figures
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(report: Path, folder: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(report.resolve().as_uri())
        page.screenshot(path=folder / "report-top.png")
        page.locator("#recommendation").screenshot(path=folder / "report-recommendation.png")
        page.locator("#ranking").screenshot(path=folder / "report-ranking.png")
        # A galaxy clustering whose k was chosen by BIC: the explorer then shows a
        # k-selection curve too.
        labels = page.locator("#combination option").all_inner_texts()
        page.select_option("#combination", label=next(
            (label for label in labels if label.startswith("sim-galaxies") and "gmm" in label
             and "pixels" in label), labels[0]))
        page.locator("#explorer").scroll_into_view_if_needed()
        page.locator("#map circle").last.hover()
        # The tooltip is fixed to the viewport, so the explorer is shot as the viewport.
        page.screenshot(path=folder / "report-explorer.png")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
