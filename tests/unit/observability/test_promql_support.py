"""tests/support/promql.py: PromQL collected from dashboards and rule files, variables rendered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.promql import (
    Query,
    Selector,
    dashboard_queries,
    render,
    rule_queries,
    vector_selectors,
)
from tests.unit.observability.helpers import ALERTS, dump_yaml

pytestmark = pytest.mark.unit


def test_render_replaces_every_variable_syntax() -> None:
    expr = 'x{job=~"$gateway_job|${model_job}", a="[[other]]", b="${other:raw}"}[$__rate_interval]'
    assert render(expr, {"gateway_job": "g", "model_job": "m", "other": "o"}) == (
        'x{job=~"g|m", a="o", b="o"}[1m]'
    )


def test_render_builtins_have_defaults_the_caller_may_override() -> None:
    assert render("[$__interval] [$__range]", {}) == "[15s] [1h]"
    assert render("[$__rate_interval]", {"__rate_interval": "20s"}) == "[20s]"


def test_render_refuses_unknown_variables_and_formats() -> None:
    with pytest.raises(KeyError, match="gateway_jbo"):
        render('up{job="$gateway_jbo"}', {"gateway_job": "g"})
    with pytest.raises(ValueError, match="regex"):
        render('up{job=~"${gateway_job:regex}"}', {"gateway_job": "g"})


def test_dashboard_queries_include_nested_panels_and_skip_other_languages(tmp_path: Path) -> None:
    dashboard = {
        "panels": [
            {"type": "row", "title": "Open", "panels": []},
            {"type": "timeseries", "title": "Top", "targets": [{"refId": "A", "expr": "up"}]},
            {
                "type": "row",
                "title": "Collapsed",
                "collapsed": True,
                "panels": [
                    {
                        "type": "timeseries",
                        "title": "Inner",
                        "targets": [{"refId": "A", "expr": "a"}, {"refId": "B", "expr": "b"}],
                    },
                    {
                        "type": "table",
                        "title": "Traces",
                        "targets": [{"refId": "A", "query": "{}"}],
                    },
                ],
            },
        ]
    }
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(dashboard), encoding="utf-8")
    assert dashboard_queries(path) == [
        Query("Top", "up", "A"),
        Query("Inner", "a", "A"),
        Query("Inner", "b", "B"),
    ]


def test_rule_queries_list_alerts_and_records(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    dump_yaml(
        {
            "groups": [
                {"name": "one", "rules": [{"record": "job:x:rate5m", "expr": "sum(rate(x[5m]))"}]},
                {"name": "two", "rules": [{"alert": "XHigh", "expr": "job:x:rate5m > 1"}]},
            ]
        },
        rules,
    )
    assert rule_queries(rules) == [
        Query("job:x:rate5m", "sum(rate(x[5m]))"),
        Query("XHigh", "job:x:rate5m > 1"),
    ]


def test_rule_queries_of_the_platform_rules() -> None:
    titles = [query.title for query in rule_queries(ALERTS)]
    assert "OcrServiceDown" in titles
    assert "namespace_job_route:ocr_gateway_slow_requests:ratio_rate5m" in titles


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", [Selector("up", "")]),
        (
            'sum by (job, le) (rate(x_bucket{a="}", le="2.5"}[5m])) / on (job) group_left (b) y',
            [Selector("x_bucket", 'a="}", le="2.5"'), Selector("y", "")],
        ),
        (
            'label_replace(vector(0), "code", "none", "", "") or {__name__="up"}',
            [Selector("", '__name__="up"')],
        ),
        (
            "max(x offset 5m30s) without (i) > bool 1e3 and z # not w",
            [Selector("x", ""), Selector("z", "")],
        ),
        (
            'sum(a{n="$namespace"}) by (job) unless b',
            [Selector("a", 'n="$namespace"'), Selector("b", "")],
        ),
    ],
)
def test_vector_selectors(expr: str, expected: list[Selector]) -> None:
    assert vector_selectors(expr) == expected
