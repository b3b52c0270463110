"""What the hosts and resolv.conf renderers share (reconciler/render/names.py), and the one
name check the command line and the spec validation both use."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from reconciler.cli import Context
from reconciler.errors import UsageError
from reconciler.render import resolvconf
from reconciler.render.hostsfile import parse_extra_host, validate_hostname
from reconciler.render.names import address_text, is_label
from reconciler.spec.values import NAME_MAX, name_issue


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.1", "10.0.0.1"),
    ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),  # Go's netip keeps the dotted tail
    ("::ffff:a00:1", "::ffff:10.0.0.1"),
    ("2001:db8:0::1", "2001:db8::1"),
])
def test_address_text_is_gos(text, expected):
    assert address_text(ip_address(text)) == expected


@pytest.mark.parametrize("text", ["::ffff:10.0.0.1", "::ffff:a00:1", "2001:DB8::1", "10.0.0.1"])
def test_hosts_and_resolv_conf_write_an_address_alike(text):
    assert parse_extra_host(f"h={text}").address == resolvconf._parse_addr(text).text == address_text(ip_address(text))


@pytest.mark.parametrize("label, valid", [
    ("a", True), ("a-b", True), ("A1", True), ("-a", False), ("a-", False), ("a_b", False), ("", False),
    ("a\n", False),  # a trailing newline is not the end of the label
])
def test_is_label(label, valid):
    assert is_label(label) is valid


@pytest.mark.parametrize("label", ["web", "w-1", "-web", "web-", "we_b", "w\u00e9b"])
def test_hostnames_and_search_domains_take_the_same_labels(label):
    assert (validate_hostname(f"{label}.example") is None) is is_label(label)
    assert (resolvconf.validate_dns_search(f"{label}.example") is None) is is_label(label)


@pytest.mark.parametrize("name", ["nr-test", "a", "a" * NAME_MAX, "a" * (NAME_MAX + 1), "../etc", "_x", "x y", "n.1"])
def test_the_command_line_refuses_exactly_the_names_the_spec_refuses(name, tmp_path):
    if name_issue(name):
        with pytest.raises(UsageError, match="is not a valid namespace name"):
            Context(name, str(tmp_path))
    else:
        assert Context(name, str(tmp_path)).host_netns == name
