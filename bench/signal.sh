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
# With WITH_PEERJS=1 it also runs (a), (b) and (c) against the PeerJS
# server (npm package peer 1.0.2, installed with npm into the output
# directory, run by Node.js on core 1) with the same generator, for a
# comparison in the same sitting.
# Prints a Markdown table on stdout; the raw JSON reports stay in $out.
#
# Usage: [WITH_PEERJS=1] bench/signal.sh [DURATION]   (default 10s per throughput scenario)
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
peerjs_version=1.0.2
peerjs_pid=""
stop_peerjs() {
	if [ -n "$peerjs_pid" ]; then
		# It waits for its connections to close; the generator closed them.
		kill "$peerjs_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$peerjs_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$peerjs_pid" 2>/dev/null || true
		wait "$peerjs_pid" 2>/dev/null || true
		peerjs_pid=""
	fi
}
trap 'stop_hub; stop_peerjs' EXIT
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

# start_peerjs starts a fresh PeerJS server pinned to core 1 on a free
# port, allowing the idle connections; it sets peerjs_pid and peerjs_url.
start_peerjs() {
	local port
	for _ in $(seq 20); do
		port=$((20000 + RANDOM % 40000))
		ss -Hltn "sport = :$port" | grep -q . || break
	done
	taskset -c 1 "$out/peerjs/node_modules/.bin/peerjs" --host 127.0.0.1 --port "$port" \
		--concurrent_limit $((idle + 1000)) >"$out/peerjs.log" 2>&1 &
	peerjs_pid=$!
	peerjs_url="ws://127.0.0.1:$port/peerjs"
	for _ in $(seq 100); do
		grep -q "Started PeerServer" "$out/peerjs.log" && return
		sleep 0.1
	done
	say "the PeerJS server did not start:"
	cat "$out/peerjs.log" >&2
	exit 1
}

# bench_peerjs NAME ARGS... is bench against a fresh PeerJS server.
bench_peerjs() {
	local name="$1" node_pid
	shift
	start_peerjs
	# The server's process is node itself: the npm bin is a script that
	# node runs.
	node_pid="$peerjs_pid"
	echo "signal.sh: $name: rtckit signal bench --protocol peerjs --url $peerjs_url --hub-pid $node_pid $*" >&2
	taskset -c 0 "$bin" --json signal bench --protocol peerjs --url "$peerjs_url" --hub-pid "$node_pid" "$@" >"$out/$name.json"
	stop_peerjs
}

peerjs=""
if [ "${WITH_PEERJS:-}" = 1 ]; then
	command -v npm >/dev/null || { say "WITH_PEERJS=1 needs Node.js and npm"; exit 1; }
	say "installing the PeerJS server (peer@$peerjs_version) with npm"
	npm install --prefix "$out/peerjs" --no-audit --no-fund --silent "peer@$peerjs_version" >&2
	peerjs=1
fi

# The idle scenario runs last: its ~20,000 closed connections linger in
# TIME_WAIT for a minute and slow the loopback TCP stack of whatever runs
# next (about 20 % more hub CPU per message at 45,000 msg/s).
bench max --pairs "$pairs" --rate 0 --duration "$duration"
bench rate --pairs "$pairs" --rate "$rate" --duration "$duration"
bench rate_goroutines --pairs "$pairs" --rate "$rate" --duration "$duration" --engine goroutines
bench_capped cap70 70 --pairs "$pairs" --rate 0 --duration "$duration"
bench_capped cap50 50 --pairs "$pairs" --rate 0 --duration "$duration"
if [ -n "$peerjs" ]; then
	bench_peerjs peerjs_max --pairs "$pairs" --rate 0 --duration "$duration"
	bench_peerjs peerjs_rate --pairs "$pairs" --rate "$rate" --duration "$duration"
fi
bench idle --pairs 0 --idle "$idle" --duration 5s --source-ip 127.0.0.2-127.0.0.9
if [ -n "$peerjs" ]; then
	bench_peerjs peerjs_idle --pairs 0 --idle "$idle" --duration 5s --source-ip 127.0.0.2-127.0.0.9
fi

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
optional_row peerjs_idle "PeerJS server: (a) $idle idle connections"
optional_row peerjs_max "PeerJS server: (b) $pairs pairs, as fast as possible"
optional_row peerjs_rate "PeerJS server: (c) $pairs pairs at $rate msg/s"
echo
echo "Raw reports: $out/*.json" >&2
