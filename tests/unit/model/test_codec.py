"""Model-side codec: v2 tensors (gRPC raw, gRPC contents, REST base64) to bytes and options."""

from __future__ import annotations

import base64
import dataclasses
import struct

import orjson
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferRequest
from PIL import Image

import contract
from model.codec import OUTPUT_ENCODERS, build_response, parse_request, words_json
from model.engine import OcrOptions, OcrResult, Word

pytestmark = pytest.mark.unit

DEFAULTS = OcrOptions(lang="eng", psm=3, oem=3)
IMAGE = b"\x89PNG\r\n\x1a\n fake but opaque bytes \x00\xff"


def prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def grpc_raw(raw: bytes, **params: pb.InferParameter) -> InferRequest:
    request = pb.ModelInferRequest(
        model_name="ocr-model",
        id="r1",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[raw],
        parameters=params,
    )
    return InferRequest.from_grpc(request)


def rest(
    data: list[object],
    name: str = "image",
    datatype: str = "BYTES",
    shape: list[int] | None = None,
    parameters: dict[str, object] | None = None,
) -> InferRequest:
    return InferRequest(
        model_name="ocr-model",
        request_id=None,
        infer_inputs=[InferInput(name=name, shape=shape or [1], datatype=datatype, data=data)],
        parameters=parameters,
    )


def test_grpc_raw_input_contents_with_parameters() -> None:
    request = grpc_raw(
        prefixed(IMAGE),
        lang=pb.InferParameter(string_param="eng+deu"),
        psm=pb.InferParameter(int64_param=7),
    )
    image, options = parse_request(request, DEFAULTS)
    assert image == IMAGE
    assert options == OcrOptions(lang="eng+deu", psm=7, oem=3)


def test_grpc_bytes_contents() -> None:
    request = InferRequest.from_grpc(
        pb.ModelInferRequest(
            model_name="ocr-model",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="image",
                    datatype="BYTES",
                    shape=[1],
                    contents=pb.InferTensorContents(bytes_contents=[IMAGE]),
                )
            ],
        )
    )
    assert parse_request(request, DEFAULTS) == (IMAGE, DEFAULTS)


def test_rest_base64_element_and_json_parameters() -> None:
    request = rest([base64.b64encode(IMAGE).decode()], parameters={"psm": 6, "oem": "1"})
    assert parse_request(request, DEFAULTS) == (IMAGE, OcrOptions(psm=6, oem=1))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (rest(["aGk="], datatype="FP32"), "datatype BYTES"),
        (rest(["aGk=", "aGk="], shape=[2]), r"shape \[1\]"),
        (rest(["aGk="], shape=[-5]), r"shape \[1\]"),
        (rest(["not base64!!"]), "base64"),
        (rest(["aGk="], parameters={"psm": "six"}), "'psm' must be an integer"),
        (rest(["aGk="], parameters={"psm": True}), "'psm' must be an integer"),
        (rest(["aGk="], parameters={"lang": 5}), "'lang' must be a string"),
        (grpc_raw(struct.pack("<I", 1000) + b"short"), "malformed BYTES"),
        (grpc_raw(b"\x01\x00"), "malformed BYTES"),
        (grpc_raw(prefixed(IMAGE, IMAGE)), "expected exactly one element"),
    ],
)
def test_malformed_requests_are_invalid_input(request_: InferRequest, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_request(request_, DEFAULTS)


@pytest.mark.parametrize("name", ["input-0", "img", "image"])
def test_the_one_bytes_input_is_the_image_whatever_its_name(name: str) -> None:
    request = rest([base64.b64encode(IMAGE).decode()], name=name)
    assert parse_request(request, DEFAULTS) == (IMAGE, DEFAULTS)


def test_a_wrongly_typed_input_is_named_in_the_error() -> None:
    with pytest.raises(InvalidInput, match="input 'input-0' must have datatype BYTES"):
        parse_request(rest([1.0], name="input-0", datatype="FP32"), DEFAULTS)


def test_every_contract_output_has_an_encoder_and_text_comes_first() -> None:
    assert list(OUTPUT_ENCODERS) == [spec.name for spec in contract.OUTPUTS]
    every = [spec.name for spec in contract.OUTPUTS]
    page = Image.new("L", (64, 16), 255)  # the page image `pdf` and `preview` are made of
    response = build_response(grpc_raw(prefixed(IMAGE)), RESULT, "ocr-model", every, page).to_grpc()
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        (spec.name, spec.datatype, list(spec.shape)) for spec in contract.OUTPUTS
    ]
    assert response.outputs[0].name == contract.TEXT.name == "text"
    # A request that lists no outputs gets the defaults, text first.
    default = build_response(grpc_raw(prefixed(IMAGE)), RESULT, "ocr-model").to_grpc()
    assert tuple(o.name for o in default.outputs) == contract.DEFAULT_OUTPUTS
    assert contract.DEFAULT_OUTPUTS == ("text", "confidence", "words")


def test_engine_words_carry_every_contract_word_field() -> None:
    words = orjson.loads(words_json(RESULT))
    assert [list(word) for word in words] == [list(contract.WORD_FIELDS)] * len(RESULT.words)
    assert {f.name for f in dataclasses.fields(Word)} == set(contract.WORD_FIELDS) - {"page"}


def test_no_inputs_and_two_inputs() -> None:
    empty = InferRequest(model_name="m", request_id="1", infer_inputs=[])
    with pytest.raises(InvalidInput, match="exactly one input"):
        parse_request(empty, DEFAULTS)
    two = rest(["aGk="])
    two.inputs.append(InferInput(name="image", shape=[1], datatype="BYTES", data=["aGk="]))
    with pytest.raises(InvalidInput, match="got 2"):
        parse_request(two, DEFAULTS)


RESULT = OcrResult(
    text="Grüße 42\n",
    confidence=91.5,
    words=(Word("Grüße", 90.0, 1, 2, 30, 10, 1, 1), Word("42", 93.0, 40, 2, 12, 10, 1, 1)),
)


def test_grpc_raw_request_gets_raw_outputs() -> None:
    response = build_response(grpc_raw(prefixed(IMAGE)), RESULT, "ocr-model").to_grpc()
    assert response.id == "r1"
    assert [o.name for o in response.outputs] == ["text", "confidence", "words"]
    text_raw, conf_raw, words_raw = response.raw_output_contents
    assert text_raw == prefixed("Grüße 42\n".encode())
    assert struct.unpack("<f", conf_raw) == (91.5,)
    words = orjson.loads(words_raw[4:])
    assert words[0] == {
        "text": "Grüße",
        "confidence": 90.0,
        "left": 1,
        "top": 2,
        "width": 30,
        "height": 10,
        "page": 1,
        "block": 1,
        "paragraph": 1,
        "line": 1,
    }


def test_rest_request_gets_json_outputs_and_an_id() -> None:
    body, _ = build_response(rest(["aGk="]), RESULT, "ocr-model").to_rest()
    assert isinstance(body, dict)
    assert body["id"]
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs["text"] == ["Grüße 42\n"]
    assert outputs["confidence"] == [91.5]
    assert orjson.loads(outputs["words"][0])[1]["text"] == "42"
