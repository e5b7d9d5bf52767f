"""The model contract on the wire: request encoding and response decoding."""

import math
import struct
from collections.abc import Callable

import pytest

from gateway.codec import (
    build_infer_request,
    decode_bytes_elements,
    decode_infer_response,
    encode_bytes_element,
)
from gateway.errors import MalformedResponseError
from gateway.protocol import pb
from tests.unit.gateway.fakes import (
    MODEL_NAME,
    MODEL_VERSION,
    SAMPLE_CONFIDENCE,
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


@pytest.mark.parametrize("raw", [True, False], ids=["raw_output_contents", "contents"])
def test_response_decodes_from_either_encoding(raw: bool) -> None:
    result = decode_infer_response(ok_response(raw=raw))
    assert result.text == SAMPLE_TEXT
    assert result.confidence == SAMPLE_CONFIDENCE
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


def test_typed_contents_with_no_element_is_malformed() -> None:
    response = ok_response(raw=False)
    response.outputs[1].contents.ClearField("fp32_contents")
    with pytest.raises(MalformedResponseError, match="confidence"):
        decode_infer_response(response)
