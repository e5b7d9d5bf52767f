"""Which outputs a v2 request gets, how each is encoded, and the rotate/deskew parameters.

A request that lists outputs gets exactly those, in the contract's order; one that lists none
gets `contract.DEFAULT_OUTPUTS`. Only the wanted outputs are encoded (the writers of the others
never run), binary outputs survive gRPC raw and typed contents and REST's binary extension,
and REST JSON refuses `pdf` with a message saying how to ask for it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import struct
from collections.abc import Iterator
from typing import Any

import orjson
import pikepdf
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
from PIL import Image

import contract
from model import codec
from model.assembly import create_model
from model.codec import build_response, page_json, parse_options, parse_outputs
from model.engine import OcrOptions, OcrResult, StageTimings
from model.engine.types import Block, Box, Paragraph, TextLine, Word
from model.formats import FormatPage
from model.predictor import OcrModel
from model.settings import ModelSettings
from tests.support.images import TESTDATA

pytestmark = pytest.mark.unit

IMAGE = b"\x89PNG\r\n\x1a\n opaque"
DEFAULTS = OcrOptions()
EVERY = tuple(spec.name for spec in contract.OUTPUTS)


def _result() -> OcrResult:
    """Two blocks: the first with two paragraphs (one of two lines), the second with one."""

    def word(text: str, left: int, top: int, block: int, paragraph: int, line: int) -> Word:
        return Word(text, 91.5, left, top, 20 * len(text), 30, block, line, paragraph)

    def line(*words: Word) -> TextLine:
        first, last = words[0], words[-1]
        return TextLine(Box(first.left, first.top, last.left + last.width - first.left, 30), words)

    one = line(word("Grüße", 10, 10, 1, 1, 1), word("aus", 120, 10, 1, 1, 1))
    two = line(word("Köln", 10, 50, 1, 1, 2))
    three = line(word("<&>", 10, 100, 1, 2, 3))
    four = line(word("Page", 400, 10, 2, 1, 1), word("two", 500, 10, 2, 1, 2))
    blocks = (
        Block(
            Box(10, 10, 170, 120),
            (Paragraph(Box(10, 10, 170, 70), (one, two)), Paragraph(three.box, (three,))),
        ),
        Block(Box(400, 10, 160, 30), (Paragraph(four.box, (four,)),)),
    )
    words = tuple(w for b in blocks for p in b.paragraphs for li in p.lines for w in li.words)
    return OcrResult(
        text="Grüße aus\nKöln\n\n<&>\n\nPage two\n",
        confidence=91.5,
        words=words,
        width=600,
        height=200,
        timings=StageTimings(queue_s=0.001, decode_s=0.002, preprocess_s=0.25, recognize_s=0.5),
        blocks=blocks,
        dpi=300.0,
        rotation=90,
        rotation_confidence=9.62,
        skew=-1.5,
    )


RESULT = _result()
PAGE_IMAGE = Image.new("L", (600, 200), 255)


def grpc_request(*outputs: str, raw: bool = True) -> InferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
    message = pb.ModelInferRequest(
        model_name="ocr-model",
        id="o1",
        inputs=[tensor],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=name) for name in outputs],
    )
    if raw:
        message.raw_input_contents.append(struct.pack("<I", len(IMAGE)) + IMAGE)
    else:
        tensor = message.inputs[0]
        tensor.contents.bytes_contents.append(IMAGE)
    return InferRequest.from_grpc(message)


def rest_request(
    *outputs: str | RequestedOutput, parameters: dict[str, Any] | None = None
) -> InferRequest:
    listed = [o if isinstance(o, RequestedOutput) else RequestedOutput(o, {}) for o in outputs]
    return InferRequest(
        model_name="ocr-model",
        request_id="r1",
        infer_inputs=[
            InferInput("image", [1], "BYTES", [base64.b64encode(IMAGE).decode()]),
        ],
        parameters=parameters,
        request_outputs=listed or None,
    )


def grpc_outputs(request: InferRequest, image: Image.Image | None = None) -> dict[str, bytes]:
    """Each output's one element, from raw_output_contents (a BYTES length prefix dropped)."""
    response = build_response(request, RESULT, "ocr-model", image=image).to_grpc()
    assert len(response.raw_output_contents) == len(response.outputs)
    return {
        output.name: raw[4:] if output.datatype == "BYTES" else raw
        for output, raw in zip(response.outputs, response.raw_output_contents, strict=True)
    }


def test_a_request_listing_outputs_gets_exactly_those_in_contract_order() -> None:
    request = grpc_request("page", "hocr", "alto")
    assert parse_outputs(request) == ("hocr", "alto", "page")
    outputs = grpc_outputs(request)
    assert list(outputs) == ["hocr", "alto", "page"]
    assert b"ocr_page" in outputs["hocr"]
    assert b"<alto" in outputs["alto"]
    assert contract.PageFacts.model_validate_json(outputs["page"]).rotation == 90


