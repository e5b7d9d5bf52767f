"""Set a page upright before it is read: turn it by the orientation Tesseract detected, then
measure and straighten its skew.

Orientation comes from the backend (Tesseract OSD); this module only says from which confidence
it is believed and turns the page, which is lossless (a transpose). Skew is measured here, with
numpy, by the projection-profile method: the page's ink is sampled on a binarized copy at most
`SKEW_SAMPLE_SIDE` pixels long, and the angle whose horizontal projection has the sharpest rows
(the largest sum of squared differences between neighbouring rows: text lines and the gaps
between them) wins, searched in steps of 1, 0.1, then 0.02 degrees within `MAX_SKEW_DEGREES`.
The sign follows Pillow: positive degrees turn the page counter-clockwise.

A straightened page is cropped to its ink (`cropped_size`): the corners the turn brings in are
white, and Tesseract would read them too. Measured on a 2480x3508 page of text at 300 dpi
skewed 7 degrees (2890x3786; 2 cores, shared): measuring takes ~20 ms and finds a skew of 1 to
15 degrees within 0.05 degrees; locating the ink ~30 ms; straightening (bilinear) onto the
cropped 2156x3206 page ~55 ms, where the whole padded 3331x4111 one took ~95 ms; Tesseract
reads it in ~1.25 s, as fast as the upright page.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

#: Tesseract OSD's orientation confidence from which `rotate=auto` turns the page. OSD sums,
#: over the characters it classifies, how much likelier each orientation makes them; the
#: confidence is the lead of the best orientation over the next, so it grows with the
#: characters looked at (the tesserocr backend looks at up to 100 first, 250 when unsure).
#: Measured with Debian's osd.traineddata on pages turned 0/90/180/270 (and skewed 7 degrees):
#: right answers score 9.2-31.6 from 250 characters and 4.8-13.8 from 100 on Tesseract's scans
#: (phototest.tif, phototest_2.tif, eurotext.tif), up to 33 on rendered pages of 20-32 px
#: letters, 3.0-3.6 on three rendered lines (about the least text OSD decides on) and 0.5-2.3
#: on one line; wrong ones 0.2-2.4 on rendered pages of 20 px letters and more, 0-2.6 on noise
#: (0-1.8 from 100 characters), 0.9-2.1 on a 300 dpi page of 42 px letters shrunk to 40 % (17
#: px). Smaller letters still (15 px and less) get wrong answers at any confidence (up to 12):
#: OSD cannot read them, and neither can recognition.
MIN_ORIENTATION_CONFIDENCE: Final = 2.5
#: Largest skew measured, either way (degrees); a page tilted further is straightened by at
#: most this much.
MAX_SKEW_DEGREES: Final = 15.0
#: Smaller measured skews are left alone: Tesseract reads them as well, and straightening a page
#: costs ~85 ms a 9 MP page and blurs it slightly. Upright pages measure within ~0.1 degrees.
MIN_SKEW_DEGREES: Final = 0.2
#: The skew found must sharpen the rows' profile this much over the page as it is (text pages
#: skewed by 1 degree or more: 5 to 60 times; noise and photographs: ~1.0), or it is not applied.
MIN_PROFILE_GAIN: Final = 1.25
#: The longest side of the copy skew is measured on: lines of 8 point text at 300 dpi stay
#: apart, and a 9 MP page costs ~20 ms.
SKEW_SAMPLE_SIDE: Final = 1000
#: White kept around the ink of a straightened page cropped to it (`cropped_size`), as a share
#: of the page's longer side, so that no text is read at the very edge of the page.
CROP_MARGIN: Final = 0.02
#: The least margin kept, in pixels.
_MIN_CROP_MARGIN: Final = 16
#: Rows of the page read at once when its ink is located (~1 MB of a 9 MP page).
_STRIP_ROWS: Final = 512
#: Fewer ink pixels than this on the sample: nothing to measure (a blank page).
_MIN_INK_PIXELS: Final = 200
#: The coarse-to-fine search: (step, half-width around the best angle so far), in degrees.
_SEARCH: Final = ((1.0, MAX_SKEW_DEGREES), (0.1, 1.0), (0.02, 0.1))

#: The transpose that turns a page clockwise by each multiple of 90 degrees.
_CLOCKWISE: Final = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}

FloatArray = npt.NDArray[np.float32]


def turn(image: Image.Image, clockwise_degrees: int) -> Image.Image:
    """`image` turned clockwise by 0, 90, 180 or 270 degrees (a new image unless 0)."""
    if clockwise_degrees % 360 == 0:
        return image
    return image.transpose(_CLOCKWISE[clockwise_degrees % 360])


def bilevel(image: Image.Image) -> Image.Image:
    """A black-and-white copy of `image` (Otsu's threshold over its gray levels), which Tesseract
    OSD reads ~12 % faster than the gray page it would threshold the same way; a bilevel image
    is returned as it is."""
    if image.mode == "1":
        return image
    gray = image if image.mode == "L" else image.convert("L")
    threshold = _otsu_threshold(gray.histogram())
    return gray.point(lambda value: 255 if value > threshold else 0, "1")


def measure_skew(image: Image.Image, max_degrees: float = MAX_SKEW_DEGREES) -> float:
    """Degrees (counter-clockwise positive, as Pillow's `rotate`) that level the page's lines,
    at most `max_degrees` either way; 0.0 when the page has too little ink or no clear lines,
    or its skew is under `MIN_SKEW_DEGREES`."""
    points = _ink_points(image)
    if points is None:
        return 0.0
    xs, ys, bins = points
    level = _sharpness(xs, ys, 0.0, bins)
    best = 0.0
    for step, span in _SEARCH:
        low, high = max(best - span, -max_degrees), min(best + span, max_degrees)
        angles = np.arange(low, high + step / 2, step)
        scores = [_sharpness(xs, ys, float(angle), bins) for angle in angles]
        best = float(angles[int(np.argmax(scores))])
    if abs(best) < MIN_SKEW_DEGREES or _sharpness(xs, ys, best, bins) < MIN_PROFILE_GAIN * level:
        return 0.0
    return round(best, 2)


def straightened_size(size: tuple[int, int], degrees: float) -> tuple[int, int]:
    """The size of a `size` page turned `degrees` with every corner kept, as `straighten` makes
    it (Pillow's `expand`), or a pixel more."""
    angle = math.radians(degrees)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    width, height = size
    return math.ceil(width * cos + height * sin) + 1, math.ceil(width * sin + height * cos) + 1


def cropped_size(image: Image.Image, degrees: float) -> tuple[int, int]:
    """The size of the page `straighten(image, degrees, size)` should make: centred where
    `image`'s centre is, holding every pixel of its ink once turned, with `CROP_MARGIN` of white
    around it, and never larger than `straightened_size` (a page without ink gets that).

    Ink is what Tesseract's own binarisation (Otsu's threshold over the whole page) takes for
    text: pixels darker than the page's Otsu threshold, lighter ones on a dark page. The
    corners the turn brings in are padding, and cropping them keeps Tesseract from reading a
    page up to 1.5 times larger than the upload (~1.25 times at 7 degrees)."""
    bound = straightened_size(image.size, degrees)
    extent = _ink_extent(image, degrees)
    if extent is None:
        return bound
    half_width, half_height = extent
    margin = max(_MIN_CROP_MARGIN, CROP_MARGIN * max(image.size))
    return (
        min(bound[0], 2 * math.ceil(half_width + margin)),
        min(bound[1], 2 * math.ceil(half_height + margin)),
    )


def straighten(
    image: Image.Image, degrees: float, size: tuple[int, int] | None = None
) -> Image.Image:
    """`image` turned `degrees` counter-clockwise about its centre onto a white page of `size`
    with the same centre (see `cropped_size`); without `size`, enlarged to keep every corner.
    A bilevel page becomes grayscale (bilinear resampling)."""
    if image.mode == "1":
        image = image.convert("L")
    white: int | tuple[int, int, int] = (255, 255, 255) if image.mode == "RGB" else 255
    if size is None:
        return image.rotate(
            degrees, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=white
        )
    # Pillow's `rotate` with `expand`, onto a page of the size given: the affine map from each
    # point of the new page to the point of `image` it is sampled at, both about their centres.
    angle = -math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    width, height = image.size
    x0, y0 = -size[0] / 2, -size[1] / 2
    matrix = (
        cos,
        sin,
        cos * x0 + sin * y0 + width / 2,
        -sin,
        cos,
        -sin * x0 + cos * y0 + height / 2,
    )
    return image.transform(
        size,
        Image.Transform.AFFINE,
        matrix,
        resample=Image.Resampling.BILINEAR,
        fillcolor=white,
    )


def upright_bytes(image: Image.Image, rotate: bool, deskew: bool) -> int:
    """Most bytes of pixels the upright stage holds at once besides `image` (a Tesseract-ready
    page): the bilevel copy OSD reads (and the gray one before it, for a colour page) or the
    turned copy, and for deskew a grayscale copy of a bilevel page and the straightened one,
    enlarged by up to 1.5 times at 15 degrees (cropped to its ink, it is mostly smaller)."""
    pixels = image.width * image.height
    per_pixel = 4 if image.mode == "RGB" else 1  # Pillow pads RGB to 4 bytes; "1" takes 1
    osd_copies = {"1": 0, "L": 1}.get(image.mode, 2)
    turned = max(pixels * osd_copies, pixels * per_pixel) if rotate else 0
    if not deskew:
        return turned
    angle = math.radians(MAX_SKEW_DEGREES)
    enlarged = (math.cos(angle) + math.sin(angle)) ** 2
    gray = pixels if image.mode == "1" else 0
    return max(turned, gray + math.ceil(pixels * per_pixel * enlarged))


def _ink_points(image: Image.Image) -> tuple[FloatArray, FloatArray, int] | None:
    """Coordinates of the ink of a small binarized copy of `image`, about its centre, and the
    number of profile rows any rotation of them needs; None when there is too little ink."""
    scale = min(1.0, SKEW_SAMPLE_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if image.mode == "1":
        # Pillow resizes bilevel images by nearest neighbour only: average a gray copy.
        sample = image.convert("L").resize(size, Image.Resampling.BOX)
    else:
        sample = image.resize(size, Image.Resampling.BOX).convert("L")
    pixels = np.asarray(sample)
    ink = pixels <= _otsu_threshold(sample.histogram())
    if ink.mean() > 0.5:  # light text on a dark page
        ink = ~ink
    ys, xs = np.nonzero(ink)
    if xs.size < _MIN_INK_PIXELS:
        return None
    height, width = pixels.shape
    bins = math.ceil(math.hypot(width, height)) + 2
    return (
        xs.astype(np.float32) - width / 2,
        ys.astype(np.float32) - height / 2,
        bins,
    )


def _ink_extent(image: Image.Image, degrees: float) -> tuple[float, float] | None:
    """Half the width and half the height of the smallest box, centred where `image`'s centre
    is, that holds every ink pixel (see `cropped_size`) once the page is turned `degrees`
    counter-clockwise about that centre; None when the page has no ink.

    Reads the page at full resolution, `_STRIP_ROWS` rows at a time, so no faint stroke is lost
    and no page-sized mask is held. Only the first and last ink pixel of each row can be the
    farthest once turned (a turn is linear), so only their corners are turned."""
    gray = image if image.mode == "L" else image.convert("L")
    histogram = gray.histogram()
    threshold = _otsu_threshold(histogram)
    light_on_dark = sum(histogram[: threshold + 1]) > gray.width * gray.height / 2
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    half_width = half_height = -1.0
    for top in range(0, gray.height, _STRIP_ROWS):
        strip = np.asarray(gray.crop((0, top, gray.width, min(top + _STRIP_ROWS, gray.height))))
        ink = strip > threshold if light_on_dark else strip <= threshold
        rows = np.flatnonzero(ink.any(axis=1))
        if not rows.size:
            continue
        inked = ink[rows]
        # Pixel edges about the centre: each ink row's leftmost and rightmost ink pixel.
        xs = np.concatenate((inked.argmax(axis=1), gray.width - inked[:, ::-1].argmax(axis=1)))
        dx = xs.astype(np.float64) - gray.width / 2
        for edge in (0, 1):
            dy = np.tile(rows + top + edge, 2).astype(np.float64) - gray.height / 2
            # Pillow's counter-clockwise turn, y pointing down.
            half_width = max(half_width, float(np.abs(dx * cos + dy * sin).max()))
            half_height = max(half_height, float(np.abs(dy * cos - dx * sin).max()))
    if half_width < 0:
        return None
    return half_width, half_height


def _otsu_threshold(histogram: list[int]) -> int:
    """The gray level that best splits a 256-bin histogram in two (Otsu's method)."""
    counts = np.asarray(histogram[:256], dtype=np.float64)
    levels = np.arange(256, dtype=np.float64)
    below = np.cumsum(counts)
    above = below[-1] - below
    mass = np.cumsum(counts * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mass[-1] * below / below[-1] - mass) ** 2 / (below * above)
    return int(np.argmax(np.nan_to_num(between, nan=0.0, posinf=0.0)))


def _sharpness(xs: FloatArray, ys: FloatArray, degrees: float, bins: int) -> float:
    """How sharply the rows of the ink's profile change once the ink is turned `degrees`
    counter-clockwise: the sum of squared differences between neighbouring rows."""
    angle = math.radians(degrees)
    rows = ys * np.float32(math.cos(angle)) - xs * np.float32(math.sin(angle))
    profile = np.bincount((rows + bins / 2).astype(np.int32), minlength=bins)
    steps = np.diff(profile.astype(np.float64))
    return float(np.dot(steps, steps))
