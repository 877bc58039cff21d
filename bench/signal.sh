#!/usr/bin/env bash
# Benchmark: the signaling hub (`rtckit signal serve`) under `rtckit signal
# bench`, the hub pinned to core 1 and the generator to core 0 (taskset,
# util-linux), a fresh hub per scenario, on loopback only:
#   (a) idle connections just below the open-file limit, spread over
#       127.0.0.2-127.0.0.9: memory per idle connection;
#   (b) 100 sender→receiver pairs as fast as possible: messages/s and CPU;
#   (c) 100 pairs at 45,000 messages/s: p50/p99 delivery latency, when the
#       receiver reads an offer and when it reached its socket; with the
#       generator's event-loop engine (the default here) and again with its
#       goroutine engine;
#   (d) 100 pairs as fast as possible with the hub capped at 70 % and at
#       50 % of its core (a cgroup CPU quota, as root): messages per CPU-second
#       of a saturated hub, which one generator core cannot reach otherwise.
# Prints a Markdown table on stdout; the raw JSON reports stay in $out.
#
# Usage: bench/signal.sh [DURATION]   (default 10s per throughput scenario)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'signal.sh: %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
source bench/lib.sh

duration="${1:-10s}"
pairs=100
rate=45000

for tool in taskset jq; do
	command -v "$tool" >/dev/null || { echo "signal.sh: $tool is needed" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
	echo "signal.sh: two cores are needed (hub on core 1, generator on core 0)" >&2
	exit 1
fi

# Both processes need one file per connection plus a few of their own
# (the hub briefly two while it hands an upgraded socket to its event loop).
limit="$(ulimit -n)"
idle=19900
if [ "$limit" != unlimited ] && [ $((limit - 100)) -lt "$idle" ]; then
	idle=$((limit - 100))
fi

out="$(mktemp -d)"
bin="$out/rtckit"
hub_pid=""
stop_hub() {
	if [ -n "$hub_pid" ]; then
		kill -INT "$hub_pid" 2>/dev/null || true
		wait "$hub_pid" 2>/dev/null || true
		hub_pid=""
	fi
	uncap_cpu
}
trap 'stop_hub' EXIT
go build -o "$bin" .

# start_hub starts a fresh hub (bench/lib.sh) with room for the idle
# connections.
start_hub() { start_signal_hub "$bin" "$out" $((idle + 1000)); }

# bench NAME ARGS... runs the generator on core 0 against a fresh hub.
bench() {
	local name="$1"
	shift
	start_hub
	echo "signal.sh: $name: rtckit signal bench --url $hub_url --hub-pid $hub_pid $*" >&2
	taskset -c 0 "$bin" --json signal bench --url "$hub_url" --hub-pid "$hub_pid" "$@" >"$out/$name.json"
	stop_hub
}

# bench_capped NAME PERCENT ARGS... is bench with the hub held to PERCENT
# % of its core; it leaves no report when the cap cannot be set.
bench_capped() {
	local name="$1" percent="$2"
	shift 2
	start_hub
	if cap_cpu "$hub_pid" "$percent"; then
		echo "signal.sh: $name: hub capped at $percent %: rtckit signal bench --url $hub_url --hub-pid $hub_pid $*" >&2
		taskset -c 0 "$bin" --json signal bench --url "$hub_url" --hub-pid "$hub_pid" "$@" >"$out/$name.json"
	fi
	stop_hub
}

# The idle scenario runs last: its ~20,000 closed connections linger in
# TIME_WAIT for a minute and slow the loopback TCP stack of whatever runs
# next (about 20 % more hub CPU per message at 45,000 msg/s).
bench max --pairs "$pairs" --rate 0 --duration "$duration"
bench rate --pairs "$pairs" --rate "$rate" --duration "$duration"
bench rate_goroutines --pairs "$pairs" --rate "$rate" --duration "$duration" --engine goroutines
bench_capped cap70 70 --pairs "$pairs" --rate 0 --duration "$duration"
bench_capped cap50 50 --pairs "$pairs" --rate 0 --duration "$duration"
bench idle --pairs 0 --idle "$idle" --duration 5s --source-ip 127.0.0.2-127.0.0.9

echo "| scenario | connections held | messages/s | p50 ms | p99 ms | p50 / p99 ms at the socket | hub loop turn p99 ≤ ms | hub KiB per connection | hub µs CPU per message | messages per hub CPU-second | generator % of its core | lost | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
row() {
	jq -r --arg name "$2" '
		def ms: if . == null then "–" else (. / 1e6 * 100 | round / 100 | tostring) end;
		def r(n): (. * n | round) / n;
		"| \($name) | \(.connections) | \(if .sent > 0 then (.messages_per_second | round | tostring) else "–" end) | \(.latency.p50_ns | ms) | \(.latency.p99_ns | ms) | \(if .socket_latency then "\(.socket_latency.p50_ns | ms) / \(.socket_latency.p99_ns | ms)" else "–" end) | \(.hub.loop_turns.p99_at_most_ns | if . == null then "–" elif . < 0 then "> 41" else (. / 1e6 | tostring) end) | \(.hub.bytes_per_connection / 1024 | r(100)) | \(if .delivered > 0 then (.hub.cpu_per_message_ns / 1000 | r(100) | tostring) else "–" end) | \(if .delivered > 0 then (.hub.messages_per_cpu_second | round | tostring) else "–" end) | \(if .generator then (.generator.core_share * 100 | round | tostring) else "–" end) | \(.lost) | \(.errors.dial) dial, \(.errors.send) send, \(.errors.disconnects) disconnects\(if .errors.server then ", " + (.errors.server | to_entries | map("\(.key) \(.value)") | join(", ")) else "" end) |"' \
		"$out/$1.json"
}
# optional_row FILE NAME is row for a scenario that may have been skipped.
optional_row() { if [ -s "$out/$1.json" ]; then row "$@"; fi; }
row idle "(a) $idle idle connections"
row max "(b) $pairs pairs, as fast as possible"
row rate "(c) $pairs pairs at $rate msg/s"
row rate_goroutines "(c) $pairs pairs at $rate msg/s, goroutine engine"
optional_row cap70 "(d) $pairs pairs, as fast as possible, hub capped at 70 % of its core"
optional_row cap50 "(d) $pairs pairs, as fast as possible, hub capped at 50 % of its core"
echo
echo "Raw reports: $out/{idle,max,rate,rate_goroutines,cap70,cap50}.json" >&2
