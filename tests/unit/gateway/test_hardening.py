"""The hardening findings, in-process: each hostile input is made here, at test time.

Upload bytes held at once, stalled bodies and their temporary files, redirects built from the
Host header, the docs page without a CDN, the key header in the schema, the model token and
the tenant sent to the model.
"""

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import contract
from gateway.__main__ import proxy_options
from gateway.access import key_id
from gateway.app import create_app
from gateway.errors import GatewayBusyError
from gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import FakeModelServicer, png_bytes, serve_fake_model
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_client

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

MIB = 1024 * 1024
BOUNDARY = "hardening"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
KEY, OTHER = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
SECRET = secrets.token_urlsafe(32)


def part_head() -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="image_file"; filename="page.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


class StallingBody:
    """A multipart upload that sends ``before_stall`` bytes, then waits for ``resume`` (never
    set: a client that stops sending), then the rest up to ``total`` bytes."""

    def __init__(self, total: int, before_stall: int, chunk: int = 64 * 1024) -> None:
        self.total, self.before_stall, self.chunk = total, before_stall, chunk
        self.sent = 0
        self.stalled = asyncio.Event()
        self.resume = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head, tail = part_head(), f"\r\n--{BOUNDARY}--\r\n".encode()
        # Zeros are not an image: a complete upload is answered 415.
        data = head + b"\0" * (self.total - len(head) - len(tail)) + tail
        while self.sent < self.total:
            if self.sent >= self.before_stall and not self.resume.is_set():
                self.stalled.set()
                await self.resume.wait()
            piece = data[self.sent : self.sent + self.chunk]
            self.sent += len(piece)
            yield piece


