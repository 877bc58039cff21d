#!/usr/bin/env bash
# Benchmark: how fast headless Chromium gathers ICE candidates against a
# loopback coturn (the reference for `rtckit ice gather` against the same
# servers). Installs Debian's chromium and coturn when missing (needs root for
# that), builds bench/browsergather and runs it with -coturn: scenarios host,
# stun, turn-udp, turn-tcp and all, RUNS runs each in fresh
# RTCPeerConnections. Prints JSON lines (one per run, then a median summary
# per scenario) or, with -markdown, a table.
#
# Usage: bench/icegather-browser.sh [browsergather flags]
#   bench/icegather-browser.sh -markdown                 # 10 runs, page mode granted
#   bench/icegather-browser.sh -runs 20 -mode plain -markdown
#   NETNS=1 bench/icegather-browser.sh -mode mdns -markdown
#
# Environment:
#   RUNS   runs per scenario when no -runs flag is given (default 10).
#   NETNS  when 1, run in a private network namespace (root) that has only
#          loopback and a veth pair leading nowhere, with a default route into
#          it. Use it for -mode mdns: Chromium then announces its .local names
#          by multicast, which must not leave the machine.
#
# Flags of bench/browsergather: go run ./bench/browsergather -h
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'icegather-browser: %s\n' "$*" >&2; }

# install_missing installs the Debian packages among "$@" that are missing.
install_missing() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return
	if [[ $(id -u) -ne 0 ]]; then
		say "missing Debian packages: ${missing[*]}; as root: apt-get update && apt-get install -y ${missing[*]}"
		exit 1
	fi
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

install_missing chromium coturn

args=(-coturn)
[[ " $* " == *" -runs "* || " $* " == *" -runs="* ]] || args+=(-runs "${RUNS:-10}")

bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
go build -o "$bin_dir/browsergather" ./bench/browsergather

if [[ ${NETNS:-0} == 1 ]]; then
	# The veth peer has no address and nothing behind it: traffic routed
	# there (the default route, mDNS multicast) goes nowhere.
	unshare --net bash -c '
		set -euo pipefail
		ip link set lo up
		ip link add bg0 type veth peer name bg1
		ip addr add 10.99.0.1/24 dev bg0
		ip link set bg0 up
		ip link set bg1 up
		ip route add default via 10.99.0.2 dev bg0
		exec "$@"' bash "$bin_dir/browsergather" "${args[@]}" "$@"
else
	"$bin_dir/browsergather" "${args[@]}" "$@"
fi
