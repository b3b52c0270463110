"""reconciler.render.resolvconf: Docker's own golden files replayed, real host files, validators.

The vectors come from the project's shared/docker-vectors.json (moby/moby's
`libnetwork/internal/resolvconf/resolvconf_test.go` and its `testdata/` golden files, in
our own encoding; see tests/docker_vectors.py). Every "resolvconf" vector either runs here or is excluded, in the
parametrize ids, for a reason listed in EXCLUDED; a vector of a new kind fails
`test_every_resolvconf_vector_runs_or_is_excluded_for_a_known_reason` until handled.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.errors import NetreconcileError
from reconciler.render.resolvconf import (
    HEADER,
    SYSTEMD_RESOLV_CONF,
    HostResolvConf,
    Overrides,
    ResolvConfError,
    parse,
    render,
    render_file,
    source_path,
    validate_dns_search,
    validate_nameserver,
)
from tests.docker_vectors import load_vectors

ETC = "/etc/resolv.conf"

# Why a vector cannot run against this module; nothing else may be excluded.
INTERNAL_RESOLVER = "embedded DNS (internal resolver) transform: netreconcile has no embedded DNS server"
FILE_IO = "writes files and hash files: I/O, which this pure module leaves to its caller"
EXCLUDED = {INTERNAL_RESOLVER, FILE_IO}


def _exclusion(vector: dict) -> str | None:
    given_ = vector["input"]
    if given_.get("transform") == "internal_resolver" or given_.get("internal_resolver"):
        return INTERNAL_RESOLVER
    if str(given_.get("network", "")).startswith("user-defined"):
        return INTERNAL_RESOLVER  # user-defined networks always use the embedded DNS server
    if "steps" in given_:
        return FILE_IO
    return None


def _vector_params() -> list:
    """The vectors this module can express; the excluded ones are not collected at all
    (the guard test below checks that only INTERNAL_RESOLVER and FILE_IO are excluded)."""
    return [pytest.param(v, id=v["name"]) for v in load_vectors("resolvconf") if _exclusion(v) is None]


# --- the vectors, by what they expect -------------------------------------------------------


def _overrides(given_: dict) -> Overrides | None:
    fields = given_.get("overrides")
    return None if fields is None else Overrides(**{k: tuple(v) for k, v in fields.items()})


def _library_output(given_: dict) -> str:
    """What moby's library test does: Parse, Override*, AddOption, transform, Generate."""
    args = {
        "origin_path": given_.get("source_path", ""),
        "overrides": _overrides(given_),
        "legacy": given_.get("transform") == "legacy",
        "ipv6": given_.get("network_ipv6", False),
        "add_options": tuple(filter(None, [given_.get("add_option")])),
    }
    host = parse(given_["host_file"])
    if "header" in given_:
        return render_file(host, header=given_["header"] + "\n\n", **args)
    return render(host, **args)


def _cli_run(given_: dict, flags: list[str]) -> str:
    """A `docker run` on the default bridge (or host mode) with --dns* flags."""
    values = {"--dns": [], "--dns-search": [], "--dns-opt": [], "--net": []}
    for flag in flags:
        name, _, value = flag.partition("=")
        values[name].append(value)
    return render_file(
        parse(given_.get("host_file", "")),  # an empty host file where the test's host is unknown
        origin_path=ETC,
        dns=tuple(values["--dns"]),
        dns_search=tuple(values["--dns-search"]),
        dns_opt=tuple(values["--dns-opt"]),
        legacy=values["--net"] != ["host"],
    )


def _normalized(text: str) -> str:
    # the integration tests' view: '#' lines removed, trimmed, newlines as spaces
    return "\n".join(line for line in text.split("\n") if not line.startswith("#")).strip().replace("\n", " ")


def _long_line_input(description: str) -> str:
    count, char = re.fullmatch(r"one line of (\d+) '(.)' characters followed by a newline", description).groups()
    return char * int(count) + "\n"


def _check_vector(given_: dict, expected: dict) -> None:
    if "generated" in expected:
        assert _library_output(given_) == expected["generated"]
    elif "found" in expected:
        value = parse(given_["host_file"]).option(given_["lookup_option"])
        assert (value is not None, value or "") == (expected["found"], expected["value"])
    elif "error" in expected:
        with pytest.raises(ResolvConfError) as error:
            parse(_long_line_input(given_["host_file_description"]), given_["source_path"])
        assert str(error.value) == expected["error"]
    elif "normalized_file" in expected:
        assert _normalized(_cli_run(given_, given_.get("docker_run", []))) == expected["normalized_file"]
    elif "file_contains" in expected:
        for flags, line in zip(given_["docker_run_variants"], expected["file_contains"], strict=True):
            assert line in _cli_run(given_, flags).split("\n")
    else:
        raise AssertionError(f"no check for a vector expecting {sorted(expected)}")


