"""The model contract on the wire: request encoding and response decoding."""

import math
import struct
from collections.abc import Callable
from typing import Any

import orjson
import pytest

import contract
from gateway.codec import (
    DECODED_OUTPUTS,
    DOCUMENT_OUTPUTS,
    build_infer_request,
    decode_bytes_elements,
    decode_infer_response,
    encode_bytes_element,
)
from gateway.errors import MalformedResponseError
from gateway.protocol import pb
from tests.unit.gateway.fakes import (
    JSON_OUTPUTS,
    MODEL_NAME,
    MODEL_VERSION,
    SAMPLE_CONFIDENCE,
    SAMPLE_DOCUMENTS,
    SAMPLE_PAGE,
    SAMPLE_TEXT,
    SAMPLE_WORDS,
    ok_response,
    png_bytes,
)

pytestmark = pytest.mark.unit


def test_bytes_element_is_prefixed_by_its_length_as_uint32_little_endian() -> None:
    assert encode_bytes_element(b"abc") == b"\x03\x00\x00\x00abc"
    assert encode_bytes_element(b"x" * 258)[:4] == b"\x02\x01\x00\x00"
    assert encode_bytes_element(b"") == b"\x00\x00\x00\x00"


def test_bytes_elements_round_trip() -> None:
    elements = [b"first", b"", b"\x00\xff binary \r\n", "ünïcode".encode()]
    raw = b"".join(encode_bytes_element(e) for e in elements)
    assert decode_bytes_elements(raw) == elements


@pytest.mark.parametrize(
    "raw",
    [b"\x05\x00", b"\x05\x00\x00\x00abc", encode_bytes_element(b"ok") + b"\x01"],
    ids=["truncated-prefix", "element-overruns", "trailing-garbage"],
)
def test_bad_length_prefix_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        decode_bytes_elements(raw)


def test_request_carries_the_image_bytes_untouched_in_raw_input_contents() -> None:
    image = png_bytes() + b"\x00\xff\r\n"  # bytes no text codec would survive
    request = build_infer_request(
        image, model_name="ocr-model", request_id="req-1", lang="eng+deu", psm=6
    )
    assert request.model_name == "ocr-model"
    assert request.id == "req-1"
    assert len(request.inputs) == 1
    tensor = request.inputs[0]
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("image", "BYTES", [1])
    assert not tensor.HasField("contents")
    assert len(request.raw_input_contents) == 1
    raw = request.raw_input_contents[0]
    assert raw[:4] == struct.pack("<I", len(image))
    assert raw[4:] == image
    assert request.parameters["lang"].string_param == "eng+deu"
    assert request.parameters["psm"].WhichOneof("parameter_choice") == "int64_param"
    assert request.parameters["psm"].int64_param == 6
    # What goes on the wire decodes to the same request.
    assert pb.ModelInferRequest.FromString(request.SerializeToString()) == request


def test_request_without_psm_leaves_the_parameter_out() -> None:
    request = build_infer_request(b"img", model_name="m", request_id="r", lang="eng")
    assert set(request.parameters) == {"lang"}
    # No outputs named: the model answers its default ones.
    assert list(request.outputs) == []


@pytest.mark.parametrize(("rotate", "deskew"), [("auto", True), ("none", False)])
def test_rotate_and_deskew_travel_as_string_and_bool_parameters(rotate: str, deskew: bool) -> None:
    request = build_infer_request(
        b"img", model_name="m", request_id="r", lang="eng", rotate=rotate, deskew=deskew
    )
    wire = pb.ModelInferRequest.FromString(request.SerializeToString())
    assert wire.parameters["rotate"].WhichOneof("parameter_choice") == "string_param"
    assert wire.parameters["rotate"].string_param == rotate
    # False is sent too (the choice is set), not left out like an unset field.
    assert wire.parameters["deskew"].WhichOneof("parameter_choice") == "bool_param"
    assert wire.parameters["deskew"].bool_param is deskew


