"""The codec's element counts, checked before anything is decoded, and its messages, which never
carry a client's input back whole."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Callable

import orjson
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferRequest

import contract
from model.codec import check_binary_request, check_grpc_request, parse_options, parse_request
from model.engine import OcrOptions
from model.errors import MAX_ECHO_CHARS, echo
from tests.support import hostile_messages as hostile

pytestmark = pytest.mark.unit

DEFAULTS = OcrOptions(lang="eng", psm=3, oem=3)
PNG = b"\x89PNG\r\n\x1a\n opaque"
MiB = 1024 * 1024


def tensor(**fields: object) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(
        **{"name": "image", "datatype": "BYTES", "shape": [1], **fields}
    )


def timed_refusal(call: Callable[..., object], *args: object) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    return str(caught.value), time.perf_counter() - started


def test_millions_of_zero_length_raw_elements_are_refused_in_milliseconds() -> None:
    request = hostile.parses(hostile.zero_length_raw_elements())
    started = time.perf_counter()
    check_grpc_request(request)  # counts only: one entry of raw contents
    assert time.perf_counter() - started < 0.005
    # Through KServe's conversion, as the predictor sees it: one length prefix is read.
    message, elapsed = timed_refusal(parse_request, InferRequest.from_grpc(request), DEFAULTS)
    assert "more than one element" in message
    assert elapsed < 0.05


def test_millions_of_bytes_contents_are_refused_by_their_count() -> None:
    request = hostile.parses(hostile.empty_bytes_contents(8 * MiB))
    message, elapsed = timed_refusal(check_grpc_request, request)
    assert "exactly one element" in message
    assert f"got {4 * MiB}" in message
    assert elapsed < 0.05


def test_a_rest_list_of_millions_of_elements_is_refused_by_its_length() -> None:
    data: list[object] = [""] * 4_000_000
    request = InferRequest(
        model_name="ocr-model",
        request_id=None,
        infer_inputs=[InferInput(name="image", shape=[1], datatype="BYTES", data=data)],
    )
    message, elapsed = timed_refusal(parse_request, request, DEFAULTS)
    assert "got 4000000" in message
    assert elapsed < 0.05


def test_rest_binary_raw_data_is_read_by_its_first_length_prefix() -> None:
    one = InferInput(name="image", shape=[1], datatype="BYTES")
    one._raw_data = struct.pack("<I", len(PNG)) + PNG
    request = InferRequest(model_name="ocr-model", request_id=None, infer_inputs=[one])
    assert parse_request(request, DEFAULTS) == (PNG, DEFAULTS)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.ModelInferRequest(), "exactly one input"),
        (pb.ModelInferRequest(inputs=[tensor(), tensor()]), "got 2"),
        (
            pb.ModelInferRequest(
                inputs=[tensor()], raw_input_contents=[struct.pack("<I", 1) + b"x"] * 2
            ),
            "one raw_input_contents entry",
        ),
        (
            pb.ModelInferRequest(
                inputs=[tensor(contents=pb.InferTensorContents(bytes_contents=[PNG]))],
                raw_input_contents=[struct.pack("<I", 1) + b"x"],
            ),
            "both contents and raw_input_contents",
        ),
        (pb.ModelInferRequest(inputs=[tensor()]), "got 0"),
        (pb.ModelInferRequest(inputs=[tensor(datatype="FP32")]), "datatype BYTES"),
        (pb.ModelInferRequest(inputs=[tensor(shape=[1] * 1000)]), "not 1000 dimensions"),
        (
            pb.ModelInferRequest(
                inputs=[tensor(contents=pb.InferTensorContents(bytes_contents=[PNG]))],
                outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="text")]
                * (len(contract.OUTPUTS) + 1),
            ),
            f"at most {len(contract.OUTPUTS)} outputs",
        ),
    ],
)
def test_grpc_requests_that_cannot_be_one_image(
    request_: pb.ModelInferRequest, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_grpc_request(request_)


def test_well_formed_grpc_requests_pass() -> None:
    check_grpc_request(
        pb.ModelInferRequest(
            inputs=[tensor()], raw_input_contents=[struct.pack("<I", len(PNG)) + PNG]
        )
    )
    check_grpc_request(
        pb.ModelInferRequest(
            inputs=[tensor(contents=pb.InferTensorContents(bytes_contents=[PNG]))],
            outputs=[
                pb.ModelInferRequest.InferRequestedOutputTensor(name=spec.name)
                for spec in contract.OUTPUTS
            ],
        )
    )


# --- the REST binary extension --------------------------------------------------------------


def binary_body(raw: bytes, **tensor: object) -> tuple[bytes, str]:
    """A binary-extension body (JSON header, then `raw`) and its header length."""
    fields = {"name": "image", "datatype": "BYTES", "shape": [1], **tensor}
    fields.setdefault("parameters", {"binary_data_size": len(raw)})
    header = orjson.dumps({"inputs": [fields]})
    return header + raw, str(len(header))


def test_millions_of_zero_length_binary_elements_are_refused_before_kserve_decodes() -> None:
    body, length = binary_body(struct.pack("<I", 0) * (10 * MiB))
    message, elapsed = timed_refusal(check_binary_request, body, length)
    assert "base64" in message
    assert elapsed < 0.05


def test_a_binary_image_is_refused_with_the_way_that_works() -> None:
    body, length = binary_body(struct.pack("<I", len(PNG)) + PNG)
    with pytest.raises(InvalidInput, match="send it base64 in JSON `data`, or over gRPC"):
        check_binary_request(body, length)


def test_json_data_in_a_binary_request_passes_and_kserve_reads_it() -> None:
    body, length = binary_body(b"", data=[base64.b64encode(PNG).decode()], parameters={})
    check_binary_request(body, length)
    request = InferRequest.from_bytes(body, int(length), "ocr-model")
    assert parse_request(request, DEFAULTS) == (PNG, DEFAULTS)


@pytest.mark.parametrize(
    ("body", "length", "message"),
    [
        (b"{}", None, "inference-header-content-length"),
        (b"{}", "two", "inference-header-content-length"),
        (b"{}", "\u0663", "inference-header-content-length"),
        (b"{not json", "9", "not JSON"),
        (b"[1]", "3", "'inputs'"),
        (b'{"inputs": []}', "14", "exactly one input"),
        (b'{"inputs": [5]}', "15", "an input must be an object"),
        (*binary_body(b"\x00\x00\x00\x00", name="n" * MiB, datatype="FP32"), "datatype BYTES"),
        (*binary_body(b"\x00\x00\x00\x00", shape=["s" * MiB]), "must have shape"),
        (*binary_body(b"\x00\x00\x00\x00", name="n" * MiB), "binary tensor extension"),
    ],
)
def test_binary_requests_that_cannot_be_one_image(
    body: bytes, length: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        check_binary_request(body, length)
    assert len(str(caught.value)) < 300


# --- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["9" * 5000, "²", "٣", "1e3", "0x10", "- 3", "7" * 19])
def test_integer_text_that_int_would_refuse_or_choke_on_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="'psm' must be an integer"):
        parse_options({"psm": text}, DEFAULTS)


@pytest.mark.parametrize(("text", "value"), [("6", 6), (" 7 ", 7), ("-1", -1), ("0" * 18, 0)])
def test_plain_integer_text_is_read(text: str, value: int) -> None:
    assert parse_options({"psm": text}, DEFAULTS).psm == value


def test_a_huge_lang_is_refused_by_its_length_alone() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_options({"lang": "e" * MiB}, DEFAULTS)
    assert f"at most {contract.LANG.max_length}" in str(caught.value)
    assert len(str(caught.value)) < 200


def test_only_the_options_are_read_of_a_million_parameters() -> None:
    parameters = {f"k{n}": n for n in range(1_000_000)} | {"psm": 6}
    started = time.perf_counter()
    assert parse_options(parameters, DEFAULTS).psm == 6
    assert time.perf_counter() - started < 0.05


def test_grpc_integer_text_parameters_overflowing_int_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="'oem' must be an integer"):
        parse_options({"oem": pb.InferParameter(string_param="1" * 5000)}, DEFAULTS)


# --- echoed input ---------------------------------------------------------------------------


def test_echo_cuts_long_values_and_says_how_long_they_were() -> None:
    assert echo("image") == "'image'"
    long = echo("n" * MiB)
    assert long.startswith("'" + "n" * MAX_ECHO_CHARS + "'")
    assert f"({MiB} characters)" in long
    assert len(long) < MAX_ECHO_CHARS + 40


@pytest.mark.parametrize(
    "request_",
    [
        pb.ModelInferRequest(inputs=[tensor(name="n" * MiB, datatype="FP32")]),
        pb.ModelInferRequest(inputs=[tensor(datatype="D" * MiB)]),
        pb.ModelInferRequest(inputs=[tensor(name="n" * MiB)]),
        pb.ModelInferRequest(
            inputs=[tensor(name="n" * MiB, contents=pb.InferTensorContents(bytes_contents=[PNG]))],
            raw_input_contents=[b""],
        ),
    ],
)
def test_a_mebibyte_name_or_datatype_is_not_echoed_whole_over_grpc(
    request_: pb.ModelInferRequest,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_grpc_request(request_)
    assert len(str(caught.value)) < 300


def test_a_mebibyte_name_is_not_echoed_whole_over_rest() -> None:
    request = InferRequest(
        model_name="ocr-model",
        request_id=None,
        infer_inputs=[
            InferInput(name="n" * MiB, shape=[1], datatype="BYTES", data=["@@ not base64"])
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        parse_request(request, DEFAULTS)
    assert "base64" in str(caught.value)
    assert len(str(caught.value)) < 300


def test_a_valid_rest_request_still_decodes() -> None:
    request = InferRequest(
        model_name="ocr-model",
        request_id=None,
        infer_inputs=[
            InferInput(
                name="input-0",
                shape=[1],
                datatype="BYTES",
                data=[base64.b64encode(PNG).decode()],
            )
        ],
        parameters={"psm": "6"},
    )
    assert parse_request(request, DEFAULTS) == (PNG, OcrOptions(psm=6))
