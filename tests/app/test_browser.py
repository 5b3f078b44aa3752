"""The page in a real browser: headless Chromium driven by Selenium (slow tier).

Needs the system's `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`,
as `.ci/run` does). The screenshot and timings are written to `$VERTSEG_TEST_ARTEFACTS`
(default: the test's temporary folder).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.app.conftest import Server
from vertseg_tf.app.server import create_app
from vertseg_tf.data.dataset import load_dataset, validate_dataset
from vertseg_tf.loading import load_model

pytestmark = pytest.mark.slow

LEVELS = ["C3", "C4", "C5", "C6", "C7"]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,900")


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _drawn(driver) -> list[tuple[str, np.ndarray, bool]]:
    """(label, points, flagged) of every outline the page drew, from the SVG itself."""
    polygons = driver.execute_script(
        "return [...document.querySelectorAll('#outlines polygon')].map(p => "
        "[p.dataset.label, p.getAttribute('points'), p.classList.contains('flagged')]);")
    return [(label, np.array([[float(v) for v in pair.split(",")] for pair in points.split()]),
             flagged) for label, points, flagged in polygons]


def _settled(driver, count: int):
    return driver.execute_script(
        "const s = window.vertseg; return !s.busy && s.result && "
        "s.result.vertebrae.length === arguments[0] && "
        "document.querySelectorAll('#outlines polygon').length === arguments[0];", count)


def _click(driver, element, film_size, point):
    """Click image pixel `point` on the displayed film (`element` covers it exactly)."""
    from selenium.webdriver import ActionChains

    width, height = film_size
    shown = element.rect
    dx = (point[0] / width - 0.5) * shown["width"]
    dy = (point[1] / height - 0.5) * shown["height"]
    ActionChains(driver).move_to_element_with_offset(element, round(dx), round(dy)).click()\
        .perform()


def test_click_five_centres_see_the_outlines_download_and_a_bad_file(browser, png_film,
                                                                      tmp_path):
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    artefacts = Path(os.environ.get("VERTSEG_TEST_ARTEFACTS", tmp_path / "artefacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    segmenter = load_model("pretrained")
    with Server(create_app(segmenter)) as server:
        browser.get(server.url + "/")
        browser.find_element(By.ID, "file").send_keys(str(png_film.path))
        _wait(lambda: browser.execute_script(
            "const f = document.getElementById('film'); return f.complete && "
            "f.naturalWidth > 0 && !document.getElementById('stage').hidden;"), "the film")
        assert not browser.find_element(By.ID, "find").is_displayed()  # no locator given
        overlay = browser.find_element(By.ID, "overlay")
        size = (png_film.image.shape[1], png_film.image.shape[0])
        for centre in png_film.centers:
            _click(browser, overlay, size, centre)
        _wait(lambda: _settled(browser, 5), "five outlines")
        centres = np.array(browser.execute_script("return window.vertseg.centres;"))
        # Selenium clicks whole CSS pixels, offset from the element's (rounded) middle.
        screen_pixel = size[0] / overlay.rect["width"]
        np.testing.assert_allclose(centres, png_film.centers, atol=1.5 * screen_pixel)

        reference = segmenter.segment(png_film.image, centres, LEVELS)
        drawn = _drawn(browser)
        assert [label for label, _, _ in drawn] == LEVELS
        for (label, points, flagged), expected in zip(drawn, reference):
            np.testing.assert_allclose(points, expected.contour, atol=1e-3)
            assert flagged == bool(expected.flags)
        rows = browser.find_elements(By.CSS_SELECTOR, "#readouts tbody tr")
        assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == LEVELS
        assert "lordosis" in browser.find_element(By.ID, "column").text
        first_five_ms = browser.execute_script("return window.vertseg.lastMs;")
        browser.save_screenshot(str(artefacts / "app.png"))

        browser.find_element(By.ID, "download-json").click()
        saved = _wait(lambda: [p for p in browser.downloads.glob("*dataset.json")],
                      "the downloaded dataset.json")[0]
        folder = tmp_path / "downloaded"
        (folder / "images").mkdir(parents=True)
        shutil.copy(saved, folder / "dataset.json")
        record = load_dataset(folder).images[0]
        shutil.copy(png_film.path, folder / record.file)
        assert [p for p in validate_dataset(folder) if p.is_error] == []
        for vertebra, expected in zip(record.vertebrae, reference):
            np.testing.assert_allclose(vertebra.contour, expected.contour, atol=1e-3)

        first = browser.find_element(By.CSS_SELECTOR, "#centres circle")
        ActionChains(browser).click_and_hold(first).move_by_offset(0, 12).release().perform()
        moved = _wait(lambda: browser.execute_script(
            "const s = window.vertseg; return !s.busy && s.result && "
            "s.result.vertebrae[0].center[1] > arguments[0] && s.result.vertebrae[0].center;",
            centres[0, 1] + 5 * screen_pixel), "the outlines of the dragged centre")
        dragged = segmenter.segment(png_film.image, [moved, *centres[1:]], LEVELS)[0]
        np.testing.assert_allclose(_drawn(browser)[0][1], dragged.contour, atol=1e-3)
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys("u")
        _wait(lambda: browser.execute_script(
            "return !window.vertseg.busy && window.vertseg.result.vertebrae[0].center[1] "
            "=== arguments[0];", centres[0, 1]), "the undone drag")
        (artefacts / "app_timing.json").write_text(json.dumps({
            "film": list(size), "model": str(segmenter.source),
            "five_outlines_ms": {"after_the_fifth_click": first_five_ms,
                                 "after_undoing_a_drag": browser.execute_script(
                                     "return window.vertseg.lastMs;")}}))
        body.send_keys("u")
        _wait(lambda: _settled(browser, 4), "four outlines after undo")
        body.send_keys("p")
        body.send_keys(Keys.DELETE)
        _wait(lambda: _settled(browser, 3), "three outlines after deleting the last level")

        broken = tmp_path / "broken.png"
        broken.write_bytes(png_film.path.read_bytes()[:300])
        browser.find_element(By.ID, "file").send_keys(str(broken))
        error = _wait(lambda: browser.find_element(By.ID, "error").is_displayed()
                      and browser.find_element(By.ID, "error").text, "the error message")
        assert error.startswith("broken.png: cannot decode image")
        assert "Traceback" not in browser.page_source
        browser.save_screenshot(str(artefacts / "app_error.png"))
