"""Everything that talks to the kernel: the netlink codec and sockets, namespaces, observing the live
state, nft, the state directory and lock, and the one writer (`reconciler.kernel.writer`).

Kept empty so that importing one of these modules does not load the others (start-up stays lazy).
"""
