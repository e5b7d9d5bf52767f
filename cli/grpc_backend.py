"""Files read straight from the model server over KServe v2 gRPC (`ocr --grpc HOST:PORT`).

No gateway in between, yet the same answers: this runs the gateway's own page pipeline in the
`ocr` process. :mod:`gateway.documents` splits a PDF or multi-page TIFF into one-page files
exactly as the gateway does, :mod:`gateway.reading` sends each page as one `ModelInfer` call
(built by `gateway.codec.build_infer_request`, answers decoded by `decode_infer_response`,
through the gateway's :class:`~gateway.client.InferenceClient`, four pages of a document at a
time) and joins the pages' outputs with :mod:`gateway.assemble`. Only the HTTP layer is left
out: no API key, no rate limit; the model's bearer token (`OCR_MODEL_TOKEN`) is sent instead.

Imported only for `--grpc`: it needs the gateway's dependencies (the `cli` extra has them).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Final

from pydantic import SecretStr

import contract
from cli.args import ReadOptions
from cli.backend import Answer, ServerError, Unreachable
from cli.formats import CliFormat
from cli.retry import parse_retry_after
from gateway.client import InferenceClient
from gateway.documents import DocumentKind, parse_pages, select_pages
from gateway.errors import GatewayError
from gateway.negotiation import model_outputs
from gateway.reading import PageCall, collect, file_answer, json_answer, open_upload, read_document
from gateway.schemas import PageFailure, Timings
from gateway.settings import GatewaySettings

#: Largest file sent in one message (an image; a document goes page by page): the model
#: server's own limit decides below it.
MAX_MESSAGE_BYTES: Final = 256 * 1024 * 1024
#: Most pages of one document, as far above the gateway's default (200) as a local tool may go.
MAX_PAGES: Final = 10_000


class GrpcBackend:
    """The model server at `target` (`host:port`), read with the gateway's page pipeline."""

    def __init__(self, target: str, *, token: str | None, timeout_s: float) -> None:
        self._target = target
        # Built from the command line alone: a gateway's OCR_GATEWAY_* environment (keys,
        # limits) has nothing to say about this process.
        self._settings = GatewaySettings.model_construct(
            model_address=target,
            model_token=SecretStr(token) if token else None,
            request_timeout_s=timeout_s,
            document_timeout_s=timeout_s,
            max_upload_bytes=MAX_MESSAGE_BYTES,
            max_pages=MAX_PAGES,
        )
        self._client = InferenceClient(self._settings)
        self._started = False
        # The gateway's modules log for a server's log collector; here each failure is one
        # line of `ocr`'s own, so their records go nowhere.
        quiet = logging.getLogger("gateway")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False

    async def check(self) -> None:
        if not self._started:
            # Here, not in __init__: a grpc.aio channel belongs to the loop that opens it.
            await self._client.start()
            self._started = True
        if not await self._client.server_ready():
            raise Unreachable(f"cannot reach the model server at {self._target} over gRPC")
        if not await self._client.model_ready():
            raise Unreachable(
                f"the model server at {self._target} has no ready model "
                f"{self._settings.model_name!r}, or refused the token (OCR_MODEL_TOKEN)"
            )

    async def read(
        self, data: bytes, filename: str, output_format: CliFormat, options: ReadOptions
    ) -> Answer:
        request_id = f"ocr-cli-{uuid.uuid4().hex[:16]}"
        try:
            return await self._read(data, output_format, options, request_id)
        except GatewayError as error:
            raise ServerError(
                error.status,
                error.code,
                error.message,
                request_id=request_id,
                retry_after_s=parse_retry_after(error.headers.get("Retry-After")),
            ) from None

    async def _read(
        self, data: bytes, output_format: CliFormat, options: ReadOptions, request_id: str
    ) -> Answer:
        """What `POST /gateway/ocr` does with an upload, less HTTP (gateway/routes/ocr.py)."""
        started = time.perf_counter()
        settings = self._settings
        selection = parse_pages(options.pages, max_pages=settings.max_pages)
        document = await open_upload(data, settings)
        try:
            numbers = select_pages(selection, document.page_count)
            answer_format = output_format.gateway
            grafted = answer_format.name == "pdf" and document.kind is DocumentKind.PDF
            outputs = model_outputs(answer_format)
            if grafted:
                outputs = (*outputs, contract.PAGE.name)  # the page's turn places its text
            call = PageCall(
                request_id=request_id,
                tenant=None,
                lang=options.lang or contract.LANG.default,
                psm=options.psm,
                rotate=options.rotate,
                deskew=options.deskew,
                dpi=options.dpi,
                outputs=outputs,
                pdf_text=options.pdf_text,
                pdf_text_only=grafted,
            )
            model_started = time.perf_counter()
            read = await collect(read_document(document, numbers, self._client, call, settings))
            if answer_format.name == "json":
                now = time.perf_counter()
                body = json_answer(
                    read,
                    page_count=document.page_count,
                    model_name=settings.model_name,
                    request_id=request_id,
                    timings=Timings(
                        total_ms=round((now - started) * 1000.0, 3),
                        model_ms=round((now - model_started) * 1000.0, 3),
                    ),
                )
                failed = tuple(p.page for p in body.pages if isinstance(p, PageFailure))
                return Answer(body.model_dump_json().encode(), failed)
            answer = await file_answer(answer_format.name, read, document, data)
            return Answer(answer.content, answer.failed_pages)
        finally:
            document.close()

    async def aclose(self) -> None:
        await self._client.close()
