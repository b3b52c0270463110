"""Subnets chosen for networks written without one (reconciler.state.subnets): the pure
choice from observed facts, its stickiness, the spec checks of what needs a written
subnet, and what plan and validate say about it."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_address, ip_network

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import SpecError
from reconciler.render.plantext import action_line
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.model import HOST_NS, Address, State
from reconciler.state.planner import plan
from reconciler.state.subnets import with_chosen_subnets

FILE = "spec.yaml"
ONE = """\
version: 1
networks:
  front: {}
containers:
  web:
    networks: [front]
"""


def load(text: str):
    return load_spec_text(text, FILE)


def chosen(text: str, live: State = State()) -> dict[str, tuple[str, str]]:
    """(subnet, gateway) per network of the spec as planned on `live`."""
    return {n.name: (str(n.subnet), str(n.gateway)) for n in with_chosen_subnets(load(text), live).networks}


def host(*cidrs: str, live: State = State()) -> State:
    """`live` with the host networks `cidrs` observed."""
    return dataclasses.replace(live, host_networks=cidrs)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(text)
    return [str(problem) for problem in caught.value.problems]


def test_a_network_without_subnet_loads_with_none_and_gets_the_first_free_24() -> None:
    assert load(ONE).network("front").subnet is None
    network = with_chosen_subnets(load(ONE), State()).network("front")
    assert (network.subnet, network.gateway, network.subnet_chosen) == (
        ip_network("172.17.0.0/24"), ip_address("172.17.0.1"), True)


def test_the_choice_skips_the_hosts_routes_and_addresses() -> None:
    # a route over 172.17.0.0/16 and an address in 172.18.0.0/24 (observed as its subnet)
    assert chosen(ONE, host("172.17.0.0/16", "172.18.0.0/24")) == {"front": ("172.18.1.0/24", "172.18.1.1")}


def test_a_host_route_inside_a_block_skips_only_that_block() -> None:
    assert chosen(ONE, host("172.17.0.128/25", "172.17.1.7/32")) == {"front": ("172.17.2.0/24", "172.17.2.1")}


def test_a_network_named_bridge_gets_a_16_like_dockers_default_bridge() -> None:
    text = ONE.replace("front", "bridge")
    assert chosen(text) == {"bridge": ("172.17.0.0/16", "172.17.0.1")}
    assert chosen(text, host("172.17.5.0/24")) == {"bridge": ("172.18.0.0/16", "172.18.0.1")}


def test_a_network_named_bridge_chooses_first_wherever_it_is_written() -> None:
    text = ONE.replace("  front: {}\n", "  front: {}\n  bridge: {bridge: br-x}\n")
    assert chosen(text) == {"front": ("172.18.0.0/24", "172.18.0.1"), "bridge": ("172.17.0.0/16", "172.17.0.1")}


def test_after_the_172_pools_come_the_20s_of_192_168() -> None:
    assert chosen(ONE, host("172.16.0.0/12")) == {"front": ("192.168.0.0/24", "192.168.0.1")}
    assert chosen(ONE.replace("front", "bridge"), host("172.16.0.0/12")) == {"bridge": ("192.168.0.0/16",
                                                                                     "192.168.0.1")}


def test_the_choice_skips_the_other_networks_of_the_spec_wherever_they_are_written() -> None:
    text = ONE.replace("  front: {}\n", "  front: {}\n  other: {}\n  back: {subnet: 172.17.0.0/23}\n")
    assert chosen(text) == {"front": ("172.17.2.0/24", "172.17.2.1"), "other": ("172.17.3.0/24", "172.17.3.1"),
                            "back": ("172.17.0.0/23", "172.17.0.1")}


def test_more_containers_than_a_24_holds_get_a_larger_block() -> None:
    containers = "".join(f"  c{index}:\n    networks: [front]\n" for index in range(300))
    text = "version: 1\nnetworks:\n  front: {}\ncontainers:\n" + containers
    assert chosen(text) == {"front": ("172.17.0.0/23", "172.17.0.1")}


def test_no_room_left_is_a_located_error() -> None:
    with pytest.raises(SpecError) as caught:
        with_chosen_subnets(load(ONE), host("172.16.0.0/12", "192.168.0.0/16"))
    assert [str(p) for p in caught.value.problems] == [
        "spec.yaml:3:3: networks.front: no subnet can be chosen (all predefined address pools have been fully "
        "subnetted): write one"]


def test_the_choice_is_read_back_from_the_bridge_and_kept_when_a_host_route_covers_it() -> None:
    live = build_desired(load(ONE), State())
    assert ("address", HOST_NS, "front", "172.17.0.1/24") in live.objects
    later = host("172.17.0.0/16", live=live)  # a VPN's route appears over the chosen subnet
    assert chosen(ONE, later) == {"front": ("172.17.0.0/24", "172.17.0.1")}
    assert plan(build_desired(load(ONE), later), later).actions == ()


def test_a_gateway_read_back_is_kept_as_the_bridge_has_it() -> None:
    live = build_desired(load(ONE.replace("  front: {}", "  front: {subnet: 10.9.0.0/24, gateway: 10.9.0.254}")),
                         State())
    assert chosen(ONE, live) == {"front": ("10.9.0.0/24", "10.9.0.254")}
    assert plan(build_desired(load(ONE), live), live).actions == ()


def test_a_subnet_written_later_replaces_the_chosen_one() -> None:
    live = build_desired(load(ONE), State())
    written = ONE.replace("  front: {}", "  front: {subnet: 10.9.0.0/24}")
    changes = {(a.op, a.kind, a.obj.name) for a in plan(build_desired(load(written), live), live).actions
               if isinstance(a.obj, Address) and a.obj.netns == HOST_NS}
    assert changes == {("delete", "address", "172.17.0.1/24 on host:front"),
                       ("create", "address", "10.9.0.1/24 on host:front")}


def test_a_kept_subnet_that_a_written_one_now_overlaps_is_chosen_again() -> None:
    live = build_desired(load(ONE), State())
    grown = ONE.replace("  front: {}\n", "  front: {}\n  back: {subnet: 172.17.0.0/16}\n")
    assert chosen(grown, live)["front"] == ("172.18.0.0/24", "172.18.0.1")


def test_a_kept_subnet_too_small_for_the_containers_is_chosen_again() -> None:
    live = build_desired(load(ONE), State())
    containers = "".join(f"  c{index}:\n    networks: [front]\n" for index in range(300))
    grown = "version: 1\nnetworks:\n  front: {}\ncontainers:\n" + containers
    assert chosen(grown, live) == {"front": ("172.17.0.0/23", "172.17.0.1")}


def test_another_networks_bridge_is_not_read_back() -> None:
    live = build_desired(load(ONE.replace("  front: {}", "  front: {subnet: 10.9.0.0/24}")), State())
    renamed = ONE.replace("  front: {}", "  back: {bridge: front}").replace("[front]", "[back]")
    assert chosen(renamed, live) == {"back": ("172.17.0.0/24", "172.17.0.1")}


def test_plan_shows_the_chosen_subnet_in_the_bridges_address_action() -> None:
    lines = [action_line(a) for a in plan(build_desired(load(ONE), State()), State()).actions]
    assert "+ address 172.17.0.1/24 on host:front: missing  (spec.yaml:3:3; subnet 172.17.0.0/24 chosen: none in " \
           "the spec)" in lines


@pytest.mark.parametrize(("network", "expected"), [
    ("{driver: macvlan, parent: eth1}",
     "spec.yaml:3:3: networks.front: 'subnet' is required: driver macvlan puts the network on a LAN, whose subnet "
     "cannot be guessed"),
    ("{uplink: eth1}",
     "spec.yaml:3:3: networks.front: 'subnet' is required: with uplink the network is on a LAN, whose subnet cannot "
     "be guessed"),
    ("{gateway_on_host: false, gateway: 203.0.113.1}",
     "spec.yaml:3:3: networks.front: 'subnet' is required: with gateway_on_host: false the gateway is the LAN's "
     "router, on a subnet that cannot be guessed"),
    ("{gateway: 172.17.0.1}",
     "spec.yaml:3:11: networks.front.gateway: 'gateway' needs 'subnet': without one the subnet is chosen at plan "
     "time, and there is nothing to check it against"),
    ("{aux_addresses: {router: 172.17.0.2}}",
     "spec.yaml:3:11: networks.front.aux_addresses: 'aux_addresses' needs 'subnet': without one the subnet is "
     "chosen at plan time, and there is nothing to check it against"),
])
def test_what_needs_a_written_subnet_is_a_located_error(network: str, expected: str) -> None:
    assert problems(ONE.replace("{}", network, 1)) == [expected]


def test_a_static_address_on_a_network_without_subnet_is_a_located_error() -> None:
    text = ONE.replace("[front]", "\n      front: {ipv4_address: 172.17.0.5}")
    assert problems(text) == [
        "spec.yaml:7:29: containers.web.networks.front.ipv4_address: network 'front' has no subnet (it is chosen "
        "at plan time): a static address needs one written, to be checked against"]


def test_ipv6_needs_subnet6_but_not_subnet() -> None:
    text = ONE.replace("{}", "{enable_ipv6: true, subnet6: 'fd42:db8:5::/64'}", 1)
    network = with_chosen_subnets(load(text), State()).network("front")
    assert (str(network.subnet), str(network.subnet6)) == ("172.17.0.0/24", "fd42:db8:5::/64")


def test_validate_says_the_subnet_is_chosen_at_plan_time(tmp_path) -> None:
    path = tmp_path / FILE
    path.write_text(ONE.replace("  front: {}\n", "  front: {}\n  bridge: {bridge: br-x}\n"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "network front: no subnet: plan chooses one (the first free /24 of Docker's default pools that overlaps no "
        "network of the host or the spec), and keeps it",
        "network bridge: no subnet: plan chooses one (the first free /16 of Docker's default pools that overlaps no "
        "network of the host or the spec), and keeps it"]
