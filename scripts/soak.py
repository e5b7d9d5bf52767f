"""Soak the platform: thousands of mixed requests, RSS of both services sampled, growth reported.

Usage: python scripts/soak.py [--requests 3000] [--concurrency 8]   (make soak)
Starts its own model server and gateway on free loopback ports, sends good, empty and bad
uploads in a fixed mix, samples each process's resident memory every `--sample-every` requests
and prints the growth after warm-up. Not part of CI: it measures, it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def png(text: str, size: tuple[int, int] = (800, 80)) -> bytes:
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((10, 20), text, font=ImageFont.truetype(FONT, 36), fill=0)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def workload() -> list[tuple[str, bytes]]:
    """The mix: mostly good lines, some blank pages and bad files of each kind."""
    good = [(f"line{i}.png", png(f"Soak line number {i}")) for i in range(8)]
    blank = [("blank.png", png(""))]
    bad = [
        ("text.png", b"not an image at all"),
        ("cut.png", png("truncated")[:200]),
        ("empty.png", b""),
    ]
    return good * 6 + blank * 2 + bad


def wait_ready(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"not ready: {url}")


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    http, grpc, gw = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "OCR_MODEL_HTTP_PORT": str(http),
        "OCR_MODEL_GRPC_PORT": str(grpc),
        "OCR_MODEL_LOG_LEVEL": "warning",
        "OCR_GATEWAY_PORT": str(gw),
        "OCR_GATEWAY_MODEL_ADDRESS": f"127.0.0.1:{grpc}",
        "OCR_GATEWAY_LOG_LEVEL": "warning",
    }
    quiet = subprocess.DEVNULL
    model = subprocess.Popen([sys.executable, "-m", "model"], cwd=ROOT, env=env, stderr=quiet)
    gateway = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stderr=quiet)
    try:
        wait_ready(f"http://127.0.0.1:{gw}/readyz")
        asyncio.run(soak(args, f"http://127.0.0.1:{gw}", model.pid, gateway.pid))
    finally:
        for process in (gateway, model):  # stopped by their PIDs, which we started
            process.terminate()
            process.wait(30)


async def soak(args: argparse.Namespace, url: str, model_pid: int, gateway_pid: int) -> None:
    """Send the mix with `args.concurrency` clients; print statuses and the RSS samples."""
    mix = workload()
    rnd = random.Random(args.seed)  # noqa: S311  # a reproducible mix, not a secret
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for _ in range(args.requests):
        queue.put_nowait(rnd.choice(mix))
    statuses: dict[int, int] = {}
    samples: list[tuple[int, float, float]] = []
    done = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while not queue.empty():
            name, data = queue.get_nowait()
            response = await client.post(f"{url}/gateway/ocr", files={"image_file": (name, data)})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            done += 1
            if done % args.sample_every == 0:
                samples.append((done, rss_mb(model_pid), rss_mb(gateway_pid)))

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(args.concurrency)))
    took = time.monotonic() - started
    print(f"{args.requests} requests in {took:.1f}s ({args.requests / took:.1f}/s)")
    print("statuses:", dict(sorted(statuses.items())))
    print(f"{'requests':>9} {'model MB':>9} {'gateway MB':>11}")
    for count, model_mb, gateway_mb in samples:
        print(f"{count:>9} {model_mb:>9.1f} {gateway_mb:>11.1f}")
    warm = samples[min(1, len(samples) - 1)]
    last = samples[-1]
    print(
        f"growth after warm-up ({warm[0]} -> {last[0]} requests): "
        f"model {last[1] - warm[1]:+.1f} MB, gateway {last[2] - warm[2]:+.1f} MB"
    )


if __name__ == "__main__":
    main()
