"""The playground page in a real headless Chromium (Debian's, driven by Playwright): a user types a prompt,
clicks Generate and watches the text arrive piece by piece; Stop ends it and the server stops generating.
The page fetches nothing from outside the server and logs no console errors."""

import pytest
from helpers import CHROMIUM_FLAGS, usable_chromium
from serving import API_KEY

CHROMIUM = usable_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no working chromium on this machine (make test installs it where it can)")
def test_typing_a_prompt_and_clicking_generate_streams_text(server):
    from playwright.sync_api import sync_playwright

    before = server.wait_idle()["cancelled"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            errors, outside = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
            page.goto(server.url + "/")
            assert server.model in page.title()
            page.fill("#api_key", API_KEY)
            page.fill("#prompt", "JULIET:")
            page.fill("#max_tokens", "20000")  # far more than arrives before Stop
            page.fill("#seed", "1")
            page.click("#generate")
            generated = page.locator("#generated")
            page.wait_for_function("document.getElementById('generated').textContent.length >= 20")
            early = len(generated.text_content())
            page.wait_for_function(f"document.getElementById('generated').textContent.length > {early + 100}")
            assert page.locator("#status").text_content() == "generating…"  # still going: it streams
            page.click("#stop")
            page.wait_for_function("document.getElementById('status').textContent === 'stopped'")
            assert page.locator("#prompt").input_value() == "JULIET:" and early > 0
            assert page.locator("#generate").is_enabled()
            assert not errors and not outside
        finally:
            browser.close()
    assert server.wait_idle(timeout=10)["cancelled"] == before + 1  # Stop reached the model worker
