"""The per-request context kept in the ASGI scope's ``state``: request id, arrival time, tenant."""

import re
import time
import uuid
from typing import Final

from starlette.types import Scope

REQUEST_ID_HEADER: Final = "X-Request-ID"
# Incoming ids are echoed into headers, bodies and logs, so only short plain tokens are trusted.
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")

_REQUEST_ID_KEY: Final = "request_id"
_STARTED_AT_KEY: Final = "started_at"
_TENANT_KEY: Final = "tenant"
#: The tenant of a request no caller id was recorded for.
ANONYMOUS_TENANT: Final = "anonymous"


def resolve_request_id(incoming: str | None) -> str:
    """``incoming`` when it is a sane short token, otherwise a fresh uuid4 hex."""
    if incoming is not None and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def begin_request(scope: Scope, incoming_request_id: str | None) -> str:
    """Record the request id and arrival time in ``scope``; return the request id."""
    request_id = resolve_request_id(incoming_request_id)
    state = scope.setdefault("state", {})
    state[_REQUEST_ID_KEY] = request_id
    state[_STARTED_AT_KEY] = time.perf_counter()
    return request_id


def request_id_of(scope: Scope) -> str:
    """The id recorded by :func:`begin_request`; a fresh one for a scope that skipped it."""
    state = scope.setdefault("state", {})
    request_id = state.get(_REQUEST_ID_KEY)
    if not isinstance(request_id, str):
        request_id = state[_REQUEST_ID_KEY] = uuid.uuid4().hex
    return request_id


def elapsed_ms(scope: Scope) -> float:
    """Milliseconds since the request arrived (0 for a scope that skipped :func:`begin_request`)."""
    started_at = scope.get("state", {}).get(_STARTED_AT_KEY)
    if not isinstance(started_at, float):
        return 0.0
    return (time.perf_counter() - started_at) * 1000.0


def set_tenant(scope: Scope, tenant: str) -> None:
    """Record who is calling (an opaque id, see :mod:`gateway.access`) in ``scope``."""
    scope.setdefault("state", {})[_TENANT_KEY] = tenant


def tenant_of(scope: Scope) -> str:
    """The tenant recorded by :func:`set_tenant`; :data:`ANONYMOUS_TENANT` without one."""
    tenant = scope.get("state", {}).get(_TENANT_KEY)
    return tenant if isinstance(tenant, str) else ANONYMOUS_TENANT
