#!/usr/bin/env bash
# Benchmark: `rtckit call` next to headless Chromium on the same hub, in the
# same run. Installs Debian's chromium when missing (needs root for that),
# builds rtckit and bench/callbench, and runs it: one `rtckit signal serve`
# on 127.0.0.1, then RUNS runs (after one warm-up) of
#   setup  a call placed through the hub, timed from just before the offer:
#          answer, ICE connected, DTLS connected, first RTP, first frame;
#          rtckit ↔ rtckit as a fresh answerer and caller process per run
#          (the caller's report phases, and its process wall-clock time),
#          Chromium ↔ Chromium as two tabs of callbench's own page;
#   file   a 256 MiB file over a data channel (docs/file-transfer.md,
#          SHA-256 checked): rtckit --send to --receive, and the same format
#          between the two tabs; MB/s at the sender and the receiver.
#          With -pairs …,pion also two bare pion/webrtc processes (pion's
#          defaults, 64 KiB messages, SHA-256 checked): the reference setup.
# Runs alternate between the pairs. Prints JSON lines (a header with the
# load average, one line per run, a median summary per test and pair) or,
# with -markdown, two tables.
#
# Usage: bench/call.sh [callbench flags]
#   bench/call.sh -markdown
#   bench/call.sh -tests setup -runs 20 -markdown
#   bench/call.sh -tests file -size 64MiB -pairs cli
#   bench/call.sh -tests file -pairs cli,pion -markdown
#
# Environment:
#   RUNS  runs per test and pair when no -runs flag is given (default 10).
#
# Flags of bench/callbench: go run ./bench/callbench -h
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'call bench: %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
source bench/lib.sh

# Chromium is needed unless -pairs names the pairs and leaves it out.
needs_chromium=1
args_seen=("$@")
for i in "${!args_seen[@]}"; do
  case "${args_seen[$i]}" in
    -pairs=*) pairs=${args_seen[$i]#-pairs=} ;;
    -pairs) pairs=${args_seen[$((i + 1))]:-} ;;
    *) continue ;;
  esac
  [[ ",$pairs," == *",chromium,"* ]] || needs_chromium=0
done
((needs_chromium)) && install_missing chromium

args=()
[[ " $* " == *" -runs "* || " $* " == *" -runs="* ]] || args+=(-runs "${RUNS:-10}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/callbench" ./bench/callbench
go build -o "$tmp/rtckit" .
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
"$tmp/callbench" -rtckit "$tmp/rtckit" "${args[@]}" "$@"
