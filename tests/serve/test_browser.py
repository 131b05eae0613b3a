"""The explorer in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``,
installed by ``make test`` from apt; never a browser download) against a real uvicorn server.

One walk through every page: the overview (filter, sort, page), a sample (slider, colour
map, another target class computed on the server), the live page (an upload and its maps,
a non-image refused), the methods page (two runs side by side) and a text run's tokens.
Throughout: no console error, no page error, no dialog (the class ``<script>alert(1)</script>``
and the token ``<img src=x onerror=alert(1)>`` are shown as text), and no request to any
origin but the server's. Screenshots of each page go to ``out/test-artifacts/serve/``.

These tests are never skipped: without chromium or playwright they fail, saying how to get
them (``make test`` installs both).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.serve.conftest import ARTIFACTS
from tests.serve.synthetic import IMG_TOKEN, SCRIPT_CLASS

pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = os.environ.get("ATTRIB_CHROMIUM", "/usr/bin/chromium")
MISSING = (
    "the explorer's browser tests need Debian's chromium at {path} and the playwright package: "
    "`make test` installs both (apt-get install -y chromium; pip install -r requirements/dev.txt)"
)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(MISSING.format(path=CHROMIUM))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(MISSING.format(path=CHROMIUM))
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Watch:
    """What a page did that it must not: console errors, page errors, dialogs, requests to
    another origin."""

    def __init__(self, page, origin: str) -> None:
        self.problems: list[str] = []
        self.origin = origin
        page.on("console", self.console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("dialog", self.dialog)
        page.on("request", self.request)

    def console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def dialog(self, dialog) -> None:
        self.problems.append(f"a dialog fired: {dialog.message}")
        dialog.dismiss()

    def request(self, request) -> None:
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"a request to another origin: {request.url}")


def until(page, expression: str, timeout: float = 15.0) -> None:
    """Wait until ``expression`` is true in the page. (Playwright's ``wait_for_function``
    evaluates its predicate with ``eval``, which the explorer's CSP forbids, as it should.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            shot(page, "failure")
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def settled(page) -> None:
    """Wait until the overview's grid answers the route in the address bar."""
    until(
        page,
        "document.querySelector('#grid') && #grid.dataset.route === location.hash".replace(
            "#grid.", "document.querySelector('#grid')."
        ),
    )


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    watch = Watch(opened, server)
    yield opened, watch
    context.close()
    print(f"screenshots: {ARTIFACTS}")
    assert watch.problems == []


def cards(page) -> list[str]:
    return page.locator("#grid .card").evaluate_all("cards => cards.map(c => c.title)")


def test_overview_filter_sort_page(page, server):
    page, _ = page
    page.goto(f"{server}/#/runs/images?limit=10")
    page.wait_for_selector("#grid .card")
    assert len(cards(page)) == 10
    assert page.locator("#range").text_content() == "1–10 of 24"
    # the class named <script>alert(1)</script> is text in the page, in a card and a menu
    assert page.get_by_text(SCRIPT_CLASS).count() > 0
    assert page.locator("#sel-class option", has_text=SCRIPT_CLASS).count() == 1
    shot(page, "overview")

    page.locator("#next").click()
    until(page, "document.querySelector('#range').textContent.startsWith('11–20')")
    assert cards(page)[0] == "00010"

    page.select_option("#sel-class", label=SCRIPT_CLASS)
    until(page, "location.hash.includes('class=1')")
    settled(page)
    until(page, "!document.querySelector('#range').textContent.startsWith('11')")
    lines = page.locator("#grid .card .line").all_text_contents()
    labels = [t for t in lines if t.startswith("label: ")]
    assert labels and set(labels) == {f"label: {SCRIPT_CLASS}"}

    page.select_option("#sel-class", value="")
    until(page, "!location.hash.includes('class=')")
    settled(page)
    page.select_option("#sel-correct", value="false")
    until(page, "location.hash.includes('correct=false')")
    settled(page)
    page.wait_for_selector("#grid .card")
    assert page.locator("#grid .badge.ok").count() == 0
    assert page.locator("#grid .badge.wrong").count() > 0

    page.select_option("#sel-correct", value="")
    until(page, "!location.hash.includes('correct=')")
    settled(page)
    page.select_option("#sel-sort", value="GradCAM:deletion")
    until(page, "location.hash.includes('sort=GradCAM')")
    settled(page)
    page.select_option("#sel-order", value="desc")
    until(page, "location.hash.includes('order=desc')")
    settled(page)
    shown = [
        float(t.split()[-1])
        for t in page.locator("#grid .card .line:last-child").all_text_contents()
        if t.strip() and t.split()[-1] != "–"
    ]
    assert len(shown) >= 9 and shown == sorted(shown, reverse=True)
    shot(page, "overview-sorted")


def test_sample_slider_colour_map_and_another_target(page, server):
    page, _ = page
    page.goto(f"{server}/#/runs/model")
    page.wait_for_selector("#grid .card")
    page.locator("#grid .card").first.click()
    page.wait_for_selector("#maps img.layer")
    assert page.locator("#maps img.layer").count() == 2  # Saliency, GradCAM
    until(
        page,
        "[...document.querySelectorAll('#maps img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    page.locator("#opacity").fill("0.3")
    opacity = page.locator("#maps img.layer").first.evaluate("i => i.style.opacity")
    assert float(opacity) == pytest.approx(0.3)
    page.select_option("#sel-cmap", value="viridis")
    until(
        page,
        "[...document.querySelectorAll('#maps img.layer')].every(i => i.src.includes('viridis'))",
    )
    assert page.locator("#scores").count() == 1 and page.locator("#topk tr").count() > 1
    shot(page, "sample")

    # another target class, computed on the server with the loaded model
    page.select_option("#sel-target", value="2")
    page.locator("#explain").click()
    page.wait_for_selector("#computed figure.computed img.layer")
    until(
        page,
        "[...document.querySelectorAll('#computed img')].every(i => i.complete && i.naturalWidth)",
    )
    assert "for triangle" in page.locator("#computed figcaption").first.text_content()
    shot(page, "sample-target")


def test_live_upload_and_maps(page, server, model_run):
    page, watch = page
    page.goto(f"{server}/#/live")
    page.wait_for_selector("#file")
    not_image = model_run.parent / "not-an-image.png"
    not_image.write_text("this is not a picture")
    page.set_input_files("#file", str(not_image))
    page.wait_for_selector("#upload-error")
    assert "not an image" in page.locator("#upload-error").text_content()
    watch.problems = [p for p in watch.problems if "400" not in p]  # the refusal itself

    picture = model_run.parent / "data" / "images" / "00001.png"
    page.set_input_files("#file", str(picture))
    page.wait_for_selector("#live-top tr >> nth=1")
    page.locator("#explain").click()
    until(page, "document.querySelectorAll('#computed figure.computed').length === 2")
    until(
        page,
        "[...document.querySelectorAll('#computed img')].every(i => i.complete && i.naturalWidth)",
    )
    assert page.locator("#job-progress").evaluate("p => p.value") == 1
    shot(page, "live")


def test_methods_page_two_runs(page, server):
    page, _ = page
    page.goto(f"{server}/#/methods?a=model&b=images")
    page.wait_for_selector(".panel table.verdict")
    assert page.locator(".panel").count() == 2
    assert page.locator(".panel svg.chart").count() >= 4
    assert page.get_by_text(SCRIPT_CLASS).count() > 0  # the per-class table names it as text
    shot(page, "methods")


def test_text_run_tokens_are_text(page, server):
    page, _ = page
    page.goto(f"{server}/#/runs/texts")
    page.wait_for_selector("#grid .card .snippet")
    assert page.locator("#grid .snippet", has_text=IMG_TOKEN).count() == 1
    page.goto(f"{server}/#/sample/texts/t2")
    page.wait_for_selector(".tokens span")
    assert page.locator(".tokens span", has_text=IMG_TOKEN).count() == 2
    assert page.locator(".tokens img").count() == 0
    page.goto(f"{server}/#/sample/texts/t0")
    until(page, "document.querySelector('.tokens').textContent.includes('wonderful')")
    shot(page, "text")


def test_static_export_opens_from_file_with_no_server(browser, image_run, tmp_path):
    from attrib.serve.export import export_site

    index = export_site(image_run, tmp_path / "site")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watch(page, "file://")
    page.goto(index.as_uri() + "#/runs/run?limit=10")
    page.wait_for_selector("#grid .card")
    assert page.locator("#range").text_content() == "1–10 of 24"
    assert page.locator("#nav-live").is_hidden()
    page.select_option("#sel-sort", value="IntegratedGradients:insertion")
    until(page, "location.hash.includes('sort=Integrated')")
    settled(page)
    page.locator("#next").click()
    until(page, "document.querySelector('#range').textContent.startsWith('11–20')")
    shot(page, "export-overview")
    page.locator("#grid .card").first.click()
    page.wait_for_selector("#maps img.layer")
    until(
        page, "[...document.querySelectorAll('#maps img')].every(i => i.complete && i.naturalWidth)"
    )
    page.select_option("#sel-mode", value="signed")
    until(
        page,
        "[...document.querySelectorAll('#maps img.layer')].every(i => i.src.includes('signed'))",
    )
    until(
        page, "[...document.querySelectorAll('#maps img')].every(i => i.complete && i.naturalWidth)"
    )
    shot(page, "export-sample")
    page.goto(index.as_uri() + "#/methods")
    page.wait_for_selector(".panel table.verdict")
    context.close()
    assert watch.problems == []
