"""The document splitter: the `pages` field, format detection, PDF pages copied without
rasterising, TIFF frames with their pixels unchanged, and the bounds that come before any work.

Every document is built here, at test time, with pikepdf and Pillow.
"""

from __future__ import annotations

import io
import itertools
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name
from PIL import Image, ImageChops, TiffImagePlugin

from gateway.documents import (
    ALL_PAGES,
    MAX_PAGE_RANGES,
    MAX_PAGES_FIELD_CHARS,
    Document,
    DocumentKind,
    open_document,
    parse_pages,
    select_pages,
    sniff_document_kind,
)
from gateway.errors import (
    EmptyFileError,
    EncryptedDocumentError,
    GatewayError,
    InvalidRequestError,
    TooManyPagesError,
    UnreadableDocumentError,
    UnreadablePageError,
    UnsupportedMediaTypeError,
)
from gateway.settings import GatewaySettings
from tests.support.images import encode, render_line

pytestmark = pytest.mark.unit

MAX_PAGES = GatewaySettings().max_pages


def _assert_gateway_error(error: GatewayError, status: int, code: str) -> None:
    assert (error.status, error.code) == (status, code)


# --- the `pages` field ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ALL_PAGES),
        ("", ALL_PAGES),
        ("   ", ALL_PAGES),
        ("1", (1,)),
        ("1-3,7", (1, 2, 3, 7)),
        (" 7 , 1 - 3 ", (1, 2, 3, 7)),
        ("3,1,2-4,2", (1, 2, 3, 4)),
        ("5-5", (5,)),
        ("\t2-3,\t9", (2, 3, 9)),
        (f"1-{MAX_PAGES}", tuple(range(1, MAX_PAGES + 1))),
    ],
)
def test_pages_are_parsed_normalised_and_deduplicated(value: str | None, expected: object) -> None:
    assert parse_pages(value, max_pages=MAX_PAGES) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "pages are numbered from 1"),
        ("0-3", "pages are numbered from 1"),
        ("3-1", "the range 3-1 is not ascending: write 1-3"),
        ("1-", "'1-' is not a page or a range"),
        ("-1", "'-1' is not a page or a range"),
        ("a", "'a' is not a page or a range"),
        ("1.5", "'1.5' is not a page or a range"),
        ("1-2-3", "'1-2-3' is not a page or a range"),
        ("1;2", "'1;2' is not a page or a range"),
        ("1,,2", "'an empty item' is not a page or a range"),
        ("1,", "'an empty item' is not a page or a range"),
        ("\u0661", "is not a page or a range"),  # ARABIC-INDIC DIGIT ONE: int() would take it
        ("1 2", "'1 2' is not a page or a range"),
        (f"{MAX_PAGES + 1}", f"page {MAX_PAGES + 1} is beyond the limit of {MAX_PAGES} pages"),
        (f"1-{10**200}", "is beyond the limit"),
        ("1" * (MAX_PAGES_FIELD_CHARS + 1), f"at most {MAX_PAGES_FIELD_CHARS} characters"),
        (",".join(["1"] * (MAX_PAGE_RANGES + 1)), f"at most {MAX_PAGE_RANGES} pages or ranges"),
    ],
)
def test_a_malformed_pages_value_names_the_field_and_the_syntax(value: str, reason: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_pages(value, max_pages=MAX_PAGES)
    _assert_gateway_error(caught.value, 422, "validation_error")
    message = caught.value.message
    assert message.startswith("pages: ")
    assert reason in message
    if "not a page or a range" in reason or "at most" in reason:
        assert "such as 1-3,7" in message


def test_the_selection_is_checked_against_the_page_count() -> None:
    assert select_pages(ALL_PAGES, 3) == (1, 2, 3)
    assert select_pages((1, 3), 3) == (1, 3)
    with pytest.raises(InvalidRequestError) as caught:
        select_pages((2, 9, 12), 5)
    assert caught.value.message == "pages: the document has 5 pages; there is no page 9"
    with pytest.raises(InvalidRequestError) as caught:
        select_pages((2,), 1)
    assert caught.value.message == "pages: the document has 1 page; there is no page 2"


# --- detection and single images -----------------------------------------------------------------


@pytest.mark.parametrize("pillow_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_a_single_image_passes_through_unchanged(pillow_format: str) -> None:
    data = encode(render_line("one page"), pillow_format)
    assert sniff_document_kind(data) is DocumentKind.IMAGE
    with open_document(data, max_pages=MAX_PAGES) as document:
        assert (document.kind, document.page_count) == (DocumentKind.IMAGE, 1)
        page = document.page(1)
    assert page.data is data
    assert page.number == 1
    assert page.media_type == document.media_type == Image.MIME[pillow_format]


def test_detection_reads_bytes_only() -> None:
    assert sniff_document_kind(_pdf_with_pages(1)) is DocumentKind.PDF
    assert sniff_document_kind(b"junk\n" + _pdf_with_pages(1)) is DocumentKind.PDF
    assert sniff_document_kind(encode(Image.new("L", (2, 2)), "TIFF")) is DocumentKind.TIFF
    assert sniff_document_kind(b"<svg/>") is None


def test_empty_and_unknown_uploads_are_refused() -> None:
    with pytest.raises(EmptyFileError):
        open_document(b"", max_pages=MAX_PAGES)
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        open_document(b"GIF88a not quite", max_pages=MAX_PAGES)
    _assert_gateway_error(caught.value, 415, "unsupported_media_type")
    assert "PDF, PNG, JPEG, TIFF" in caught.value.message


# --- PDF -----------------------------------------------------------------------------------------


def _content(pdf: pikepdf.Pdf, text: str, *, image: str | None = None) -> pikepdf.Object:
    """A Flate-compressed content stream writing `text` (and drawing XObject `image`)."""
    drawing = f"q 60 0 0 60 100 200 cm /{image} Do Q\n" if image else ""
    operators = f"{drawing}BT /F1 24 Tf 40 100 Td ({text}) Tj ET\n".encode()
    stream = pikepdf.Stream(pdf, b"")
    stream.write(zlib.compress(operators), filter=Name.FlateDecode)
    return pdf.make_indirect(stream)


def _gray_image(pdf: pikepdf.Pdf, seed: int, size: int = 32) -> pikepdf.Object:
    """An image XObject of distinct gray pixels, Flate-compressed."""
    pixels = bytes((seed * 7 + i) % 256 for i in range(size * size))
    stream = pikepdf.Stream(pdf, b"")
    stream.write(zlib.compress(pixels), filter=Name.FlateDecode)
    stream.Type, stream.Subtype = Name.XObject, Name.Image
    stream.Width = stream.Height = size
    stream.ColorSpace, stream.BitsPerComponent = Name.DeviceGray, 8
    return pdf.make_indirect(stream)


def _helvetica(pdf: pikepdf.Pdf) -> pikepdf.Object:
    return pdf.make_indirect(
        Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    )


def _save(pdf: pikepdf.Pdf, **options: Any) -> bytes:
    out = io.BytesIO()
    pdf.save(out, **options)
    return out.getvalue()


def _set_kids(pdf: pikepdf.Pdf, node: pikepdf.Object, kids: Sequence[pikepdf.Object]) -> None:
    """Hang `kids` under the page tree node `node` (Count is only a hint to readers)."""
    for kid in kids:
        if kid.is_indirect:
            kid.Parent = node
    node.Kids = Array(kids)
    node.Count = len(kids)


def _pdf_with_pages(count: int, *, images: bool = False, links: bool = False) -> bytes:
    """`count` pages saying "Page n", each with its own image XObject when `images`; with
    `links`, each page links to the next (a reference to another page object)."""
    pdf = pikepdf.new()
    font = _helvetica(pdf)
    pages = []
    for number in range(1, count + 1):
        resources = Dictionary(Font=Dictionary(F1=font))
        if images:
            resources.XObject = Dictionary(Im0=_gray_image(pdf, number))
        pages.append(
            pdf.make_indirect(
                Dictionary(
                    Type=Name.Page,
                    MediaBox=Array([0, 0, 612, 792]),
                    Resources=resources,
                    Contents=_content(pdf, f"Page {number}", image="Im0" if images else None),
                )
            )
        )
    if links:
        for page, following in itertools.pairwise(pages):
            link = Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=Array([0, 0, 50, 50]))
            link.Dest = Array([following, Name.Fit])
            page.Annots = Array([pdf.make_indirect(link)])
    _set_kids(pdf, pdf.Root.Pages, pages)
    return _save(pdf)


def _inheriting_pdf() -> bytes:
    """Three pages whose attributes come partly from the page tree.

    Page 1 inherits /Resources (a direct dictionary holding indirect font and image), /MediaBox,
    /CropBox and /Rotate from an intermediate node; page 2 sits under the same node but has its
    own /Rotate and /TrimBox; page 3 hangs from the root with everything of its own and
    inherits only the root's /Rotate.
    """
    pdf = pikepdf.new()
    font, logo = _helvetica(pdf), _gray_image(pdf, 99)
    root = pdf.Root.Pages
    root.Rotate = 270
    middle = pdf.make_indirect(
        Dictionary(
            Type=Name.Pages,
            Resources=Dictionary(Font=Dictionary(F1=font), XObject=Dictionary(Logo=logo)),
            MediaBox=Array([0, 0, 420, 595]),
            CropBox=Array([10, 10, 410, 585]),
            Rotate=90,
        )
    )
    first = pdf.make_indirect(
        Dictionary(Type=Name.Page, Contents=_content(pdf, "Page 1", image="Logo"))
    )
    second = pdf.make_indirect(
        Dictionary(
            Type=Name.Page,
            Contents=_content(pdf, "Page 2"),
            Rotate=180,
            TrimBox=Array([20, 20, 400, 575]),
        )
    )
    third = pdf.make_indirect(
        Dictionary(
            Type=Name.Page,
            Contents=_content(pdf, "Page 3"),
            MediaBox=Array([0, 0, 200, 300]),
            Resources=Dictionary(Font=Dictionary(F1=font)),
        )
    )
    _set_kids(pdf, middle, [first, second])
    _set_kids(pdf, root, [middle, third])
    root.Count = 3
    return _save(pdf, min_version="1.6")


def _expected_attributes(page: pikepdf.Page) -> dict[str, object]:
    """What a page shows, as read through the page tree by pikepdf (inheritance applied)."""
    obj = page.obj
    return {
        "mediabox": list(page.mediabox),
        "cropbox": list(page.cropbox),
        "trimbox": list(page.trimbox),
        "rotate": int(obj.get("/Rotate", 0)),
        "fonts": sorted(str(f.BaseFont) for f in obj.Resources.Font.values()),
        "images": {
            str(name): x.read_raw_bytes() for name, x in obj.Resources.get("/XObject", {}).items()
        },
        "content": (obj.Contents.read_raw_bytes(), obj.Contents.get("/Filter")),
    }


def _split_page(document: Document, number: int) -> pikepdf.Pdf:
    page = document.page(number)
    assert page.media_type == "application/pdf"
    assert page.number == number
    return pikepdf.open(io.BytesIO(page.data))


def test_a_split_pdf_page_keeps_boxes_rotation_inherited_resources_and_content_bytes() -> None:
    data = _inheriting_pdf()
    with pikepdf.open(io.BytesIO(data), inherit_page_attributes=False) as raw:
        first = raw.Root.Pages.Kids[0].Kids[0]
        assert not {"/Resources", "/MediaBox", "/CropBox", "/Rotate"} & set(first.keys())
    with pikepdf.open(io.BytesIO(data)) as original, open_document(data, max_pages=9) as document:
        assert (document.kind, document.page_count) == (DocumentKind.PDF, 3)
        for number, page in enumerate(original.pages, start=1):
            with _split_page(document, number) as single:
                assert len(single.pages) == 1
                assert single.pdf_version == "1.6"
                copy = single.pages[0]
                assert "/Parent" in copy.obj  # the new document's own page tree
                for key in ("/Resources", "/MediaBox", "/Rotate"):
                    assert key in copy.obj, f"page {number}: {key} must be on the page itself"
                assert _expected_attributes(copy) == _expected_attributes(page)
    shown = {1: (90, [10, 10, 410, 585]), 2: (180, [10, 10, 410, 585]), 3: (270, [0, 0, 200, 300])}
    with open_document(data, max_pages=9) as document:
        for number, (rotate, cropbox) in shown.items():
            with _split_page(document, number) as single:
                assert int(single.pages[0].obj.Rotate) == rotate
                assert [int(v) for v in single.pages[0].cropbox] == cropbox


def test_split_pages_read_as_their_page_in_poppler(tmp_path: Any) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext is not None, "pdftotext is missing: run `make system-deps` (poppler-utils)"
    with open_document(_inheriting_pdf(), max_pages=9) as document:
        for number in (1, 2, 3):
            done = subprocess.run(
                [pdftotext, "-", "-"], input=document.page(number).data, capture_output=True
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.decode().strip() == f"Page {number}"


def test_a_split_page_carries_only_its_own_objects() -> None:
    data = _pdf_with_pages(100, images=True, links=True)
    with open_document(data, max_pages=MAX_PAGES) as document:
        assert document.page_count == 100
        page = document.page(50)
        with pikepdf.open(io.BytesIO(page.data)) as single:
            assert len(single.pages) == 1
            images = [
                o
                for o in single.objects
                if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == Name.Image
            ]
            assert len(images) == 1
            with pikepdf.open(io.BytesIO(data)) as original:
                wanted = original.pages[49].obj.Resources.XObject.Im0.read_raw_bytes()
            assert images[0].read_raw_bytes() == wanted
            # The link to page 51 stays, its target does not come along.
            (link,) = single.pages[0].obj.Annots
            assert link.Dest[0] is None
            # Catalog, page tree, page, content, font, image, link (and its dest array).
            assert len(single.objects) <= 10
    assert len(page.data) < 3 * len(data) / 100


def test_splitting_is_deterministic() -> None:
    with open_document(_pdf_with_pages(3, images=True), max_pages=9) as document:
        assert document.page(2).data == document.page(2).data
        assert document.page(1).data != document.page(2).data


def test_pages_come_in_the_page_tree_order() -> None:
    """A tree of several levels, walked depth first in /Kids order."""
    pdf = pikepdf.new()
    font = _helvetica(pdf)

    def page(number: int) -> pikepdf.Object:
        return pdf.make_indirect(
            Dictionary(
                Type=Name.Page,
                MediaBox=Array([0, 0, 100, 100]),
                Resources=Dictionary(Font=Dictionary(F1=font)),
                Contents=_content(pdf, f"Page {number}"),
            )
        )

    def node(kids: list[pikepdf.Object]) -> pikepdf.Object:
        made = pdf.make_indirect(Dictionary(Type=Name.Pages))
        _set_kids(pdf, made, kids)
        return made

    tree = [node([page(1), node([page(2), page(3)])]), page(4), node([node([page(5)])])]
    _set_kids(pdf, pdf.Root.Pages, tree)
    with open_document(_save(pdf), max_pages=9) as document:
        assert document.page_count == 5
        for number in range(1, 6):
            with _split_page(document, number) as single:
                content = single.pages[0].obj.Contents.read_bytes()
                assert f"(Page {number})".encode() in content


def test_a_direct_page_among_the_kids_is_still_a_page() -> None:
    pdf = pikepdf.new()
    page = Dictionary(
        Type=Name.Page, MediaBox=Array([0, 0, 99, 99]), Contents=_content(pdf, "Page 1")
    )
    _set_kids(pdf, pdf.Root.Pages, [page])
    with open_document(_save(pdf), max_pages=9) as document, _split_page(document, 1) as single:
        assert list(single.pages[0].mediabox) == [0, 0, 99, 99]


def test_junk_before_the_pdf_header_is_accepted() -> None:
    data = b"From a mail archive\r\n" + _pdf_with_pages(2)
    with open_document(data, max_pages=9) as document:
        assert document.page_count == 2
        with _split_page(document, 2) as single:
            assert b"(Page 2)" in single.pages[0].obj.Contents.read_bytes()


def test_a_pdf_with_too_many_pages_is_refused_before_any_page_is_split() -> None:
    with pytest.raises(TooManyPagesError) as caught:
        open_document(_pdf_with_pages(6), max_pages=5)
    _assert_gateway_error(caught.value, 413, "too_many_pages")
    assert "more than 5 pages" in caught.value.message
    with open_document(_pdf_with_pages(5), max_pages=5) as document:
        assert document.page_count == 5


def test_a_page_tree_of_many_pages_is_refused_without_walking_it() -> None:
    """20 000 pages in one /Kids array: refused from the array's length."""
    pdf = pikepdf.new()
    content = _content(pdf, "x")
    leaf = Dictionary(Type=Name.Page, MediaBox=Array([0, 0, 10, 10]), Contents=content)
    _set_kids(pdf, pdf.Root.Pages, [pdf.make_indirect(leaf) for _ in range(20_000)])
    data = _save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    with pytest.raises(TooManyPagesError):
        open_document(data, max_pages=MAX_PAGES)


def test_a_password_protected_pdf_is_refused_as_encrypted() -> None:
    with pikepdf.open(io.BytesIO(_pdf_with_pages(2))) as pdf:
        locked = _save(pdf, encryption=pikepdf.Encryption(user="secret", owner="owner"))
        owner_only = _save(pdf, encryption=pikepdf.Encryption(user="", owner="owner"))
    with pytest.raises(EncryptedDocumentError) as caught:
        open_document(locked, max_pages=9)
    _assert_gateway_error(caught.value, 422, "encrypted_document")
    assert "password-protected" in caught.value.message
    # Restrictions without a user password: readable by anyone, split pages are unencrypted.
    with open_document(owner_only, max_pages=9) as document, _split_page(document, 2) as single:
        assert not single.is_encrypted
        assert b"(Page 2)" in single.pages[0].obj.Contents.read_bytes()


def _raw_pdf(*objects: bytes) -> bytes:
    """A PDF written by hand (qpdf refuses to write broken page trees): object 1 is the
    catalog; the cross-reference table is exact."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _loop_pdf() -> bytes:
    """An intermediate node of the page tree among its own kids."""
    return _raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Pages /Kids [4 0 R 3 0 R] /Parent 2 0 R /Count 1 >>",
        b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 9 9] >>",
    )


def _deep_pdf() -> bytes:
    pdf = pikepdf.new()
    below = pdf.make_indirect(Dictionary(Type=Name.Page, MediaBox=Array([0, 0, 9, 9])))
    for _ in range(70):
        node = pdf.make_indirect(Dictionary(Type=Name.Pages))
        _set_kids(pdf, node, [below])
        below = node
    _set_kids(pdf, pdf.Root.Pages, [below])
    return _save(pdf)


def _no_pages_pdf() -> bytes:
    """A page tree whose only kid is not a dictionary."""
    return _raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [null] /Count 1 >>",
    )


def _object_stream_bomb() -> bytes:
    """A 40 MB string in a page dictionary, in an object stream that deflates to ~40 KB."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].obj.Junk = pikepdf.String(b"\0" * 40_000_000)
    return _save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: b"%PDF-1.7\n" + b"junk " * 200, "damaged or truncated"),
        (lambda: b"%PDF-", "damaged or truncated"),
        (_no_pages_pdf, "no pages"),
        (_loop_pdf, "loop"),
        (_deep_pdf, "more than 64 levels deep"),
        (_object_stream_bomb, "damaged or truncated"),
    ],
    ids=["junk", "header-only", "no-pages", "loop", "deep", "object-stream-bomb"],
)
def test_a_broken_pdf_is_refused_as_unreadable(build: Callable[[], bytes], reason: str) -> None:
    data = build()
    started = time.perf_counter()
    with pytest.raises(UnreadableDocumentError) as caught:
        open_document(data, max_pages=MAX_PAGES)
    assert time.perf_counter() - started < 3  # the bound; measured: milliseconds
    _assert_gateway_error(caught.value, 422, "unreadable_document")
    assert caught.value.message.startswith("The document cannot be read: ")
    assert reason in caught.value.message
    assert "BytesIO" not in caught.value.message  # qpdf's detail goes to the log only


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_a_truncated_pdf_is_recovered_or_refused_never_crashes(keep: float) -> None:
    data = _pdf_with_pages(5, images=True)
    truncated = data[: int(len(data) * keep)]
    try:
        document = open_document(truncated, max_pages=MAX_PAGES)
    except UnreadableDocumentError:
        return
    failed: list[UnreadablePageError] = []
    with document:
        for number in range(1, document.page_count + 1):
            try:
                with _split_page(document, number) as single:
                    assert len(single.pages) == 1
            except UnreadablePageError as error:
                failed.append(error)
    for refused in failed:
        _assert_gateway_error(refused, 422, "unreadable_page")
        assert refused.message.startswith(f"Page {refused.page} cannot be read: ")