@asynccontextmanager
async def app_client(
    settings: GatewaySettings, address: str = "127.0.0.1"
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app (lifespan running) and a client whose requests come from ``address``."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield app, client


def held_bytes(app: FastAPI) -> float | None:
    value = app.state.metrics.registry.get_sample_value("ocr_gateway_upload_bytes_in_flight")
    return float(value) if value is not None else None


def post_stalling(client: httpx.AsyncClient, body: StallingBody, declare: bool = True) -> Any:
    headers = {**MULTIPART, **({"Content-Length": str(body.total)} if declare else {})}
    return asyncio.create_task(client.post("/gateway/ocr", content=body, headers=headers))


# --- 1. Upload bytes held at once ------------------------------------------------------------


async def test_uploads_past_the_in_flight_cap_are_refused_at_once(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(max_upload_bytes=MIB, max_inflight_upload_bytes=2 * MIB)
    async with app_client(settings) as (app, client):
        held = [StallingBody(MIB, before_stall=128 * 1024) for _ in range(2)]
        tasks = [post_stalling(client, body) for body in held]
        for body in held:
            await asyncio.wait_for(body.stalled.wait(), 5)
        assert held_bytes(app) == 2 * MIB

        third = StallingBody(MIB, before_stall=MIB)
        loop = asyncio.get_running_loop()
        started = loop.time()
        refused = await client.post(
            "/gateway/ocr", content=third, headers={**MULTIPART, "Content-Length": str(MIB)}
        )
        assert loop.time() - started < 1.0
        message = assert_error(refused, GatewayBusyError.status, GatewayBusyError.code)
        assert message == GatewayBusyError().message
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["connection"] == "close"
        assert third.sent == 0  # refused before a byte of its body was read

        # The held uploads end; their bytes are released and a new upload is admitted.
        for body in held:
            body.resume.set()
        for response in await asyncio.gather(*tasks):
            assert_error(response, 415, "unsupported_media_type")
        assert held_bytes(app) == 0
        fourth = await client.post(
            "/gateway/ocr", files={"image_file": ("a.png", b"x" * MIB, "image/png")}
        )
        assert_error(fourth, 415, "unsupported_media_type")
        assert held_bytes(app) == 0


async def test_a_chunked_upload_counts_its_bytes_as_they_arrive(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(max_upload_bytes=MIB, max_inflight_upload_bytes=MIB + MIB // 2)
    async with app_client(settings) as (app, client):
        holder = StallingBody(MIB, before_stall=64 * 1024)
        task = post_stalling(client, holder)
        await asyncio.wait_for(holder.stalled.wait(), 5)
        # No Content-Length: admitted, then refused once its own bytes pass what is left.
        chunked = StallingBody(MIB, before_stall=MIB, chunk=128 * 1024)
        response = await client.post("/gateway/ocr", content=chunked, headers=MULTIPART)
        assert "content-length" not in response.request.headers
        assert_error(response, 503, "gateway_busy")
        assert MIB // 2 < chunked.sent <= MIB // 2 + 2 * chunked.chunk
        holder.resume.set()
        assert_error(await task, 415, "unsupported_media_type")
        assert held_bytes(app) == 0


async def test_a_lone_upload_is_admitted_whatever_the_cap(make_settings: SettingsFactory) -> None:
    settings = make_settings(max_upload_bytes=MIB, max_inflight_upload_bytes=MIB)
    async with app_client(settings) as (app, client):
        image = png_bytes() + b"\0" * (MIB - 4096)  # the largest upload: body over the cap
        response = await client.post("/gateway/ocr", files={"image_file": ("a.png", image)})
        assert_error(response, 503, "model_unavailable")  # admitted; no model behind it
        assert held_bytes(app) == 0


# --- 2. Bodies that never finish -------------------------------------------------------------


def open_temp_files(directory: Path) -> list[str]:
    """Files of this process open in ``directory`` (spooled uploads are unlinked at once)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


async def test_a_client_that_sends_headers_then_nothing_is_cut_off(
    make_settings: SettingsFactory,
) -> None:
    async with app_client(make_settings(body_timeout_s=0.3)) as (app, client):
        silent = StallingBody(MIB, before_stall=0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await post_stalling(client, silent)
        took = loop.time() - started
        message = assert_error(response, 408, "request_timeout")
        assert message == "The request body was not received within 0.3 s."
        assert response.headers["connection"] == "close"
        assert 0.3 <= took < 2.0
        assert held_bytes(app) == 0


async def test_a_stalled_upload_is_cut_off_and_its_temp_file_deleted(
    make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parts over 1 MiB are spooled to a temporary file, here in tmp_path.
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    async with app_client(make_settings(max_upload_bytes=4 * MIB, body_timeout_s=1.0)) as (
        _,
        client,
    ):
        bodies = [StallingBody(4 * MIB, before_stall=2 * MIB) for _ in range(3)]
        tasks = [post_stalling(client, body) for body in bodies]
        for body in bodies:
            await asyncio.wait_for(body.stalled.wait(), 5)
        await asyncio.sleep(0.1)  # the parser writes what it was given
        assert len(open_temp_files(tmp_path)) == 3  # the test sees spooled files...
        for response in await asyncio.gather(*tasks):
            assert_error(response, 408, "request_timeout")
        assert open_temp_files(tmp_path) == []  # ...and none is left once they are cut off
        assert os.listdir(tmp_path) == []


async def test_a_slow_but_complete_upload_is_served(make_settings: SettingsFactory) -> None:
    class Trickle:
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield part_head()
            for _ in range(4):
                await asyncio.sleep(0.05)
                yield b"not an image "
            yield f"\r\n--{BOUNDARY}--\r\n".encode()

    async with app_client(make_settings(body_timeout_s=2.0)) as (_, client):
        response = await client.post("/gateway/ocr", content=Trickle(), headers=MULTIPART)
        assert_error(response, 415, "unsupported_media_type")


# --- 7. No redirect built from the Host header ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/healthz/"), ("GET", "/readyz/"), ("POST", "/gateway/ocr/")]
)
async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    make_settings: SettingsFactory, method: str, path: str
) -> None:
    async with gateway_client(make_settings()) as client:
        response = await client.request(method, path, headers={"Host": "evil.example"})
    assert_error(response, 404, "not_found")
    assert "location" not in response.headers
    assert "evil.example" not in response.text


# --- 6. The docs page --------------------------------------------------------------------------


class PageRefs(HTMLParser):
    """Script and stylesheet references of a page, and any inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.urls.append(str(values["src"]))
        elif tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = [part.split() for part in policy.split(";") if part.strip()]
    return {words[0]: words[1:] for words in parsed}


async def test_the_docs_load_from_the_gateway_with_a_strict_script_policy(
    make_settings: SettingsFactory,
) -> None:
    # With keys configured: the docs and their assets still need none.
    async with gateway_client(make_settings(api_keys=[KEY])) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        refs = PageRefs()
        refs.feed(page.text)
        assert refs.inline_scripts == []
        assert not re.search(r"https?://", page.text)  # no CDN, no other origin
        policy = directives(page.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"]
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-eval'" not in page.headers["content-security-policy"]

        kinds = {}
        for url in refs.urls:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["x-content-type-options"] == "nosniff"
            kinds[url.rsplit("/", 1)[-1]] = (asset.headers["content-type"], len(asset.content))
        assert kinds["swagger-ui-bundle.js"][0].startswith("text/javascript")
        assert kinds["swagger-ui-bundle.js"][1] > 500_000  # the real bundle, not a stub
        assert kinds["swagger-ui.css"][0].startswith("text/css")
        init = kinds["swagger-init.js"]
        assert init[0].startswith("text/javascript")
        script = (await client.get("/docs/swagger-init.js")).text
        assert "SwaggerUIBundle(" in script
        assert '"url": "/openapi.json"' in script
        assert '"validatorUrl": null' in script


@pytest.mark.parametrize(
    "path",
    [
        "/redoc",
        "/docs/oauth2-redirect",
        "/docs/static/redoc.standalone.js",
        "/docs/static/..%2F..%2Fsettings.py",
        "/docs/static/__init__.py",
    ],
)
async def test_nothing_else_is_served_beside_the_docs(
    make_settings: SettingsFactory, path: str
) -> None:
    async with gateway_client(make_settings()) as client:
        assert_error(await client.get(path), 404, "not_found")


async def test_the_schema_declares_the_key_header_when_keys_are_set(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(api_keys=[KEY], api_key_header="X-Ocr-Key")
    spec = create_app(settings).openapi()
    scheme = spec["components"]["securitySchemes"]["APIKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Ocr-Key")
    assert spec["paths"]["/gateway/ocr"]["post"]["security"] == [{"APIKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    # The header is not a form or query parameter of the route.
    parameters = spec["paths"]["/gateway/ocr"]["post"].get("parameters", [])
    assert all(p["name"] != "X-Ocr-Key" for p in parameters)

    open_spec = create_app(make_settings()).openapi()
    assert "securitySchemes" not in open_spec.get("components", {})
    assert "security" not in open_spec["paths"]["/gateway/ocr"]["post"]


# --- 8. The model token ------------------------------------------------------------------------


async def test_the_model_token_goes_with_every_model_call(make_settings: SettingsFactory) -> None:
    token = secrets.token_urlsafe(24)
    servicer = FakeModelServicer()
    async with (
        serve_fake_model(servicer) as address,
        gateway_client(make_settings(model_address=address, model_token=token)) as client,
    ):
        assert (await client.get("/readyz")).status_code == 200
        ocr = await client.post("/gateway/ocr", files={"image_file": ("a.png", png_bytes())})
        assert ocr.status_code == 200, ocr.text
    methods = sorted(method for method, _ in servicer.calls)
    assert methods == ["ModelInfer", "ModelReady", "ServerReady"]
    for method, metadata in servicer.calls:
        assert metadata.get("authorization") == f"Bearer {token}", method


async def test_without_a_token_no_authorization_is_sent(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with (
        serve_fake_model(servicer) as address,
        gateway_client(make_settings(model_address=address)) as client,
    ):
        assert (await client.get("/readyz")).status_code == 200
    assert servicer.calls
    assert all("authorization" not in metadata for _, metadata in servicer.calls)


# --- 5. The tenant sent to the model ------------------------------------------------------------


def tenants(servicer: FakeModelServicer) -> list[str]:
    return [r.parameters[contract.TENANT.name].string_param for r in servicer.requests]


async def test_the_tenant_is_the_keyed_hash_of_the_api_key(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with serve_fake_model(servicer) as address:
        settings = make_settings(model_address=address, api_keys=[KEY, OTHER], key_id_secret=SECRET)
        async with app_client(settings) as (_, client):
            for key in (KEY, OTHER, KEY):
                response = await client.post(
                    "/gateway/ocr",
                    files={"image_file": ("a.png", png_bytes())},
                    headers={"X-API-Key": key},
                )
                assert response.status_code == 200, response.text
    first, second, third = tenants(servicer)
    assert first == f"key:{key_id(KEY, SECRET.encode())}"
    assert second == f"key:{key_id(OTHER, SECRET.encode())}"
    assert first == third
    assert first != second
    for tenant in (first, second):
        assert re.fullmatch(contract.TENANT.pattern, tenant)
        assert KEY not in tenant
        assert OTHER not in tenant


async def test_without_keys_the_tenant_is_the_keyed_hash_of_the_address(
    make_settings: SettingsFactory,
) -> None:
    servicer = FakeModelServicer()
    async with serve_fake_model(servicer) as address:
        settings = make_settings(model_address=address, key_id_secret=SECRET)
        for client_address in ("10.1.2.3", "10.9.9.9"):
            async with app_client(settings, client_address) as (_, client):
                response = await client.post(
                    "/gateway/ocr", files={"image_file": ("a.png", png_bytes())}
                )
                assert response.status_code == 200, response.text
    assert tenants(servicer) == [
        f"addr:{key_id('10.1.2.3', SECRET.encode())}",
        f"addr:{key_id('10.9.9.9', SECRET.encode())}",
    ]
    assert all("10." not in tenant for tenant in tenants(servicer))


# --- 3. Proxy headers ----------------------------------------------------------------------------


def test_uvicorn_believes_no_proxy_unless_told(make_settings: SettingsFactory) -> None:
    assert proxy_options(make_settings()) == {"proxy_headers": False, "forwarded_allow_ips": []}
    trusted = make_settings(trusted_proxies=["10.0.0.0/8", "192.168.1.7"])
    assert proxy_options(trusted) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8", "192.168.1.7"],
    }
