"""Answer formats: `format` and `Accept`, media types, downloads, the page facts in JSON, and
the `rotate`/`deskew` parameters, through the HTTP app in front of the fake model."""

import time
from typing import Any

import httpx
import orjson
import pytest

import contract
from gateway.app import create_app
from gateway.errors import NotAcceptableError
from gateway.negotiation import (
    ACCEPTABLE_MEDIA_TYPES,
    best_match,
    choose_format,
    content_disposition,
    download_stem,
    model_outputs,
)
from gateway.protocol import pb
from tests.unit.gateway.fakes import (
    DEFAULT_OUTPUTS,
    JSON_OUTPUTS,
    SAMPLE_CONFIDENCE,
    SAMPLE_DOCUMENTS,
    SAMPLE_PAGE,
    SAMPLE_TEXT,
    SAMPLE_WORDS,
    FakeModelServicer,
    ok_response,
    png_bytes,
)
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_of

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

FORMAT_NAMES = [f.name for f in contract.OUTPUT_FORMATS]
DOCUMENTS = ["hocr", "tsv", "alto", "pdf"]
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "hocr": "text/vnd.hocr+html; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "alto": "application/alto+xml; charset=utf-8",
    "pdf": "application/pdf",
    "ndjson": "application/x-ndjson",
}
EXTENSIONS = {"hocr": "hocr", "tsv": "tsv", "alto": "alto.xml", "pdf": "pdf"}


async def post(
    client: httpx.AsyncClient,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    filename: str = "scan.png",
) -> httpx.Response:
    return await client.post(
        "/gateway/ocr",
        data=form or {},
        headers=headers or {},
        files={"image_file": (filename, png_bytes(), "image/png")},
    )


def name_format(name: str) -> contract.OutputFormat:
    return contract.OUTPUT_FORMATS_BY_NAME[name]


def asked_outputs(servicer: FakeModelServicer) -> list[str]:
    (request,) = servicer.requests
    return [output.name for output in request.outputs]


# --- Negotiation, without HTTP --------------------------------------------------------------------


def test_the_formats_are_the_contracts() -> None:
    assert FORMAT_NAMES == ["json", "text", "hocr", "tsv", "alto", "pdf", "ndjson"]
    assert {f.name: f.media_type for f in contract.OUTPUT_FORMATS} == MEDIA_TYPES
    assert tuple(m.split(";")[0] for m in MEDIA_TYPES.values()) == ACCEPTABLE_MEDIA_TYPES


def test_the_model_is_asked_only_for_what_the_answer_needs() -> None:
    by_name = contract.OUTPUT_FORMATS_BY_NAME
    assert model_outputs(by_name["json"]) == ("text", "confidence", "words", "page")
    assert model_outputs(by_name["text"]) == ("text",)
    for name in DOCUMENTS:
        assert model_outputs(by_name[name]) == (name,)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", "json"),
        ("text/plain", "text"),
        ("TEXT/PLAIN; charset=UTF-8", "text"),
        ("text/vnd.hocr+html", "hocr"),
        ("text/tab-separated-values", "tsv"),
        ("application/alto+xml", "alto"),
        ("application/pdf", "pdf"),
        ("*/*", "json"),
        ("text/*", "text"),
        ("application/*", "json"),
        # A browser: the HTML it prefers is not served, */* is.
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json"),
        ("application/pdf, */*;q=0.1", "pdf"),
        ("application/json;q=0.5, application/pdf", "pdf"),
        ("application/json;q=0, */*", "text"),
        ("text/*;q=0.3, text/tab-separated-values", "tsv"),
        # Equal quality: the range listed first.
        ("application/pdf, application/json", "pdf"),
        ("text/plain, application/json", "text"),
        # A more specific range decides a format's quality, even when it comes later.
        ("*/*;q=0.9, application/json;q=0.1", "text"),
        ("image/png, application/alto+xml;q=0.2", "alto"),
        # An unreadable quality leaves its range out.
        ("application/pdf;q=high, text/plain;q=0.5", "text"),
        ("application/pdf;q=1.5, text/plain;q=0.5", "text"),
    ],
)
def test_accept_picks_the_preferred_format(accept: str, expected: str) -> None:
    chosen = best_match(accept)
    assert chosen is not None
    assert chosen.name == expected
    assert choose_format(None, accept).name == expected


@pytest.mark.parametrize(
    "accept",
    ["image/png", "text/html", "application/json;q=0, text/*;q=0, application/*;q=0", "*/*;q=0"],
)
def test_accept_that_allows_no_format_is_refused(accept: str) -> None:
    assert best_match(accept) is None
    with pytest.raises(NotAcceptableError, match="accepted: application/json, text/plain"):
        choose_format(None, accept)


