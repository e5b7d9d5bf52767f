"""Gateway settings: read from ``OCR_GATEWAY_*`` environment variables, once, in ``main()``."""

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]

_MIB = 1024 * 1024


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
    """API keys accepted in the ``api_key_header`` (comma-separated); empty: no key needed.
    Health, readiness, metrics and the API docs never need one."""

    api_key_header: Annotated[str, Field(min_length=1)] = "X-API-Key"
    """Request header that carries the API key."""

    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 0
    """Requests per minute allowed per API key (per client address without keys); 0: no limit.
    Over the limit: 429 with Retry-After."""

    cors_allow_origins: Annotated[list[str], NoDecode] = []
    """Browser origins allowed to call the API (comma-separated, e.g. ``https://app.example``);
    empty: no cross-origin access."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _lowercase_log_level(cls, value: object) -> object:
        """Accept ``INFO`` as well as ``info``: environments often shout."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_keys", "cors_allow_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """``a,b`` in the environment becomes ``["a", "b"]``."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _check_backoff_bounds(self) -> "GatewaySettings":
        """A maximum backoff below the initial one would silently cap every retry."""
        if self.retry_max_backoff_s < self.retry_initial_backoff_s:
            raise ValueError("retry_max_backoff_s must be >= retry_initial_backoff_s")
        return self
