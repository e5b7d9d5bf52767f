"""`helm test` check: upload a generated PNG to the gateway and expect its word back.

Runs inside the model image (Python + Pillow, nothing else needed) with the standard library
for HTTP. Settings come from the environment: OCR_TEST_URL (the gateway's /gateway/ocr URL) and
OCR_TEST_WORD (the word drawn). Exits 0 when the JSON `text` of the answer contains the word.
Retries briefly while the gateway is not reachable or not ready yet (connection errors, 5xx).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from PIL import Image, ImageDraw, ImageFont

ATTEMPTS = 10
BACKOFF_S = 3.0


def png_with(word: str) -> bytes:
    """Black text on white, large enough for Tesseract, with Pillow's bundled scalable font."""
    font = ImageFont.load_default(size=48)
    left, top, right, bottom = font.getbbox(word)
    image = Image.new("L", (right - left + 80, bottom - top + 80), 255)
    ImageDraw.Draw(image).text((40 - left, 40 - top), word, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, and its Content-Type."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


def upload(url: str, body: bytes, content_type: str) -> dict[str, object]:
    """POST the body; retry connection errors and 5xx answers (the gateway may be starting)."""
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - the URL is the chart's own Service
            url, data=body, headers={"Content-Type": content_type}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer: dict[str, object] = json.load(response)
                return answer
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == ATTEMPTS:
                raise
            print(f"attempt {attempt}: HTTP {error.code}, retrying", file=sys.stderr)
        except OSError as error:
            if attempt == ATTEMPTS:
                raise
            print(f"attempt {attempt}: {error}, retrying", file=sys.stderr)
        time.sleep(BACKOFF_S)
    raise AssertionError("unreachable")


def main() -> int:
    url = os.environ["OCR_TEST_URL"]
    word = os.environ.get("OCR_TEST_WORD", "PLATFORM")
    body, content_type = multipart("image_file", "helm-test.png", png_with(word))
    answer = upload(url, body, content_type)
    text = str(answer.get("text", ""))
    if word.lower() not in text.lower():
        print(f"FAIL: expected {word!r} in the OCR text, got {text!r}", file=sys.stderr)
        return 1
    print(f"OK: {url} read {text.strip()!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
