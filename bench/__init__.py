"""Benchmark harness: the engine ceiling, the platform and a seed-style baseline, side by side.

`python -m bench` (or `make bench`) measures, on one machine and the same generated images,
Tesseract alone on every core, the real gateway and model processes under 1, 8 and 64 concurrent
clients, and a re-creation of the seed's stack; it prints the ratios between them, marks the
performance targets as met or not, and writes the results as JSON and a PNG chart.
"""
