"""The whole platform as `make run` starts it: gateway and model processes, real HTTP uploads."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Platform, start_platform
from tests.support.images import TESTDATA, encode, line_png, render_line
from tests.support.processes import ROOT, free_port, http_ok, living_members, start, wait_until
from tests.support.text import cer

pytestmark = pytest.mark.e2e

TESSDATA = "/usr/share/tesseract-ocr/5/tessdata/"
GOOD_TEXT = "Gateway end to end 31"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """scripts/run-local.sh, exactly what `make run` runs, on free ports."""
    running = start_platform(tmp_path_factory.mktemp("platform"))
    yield running
    running.service.stop(signal.SIGINT)


def test_upload_returns_text_words_and_metadata(platform: Platform) -> None:
    response = platform.ocr(
        files={"image_file": ("line.png", line_png(GOOD_TEXT), "image/png")}, data={"psm": "7"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"].strip() == GOOD_TEXT
    assert 80 < body["confidence"] <= 100
    assert [w["text"] for w in body["words"]] == GOOD_TEXT.split()
    assert body["model"] == "ocr-model"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["timings"]["total_ms"] >= body["timings"]["model_ms"] > 0


def test_client_request_id_is_kept(platform: Platform) -> None:
    response = platform.ocr(
        files={"image_file": ("a.png", line_png("Request id"), "image/png")},
        headers={"X-Request-ID": "client-abc-123"},
    )
    assert response.json()["request_id"] == "client-abc-123"


@pytest.mark.parametrize(
    "name", ["phototest.tif", "phototest_2.tif", "eurotext.tif", "phototest-rotated-R.png"]
)
def test_no_accuracy_lost_against_tesseract_alone(platform: Platform, name: str) -> None:
    """The text through HTTP, gRPC and the engine equals Tesseract reading the file itself."""
    import tesserocr

    path = TESTDATA / name
    expected = tesserocr.file_to_text(str(path), path=TESSDATA, lang="eng")
    response = platform.ocr(
        files={"image_file": (name, path.read_bytes(), "application/octet-stream")}
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == expected


def test_scan_character_error_rate(platform: Platform) -> None:
    truth = (TESTDATA / "phototest.txt").read_text()
    response = platform.ocr(
        files={"image_file": ("scan.tif", (TESTDATA / "phototest.tif").read_bytes())}
    )
    assert cer(truth, response.json()["text"]) <= 0.01


def test_language_choice_reaches_the_engine(platform: Platform) -> None:
    truth = (TESTDATA / "eurotext.txt").read_text()
    scan = (TESTDATA / "eurotext.tif").read_bytes()
    both = platform.ocr(files={"image_file": ("euro.tif", scan)}, data={"lang": "eng+deu"})
    assert both.status_code == 200
    assert cer(truth, both.json()["text"]) <= 0.05


def test_jpeg_photo_like_scan(platform: Platform) -> None:
    image = render_line("Photographed receipt 2048", size=(1200, 120), font_px=56).convert("RGB")
    response = platform.ocr(
        files={"image_file": ("photo.jpg", encode(image, "JPEG", quality=80))}, data={"psm": "7"}
    )
    assert response.json()["text"].strip() == "Photographed receipt 2048"


def test_health_endpoints(platform: Platform) -> None:
    for path in ("/healthz", "/health", "/readyz"):
        assert httpx.get(f"{platform.url}{path}", timeout=5).status_code == 200
    openapi = httpx.get(f"{platform.url}/openapi.json", timeout=5).json()
    assert "/gateway/ocr" in openapi["paths"]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_both_services(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("gateway", "http", "grpc")}
    service = start(
        ["bash", str(ROOT / "scripts" / "run-local.sh"), sys.executable],
        {
            "OCR_GATEWAY_PORT": str(ports["gateway"]),
            "OCR_MODEL_HTTP_PORT": str(ports["http"]),
            "OCR_MODEL_GRPC_PORT": str(ports["grpc"]),
            "OCR_MODEL_GRACE_PERIOD_S": "2",
        },
        tmp_path / "run.log",
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{ports['gateway']}/readyz"), 90, "platform")
        children = living_members(service.pgid)
        assert len(children) >= 3, children  # the script, the model server and the gateway
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(service.pgid, signal.SIGINT)
        assert service.process.wait(30) == 130  # the script's INT trap
        # Both services exited on the signal alone: nothing of the group is left running.
        wait_until(lambda: not living_members(service.pgid), 10, "every process stopped")
    finally:
        service.stop(signal.SIGINT)  # no-op when all went; else nothing is left orphaned
    wait_until(lambda: not any(port_open(p) for p in ports.values()), 10, "ports released")
