#!/usr/bin/env bash
# Benchmark: TURN relay throughput of `rtckit turn serve` versus coturn on
# loopback (a pion TURN client keeps 64 datagrams of 1000 bytes in flight
# through the relay to an echo peer), plus coturn's turnutils_uclient against
# both. Needs coturn (scripts/test.sh installs it). Prints a Markdown table.
#
# Usage: bench/turnrelay.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-3}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/rtckit" .
go run ./bench/turnrelay -rtckit "$dir/rtckit" -runs "$runs"
