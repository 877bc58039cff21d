#!/usr/bin/env bash
# Benchmark: full NAT classification time of `rtckit stun probe` versus
# coturn's turnutils_natdiscovery, both against coturn in the same
# network-namespace NAT lab, median of RUNS runs per NAT kind. Needs root
# and coturn (scripts/test.sh installs it). Prints a Markdown table.
#
# Usage: bench/stunprobe.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-5}"
bin="$(mktemp -d)/rtckit"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" .
go run ./bench/natprobe -rtckit "$bin" -runs "$runs"
