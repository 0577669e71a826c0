"""Hypothesis strategies for what operators, remote applications and secrets can get wrong.

Strategies named ``invalid_*`` only produce values wrong *by construction*, so a test can
require that they change nothing without asking the charm's own code whether they are
valid; the others mix in valid values, for properties that must hold whatever comes in.
"""

from __future__ import annotations

import json
import re
from typing import Any, get_args

import config
import yaml
from fuzz_support import is_json
from hypothesis import strategies as st

INT64 = st.integers(-(2**63), 2**63 - 1)
EDGE_INTS = st.sampled_from((0, -1, 1, 70000, 65535, 65536, 2**31, 2**31 - 1, 2**63 - 1))
# The names the options accept, as the config model declares them.
PRIORITIES: tuple[str, ...] = get_args(config.Priority)
DRIVERS: tuple[str, ...] = get_args(config.Driver)


def huge(min_size: int = 20_000, max_size: int = 300_000) -> st.SearchStrategy[str]:
    """A long run of one character (cheap to build, still huge), or a long random text."""
    return st.one_of(
        st.builds(lambda c, n: c * n, st.characters(), st.integers(min_size, max_size)),
        st.text(min_size=3_000, max_size=5_000),
    )


CONTROL = st.one_of(st.characters(max_codepoint=0x1F), st.just("\x7f")).filter(
    lambda char: not char.isspace()
)
# Characters no one types in an option: ASCII controls (tab and line breaks aside, which
# multi-line options hold), and the unprintable ones beyond ASCII that a program may read
# as a line break or that hide text (NEL, line and paragraph separators, a right-to-left
# override, a zero-width space, a byte order mark).
UNTYPABLE = st.sampled_from(
    [
        *(chr(code) for code in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)),
        *("\x85", "\u2028", "\u2029", "\u202e", "\u200b", "\ufeff"),
    ]
)
# Any text, control characters and NUL included, plus huge values.
ANY_TEXT = st.one_of(st.text(), st.text(st.characters(max_codepoint=0x1F)), huge())
ANY_INT = st.one_of(INT64, EDGE_INTS)


def _yaml_loads(text: str) -> tuple[bool, Any]:
    try:
        return True, yaml.safe_load(text)
    except yaml.YAMLError:
        return False, None


def _not_a_rules_list(text: str) -> bool:
    """True when ``text`` is certainly not a YAML list of rule, macro or list items.

    Falco's YAML library reads a bare ``=`` as text where PyYAML refuses it: texts with ``=``
    are left out rather than judged.
    """
    if "=" in text:
        return False
    loaded, data = _yaml_loads(text)
    if not loaded or data is None:
        return loaded is False
    return not isinstance(data, list) or not all(
        isinstance(item, dict) and item.keys() & {"rule", "macro", "list"} for item in data
    )


_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)

# custom-rules: YAML that does not parse, is not a list, or lists things that are no rules.
INVALID_CUSTOM_RULES = st.one_of(
    st.sampled_from(
        (
            "- rule: [unclosed",
            "rule: not a list",
            "- just a string",
            "- {desc: no rule key}",
            ":\n  - :",
            "\t- rule: tab",
            "- rule: x\n bad indent: y",
            "%YAML 9.9\n---\n[]",
            "- !!python/object:os.system {}",
            "[1, 2, 3]",
        )
    ),
    # An alias nobody defined, with a long name the YAML error quotes.
    st.integers(300, 5_000).map(lambda n: "- rule: *" + "a" * n),
    JSON_VALUES.filter(lambda v: v is not None and not isinstance(v, list)).map(json.dumps),
    st.text(min_size=1),
).filter(_not_a_rules_list)

# Rule items that parse as rules but Falco may refuse: missing keys, wrong types, overrides.
RULE_ITEMS = st.lists(
    st.fixed_dictionaries(
        {"rule": st.text(min_size=1, max_size=40)},
        optional={
            "desc": st.text(max_size=30),
            "condition": st.text(max_size=60),
            "output": st.text(max_size=60),
            "priority": st.one_of(st.sampled_from(PRIORITIES), st.text(max_size=10)),
            "enabled": st.one_of(st.booleans(), st.text(max_size=5)),
            "override": st.dictionaries(
                st.sampled_from(("condition", "output", "exceptions")),
                st.sampled_from(("append", "replace", "x")),
            ),
            "tags": st.lists(st.text(max_size=10), max_size=3),
        },
    ),
    min_size=1,
    max_size=3,
).map(lambda items: yaml.safe_dump(items, allow_unicode=True))

