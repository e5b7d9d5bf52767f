"""A searchable PDF: each page image as read, with an invisible text layer where the words are.

Each page is sized from its pixels and resolution (`dpi`, 300 when unknown: 1 px = 72/dpi pt) and
shows its image full-page, pixel for pixel: 1-bit as DeviceGray 1 bpc, grayscale as DeviceGray 8,
colour as DeviceRGB, Flate-compressed (lossless, never resampled).

The text layer is drawn in render mode 3 (invisible) with Tesseract's glyphless font (`pdf.ttf`
from the tessdata directory), embedded the way Tesseract's own PDF renderer does it: a Type0 font
with Identity-H encoding over a CIDFontType2 whose CIDToGIDMap sends every CID to the one
glyph, so a character's CID is simply its UTF-16 code and a ToUnicode CMap maps it back. A
character beyond the BMP (an emoji, say) would take two UTF-16 codes, which text extractors do
not join again, so each distinct one gets a CID of its own from the surrogate range D800-DFFF
(never a character by itself) and the CMap maps that CID to the character's surrogate pair.
Every text is written as a hex string of CIDs, so no character needs escaping.

Each word is placed at its box: font size the box height, baseline the box bottom (the glyph is
1 em tall with no descent, so text extractors see the word's box), and the font stretched
horizontally (Tz) so the word spans the box width. The words of a line follow one another with a
space between them, so extractors read the lines and words in order.

With `text_only` the pages carry the text layer alone, no image, each the size its image would
have given it (Tesseract's `textonly_pdf`): a layer to lay over the original page, e.g. the PDF
page the image was rendered from (at its render dpi, so the sizes agree).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name
from PIL import Image

from . import FormatPage
from ._common import PLATFORM, tesseract_version

#: Tesseract's glyphless font as Debian's libtesseract5 installs it (Apache-2.0).
DEFAULT_FONT = Path("/usr/share/tesseract-ocr/5/tessdata/pdf.ttf")
#: Resolution assumed for a page whose image carries none.
DEFAULT_DPI = 300.0
#: The glyph's advance, in thousandths of the font size (pdf.ttf: 1024 of 2048 units).
_GLYPH_WIDTH = 500
#: zlib level of the page images: 6 is zlib's default balance of size and time.
IMAGE_COMPRESSION = 6
#: CIDs given to characters beyond the BMP (the UTF-16 surrogates, never characters alone).
_ASTRAL_CIDS = range(0xD800, 0xE000)
_REPLACEMENT = 0xFFFD
_SPACE = 0x20


class _Cids:
    """Character codes (CIDs) of text, with the ToUnicode CMap that reads them back."""

    def __init__(self) -> None:
        self.astral: dict[str, int] = {}

    def codes(self, text: str) -> list[int]:
        codes: list[int] = []
        for char in text:
            code = ord(char)
            if code >= 0x10000:
                cid = self.astral.get(char)
                if cid is None:
                    if len(self.astral) < len(_ASTRAL_CIDS):
                        cid = _ASTRAL_CIDS[len(self.astral)]
                        self.astral[char] = cid
                    else:
                        cid = _REPLACEMENT  # 2048 distinct astral characters in one document
                code = cid
            elif code in _ASTRAL_CIDS:
                code = _REPLACEMENT  # a lone surrogate is no character
            codes.append(code)
        return codes

    def to_unicode(self) -> bytes:
        """The ToUnicode CMap: every BMP code to itself, each astral CID to its character."""
        ranges = [
            f"<{high:02X}00> <{high:02X}FF> <{high:02X}00>"
            for high in range(0x100)
            if high << 8 not in _ASTRAL_CIDS
        ]
        chars = [
            f"<{cid:04X}> <{char.encode('utf-16-be').hex().upper()}>"
            for char, cid in self.astral.items()
        ]
        lines = [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<0000> <FFFF>",
            "endcodespacerange",
            *_sections("bfrange", ranges),
            *_sections("bfchar", chars),
            "endcmap",
            "CMapName currentdict /CMap defineresource pop",
            "end",
            "end",
        ]
        return ("\n".join(lines) + "\n").encode("ascii")


def _sections(kind: str, entries: list[str]) -> Iterable[str]:
    """CMap entries in sections of at most 100, as the CMap format allows."""
    for start in range(0, len(entries), 100):
        chunk = entries[start : start + 100]
        yield f"{len(chunk)} begin{kind}"
        yield from chunk
        yield f"end{kind}"


def _num(value: float) -> str:
    """A PDF number: at most 3 decimals, no exponent, no negative zero."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _glyphless_font(pdf: pikepdf.Pdf, font_program: bytes) -> Dictionary:
    """The Type0 font over the glyphless TrueType font (its ToUnicode is set at the end)."""
    font_file = pikepdf.Stream(pdf, font_program)
    font_file.Length1 = len(font_program)
    descriptor = Dictionary(
        Type=Name.FontDescriptor,
        FontName=Name.GlyphLessFont,
        Flags=5,  # fixed pitch, symbolic
        FontBBox=Array([0, 0, _GLYPH_WIDTH, 1000]),
        ItalicAngle=0,
        Ascent=1000,
        Descent=-1,  # must be negative; ~0: the glyph stands on the baseline
        CapHeight=1000,
        StemV=80,
        FontFile2=font_file,
    )
    every_cid_to_glyph_1 = pikepdf.Stream(pdf, b"\x00\x01" * 0x10000)
    cid_font = Dictionary(
        Type=Name.Font,
        Subtype=Name.CIDFontType2,
        BaseFont=Name.GlyphLessFont,
        CIDSystemInfo=Dictionary(
            Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0
        ),
        FontDescriptor=pdf.make_indirect(descriptor),
        CIDToGIDMap=every_cid_to_glyph_1,
        DW=_GLYPH_WIDTH,
    )
    font = Dictionary(
        Type=Name.Font,
        Subtype=Name.Type0,
        BaseFont=Name.GlyphLessFont,
        Encoding=Name("/Identity-H"),
        DescendantFonts=Array([pdf.make_indirect(cid_font)]),
    )
    indirect: Dictionary = pdf.make_indirect(font)
    return indirect


