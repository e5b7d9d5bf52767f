"""The OpenAPI error answers come from the error classes and agree with the README's tables.

The README's "Limits and errors" section is what users read; the OpenAPI schema is what client
generators read. Both must list the same (status, code) pairs, so each table is parsed here and
compared with the schema the app serves.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from gateway.app import create_app
from gateway.errors import GatewayError, NotReadyError, UpstreamError, error_classes
from gateway.routes.errors import EXAMPLE_REQUEST_ID, error_responses
from tests.unit.gateway.helpers import SettingsFactory, assert_error, gateway_client

pytestmark = pytest.mark.unit

README: Final = Path(__file__).resolve().parents[3] / "README.md"
SECTION: Final = "### Limits and errors"
_CODE: Final = re.compile(r"`([a-z_]+)`")

StatusCode = tuple[int, str]


@dataclass(frozen=True)
class ReadmeTable:
    """One Markdown table of the section: its column names and its rows as column → cell."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    def pairs(self, **where: str) -> set[StatusCode]:
        """(status, code) of the rows whose cells equal ``where``; a cell may hold several codes."""
        return {
            (int(row["status"]), code)
            for row in self.rows
            if all(row[column] == value for column, value in where.items())
            for code in _CODE.findall(row["code"])
        }


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def readme_error_tables() -> list[ReadmeTable]:
    """The tables of the README section on limits and errors, in order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(SECTION) + 1
    end = next(
        (i for i in range(start, len(lines)) if lines[i].startswith("#")),
        len(lines),
    )
    tables: list[ReadmeTable] = []
    block: list[str] = []
    for line in [*lines[start:end], ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            columns = tuple(_cells(block[0]))
            # block[1] is the |---| separator row.
            rows = tuple(dict(zip(columns, _cells(row), strict=True)) for row in block[2:])
            tables.append(ReadmeTable(columns, rows))
            block = []
    return tables


def readme_table(*columns: str) -> ReadmeTable:
    """The one table of the section with exactly these columns."""
    matching = [table for table in readme_error_tables() if table.columns == columns]
    assert len(matching) == 1, f"README {SECTION!r} needs one table with columns {columns}"
    return matching[0]


def ocr_table() -> ReadmeTable:
    """The table of every error ``POST /gateway/ocr`` answers."""
    return readme_table("status", "code", "when")


def routes_table() -> ReadmeTable:
    """The table of errors of any route and of the other routes."""
    return readme_table("route", "status", "code", "when")


@pytest.fixture
def spec(make_settings: SettingsFactory) -> dict[str, Any]:
    """The OpenAPI schema of the app (built without its lifespan: no model channel needed)."""
    return create_app(make_settings()).openapi()


def error_pairs(responses: dict[str, Any]) -> set[StatusCode]:
    """(status, code) of every documented error answer, from each status's examples."""
    return {
        (int(status), code)
        for status, response in responses.items()
        if int(status) >= 400
        for code in response["content"]["application/json"]["examples"]
    }


def test_the_ocr_route_documents_exactly_the_readme_table(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/gateway/ocr"]["post"]["responses"]
    readme = ocr_table().pairs()
    assert error_pairs(responses) == readme
    # What the route can answer, so an error dropped from both the README and the route is
    # noticed too.
    assert {status for status, _ in readme} == {
        400, 401, 406, 408, 413, 415, 422, 429, 500, 502, 503, 504
    }  # fmt: skip
    assert {code for status, code in readme if status == 422} == {
        "validation_error",
        "empty_file",
        "too_many_files",
        "invalid_argument",
        "unreadable_document",
        "encrypted_document",
        "unreadable_page",
    }
    assert {code for status, code in readme if status == 429} == {
        "rate_limited",
        "too_many_auth_failures",
        "model_overloaded",
    }
    assert {code for status, code in readme if status == 503} == {
        "model_unavailable",
        "gateway_busy",
    }


def test_readyz_documents_not_ready(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/readyz"]["get"]["responses"]
    assert error_pairs(responses) == {(503, "not_ready")}
    assert routes_table().pairs(route="`GET /readyz`") == {(503, "not_ready")}


@pytest.mark.anyio
async def test_errors_of_any_route_in_the_readme_are_answered(
    make_settings: SettingsFactory,
) -> None:
    assert routes_table().pairs(route="any") == {(404, "not_found"), (405, "method_not_allowed")}
    async with gateway_client(make_settings()) as client:
        assert_error(await client.get("/no/such/route"), 404, "not_found")
        assert_error(await client.get("/gateway/ocr"), 405, "method_not_allowed")


def test_every_readme_code_is_a_class_with_the_same_status() -> None:
    status_of = {cls.code: cls.status for cls in error_classes()}
    readme = ocr_table().pairs() | routes_table().pairs()
    assert {(status_of.get(code), code) for _, code in readme} == readme


@pytest.mark.parametrize(("path", "method"), [("/gateway/ocr", "post"), ("/readyz", "get")])
def test_each_error_status_is_documented_with_schema_examples_and_codes(
    spec: dict[str, Any], path: str, method: str
) -> None:
    classes = {cls.code: cls for cls in error_classes()}
    for status, response in spec["paths"][path][method]["responses"].items():
        if int(status) < 400:
            continue
        content = response["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        for code, example in content["examples"].items():
            cls = classes[code]
            assert cls.status == int(status)
            assert f"`{code}`: {cls.description}" in response["description"]
            body = example["value"]
            assert body == {
                "error": {
                    "code": code,
                    "message": cls.example().message,
                    "request_id": EXAMPLE_REQUEST_ID,
                }
            }


def test_retry_after_is_a_documented_required_header_of_429(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/gateway/ocr"]["post"]["responses"]
    assert responses["429"]["headers"]["Retry-After"]["required"] is True
    assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    # gateway_busy carries Retry-After, model_unavailable does not: documented, not required.
    assert responses["503"]["headers"]["Retry-After"]["required"] is False
    assert "headers" not in responses["504"]


@pytest.mark.anyio
async def test_every_documented_example_matches_the_served_schema(
    make_settings: SettingsFactory,
) -> None:
    async with gateway_client(make_settings()) as client:
        served = (await client.get("/openapi.json")).json()
    properties = served["components"]["schemas"]["ErrorDetail"]["properties"]
    for response in served["paths"]["/gateway/ocr"]["post"]["responses"].values():
        for example in (
            response.get("content", {}).get("application/json", {}).get("examples", {}).values()
        ):
            assert set(example["value"]["error"]) == set(properties)


def test_error_responses_refuses_abstract_and_repeated_classes() -> None:
    for abstract in (GatewayError, UpstreamError):
        with pytest.raises(TypeError, match="abstract"):
            error_responses(abstract)
    with pytest.raises(ValueError, match="twice"):
        error_responses(NotReadyError, NotReadyError)
