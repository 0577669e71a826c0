"""Just enough PromQL for the tests: the metrics an expression selects, and scoping.

Scoping adds label matchers to every selector, the way the receiving Prometheus scopes the
rules we send. Not a parser: it knows the shapes our dashboards and rules use (aggregations with
``by (...)``, functions, ranges, ``offset``, string arguments, set operators) and fails
loudly on anything it cannot place, so a new shape shows up as a test failure, not as a
silently skipped metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|s|m|h|d|w|y)*", re.IGNORECASE)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"offset", "bool", "and", "or", "unless"}
_AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
}
_PUNCTUATION = set("()[],+-*/%^<>=!~ \t\n")


def _selectors(expr: str) -> Iterator[tuple[int, int, str, bool]]:
    """Yield (start, end, metric name, has braces) for every vector selector in ``expr``."""
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'":
            match = _STRING.match(expr, i)
            assert match, f"unterminated string at {i} in {expr!r}"
            i = match.end()
        elif char == "[":
            i = expr.index("]", i) + 1
        elif char == "$":
            # A Grafana variable ($__rate_interval after offset): no selector.
            match = _IDENT.match(expr, i + 1)
            assert match, f"a bare $ at {i} in {expr!r}"
            i = match.end()
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            match = _NUMBER.match(expr, i)
            assert match
            i = match.end()
        elif _IDENT.match(expr, i):
            i = yield from _identifier(expr, i)
        elif char in _PUNCTUATION:
            i += 1
        else:
            raise AssertionError(f"cannot read {expr[i:]!r}")


def _identifier(expr: str, start: int) -> Iterator[tuple[int, int, str, bool]]:
    match = _IDENT.match(expr, start)
    assert match
    name, end = match.group(), match.end()
    rest = expr[end:].lstrip()
    if name in _GROUPING:
        # A list of label names follows (it may be empty, as in "on()").
        close = expr.index(")", expr.index("(", end))
        return close + 1
    if name in _KEYWORDS or name in _AGGREGATIONS or rest.startswith("("):
        return end
    if rest.startswith("{"):
        close = expr.index("}", end)
        yield start, close + 1, name, True
        return close + 1
    yield start, end, name, False
    return end


def selectors(expr: str) -> list[str]:
    """Return the metric name of each vector selector in ``expr``, in order."""
    return [name for _, _, name, _ in _selectors(expr)]


def metric_names(expr: str) -> set[str]:
    """Return the names of every metric ``expr`` selects."""
    return set(selectors(expr))


def inject(expr: str, matchers: Mapping[str, str]) -> str:
    """Return ``expr`` with ``matchers`` (label equalities) added to every selector."""
    added = ",".join(f'{label}="{value}"' for label, value in matchers.items())
    pieces, last = [], 0
    for start, end, name, braces in _selectors(expr):
        pieces.append(expr[last:start])
        if braces:
            inside = expr[start + len(name) + 1 : end - 1].strip()
            pieces.append(f"{name}{{{inside + ',' if inside else ''}{added}}}")
        else:
            pieces.append(f"{name}{{{added}}}")
        last = end
    pieces.append(expr[last:])
    return "".join(pieces)
