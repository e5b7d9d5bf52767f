"""The error classes, the one gRPC status -> error table and the safety of client messages."""

import gc
from collections import defaultdict

import grpc
import pytest

from gateway.errors import (
    GRPC_STATUS_TABLE,
    GatewayError,
    InvalidArgumentError,
    ModelNotFoundError,
    ModelOverloadedError,
    ModelTimeoutError,
    ModelUnavailableError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
    UnknownUpstreamError,
    UpstreamError,
    error_class_for,
    error_classes,
    upstream_error_for,
)

pytestmark = pytest.mark.unit

INTERNAL_DETAILS = (
    "failed to connect to all addresses; last error: ipv4:10.3.4.5:8081 "
    'Traceback (most recent call last): File "/srv/model/predictor.py"'
)

# gRPC statuses deliberately answered by one class: to a client, a cancelled call is as
# unavailable as an unreachable server. Any other sharing is a mistake in the table.
SHARED_CLASSES: dict[type[UpstreamError], set[grpc.StatusCode]] = {
    ModelUnavailableError: {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED},
}


@pytest.mark.parametrize(
    ("grpc_code", "error_class", "http_status", "code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError, 422, "invalid_argument"),
        (grpc.StatusCode.UNAVAILABLE, ModelUnavailableError, 503, "model_unavailable"),
        (grpc.StatusCode.CANCELLED, ModelUnavailableError, 503, "model_unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ModelTimeoutError, 504, "model_timeout"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ModelOverloadedError, 429, "model_overloaded"),
        (grpc.StatusCode.NOT_FOUND, ModelNotFoundError, 502, "model_not_found"),
        (grpc.StatusCode.INTERNAL, UnknownUpstreamError, 502, "upstream_error"),
        (grpc.StatusCode.UNKNOWN, UnknownUpstreamError, 502, "upstream_error"),
        (grpc.StatusCode.PERMISSION_DENIED, UnknownUpstreamError, 502, "upstream_error"),
        (grpc.StatusCode.UNIMPLEMENTED, UnknownUpstreamError, 502, "upstream_error"),
    ],
)
def test_status_maps_to_its_error_class(
    grpc_code: grpc.StatusCode, error_class: type[UpstreamError], http_status: int, code: str
) -> None:
    assert error_class_for(grpc_code) is error_class
    error = upstream_error_for(grpc_code, "details")
    assert type(error) is error_class
    assert isinstance(error, UpstreamError)
    assert (error.status, error.code) == (http_status, code)
    assert (error_class.status, error_class.code) == (http_status, code)
    assert error.grpc_code is grpc_code


@pytest.mark.parametrize("grpc_code", [c for c in grpc.StatusCode if c not in GRPC_STATUS_TABLE])
def test_every_unlisted_status_is_an_upstream_error(grpc_code: grpc.StatusCode) -> None:
    assert type(upstream_error_for(grpc_code, None)) is UnknownUpstreamError


def test_classes_shared_by_statuses_are_the_documented_ones() -> None:
    statuses_of: defaultdict[type[UpstreamError], set[grpc.StatusCode]] = defaultdict(set)
    for grpc_code, error_class in GRPC_STATUS_TABLE.items():
        statuses_of[error_class].add(grpc_code)
    shared = {cls: codes for cls, codes in statuses_of.items() if len(codes) > 1}
    assert shared == SHARED_CLASSES


def test_cancelled_and_unavailable_keep_their_own_messages() -> None:
    unavailable = upstream_error_for(grpc.StatusCode.UNAVAILABLE, INTERNAL_DETAILS)
    cancelled = upstream_error_for(grpc.StatusCode.CANCELLED, INTERNAL_DETAILS)
    assert unavailable.message == "The model server is unavailable; try again later."
    assert cancelled.message == "The model call was cancelled; try again later."


def test_overloaded_answer_asks_to_retry_after_one_second() -> None:
    overloaded = upstream_error_for(grpc.StatusCode.RESOURCE_EXHAUSTED, "")
    assert overloaded.headers == {"Retry-After": "1"}
    assert upstream_error_for(grpc.StatusCode.UNAVAILABLE, "").headers == {}


def test_invalid_argument_passes_the_model_message_through() -> None:
    error = upstream_error_for(grpc.StatusCode.INVALID_ARGUMENT, "  unknown language 'xx'  ")
    assert error.message == "unknown language 'xx'"


def test_invalid_argument_without_details_has_a_fixed_message() -> None:
    assert upstream_error_for(grpc.StatusCode.INVALID_ARGUMENT, "").message == (
        "The model rejected the request."
    )
    assert upstream_error_for(grpc.StatusCode.INVALID_ARGUMENT, None).message == (
        "The model rejected the request."
    )


def test_passed_through_details_are_bounded() -> None:
    error = upstream_error_for(grpc.StatusCode.INVALID_ARGUMENT, "x" * 10_000)
    assert len(error.message) == 500


@pytest.mark.parametrize(
    "grpc_code",
    [code for code in grpc.StatusCode if code not in (grpc.StatusCode.INVALID_ARGUMENT,)],
)
def test_other_statuses_never_show_internal_details(grpc_code: grpc.StatusCode) -> None:
    error = upstream_error_for(grpc_code, INTERNAL_DETAILS)
    for leak in ("10.3.4.5", "Traceback", "/srv/", "predictor.py", "addresses"):
        assert leak not in error.message
    # ... but the logs get them, with the gRPC status.
    assert "10.3.4.5" in str(error)
    assert grpc_code.name in str(error)


def test_only_invalid_argument_passes_details() -> None:
    passing = {code for code, cls in GRPC_STATUS_TABLE.items() if cls.pass_details}
    assert passing == {grpc.StatusCode.INVALID_ARGUMENT}
    assert not UnknownUpstreamError.pass_details


def test_payload_too_large_names_the_limit_in_mb() -> None:
    error = PayloadTooLargeError(20 * 1024 * 1024)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "20 MB" in error.message


def test_access_errors_carry_their_status_code_and_headers() -> None:
    unauthorized = UnauthorizedError("X-API-Key")
    assert (unauthorized.status, unauthorized.code) == (401, "unauthorized")
    assert unauthorized.message == "A valid API key is required in the X-API-Key header."
    limited = RateLimitedError(per_minute=5, retry_after_s=17)
    assert (limited.status, limited.code) == (429, "rate_limited")
    assert limited.message == "Too many requests: the limit is 5 per minute."
    assert limited.headers == {"Retry-After": "17"}


def test_codes_are_unique_across_classes() -> None:
    classes_of: defaultdict[str, list[str]] = defaultdict(list)
    for cls in error_classes():
        classes_of[cls.code].append(cls.__name__)
    assert {code: names for code, names in classes_of.items() if len(names) > 1} == {}


@pytest.mark.parametrize("error_class", error_classes(), ids=lambda cls: cls.code)
def test_every_class_is_documented_and_its_example_is_real(
    error_class: type[GatewayError],
) -> None:
    assert 400 <= error_class.status < 600
    assert error_class.description
    assert "\n" not in error_class.description
    example = error_class.example()
    assert type(example) is error_class
    assert (example.status, example.code) == (error_class.status, error_class.code)
    assert example.message
    assert set(example.headers) == set(error_class.documented_headers)


@pytest.mark.parametrize("abstract", [GatewayError, UpstreamError])
def test_abstract_bases_cannot_be_raised(abstract: type[GatewayError]) -> None:
    assert abstract not in error_classes()
    with pytest.raises(TypeError, match="abstract"):
        abstract.example()


def test_a_half_declared_error_class_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="docstring"):

        class Undocumented(GatewayError):
            status = 418
            code = "teapot"

    with pytest.raises(TypeError, match="status"):

        class NoStatus(GatewayError):
            """Has a code but no status."""

            code = "no_status"

    # The refused classes must not linger among the subclasses the docs are built from.
    gc.collect()
    assert {"teapot", "no_status"}.isdisjoint(cls.code for cls in error_classes())
