"""reconciler.render.hostsfile against Docker's own test vectors and a hand-written table.

The vectors of areas "etchosts", "add-host" and "hostname" in docker-vectors.json
are converted to calls of this module. `exclusion` is the one filter: it names the
vectors that describe something other than a from-scratch build of the file
(in-place edits, connect/disconnect history, other network modes) and why.
Where a vector leaves a value to the running daemon (container IP, short ID), the
SAMPLE_* values stand in for it.
"""

from __future__ import annotations

import ipaddress
import re

import pytest

from reconciler.render.hostsfile import (
    ExtraHostError,
    HostEntry,
    extra_host_from_mapping,
    link_entry,
    name_string,
    parse_extra_host,
    render_hostname,
    render_hosts,
    validate_hostname,
)
from tests.docker_vectors import load_vectors

AREAS = ("etchosts", "add-host", "hostname")
SAMPLE_SHORT_ID = "0123456789ab"
SAMPLE_IPV4 = "172.17.0.2"
SAMPLE_GLOBAL_IPV6 = "fdc8:ffe2:d8d7:1234::2"

HEAD = "127.0.0.1\tlocalhost\n"
IPV6_DEFAULTS = (
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)


def exclusion(vector: dict) -> str | None:
    """Why a vector is not about a from-scratch build of the files, or None if it is."""
    given = vector["input"]
    if {op for op, _ in given.get("ops", [])} & {"Update", "Delete"}:
        return "edits an existing file in place (Update/Delete); netreconcile rebuilds the whole file"
    if "step" in given:
        return "line order depends on connect/disconnect history; netreconcile has none"
    if "--net=host" in given.get("docker_run", []):
        return "host network mode, not the default bridge"
    return None


VECTORS = load_vectors(*AREAS)
INCLUDED = [v for v in VECTORS if exclusion(v) is None]


def _records(pairs) -> tuple[HostEntry, ...]:
    return tuple(HostEntry(ip, tuple(names.split(" "))) for names, ip in pairs)


def _hosts(own=(), hostname=SAMPLE_SHORT_ID, domainname=None, **rest) -> str:
    return render_hosts(own_addresses=tuple(own), hostname=hostname, domainname=domainname, **rest)


def _check_build(given, expected):
    ipv6 = given["op"] == "Build"
    assert _hosts(extra_hosts=_records(given["records"]), ipv6=ipv6) == expected["content"]


def _check_build_then_add(given, expected):
    # Add appends after Build, so the same records built at once give the same file
    records = _records(pair for _, pairs in given["ops"] for pair in pairs)
    assert expected["contains"] in _hosts(extra_hosts=records, ipv6=True)


def _check_ipv6_template(given, expected):
    ipv6 = given.get("sysctls", {}).get("net.ipv6.conf.all.disable_ipv6") != "1"
    content = _hosts(own=(SAMPLE_IPV4, SAMPLE_GLOBAL_IPV6), ipv6=ipv6)
    assert content == expected["content_template"].format(
        IPv4=SAMPLE_IPV4, GlobalIPv6=SAMPLE_GLOBAL_IPV6, hostname=SAMPLE_SHORT_ID
    )


def _run_flags(args: list[str]) -> dict[str, list[str]]:
    flags: dict[str, list[str]] = {}
    items = iter(args)
    for arg in items:
        flag, equals, value = arg.partition("=")
        flag = {"-h": "--hostname"}.get(flag, flag)
        flags.setdefault(flag, []).append(value if equals else next(items))
    return flags


def _check_docker_run(given, expected):
    flags = _run_flags(given["docker_run"])
    hostname = flags.get("--hostname", [SAMPLE_SHORT_ID])[-1]
    extra = tuple(parse_extra_host(item) for item in flags.get("--add-host", []))
    content = _hosts(own=(SAMPLE_IPV4,), hostname=hostname, extra_hosts=extra)
    if "line" in expected:
        assert expected["line"] in content.splitlines()
    if "etc_hosts_contains" in expected:
        assert expected["etc_hosts_contains"] in content
    if "etc_hostname" in expected:
        assert render_hostname(hostname) == expected["etc_hostname"] + "\n"
    if given.get("cmd") == "hostname":
        # Docker sets the UTS hostname to the same string it writes to /etc/hostname
        assert render_hostname(hostname) == expected["stdout"] + "\n"


def _check_links_after_restart(given, expected):
    child = re.search(r"--name (\S+)", given["steps"][0]).group(1)
    links = re.findall(r"--link (\S+):(\S+)", given["steps"][1])
    for child_ip in (SAMPLE_IPV4, "172.17.0.3"):  # before and after the child's restart
        entries = tuple(
            link_entry(child_ip, alias, child, SAMPLE_SHORT_ID) for target, alias in links if target == child
        )
        content = _hosts(own=("172.17.0.4",), links=entries)
        for pattern in expected["regex_checks_in_two_etc_hosts"]:
            assert re.search(pattern, content).group(1) == child_ip


