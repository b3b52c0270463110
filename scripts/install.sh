#!/usr/bin/env bash
# Install what netreconcile and its tests need on a fresh Debian/Ubuntu machine (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v nft >/dev/null || need+=(nftables)
command -v sysctl >/dev/null || need+=(procps)  # the firewall tests switch br_netfilter per namespace
command -v dot >/dev/null || need+=(graphviz)  # netreconcile graph -o svg, and the tests that read its DOT
# .ci/run installs the built wheel into a fresh venv; Debian's python3 needs python3-venv for that
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
