"""Tests of the OCR platform: ``unit/``, ``integration/`` and ``e2e/``."""
