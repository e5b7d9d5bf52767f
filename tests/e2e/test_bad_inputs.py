"""The bad-input matrix through the gateway: a clear JSON error, fast, and service goes on.

Every case: the expected status and error code, a JSON body with a message and the request id,
no traceback, exception class, file path or internal address in it, an answer in under a
second, and the next good request still succeeds.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

import contract
from tests.e2e.conftest import Platform, start_platform
from tests.support import bad_inputs as bad
from tests.support.images import encode, line_png

pytestmark = pytest.mark.e2e

GOOD_TEXT = "Still serving 64"
#: What must never reach a client: tracebacks, exception classes, paths, internal addresses.
LEAKS = re.compile(
    r"Traceback|File \"|Error\(|Exception|/usr/|/work/|site-packages|127\.0\.0\.1|localhost:\d+"
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("matrix"))
    yield running
    running.service.stop(signal.SIGINT)


def upload(name: str, data: bytes, **form: str) -> dict[str, Any]:
    return {"files": {"image_file": (name, data, "image/png")}, "data": form}


# (case, request kwargs, expected status, expected error code)
CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("empty file", upload("a.png", b""), 422, "empty_file"),
    ("text file named .png", upload("a.png", b"hello, not an image\n" * 10), 415, "unsupported_media_type"),
    ("truncated PNG", upload("a.png", line_png("cut")[:300]), 422, "invalid_argument"),
    ("truncated JPEG", upload("a.jpg", bad.truncated_jpeg()), 422, "invalid_argument"),
    ("wrong field name", {"files": {"file": ("a.png", line_png("x"))}}, 422, "validation_error"),
    ("no body", {}, 422, "validation_error"),
    ("JSON instead of multipart", {"json": {"image_file": "aGk="}}, 422, "validation_error"),
    ("two files", {"files": [("image_file", ("a.png", line_png("a"))), ("image_file", ("b.png", line_png("b")))]}, 422, "too_many_files"),
    ("0x0 PNG", upload("a.png", bad.png_header_only(0, 0)), 422, "invalid_argument"),
    ("30000x30000 PNG bomb", upload("a.png", bad.png_header_only(30000, 30000)), 422, "invalid_argument"),
    ("pixel cap exceeded", upload("a.png", bad.png_header_only(8000, 6000)), 422, "invalid_argument"),
    ("60 MB upload", upload("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (60 * 1024 * 1024)), 413, "payload_too_large"),
    ("1000-page TIFF", upload("a.tif", bad.tiff_pages(1000)), 413, "too_many_pages"),
    ("10000-frame GIF", upload("a.gif", bad.gif_frames(10000)), 422, "invalid_argument"),
    ("PNG+ZIP polyglot", upload("a.png", bad.png_zip_polyglot()), 422, "invalid_argument"),
    ("EPS disguised as PNG", upload("a.png", bad.EPS), 415, "unsupported_media_type"),
    ("SVG disguised as PNG", upload("a.png", bad.SVG), 415, "unsupported_media_type"),
    ("PSD disguised as PNG", upload("a.png", bad.PSD), 415, "unsupported_media_type"),
    ("FITS disguised as PNG", upload("a.png", bad.FITS), 415, "unsupported_media_type"),
    ("language not installed", upload("a.png", line_png("x"), lang="klingon"), 422, "invalid_argument"),
    ("malformed language", upload("a.png", line_png("x"), lang="../../etc/passwd"), 422, "validation_error"),
    ("psm=99", upload("a.png", line_png("x"), psm="99"), 422, "validation_error"),
    ("psm=-1", upload("a.png", line_png("x"), psm="-1"), 422, "validation_error"),
    ("psm not a number", upload("a.png", line_png("x"), psm="six"), 422, "validation_error"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "request_", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_upload(
    platform: Platform, case: str, request_: dict[str, Any], status: int, code: str
) -> None:
    started = time.monotonic()
    response = httpx.post(f"{platform.url}/gateway/ocr", timeout=10, **request_)
    took = time.monotonic() - started
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert not LEAKS.search(response.text), response.text
    assert took < 1.0, f"{case} took {took:.2f}s"
    good = httpx.post(
        f"{platform.url}/gateway/ocr",
        files={"image_file": ("ok.png", line_png(GOOD_TEXT))},
        data={"psm": "7"},
        timeout=30,
    )
    assert good.json()["text"].strip() == GOOD_TEXT


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/gateway/ocr", 405, "method_not_allowed"), ("GET", "/nope", 404, "not_found")],
)
def test_wrong_route_or_method(
    platform: Platform, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(method, f"{platform.url}{path}", timeout=5)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_one_pixel_image_is_valid_and_reads_as_empty(platform: Platform) -> None:
    response = httpx.post(
        f"{platform.url}/gateway/ocr",
        files={"image_file": ("dot.png", encode(Image.new("L", (1, 1), 255)))},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["text"].strip() == ""
    assert response.json()["words"] == []


def test_exif_orientation_is_applied_and_metadata_not_echoed(platform: Platform) -> None:
    """A photo stored sideways with an EXIF 'rotate 90' tag reads upright."""
    upright = Image.new("RGB", (900, 120), "white")
    from PIL import ImageDraw, ImageFont

    from tests.support.images import FONT

    ImageDraw.Draw(upright).text(
        (10, 30), "Rotated by EXIF 8", font=ImageFont.truetype(str(FONT), 48), fill="black"
    )
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    exif[0x010F] = "SecretCam Model X"  # camera make: must not come back
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    response = httpx.post(
        f"{platform.url}/gateway/ocr",
        files={"image_file": ("photo.jpg", data)},
        data={"psm": "7"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["text"].strip() == "Rotated by EXIF 8"
    assert "SecretCam" not in response.text
    assert set(response.json()) == {
        "text", "confidence", "words", "model", "model_version", "request_id", "timings",
        "pages", "page_count",
    }  # fmt: skip
    (page,) = response.json()["pages"]
    assert set(page) == set(contract.PageFacts.model_fields)  # page facts only, no metadata


def test_large_uploads_leave_no_files_or_descriptors_behind(platform: Platform) -> None:
    """Starlette spools big uploads to anonymous temp files: all closed once answered."""
    import psutil

    children = psutil.Process(platform.service.process.pid).children(recursive=True)
    gateway = next(p for p in children if "gateway" in " ".join(p.cmdline()))
    baseline = gateway.num_fds()
    big = encode(Image.effect_noise((2200, 2200), 64), "PNG")  # several MB, spooled to disk
    assert len(big) > 2 * 1024 * 1024
    for _ in range(3):
        response = httpx.post(
            f"{platform.url}/gateway/ocr", files={"image_file": ("big.png", big)}, timeout=120
        )
        assert response.status_code == 200
    refused = httpx.post(
        f"{platform.url}/gateway/ocr",
        files={"image_file": ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (30 * 1024 * 1024))},
        timeout=30,
    )
    assert refused.status_code == 413
    assert gateway.num_fds() <= baseline + 2  # keep-alive sockets may come and go
    assert not [f for f in gateway.open_files() if f.fd > 2]  # stdout/stderr are the log