@pytest.mark.parametrize("accept", [None, "", "  "])
def test_no_accept_means_json(accept: str | None) -> None:
    assert choose_format(None, accept).name == "json"


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_the_format_field_wins_over_accept(name: str) -> None:
    assert choose_format(name, "image/png").name == name
    assert choose_format(name, "application/json").name == name


@pytest.mark.parametrize(
    ("upload", "stem"),
    [
        ("scan.png", "scan"),
        ("scan.final.tiff", "scan.final"),
        ("noextension", "noextension"),
        ("C:\\Users\\me\\scan.png", "scan"),
        ("../../etc/passwd.png", "passwd"),
        (".hidden.png", "hidden"),
        ("..", "page"),
        ("", "page"),
        (None, "page"),
        ("dir/", "page"),
        ("bad\r\nSet-Cookie: x.png", "badSet-Cookie: x"),
        ("x" * 300 + ".png", "x" * 100),
    ],
)
def test_download_stem(upload: str | None, stem: str) -> None:
    assert download_stem(upload) == stem


def test_content_disposition_is_ascii_with_a_utf8_name_when_needed() -> None:
    pdf = contract.OUTPUT_FORMATS_BY_NAME["pdf"]
    alto = contract.OUTPUT_FORMATS_BY_NAME["alto"]
    assert content_disposition("scan.png", pdf) == 'attachment; filename="scan.pdf"'
    assert content_disposition(None, alto) == 'attachment; filename="page.alto.xml"'
    assert content_disposition('Straße "1".png', pdf) == (
        "attachment; filename=\"Stra_e _1_.pdf\"; filename*=UTF-8''Stra%C3%9Fe%20%221%22.pdf"
    )


# --- Through HTTP ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_json_answer_has_the_page_facts(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "content-disposition" not in response.headers
    body = response.json()
    assert (body["text"], body["confidence"], body["words"]) == (
        SAMPLE_TEXT,
        SAMPLE_CONFIDENCE,
        SAMPLE_WORDS,
    )
    assert all(word["paragraph"] == 1 for word in body["words"])
    assert body["page_count"] == 1
    assert body["pages"] == [SAMPLE_PAGE]
    assert asked_outputs(servicer) == list(JSON_OUTPUTS)


@pytest.mark.anyio
async def test_text_answer_is_the_text_alone(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, {"format": "text"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == SAMPLE_TEXT.encode()
    assert asked_outputs(servicer) == ["text"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", DOCUMENTS)
async def test_a_document_is_the_model_output_as_a_download(
    make_settings: SettingsFactory, name: str
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, {"format": name}, filename="Scan 7.tif")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPES[name]
    # Byte for byte, the PDF's binary included.
    assert response.content == SAMPLE_DOCUMENTS[name]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="Scan 7.{EXTENSIONS[name]}"'
    )
    assert asked_outputs(servicer) == [name]


@pytest.mark.anyio
async def test_accept_selects_when_format_is_absent(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        for name, media_type in MEDIA_TYPES.items():
            response = await post(client, headers={"Accept": media_type.split(";")[0]})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == media_type
            assert response.headers["vary"] == "Accept"
            assert asked_outputs(servicer) == list(model_outputs(name_format(name)))
            servicer.requests.clear()
        # Several Accept headers are read as one list.
        response = await client.post(
            "/gateway/ocr",
            headers=[("Accept", "image/png"), ("Accept", "application/pdf")],
            files={"image_file": ("scan.png", png_bytes(), "image/png")},
        )
        assert response.headers["content-type"] == "application/pdf"


@pytest.mark.anyio
@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
async def test_json_by_default(make_settings: SettingsFactory, accept: str | None) -> None:
    async with gateway_of(FakeModelServicer(), make_settings) as client:
        response = await post(client, headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["pages"] == [SAMPLE_PAGE]


@pytest.mark.anyio
async def test_format_wins_over_accept(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, {"format": "tsv"}, {"Accept": "application/pdf"})
        assert response.headers["content-type"] == MEDIA_TYPES["tsv"]
        # Even an Accept that allows nothing served.
        response = await post(client, {"format": "json"}, {"Accept": "image/png"})
        assert response.headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_unacceptable_accept_is_406_before_the_model(make_settings: SettingsFactory) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        response = await post(client, headers={"Accept": "image/png, text/html;q=0.5"})
    message = assert_error(response, 406, "not_acceptable")
    for media_type in ACCEPTABLE_MEDIA_TYPES:
        assert media_type in message
    assert "format" in message
    assert servicer.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "field", "listed"),
    [
        ({"format": "xml"}, "format", FORMAT_NAMES),
        ({"format": "JSON"}, "format", FORMAT_NAMES),
        ({"rotate": "90"}, "rotate", ["none", "auto"]),
        ({"rotate": "left"}, "rotate", ["none", "auto"]),
        ({"deskew": "maybe"}, "deskew", []),
        ({"deskew": "2"}, "deskew", []),
    ],
)
async def test_out_of_set_values_are_422_at_once(
    make_settings: SettingsFactory, form: dict[str, str], field: str, listed: list[str]
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        started = time.monotonic()
        response = await post(client, form)
        elapsed = time.monotonic() - started
    message = assert_error(response, 422, "validation_error")
    assert message.startswith(f"{field}: "), message
    for value in listed:
        assert f"'{value}'" in message
    assert elapsed < 0.5
    assert servicer.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "rotate", "deskew"),
    [
        ({"rotate": "auto", "deskew": "true"}, "auto", True),
        ({"rotate": "none", "deskew": "false"}, "none", False),
        ({"deskew": "true"}, None, True),
        ({"rotate": "auto"}, "auto", None),
        ({}, None, None),
    ],
)
async def test_rotate_and_deskew_are_sent_only_when_given(
    make_settings: SettingsFactory,
    form: dict[str, str],
    rotate: str | None,
    deskew: bool | None,
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(servicer, make_settings) as client:
        assert (await post(client, form)).status_code == 200
    (request,) = servicer.requests
    parameters = request.parameters
    if rotate is None:
        assert "rotate" not in parameters
    else:
        assert parameters["rotate"].WhichOneof("parameter_choice") == "string_param"
        assert parameters["rotate"].string_param == rotate
    if deskew is None:
        assert "deskew" not in parameters
    else:
        assert parameters["deskew"].WhichOneof("parameter_choice") == "bool_param"
        assert parameters["deskew"].bool_param is deskew


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "response"),
    [
        # Asked for the PDF, answered the default outputs.
        ({"format": "pdf"}, ok_response(outputs=DEFAULT_OUTPUTS)),
        # The JSON answer needs the page facts.
        ({}, ok_response(outputs=DEFAULT_OUTPUTS)),
        ({}, ok_response(page={"page": 1})),
        ({"format": "hocr"}, ok_response(outputs=["hocr"], documents={"hocr": b"\xff<html>"})),
    ],
    ids=["pdf-missing", "page-missing", "page-incomplete", "hocr-not-utf8"],
)
async def test_off_contract_answers_are_502(
    make_settings: SettingsFactory, form: dict[str, str], response: pb.ModelInferResponse
) -> None:
    async with gateway_of(FakeModelServicer(response=response), make_settings) as client:
        assert_error(await post(client, form), 502, "bad_model_response")


