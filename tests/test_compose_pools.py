"""Subnets chosen from Docker's default pools (reconciler/compose/pools.py), checked
against Docker's own `ipam-pools` vectors."""

from __future__ import annotations

from ipaddress import IPv4Network, ip_network

import pytest

from reconciler.compose.pools import DEFAULT_POOLS, Pool, PoolError, choose_subnet, effective_pools, size_for
from tests.docker_vectors import load_vectors

VECTORS = load_vectors("ipam-pools")


def _pools(vector: dict) -> list[Pool]:
    return [Pool(pool["base"], pool["size"]) for pool in vector["input"]["predefined"]]


def _allocation_vectors() -> list[dict]:
    return [vector for vector in VECTORS if "requested_size" in vector["input"]]


def _dedup_vectors() -> list[dict]:
    return [vector for vector in VECTORS if "effective" in vector["expected"]]


def test_every_ipam_pools_vector_is_replayed_or_listed():
    """Every vector is replayed by the two tests below or listed in their docstrings as one
    that cannot be expressed; fails if one is neither (or none is replayed)."""
    replayed = {vector["name"] for vector in _allocation_vectors() + _dedup_vectors()}
    left_out = {vector["name"] for vector in VECTORS
                if vector["name"].startswith(("TestStaticAllocation", "TestDeriveULABaseNetwork"))}
    assert replayed and {vector["name"] for vector in VECTORS} == replayed | left_out
    assert len(replayed) >= 17


@pytest.mark.parametrize("vector", _allocation_vectors(), ids=lambda vector: vector["name"])
def test_docker_allocation_vectors(vector):
    """Every `ipam-pools` vector of a choice (TestDynamicPoolAllocation), with Docker's
    allocated and reserved subnets both as taken. Not expressible, so not replayed:
    - TestStaticAllocation (sorted bookkeeping): the order of Docker's list of allocated
      subnets after static allocations; netreconcile keeps no such list (the other
      networks of the file are what is taken);
    - TestDeriveULABaseNetwork (two vectors): the IPv6 ULA pool derived from Docker's host
      ID; netreconcile never chooses an IPv6 subnet (a spec names its IPv6 addresses)."""
    given = vector["input"]
    taken = [ip_network(net, strict=False) for net in given["allocated"] + given["reserved"]]
    if "error" in vector["expected"]:
        with pytest.raises(PoolError, match=vector["expected"]["error"]):
            choose_subnet(_pools(vector), taken, given["requested_size"])
    else:
        chosen = choose_subnet(_pools(vector), taken, given["requested_size"])
        assert chosen == IPv4Network(vector["expected"]["subnet"])


@pytest.mark.parametrize("vector", _dedup_vectors(), ids=lambda vector: vector["name"])
def test_docker_pool_dedup_vectors(vector):
    expected = [Pool(pool["base"], pool["size"]) for pool in vector["expected"]["effective"]]
    assert effective_pools(_pools(vector)) == expected


def test_the_defaults_give_a_24_then_a_16_for_bridge_skipping_the_file_s_networks():
    assert choose_subnet(DEFAULT_POOLS, [], 24) == IPv4Network("172.17.0.0/24")
    assert choose_subnet(DEFAULT_POOLS, [IPv4Network("172.17.0.0/24")], 24) == IPv4Network("172.17.1.0/24")
    assert choose_subnet(DEFAULT_POOLS, [IPv4Network("172.17.0.0/24")], 16) == IPv4Network("172.18.0.0/16")
    everything_172 = [IPv4Network("172.16.0.0/12")]
    assert choose_subnet(DEFAULT_POOLS, everything_172, 24) == IPv4Network("192.168.0.0/24")
    assert choose_subnet(DEFAULT_POOLS, everything_172) == IPv4Network("192.168.0.0/20")  # the pool's own size
    with pytest.raises(PoolError, match="fully subnetted"):
        choose_subnet(DEFAULT_POOLS, [*everything_172, IPv4Network("192.168.0.0/16")], 24)


@pytest.mark.parametrize("addresses, expected", [(0, 24), (253, 24), (254, 23), (509, 23), (510, 22), (70000, 15)])
def test_a_network_gets_a_24_unless_its_containers_need_more(addresses, expected):
    assert size_for(addresses) == expected
    assert size_for(addresses, 16) == min(expected, 16)
