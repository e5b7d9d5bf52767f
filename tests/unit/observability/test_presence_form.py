"""The alert rewrite used by the Prometheus e2e test."""

import pytest

from tests.support.promql import presence_form

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up == 0", "up == bool 0"),
        ('x{code!="200",a=~"b"} > 0.05', 'x{code!="200",a=~"b"} > bool 0.05'),
        ("a > bool 1", "a > bool 1"),
        ('absent(up{job="m"})', '(up{job="m"})'),
        ("(a > 14.4 * 0.01) and (b >= 2)", "(a > bool 14.4 * 0.01) and (b >= bool 2)"),
        ('x{le="2.5"} <= 3', 'x{le="2.5"} <= bool 3'),
    ],
)
def test_presence_form(expr: str, expected: str) -> None:
    assert presence_form(expr) == expected
