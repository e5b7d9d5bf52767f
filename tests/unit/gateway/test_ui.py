"""The web page's serving and its files: a strict CSP, caching by version, no key needed for the
page and its files, no inline code, every control labelled, a sentence for every error code.

What the page does is tested in real Chromium (tests/e2e/test_web.py); this checks the rules
that hold whatever a browser does.
"""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import httpx
import pytest

from gateway.errors import error_classes
from gateway.routes.ui import ASSET_CACHE_CONTROL, STATIC_DIR, bundle
from tests.support.processes import ROOT
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_client

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

KEY: Final = "ui-test-key-0123456789"
_ASSET: Final = re.compile(r'(?:src|href)="(/static/[0-9a-f]+/[a-z.]+)"')


class _Page(HTMLParser):
    """The tags of a page with their attributes, and the text inside `<script>` and `<style>`."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_code: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_code = tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code and data.strip():
            self.inline_code.append(data)


def parsed(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


async def get_page(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.get("/")
    assert response.status_code == 200, response.text
    return response


@pytest.mark.anyio
async def test_the_page_has_a_strict_csp_and_is_revalidated(make_settings: SettingsFactory) -> None:
    async with gateway_client(make_settings()) as client:
        response = await get_page(client)
        again = await client.get("/", headers={"If-None-Match": response.headers["etag"]})
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data: blob:"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.anyio
async def test_assets_are_cached_by_version_and_nothing_else_is_served(
    make_settings: SettingsFactory,
) -> None:
    async with gateway_client(make_settings()) as client:
        page = (await get_page(client)).text
        urls = _ASSET.findall(page)
        assert {url.rsplit("/", 1)[1] for url in urls} == {"app.js", "app.css", "favicon.svg"}
        for url in urls:
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.headers["cache-control"] == ASSET_CACHE_CONTROL
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.content == (STATIC_DIR / url.rsplit("/", 1)[1]).read_bytes()
        version = bundle().version
        assert (await client.get(f"/static/{version}/app.js")).headers["content-type"] == (
            "text/javascript; charset=utf-8"
        )
        # Another version, the template, a path out of the folder, a file that is not there.
        for path in (
            "/static/0123456789abcdef/app.js",
            f"/static/{version}/index.html",
            f"/static/{version}/..%2Fui.py",
            f"/static/{version}/missing.js",
        ):
            assert_error(await client.get(path), 404, "not_found")


@pytest.mark.anyio
async def test_with_api_keys_the_page_and_its_files_need_none(
    make_settings: SettingsFactory,
) -> None:
    async with gateway_client(make_settings(api_keys=[KEY])) as client:
        page = (await get_page(client)).text
        for url in _ASSET.findall(page):
            assert (await client.get(url)).status_code == 200
        assert_error(await client.get("/gateway/languages"), 401, "unauthorized")


def test_the_page_has_no_inline_code_and_every_control_is_labelled() -> None:
    page = parsed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    assert page.inline_code == []
    labelled = {attrs["for"] for tag, attrs in page.tags if tag == "label"}
    ids = [attrs.get("id") for _, attrs in page.tags if attrs.get("id")]
    assert len(ids) == len(set(ids))
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("type") == "module"
            assert attrs.get("src")
        if tag in ("input", "select", "textarea"):
            assert attrs.get("id") in labelled, attrs
    assert ("html", {"lang": "en"}) in page.tags


def test_the_scripts_write_no_html_and_run_no_strings() -> None:
    """The CSP forbids it (Trusted Types, no `unsafe-eval`): the code never tries."""
    for script in STATIC_DIR.glob("*.js"):
        code = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, (script.name, sink)
        assert not re.search(r"new Function|setTimeout\(\s*[\"'`]", code), script.name
        assert "http://" not in code
        assert "https://" not in code


def test_every_error_code_has_a_sentence_for_people() -> None:
    messages = (STATIC_DIR / "messages.js").read_text(encoding="utf-8")
    table = messages[messages.index("SENTENCES = {") : messages.index("};")]
    codes = set(re.findall(r"^  ([a-z_]+):", table, re.MULTILINE))
    assert codes == {cls.code for cls in error_classes()}


def test_the_page_ships_with_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "static/*" in project["tool"]["setuptools"]["package-data"]["gateway"]
    # One flat folder: the pattern above catches every file.
    assert all(path.is_file() for path in Path(STATIC_DIR).iterdir())
