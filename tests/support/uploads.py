"""Large uploads from many polite clients, for the memory tests (processes and containers)."""

from __future__ import annotations

import io
import random
import time
from collections import Counter
from collections.abc import Callable

import httpx
from PIL import Image, ImageDraw

#: Most uploads one client sends to be read the times it wants.
MAX_ATTEMPTS = 30
#: The security review's worst case: this many clients sending uploads of ~19 MiB at once.
WORST_CLIENTS = 24
WORST_SIDE = 4400  # 4400 x 4400 gray pixels, stored uncompressed: 18.5 MiB


def big_page(side: int = 2900) -> bytes:
    """A line of text on `side` x `side` gray pixels, stored uncompressed (2900: 8 MiB)."""
    image = Image.new("L", (side, side), 255)
    ImageDraw.Draw(image).text((100, 100), "Hello large upload", fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def polite_client(
    gateway_url: str, upload: bytes, rounds: int, attempts: int = MAX_ATTEMPTS
) -> Callable[[int], list[httpx.Response]]:
    """A client reading `upload` `rounds` times in at most `attempts`, waiting what each
    refusal's Retry-After says (jittered, as the gateway does for a document's pages) before
    sending again; an answer that says none is final."""

    def client(seed: int) -> list[httpx.Response]:
        jitter = random.Random(seed)  # noqa: S311  # jitter, not a secret
        answers: list[httpx.Response] = []
        with httpx.Client(timeout=60) as http:
            for _ in range(attempts):
                answer = http.post(
                    f"{gateway_url}/gateway/ocr", files={"image_file": ("page.png", upload)}
                )
                answers.append(answer)
                if sum(a.status_code == 200 for a in answers) == rounds:
                    break
                if answer.status_code != 200:
                    if "retry-after" not in answer.headers:
                        break
                    time.sleep(float(answer.headers["retry-after"]) * jitter.uniform(0.5, 1.5))
        return answers

    return client


def check_answers(answers: list[httpx.Response], reads: int) -> Counter[int]:
    """Every client was read in the end; each refusal says when to come back."""
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] == reads, statuses
    for answer in answers:
        if answer.status_code == 200:
            assert "large" in answer.json()["text"].lower()
        else:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["error"]["code"] in {"model_overloaded", "gateway_busy"}
    return statuses
