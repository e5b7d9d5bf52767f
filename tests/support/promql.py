"""PromQL of the observability files: collect it from dashboards and rule files, and render it.

`dashboard_queries` and `rule_queries` list every expression with the panel or rule it belongs
to; `render` replaces Grafana's variables with concrete values so that Prometheus (or promtool)
can run a dashboard expression as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

#: Values of Grafana's built-in variables when the caller gives none. `$__rate_interval` is
#: Grafana's max(4 x scrape interval, `$__interval` + scrape interval); 1m suits our 5 s scrapes
#: and keeps a few requests inside the window.
GRAFANA_DEFAULTS: Final[Mapping[str, str]] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

# `${name}` / `${name:format}`, `[[name]]` (deprecated syntax) and `$name`.
_VARIABLE: Final = re.compile(
    r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\[\[(?P<bracketed>\w+)\]\]|\$(?P<bare>\w+)"
)


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    title: str
    """The panel's title, or the rule's alert or record name."""
    expr: str
    """The expression as written in the file, Grafana variables included."""
    ref_id: str = ""
    """The Grafana target's refId; empty for rules."""


def dashboard_queries(path: Path) -> list[Query]:
    """Every PromQL target (`expr`) of every panel of a Grafana dashboard JSON file.

    Panels inside rows are included, collapsed (nested under the row) or not. Targets without an
    `expr`, such as TraceQL queries of a Tempo panel, are not PromQL and are left out.
    """
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    queries: list[Query] = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                queries.append(Query(str(panel.get("title", "")), expr, str(target["refId"])))
    return queries


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel of a dashboard, depth first: rows, then the panels nested in them."""

    def walk(panels: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard.get("panels", []))


def rule_queries(path: Path) -> list[Query]:
    """Every `expr` of every alerting and recording rule of a Prometheus rule file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Query(str(rule.get("alert") or rule["record"]), str(rule["expr"]))
        for group in document["groups"]
        for rule in group["rules"]
    ]


def render(expr: str, variables: Mapping[str, str]) -> str:
    """`expr` with every Grafana variable replaced by its value.

    `variables` maps names without the `$` (`{"gateway_job": "ocr-gateway"}`) and may override
    the built-ins of `GRAFANA_DEFAULTS`. Values are inserted as they are (single-value variables,
    Grafana's default format). An unknown variable or a `${name:format}` other than `raw` raises
    `KeyError`/`ValueError`, so that a typo in a dashboard fails loudly instead of sending
    Prometheus a query it cannot parse.
    """
    values = {**GRAFANA_DEFAULTS, **variables}

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("bare")
        fmt = match.group("format")
        if fmt not in (None, "raw"):
            raise ValueError(f"variable format ${{{name}:{fmt}}} is not supported")
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)


@dataclass(frozen=True)
class Selector:
    """One instant or range vector selector of an expression."""

    metric: str
    """The metric name; empty for a selector of matchers only (`{__name__=~"..."}`)."""
    matchers: str
    """The text between the braces, as written; empty for a bare metric name."""


_TOKEN: Final = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<comment>\#[^\n]*)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*)
    | (?P<selector>(?P<metric>[a-zA-Z_:][\w:]*)?\s*\{(?P<matchers>(?:"(?:\\.|[^"\\])*"|[^}"])*)\})
    | (?P<name>[a-zA-Z_:][\w:]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
#: Words that take a parenthesised list of label names, not expressions.
_LABEL_LISTS: Final = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
#: Words of the language that are neither functions nor metric names.
_KEYWORDS: Final = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})


def vector_selectors(expr: str) -> list[Selector]:
    """Every vector selector of a PromQL expression, in order.

    A name followed by `(` is a function or an aggregation, the label names of `by (...)`,
    `on (...)` and friends are skipped, and strings, ranges and comments are not looked into.
    Enough for the expressions of this repository, not a full PromQL parser.
    """
    selectors: list[Selector] = []
    tokens = list(_TOKEN.finditer(expr))
    skip_list = False
    depth = 0
    for index, token in enumerate(tokens):
        if skip_list:
            if token.group("other") == "(":
                depth += 1
            elif token.group("other") == ")":
                depth -= 1
                skip_list = depth > 0
            continue
        if token.group("selector"):
            metric = token.group("metric") or ""
            selectors.append(
                Selector("" if metric in _KEYWORDS else metric, token.group("matchers").strip())
            )
        elif name := token.group("name"):
            following = next(
                (t.group() for t in tokens[index + 1 :] if not t.group().isspace()), ""
            )
            if name in _LABEL_LISTS and following == "(":
                skip_list, depth = True, 0
            elif following not in ("(", "by", "without") and name not in _KEYWORDS:
                selectors.append(Selector(name, ""))
    return selectors


_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)")


def presence_form(expr: str) -> str:
    """An alert expression rewritten to return its series whether or not the alert fires.

    Comparisons outside label matchers get the `bool` modifier (they then yield 0/1 instead of
    filtering), and `absent(x)` becomes `x`. Running the result proves that every series the
    alert watches exists, which the bare expression cannot show while all is well.
    """
    out: list[str] = []
    depth = 0
    quote = ""
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            out.append(char)
            if char == "\\" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
            out.append(char)
        elif char == "{":
            depth += 1
            out.append(char)
        elif char == "}":
            depth -= 1
            out.append(char)
        elif depth == 0 and (match := _COMPARISON.match(expr, i)):
            out.append(f"{match.group(1)} bool")
            i += len(match.group(1))
            continue
        else:
            out.append(char)
        i += 1
    return re.sub(r"\babsent\s*\(", "(", "".join(out))