# custom-config-repository: URLs git must never see.
INVALID_REPOSITORY_URLS = st.one_of(
    st.sampled_from(
        (
            "git@git.example:org/rules.git",
            "ftp://git.example/rules.git",
            "file:///etc/passwd",
            "https://user:pass@git.example/rules.git",
            "git+ssh://git.example/rules.git",
            "git+ssh://git@git.example:0/rules.git",
            "git+ssh://git@git.example:70000/rules.git",
            "git+ssh://git@-oProxyCommand=sh/rules.git",
            "git+ssh://git@git.example/rules.git@--upload-pack=sh",
            "git+ssh://git@git.example/../../rules.git",
            "https://git.example/rules.git@a..b",
            "ssh://git@git.example",
        )
    ),
    st.text(min_size=1).filter(lambda t: t.strip() and "://" not in t),
    st.builds(
        lambda scheme, rest: f"{scheme}://{rest}",
        st.sampled_from(("http", "git", "file", "ssh+git", "")),
        st.text(),
    ),
    st.builds(
        "git+ssh://git@git.example/org/rules.git@{}".format,
        st.text(min_size=1).filter(lambda ref: any(c in ref for c in " :~^?*[\\@{")),
    ),
    st.builds(
        "git+ssh://git@git.example:{}/org/rules.git".format,
        st.one_of(st.integers(65536, 99999), st.just(0)),
    ),
    # A ref that is long as well as wrong: the message quoting it must stay short.
    st.builds(
        "https://git.example/rules.git@{}:".format, huge(min_size=300, max_size=5_000)
    ).filter(lambda url: not any(char.isspace() for char in url)),
    # Control characters (NUL included) where the URL form lets any character through.
    st.builds(
        "git+ssh://git{}@git.example/org{}/rules.git@v1".format,
        st.one_of(CONTROL, st.just("")),
        CONTROL,
    ),
    huge().filter(lambda t: t.strip() and "://" not in t),
)
ANY_REPOSITORY_URL = st.one_of(
    INVALID_REPOSITORY_URLS,
    st.builds(
        lambda scheme, user, host, path, ref: f"{scheme}://{user}{host}{path}{ref}",
        st.sampled_from(("git+ssh", "ssh", "https")),
        st.sampled_from(("git@", "")),
        st.sampled_from(("git.example", "git.example:2222", "[::1]", "other.example")),
        st.text(st.characters(exclude_characters="@ \t\n"), max_size=20).map(lambda p: "/" + p),
        st.sampled_from(("", "@v1", "@main", "@" + "0" * 40, "@refs/heads/x")),
    ),
)

# custom-config-repo-known-hosts: lines ssh would not read as host keys.
INVALID_KNOWN_HOSTS = st.one_of(
    st.sampled_from(
        (
            "git.example",
            "git.example ssh-ed25519",
            "git.example ssh-dss AAAAB3NzaC1kc3M=",
            "git.example ssh-ed25519 not*base64!",
            "@marker git.example ssh-ed25519 AAAA",
            "git.example ecdsa-sha2-nistp999 AAAA",
        )
    ),
    st.builds(
        lambda host, key: f"{host} ssh-ed25519 {key}",
        st.text(st.characters(exclude_categories=("Z", "Cc")), min_size=1, max_size=20).filter(
            lambda host: not host.startswith("#")
        ),
        st.text(min_size=1, max_size=30).filter(
            lambda k: not any(c.isspace() for c in k) and any(c in k for c in "!*%$#&()")
        ),
    ),
    # An unknown marker, long enough that quoting it whole would flood the status.
    huge(min_size=300, max_size=5_000).map(
        lambda t: "@x" + "".join(t.split()) + " git.example ssh-ed25519 AAAA"
    ),
    st.text(min_size=1, max_size=40).filter(
        lambda t: (
            any(line.split() and not line.split()[0].startswith("#") for line in t.splitlines())
            and all(len(line.split()) < 3 for line in t.splitlines())
        )
    ),
)
ANY_KNOWN_HOSTS = st.one_of(INVALID_KNOWN_HOSTS, ANY_TEXT, st.just(""))

# Selectors for enabled-rules / disabled-rules: "tag:" needs a tag.
INVALID_SELECTIONS = st.builds(
    lambda before, gap: f"{before},tag:{gap}",
    st.text(st.characters(exclude_characters=",\n"), max_size=20),
    st.sampled_from(("", " ", "\t", "  ")),
)

