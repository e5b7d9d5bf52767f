"""Model server settings, read once from `OCR_MODEL_*` environment variables in `main()`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")


class ModelSettings(BaseSettings):
    """Everything the model server can be told; each field reads ``OCR_MODEL_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="OCR_MODEL_",
        frozen=True,
        extra="ignore",
        protected_namespaces=(),
        use_attribute_docstrings=True,
    )

    model_name: str = Field(default="ocr-model", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Name clients use in the v2 protocol (`/v2/models/<name>`, `ModelInferRequest.model_name`)."""

    http_port: int = Field(default=8080, ge=1, le=65535)
    """REST v2 port; also serves `/metrics`."""

    grpc_host: str = Field(default="[::]", min_length=1)
    """Address the gRPC server binds to: every interface by default; e.g. `127.0.0.2` to run
    several model servers on one port of different loopback addresses."""

    grpc_port: int = Field(default=8081, ge=1, le=65535)
    """gRPC v2 port, with server reflection and grpc.health.v1."""

    engine: Literal["tesserocr", "pytesseract"] = "tesserocr"
    """OCR backend: tesserocr (in-process, default) or pytesseract (Tesseract CLI per image)."""

    workers: int = Field(default=0, ge=0, le=256)
    """Engine worker threads; 0 means one per CPU available to the process (cgroup aware)."""

    tessdata_dir: Path = _DEBIAN_TESSDATA
    """Directory of `<lang>.traineddata` files (Debian: /usr/share/tesseract-ocr/5/tessdata)."""

    default_lang: str = "eng"
    """Language used when a request names none; loaded in every worker at start-up."""

    default_psm: int = Field(default=3, ge=0, le=13)
    """Page-segmentation mode used when a request names none (3: fully automatic)."""

    default_oem: int = Field(default=3, ge=0, le=3)
    """OCR engine mode used when a request names none (3: default, LSTM when available)."""

    max_image_pixels: int = Field(default=40_000_000, ge=1)
    """Largest decoded image (width x height) accepted; larger ones are refused as invalid."""

    max_frames: int = Field(default=64, ge=1)
    """Most frames or pages a file may hold (only the first is read); more are refused."""

    max_queue: int = Field(default=8, ge=0)
    """Requests that may wait for a busy engine; one more is refused at once (gRPC
    RESOURCE_EXHAUSTED, HTTP 429) instead of piling up."""

    max_request_s: float = Field(default=60.0, gt=0)
    """Longest a request may take (queue and OCR) when the caller sets no shorter deadline;
    Tesseract is stopped at the limit."""

    max_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """Largest gRPC message received or sent; keep it above the gateway's upload limit plus
    4 MiB of headroom (the default 32 MiB fits the gateway's default 20 MiB)."""

    result_cache_entries: int = Field(default=0, ge=0)
    """Results kept for repeated uploads (same bytes, same options), least recently used
    evicted first; 0 turns the cache off. A one-line result is a few KiB, a dense page ~100 KiB."""

    max_connection_age_s: float = Field(default=60.0, ge=0)
    """Seconds after which the gRPC server asks a client to open a new connection (GOAWAY);
    0 keeps connections forever. Clients re-resolve DNS only when a connection ends, so this is
    how gateways balancing with `round_robin` over a headless Service find pods added since
    they connected. Calls in flight get `max_request_s` plus 5 s to finish on the old one."""

    grace_period_s: int = Field(default=30, ge=0)
    """Seconds in-flight requests get to finish on shutdown."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Level of the JSON log lines on stderr."""

    log_tracebacks: bool = False
    """Write tracebacks of unexpected errors to the log (debugging only: they reveal internals)."""

    @field_validator("tessdata_dir")
    @classmethod
    def _tessdata_exists(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"tessdata directory {value} is missing; install tesseract-ocr-eng")
        return value
