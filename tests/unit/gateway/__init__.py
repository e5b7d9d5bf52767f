"""Unit tests of the gateway package."""