def test_a_request_listing_none_gets_the_default_outputs() -> None:
    assert (
        parse_outputs(grpc_request()) == contract.DEFAULT_OUTPUTS == ("text", "confidence", "words")
    )
    assert list(grpc_outputs(grpc_request())) == ["text", "confidence", "words"]


def test_every_output_at_once_in_contract_order() -> None:
    outputs = grpc_outputs(grpc_request(*reversed(EVERY)), PAGE_IMAGE)
    assert tuple(outputs) == EVERY
    assert outputs["text"].decode() == RESULT.text
    assert struct.unpack("<f", outputs["confidence"]) == (91.5,)
    assert outputs["tsv"].startswith(b"level\tpage_num\t")


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (
            ("text", "jpeg"),
            "unknown output 'jpeg': this model's outputs are "
            "text, confidence, words, hocr, tsv, alto, pdf, page",
        ),
        (("hocr", "hocr"), "output 'hocr' is requested twice"),
        (("x" * 10_000,), r"unknown output 'x{64}'\.\.\. \(10000 characters\)"),
    ],
)
def test_unknown_or_repeated_outputs_are_invalid_input(
    outputs: tuple[str, ...], message: str
) -> None:
    for request in (grpc_request(*outputs), rest_request(*outputs)):
        with pytest.raises(InvalidInput, match=message):
            parse_outputs(request)


def test_only_the_wanted_outputs_are_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []

    def writer(name: str) -> Any:
        def write(pages: list[FormatPage]) -> bytes:
            called.append(name)
            return name.encode()

        return write

    for name in ("hocr", "tsv", "alto", "pdf"):
        monkeypatch.setattr(codec, f"{name}_document", writer(name))
    monkeypatch.setattr(codec, "page_json", writer("page"))
    build_response(grpc_request(), RESULT, "ocr-model")
    assert called == []
    assert list(grpc_outputs(grpc_request("tsv", "text"))) == ["text", "tsv"]
    assert called == ["tsv"]


def test_the_page_output_is_contract_page_facts() -> None:
    facts = contract.PageFacts.model_validate_json(page_json(FormatPage(1, RESULT)))
    assert facts.page == 1
    assert (facts.width, facts.height, facts.dpi) == (600, 200, 300.0)
    assert (facts.rotation, facts.rotation_confidence, facts.skew) == (90, 9.62, -1.5)
    assert facts.text == RESULT.text
    assert facts.confidence == 91.5
    assert [w.text for w in facts.words] == [w.text for w in RESULT.words]
    assert [(w.block, w.paragraph, w.line) for w in facts.words] == [
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 2),
        (1, 2, 3),
        (2, 1, 1),
        (2, 1, 2),
    ]
    assert facts.timings == contract.PageTimings(
        queue_s=0.001, decode_s=0.002, preprocess_s=0.25, recognize_s=0.5
    )
    # A page read without rotate=auto has no orientation confidence, and may declare no dpi.
    plain = OcrResult(text="", confidence=0.0)
    facts = contract.PageFacts.model_validate_json(page_json(FormatPage(1, plain)))
    assert (facts.dpi, facts.rotation, facts.rotation_confidence, facts.skew) == (None, 0, None, 0)


def test_the_words_output_carries_the_contract_fields_in_order() -> None:
    words = orjson.loads(codec.words_json(RESULT))
    assert [list(word) for word in words] == [list(contract.WORD_FIELDS)] * len(words)
    assert list(contract.WORD_FIELDS)[-3:] == ["block", "paragraph", "line"]
    assert words[3] == {
        "text": "<&>",
        "confidence": 91.5,
        "left": 10,
        "top": 100,
        "width": 60,
        "height": 30,
        "page": 1,
        "block": 1,
        "paragraph": 2,
        "line": 3,
    }


def _pdf_pages(data: bytes) -> int:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return len(pdf.pages)


def test_pdf_survives_grpc_raw_and_typed_contents() -> None:
    raw = grpc_outputs(grpc_request("pdf"), PAGE_IMAGE)["pdf"]
    assert raw.startswith(b"%PDF-")
    assert _pdf_pages(raw) == 1
    typed = build_response(grpc_request("pdf", raw=False), RESULT, "ocr-model", image=PAGE_IMAGE)
    message = typed.to_grpc()
    assert not message.raw_output_contents
    assert message.outputs[0].contents.bytes_contents[0] == raw


def test_pdf_over_rest_json_is_refused_with_the_way_to_ask_for_it() -> None:
    with pytest.raises(InvalidInput, match="output 'pdf' is a binary file") as refused:
        parse_outputs(rest_request("pdf", "text"))
    assert '"binary_data": true' in str(refused.value)
    assert "gRPC" in str(refused.value)


