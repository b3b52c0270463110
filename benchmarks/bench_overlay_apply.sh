#!/bin/bash
# A real apply of 2 simulated nodes x 200 containers on one overlay network (as root; only
# throwaway namespaces ovb-*, removed on exit): two host namespaces joined by an unmanaged
# veth underlay (198.51.100.1/24 and .2/24), the spec applied on each with its own
# --host-netns and --node; a ping across; a second apply (no changes); destroy on both.
# Run from the repository root: bash benchmarks/bench_overlay_apply.sh
set -u
A=ovb-hosta; B=ovb-hostb; S=/tmp/ovb-state
cleanup() {
  for n in $(ip netns list | awk '{print $1}' | grep '^ovb-'); do ip netns del "$n"; done
  rm -rf /etc/netns/ovb-* $S /tmp/ovb-spec.yaml
}
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip -n $A link add under type veth peer name under netns $B
ip -n $A addr add 198.51.100.1/24 dev under; ip -n $A link set under up
ip -n $B addr add 198.51.100.2/24 dev under; ip -n $B link set under up
python3 - <<'PY'
lines = ["version: 1", "nodes:", "  node-a: {address: 198.51.100.1}", "  node-b: {address: 198.51.100.2}",
         "networks:", "  mesh: {driver: overlay, subnet: 10.200.0.0/22}", "containers:"]
lines += [f"  ovb-c{i}: {{node: node-{'ab'[i % 2]}, networks: [mesh]}}" for i in range(400)]
open("/tmp/ovb-spec.yaml", "w").write("\n".join(lines) + "\n")
PY
for node in a b; do
  H=ovb-host$node
  /usr/bin/time -f "apply node-$node: %e s" python3 -m reconciler --host-netns $H --node node-$node --state-dir $S-$node apply /tmp/ovb-spec.yaml > /dev/null
done
ip netns exec ovb-c0 ping -c 1 -W 2 $(ip -n ovb-c1 -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1) | grep -o "1 received" 
for node in a b; do
  /usr/bin/time -f "second apply node-$node: %e s" python3 -m reconciler --host-netns ovb-host$node --node node-$node --state-dir $S-$node apply /tmp/ovb-spec.yaml | tail -1
done
for node in a b; do
  /usr/bin/time -f "destroy node-$node: %e s" python3 -m reconciler --host-netns ovb-host$node --node node-$node --state-dir $S-$node destroy --lock-timeout 5 /tmp/ovb-spec.yaml > /dev/null
done
