"""An optional cache of OCR results: the same image bytes with the same options, the same text.

Tesseract is deterministic for a given image, model and options, so a repeated upload (a retry,
a document sent by several clients) can be answered without a worker. Entries are keyed by the
SHA-256 of the encoded bytes and the options; the least recently used entry goes first.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import Final

from .types import OcrOptions, OcrResult

#: Larger uploads are hashed on a thread, so the event loop is not held for milliseconds.
INLINE_HASH_MAX_BYTES: Final = 256 * 1024

CacheKey = tuple[bytes, OcrOptions]


class ResultCache:
    """At most `max_entries` results, least recently used evicted first.

    Not thread-safe: use it from one thread (the server's event loop).
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a result cache holds at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, OcrResult] = OrderedDict()

    @staticmethod
    async def key(data: bytes, options: OcrOptions) -> CacheKey:
        """The key of `data` OCR-ed with `options`."""
        if len(data) <= INLINE_HASH_MAX_BYTES:
            digest = hashlib.sha256(data).digest()
        else:
            digest = await asyncio.to_thread(lambda: hashlib.sha256(data).digest())
        return digest, options

    def get(self, key: CacheKey) -> OcrResult | None:
        """The cached result for `key`, now the most recently used; None when absent."""
        result = self._entries.get(key)
        if result is not None:
            self._entries.move_to_end(key)
        return result

    def put(self, key: CacheKey, result: OcrResult) -> None:
        """Keep `result` for `key`, evicting the least recently used entry when full."""
        self._entries[key] = result
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
