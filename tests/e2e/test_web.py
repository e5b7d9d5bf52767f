"""The web page at `/`, in real headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) against the real platform.

A rendered page and a two-page PDF are chosen through the file input (and one dropped on the
drop zone), their pages appear with their text and a labelled box over every word; a box takes
the keyboard focus and shows its word; the copy button fills the clipboard; downloads are saved.
Every test checks that nothing came from another origin and that the console stayed clean. With
API keys configured, a wrong key gets a sentence a person understands and the right one works.

Each test saves screenshots into its tmp dir; with `OCR_WEB_SCREENSHOT=PATH` (`make screenshots`)
the first one is also written to PATH (the README's `docs/img/web-page.png`).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import pikepdf
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import Platform, start_platform
from tests.support.images import encode, render_lines
from tests.support.model_documents import line_pages, scanned_pdf

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
#: Long enough for a page to be read on a busy 2-core machine.
WAIT_S: Final = 90
#: Of `gateway.settings.MIN_KEY_CHARS` (16) or more.
API_KEY: Final = "web-page-test-key-0123456789"
LEDGER_LINES: Final = [
    "Quarterly ledger of the city library",
    "Books received this quarter: 1284",
    "Books lent to readers: 9317",
    "Readers who joined: 412",
    "The ledger balance is carried forward",
    # Look-alike glyphs the engine is unsure of: boxes of every colour on one page.
    "Shelf marks: Il-1l O0Oo 8B8 vvw",
]
PDF_TEXTS: Final = ("First page of two", "Second page here")
#: An aria-label of a word box: the word, a comma, its confidence in percent.
BOX_LABEL: Final = re.compile(r"^(?P<word>\S+), (?P<confidence>\d{1,3})%$")

_T = TypeVar("_T")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("web"))
    yield running
    running.service.stop(signal.SIGINT)


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(tmp_path: Path, downloads: Path) -> Iterator[Chrome]:
    """Headless Chromium, its console kept, its downloads saved to `downloads`."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths given: Selenium Manager never tries to download a browser or a driver.
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = Chrome(options=options, service=service)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Chrome, what: Callable[[Chrome], _T | None]) -> _T:
    """`what` once it is truthy (polled by WebDriverWait, never a sleep)."""
    wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    return cast("_T", wait.until(what))


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    """Whether rectangle `inner` lies within `outer` (give or take `slack` CSS pixels)."""
    return (
        outer["x"] - slack <= inner["x"]
        and outer["y"] - slack <= inner["y"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


def open_page(driver: Chrome, platform: Platform) -> None:
    driver.get(f"{platform.url}/")
    # The page's module has run once the language list is asked for and answered.
    wait_for(driver, lambda d: d.find_element(By.ID, "lang-hint").text)


def choose(driver: Chrome, *paths: Path) -> None:
    """Choose `paths` in the file input, as a person would in the file dialog."""
    driver.find_element(By.ID, "files").send_keys("\n".join(str(path) for path in paths))


def done_documents(driver: Chrome, count: int) -> list[WebElement]:
    """The first `count` documents, once each is read (or has failed)."""

    def finished(d: Chrome) -> list[WebElement] | None:
        documents = d.find_elements(By.CSS_SELECTOR, "article.document")
        ended = [
            e for e in documents if {"done", "failed"} & set(e.get_dom_attribute("class").split())
        ]
        return documents[:count] if len(ended) >= count else None

    return wait_for(driver, finished)


def word_boxes(document: WebElement) -> list[WebElement]:
    return document.find_elements(By.CSS_SELECTOR, ".words .word")


def box_labels(document: WebElement) -> list[str]:
    return [box.get_dom_attribute("aria-label") for box in word_boxes(document)]


def assert_labelled(box: WebElement) -> re.Match[str]:
    label = box.get_dom_attribute("aria-label")
    match = BOX_LABEL.match(label)
    assert match, label
    assert box.get_dom_attribute("tabindex") == "0"
    assert box.get_dom_attribute("role") == "listitem"
    assert 0 <= int(match["confidence"]) <= 100
    return match


def tip(driver: Chrome, box: WebElement) -> str:
    """What the box shows next to it now (its `::after` content; "none" when hidden)."""
    content: str = driver.execute_script(
        "return getComputedStyle(arguments[0], '::after').content", box
    )
    return content.strip('"')


def assert_same_origin_only(driver: Chrome, platform: Platform) -> None:
    """Every resource the page loaded came from the gateway (data: and blob: are in-page)."""
    names: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    assert names, "the page loaded no resources at all?"
    foreign = [
        name for name in names if not name.startswith((f"{platform.url}/", "data:", "blob:"))
    ]
    assert foreign == []


def console_errors(
    driver: Chrome, allowed: Callable[[dict[str, Any]], bool] = lambda _: False
) -> list[dict[str, Any]]:
    """The console's errors and CSP reports (warnings included), but those `allowed`."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        entry
        for entry in entries
        if (entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"])
        and not allowed(entry)
    ]


def downloaded(folder: Path, suffix: str) -> Callable[[Chrome], Path | None]:
    """The file ending in `suffix` once Chromium has finished saving it."""

    def check(_: Chrome) -> Path | None:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        partial = [p for p in folder.iterdir() if p.suffix == ".crdownload"]
        return done[0] if done and not partial else None

    return check


def screenshot(driver: Chrome, path: Path) -> None:
    """The whole page (not only the window), as PNG."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def test_a_rendered_page_shows_its_text_and_a_labelled_box_per_word(
    platform: Platform, browser: Chrome, tmp_path: Path, downloads: Path
) -> None:
    scan = tmp_path / "ledger.png"
    scan.write_bytes(encode(render_lines(LEDGER_LINES, width=1200, font_px=32)))
    open_page(browser, platform)
    # The language list comes from GET /gateway/languages: what `make test` installs.
    codes = [
        option.get_dom_attribute("value")
        for option in browser.find_elements(By.CSS_SELECTOR, "#lang option")
    ]
    assert {"eng", "deu"} <= set(codes)
    assert "osd" not in codes
    assert browser.find_element(By.ID, "lang").get_property("value") == "eng"

    choose(browser, scan)  # choosing starts the upload: no button to press
    (document,) = done_documents(browser, 1)
    assert "done" in document.get_dom_attribute("class")
    assert document.find_element(By.TAG_NAME, "h2").text == "ledger.png"
    progress = document.find_element(By.TAG_NAME, "progress")
    assert progress.get_property("value") == progress.get_property("max") == 1

    text = document.find_element(By.CSS_SELECTOR, ".page-text pre").text
    assert "ledger" in text.lower()
    assert "library" in text.lower()
    boxes = word_boxes(document)
    assert len(boxes) >= 20
    matches = [assert_labelled(box) for box in boxes]
    ledger = [m for m in matches if m["word"].lower() == "ledger"]
    assert len(ledger) == 2, box_labels(document)
    assert all(int(m["confidence"]) >= 80 for m in ledger)
    # Coloured by confidence: every box carries one of the three classes, as its label says.
    for box, match in zip(boxes, matches, strict=True):
        classes = set(box.get_dom_attribute("class").split())
        confidence = int(match["confidence"])
        expected = (
            "conf-high" if confidence >= 90 else "conf-mid" if confidence >= 70 else "conf-low"
        )
        assert classes & {"conf-high", "conf-mid", "conf-low"} == {expected}, match.string
    assert any(int(m["confidence"]) < 70 for m in matches)

    # Each box lies over its word: inside the page image, in reading order on the first line.
    image = document.find_element(By.CSS_SELECTOR, ".page-canvas img")
    frame = image.rect
    assert all(inside(box.rect, frame) for box in boxes)
    first_line = [box.rect["x"] for box in boxes[:5]]
    assert first_line == sorted(first_line)

    # Keyboard: Tab from the last control before the page reaches the first word box, which
    # then shows its word and confidence; a pointer over a box shows it too.
    before = document.find_elements(By.CSS_SELECTOR, ".downloads button")[-1]
    browser.execute_script("arguments[0].focus()", before)
    ActionChains(browser).send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused == boxes[0]
    assert tip(browser, focused) == focused.get_dom_attribute("aria-label")
    screenshot(browser, tmp_path / "web-page.png")
    target = os.environ.get("OCR_WEB_SCREENSHOT")
    if target:
        shutil.copyfile(tmp_path / "web-page.png", target)
    assert tip(browser, boxes[3]) == "none"
    ActionChains(browser).move_to_element(boxes[3]).perform()
    wait_for(browser, lambda d: tip(d, boxes[3]) == boxes[3].get_dom_attribute("aria-label"))

    # The copy button puts the page's text on the clipboard.
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": platform.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    copy = document.find_element(By.CSS_SELECTOR, ".page-text button.copy")
    assert copy.accessible_name == "Copy the text of page 1"
    copy.click()
    wait_for(browser, lambda _: copy.text == "Copied")
    copied = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )
    assert copied.strip() == text.strip()
    assert "is copied" in browser.find_element(By.ID, "status").text

    # Downloads: fetched with the same options, offered as a blob: link, saved.
    hocr = document.find_element(
        By.CSS_SELECTOR, "button[aria-label='Download hOCR of ledger.png']"
    )
    hocr.click()
    link = wait_for(
        browser, lambda _: document.find_elements(By.CSS_SELECTOR, ".downloads a.download")
    )[0]
    assert link.get_dom_attribute("download") == "ledger.hocr"
    assert link.get_dom_attribute("href").startswith(f"blob:{platform.url}/")
    saved = wait_for(browser, downloaded(downloads, ".hocr"))
    assert saved.name == "ledger.hocr"
    assert b"ocrx_word" in saved.read_bytes()
    assert b"ledger" in saved.read_bytes()

    assert_same_origin_only(browser, platform)
    assert console_errors(browser) == []