# Everything a string reaches a charm with, for every string option.
ANY_CONFIG: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {},
    optional={
        "driver": st.one_of(st.sampled_from(DRIVERS), ANY_TEXT),
        "buffer-size-preset": ANY_INT,
        "outputs-queue-capacity": ANY_INT,
        "custom-rules": st.one_of(INVALID_CUSTOM_RULES, RULE_ITEMS, ANY_TEXT),
        "enabled-rules": st.one_of(ANY_TEXT, INVALID_SELECTIONS),
        "disabled-rules": st.one_of(ANY_TEXT, INVALID_SELECTIONS),
        "minimum-priority": st.one_of(st.sampled_from(PRIORITIES), ANY_TEXT),
        "metrics-port": ANY_INT,
        "alert-log": st.booleans(),
        "custom-config-repo-sync-interval": ANY_INT,
    },
)

# -- relation data ---------------------------------------------------------------------------


def _may_be_http(text: str) -> bool:
    """Whether a URL parser could read ``text`` as an http(s) URL.

    It drops tabs and newlines anywhere and control characters around, and reads
    ``http:host`` as ``http://host``.
    """
    cleaned = re.sub(r"[\t\n\r]", "", text).strip("".join(map(chr, range(0x21))))
    return cleaned.lower().startswith("http")


NOT_JSON = st.one_of(
    st.text(min_size=1).filter(lambda t: not is_json(t)),
    huge().filter(lambda t: not is_json(t)),
    st.integers(1_500, 100_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(5_000, 30_000).map(lambda digits: "9" * digits),
)
GOOD_HTTP_URLS = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}:{port}/",
    st.sampled_from(("http", "https")),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,15}){0,2}", fullmatch=True),
    st.integers(1, 65535),
)

