"""How many netlink dumps one observation makes, in a throwaway host namespace: the host's
routes are dumped at most once per pass, however many readers need them (an uplink's
default routes, a macvlan host shim's routes, the host's networks a chosen subnet avoids).
"""

from __future__ import annotations

import sys

import pytest

from reconciler.kernel import dumps
from tests.lan_tools import make_lan

pytestmark = pytest.mark.kernel

EVERY_ROUTE_READER = """\
version: 1
networks:
  office:
    bridge: "@of"
    uplink: up0
    subnet: 203.0.113.128/25
    gateway: 203.0.113.129
    gateway_on_host: false
  lan:
    driver: macvlan
    parent: lan0
    subnet: 198.51.100.0/24
    gateway: 198.51.100.1
    host_shim: true
  chosen:
    bridge: "@ch"
containers:
  "@web":
    networks: [office]
  "@a":
    networks:
      lan: {ipv4_address: 198.51.100.10}
  "@db":
    networks: [chosen]
"""


def count_route_dumps(monkeypatch) -> list[object]:
    """Every module that holds `dumps.decoded_routes` (by attribute or imported by name)
    gets a counting wrapper; the list collects the sockets whose routes were dumped."""
    original = dumps.decoded_routes
    calls: list[object] = []

    def counted(sock, families):
        calls.append(sock)
        return original(sock, families)

    for name, module in list(sys.modules.items()):
        if name.startswith("reconciler") and getattr(module, "decoded_routes", None) is original:
            monkeypatch.setattr(module, "decoded_routes", counted)
    return calls


def test_one_pass_dumps_the_hosts_routes_once_for_uplink_shim_and_chosen_subnet(sandbox, monkeypatch):
    from reconciler.kernel.session import KernelSession
    from reconciler.kernel.statedir import StateDir
    from reconciler.run.engine import plan_for
    from reconciler.spec.loader import load_spec
    from reconciler.state.subnets import needs_choice

    make_lan(sandbox, "up0", short="office")
    make_lan(sandbox, "lan0", router="198.51.100.1/24")
    spec_path = sandbox.write_spec(EVERY_ROUTE_READER)
    sandbox.apply(spec_path)
    spec = load_spec(str(spec_path))
    assert needs_choice(spec)  # a subnet to choose: the host's networks are read

    with KernelSession(sandbox.host, StateDir(sandbox.state_dir, sandbox.host)) as session:
        calls = count_route_dumps(monkeypatch)
        result = plan_for(spec, session)
        host_dumps = [sock for sock in calls if sock is session.host]
    assert not result.actions, [action.name for action in result.actions]
    assert len(host_dumps) == 1, f"the host's routes were dumped {len(host_dumps)} times in one pass"
    assert len(calls) == 1 + 3  # and once in each of the three containers' namespaces
