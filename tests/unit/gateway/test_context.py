"""Request ids: sane incoming ones are kept, anything else is replaced."""

import re

import pytest

from gateway.context import resolve_request_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("incoming", ["abc", "req-1.2_3", "A" * 64])
def test_sane_incoming_id_is_kept(incoming: str) -> None:
    assert resolve_request_id(incoming) == incoming


@pytest.mark.parametrize(
    "incoming", [None, "", "A" * 65, "a b", "x\r\nSet-Cookie: y", "ünï", "a/b"]
)
def test_other_ids_are_replaced_by_uuid4_hex(incoming: str | None) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", resolve_request_id(incoming))