def test_a_document_is_usable_from_several_threads() -> None:
    with open_document(_pdf_with_pages(20, images=True), max_pages=MAX_PAGES) as document:
        alone = [document.page(n).data for n in range(1, 21)]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda n: document.page(n).data, range(1, 21)))
    assert together == alone


def test_page_numbers_outside_the_document_and_closed_documents_are_errors() -> None:
    document = open_document(_pdf_with_pages(2), max_pages=9)
    for number in (0, 3):
        with pytest.raises(IndexError):
            document.page(number)
    document.close()
    document.close()
    with pytest.raises(RuntimeError, match="closed"):
        document.page(1)


# --- TIFF ----------------------------------------------------------------------------------------


def _tiff(frames: list[Image.Image], **params: Any) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], **params)
    return out.getvalue()


def _frame_count(image: Image.Image) -> int:
    assert isinstance(image, TiffImagePlugin.TiffImageFile)
    return image.n_frames


def _frames(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as image:
        found = []
        for index in range(_frame_count(image)):
            image.seek(index)
            found.append(image.copy())
        return found


def _assert_same_pixels(split: Image.Image, original: Image.Image) -> None:
    assert (split.mode, split.size) == (original.mode, original.size)
    assert np.array_equal(np.asarray(split), np.asarray(original))
    if original.mode in ("L", "RGB"):
        assert ImageChops.difference(split, original).getbbox() is None
    if original.mode == "P":
        assert split.getpalette() == original.getpalette()


def _mixed_frames() -> list[Image.Image]:
    """Frames of the modes scans and exports come in, each of its own size and content."""
    text = render_line("Frame of a multi-page TIFF", size=(420, 60), font_px=28)
    return [
        text.convert("1"),
        text,
        Image.merge("RGB", (text, text.transpose(Image.Transpose.FLIP_TOP_BOTTOM), text)),
        text.convert("P"),
        text.convert("I").point(lambda v: v * 200).convert("I;16"),
        text.convert("CMYK"),
        text.convert("RGBA").resize((210, 30)),
    ]


@pytest.mark.parametrize(
    "compression", ["raw", "tiff_lzw", "tiff_adobe_deflate", "packbits", "jpeg"]
)
def test_tiff_frames_keep_their_pixels_mode_and_resolution(compression: str) -> None:
    frames = _mixed_frames()
    if compression == "jpeg":  # lossy in the upload; the split keeps the decoded pixels
        frames = [f for f in frames if f.mode in ("L", "RGB", "CMYK")]
    data = _tiff(frames, compression=compression, dpi=(200, 200))
    originals = _frames(data)
    with open_document(data, max_pages=MAX_PAGES) as document:
        assert (document.kind, document.page_count) == (DocumentKind.TIFF, len(frames))
        for number, original in enumerate(originals, start=1):
            page = document.page(number)
            assert page.media_type == "image/tiff"
            with Image.open(io.BytesIO(page.data)) as split:
                assert _frame_count(split) == 1
                assert split.info["dpi"] == pytest.approx((200, 200))
                kept = compression if compression != "jpeg" else "tiff_adobe_deflate"
                assert split.info["compression"] == kept
                _assert_same_pixels(split, original)


def test_bilevel_group4_frames_stay_group4_and_come_out_upright() -> None:
    text = render_line("Fax", size=(300, 60)).convert("1")
    data = _tiff([text, text.rotate(180)], compression="group4", tiffinfo={274: 6})
    with open_document(data, max_pages=9) as document:
        for number, original in enumerate(_frames(data), start=1):
            assert original.size == (60, 300)  # Pillow turns a frame upright as it decodes it
            with Image.open(io.BytesIO(document.page(number).data)) as split:
                assert split.info["compression"] == "group4"
                _assert_same_pixels(split, original)  # turned once, not twice


def test_a_one_frame_tiff_passes_through_unchanged() -> None:
    data = encode(render_line("single"), "TIFF", compression="tiff_lzw")
    with open_document(data, max_pages=9) as document:
        assert (document.kind, document.page_count) == (DocumentKind.TIFF, 1)
        assert document.page(1).data is data


def _tiny_pages_tiff(pages: int) -> bytes:
    """A classic little-endian TIFF of `pages` 1x1 gray pages sharing one strip, built directly:
    Pillow would take minutes to write 150 000 pages."""
    strip = 8
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
    tags += [(273, 4, 1, strip), (278, 3, 1, 1), (279, 4, 1, 1)]
    entries = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags)
    first = 10
    size = len(entries) + 4
    header = b"II*\x00" + struct.pack("<I", first) + b"\xff\x00"  # the strip, then padding
    return header + b"".join(
        entries + struct.pack("<I", first + (index + 1) * size if index < pages - 1 else 0)
        for index in range(pages)
    )


