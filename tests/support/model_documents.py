"""PDFs and multi-page files built at test time for the model's page reading.

Scanned pages go in as Pillow renders them (Pillow writes a PDF page per image, sized from its
resolution); vector pages are drawn with PDF's standard Helvetica (PDFium carries the base-14
fonts), and hostile documents are written byte by byte, so each costs milliseconds to build.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

import pikepdf
from PIL import Image

from tests.support.images import render_lines


def scanned_pdf(pages: Sequence[Image.Image], dpi: float = 300) -> bytes:
    """A PDF of `pages`, each image full-page at `dpi` (its pixels become its size in points)."""
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=list(pages[1:]), resolution=dpi)
    return out.getvalue()


def line_pages(*texts: str, font_px: int = 48) -> list[Image.Image]:
    """One page image per text, each a rendered line (grayscale)."""
    return [render_lines([text], width=1400, font_px=font_px) for text in texts]


def _escaped(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def vector_pdf(
    lines: Sequence[Sequence[str]],
    size_pt: tuple[float, float] = (595, 842),
    font_pt: float = 20,
    rotate: int = 0,
) -> bytes:
    """A born-digital PDF: one page per entry of `lines`, its lines in Helvetica (no image)."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type1,
            BaseFont=pikepdf.Name.Helvetica,
            Encoding=pikepdf.Name.WinAnsiEncoding,
        )
    )
    for page_lines in lines:
        page = pdf.add_blank_page(page_size=size_pt)
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        operators = [b"BT", b"/F1 %g Tf" % font_pt, b"%g TL" % (font_pt * 1.6)]
        operators.append(b"72 %g Td" % (size_pt[1] - 72 - font_pt))
        for line in page_lines:
            operators.append(b"(" + _escaped(line) + b") Tj T*")
        operators.append(b"ET")
        page.Contents = pdf.make_stream(b"\n".join(operators))
        if rotate:
            page.Rotate = rotate
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def blank_pdf(size_pt: tuple[float, float], pages: int = 1) -> bytes:
    """`pages` blank pages of `size_pt` points."""
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=size_pt)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def encrypted_pdf(user_password: str = "secret") -> bytes:  # noqa: S107  # test data
    """A one-page vector PDF that needs `user_password` to open (AES-256)."""
    with pikepdf.open(io.BytesIO(vector_pdf([["Locked away"]]))) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(user=user_password, owner="owner-" * 3))
    return out.getvalue()


def shared_page_pdf(pages: int, declared: int | None = None) -> bytes:
    """A PDF of `pages` pages that are all one page object, written by hand (150 000 pages in
    ~1 MB and milliseconds); its page tree declares `declared` pages (default: `pages`)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Count %d /Kids [" % (pages if declared is None else declared)
        + b"3 0 R " * pages
        + b"] >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
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


def multipage(images: Sequence[Image.Image], fmt: str) -> bytes:
    """A multi-page TIFF or multi-frame GIF of `images`."""
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=list(images[1:]))
    return out.getvalue()


def slow_pdf(side: int = 10_000, draws: int = 20) -> bytes:
    """A letter page drawing one `side` x `side` gray image `draws` times: ~0.16 s a draw for
    PDFium (3 s in all at 300 dpi), while the file is 0.4 MB and built in ~0.1 s."""
    compressor = zlib.compressobj(1)
    row = b"\x80" * side
    payload = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    image = pdf.make_stream(
        payload,
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=side,
        Height=side,
        BitsPerComponent=8,
        ColorSpace=pikepdf.Name.DeviceGray,
        Filter=pikepdf.Name.FlateDecode,
    )
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=image))
    page.Contents = pdf.make_stream(b"q 612 0 0 792 0 0 cm /Im1 Do Q\n" * draws)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