@pytest.mark.parametrize(
    ("request_", "text_in_binary"),
    [
        (rest_request(RequestedOutput("pdf", {"binary_data": True}), "text"), False),
        (rest_request("pdf", "text", parameters={"binary_data_output": True}), True),
    ],
    ids=["binary_data on the output", "binary_data_output on the request"],
)
def test_pdf_over_rest_in_binary(request_: InferRequest, text_in_binary: bool) -> None:
    """The binary tensor extension: a JSON header (its length in the response header
    `inference-header-content-length`), then each binary output's raw contents in order."""
    assert parse_outputs(request_) == ("text", "pdf")
    body, json_length = build_response(request_, RESULT, "ocr-model", image=PAGE_IMAGE).to_rest()
    assert isinstance(body, bytes)
    assert json_length is not None
    text, pdf = orjson.loads(body[:json_length])["outputs"]
    assert (text["name"], pdf["name"]) == ("text", "pdf")
    raw = body[json_length:]
    if text_in_binary:
        size = text["parameters"]["binary_data_size"]
        assert raw[4:size].decode() == RESULT.text
        raw = raw[size:]
    else:
        assert text["data"] == [RESULT.text]
    assert len(raw) == pdf["parameters"]["binary_data_size"]
    assert raw[4:].startswith(b"%PDF-")
    assert _pdf_pages(raw[4:]) == 1


def test_rest_json_gets_the_listed_text_outputs_in_contract_order() -> None:
    body, json_length = build_response(rest_request("tsv", "page", "text"), RESULT, "m").to_rest()
    assert json_length is None
    assert isinstance(body, dict)
    outputs = {o["name"]: o["data"][0] for o in body["outputs"]}
    assert list(outputs) == ["text", "tsv", "page"]
    assert outputs["text"] == RESULT.text
    assert outputs["tsv"].startswith("level\tpage_num\t")
    assert contract.PageFacts.model_validate_json(outputs["page"]).page == 1


# --- rotate and deskew parameters ---


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, (DEFAULTS.rotate, DEFAULTS.deskew)),
        ({"rotate": "auto"}, ("auto", False)),
        ({"rotate": "none", "deskew": True}, ("none", True)),
        ({"deskew": "true"}, ("none", True)),
        ({"deskew": "false"}, ("none", False)),
        ({"rotate": pb.InferParameter(string_param="auto")}, ("auto", False)),
        ({"deskew": pb.InferParameter(bool_param=True)}, ("none", True)),
        ({"deskew": pb.InferParameter(string_param="true")}, ("none", True)),
    ],
)
def test_rotate_and_deskew_parameters(
    parameters: dict[str, Any], expected: tuple[str, bool]
) -> None:
    options = parse_options(parameters, DEFAULTS)
    assert (options.rotate, options.deskew) == expected


def test_the_models_default_rotate_applies_when_a_request_sends_none() -> None:
    auto = OcrOptions(rotate="auto")
    assert parse_options({}, auto).rotate == "auto"
    assert parse_options({"rotate": "none"}, auto).rotate == "none"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"rotate": "left"}, "parameter 'rotate' must be one of 'none', 'auto', not 'left'"),
        ({"rotate": "AUTO"}, "parameter 'rotate' must be one of 'none', 'auto'"),
        (
            {"rotate": 90},
            "parameter 'rotate' must be one of 'none', 'auto', got a value of type int",
        ),
        ({"rotate": "a" * 5000}, r"not 'a{64}'\.\.\. \(5000 characters\)"),
        ({"deskew": "yes"}, "parameter 'deskew' must be a boolean: true or false"),
        ({"deskew": 1}, "parameter 'deskew' must be a boolean"),
        ({"deskew": pb.InferParameter(int64_param=1)}, "parameter 'deskew' must be a boolean"),
    ],
)
def test_bad_rotate_and_deskew_are_invalid_input_naming_the_field(
    parameters: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_options(parameters, DEFAULTS)


# --- the model: the page image is kept only for pdf ---


@pytest.fixture(scope="module")
def model() -> Iterator[OcrModel]:
    model = create_model(ModelSettings(workers=1))
    model.load()
    yield model
    model.stop()


def test_the_model_keeps_the_page_image_only_when_pdf_is_wanted(
    model: OcrModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept: list[bool] = []
    read = model._pool.read

    async def spy(*args: Any, keep_image: bool = False, **kwargs: Any) -> Any:
        page = await read(*args, keep_image=keep_image, **kwargs)
        kept.append(page.image is not None)
        return page

    monkeypatch.setattr(model._pool, "read", spy)
    data = (TESTDATA / "phototest.tif").read_bytes()

    def predict(*outputs: str) -> dict[str, bytes]:
        message = pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
            ],
            raw_input_contents=[struct.pack("<I", len(data)) + data],
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in outputs],
        )
        response = asyncio.run(model.predict(InferRequest.from_grpc(message))).to_grpc()
        return {
            o.name: raw[4:]
            for o, raw in zip(response.outputs, response.raw_output_contents, strict=True)
        }

    assert list(predict("page", "text")) == ["text", "page"]
    assert list(predict("hocr")) == ["hocr"]
    pdf = predict("pdf")["pdf"]
    assert kept == [False, False, True]
    with pikepdf.open(io.BytesIO(pdf)) as document:
        (image,) = document.pages[0].get_images().values()
        assert (int(image.Width), int(image.Height)) == (640, 480)