def test_tiny_page_tiffs_are_real_tiffs() -> None:
    data = _tiny_pages_tiff(3)
    with Image.open(io.BytesIO(data)) as image:
        assert (_frame_count(image), image.size, image.getpixel((0, 0))) == (
            3,
            (1, 1),
            255,
        )
    with open_document(data, max_pages=9) as document:
        assert document.page_count == 3
        with Image.open(io.BytesIO(document.page(3).data)) as split:
            assert (_frame_count(split), split.getpixel((0, 0))) == (1, 255)


def test_a_tiff_of_150_000_pages_is_refused_after_counting_only_past_the_limit() -> None:
    data = _tiny_pages_tiff(150_000)
    started = time.perf_counter()
    with pytest.raises(TooManyPagesError) as caught:
        open_document(data, max_pages=MAX_PAGES)
    elapsed = time.perf_counter() - started
    _assert_gateway_error(caught.value, 413, "too_many_pages")
    assert f"more than {MAX_PAGES} pages" in caught.value.message
    assert elapsed < 1.0, f"{elapsed:.3f} s: the count went past the limit"  # measured: ~2 ms
    with open_document(_tiny_pages_tiff(MAX_PAGES), max_pages=MAX_PAGES) as document:
        assert document.page_count == MAX_PAGES


