"""Network modes against the kernel: none, host, container:<name>, and switching between them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import netns_names, sh

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
host:
  resolv_conf: {resolv}
networks:
  front:
    bridge: "@fr"
    subnet: 172.27.0.0/24
containers:
  "@web":
    hostname: web
    networks: [front]
    extra_hosts: ["registry.local:172.27.0.99"]
  "@sidecar":
    network_mode: "container:@web"
  "@probe":
    network_mode: "container:@sidecar"
  "@sealed":
    network_mode: none
  "@tool":
    network_mode: host
    dns_search: [corp.example]
"""
HOST_RESOLV = "nameserver 127.0.0.53\nnameserver 198.51.100.53\nsearch lan.example\n"


@pytest.fixture
def modes_spec(sandbox):
    resolv = sandbox.tmp / "host-resolv.conf"
    resolv.write_text(HOST_RESOLV)
    return sandbox.write_spec(SPEC.format(resolv=resolv))


def link_names(netns: str) -> set[str]:
    return {link["ifname"] for link in json.loads(sh(f"ip -n {netns} -j link show"))}


def addresses(sandbox, short: str) -> str:
    return sandbox.in_ns(short, "ip -o -4 addr show")


def etc(sandbox, short: str, filename: str) -> str:
    return (Path("/etc/netns") / sandbox.name(short) / filename).read_text()


def test_each_mode_gives_the_namespace_it_promises(sandbox, modes_spec):
    sandbox.apply(modes_spec)
    assert sandbox.run("apply", "-o", "json", spec=modes_spec).json()["actions"] == []

    # none: a namespace of its own with only lo, up
    sealed = json.loads(sh(f"ip -n {sandbox.name('sealed')} -j link show"))
    assert [(link["ifname"], "UP" in link["flags"]) for link in sealed] == [("lo", True)]

    # container:web (and container:sidecar, which leads to web): web's namespace and files
    web = addresses(sandbox, "web")
    assert "172.27.0.2/24" in web
    assert addresses(sandbox, "sidecar") == web and addresses(sandbox, "probe") == web
    for filename in ("hosts", "resolv.conf", "hostname"):
        assert etc(sandbox, "sidecar", filename) == etc(sandbox, "web", filename)
    assert sandbox.in_ns("sidecar", "getent ahostsv4 registry.local").split()[0] == "172.27.0.99"

    # host: the host's namespace (its bridge is there), resolv.conf keeps the host's loopback resolver
    assert sandbox.name("fr") in link_names(sandbox.name("tool"))
    assert link_names(sandbox.name("tool")) == link_names(sandbox.host)
    resolv = etc(sandbox, "tool", "resolv.conf")
    assert "nameserver 127.0.0.53\nnameserver 198.51.100.53\n" in resolv and "search corp.example" in resolv
    assert etc(sandbox, "tool", "hosts") == Path("/etc/hosts").read_text()


def test_removing_a_container_others_join_is_a_validation_error_that_changes_nothing(sandbox, modes_spec):
    sandbox.apply(modes_spec)
    text = modes_spec.read_text()
    web_block = text[text.index(f'  "{sandbox.prefix}-web":'):text.index(f'  "{sandbox.prefix}-sidecar":')]
    without_web = sandbox.write_spec(text.replace(web_block, ""), "without-web.yaml")
    def ours() -> set[str]:  # other tests on the machine make namespaces of their own meanwhile
        return {name for name in netns_names() if name.startswith(sandbox.prefix)}

    before = ours()
    result = sandbox.run("apply", spec=without_web)
    assert result.code == 1
    assert f"containers.{sandbox.name('sidecar')}.network_mode: '{sandbox.name('web')}' is not a container" \
        in result.stderr
    assert ours() == before
    assert addresses(sandbox, "sidecar") == addresses(sandbox, "web")


def test_switching_modes_converges_in_one_apply_each_time(sandbox, modes_spec):
    sandbox.apply(modes_spec)
    text = modes_spec.read_text()
    web = f'  "{sandbox.prefix}-web":\n    hostname: web\n    networks: [front]\n'
    steps = [
        text.replace(web, web.replace("    networks: [front]\n", "    network_mode: none\n")),  # bridge -> none
        text,  # none -> bridge
        text.replace('network_mode: "container:' + sandbox.prefix + '-web"', "networks: [front]"),  # container -> bridge
        text.replace("network_mode: none", "network_mode: host"),  # none -> host
        text,
    ]
    for step, spec_text in enumerate(steps):
        modes_spec.write_text(spec_text)
        assert sandbox.apply(modes_spec)["actions"], step
        assert sandbox.run("apply", "-o", "json", spec=modes_spec).json()["actions"] == [], step
        if step == 0:
            assert link_names(sandbox.name("web")) == {"lo"}
            assert addresses(sandbox, "sidecar") == addresses(sandbox, "web")  # still joined
        if step == 2:
            assert "172.27.0.3/24" in addresses(sandbox, "sidecar")
            assert addresses(sandbox, "sidecar") != addresses(sandbox, "web")
        if step == 3:
            assert link_names(sandbox.name("sealed")) == link_names(sandbox.host)
    assert addresses(sandbox, "probe") == addresses(sandbox, "web")
    assert link_names(sandbox.name("sealed")) == {"lo"}


def test_destroy_removes_the_second_names_and_their_files(sandbox, modes_spec):
    sandbox.apply(modes_spec)
    destroyed = sandbox.run("destroy", "-o", "json", spec=modes_spec)
    assert destroyed.code == 0, destroyed.stderr
    assert {a["kind"] for a in destroyed.json()["actions"]} >= {"alias", "netns"}
    assert not {n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host}
    assert not [d for d in Path("/etc/netns").iterdir() if d.name.startswith(sandbox.prefix)]
    assert sandbox.host in netns_names()  # the host namespace itself stays
