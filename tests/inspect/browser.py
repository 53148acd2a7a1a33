"""Driving Debian's chromium with Playwright, for the inspector's browser tests and the docs' screenshots.

Browsers cannot be downloaded here: Playwright drives the system's ``/usr/bin/chromium``
(``apt-get install chromium``; ``.ci/run`` installs it). Missing, it is an error, never a skip.

    python -m tests.inspect.browser URL OUTDIR      # a screenshot of each view: OUTDIR/inspector-*.png
"""
from __future__ import annotations

import os
import sys

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
VIEWS = ("curves", "layers", "flow", "images")


def launch(playwright):
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: the inspector's browser tests need Debian's chromium "
                           "(apt-get install -y chromium; .ci/run installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def show(page, view: str, layer: str | None = None) -> None:
    """Switch the page to ``view`` and wait until it has drawn (for ``layers``, select ``layer``)."""
    page.click(f"#tabs button[data-view={view}]")
    if view == "curves":
        page.wait_for_selector("#chart-loss .u-wrap")
    elif view == "layers":
        sel = f'#layer-table tbody tr[data-layer="{layer}"]' if layer else "#layer-table tbody tr"
        page.click(sel)
        page.wait_for_selector("#layer-detail pre.code")
    elif view == "flow":
        page.wait_for_selector("#chart-flow .u-wrap")
    elif view == "images":
        page.wait_for_selector("#confusion table")


def screenshots(page, url: str, outdir: str, layer: str | None = None, prefix: str = "inspector-") -> list[str]:
    os.makedirs(outdir, exist_ok=True)
    page.goto(url)
    paths = []
    for view in VIEWS:
        show(page, view, layer)
        page.wait_for_timeout(200)
        path = os.path.join(outdir, f"{prefix}{view}.png")
        page.screenshot(path=path, full_page=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    from playwright.sync_api import sync_playwright

    url, outdir = sys.argv[1], sys.argv[2]
    layer = sys.argv[3] if len(sys.argv) > 3 else None
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for path in screenshots(page, url, outdir, layer):
            print(path)
        browser.close()
