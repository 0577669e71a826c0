"""Run the log part of a LogQL query on log lines, the way Loki filters them.

No Loki runs in these tests, yet the shipped Loki rules and dashboards decide what counts as
an intrusion with their pipelines. This evaluates the subset they use, with Loki's
semantics: a stream selector ``{name op "value", ...}``, line filters ``|= "text"`` and
``!= "text"``, ``| json`` with or without ``name="field"`` pairs (nested fields flattened
with ``_``, as Loki does), ``| __error__=""`` (the line was JSON), and label filters
``| name op "value"`` with ``=``, ``!=``, ``=~`` and ``!~`` (regular expressions anchored at
both ends, as in Loki). A stage it does not know fails the test instead of being skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_STRING = r'"((?:[^"\\]|\\.)*)"'
_MATCHER = re.compile(rf"\s*(\w+)\s*(=~|!~|!=|=)\s*{_STRING}\s*,?")
_LINE_FILTER = re.compile(rf"\s*(\|=|!=|\|~|!~)\s*{_STRING}")
_JSON = re.compile(r"\s*\|\s*json\b((?:\s*,?\s*\w+\s*=\s*" + r'"(?:[^"\\]|\\.)*"' + r")*)")
_LABEL_FILTER = re.compile(rf"\s*\|\s*(\w+)\s*(=~|!~|!=|=)\s*{_STRING}")
_PAIR = re.compile(rf"(\w+)\s*=\s*{_STRING}")


@dataclass(frozen=True)
class Entry:
    """One log line of a stream, and the stream's labels."""

    labels: dict[str, str]
    line: str


def _unquote(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")


def _compare(value: str, op: str, wanted: str) -> bool:
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    matched = re.fullmatch(wanted, value) is not None
    return matched if op == "=~" else not matched


def _flatten(prefix: str, value: Any, into: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), item, into)
    elif value is None:
        into[prefix] = ""
    else:
        into[prefix] = value if isinstance(value, str) else json.dumps(value)


def _json_stage(labels: dict[str, str], line: str, pairs: str) -> dict[str, str]:
    try:
        data = json.loads(line)
    except ValueError:
        return {**labels, "__error__": "JSONParserErr"}
    if not isinstance(data, dict):
        return {**labels, "__error__": "JSONParserErr"}
    flat: dict[str, str] = {}
    _flatten("", data, flat)
    wanted = {name: _unquote(path) for name, path in _PAIR.findall(pairs)}
    if not wanted:
        return {**labels, **{re.sub(r"\W", "_", k): v for k, v in flat.items()}}
    extracted = {name: flat.get(path.replace(".", "_"), "") for name, path in wanted.items()}
    return {**labels, **extracted}


def _selector(query: str) -> tuple[list[tuple[str, str, str]], str]:
    """Return the stream matchers of ``query`` and the pipeline after them."""
    query = query.strip()
    if not query.startswith("{"):
        raise ValueError(f"not a log query: {query[:40]!r}")
    end = query.index("}")
    body, rest = query[1:end], query[end + 1 :]
    matchers = [(name, op, _unquote(value)) for name, op, value in _MATCHER.findall(body)]
    return matchers, rest


def _entry_passes(entry: Entry, matchers: list[tuple[str, str, str]], pipeline: str) -> bool:
    if not all(_compare(entry.labels.get(n, ""), op, v) for n, op, v in matchers):
        return False
    labels, rest = dict(entry.labels), pipeline
    while rest.strip():
        if match := _LINE_FILTER.match(rest):
            op, text = match.group(1), _unquote(match.group(2))
            keep = {
                "|=": text in entry.line,
                "!=": text not in entry.line,
                "|~": re.search(text, entry.line) is not None,
                "!~": re.search(text, entry.line) is None,
            }[op]
        elif match := _JSON.match(rest):
            labels, keep = _json_stage(labels, entry.line, match.group(1)), True
        elif match := _LABEL_FILTER.match(rest):
            name, op, value = match.group(1), match.group(2), _unquote(match.group(3))
            keep = _compare(labels.get(name, ""), op, value)
        else:
            raise ValueError(f"stage not understood here: {rest.strip()[:60]!r}")
        if not keep:
            return False
        rest = rest[match.end() :]
    return True


def select(query: str, entries: Iterable[Entry]) -> list[Entry]:
    """Return the entries the log query ``query`` keeps, in order."""
    matchers, pipeline = _selector(query)
    return [entry for entry in entries if _entry_passes(entry, matchers, pipeline)]


def log_query(metric_query: str) -> str:
    """Return the log query inside a metric query's ``count_over_time(... [range])``."""
    start = metric_query.index("count_over_time(") + len("count_over_time(")
    inner = metric_query[start:]
    return inner[: inner.rindex("[")].strip()
