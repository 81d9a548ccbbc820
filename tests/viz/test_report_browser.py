"""The HTML report in a real headless Chromium: it renders, every image decodes, nothing is fetched and
the console stays free of errors. `make test` installs Debian's chromium when it is missing; where that
is impossible (no root, no package), this test is skipped and says why."""

import pytest
from helpers import CHROMIUM_FLAGS as FLAGS
from helpers import usable_chromium

from gptkit.cli import main

CHROMIUM = usable_chromium()
# Every image drawn on a canvas: how many distinct pixel values it has (1 for an image that did not decode).
DECODED = """images => images.map(image => {
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d");
    try { context.drawImage(image, 0, 0); } catch (error) { return 0; }
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    for (let i = 0; i < pixels.length; i += 4 * 97) seen.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]);
    return seen.size;
})"""


@pytest.mark.skipif(CHROMIUM is None, reason="no working chromium on this machine (make test installs it where it can)")
def test_report_renders_in_chromium_without_console_errors(trained_run, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    out = tmp_path / "report.html"
    assert main(["report", str(trained_run), "--out", str(out), "--samples", "1"]) == 0
    problems, requests = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(out.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "images => images.map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
            )
            colours = page.eval_on_selector_all("img", DECODED)
            title = page.title()
            height = page.evaluate("document.body.scrollHeight")
        finally:
            browser.close()
    assert problems == []
    assert title == f"gptkit report: {trained_run.name}"
    assert len(images) == 5 and all(complete and w > 200 and h > 150 for _, complete, w, h in images), images
    assert all(count > 2 for count in colours), colours  # each image decoded into a picture, not a blank
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert height > 1500  # the page laid out its sections
