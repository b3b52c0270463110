#!/usr/bin/env bash
# Quick start: install, apply specs/quickstart.yaml to the throwaway host namespace
# "nr-demo" (never the machine's own network), and show what it built.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
HOST=nr-demo
run() { echo "\$ $*"; "$@"; }
run netreconcile --host-netns "$HOST" validate specs/quickstart.yaml
run netreconcile --host-netns "$HOST" plan specs/quickstart.yaml
run netreconcile --host-netns "$HOST" apply specs/quickstart.yaml
run netreconcile --host-netns "$HOST" apply specs/quickstart.yaml   # again: nothing to do
run ip -n "$HOST" -br link
run ip -n qs-web -br addr
run ip -n qs-web route
run ip netns exec qs-web ping -c 2 -W 2 172.17.0.3
run ip netns exec qs-web cat /etc/hosts
run ip netns exec qs-web getent ahostsv4 database
run ip netns exec qs-web cat /etc/resolv.conf
run ip netns exec "$HOST" nft list table inet netreconcile
run netreconcile --host-netns "$HOST" status specs/quickstart.yaml
echo
echo "Clean up with: netreconcile --host-netns $HOST destroy specs/quickstart.yaml && ip netns del $HOST"
