"""The `preview` output: a JPEG of the upright page that was read, its longest side at most
1600 px, with the aspect of the page the word boxes are measured on.

The encoder is checked on pages of every mode and size; the model itself on a turned page read
with `rotate=auto` (the preview is the upright page, not the upload), with its result cache on
(the cache keeps no page images, so a request for the preview is always read).
"""

from __future__ import annotations

import asyncio
import io
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
from PIL import Image

import contract
from model.assembly import create_model
from model.codec import build_response, parse_outputs, preview_jpeg
from model.engine import OcrResult
from model.formats import FormatPage
from model.predictor import OcrModel
from model.settings import ModelSettings
from tests.support.images import TESTDATA

pytestmark = pytest.mark.unit

MAX_SIDE = contract.PREVIEW_MAX_SIDE
#: A page turned a quarter clockwise (480x640): read upright with rotate=auto, it is 640x480.
TURNED = (TESTDATA / "phototest-rotated-L.png").read_bytes()


def open_jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


def scaled(size: tuple[int, int]) -> tuple[int, int]:
    """The size the preview of a page of `size` has: scaled down to MAX_SIDE, never up."""
    factor = min(1.0, MAX_SIDE / max(size))
    return round(size[0] * factor), round(size[1] * factor)


@pytest.mark.parametrize(
    ("size", "mode", "preview_mode"),
    [
        ((2480, 3508), "1", "L"),  # A4 at 300 dpi, 1-bit: scaled in gray
        ((3508, 2480), "L", "L"),  # landscape
        ((2000, 700), "RGB", "RGB"),  # colour stays colour
        ((640, 480), "L", "L"),  # small: never enlarged
        ((1600, 1600), "L", "L"),  # exactly the bound
        ((4000, 9), "L", "L"),  # a sliver keeps at least a row
    ],
)
def test_the_preview_is_a_jpeg_within_the_bound_with_the_pages_aspect(
    size: tuple[int, int], mode: str, preview_mode: str
) -> None:
    page = Image.new(mode, size, 255 if mode != "RGB" else (255, 255, 255))
    result = OcrResult(text="", confidence=0.0, width=size[0], height=size[1])
    preview = open_jpeg(preview_jpeg(FormatPage(1, result, page)))
    assert max(preview.size) <= MAX_SIDE
    assert preview.mode == preview_mode
    width, height = scaled(size)
    # Pillow rounds each side on its own: within a pixel of the exact scale.
    assert abs(preview.width - width) <= 1
    assert abs(preview.height - max(1, height)) <= 1
    if max(size) <= MAX_SIDE:
        assert preview.size == size


def test_the_preview_needs_the_page_image() -> None:
    with pytest.raises(ValueError, match="page image"):
        preview_jpeg(FormatPage(1, OcrResult(text="", confidence=0.0)))


def test_over_rest_json_the_preview_must_be_asked_for_in_binary() -> None:
    def rest(*outputs: RequestedOutput) -> InferRequest:
        return InferRequest(
            model_name="ocr-model",
            request_id="r1",
            infer_inputs=[InferInput("image", [1], "BYTES", ["aW1hZ2U="])],
            request_outputs=list(outputs),
        )

    with pytest.raises(InvalidInput, match="output 'preview' is a binary file"):
        parse_outputs(rest(RequestedOutput("page", {}), RequestedOutput("preview", {})))
    binary = rest(RequestedOutput("preview", {"binary_data": True}))
    assert parse_outputs(binary) == ("preview",)
    result = OcrResult(text="", confidence=0.0, width=64, height=32)
    body, json_length = build_response(
        binary, result, "ocr-model", image=Image.new("L", (64, 32), 255)
    ).to_rest()
    assert isinstance(body, bytes)
    assert json_length is not None
    assert open_jpeg(body[json_length + 4 :]).size == (64, 32)


# --- the model: the upright page, always read ---


@pytest.fixture(scope="module")
def model() -> Iterator[OcrModel]:
    model = create_model(ModelSettings(workers=1, result_cache_entries=8))
    model.load()
    yield model
    model.stop()


def predict(model: OcrModel, data: bytes, *outputs: str, **parameters: Any) -> dict[str, bytes]:
    message = pb.ModelInferRequest(
        model_name="ocr-model",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[struct.pack("<I", len(data)) + data],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in outputs],
        parameters={
            name: pb.InferParameter(string_param=value) for name, value in parameters.items()
        },
    )
    response = asyncio.run(model.predict(InferRequest.from_grpc(message))).to_grpc()
    return {
        o.name: raw[4:]
        for o, raw in zip(response.outputs, response.raw_output_contents, strict=True)
    }


def test_the_models_preview_is_the_upright_page_its_boxes_are_measured_on(
    model: OcrModel,
) -> None:
    # Read once without the preview: the result is cached, without any page image.
    assert list(predict(model, TURNED, "page", rotate="auto")) == ["page"]
    answered = predict(model, TURNED, "page", "preview", rotate="auto")
    assert list(answered) == ["page", "preview"]
    facts = contract.PageFacts.model_validate_json(answered["page"])
    assert facts.rotation != 0
    assert (facts.width, facts.height) == (640, 480)  # the upload is 480x640
    preview = open_jpeg(answered["preview"])
    assert preview.size == (facts.width, facts.height)
    # The words lie on it: every box within the preview.
    assert facts.words
    for word in facts.words:
        assert word.left + word.width <= preview.width
        assert word.top + word.height <= preview.height


def test_the_model_scales_a_large_page_down(model: OcrModel) -> None:
    page = Image.open(TESTDATA / "phototest.tif").convert("L").resize((2560, 1920))
    out = io.BytesIO()
    page.save(out, "PNG")
    answered = predict(model, out.getvalue(), "page", "preview")
    facts = contract.PageFacts.model_validate_json(answered["page"])
    preview = open_jpeg(answered["preview"])
    assert (facts.width, facts.height) == (2560, 1920)
    assert preview.size == (1600, 1200)
