"""The inspector's page in a real browser (Playwright driving Debian's chromium; no skip when it is missing).

One browser for the module: a finished run renders its layers and charts without page errors,
clicking a layer shows its reference op's source, every view can be captured, and a live run's
page changes as epochs pass.
"""
from __future__ import annotations

import threading

import pytest
from playwright.sync_api import sync_playwright

from deepbox.inspect.server import make_server
from tests.inspect.browser import launch, screenshots, show
from tests.inspect.conftest import record_run


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()


@pytest.fixture
def served(recorded_run):
    srv = make_server(str(recorded_run), port=0)
    srv.start()
    yield srv
    srv.stop()


def test_finished_run_renders_layers_and_charts(page, served):
    page.goto(served.url)
    show(page, "curves")
    assert page.locator("#chart-loss .u-wrap").count() == 1 and page.locator("#chart-acc .u-wrap").count() == 1
    assert page.locator("#status").inner_text() == "finished"
    assert "epoch 3" in page.locator("#counters").inner_text()
    show(page, "layers")
    rows = page.locator("#layer-table tbody tr")
    assert rows.count() == 7
    assert rows.nth(5).locator("td").nth(2).inner_text() == "Sigmoid"
    assert page.locator("#layer-detail canvas.heat").count() >= 2
    show(page, "flow")
    assert page.locator("#chart-flow .u-wrap").count() == 1 and page.locator("#chart-gnorm .u-wrap").count() == 1
    show(page, "images")
    assert page.locator("#confusion table tr").count() == 4  # header + 3 classes
    assert page.locator("#fmaps canvas").count() > 4 and page.locator("#filters canvas").count() == 4
    page.locator("#epoch-slider").fill("0")
    page.wait_for_function("document.querySelector('#epoch-label').textContent.startsWith('epoch 1 ')")
    assert page.errors == []


def test_clicking_a_layer_shows_its_reference_source(page, served):
    page.goto(served.url + "#layers")
    page.click('#layer-table tbody tr[data-layer="0"]')
    page.wait_for_selector("#layer-detail pre.code")
    detail = page.locator("#layer-detail").inner_text()
    assert "Conv2d" in detail and "deepbox/ops/" in detail
    assert "def forward" in detail and "def backward" in detail
    page.click('#layer-table tbody tr[data-layer="5"]')
    page.wait_for_function("document.querySelector('#layer-detail h2').textContent.startsWith('5: Sigmoid')")
    assert "class Sigmoid" in page.locator("#layer-detail pre.code").first.inner_text()
    assert page.errors == []


def test_every_view_can_be_captured(page, served, tmp_path):
    paths = screenshots(page, served.url, str(tmp_path), layer="4")
    assert [p.rsplit("inspector-", 1)[1] for p in paths] == ["curves.png", "layers.png", "flow.png", "images.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.errors == []


def test_live_run_page_changes_as_epochs_pass(page, tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    srv = make_server(str(run), port=0, live=True)
    srv.poll_s = 0.1
    srv.start()
    go = threading.Event()
    trainer = threading.Thread(target=lambda: (go.wait(10), record_run(run, epochs=3, pause=1.0)), daemon=True)
    trainer.start()
    try:
        page.goto(srv.url)
        page.wait_for_selector("#status")
        go.set()  # training starts once the page is open
        page.wait_for_function("document.querySelector('#counters').textContent.includes('epoch 1')", timeout=20000)
        page.wait_for_selector("#chart-loss .u-wrap")
        assert page.locator("#status").inner_text() == "live"
        page.wait_for_function("document.querySelector('#counters').textContent.includes('epoch 2')", timeout=20000)
        page.wait_for_function("document.querySelector('#status').textContent === 'finished'", timeout=20000)
        assert "epoch 3" in page.locator("#counters").inner_text()
        trainer.join(10)
    finally:
        srv.stop()
    assert page.errors == []