def test_requested_outputs_are_named_in_the_outputs_field() -> None:
    request = build_infer_request(
        b"img", model_name="m", request_id="r", lang="eng", outputs=["text", "page"]
    )
    wire = pb.ModelInferRequest.FromString(request.SerializeToString())
    assert [output.name for output in wire.outputs] == ["text", "page"]
    assert all(not output.parameters for output in wire.outputs)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"outputs": ["text", "nope"]}, "not outputs of the contract"),
        ({"outputs": ["pdf", "pdf"]}, "named twice"),
        ({"outputs": []}, "at least one output"),
        ({"rotate": "90"}, "rotate must be one of"),
    ],
)
def test_request_refuses_what_the_contract_does_not_name(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_infer_request(b"img", model_name="m", request_id="r", lang="eng", **bad)


def test_every_contract_output_is_decoded() -> None:
    assert set(contract.OUTPUTS_BY_NAME) == DECODED_OUTPUTS
    assert {"hocr", "tsv", "alto", "pdf"} == DOCUMENT_OUTPUTS


@pytest.mark.parametrize("raw", [True, False], ids=["raw_output_contents", "contents"])
def test_response_decodes_from_either_encoding(raw: bool) -> None:
    result = decode_infer_response(ok_response(raw=raw))
    assert result.text == SAMPLE_TEXT
    assert result.confidence == SAMPLE_CONFIDENCE
    assert result.words is not None
    assert [w.model_dump() for w in result.words] == SAMPLE_WORDS
    assert result.model_name == MODEL_NAME
    assert result.model_version == MODEL_VERSION


@pytest.mark.parametrize("raw", [True, False], ids=["raw_output_contents", "contents"])
def test_outputs_are_found_by_name_not_position(raw: bool) -> None:
    response = ok_response(raw=raw, text="Grüße")
    order = [2, 0, 1]
    outputs = [response.outputs[i] for i in order]
    contents = [response.raw_output_contents[i] for i in order] if raw else []
    shuffled = pb.ModelInferResponse(
        model_name=response.model_name, outputs=outputs, raw_output_contents=contents
    )
    result = decode_infer_response(shuffled)
    assert result.text == "Grüße"
    assert result.confidence == SAMPLE_CONFIDENCE


@pytest.mark.parametrize("raw", [True, False], ids=["raw_output_contents", "contents"])
def test_json_outputs_decode_with_the_page_facts(raw: bool) -> None:
    result = decode_infer_response(ok_response(raw=raw), JSON_OUTPUTS)
    assert result.text == SAMPLE_TEXT
    assert result.page is not None
    assert result.page.model_dump() == SAMPLE_PAGE
    assert result.documents == {}


@pytest.mark.parametrize("raw", [True, False], ids=["raw_output_contents", "contents"])
@pytest.mark.parametrize("name", ["hocr", "tsv", "alto", "pdf"])
def test_a_document_output_alone_is_read_untouched(raw: bool, name: str) -> None:
    result = decode_infer_response(ok_response(raw=raw, outputs=[name]), [name])
    assert result.documents == {name: SAMPLE_DOCUMENTS[name]}
    # Nothing else was asked for, nothing else is there.
    assert (result.text, result.confidence, result.words, result.page) == (None,) * 4


def test_outputs_not_asked_for_are_not_read() -> None:
    response = ok_response(outputs=["pdf", "text"])
    response.raw_output_contents[1] = b"\x09\x00\x00\x00short"  # text, broken
    result = decode_infer_response(response, ["pdf"])
    assert result.documents["pdf"] == SAMPLE_DOCUMENTS["pdf"]


def test_empty_page_and_missing_version_decode() -> None:
    result = decode_infer_response(
        ok_response(text="", confidence=-1.0, words=[], model_version="")
    )
    assert (result.text, result.confidence, result.words) == ("", -1.0, [])
    assert result.model_version is None


def _drop_output(name: str) -> Callable[[pb.ModelInferResponse], None]:
    def mutate(response: pb.ModelInferResponse) -> None:
        index = [o.name for o in response.outputs].index(name)
        del response.outputs[index]
        del response.raw_output_contents[index]

    return mutate


def _set_raw(name: str, raw: bytes) -> Callable[[pb.ModelInferResponse], None]:
    def mutate(response: pb.ModelInferResponse) -> None:
        index = [o.name for o in response.outputs].index(name)
        response.raw_output_contents[index] = raw

    return mutate


def _set_datatype(name: str, datatype: str) -> Callable[[pb.ModelInferResponse], None]:
    def mutate(response: pb.ModelInferResponse) -> None:
        index = [o.name for o in response.outputs].index(name)
        response.outputs[index].datatype = datatype

    return mutate


def _drop_last_raw(response: pb.ModelInferResponse) -> None:
    del response.raw_output_contents[-1]


@pytest.mark.parametrize(
    "mutate",
    [
        _drop_output("text"),
        _drop_output("confidence"),
        _drop_output("words"),
        _drop_last_raw,
        _set_raw("text", b"\x09\x00\x00\x00short"),
        _set_raw("text", encode_bytes_element(b"\xff\xfe not utf-8")),
        _set_raw("text", encode_bytes_element(b"a") + encode_bytes_element(b"b")),
        _set_raw("words", encode_bytes_element(b"[{not json")),
        _set_raw("words", encode_bytes_element(b'{"text": "not a list"}')),
        _set_raw("words", encode_bytes_element(b'[{"text": "no box"}]')),
        _set_raw("confidence", b"\x00\x00"),
        _set_raw("confidence", struct.pack("<f", math.nan)),
        _set_datatype("confidence", "FP64"),
    ],
    ids=[
        "no-text",
        "no-confidence",
        "no-words",
        "raw-count-mismatch",
        "bad-length-prefix",
        "text-not-utf8",
        "two-text-elements",
        "words-bad-json",
        "words-not-a-list",
        "word-missing-fields",
        "confidence-short",
        "confidence-nan",
        "wrong-datatype",
    ],
)
def test_malformed_response_raises(mutate: Callable[[pb.ModelInferResponse], None]) -> None:
    response = ok_response(raw=True)
    mutate(response)
    with pytest.raises(MalformedResponseError) as caught:
        decode_infer_response(response)
    assert caught.value.status == 502
    assert caught.value.code == "bad_model_response"
    assert caught.value.message == "The model returned a malformed response."


def _page_json(page: object) -> Callable[[pb.ModelInferResponse], None]:
    return _set_raw("page", encode_bytes_element(orjson.dumps(page)))


@pytest.mark.parametrize(
    ("outputs", "mutate"),
    [
        (JSON_OUTPUTS, _drop_output("page")),
        (JSON_OUTPUTS, _set_raw("page", encode_bytes_element(b"{not json"))),
        (JSON_OUTPUTS, _page_json([SAMPLE_PAGE])),
        (JSON_OUTPUTS, _page_json({**SAMPLE_PAGE, "width": "wide"})),
        (JSON_OUTPUTS, _page_json({k: v for k, v in SAMPLE_PAGE.items() if k != "rotation"})),
        (JSON_OUTPUTS, _page_json({**SAMPLE_PAGE, "skew": math.inf})),
        (["hocr"], _set_raw("hocr", encode_bytes_element(b"<html>\xff\xfe</html>"))),
        (["tsv"], _drop_output("tsv")),
        (["alto"], _set_datatype("alto", "FP32")),
        (["pdf"], _set_raw("pdf", encode_bytes_element(b"%PDF") + encode_bytes_element(b"x"))),
    ],
    ids=[
        "no-page",
        "page-bad-json",
        "page-a-list",
        "page-width-not-int",
        "page-no-rotation",
        "page-skew-infinite",
        "hocr-not-utf8",
        "tsv-missing",
        "alto-wrong-datatype",
        "pdf-two-elements",
    ],
)
def test_malformed_asked_output_raises(
    outputs: list[str], mutate: Callable[[pb.ModelInferResponse], None]
) -> None:
    response = ok_response(raw=True, outputs=outputs)
    mutate(response)
    with pytest.raises(MalformedResponseError) as caught:
        decode_infer_response(response, outputs)
    assert caught.value.code == "bad_model_response"


def test_typed_contents_with_no_element_is_malformed() -> None:
    response = ok_response(raw=False)
    response.outputs[1].contents.ClearField("fp32_contents")
    with pytest.raises(MalformedResponseError, match="confidence"):
        decode_infer_response(response)