@pytest.mark.anyio
async def test_the_page_facts_are_passed_on_as_the_model_reads_them(
    make_settings: SettingsFactory,
) -> None:
    page = {**SAMPLE_PAGE, "dpi": None, "rotation": 270, "rotation_confidence": None, "skew": 0.0}
    async with gateway_of(FakeModelServicer(response=ok_response(page=page)), make_settings) as c:
        body = (await post(c)).json()
    assert body["pages"] == [page]
    assert orjson.loads(orjson.dumps(body["pages"][0])) == page


def test_openapi_documents_formats_pages_and_406(make_settings: SettingsFactory) -> None:
    spec = create_app(make_settings()).openapi()
    operation = spec["paths"]["/gateway/ocr"]["post"]
    ok = operation["responses"]["200"]
    assert set(ok["content"]) == set(ACCEPTABLE_MEDIA_TYPES)
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OcrResponse"
    }
    assert ok["content"]["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    assert ok["headers"]["Content-Disposition"]["required"] is False
    assert (
        "not_acceptable" in operation["responses"]["406"]["content"]["application/json"]["examples"]
    )
    schemas = spec["components"]["schemas"]
    response = schemas["OcrResponse"]["properties"]
    assert response["pages"]["items"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/PageFacts"},
            {"$ref": "#/components/schemas/PageFailure"},
        ]
    }
    assert response["page_count"]["type"] == "integer"
    assert list(schemas["PageFacts"]["properties"]) == list(contract.PageFacts.model_fields)
    assert "paragraph" in schemas["Word"]["properties"]
    form = schemas["Body_recognise_gateway_ocr_post"]["properties"]

    def enum(field: dict[str, Any]) -> list[str]:
        (choice,) = [s for s in field["anyOf"] if "enum" in s]
        return list(choice["enum"])

    assert enum(form["format"]) == FORMAT_NAMES
    assert enum(form["rotate"]) == list(contract.ROTATE.choices)
    assert {"type": "boolean"} in form["deskew"]["anyOf"]


@pytest.mark.anyio
async def test_browsers_of_allowed_origins_may_read_the_download_name(
    make_settings: SettingsFactory,
) -> None:
    servicer = FakeModelServicer()
    async with gateway_of(
        servicer, make_settings, cors_allow_origins=["https://app.example"]
    ) as client:
        response = await post(client, {"format": "pdf"}, {"Origin": "https://app.example"})
    assert response.status_code == 200
    exposed = response.headers["access-control-expose-headers"].lower().split(", ")
    assert "content-disposition" in exposed
