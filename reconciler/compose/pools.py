"""Subnets chosen as Docker's default IPAM chooses them (pure).

Docker hands a network without a subnet the first free block of its predefined pools
(libnetwork's `defaultipam`): the pools sorted by address, a pool overlapping one listed
before it dropped, and within each pool the lowest block of the requested size that
overlaps nothing allocated or reserved.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_address, ip_network

NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"
INVALID_POOL = "invalid address pool"


class PoolError(ValueError):
    """No subnet can be chosen; the message is Docker's."""


@dataclass(frozen=True)
class Pool:
    """A predefined pool: `base` as written (Docker keeps its host bits: blocks start at
    the address given) and the prefix length of the blocks it is cut into."""

    base: str
    size: int

    @property
    def start(self) -> int:
        return int(ip_address(self.base.partition("/")[0]))

    @property
    def network(self) -> IPv4Network:
        return ip_network(self.base, strict=False)

    @property
    def end(self) -> int:
        """The last address of the pool."""
        return int(self.network.broadcast_address)


# Docker's default-address-pools: 172.17-31.0.0/16 cut into /16s, then 192.168.0.0/16 into /20s
DEFAULT_POOLS: tuple[Pool, ...] = (
    *(Pool(f"172.{second}.0.0/16", 16) for second in range(17, 32)),
    Pool("192.168.0.0/16", 20),
)
NETWORK_SIZE = 24  # what `netreconcile import` asks for a network without a subnet
DEFAULT_BRIDGE_SIZE = 16  # ... and for one named `bridge`, Docker's default bridge


def size_for(addresses: int, largest: int = NETWORK_SIZE) -> int:
    """The prefix length of the smallest subnet, `largest` at most, that holds `addresses`
    beside its network, gateway and broadcast addresses."""
    size = largest
    while size > 1 and (1 << (32 - size)) - 3 < addresses:
        size -= 1
    return size


def effective_pools(pools: Iterable[Pool]) -> list[Pool]:
    """The pools sorted by address, each overlapping one before it dropped (the first listed wins)."""
    kept: list[Pool] = []
    for pool in sorted(pools, key=lambda pool: (pool.start, pool.network.prefixlen)):
        if not any(pool.network.overlaps(other.network) for other in kept):
            kept.append(pool)
    return kept


def choose_subnet(pools: Iterable[Pool], taken: Iterable[IPv4Network], requested_size: int = 0) -> IPv4Network:
    """The first block of `requested_size` (0: each pool's own size) in `pools` that
    overlaps no network of `taken`; PoolError when there is none."""
    if not 0 <= requested_size <= 32:
        raise PoolError(INVALID_POOL)
    usable = [pool for pool in effective_pools(pools)
              if not requested_size or requested_size >= pool.network.prefixlen]
    if not usable:
        raise PoolError(INVALID_POOL)
    spans = sorted((int(net.network_address), int(net.broadcast_address)) for net in taken)
    starts = [first for first, _ in spans]
    for pool in usable:
        size = requested_size or pool.size
        block = 1 << (32 - size)
        candidate = pool.start - pool.start % block
        while candidate + block - 1 <= pool.end:
            clash_end = _overlap_end(spans, starts, candidate, candidate + block - 1)
            if clash_end is None:
                return IPv4Network((candidate, size))
            candidate = clash_end + 1 + (-(clash_end + 1)) % block  # the next block after the clash
    raise PoolError(NO_MORE_SUBNETS)


def _overlap_end(spans: list[tuple[int, int]], starts: list[int], first: int, last: int) -> int | None:
    """The highest last address of the spans overlapping [first, last], or None."""
    ends = [end for start, end in spans[: bisect.bisect_right(starts, last)] if end >= first]
    return max(ends) if ends else None