def _api_entry(api_value: str) -> HostEntry:
    name, _, address = api_value.partition(":")
    # the CLI keeps the address as typed; the 28+ daemon writes it canonical
    return HostEntry(address if address == "host-gateway" else str(ipaddress.ip_address(address)), (name,))


def _check_cli_add_host(given, expected):
    if "error" in expected:
        with pytest.raises(ExtraHostError) as raised:
            parse_extra_host(given["flag_value"])
        assert str(raised.value) == expected["error"]
    else:
        assert parse_extra_host(given["flag_value"]) == _api_entry(expected["api_value"])


def _check_daemon_add_host(given, expected):
    for item in given["valid"]:
        assert parse_extra_host(item) == _api_entry(item)
    for item, message in zip(given["invalid"], expected["invalid_errors_contain"], strict=True):
        with pytest.raises(ExtraHostError, match=message):
            parse_extra_host(item)


def converter(vector: dict):
    """The check that a vector's input and expectation turn into, chosen by the vector's fields."""
    given = vector["input"]
    if given.get("op") in ("Build", "BuildNoIPv6"):
        return _check_build
    if "ops" in given:
        return _check_build_then_add
    if "content_template" in vector["expected"]:
        return _check_ipv6_template
    if "docker_run" in given:
        return _check_docker_run
    if "steps" in given:
        return _check_links_after_restart
    if "flag_value" in given:
        return _check_cli_add_host
    if "valid" in given:
        return _check_daemon_add_host
    raise AssertionError(f"no conversion for vector {vector['name']!r}")


@pytest.mark.parametrize("vector", INCLUDED, ids=[v["name"] for v in INCLUDED])
def test_docker_vector(vector):
    converter(vector)(vector["input"], vector["expected"])


EXPECTED_EXCLUSIONS = {
    "TestUpdate", "TestUpdateIgnoresPrefixedHostname", "TestDeleteIgnoresPrefixedHostname", "TestDelete",
    "TestRunAddHostInHostMode", "TestRunHostnameInHostMode",
}


def test_only_the_expected_vectors_are_excluded():
    excluded = {v["name"] for v in VECTORS if exclusion(v)}
    history = {name for name in excluded if name.startswith("TestEtcHostsDisconnect/")}
    assert excluded - history == EXPECTED_EXCLUSIONS & {v["name"] for v in VECTORS}


WEB = HostEntry("10.0.0.5", ("web", "webhost"))
CACHE_V6 = HostEntry("2001:db8::7", ("cache",))

RENDER_CASES = [
    pytest.param({"own": ("10.0.0.2",), "hostname": "c1"}, HEAD + "10.0.0.2\tc1\n", id="own-line"),
    pytest.param({"own": ("10.0.0.2",), "hostname": "foo", "domainname": "ex.com"},
                 HEAD + "10.0.0.2\tfoo.ex.com foo\n", id="domainname"),
    pytest.param({"own": ("10.0.0.2",), "hostname": "c1.invalid"}, HEAD + "10.0.0.2\tc1.invalid c1\n",
                 id="fqdn-hostname"),
    pytest.param({"own": ("10.0.0.2", "10.1.0.2"), "hostname": "c1"}, HEAD + "10.0.0.2\tc1\n10.1.0.2\tc1\n",
                 id="own-lines-in-endpoint-order"),
    pytest.param({"own": ("10.0.0.2",), "hostname": "c1", "domainname": ""}, HEAD + "10.0.0.2\tc1\n",
                 id="empty-domainname-is-unset"),
    pytest.param({"own": ("10.0.0.2",), "hostname": "c1", "links": (WEB,),
                  "extra_hosts": (HostEntry("192.0.2.9", ("b",)), HostEntry("192.0.2.1", ("a", "a2")))},
                 HEAD + "192.0.2.9\tb\n192.0.2.1\ta a2\n10.0.0.5\tweb webhost\n10.0.0.2\tc1\n",
                 id="extra-hosts-in-order-then-links-then-own"),
    pytest.param({"own": ("10.0.0.2", "2001:db8::2"), "hostname": "c1", "extra_hosts": (CACHE_V6,)},
                 HEAD + "10.0.0.2\tc1\n", id="ipv6-off-drops-every-ipv6-line"),
    pytest.param({"own": ("10.0.0.2", "2001:db8::2"), "hostname": "c1", "extra_hosts": (CACHE_V6,), "ipv6": True},
                 HEAD + IPV6_DEFAULTS + "2001:db8::7\tcache\n10.0.0.2\tc1\n2001:db8::2\tc1\n", id="ipv6-on"),
    pytest.param({"own": (), "hostname": "c1", "ipv6": True,
                  "extra_hosts": (HostEntry("2001:DB8:0:0:0:0:0:1", ("x",)), HostEntry("::ffff:192.0.2.1", ("m",)))},
                 HEAD + IPV6_DEFAULTS + "2001:db8::1\tx\n::ffff:192.0.2.1\tm\n", id="canonical-addresses"),
    pytest.param({"own": (), "hostname": "c1"}, HEAD, id="no-endpoints"),
]