def _pdf_pixels(image: Image.Image) -> tuple[Image.Image, Name, int]:
    """`image` in a mode a PDF image holds as is, with its colour space and bits per sample.

    The engine reads 1-bit, grayscale and RGB pages, kept as they are; another mode is
    converted (transparency flattened onto white).
    """
    if image.mode == "1":
        return image, Name.DeviceGray, 1
    if image.mode == "L":
        return image, Name.DeviceGray, 8
    if image.mode == "RGB":
        return image, Name.DeviceRGB, 8
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("L"), Name.DeviceGray, 8
    if "A" in image.mode or "a" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba)
        return flat, Name.DeviceRGB, 8
    converted = image.convert("RGB")
    return converted, Name.DeviceRGB, 8


def _image_xobject(pdf: pikepdf.Pdf, image: Image.Image) -> pikepdf.Stream:
    pixels, colour_space, bits = _pdf_pixels(image)
    stream = pikepdf.Stream(pdf, b"")
    # Pillow packs 1-bit rows as PDF does: most significant bit first, rows padded to a byte,
    # 0 black and 1 white, as DeviceGray reads them.
    stream.write(zlib.compress(pixels.tobytes(), IMAGE_COMPRESSION), filter=Name.FlateDecode)
    stream.Type = Name.XObject
    stream.Subtype = Name.Image
    stream.Width = pixels.width
    stream.Height = pixels.height
    stream.ColorSpace = colour_space
    stream.BitsPerComponent = bits
    return stream


def _text_layer(page: FormatPage, scale: float, page_height: float, cids: _Cids) -> list[str]:
    """Content operators drawing the page's words invisibly, each over its box."""
    operators = ["BT", "3 Tr"]
    size = stretch = -1.0
    for block in page.result.blocks:
        for paragraph in block.paragraphs:
            for line in paragraph.lines:
                for index, word in enumerate(line.words):
                    codes = cids.codes(word.text)
                    if not codes or word.width <= 0 or word.height <= 0:
                        continue
                    word_size = word.height * scale
                    word_stretch = (
                        100 * word.width * scale * 1000 / (_GLYPH_WIDTH * word_size * len(codes))
                    )
                    if index < len(line.words) - 1:
                        codes.append(_SPACE)
                    x = word.left * scale
                    y = page_height - (word.top + word.height) * scale
                    if _num(word_size) != _num(size):
                        operators.append(f"/F1 {_num(word_size)} Tf")
                        size = word_size
                    if _num(word_stretch) != _num(stretch):
                        operators.append(f"{_num(word_stretch)} Tz")
                        stretch = word_stretch
                    hex_codes = "".join(f"{code:04X}" for code in codes)
                    operators.append(f"1 0 0 1 {_num(x)} {_num(y)} Tm <{hex_codes}> Tj")
    operators.append("ET")
    return operators


def _page(
    pdf: pikepdf.Pdf, font: Dictionary, page: FormatPage, cids: _Cids, text_only: bool
) -> pikepdf.Dictionary:
    result = page.result
    image = None if text_only else page.image
    width_px = result.width or (page.image.width if page.image is not None else 0)
    height_px = result.height or (page.image.height if page.image is not None else 0)
    dpi = result.dpi if result.dpi is not None and result.dpi > 0 else DEFAULT_DPI
    scale = 72.0 / dpi
    width, height = width_px * scale, height_px * scale
    resources = Dictionary(Font=Dictionary(F1=font))
    operators: list[str] = []
    if image is not None:
        resources.XObject = Dictionary(Im1=_image_xobject(pdf, image))
        operators.append(f"q {_num(width)} 0 0 {_num(height)} 0 0 cm /Im1 Do Q")
    operators += _text_layer(page, scale, height, cids)
    content = pikepdf.Stream(pdf, ("\n".join(operators) + "\n").encode("ascii"))
    return Dictionary(
        Type=Name.Page,
        MediaBox=Array([0, 0, round(width, 3), round(height, 3)]),
        Resources=resources,
        Contents=content,
    )


def pdf_document(
    pages: Sequence[FormatPage],
    *,
    text_only: bool = False,
    version: str | None = None,
    font_path: Path = DEFAULT_FONT,
) -> bytes:
    """A searchable PDF of `pages`, one PDF page each, in their order.

    `font_path` is Tesseract's glyphless font (`pdf.ttf` in its tessdata directory); `version`
    is Tesseract's, named in the Producer (default: tesserocr's library). A page without an
    image, and every page when `text_only`, gets the text layer alone on a page of the same
    size.
    """
    pdf = pikepdf.new()
    font = _glyphless_font(pdf, font_path.read_bytes())
    cids = _Cids()
    for page in pages:
        pdf.pages.append(pikepdf.Page(_page(pdf, font, page, cids, text_only)))
    font.ToUnicode = pikepdf.Stream(pdf, cids.to_unicode())
    pdf.docinfo[Name.Producer] = pikepdf.String(
        f"{PLATFORM} (tesseract {version or tesseract_version()}, pikepdf {pikepdf.__version__})"
    )
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()
