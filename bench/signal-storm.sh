#!/usr/bin/env bash
# Benchmark: a registration storm. A fresh `rtckit signal serve` (pinned to
# core 1) gets 2×PAIRS clients that connect and register one after another
# as fast as `rtckit signal bench` (pinned to core 0) opens them; each
# registration changes the user list that every connection receives.
# Prints one line per hub binary: wall time of the whole bench, the hub's
# CPU time and resident memory at the end.
#
# Usage: bench/signal-storm.sh [PAIRS [BINARY...]]
#   bench/signal-storm.sh 500
#   bench/signal-storm.sh 500 /tmp/rtckit-old /tmp/rtckit-new   # compare builds
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'signal-storm.sh: %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
source bench/lib.sh

pairs="${1:-500}"
shift || true
for tool in taskset jq bc; do
	command -v "$tool" >/dev/null || { echo "signal-storm.sh: $tool is needed" >&2; exit 1; }
done

out="$(mktemp -d)"
hub_pid=""
cleanup() {
	if [ -n "$hub_pid" ]; then
		kill -INT "$hub_pid" 2>/dev/null || true
		wait "$hub_pid" 2>/dev/null || true
	fi
	rm -rf "$out"
}
trap cleanup EXIT

bins=("$@")
if [ "${#bins[@]}" -eq 0 ]; then
	go build -o "$out/rtckit" .
	bins=("$out/rtckit")
fi

for bin in "${bins[@]}"; do
	start_signal_hub "$bin" "$out" $((2 * pairs + 100))
	start=$(date +%s.%N)
	taskset -c 0 timeout 600 "$bin" --json signal bench --url "$hub_url" \
		--pairs "$pairs" --rate 100 --duration 1s --hub-pid "$hub_pid" >"$out/bench.json"
	end=$(date +%s.%N)
	ticks=$(getconf CLK_TCK)
	cpu=$(awk -v t="$ticks" '{printf "%.2f", ($14 + $15) / t}' "/proc/$hub_pid/stat")
	rss=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$hub_pid/status")
	kill -INT "$hub_pid"
	wait "$hub_pid" || true
	hub_pid=""
	printf '%s: %d users registered, bench %.1f s, hub CPU %s s, hub RSS %s MiB, %s\n' \
		"$bin" $((2 * pairs)) "$(echo "$end - $start" | bc)" "$cpu" "$rss" \
		"$(jq -c '{delivered, lost, errors}' "$out/bench.json")"
done
