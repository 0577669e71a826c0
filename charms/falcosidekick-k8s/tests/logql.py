"""Read the label names a LogQL query depends on, and where our dashboards and rules keep them.

Small on purpose: stream selectors ``{name op "value", ...}``, label filters after a parser,
and ``by (...)`` groupings are all the queries of this charm use. The cross-charm test in
the repository's ``tests/`` loads this file too (it needs nothing but the standard library).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_STRING = r'"(?:[^"\\]|\\.)*"'
_MATCHER = re.compile(rf"(\w+)\s*(=~|!~|!=|=)\s*({_STRING})")
# A stream selector: a brace followed by one or more matchers (not a {{template}}).
_SELECTOR = re.compile(
    rf"\{{\s*\w+\s*(?:=~|!~|!=|=)\s*{_STRING}(?:\s*,\s*\w+\s*(?:=~|!~|!=|=)\s*{_STRING})*\s*,?\s*\}}"
)
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_JSON_STAGE = re.compile(r"\|\s*json\b((?:\s*,?\s*\w+\s*=\s*" + _STRING + r")*)")
_LABEL_FILTER = re.compile(rf"\|\s*(\w+)\s*(=~|!~|!=|=)\s*({_STRING})")
# A Grafana variable query: label_values(<selector>, <label>).
_LABEL_VALUES = re.compile(r"label_values\(.*,\s*(\w+)\s*\)\s*$")


@dataclass(frozen=True)
class LogQuery:
    """The label names one LogQL query uses, by where they appear."""

    selectors: list[dict[str, str]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    extracted: set[str] = field(default_factory=set)
    filtered: set[str] = field(default_factory=set)

    @property
    def stream_labels(self) -> set[str]:
        """Label names the stream selectors match on: they must be stream labels."""
        return {name for selector in self.selectors for name in selector}


def _unquote(text: str) -> str:
    return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def parse(expr: str) -> LogQuery:
    """Return the labels ``expr`` selects, extracts, filters on and groups by.

    The label of a Grafana ``label_values(<selector>, <label>)`` query counts as grouped on.
    """
    selectors = [
        {name: _unquote(value) for name, _, value in _MATCHER.findall(match.group(0))}
        for match in _SELECTOR.finditer(expr)
    ]
    extracted: set[str] = set()
    for stage in _JSON_STAGE.finditer(expr):
        names = re.findall(r"(\w+)\s*=", stage.group(1))
        extracted |= set(names) if names else {"*"}
    grouping = {name.strip() for group in _GROUPING.findall(expr) for name in group.split(",")} - {
        ""
    }
    grouping |= set(_LABEL_VALUES.findall(expr))
    filtered = {name for name, _, _ in _LABEL_FILTER.findall(expr)}
    return LogQuery(selectors, grouping, extracted, filtered)


def dashboard_queries(dashboard: dict[str, Any], datasource: str = "${lokids}") -> Iterator[str]:
    """Yield every query of ``dashboard`` that runs on ``datasource``, variables included."""
    for panel in dashboard.get("panels", []):
        source = panel.get("datasource")
        uid = source.get("uid") if isinstance(source, dict) else source
        if uid == datasource:
            yield from (target["expr"] for target in panel.get("targets", []) if "expr" in target)
    for variable in dashboard.get("templating", {}).get("list", []):
        source = variable.get("datasource")
        uid = source.get("uid") if isinstance(source, dict) else source
        if uid == datasource and isinstance(variable.get("query"), str):
            yield variable["query"]


def rule_expressions(rule_file: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(alert name, expression)`` of every rule in a rule file."""
    for group in rule_file.get("groups", []):
        for rule in group.get("rules", []):
            yield rule.get("alert") or rule.get("record", ""), rule["expr"]


def unknown_labels(query: LogQuery, stream_labels: set[str]) -> set[str]:
    """Return the label names ``query`` uses that neither the streams nor its parser give.

    ``stream_labels`` are the labels the streams are known to carry. A selector may only use
    those; groupings and filters may also use what a ``| json`` stage extracted.
    """
    available = stream_labels | query.extracted | {"__error__"}
    if "*" in query.extracted:  # a bare `| json` may extract any name: only selectors count
        return query.stream_labels - stream_labels
    return (
        (query.stream_labels - stream_labels)
        | (query.grouping - available)
        | (query.filtered - available)
    )
