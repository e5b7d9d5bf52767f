"""A DNS server on loopback whose A records a test changes while clients resolve through it.

gRPC's c-ares resolver takes an authority (`dns://127.0.0.1:PORT/name:port`), so a test can
make a name resolve to one model server, then to two, and watch a client find the second.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.processes import free_port


class _Records(BaseResolver):  # type: ignore[misc]  # dnslib ships no type information
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.addresses: dict[str, list[str]] = {}
        self.queries = 0

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        with self.lock:
            self.queries += 1
            addresses = list(self.addresses.get(name, []))
        if request.q.qtype == QTYPE.A:
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


class LoopbackDns:
    """A UDP DNS server on 127.0.0.1 answering A queries from `set()` records."""

    def __init__(self) -> None:
        self.port = free_port()
        self._records = _Records()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self._server = DNSServer(self._records, port=self.port, address="127.0.0.1", logger=quiet)

    def set(self, name: str, *addresses: str) -> None:
        with self._records.lock:
            self._records.addresses[name] = list(addresses)

    @property
    def queries(self) -> int:
        """How many queries were answered so far."""
        with self._records.lock:
            return self._records.queries

    def target(self, name: str, port: int) -> str:
        """The gRPC target resolving `name` through this server."""
        return f"dns://127.0.0.1:{self.port}/{name}:{port}"

    def __enter__(self) -> Self:
        self._server.start_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()
        self._server.server.server_close()
