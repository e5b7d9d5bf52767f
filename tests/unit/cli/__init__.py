"""Unit tests of the `ocr` command line: the parts that need no server."""
