"""The one gRPC status -> HTTP table and the safety of client-facing messages."""

import grpc
import pytest

from gateway.errors import (
    GRPC_STATUS_TABLE,
    PayloadTooLargeError,
    UpstreamError,
    mapping_for,
)

pytestmark = pytest.mark.unit

INTERNAL_DETAILS = (
    "failed to connect to all addresses; last error: ipv4:10.3.4.5:8081 "
    'Traceback (most recent call last): File "/srv/model/predictor.py"'
)


@pytest.mark.parametrize(
    ("grpc_code", "http_status", "code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 422, "invalid_argument"),
        (grpc.StatusCode.UNAVAILABLE, 503, "model_unavailable"),
        (grpc.StatusCode.CANCELLED, 503, "model_unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "model_timeout"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "model_overloaded"),
        (grpc.StatusCode.NOT_FOUND, 502, "model_not_found"),
        (grpc.StatusCode.INTERNAL, 502, "upstream_error"),
        (grpc.StatusCode.UNKNOWN, 502, "upstream_error"),
        (grpc.StatusCode.PERMISSION_DENIED, 502, "upstream_error"),
        (grpc.StatusCode.UNIMPLEMENTED, 502, "upstream_error"),
    ],
)
def test_status_maps_to_http_status_and_code(
    grpc_code: grpc.StatusCode, http_status: int, code: str
) -> None:
    error = UpstreamError(grpc_code, "details")
    assert (error.status, error.code) == (http_status, code)
    assert (mapping_for(grpc_code).http_status, mapping_for(grpc_code).code) == (http_status, code)
    assert error.grpc_code is grpc_code


def test_overloaded_answer_asks_to_retry_after_one_second() -> None:
    assert UpstreamError(grpc.StatusCode.RESOURCE_EXHAUSTED, "").headers == {"Retry-After": "1"}
    assert UpstreamError(grpc.StatusCode.UNAVAILABLE, "").headers == {}


def test_invalid_argument_passes_the_model_message_through() -> None:
    error = UpstreamError(grpc.StatusCode.INVALID_ARGUMENT, "  unknown language 'xx'  ")
    assert error.message == "unknown language 'xx'"


def test_invalid_argument_without_details_has_a_fixed_message() -> None:
    assert UpstreamError(grpc.StatusCode.INVALID_ARGUMENT, "").message == (
        "The model rejected the request."
    )


def test_passed_through_details_are_bounded() -> None:
    assert len(UpstreamError(grpc.StatusCode.INVALID_ARGUMENT, "x" * 10_000).message) == 500


@pytest.mark.parametrize(
    "grpc_code",
    [code for code in grpc.StatusCode if code not in (grpc.StatusCode.INVALID_ARGUMENT,)],
)
def test_other_statuses_never_show_internal_details(grpc_code: grpc.StatusCode) -> None:
    error = UpstreamError(grpc_code, INTERNAL_DETAILS)
    for leak in ("10.3.4.5", "Traceback", "/srv/", "predictor.py", "addresses"):
        assert leak not in error.message
    # ... but the logs get them.
    assert "10.3.4.5" in str(error)


def test_only_invalid_argument_passes_details() -> None:
    passing = {code for code, entry in GRPC_STATUS_TABLE.items() if entry.pass_details}
    assert passing == {grpc.StatusCode.INVALID_ARGUMENT}


def test_payload_too_large_names_the_limit_in_mb() -> None:
    error = PayloadTooLargeError(20 * 1024 * 1024)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "20 MB" in error.message