def test_a_pdf_and_a_dropped_image_arrive_page_by_page(
    platform: Platform, browser: Chrome, tmp_path: Path, downloads: Path
) -> None:
    pdf = tmp_path / "two pages.pdf"
    pdf.write_bytes(scanned_pdf(line_pages(*PDF_TEXTS), dpi=150))
    open_page(browser, platform)
    choose(browser, pdf)
    # An image dropped on the drop zone (a File in a DataTransfer, as a drag from the desktop).
    dropped = encode(render_lines(["Dropped receipt number 4711"], width=900, font_px=36))
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "receipt.png", {type: "image/png"}));
        const zone = document.getElementById("drop-zone");
        const drop = {dataTransfer: transfer, bubbles: true, cancelable: true};
        zone.dispatchEvent(new DragEvent("drop", drop));
        """,
        base64.b64encode(dropped).decode(),
    )
    first, second = done_documents(browser, 2)
    assert first.find_element(By.TAG_NAME, "h2").text == "two pages.pdf"
    assert second.find_element(By.TAG_NAME, "h2").text == "receipt.png"

    pages = first.find_elements(By.CSS_SELECTOR, "section.page")
    assert [page.find_element(By.TAG_NAME, "h3").text for page in pages] == [
        "Page 1 of 2",
        "Page 2 of 2",
    ]
    progress = first.find_element(By.TAG_NAME, "progress")
    assert progress.get_property("value") == progress.get_property("max") == 2
    for page, truth in zip(pages, PDF_TEXTS, strict=True):
        assert page.find_element(By.CSS_SELECTOR, ".page-text pre").text.strip() == truth
        labels = [assert_labelled(box)["word"] for box in word_boxes(page)]
        assert labels == truth.split()
        # The preview: a JPEG of the page as read (rendered at 300 dpi, so scaled down to
        # 1600 px), with the page's aspect.
        image = page.find_element(By.CSS_SELECTOR, ".page-canvas img")
        assert image.get_dom_attribute("src").startswith("data:image/jpeg;base64,")
        natural = browser.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image
        )
        width, height = (
            int(image.get_dom_attribute("width")),
            int(image.get_dom_attribute("height")),
        )
        assert max(natural) <= 1600
        assert abs(natural[0] / natural[1] - width / height) < 0.01
    receipt = second.find_element(By.CSS_SELECTOR, ".page-text pre").text
    assert "receipt" in receipt.lower()
    assert any(label.startswith("4711, ") for label in box_labels(second))
    screenshot(browser, tmp_path / "web-page-pdf.png")

    first.find_element(
        By.CSS_SELECTOR, "button[aria-label='Download Searchable PDF of two pages.pdf']"
    ).click()
    saved = wait_for(browser, downloaded(downloads, ".pdf"))
    assert saved.name == "two pages.pdf"
    with pikepdf.open(io.BytesIO(saved.read_bytes())) as searchable:
        assert len(searchable.pages) == 2

    assert_same_origin_only(browser, platform)
    assert console_errors(browser) == []


def test_with_api_keys_a_wrong_key_is_explained_and_the_right_one_works(
    tmp_path: Path, browser: Chrome
) -> None:
    scan = tmp_path / "keyed.png"
    scan.write_bytes(encode(render_lines(["Keys open the ledger"], width=900, font_px=40)))
    keyed = start_platform(tmp_path, {"OCR_GATEWAY_API_KEYS": API_KEY, "OCR_MODEL_WORKERS": "1"})
    try:
        # The page and its files load without a key; the language list needs one.
        open_page(browser, keyed)
        assert "API key" in browser.find_element(By.ID, "lang-hint").text

        key = browser.find_element(By.ID, "api-key")
        assert key.accessible_name == "API key, if this gateway needs one"
        key.send_keys("not-the-right-key-at-all", Keys.TAB)  # leaving the field keeps it
        choose(browser, scan)
        (refused,) = done_documents(browser, 1)
        assert "failed" in refused.get_dom_attribute("class")
        message = refused.find_element(By.CSS_SELECTOR, ".error").text
        assert "needs an API key, and the key given is missing or wrong" in message
        assert "unauthorized" not in message.split("\n")[0]  # words, not the code

        key.clear()
        key.send_keys(API_KEY, Keys.TAB)
        wait_for(
            browser,
            lambda d: (
                "deu"
                in [
                    o.get_dom_attribute("value")
                    for o in d.find_elements(By.CSS_SELECTOR, "#lang option")
                ]
            ),
        )
        choose(browser, scan)
        _, read = done_documents(browser, 2)
        assert "done" in read.get_dom_attribute("class")
        assert "ledger" in read.find_element(By.CSS_SELECTOR, ".page-text pre").text.lower()
        assert any(label.startswith("ledger, ") for label in box_labels(read))
        screenshot(browser, tmp_path / "web-page-keys.png")

        # Kept for the tab (sessionStorage), not beyond it.
        assert browser.execute_script("return sessionStorage.getItem('ocr.apiKey')") == API_KEY
        assert browser.execute_script("return localStorage.length") == 0
        browser.refresh()
        wait_for(browser, lambda d: "installed on" in d.find_element(By.ID, "lang-hint").text)
        assert browser.find_element(By.ID, "api-key").get_property("value") == API_KEY

        assert_same_origin_only(browser, keyed)
        # The refused calls are logged by Chromium as failed loads (401): those and no more.
        assert (
            console_errors(browser, lambda e: e["source"] == "network" and " 401 " in e["message"])
            == []
        )
    finally:
        keyed.service.stop(signal.SIGINT)