def test_a_frame_too_large_to_decode_is_one_unreadable_page() -> None:
    data = _tiff([Image.new("L", (10, 10), 255), Image.new("L", (100, 100), 0)])
    with open_document(data, max_pages=9, max_frame_pixels=1000) as document:
        assert document.page(1).data
        with pytest.raises(UnreadablePageError) as caught:
            document.page(2)
    _assert_gateway_error(caught.value, 422, "unreadable_page")
    assert caught.value.message == (
        "Page 2 cannot be read: the frame is 100x100 pixels; the limit is 1000 pixels."
    )


def _patch_first_ifd_tag(data: bytes, tag: int, count: int) -> bytes:
    """`data` with the count of `tag` in its first IFD replaced (the walk reads counts only)."""
    (ifd,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, ifd)
    patched = bytearray(data)
    for index in range(entries):
        at = ifd + 2 + 12 * index
        if struct.unpack_from("<H", data, at)[0] == tag:
            struct.pack_into("<I", patched, at + 4, count)
            return bytes(patched)
    raise AssertionError(f"no tag {tag}")


@pytest.mark.parametrize(
    ("tag", "count", "reason"),
    [(273, 70_000, "70000 strips or tiles"), (258, 300_000, "a tag of 300000 values")],
)
def test_tiff_structures_pillow_would_walk_in_python_are_refused(
    tag: int, count: int, reason: str
) -> None:
    data = _patch_first_ifd_tag(_tiny_pages_tiff(2), tag, count)
    with pytest.raises(UnreadableDocumentError, match=reason):
        open_document(data, max_pages=9)


