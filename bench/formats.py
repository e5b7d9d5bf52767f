"""`python -m bench.formats`: what formats, orientation detection and deskew cost on a full page.

Starts the platform and calls its model server over gRPC with the gateway's own request
builder, one request at a time, so each figure is one page's wall time. On the benchmark's full
page it compares:
- every output (text, confidence, words, hOCR, TSV, ALTO, PDF, page facts) vs text and words:
  all come from one recognition, so the target is at most 1.3x;
- `rotate=auto` vs plain (target: at most +25 %), `deskew=true` vs plain (at most +15 %), on
  the upright page (where deskew only measures) and on the page skewed 7 degrees (where it
  straightens it: deskew vs plain, both of the skewed upload).
Variants run interleaved, so a slow minute of the machine hits them all alike; medians
reported, with each target's ratio in every round (its spread). Prints a table and writes
`formats.json` to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc

import contract
from gateway.codec import build_infer_request
from gateway.protocol import pb_grpc

from .stacks import PlatformStack
from .workloads import full_page, one_line, skewed

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "bench"


@dataclass(frozen=True)
class Variant:
    """One way of asking for the same page."""

    name: str
    outputs: tuple[str, ...] | None = None
    rotate: str | None = None
    deskew: bool | None = None
    skewed: bool = False
    """Send the page skewed 7 degrees instead of upright."""


TEXT_WORDS: Final = Variant("text+words", outputs=("text", "words"))
ALL_OUTPUTS: Final = Variant("all outputs", outputs=tuple(o.name for o in contract.OUTPUTS))
PLAIN: Final = Variant("plain")
ROTATE: Final = Variant("rotate=auto", rotate="auto")
DESKEW: Final = Variant("deskew=true", deskew=True)
SKEWED_PLAIN: Final = Variant("skewed plain", skewed=True)
SKEWED_DESKEW: Final = Variant("skewed deskew", deskew=True, skewed=True)
VARIANTS: Final = (TEXT_WORDS, ALL_OUTPUTS, PLAIN, ROTATE, DESKEW, SKEWED_PLAIN, SKEWED_DESKEW)
#: (variant, baseline, the most the variant may cost relative to the baseline)
TARGETS: Final = (
    (ALL_OUTPUTS, TEXT_WORDS, 1.30),
    (ROTATE, PLAIN, 1.25),
    (DESKEW, PLAIN, 1.15),
    (SKEWED_DESKEW, SKEWED_PLAIN, 1.15),
)


def measure(target: str, image: bytes, skewed_image: bytes, repeats: int) -> dict[str, list[float]]:
    """Seconds per request of each variant, `repeats` rounds of all variants interleaved."""
    seconds: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    with grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        infer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer
        for round_ in range(repeats + 1):
            for variant in VARIANTS:
                request = build_infer_request(
                    skewed_image if variant.skewed else image,
                    model_name="ocr-model",
                    request_id=f"bench-{round_}-{variant.name}",
                    lang="eng",
                    rotate=variant.rotate,
                    deskew=variant.deskew,
                    outputs=variant.outputs,
                    tenant=f"bench-{round_}",  # never a cache hit, should a cache be on
                )
                started = time.perf_counter()
                infer(request, timeout=300)
                if round_:  # the first round warms every path (OSD model, writers' imports)
                    seconds[variant.name].append(time.perf_counter() - started)
    return seconds


def summarise(seconds: Mapping[str, list[float]]) -> dict[str, Any]:
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    targets = []
    for variant, baseline, limit in TARGETS:
        ratio = medians[variant.name] / medians[baseline.name]
        # The same round's two requests ran a few seconds apart: their ratio shows the noise.
        rounds = [a / b for a, b in zip(seconds[variant.name], seconds[baseline.name], strict=True)]
        targets.append(
            {
                "variant": variant.name,
                "baseline": baseline.name,
                "ratio": round(ratio, 3),
                "round_ratios": [round(min(rounds), 3), round(max(rounds), 3)],
                "limit": limit,
                "met": ratio <= limit,
            }
        )
    return {"median_s": {k: round(v, 4) for k, v in medians.items()}, "targets": targets}


def table(summary: Mapping[str, Any], workload: str, repeats: int) -> str:
    lines = [f"== formats and upright pages: {workload}, median of {repeats} ==="]
    for name, value in summary["median_s"].items():
        lines.append(f"  {name:<16} {value * 1000:8.1f} ms")
    for target in summary["targets"]:
        verdict = "met" if target["met"] else "NOT met"
        low, high = target["round_ratios"]
        lines.append(
            f"  {target['variant']} / {target['baseline']}: {target['ratio']:.2f}x "
            f"(rounds {low:.2f}-{high:.2f}x; target <= {target['limit']:.2f}x) {verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.formats", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke mode: one line, 1 round")
    parser.add_argument("--repeats", type=int, default=7, help="rounds of every variant")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where formats.json goes")
    args = parser.parse_args(argv)
    workload = one_line() if args.quick else full_page()
    repeats = 1 if args.quick else max(1, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as logs:
        stack = PlatformStack(Path(logs))
        stack.start()
        try:
            seconds = measure(stack.grpc_target, workload.data, skewed(workload).data, repeats)
        finally:
            stack.stop()
    summary = summarise(seconds)
    print(table(summary, workload.description, repeats))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"workload": workload.description, "repeats": repeats, **summary, "seconds": seconds}
    (args.out / "formats.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