@pytest.mark.parametrize("vector", _vector_params())
def test_docker_vector(vector):
    _check_vector(vector["input"], vector["expected"])


def test_every_resolvconf_vector_runs_or_is_excluded_for_a_known_reason():
    vectors = load_vectors("resolvconf")
    reasons = [_exclusion(v) for v in vectors]
    assert set(reasons) - {None} <= EXCLUDED
    # the library's golden files: every legacy or untransformed one runs
    generated = [v for v, r in zip(vectors, reasons) if "generated" in v["expected"] and r is None]
    assert len(generated) == 18


# --- real-world host files ---------------------------------------------------------------

GOOGLE_V4 = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
GOOGLE_V6 = "nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"
LEGACY_TRAILER = f"\n# Based on host file: '{ETC}' (legacy)\n"
DEFAULTS_TRAILER = LEGACY_TRAILER + "# Used default nameservers.\n"

REAL_WORLD = [
    pytest.param(
        "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n"
        "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
        {},
        GOOGLE_V4 + "search lan\noptions edns0 trust-ad\n" + DEFAULTS_TRAILER + "# Overrides: []\n",
        id="systemd-stub-only",
    ),
    pytest.param(
        "nameserver 127.0.1.1\n",
        {"ipv6": True},
        GOOGLE_V4 + GOOGLE_V6 + DEFAULTS_TRAILER + "# Overrides: []\n",
        id="dnsmasq-loopback-ipv6-network-gets-ipv6-defaults",
    ),
    pytest.param(
        "nameserver 127.0.0.1\nnameserver ::1\nnameserver ::ffff:127.0.0.1\n",
        {"ipv6": True},
        GOOGLE_V4 + GOOGLE_V6 + DEFAULTS_TRAILER + "# Overrides: []\n",
        id="every-loopback-form-dropped",
    ),
    pytest.param(
        "nameserver 192.168.1.1\nnameserver FE80::1%eth0\nnameserver 2001:DB8::0:53\n",
        {"ipv6": True},
        "nameserver 192.168.1.1\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\n"
        + LEGACY_TRAILER + "# Overrides: []\n",
        id="mixed-v4-v6-with-ipv6-canonical-text",
    ),
    pytest.param(
        "nameserver 192.168.1.1\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\n",
        {},
        "nameserver 192.168.1.1\n" + LEGACY_TRAILER + "# Overrides: []\n",
        id="mixed-v4-v6-without-ipv6",
    ),
    pytest.param(
        "nameserver 2001:db8::53\nnameserver ::ffff:10.0.0.9\n",
        {},
        GOOGLE_V4 + DEFAULTS_TRAILER + "# Overrides: []\n",
        id="ipv6-only-host-without-ipv6-falls-back",
    ),
    pytest.param(
        "nameserver ::ffff:10.0.0.9\n",
        {"ipv6": True},
        "nameserver ::ffff:10.0.0.9\n" + LEGACY_TRAILER + "# Overrides: []\n",
        id="ipv4-mapped-written-the-go-way",
    ),
    pytest.param(
        "nameserver 10.0.0.2\noptions ndots:2\nsearch a.example\noptions timeout:1 attempts:2\n"
        "search b.example c.example\noptions\nsearch\n",
        {},
        "nameserver 10.0.0.2\nsearch b.example c.example\noptions ndots:2 timeout:1 attempts:2\n"
        + LEGACY_TRAILER + "# Overrides: []\n# Option ndots from: host\n",
        id="options-accumulate-last-search-wins-bare-directives-ignored",
    ),
    pytest.param(
        "# hash comment\n; semicolon comment\n\nnameserver 10.0.0.2 # trailing\nsearch corp # not stripped\n"
        "   # indented comment: Docker keeps it, netreconcile drops it (not a directive)\n",
        {},
        "nameserver 10.0.0.2\nsearch corp # not stripped\n" + LEGACY_TRAILER + "# Overrides: []\n",
        id="comments",
    ),
    pytest.param(
        "search first.example\ndomain corp.example\nnameserver 10.0.0.2\n",
        {},
        "nameserver 10.0.0.2\nsearch corp.example\n" + LEGACY_TRAILER + "# Overrides: []\n",
        id="domain-is-search",
    ),
    pytest.param(
        "nameserver 10.0.0.2\r\nsearch corp\r\n",
        {},
        "nameserver 10.0.0.2\nsearch corp\n" + LEGACY_TRAILER + "# Overrides: []\n",
        id="crlf",
    ),
    pytest.param(
        "nameserver 127.0.0.53\nsearch corp\noptions ndots:3\n",
        {"dns": ("127.0.0.1", "::1", "192.0.2.53")},
        "nameserver 127.0.0.1\nnameserver ::1\nnameserver 192.0.2.53\nsearch corp\noptions ndots:3\n"
        + LEGACY_TRAILER + "# Overrides: [nameservers]\n# Option ndots from: host\n",
        id="dns-override-keeps-loopback-and-ipv6",
    ),
    pytest.param(
        "nameserver 10.0.0.2\nsearch corp\n",
        {"dns_search": (".",)},
        "nameserver 10.0.0.2\n" + LEGACY_TRAILER + "# Overrides: [search]\n",
        id="dns-search-dot-hides-host-search",
    ),
    pytest.param(
        "nameserver 10.0.0.2\nsearch corp\n",
        {"dns_search": ("a.example", ".", "b.example")},
        "nameserver 10.0.0.2\nsearch a.example b.example\n" + LEGACY_TRAILER + "# Overrides: [search]\n",
        id="dns-search-replaces-and-drops-dots",
    ),
    pytest.param(
        "nameserver 10.0.0.2\noptions ndots:3 edns0\n",
        {"dns_opt": ("timeout:2",)},
        "nameserver 10.0.0.2\noptions timeout:2\n" + LEGACY_TRAILER + "# Overrides: [options]\n",
        id="dns-opt-replaces-host-ndots-too",
    ),
    pytest.param(
        "nameserver 10.0.0.2\n",
        {"dns_opt": ("ndots:1", "rotate"), "dns": ("1.1.1.1",), "dns_search": ("x.example",)},
        "nameserver 1.1.1.1\nsearch x.example\noptions ndots:1 rotate\n"
        + LEGACY_TRAILER + "# Overrides: [nameservers search options]\n# Option ndots from: override\n",
        id="all-overrides",
    ),
    pytest.param(
        "",
        {},
        GOOGLE_V4 + DEFAULTS_TRAILER + "# Overrides: []\n",
        id="empty-file",
    ),
    pytest.param(
        "sortlist 130.155.160.0/255.255.240.0\nlookup file bind\n  this is junk\nnameserver\n"
        "nameserver 1.2.3.4.5\nnameserver 010.0.0.1\nnameserver 10.0.0.2\n",
        {},
        "nameserver 10.0.0.2\nsortlist 130.155.160.0/255.255.240.0\nlookup file bind\n"
        + LEGACY_TRAILER + "# Invalid nameservers: [1.2.3.4.5 010.0.0.1]\n# Overrides: []\n",
        id="directives-kept-junk-dropped-invalid-listed",
    ),
    pytest.param(
        "nameserver 127.0.0.53\n",
        {"legacy": False, "dns_opt": ("timeout:3",)},
        "nameserver 127.0.0.53\noptions timeout:3\n\n# Based on host file: '/etc/resolv.conf'\n"
        "# Overrides: [options]\n",
        id="host-mode-no-transform",
    ),
]