def test_a_decompression_bomb_first_frame_is_refused_before_decoding() -> None:
    data = bytearray(_tiny_pages_tiff(2))
    for index in (0, 1):  # the first page's width and height: 60 000 x 60 000
        struct.pack_into("<H", data, 10 + 2 + 12 * index + 8, 60_000)
    with pytest.raises(UnreadableDocumentError, match="too many pixels"):
        open_document(bytes(data), max_pages=9)


@pytest.mark.parametrize("keep", [6, 12, 40])
def test_a_truncated_tiff_counts_the_pages_it_has(keep: int) -> None:
    whole = _tiny_pages_tiff(3)
    data = whole[: len(whole) - keep]  # the last IFD cut short
    with open_document(data, max_pages=9) as document:
        assert document.page_count == 2


def test_a_tiff_without_a_readable_page_is_unreadable() -> None:
    with pytest.raises(UnreadableDocumentError, match="no readable page"):
        open_document(b"II*\x00" + struct.pack("<I", 10_000), max_pages=9)


# --- the setting ---------------------------------------------------------------------------------


def test_max_pages_defaults_to_200_and_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().max_pages == 200
    monkeypatch.setenv("OCR_GATEWAY_MAX_PAGES", "12")
    assert GatewaySettings().max_pages == 12
    monkeypatch.setenv("OCR_GATEWAY_MAX_PAGES", "0")
    with pytest.raises(ValueError, match="max_pages"):
        GatewaySettings()
