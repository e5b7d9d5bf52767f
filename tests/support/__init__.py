"""Helpers shared by the tests: image rendering, text metrics and process management."""
