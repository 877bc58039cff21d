#!/usr/bin/env bash
# Benchmark: how fast `rtckit ice gather` gathers ICE candidates next to
# headless Chromium, against the same loopback coturn. Installs Debian's
# chromium and coturn when missing (needs root for that), builds rtckit and
# bench/browsergather, and runs it with -coturn -rtckit: scenarios host, stun,
# turn-udp, turn-tcp and all, RUNS runs each (after one warmup) in fresh
# RTCPeerConnections for Chromium and in fresh `rtckit --json ice gather`
# processes for rtckit. For each it reports the first host, srflx and relay
# candidate, gathering complete (Chromium: iceGatheringState "complete";
# rtckit: its report's duration_ms, no relay check), the candidate counts and,
# for rtckit, the process's wall-clock time from exec to exit, start-up
# included. Prints JSON lines (one per run, then a median summary per
# scenario and gatherer) or, with -markdown, one table with a Chromium row and
# an rtckit row per scenario.
#
# Usage: bench/icegather-browser.sh [browsergather flags]
#   bench/icegather-browser.sh -markdown                 # 10 runs, page mode granted
#   bench/icegather-browser.sh -runs 20 -mode plain -markdown
#   RTCKIT=0 bench/icegather-browser.sh -markdown        # Chromium only
#   NETNS=1 bench/icegather-browser.sh -mode mdns -markdown
#
# Environment:
#   RUNS   runs per scenario when no -runs flag is given (default 10).
#   RTCKIT when 0, measure Chromium only; a -rtckit flag given to the script
#          replaces the rtckit it builds.
#   NETNS  when 1, run in a private network namespace (root) that has only
#          loopback and a veth pair leading nowhere, with a default route into
#          it. Use it for -mode mdns: Chromium then announces its .local names
#          by multicast, which must not leave the machine.
#
# Flags of bench/browsergather: go run ./bench/browsergather -h
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'icegather-browser: %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
source bench/lib.sh

install_missing chromium coturn

args=(-coturn)
[[ " $* " == *" -runs "* || " $* " == *" -runs="* ]] || args+=(-runs "${RUNS:-10}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/browsergather" ./bench/browsergather
if [[ ${RTCKIT:-1} != 0 && " $* " != *" -rtckit "* && " $* " != *" -rtckit="* ]]; then
	go build -o "$tmp/rtckit" .
	args+=(-rtckit "$tmp/rtckit")
fi

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
		exec "$@"' bash "$tmp/browsergather" "${args[@]}" "$@"
else
	"$tmp/browsergather" "${args[@]}" "$@"
fi
