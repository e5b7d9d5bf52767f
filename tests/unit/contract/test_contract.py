"""The wire contract is one list that both sides read: the gateway's request, the model's
metadata, the engine's limits and the gateway's form validation all follow `contract`."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

import contract
from gateway.app import create_app
from gateway.codec import build_infer_request
from gateway.settings import GatewaySettings
from model.codec import INPUT_TYPES, OUTPUT_TYPES
from model.engine import InvalidOptionError, OcrOptions
from model.engine.image import ALLOWED_FORMATS
from tests.support.images import encode

pytestmark = pytest.mark.unit


def test_the_gateway_request_uses_the_contract_names() -> None:
    request = build_infer_request(b"x", model_name="m", request_id="r", lang="eng", psm=6)
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [
        (contract.IMAGE.name, contract.IMAGE.datatype, list(contract.IMAGE.shape))
    ]
    assert set(request.parameters) == {contract.LANG.name, contract.PSM.name}
    assert contract.decode_bytes_elements(request.raw_input_contents[0]) == [b"x"]


def test_model_metadata_is_the_contract() -> None:
    assert [contract.IMAGE.metadata()] == INPUT_TYPES
    # ModelMetadata lists every output; a request that lists none gets the defaults.
    assert [o["name"] for o in OUTPUT_TYPES] == [spec.name for spec in contract.OUTPUTS]
    assert [spec.metadata() for spec in contract.OUTPUTS] == OUTPUT_TYPES
    assert OUTPUT_TYPES[0]["name"] == "text"
    assert contract.DEFAULT_OUTPUTS == ("text", "confidence", "words")


def test_gateway_form_limits_are_the_contract_limits() -> None:
    schema = create_app(GatewaySettings()).openapi()
    body = schema["components"]["schemas"]["Body_recognise_gateway_ocr_post"]["properties"]
    assert body["lang"]["pattern"] == contract.LANG.pattern
    assert body["lang"]["maxLength"] == contract.LANG.max_length
    psm = next(s for s in body["psm"]["anyOf"] if s.get("type") == "integer")
    assert (psm["minimum"], psm["maximum"]) == (contract.PSM.minimum, contract.PSM.maximum)
    word = schema["components"]["schemas"]["Word"]["properties"]
    assert list(word) == list(contract.WORD_FIELDS)


@pytest.mark.parametrize("psm", [contract.PSM.minimum - 1, contract.PSM.maximum + 1])
def test_the_engine_refuses_what_the_contract_refuses(psm: int) -> None:
    with pytest.raises(InvalidOptionError):
        OcrOptions(psm=psm).validate(frozenset({"eng"}))
    OcrOptions(psm=contract.PSM.maximum, oem=contract.OEM.maximum).validate(frozenset({"eng"}))


def test_a_lang_spec_the_contract_accepts_is_accepted_by_the_engine() -> None:
    installed = frozenset({"eng", "deu", "fra", "ita", "osd"})
    longest = "+".join(["eng", "deu", "fra"])
    assert re.fullmatch(contract.LANG.pattern, longest)
    assert len(longest) <= contract.LANG.max_length
    OcrOptions(lang=longest).validate(installed)
    too_many = longest + "+ita"
    assert not re.fullmatch(contract.LANG.pattern, too_many)
    with pytest.raises(InvalidOptionError, match="malformed: use 1 to 3"):
        OcrOptions(lang=too_many).validate(installed)
    # Codes of the longest length the pattern allows fit its max_length.
    assert len("+".join(["x" * 32] * 3)) == contract.LANG.max_length


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("osd", "'osd' is Tesseract's orientation and script data, not a language"),
        ("eng+osd", "not a language"),
        ("eng+eng", "names a language twice"),
        ("eng+deu+eng", "names a language twice"),
    ],
)
def test_the_engine_refuses_osd_and_repeated_codes(lang: str, message: str) -> None:
    assert re.fullmatch(contract.LANG.pattern, lang)  # well-formed, refused by the engine
    with pytest.raises(InvalidOptionError, match=message):
        OcrOptions(lang=lang).validate(frozenset({"eng", "deu", "osd"}))


@pytest.mark.parametrize("image_format", contract.IMAGE_FORMATS, ids=lambda f: f.name)
def test_every_format_is_sniffed_and_decodable(image_format: contract.ImageFormat) -> None:
    data = encode(Image.new("RGB", (8, 8), "white"), image_format.pillow)
    assert contract.sniff_image_format(data) is image_format
    assert image_format.pillow in ALLOWED_FORMATS
    assert Image.open(io.BytesIO(data)).format == image_format.pillow


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7", b"RIFF\x00\x00\x00\x00WAVE", b"<svg"])
def test_other_bytes_are_not_an_accepted_format(data: bytes) -> None:
    assert contract.sniff_image_format(data) is None


def test_raw_bytes_round_trip_and_truncation() -> None:
    raw = contract.encode_bytes_element(b"abc") + contract.encode_bytes_element(b"")
    assert contract.decode_bytes_elements(raw) == [b"abc", b""]
    with pytest.raises(contract.MalformedBytesError, match="overruns"):
        contract.decode_bytes_elements(raw[:5])
    with pytest.raises(contract.MalformedBytesError, match="truncated"):
        contract.decode_bytes_elements(b"\x01\x00")