@pytest.mark.parametrize(("host_text", "args", "expected"), REAL_WORLD)
def test_real_world_host_files(host_text, args, expected):
    assert render(parse(host_text), origin_path=ETC, **args) == expected


def test_empty_spec_lists_keep_the_host_values_but_empty_library_overrides_do_not():
    host = parse("nameserver 10.0.0.2\nsearch corp\noptions rotate\n")
    assert render(host, origin_path=ETC, dns=(), dns_search=(), dns_opt=()) == render(host, origin_path=ETC)
    emptied = render(host, origin_path=ETC, overrides=Overrides((), (), ()))
    assert emptied == LEGACY_TRAILER + "# Overrides: [nameservers search options]\n"


def test_overrides_and_spec_lists_are_exclusive():
    with pytest.raises(TypeError):
        render(HostResolvConf(), origin_path=ETC, dns=("1.1.1.1",), overrides=Overrides())


def test_an_invalid_dns_value_is_an_error_not_a_line():
    with pytest.raises(ResolvConfError, match="IP address is not correctly formatted: 1.2.3"):
        render(HostResolvConf(), origin_path=ETC, dns=("1.2.3",))


def test_render_file_puts_netreconciles_header_first():
    host = parse("nameserver 10.0.0.2\n")
    assert render_file(host, origin_path=ETC) == HEADER + render(host, origin_path=ETC)
    assert HEADER.startswith("# Generated by netreconcile") and HEADER.endswith("apply.\n\n")


