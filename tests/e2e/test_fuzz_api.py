"""Schemathesis against the gateway's own OpenAPI schema, with the real model behind it.

Bounded here (a few dozen examples per operation); `make fuzz` runs the long profile. Every
generated request must get a documented status (never a 5xx), the documented content type and
a body that matches the response schema.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.e2e.conftest import Platform, start_platform
from tests.support.fuzzing import examples

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("fuzz"))
    yield running
    running.service.stop(signal.SIGINT)


@pytest.fixture(scope="module")
def gateway_schema(fuzzed: Platform) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")


#: No 5xx, documented statuses, content types, headers and bodies. Not "positive data is
#: accepted": any bytes are a schema-valid file, yet only images are accepted (415).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def test_gateway_honours_its_openapi_schema(gateway_schema: schemathesis.BaseSchema) -> None:
    # schemathesis' pytest plugin does not run on pytest 9; its Python API does.
    operations = [result.ok() for result in gateway_schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/gateway/ocr", "/healthz", "/readyz"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples(30),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        )
        def honours_schema(case: Any) -> None:
            case.call_and_validate(timeout=30, checks=CHECKS)

        honours_schema()
