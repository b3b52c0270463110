"""host.dns_resolver: which containers get the embedded DNS server's resolv.conf (pure)."""

from __future__ import annotations

import pytest

from reconciler.errors import SpecError
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import HostFiles, build_desired, uses_resolver
from reconciler.state.model import File, State

HOST = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch example.com\n"
SPEC = """\
version: 1
host:
  dns_resolver: {resolver}
networks:
  front: {{subnet: 172.31.1.0/24}}
  bridge: {{subnet: 172.31.2.0/24}}
containers:
  a: {{networks: [front]}}
  b: {{networks: [bridge]}}
  c: {{networks: [bridge, front], dns: [1.1.1.1, 127.0.0.11]}}
  j: {{network_mode: "container:a"}}
"""
RESOLVER_FILE = (
    "nameserver 127.0.0.11\nsearch example.com\noptions ndots:0\n\n"
    "# Based on host file: '/etc/resolv.conf' (internal resolver)\n"
    "# ExtServers: [host(127.0.0.53) host(10.0.0.1)]\n# Overrides: []\n# Option ndots from: internal\n"
)


def resolv_confs(resolver: str) -> dict[str, str]:
    spec = load_spec_text(SPEC.format(resolver=resolver), "spec.yaml")
    desired = build_desired(spec, State(), HostFiles(HOST, "/etc/resolv.conf"))
    return {f.netns: f.content.split("\n\n", 1)[1] for f in desired.of_kind(File) if f.filename == "resolv.conf"}


def test_containers_on_a_discovery_network_ask_the_embedded_server():
    files = resolv_confs("true")
    assert files["a"] == RESOLVER_FILE
    assert files["j"] == RESOLVER_FILE  # it shares a's namespace, so a's resolver


def test_the_network_named_bridge_alone_keeps_the_legacy_file():
    assert files_legacy(resolv_confs("true")["b"])


def test_a_container_on_bridge_and_a_discovery_network_asks_the_server_with_its_dns_as_ext_servers():
    text = resolv_confs("true")["c"]
    assert text.startswith("nameserver 127.0.0.11\n")
    # a dns override is queried from the container's namespace: a bare address, not host(...)
    assert "# ExtServers: [1.1.1.1 127.0.0.11]\n" in text


@pytest.mark.parametrize("resolver", ["false"])
def test_without_dns_resolver_every_container_keeps_the_legacy_file(resolver):
    assert all(files_legacy(text) for text in resolv_confs(resolver).values())


def files_legacy(text: str) -> bool:
    return not text.startswith("nameserver 127.0.0.11\n") and "(legacy)" in text


def test_uses_resolver_follows_the_spec():
    spec = load_spec_text(SPEC.format(resolver="true"), "spec.yaml")
    assert [c.name for c in spec.containers if uses_resolver(spec, c)] == ["a", "c", "j"]


def test_a_dns_resolver_that_is_not_a_boolean_is_an_error_at_its_location():
    with pytest.raises(SpecError) as error:
        load_spec_text(SPEC.format(resolver="'yes'"), "spec.yaml")
    assert "spec.yaml:3:17: host.dns_resolver" in str(error.value)


def test_a_network_with_discovery_false_keeps_the_legacy_file():
    spec = load_spec_text(SPEC.format(resolver="true").replace(
        "front: {subnet: 172.31.1.0/24}", "front: {subnet: 172.31.1.0/24, discovery: false}"), "spec.yaml")
    assert not uses_resolver(spec, spec.container("a"))
    desired = build_desired(spec, State(), HostFiles(HOST, "/etc/resolv.conf"))
    files = {f.netns: f.content.split("\n\n", 1)[1] for f in desired.of_kind(File) if f.filename == "resolv.conf"}
    assert files_legacy(files["a"])