# Characters a URL parser drops or chokes on, which a URL must therefore not hold at all.
_NOT_IN_URLS = st.sampled_from(["\n", "\r", "\t", "\x00", "\x0b", " ", "\u00a0", "\u2028", "\x1b"])
# Good URLs made bad in a way only a strict check sees (issue 14): whitespace or a control
# character anywhere, which a loose parser drops (and so checks a URL that is not the one
# used), or longer than the library's 2083 characters.
ALMOST_HTTP_URLS = st.one_of(
    st.builds(
        lambda url, where, char: (
            url[: where % (len(url) + 1)] + char + url[where % (len(url) + 1) :]
        ),
        GOOD_HTTP_URLS,
        st.integers(0, 200),
        _NOT_IN_URLS,
    ),
    st.builds(lambda url, extra: url + "a" * extra, GOOD_HTTP_URLS, st.integers(2084, 2**20)),
)
# URLs a loose parser (urllib) and a strict one (WHATWG-like: pydantic, libcurl) may read
# with different hosts: backslashes, extra "@", fragments and encoded slashes before an
# "@", ports that are not numbers. Some are refused, some are used: when used, what Falco
# gets must name one host whichever parser reads it.
PARSER_SPLIT_URLS = st.builds(
    lambda scheme, first, trick, second, tail: f"{scheme}://{first}{trick}{second}{tail}",
    st.sampled_from(("http", "https", "HTTP", "hTtPs")),
    st.sampled_from(
        ("sidekick.example", "sidekick.example:2801", "u:p@sidekick.example", "[::1]")
    ),
    st.sampled_from(
        ("\\@", "\\", "#@", "?@", "%2f@", "%40", "@", "@@", "/\\", ":2801@", ";@", "%00@", ":x@")
    ),
    st.sampled_from(("elsewhere.example", "elsewhere.example:80", "127.0.0.1", "[::1]", "")),
    st.sampled_from(("/", "", "/path", ":2801/", "\\/")),
)
INVALID_HTTP_URLS = st.one_of(
    st.text().filter(lambda t: "://" not in t and not _may_be_http(t)),
    st.builds(
        lambda scheme, rest: f"{scheme}://{rest}",
        st.sampled_from(("ftp", "file", "ws", "javascript", "gopher", "")),
        st.text(),
    ),
    st.builds(
        "https://sidekick.example:{}/".format,
        st.one_of(st.integers(65536, 10**9).map(str), st.sampled_from(("-1", "x", "1e3"))),
    ),
    st.sampled_from(("http://", "https://[::1/", "//sidekick:2801/", "https://:2801/")),
    huge().map(lambda t: "https://" + t),
    ALMOST_HTTP_URLS,
)
_OTHER_PEM_BODY = st.binary(min_size=1, max_size=200).map(lambda raw: raw.hex())
INVALID_PEM = st.one_of(
    st.text(max_size=100).filter(lambda t: t.strip()),
    huge(),
    _OTHER_PEM_BODY.map(lambda b: f"-----BEGIN CERTIFICATE-----\n{b}\n-----END CERTIFICATE-----"),
    st.just("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
    st.just("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"),
)


def invalid_endpoint_bags(good_ca: str) -> st.SearchStrategy[dict[str, str]]:
    """Provider bags with a URL set that no Falco can use (the CA may be fine or not)."""
    bad_url = st.one_of(
        NOT_JSON,
        JSON_VALUES.filter(lambda v: not isinstance(v, str) and v not in ("", None)).map(
            json.dumps
        ),
        INVALID_HTTP_URLS.map(json.dumps),
    )
    ca = st.one_of(st.just(json.dumps(good_ca)), INVALID_PEM.map(json.dumps), st.just(""))
    broken_url = st.fixed_dictionaries({"url": bad_url}, optional={"ca_cert": ca})
    broken_ca = st.fixed_dictionaries(
        {
            "url": GOOD_HTTP_URLS.map(json.dumps),
            "ca_cert": st.one_of(
                NOT_JSON,
                JSON_VALUES.filter(lambda v: not isinstance(v, str) and v is not None).map(
                    json.dumps
                ),
                INVALID_PEM.map(json.dumps),
            ),
        }
    )
    return st.one_of(broken_url, broken_ca)


# Keys and values anyone can write into a bag.
ANY_BAG = st.dictionaries(
    st.text(min_size=1, max_size=20),
    st.one_of(st.text(), NOT_JSON, JSON_VALUES.map(json.dumps)),
    max_size=4,
)


def any_endpoint_bags(good_ca: str) -> st.SearchStrategy[dict[str, str]]:
    """Provider bags of every kind: broken, partial (keys missing), usable."""
    usable = st.fixed_dictionaries(
        {"url": GOOD_HTTP_URLS.map(json.dumps)},
        optional={"ca_cert": st.just(json.dumps(good_ca))},
    )
    return st.one_of(
        invalid_endpoint_bags(good_ca),
        usable,
        ANY_BAG,
        st.fixed_dictionaries({}, optional={"ca_cert": st.just(json.dumps(good_ca))}),
    )


def certificates_provider_bags(our_csr: str, other_ca: str) -> st.SearchStrategy[dict[str, str]]:
    """tls-certificates provider bags that are broken, or answer our CSR with junk.

    Entries have every field the library requires (so it goes on to parse the PEM) or
    some; request errors and capabilities are garbage too. Never a valid certificate for
    our key: none of these may change what Falco presents.
    """
    pem = st.one_of(INVALID_PEM, st.just(other_ca))
    fields = {
        "certificate_signing_request": st.one_of(st.just(our_csr), INVALID_PEM),
        "certificate": pem,
        "ca": pem,
    }
    optional = {"chain": st.one_of(st.lists(pem, max_size=2), JSON_VALUES), "revoked": JSON_VALUES}
    entry = st.one_of(
        st.fixed_dictionaries(fields, optional=optional),
        st.fixed_dictionaries({}, optional={**fields, **optional}),
    )
    as_json = st.one_of(
        NOT_JSON, JSON_VALUES.filter(lambda v: not isinstance(v, list)).map(json.dumps)
    )
    return st.fixed_dictionaries(
        {"certificates": st.one_of(as_json, st.lists(entry, max_size=3).map(json.dumps))},
        optional={
            "request_errors": st.one_of(as_json, JSON_VALUES.map(json.dumps)),
            "capabilities": st.one_of(as_json, JSON_VALUES.map(json.dumps)),
        },
    )


# -- secrets ---------------------------------------------------------------------------------

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVGzeGMZzHOPJ5vM/OGWcs7ZOf9U9BB36Zi5S5Xx4nD fuzz@host"
)
_FAKE_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n"
WRONG_SSH_KEYS = st.one_of(
    st.just(""),
    st.just(PUBLIC_KEY),
    st.just("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"),
    st.just("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    st.binary(max_size=64).map(lambda raw: raw.decode("latin-1")),
    st.text(max_size=200),
    huge(),
    # Looks like a private key, is not the one the server accepts.
    st.text(st.characters(exclude_characters="-"), min_size=1, max_size=200).map(
        _FAKE_PRIVATE.format
    ),
    huge(max_size=100_000).map(_FAKE_PRIVATE.format),
)
WRONG_TOKENS = st.one_of(
    st.just(""),
    st.sampled_from((" ", "\n", "\t \n")),
    st.text(max_size=100),
    st.binary(max_size=64).map(lambda raw: raw.decode("latin-1")),
    huge(),
)
SECRET_KEYS = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=3, max_size=8)


def secret_contents(values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    """Secret contents with ``value`` wrong, or missing (other keys only)."""
    other_keys = SECRET_KEYS.filter(lambda k: k != "value")
    extra = st.dictionaries(other_keys, ANY_TEXT, max_size=2)
    with_value = st.builds(lambda value, rest: {**rest, "value": value}, values, extra)
    without_value = st.dictionaries(other_keys, ANY_TEXT, min_size=1, max_size=2)
    return st.one_of(with_value, without_value)