def test_parse_keeps_what_docker_keeps():
    host = parse("nameserver FE80::1%eth0\nnameserver bad\nsearch a # b\noptions ndots:1 edns0 ndots:4\nx y\n")
    assert host == HostResolvConf(
        nameservers=("FE80::1%eth0",),
        invalid_nameservers=("bad",),
        search=("a", "#", "b"),
        options=("ndots:1", "edns0", "ndots:4"),
        other=("x y",),
    )
    assert (host.option("ndots"), host.option("edns0"), host.option("rotate")) == ("4", "", None)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("root:x:0:0:root:/root:/bin/bash", id="passwd-line"),
        pytest.param("root:$6$salt$hash:19000:0:99999:7:::", id="shadow-line"),
        pytest.param("user:x:1000:1000:A User,,,:/home/user:/bin/bash", id="passwd-line-with-spaces"),
        pytest.param("-----BEGIN OPENSSH PRIVATE KEY-----", id="key-armour"),
        pytest.param("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW=", id="base64"),
        pytest.param("  indented directive", id="indented"),
        pytest.param("\tindented directive", id="tab-indented"),
        pytest.param("key=value", id="assignment"),
        pytest.param("[section]", id="ini-section"),
        pytest.param("_private value", id="word-not-starting-with-a-letter"),
        pytest.param("AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C7okWi0dh2l9GKJl", id="one-word"),
        pytest.param("word ", id="no-argument-only-a-space"),
        pytest.param("word \x1b[31mred", id="control-character-in-arguments"),
        pytest.param("word caf\u00e9", id="non-ascii-arguments"),
        pytest.param("word\u00a0nbsp-separated", id="go-space-separator-not-ascii"),
    ],
)
def test_a_line_not_shaped_like_a_directive_is_dropped(line):
    host = parse(f"nameserver 10.0.0.2\n{line}\nsortlist 10.0.0.0\n")
    assert host.other == ("sortlist 10.0.0.0",)
    assert line not in render(host, origin_path=ETC)


@pytest.mark.parametrize(
    "line", ["sortlist 130.155.160.0/255.255.240.0", "lookup file bind", "family inet4", "x y", "my_opt-2\ta\tb "]
)
def test_a_directive_line_is_kept_verbatim(line):
    assert parse(line + "\n").other == (line,)


def test_fields_split_on_go_whitespace_only():
    # Go's strings.Fields keeps \x1c inside a field and splits on NBSP; str.split() differs
    host = parse("search a\x1cb\u00a0c\n")
    assert host.search == ("a\x1cb", "c")


# --- the line length limit ----------------------------------------------------------------


def test_a_too_long_line_is_dockers_error():
    with pytest.raises(ResolvConfError) as error:
        parse("nameserver 10.0.0.1\n" + "a" * 65537 + "\n", ETC)
    assert str(error.value) == f"failed to parse resolv.conf from {ETC}: line too long (exceeds 65536)"
    assert isinstance(error.value, ValueError) and isinstance(error.value, NetreconcileError)


@pytest.mark.parametrize(
    ("line", "too_long"),
    [
        pytest.param("a " + "a" * 65533, False, id="65535-bytes-fit-with-the-newline"),
        pytest.param("a " + "a" * 65534, True, id="65536-bytes-leave-no-room-for-the-newline"),
        pytest.param("é" * 32768, True, id="bytes-not-characters"),
        pytest.param("a" * 65535 + "\r", True, id="carriage-return-counts"),
    ],
)
def test_line_limit_is_go_scanners(line, too_long):
    if too_long:
        with pytest.raises(ResolvConfError):
            parse(line + "\n")
    else:
        assert parse(line + "\n").other == (line,)


