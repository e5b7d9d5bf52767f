"""glibc's allocator tuned for services that hold uploads of many MiB for a moment and run
gRPC's threads: set by each service's entry point before it starts a thread.

At glibc's defaults each thread that allocates under contention gets an arena of its own (up to
8 per core), and a freed chunk of a few MiB raises the threshold under which chunks come from
those arenas' heaps (up to 32 MiB), where a freed upload stays part of the process. With 24
clients sending 18.5 MiB uploads through the gateway, the model's pod peaked at ~1,090 MiB at the
defaults and ~770 MiB with these settings; the gateway at ~495 MiB and ~370 MiB.

A variable glibc reads itself (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`) wins: glibc has
applied it at start, and its setting here is skipped. Elsewhere than glibc, nothing is done.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping
from typing import Final

MIB: Final = 1024 * 1024

#: glibc's mallopt parameter numbers (malloc.h), the variable that sets each at start, the value.
_SETTINGS: Final = (
    (-8, "MALLOC_ARENA_MAX", 2),  # M_ARENA_MAX: two arenas whatever the threads
    (-3, "MALLOC_MMAP_THRESHOLD_", 1 * MIB),  # M_MMAP_THRESHOLD: fixed, so large chunks go back
)


def tune_allocator(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply the settings `environ` does not set itself; the ones glibc accepted, by the name
    of their variable ({} off glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return {}
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied: dict[str, int] = {}
    for parameter, variable, value in _SETTINGS:
        if variable not in environ and mallopt(parameter, value) == 1:
            applied[variable] = value
    return applied
