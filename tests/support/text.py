"""Text comparison for OCR results."""

from __future__ import annotations


def normalize(text: str) -> str:
    """Collapse whitespace so layout differences do not count as errors."""
    return " ".join(text.split())


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance / reference length, on normalized text."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)
