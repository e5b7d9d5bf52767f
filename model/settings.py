"""Model server settings, read once from `OCR_MODEL_*` environment variables in `main()`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import contract

_DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
#: Shortest accepted `auth_token`; it must be made of these characters (HTTP header safe).
MIN_TOKEN_CHARS = 16
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


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
    """Engine workers; 0 means one per CPU available to the process (cgroup aware)."""

    worker_mode: Literal["process", "thread"] = "process"
    """`process` (default): each worker is a process of its own, stopped (and restarted, ~0.3 s)
    when it is still busy half a second past its page's deadline or over
    `worker_memory_bytes`, whatever it is doing: decoding, layout analysis, recognition.
    `thread`: workers are threads of the server; Tesseract stops recognition at the deadline
    but nothing stops a decoder or its layout analysis (debugging, or where processes cannot
    be forked)."""

    worker_memory_bytes: int = Field(default=0, ge=0)
    """Most resident memory one worker process may use (sampled every 50 ms); a worker over it
    is stopped and its page refused as too big (400/INVALID_ARGUMENT). 0 (default): no limit.
    Set it so that workers x this + ~200 MiB for the server stays under the container's memory
    limit (the chart does). A worker holds ~100 MiB idle (much of it shared with the others);
    a dense 9 MP page (300 dpi A4) peaks at ~185 MiB in gray, ~270 MiB in colour, a dense
    36 MP gray page at ~440 MiB (Tesseract takes ~9 bytes a pixel in gray, ~19 in colour)."""

    container_memory_bytes: int = Field(default=0, ge=0)
    """The model container's memory limit. 0 (default): the container's own, read from its
    cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), or none outside a container. While
    pages are read, the serving process and its workers are kept under it together (process
    workers only): their resident memory is summed every 50 ms and, past the limit, the busy
    worker holding the most is stopped and its page refused for now (RESOURCE_EXHAUSTED / 429,
    with a retry hint), or as too big (INVALID_ARGUMENT / 400) when it would not fit even
    beside the model as it was idle at start: the workers never take the container (every
    page under way) past its limit. The sum counts the pages they share more than once (~110
    MiB with two workers), headroom for the kernel. `worker_memory_bytes` still refuses a page
    too big for any worker; this bound catches the pod as a whole, e.g. a serving process
    swollen by a flood of large uploads from many gateways while both workers read large
    pages. It cannot shrink the serving process itself (see `max_queue_bytes`)."""

    tessdata_dir: Path = _DEBIAN_TESSDATA
    """Directory of `<lang>.traineddata` files (Debian: /usr/share/tesseract-ocr/5/tessdata)."""

    default_lang: str = "eng"
    """Language used when a request names none; loaded in every worker at start-up."""

    default_psm: int = Field(default=3, ge=0, le=13)
    """Page-segmentation mode used when a request names none (3: fully automatic)."""

    default_oem: int = Field(default=3, ge=0, le=3)
    """OCR engine mode used when a request names none (3: default, LSTM when available)."""

    default_rotate: Literal["none", "auto"] = "none"
    """Orientation handling when a request sends no `rotate`: `auto` detects each page's
    orientation with Tesseract OSD (needs tesseract-ocr-osd; ~0.13 s a 200 dpi page of text,
    ~0.19 s a 300 dpi one, more when it must look twice) and turns it upright when confident;
    `none` reads pages as they come."""

    default_dpi: int = Field(
        default=contract.DEFAULT_DPI, ge=contract.DPI.minimum, le=contract.DPI.maximum
    )
    """Resolution a PDF page is rendered at when a request sends no `dpi` (300: 10-12 pt type
    gets the 20-40 px capitals Tesseract reads best; an A4 page is 8.7 MP in gray, ~9 MiB)."""

    max_image_pixels: int = Field(default=40_000_000, ge=1)
    """Largest decoded image (width x height) accepted; larger ones are refused as invalid."""

    max_frames: int = Field(default=64, ge=1)
    """Most frames or pages a file may hold (only the first is read); more are refused. They
    are counted only up to this limit, so a file of 150 000 pages is refused in milliseconds."""

    max_jpeg_scans: int = Field(default=48, ge=1)
    """Most scans a JPEG may hold, a scan over several colour components counting once per
    component: libjpeg walks all blocks of those components once per scan (a 36 MP JPEG with
    its last scan repeated 2 500 times took 47 s to decode). libjpeg's progressive scripts
    count 6 (gray), 14 (colour) or 24 (CMYK); 48 over a 40 MP page decode in ~1 s. Checked
    before decoding."""

    max_decoded_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    """Most memory the pixels of one upload may take from decoding to the Tesseract-ready image
    (the decoded frame plus the largest copy on the way: a progressive JPEG's coefficients, an
    EXIF rotation, a mode conversion), estimated from the headers before decoding; a larger
    upload is refused as invalid. The default 256 MiB: the chart gives the model 1 GiB for 2
    workers and the idle server holds ~170 MiB, leaving ~420 MiB per request. It admits a
    40 MP grayscale (38 MiB), palette or RGB (153 MiB) page, but not what costs a multiple of
    that for the same pixels: RGBA or CMYK over ~33 MP, progressive colour JPEGs over ~27 MP
    (4:4:4; ~38 MP at 4:2:0), WebP over ~17 MP (Pillow holds 4 copies). `rotate=auto` and
    `deskew` copy the ready page within the same limit (a page and its turned or straightened
    copy, up to 1.5 times larger at 15 degrees: a 40 MP gray page fits; a colour page over
    ~33 MP with rotate=auto or ~27 MP with deskew is refused as invalid). Tesseract's memory
    comes on top (measured on dense text: ~11 bytes a pixel for gray pages, ~18 for colour
    ones) and is bounded only by `max_image_pixels`."""

    layout_s_per_megapixel: float = Field(default=0, ge=0)
    """Seconds of Tesseract layout analysis expected per megapixel (tesserocr engine). Tesseract
    can stop recognition at a deadline but not the layout analysis before it, so a page whose
    expected layout time exceeds the time its request has left is refused at once (deadline
    exceeded) instead of holding a worker past the deadline. 0 (default): measured at start-up,
    twice the time this machine takes for a dense 2 MP text page (~0.2 s/MP on a current x86
    core); set it to fix the rate instead."""

    max_queue: int = Field(default=1024, ge=0)
    """Hard cap on requests waiting for a busy engine, beyond the workers; one more is refused
    at once (gRPC RESOURCE_EXHAUSTED, HTTP 429). Not the bound that usually applies: a request
    is admitted when it can finish within its deadline and refused at once when it cannot
    (see README, Admission), and the bytes waiting are bounded by `max_queue_bytes`. The large
    default only guards against a flood of tiny requests with long deadlines."""

    max_queue_bytes: int = Field(default=24 * 1024 * 1024, ge=1024 * 1024)
    """Most bytes of uploads the serving process holds, counted from their arrival until
    answered (a gRPC message as soon as it is received, before protobuf parses it; a REST
    body from its Content-Length, before it is read); a request that would pass it is refused
    at once (RESOURCE_EXHAUSTED, 429) rather than swell the serving process, unless nothing
    else is held (then it runs alone, however large). An admitted upload costs ~6 times its
    size while it is read (the message, protobuf's parse, KServe's input, the image, the copy
    sent to a worker: ~48 MiB per 8 MiB upload), so the default 24 MiB is ~150 MiB at most,
    beside the idle serving process's ~165 MiB. Not counted: gRPC messages while they arrive
    (gRPC hands a message over only once it is whole); the gateway's in-flight upload cap
    bounds those it sends."""

    max_request_s: float = Field(default=60.0, gt=0)
    """Longest a request may take (queue and OCR) when the caller sets no shorter deadline;
    Tesseract is stopped at the limit."""

    max_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """Largest gRPC message received or sent; keep it above the gateway's upload limit plus
    4 MiB of headroom (the default 32 MiB fits the gateway's default 20 MiB)."""

    max_rest_body_bytes: int = Field(default=48 * 1024 * 1024, ge=1024)
    """Largest REST request body; a larger one gets 413 before it is read (from Content-Length)
    or as soon as a chunked body passes the limit. The default 48 MiB carries what fits in a
    32 MiB gRPC message once base64 (4/3) and the JSON around it are added."""

    auth_token: SecretStr = SecretStr("")
    """Shared bearer token: when set (at least 16 visible ASCII characters), every gRPC call but
    ServerLive, ServerReady, ModelReady, ModelMetadata (and grpc.health, reflection) needs the
    metadata `authorization: Bearer <token>`, and every REST request but `/v2/health/*`,
    `/v2/models/<name>/ready` and `/metrics` the same header; empty (default): no token needed."""

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

    @field_validator("auth_token")
    @classmethod
    def _token_is_long_enough(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and (len(token) < MIN_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(token)):
            # The message names the rule, never the value.
            raise ValueError(
                f"must be empty or at least {MIN_TOKEN_CHARS} visible ASCII characters (no spaces)"
            )
        return value

    @field_validator("tessdata_dir")
    @classmethod
    def _tessdata_exists(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"tessdata directory {value} is missing; install tesseract-ocr-eng")
        return value