@pytest.mark.parametrize(("arguments", "expected"), RENDER_CASES)
def test_render_hosts(arguments, expected):
    assert _hosts(**arguments) == expected


@pytest.mark.parametrize("address", ["host-gateway", "10.0.0.300", "fe80::1%eth0"])
def test_render_hosts_rejects_what_is_not_an_address(address):
    with pytest.raises(ValueError, match=re.escape(address)):
        _hosts(extra_hosts=(HostEntry(address, ("x",)),))


@pytest.mark.parametrize(
    ("hostname", "domainname", "expected"),
    [
        pytest.param("foo", None, "foo", id="plain"),
        pytest.param("c1.invalid", None, "c1.invalid c1", id="fqdn"),
        pytest.param("foo", "ex.com", "foo.ex.com foo", id="domainname"),
        pytest.param("a.b", "c", "a.b.c a", id="both-dotted"),
    ],
)
def test_name_string(hostname, domainname, expected):
    assert name_string(hostname, domainname) == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param(("172.17.0.3", "db", "db", "db-host"), ("db", "db-host"), id="alias-is-name"),
        pytest.param(("172.17.0.3", "onetwo", "one", "0123456789ab"), ("onetwo", "0123456789ab", "one"),
                     id="alias-differs-from-name"),
        pytest.param(("172.17.0.3", "db", "postgres", "db", ("pg", "db", "postgres")), ("db", "postgres", "pg"),
                     id="target-aliases-without-repeats"),
        pytest.param(("2001:DB8::3", "db", "db", "h"), ("db", "h"), id="ipv6-address"),
    ],
)
def test_link_entry(arguments, expected):
    entry = link_entry(*arguments)
    assert entry.names == expected
    assert entry.address == arguments[0].lower()


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param("db:10.0.0.9", HostEntry("10.0.0.9", ("db",)), id="colon"),
        pytest.param("db=10.0.0.9", HostEntry("10.0.0.9", ("db",)), id="equals"),
        pytest.param("h:::1", HostEntry("::1", ("h",)), id="first-colon-splits"),
        pytest.param("h:[2001:DB8::1]", HostEntry("2001:db8::1", ("h",)), id="colon-brackets"),
        pytest.param("h=[0:0:0:0:0:0:0:1]", HostEntry("::1", ("h",)), id="equals-brackets-canonical"),
        pytest.param("gw:host-gateway", HostEntry("host-gateway", ("gw",)), id="host-gateway-unresolved"),
    ],
)
def test_parse_extra_host(item, expected):
    assert parse_extra_host(item) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        pytest.param(":10.0.0.1", 'bad format for add-host: ":10.0.0.1"', id="empty-name"),
        pytest.param("a:b=10.0.0.1", 'bad format for add-host: "a:b=10.0.0.1"', id="colon-in-name"),
        pytest.param("db:[]", 'invalid IP address in add-host: "[]"', id="empty-brackets"),
        pytest.param("gw:[host-gateway]", 'invalid IP address in add-host: "host-gateway"', id="bracketed-gateway"),
        pytest.param("my host:10.0.0.1", 'host name in add-host contains whitespace: "my host"', id="space-in-name"),
    ],
)
def test_parse_extra_host_rejects(item, message):
    with pytest.raises(ExtraHostError) as raised:
        parse_extra_host(item)
    assert str(raised.value) == message


def test_extra_host_from_mapping():
    assert extra_host_from_mapping("registry.local", "10.1.0.99") == HostEntry("10.1.0.99", ("registry.local",))
    assert extra_host_from_mapping("v6", "[::1]") == HostEntry("::1", ("v6",))
    assert extra_host_from_mapping("gw", "host-gateway") == HostEntry("host-gateway", ("gw",))


@pytest.mark.parametrize(("name", "value"), [("", "10.0.0.1"), ("a:b", "10.0.0.1"), ("db", "nope"), ("db", 5)])
def test_extra_host_from_mapping_rejects(name, value):
    with pytest.raises(ExtraHostError):
        extra_host_from_mapping(name, value)


def test_render_hostname_leaves_the_domainname_out():
    assert render_hostname("foobar.example.com") == "foobar.example.com\n"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("c1", True, id="short"),
        pytest.param("foo.example.com", True, id="fqdn"),
        pytest.param("0123456789ab", True, id="digits-first"),
        pytest.param("a" * 63, True, id="label-63"),
        pytest.param(".".join(["a" * 63] * 4)[:253], True, id="total-253"),
        pytest.param("", False, id="empty"),
        pytest.param("a" * 64, False, id="label-64"),
        pytest.param(".".join(["a" * 63] * 4)[:254], False, id="total-254"),
        pytest.param("-a", False, id="leading-hyphen"),
        pytest.param("a-", False, id="trailing-hyphen"),
        pytest.param("a..b", False, id="empty-label"),
        pytest.param("a_b", False, id="underscore"),
        pytest.param("a\n", False, id="newline"),
    ],
)
def test_validate_hostname(name, valid):
    assert (validate_hostname(name) is None) is valid