# --- which host file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_text", "systemd_exists", "expected"),
    [
        pytest.param("nameserver 127.0.0.53\noptions edns0\n", True, SYSTEMD_RESOLV_CONF, id="stub-only"),
        pytest.param("nameserver 127.0.0.53\n", False, ETC, id="stub-only-but-no-systemd-file"),
        pytest.param("nameserver 127.0.0.53\nnameserver 10.0.0.2\n", True, ETC, id="stub-and-another"),
        pytest.param("nameserver 127.0.0.53\nnameserver bogus\n", True, SYSTEMD_RESOLV_CONF,
                     id="invalid-servers-do-not-count"),
        pytest.param("#nameserver 127.0.0.53\n", True, ETC, id="commented-out"),
        pytest.param("nameserver ::ffff:127.0.0.53\n", True, ETC, id="mapped-stub-is-another-address"),
        pytest.param("nameserver 127.0.0.1\n", True, ETC, id="other-loopback"),
        pytest.param("", True, ETC, id="empty"),
        pytest.param("nameserver 127.0.0.53\n" + "a" * 70000, True, ETC, id="unparsable"),
    ],
)
def test_source_path(host_text, systemd_exists, expected):
    assert source_path(host_text, ETC, systemd_exists) == expected


# --- validators ---------------------------------------------------------------------------


def _dns_search_cases() -> list:
    cases = []
    for vector in load_vectors("dns-search"):
        for verdict in ("valid", "invalid"):
            for domain in vector["input"][verdict]:
                if domain.startswith("<"):  # a placeholder for a name too long to list
                    domain = ".".join(["a" * 63] * 4)  # 255 characters
                cases.append(pytest.param(domain, verdict == "valid", id=f"{verdict}:{domain[:24]!r}"))
    return cases


@pytest.mark.parametrize(("domain", "valid"), [
    *_dns_search_cases(),
    pytest.param("foo.17", True, id="letter-anywhere-is-enough-as-in-docker"),
    pytest.param("x" * 254, True, id="254-characters"),
    pytest.param("x" * 254 + ".", True, id="254-characters-and-trailing-dot"),
    pytest.param("x" * 255, False, id="255-characters"),
    pytest.param("a..b", False, id="empty-label"),
    pytest.param("a:b", False, id="colon-rejected"),
    pytest.param("foo bar", False, id="inner-space"),
    pytest.param("foo_bar", False, id="underscore"),
])
def test_validate_dns_search(domain, valid):
    assert (validate_dns_search(domain) is None) == valid


def test_dns_search_error_says_why():
    assert validate_dns_search("17") == "'17' is not a valid DNS search domain: it has no letter " \
                                        "(an all-numeric name is not a domain)"


# Docker's domain regex (opts.go), with its `(:?` typos read as the `(?:` they mean.
_DOCKER_DOMAIN = re.compile(
    r"((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))*)\.?"
)


def _docker_accepts(domain: str) -> bool:
    match = _DOCKER_DOMAIN.fullmatch(domain)
    return domain == "." or bool(re.search("[a-zA-Z]", domain) and match and len(match[1]) < 255)


@given(st.text(alphabet="ab19-.", max_size=12))
def test_validate_dns_search_agrees_with_dockers_regex(domain):
    assert (validate_dns_search(domain) is None) == _docker_accepts(domain)


@pytest.mark.parametrize(("text", "valid"), [
    pytest.param("192.0.2.53", True, id="ipv4"),
    pytest.param("127.0.0.1", True, id="loopback-allowed"),
    pytest.param("2001:DB8::53", True, id="ipv6"),
    pytest.param("fe80::1%eth0", True, id="ipv6-zone"),
    pytest.param("::ffff:10.0.0.1", True, id="ipv4-mapped"),
    pytest.param("", False, id="empty"),
    pytest.param("1.2.3.4.5", False, id="five-octets"),
    pytest.param("010.0.0.1", False, id="leading-zero"),
    pytest.param("[::1]", False, id="brackets"),
    pytest.param("fe80::1%", False, id="empty-zone"),
    pytest.param("10.0.0.1%eth0", False, id="ipv4-zone"),
    pytest.param(" 10.0.0.1", False, id="space"),
    pytest.param("dns.example", False, id="hostname"),
])
def test_validate_nameserver(text, valid):
    error = validate_nameserver(text)
    assert (error is None) == valid
    assert valid or error == f"IP address is not correctly formatted: {text}"


@given(st.text(alphabet="nameserv ocharltip#;\n\t:.%0123456789abcdef", max_size=120), st.booleans())
def test_legacy_output_always_has_a_nameserver_and_the_trailer(text, ipv6):
    out = render(parse(text), origin_path=ETC, ipv6=ipv6)
    assert out.startswith("nameserver ") and f"# Based on host file: '{ETC}' (legacy)\n" in out
