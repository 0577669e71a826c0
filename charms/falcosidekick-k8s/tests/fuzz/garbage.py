"""Hypothesis strategies for what operators and remote applications can get wrong.

Strategies named ``invalid_*`` only produce values that are wrong *by construction*, so a
test can require that they change nothing without asking the charm's own code whether they
are valid. The ``any_*`` strategies mix in valid values too, for properties that must hold
whatever comes in.
"""

from __future__ import annotations

import json
from typing import Any

from fuzz_support import is_json
from hypothesis import strategies as st

# Loki, Falco and the ingress write plain URLs; these are what a broken provider writes.
_NOT_HTTP_SCHEMES = ("ftp", "file", "loki", "htp", "javascript", "grpc", "ws", "")


def huge_text(min_size: int = 10_000, max_size: int = 200_000) -> st.SearchStrategy[str]:
    """One character repeated: big values without paying for random generation."""
    return st.builds(
        lambda char, size: char * size,
        st.characters(exclude_characters=":"),
        st.integers(min_size, max_size),
    )


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


# JSON that Python cannot decode: nested too deep (RecursionError), or an integer with too
# many digits (ValueError, but not a JSONDecodeError).
UNDECODABLE_JSON = st.one_of(
    st.integers(2_000, 200_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(5_000, 50_000).map(lambda digits: "7" * digits),
    st.integers(2_000, 50_000).map(lambda depth: '{"url": ' + "[" * depth + "]" * depth + "}"),
)

# Text that is not JSON; "" is left out: an empty value means "not set", not garbage.
NOT_JSON = st.one_of(
    st.text(min_size=1).filter(lambda t: not is_json(t)),
    huge_text().filter(lambda t: not is_json(t)),
    UNDECODABLE_JSON,
)

GOOD_URLS = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}:{port}/loki/api/v1/push",
    st.sampled_from(("http", "https")),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
    st.integers(1, 65535),
)
# Characters a URL parser drops or chokes on, which a URL must therefore not hold at all.
_NOT_IN_URLS = st.sampled_from(["\n", "\r", "\t", "\x00", "\x0b", " ", "\u00a0", "\u2028"])

# Good URLs made bad in a way only the strict check sees (issue 14): whitespace or a
# control character anywhere, or longer than 2083 characters.
ALMOST_URLS = st.one_of(
    st.builds(
        lambda url, where, char: (
            url[: where % (len(url) + 1)] + char + url[where % (len(url) + 1) :]
        ),
        GOOD_URLS,
        st.integers(0, 200),
        _NOT_IN_URLS,
    ),
    st.builds(lambda url, extra: url + "/" + "a" * extra, GOOD_URLS, st.integers(2084, 3 * 2**20)),
)

# Strings that are certainly not an http(s) URL with a host and a valid port.
INVALID_URLS = st.one_of(
    ALMOST_URLS,
    st.text().filter(lambda t: "://" not in t),
    st.builds(
        lambda scheme, rest: f"{scheme}://{rest}", st.sampled_from(_NOT_HTTP_SCHEMES), st.text()
    ),
    st.builds(
        lambda scheme, path: f"{scheme}:///{path}", st.sampled_from(("http", "https")), st.text()
    ),
    st.builds(
        lambda scheme, port: f"{scheme}://loki.example:{port}/loki/api/v1/push",
        st.sampled_from(("http", "https")),
        st.one_of(
            st.integers(65536, 10**12).map(str), st.sampled_from(("-1", "x", "3100a", "1e3"))
        ),
    ),
    st.sampled_from(("http://[::1/loki", "https://:3100/x", "loki:3100", "//loki/push")),
    huge_text(),
)

# A JSON object that should hold ``{"url": <http(s) URL>}`` (ingress, loki_push_api), broken.
INVALID_URL_OBJECTS = st.one_of(
    NOT_JSON,
    JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(json.dumps),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k != "url"), JSON_VALUES, max_size=3).map(
        json.dumps
    ),
    st.fixed_dictionaries({"url": JSON_VALUES.filter(lambda v: not isinstance(v, str))}).map(
        json.dumps
    ),
    st.fixed_dictionaries({"url": INVALID_URLS}).map(json.dumps),
)

ANY_URL_OBJECTS = st.one_of(
    INVALID_URL_OBJECTS, st.fixed_dictionaries({"url": GOOD_URLS}).map(json.dumps), st.just("")
)

# Relation data keys and values anyone can write.
ANY_BAG = st.dictionaries(
    st.text(min_size=1, max_size=30),
    st.one_of(st.text(), NOT_JSON, JSON_VALUES.map(json.dumps)),
    max_size=4,
)
