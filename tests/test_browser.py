"""The headless-browser driver itself: each attribute checked against a page made to trip it."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from browser import Browser, chromium_or_skip

pytestmark = pytest.mark.system

# A 1×1 red PNG: the page shows it, and its natural size proves the image really loaded.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)

PAGE = """<!doctype html>
<html><head><title>self-test</title></head>
<body style="background: #fff">
<h1 id="hello">hello</h1>
<img id="pixel" src="pixel.png" width="40" height="40">
<img id="missing" src="missing.png">
<script>
console.error("deliberate", 42);
console.log("not an error");
setTimeout(() => { document.getElementById("hello").textContent = "later"; }, 300);
setTimeout(() => { throw new Error("thrown on purpose"); }, 0);
</script>
</body></html>
"""


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def page(tmp_path: Path) -> Path:
    chromium_or_skip()
    (tmp_path / "pixel.png").write_bytes(PIXEL)
    index = tmp_path / "index.html"
    index.write_text(PAGE)
    return index


def test_browser_reports_what_the_page_did(page: Path, tmp_path: Path) -> None:
    with Browser(width=800, height=600) as browser:
        browser.add_init_script("window.scriptsBeforeMine = document.scripts.length")
        browser.open(page.as_uri())
        assert browser.evaluate("window.scriptsBeforeMine") == 0  # it ran before the page's
        assert browser.evaluate("document.title") == "self-test"
        assert browser.evaluate("document.getElementById('pixel').naturalWidth") == 1
        assert browser.evaluate("Promise.resolve(6 * 7)") == 42
        assert browser.evaluate("({a: [1, 2]})") == {"a": [1, 2]}
        assert browser.wait_for("document.getElementById('hello').textContent === 'later'")

        assert any("deliberate 42" in error for error in browser.console_errors)
        assert any("thrown on purpose" in error for error in browser.console_errors)
        assert not any("not an error" in error for error in browser.console_errors)
        assert browser.failed_requests == [(tmp_path / "missing.png").as_uri()]

        shot = tmp_path / "shot.png"
        browser.screenshot(shot)
        assert png_size(shot) == (800, 600)


def test_browser_errors_are_assertions_that_say_what_happened(page: Path) -> None:
    with Browser() as browser:
        browser.open(page.as_uri())
        with pytest.raises(AssertionError, match="nope"):
            browser.evaluate("(() => { throw new Error('nope'); })()")
        with pytest.raises(AssertionError, match="last: ''"):
            browser.wait_for("document.title.slice(99)", timeout=1)
        with pytest.raises(AssertionError, match="noSuchThing is not defined"):
            browser.wait_for("noSuchThing.length", timeout=1)


def test_browser_process_is_gone_after_the_block(page: Path) -> None:
    with Browser() as browser:
        browser.open(page.as_uri())
        process = browser._process
        assert process is not None
    assert process.poll() is not None
