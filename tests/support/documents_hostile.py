"""Documents and probes for the document e2e tests: hostile PDFs, a slow document, a model's
request counters, a process's peak memory and a loopback canary that scripts would call.

Every document is built at test time in milliseconds and stays small on disk, however many
pages it declares or however large its page claims to be.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx
import pikepdf
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.support.images import render_page
from tests.support.model_documents import scanned_pdf, vector_pdf

# --- documents -----------------------------------------------------------------------------------


def nested_page_tree_pdf(pages: int, fanout: int = 100) -> bytes:
    """A PDF of `pages` pages in a two-level page tree (`fanout` kids per node), every leaf one
    shared page object, so no single /Kids array is long: a reader must walk the tree to count.

    Written by hand, as `shared_page_pdf` is: qpdf (pikepdf) would copy each repeated page as
    it saves. 20 000 pages take ~130 KB.
    """
    nodes = range(4, 4 + -(-pages // fanout))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Count %d /Kids [%s] >>"
        % (pages, b" ".join(b"%d 0 R" % node for node in nodes)),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    for index, _ in enumerate(nodes):
        count = min(fanout, pages - index * fanout)
        objects.append(
            b"<< /Type /Pages /Parent 2 0 R /Count %d /Kids [%s] >>" % (count, b"3 0 R " * count)
        )
    return _written_pdf(objects)


def _written_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF file of `objects` (numbered from 1; the first is the catalog) with its xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def scripted_pdf(text: str, canary_url: str) -> bytes:
    """A one-page born-digital PDF that carries JavaScript and an attachment: an /OpenAction
    script and a document-level script (/Names /JavaScript) that would fetch `canary_url`, a
    page-open action (/AA /O) submitting a form there, and an embedded executable
    (/Names /EmbeddedFiles)."""
    fetch = f"app.launchURL('{canary_url}/open-action', true);"
    with pikepdf.open(io.BytesIO(vector_pdf([[text]]))) as pdf:
        pdf.Root.OpenAction = pikepdf.Dictionary(
            S=pikepdf.Name.JavaScript, JS=pikepdf.String(fetch)
        )
        named = pdf.make_indirect(
            pikepdf.Dictionary(
                S=pikepdf.Name.JavaScript,
                JS=pikepdf.String(f"app.launchURL('{canary_url}/document-script', true);"),
            )
        )
        pdf.Root.Names = pikepdf.Dictionary(
            JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("boot"), named]))
        )
        pdf.attachments["payload.exe"] = pikepdf.AttachedFileSpec(
            pdf, b"MZ\x90\x00 not really a program", mime_type="application/octet-stream"
        )
        pdf.pages[0].obj.AA = pikepdf.Dictionary(
            O=pikepdf.Dictionary(
                S=pikepdf.Name.SubmitForm,
                F=pikepdf.Dictionary(FS=pikepdf.Name.URL, F=f"{canary_url}/page-open"),
            )
        )
        out = io.BytesIO()
        pdf.save(out)
    return out.getvalue()


def repeated_page_pdf(pages: int, size: tuple[int, int] = (2480, 3508)) -> bytes:
    """A scanned PDF of `pages` pages, each a page of paragraphs (A4 at 300 dpi by default),
    every page its own page object sharing the one image: the file stays the size of one page
    while each page costs Tesseract as much as a real one."""
    image, _ = render_page(size=size, font_px=48)
    with pikepdf.open(io.BytesIO(scanned_pdf([image], dpi=300))) as pdf:
        first = pdf.pages[0]
        for _ in range(pages - 1):
            pdf.pages.append(first)  # qpdf copies the page dictionary; the image stays shared
        out = io.BytesIO()
        pdf.save(out)
    return out.getvalue()


# --- the model's counters ------------------------------------------------------------------------


def model_samples(rest_url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample named `name` on the model's `/metrics`, by its sorted labels."""
    text = httpx.get(f"{rest_url}/metrics", timeout=5).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def requests_total(rest_url: str, status: str | None = None) -> float:
    """Requests the model server has answered (`ocr_requests_total`), of `status` or all."""
    return sum(
        value
        for labels, value in model_samples(rest_url, "ocr_requests_total").items()
        if status is None or ("status", status) in labels
    )


def stable_value(
    read: Callable[[], float],
    quiet_s: float,
    timeout_s: float,
    interval_s: float = 0.1,
) -> float:
    """`read()` once it has not changed for `quiet_s` seconds; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    value = read()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return value
    raise TimeoutError(f"still changing after {timeout_s:.0f}s (last value {value})")


# --- processes -----------------------------------------------------------------------------------


def child_running(leader: int, module: str) -> psutil.Process:
    """The process below `leader` that runs `python -m module`."""
    for process in psutil.Process(leader).children(recursive=True):
        command = process.cmdline()
        if command[-2:] == ["-m", module]:
            return process
    raise LookupError(f"no `-m {module}` process below {leader}")


# --- a canary a script would call ----------------------------------------------------------------


class Canary:
    """A loopback HTTP server that records every request it gets: a PDF script or action that
    ran anywhere on this machine and reached out would show up in `hits`."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(204)
                self.end_headers()

            do_GET = do_POST = _record  # http.server's naming

            def log_message(self, format: str, *args: object) -> None:
                pass  # nothing on stderr

        self.hits: Sequence[str] = hits
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
