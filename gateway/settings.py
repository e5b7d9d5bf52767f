"""Gateway settings: read from ``OCR_GATEWAY_*`` environment variables, once, in ``main()``."""

import ipaddress
import secrets
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]

_MIB = 1024 * 1024
#: Shortest API key (and key id secret) accepted: shorter ones can be guessed.
MIN_KEY_CHARS: Final = 16
#: Without ``max_inflight_upload_bytes``, this many largest uploads may be received at once.
DEFAULT_INFLIGHT_UPLOADS: Final = 4


def _random_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


class GatewaySettings(BaseSettings):
    """Everything the gateway can be told; each field reads ``OCR_GATEWAY_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="OCR_GATEWAY_",
        frozen=True,
        extra="ignore",
        protected_namespaces=(),
        use_attribute_docstrings=True,
    )

    host: Annotated[str, Field(min_length=1)] = "0.0.0.0"
    """Interface the HTTP server binds to."""

    port: Annotated[int, Field(ge=1, le=65535)] = 8001
    """TCP port the HTTP server listens on."""

    model_address: Annotated[str, Field(min_length=1)] = "localhost:8081"
    """gRPC target (``host:port`` or any gRPC URI) of the KServe v2 model server."""

    lb_policy: Literal["pick_first", "round_robin"] = "pick_first"
    """gRPC load balancing over the addresses the target resolves to. ``round_robin`` with a
    ``dns:///`` target of a headless Service spreads calls over every model pod."""

    model_name: Annotated[str, Field(min_length=1)] = "ocr-model"
    """Name of the model to call on the model server."""

    request_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    """Overall time budget of one OCR call to the model, retries included; the gRPC deadline."""

    max_upload_bytes: Annotated[int, Field(gt=0)] = 20 * _MIB
    """Largest accepted image upload, in bytes; larger bodies are refused with 413."""

    max_pages: Annotated[int, Field(ge=1)] = 200
    """Most pages (PDF pages, TIFF frames) of one document, counted before any page is read;
    more: 413 ``too_many_pages``."""

    page_concurrency: Annotated[int, Field(ge=1, le=256)] = 4
    """Pages of one document read at once (one model call each): enough to keep 2 model pods
    of 2 workers busy, few enough that single images arriving beside a long document still
    find a worker soon."""

    document_timeout_s: Annotated[float, Field(gt=0)] = 600.0
    """Longest one document may take; each page call carries the time left (at most
    ``request_timeout_s``), and pages not read by then get a ``model_timeout`` error entry."""

    max_inflight_upload_bytes: Annotated[int, Field(ge=0)] | None = None
    """Request body bytes the gateway receives and holds at once, over all requests (from each
    ``Content-Length``, or counted as a chunked body arrives; released when the request ends).
    Past it a new upload is refused at once with 503 ``gateway_busy``. Unset: 4 times
    ``max_upload_bytes``; 0: no cap. A request is always admitted when no other holds bytes."""

    body_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    """Time a client has, from the request's arrival, to send its whole body; then 408
    ``request_timeout`` and the connection is closed (slow or stalled uploads hold memory,
    temporary files and a connection)."""

    retry_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Attempts per OCR call (first try included) while the model answers UNAVAILABLE."""

    retry_initial_backoff_s: Annotated[float, Field(gt=0)] = 0.05
    """Backoff before the first retry; doubled for each later one, with jitter."""

    retry_max_backoff_s: Annotated[float, Field(gt=0)] = 1.0
    """Upper bound of a single backoff between retries."""

    readiness_timeout_s: Annotated[float, Field(gt=0)] = 2.0
    """Deadline of each ServerReady / ModelReady RPC made by ``/readyz``."""

    log_level: LogLevel = "info"
    """Log level of the gateway and of uvicorn."""

    log_tracebacks: bool = False
    """Write tracebacks of unexpected errors to the log (debugging only: they reveal internals)."""

    api_keys: Annotated[list[SecretStr], NoDecode] = []
    """API keys accepted in the ``api_key_header`` (comma-separated, each at least 16
    characters); empty: no key needed. Health, readiness, metrics and the API docs never need
    one."""

    api_key_header: Annotated[str, Field(min_length=1)] = "X-API-Key"
    """Request header that carries the API key."""

    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 0
    """Requests per minute allowed per API key (per client address without keys); 0: no limit.
    Over the limit: 429 with Retry-After."""

    auth_failures_per_minute: Annotated[int, Field(ge=0)] = 10
    """Wrong API keys tolerated per minute from one client address; after that many, every
    request from that address gets 429 ``too_many_auth_failures`` before its key is even
    checked, until the minute's window frees up. 0: no throttling. Only with ``api_keys``."""

    key_id_secret: SecretStr = Field(default_factory=_random_secret)
    """Secret of the HMAC-SHA256 that names an API key in logs and in the model's result cache
    (its tenant); at least 16 characters. Unset: a random secret per process, so ids differ
    between replicas and restarts; set the same value everywhere to keep them stable."""

    trusted_proxies: Annotated[list[str], NoDecode] = []
    """Addresses or networks (comma-separated, e.g. ``10.0.0.0/8``; ``*``: any) of the reverse
    proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed; empty: none, the
    client address is the connection's peer."""

    model_token: SecretStr | None = None
    """Bearer token sent to the model server on every call as gRPC metadata
    ``authorization: Bearer <token>``; unset or empty: none sent."""

    cors_allow_origins: Annotated[list[str], NoDecode] = []
    """Browser origins allowed to call the API (comma-separated, e.g. ``https://app.example``);
    empty: no cross-origin access."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _lowercase_log_level(cls, value: object) -> object:
        """Accept ``INFO`` as well as ``info``: environments often shout."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_keys", "cors_allow_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """``a,b`` in the environment becomes ``["a", "b"]``."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_key_lengths(cls, value: list[SecretStr]) -> list[SecretStr]:
        """Short keys are guessed; the message never shows a key."""
        short = sum(1 for key in value if len(key.get_secret_value()) < MIN_KEY_CHARS)
        if short:
            raise ValueError(f"{short} API key(s) shorter than {MIN_KEY_CHARS} characters")
        return value

    @field_validator("key_id_secret")
    @classmethod
    def _check_secret_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(f"the secret needs at least {MIN_KEY_CHARS} characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        """Addresses and networks as uvicorn parses them; a typo would silently trust nothing."""
        for entry in value:
            if entry == "*":
                continue
            try:
                if "/" in entry:
                    ipaddress.ip_network(entry)
                else:
                    ipaddress.ip_address(entry)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address, a network such as 10.0.0.0/8, or *"
                ) from None
        return value

    @field_validator("model_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        """``OCR_GATEWAY_MODEL_TOKEN=`` (a template with no secret) means no token."""
        return None if value == "" else value

    @field_validator("model_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        """gRPC metadata values are printable ASCII; a stray newline would fail every call."""
        if value is not None:
            token = value.get_secret_value()
            if not all("!" <= char <= "~" for char in token):
                raise ValueError("the token must be printable ASCII without spaces")
        return value

    @property
    def inflight_upload_limit(self) -> int | None:
        """The cap on body bytes received at once (None: no cap)."""
        if self.max_inflight_upload_bytes is None:
            return DEFAULT_INFLIGHT_UPLOADS * self.max_upload_bytes
        return self.max_inflight_upload_bytes or None

    @model_validator(mode="after")
    def _check_backoff_bounds(self) -> "GatewaySettings":
        """A maximum backoff below the initial one would silently cap every retry."""
        if self.retry_max_backoff_s < self.retry_initial_backoff_s:
            raise ValueError("retry_max_backoff_s must be >= retry_initial_backoff_s")
        return self

    @model_validator(mode="after")
    def _check_inflight_cap(self) -> "GatewaySettings":
        """A cap below one upload would refuse every largest upload arriving beside another."""
        cap = self.max_inflight_upload_bytes
        if cap and cap < self.max_upload_bytes:
            raise ValueError("max_inflight_upload_bytes must be 0 or >= max_upload_bytes")
        return self
