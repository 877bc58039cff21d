#!/usr/bin/env bash
# scripts/test.sh is rtckit's one test command, run by developers and by CI
# (.ci/run). It installs what the tests need, checks formatting, vet and the
# generated CLI reference, runs every test with the race detector, and gives
# each fuzz target a short run.
#
# Environment:
#   CI        Passed through untouched. When CI=true, tests that need root,
#             network namespaces or external programs (coturn, Chromium) must
#             fail rather than skip when those are missing.
#   FUZZTIME  How long to run each fuzz target (a go test -fuzztime value);
#             default 20000x, a count of inputs (1-10 s per target here),
#             0 skips fuzzing.
#
# Usage: scripts/test.sh   (from any directory)
set -euo pipefail

# Debian packages the tests need. gcc and libc6-dev are for the race detector
# (cgo); the rest are for integration tests (TURN server, network namespaces,
# NAT rules, browsers, ffprobe for recordings, libvpx/libopus for the
# camera build of call).
APT_PACKAGES="gcc libc6-dev pkg-config coturn iproute2 iptables nftables conntrack chromium firefox-esr ffmpeg libvpx-dev libopus-dev"

# A count, not a duration: Go 1.26's fuzzing engine can miss its own
# deadline when a duration runs out and report "context deadline exceeded"
# without a failing input (go.dev/issue/75804, fixed in Go 1.27); a count
# sets no deadline.
FUZZTIME="${FUZZTIME:-20000x}"
FUZZ_ATTEMPTS=3
GO_TEST_TIMEOUT="30m"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }
die() {
	say "FAIL: $*"
	exit 1
}
step() { printf '\n==> %s\n' "$*"; }

# install_packages installs the missing ones of APT_PACKAGES, and nothing when
# all are present.
install_packages() {
	local missing=() pkg
	for pkg in $APT_PACKAGES; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	if ((${#missing[@]} == 0)); then
		say "Debian packages present: $APT_PACKAGES"
		return
	fi
	if [[ $(id -u) -ne 0 ]]; then
		die "missing Debian packages: ${missing[*]}; install them as root:
  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	fi
	say "installing Debian packages: ${missing[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
}

# go_files lists the tracked and untracked (not ignored) Go files that exist,
# NUL-separated.
go_files() {
	local file
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard -- '*.go'
	else
		find . -name '*.go' -not -path './.git/*' -print0
	fi | while IFS= read -r -d '' file; do
		[[ -f $file ]] && printf '%s\0' "$file"
	done
}

# count_files prints how many files are under directory $1 (0 when it is missing).
count_files() {
	if [[ -d $1 ]]; then
		find "$1" -type f | wc -l
	else
		echo 0
	fi
}

# fuzz_targets prints "package-dir FuzzName" for every fuzz target.
fuzz_targets() {
	local file name
	go_files | grep -z '_test\.go$' | while IFS= read -r -d '' file; do
		{ grep -o '^func Fuzz[A-Za-z0-9_]*(' "$file" || true; } | while IFS= read -r name; do
			name=${name#func }
			printf '%s %s\n' "$(dirname "$file")" "${name%(}"
		done
	done | sort -u
}

step "environment"
install_packages
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found in PATH; install the Go toolchain named in go.mod"
say "$(go version), CI=${CI:-unset}, FUZZTIME=$FUZZTIME"
go mod download || die "go mod download failed"

step "gofmt"
unformatted=$(go_files | xargs -0 -r gofmt -l)
if [[ -n $unformatted ]]; then
	die "these files need gofmt -w:
$unformatted"
fi

step "go vet"
go vet ./... || die "go vet failed"

step "generated CLI docs"
docs_tmp=$(mktemp -d)
trap 'rm -rf "$docs_tmp"' EXIT
go run ./internal/gendocs -out "$docs_tmp" || die "generating the CLI docs failed"
if ! diff -ru docs/cli "$docs_tmp"; then
	die "docs/cli is out of date: run go generate ./cmd"
fi

step "go test -race"
go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" ./... || die "go test failed"

step "camera build (tag mediadevices) and the pure-Go default build"
CGO_ENABLED=0 go build -o /dev/null . || die "the default build must not need cgo"
go vet -tags mediadevices ./... || die "go vet -tags mediadevices failed"
go test -race -count=1 -tags mediadevices ./call/capture/ || die "go test -tags mediadevices ./call/capture failed"
# go test passes when -run matches no test: -v shows that one ran.
if ! capture_out=$(go test -race -count=1 -tags mediadevices -run 'TestCallCapture' -v ./e2e/ 2>&1); then
	printf '%s\n' "$capture_out"
	die "the mediadevices call test failed"
fi
printf '%s\n' "$capture_out"
grep -q '^--- PASS: TestCallCapture' <<<"$capture_out" ||
	die "go test -run TestCallCapture ./e2e/ passed no test; was it renamed?"

step "fuzz (FUZZTIME=$FUZZTIME)"
if [[ $FUZZTIME == 0 || $FUZZTIME == 0s ]]; then
	say "fuzzing skipped"
else
	fuzz_list=$(fuzz_targets) || die "listing the fuzz targets failed"
	[[ -n $fuzz_list ]] || die "no fuzz targets found"
	mapfile -t targets <<<"$fuzz_list"
	for target in "${targets[@]}"; do
		read -r dir name <<<"$target"
		corpus="./$dir/testdata/fuzz/$name"
		# A failing input is always written to the corpus directory, and
		# fails the run at once. A failure without one is the fuzzing
		# engine itself missing its own deadline while it stops its
		# workers ("context deadline exceeded", Go 1.26 with a duration
		# FUZZTIME); such a run is repeated, up to FUZZ_ATTEMPTS times in
		# all. Minimizing a
		# new input is capped so that fuzzing, not shrinking, fills the
		# time.
		attempt=1
		while true; do
			before=$(count_files "$corpus")
			go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 2s "./$dir" </dev/null && break
			after=$(count_files "$corpus")
			((after > before)) && die "fuzzing $name in ./$dir failed; the failing input is under $corpus"
			((attempt < FUZZ_ATTEMPTS)) ||
				die "fuzzing $name in ./$dir failed $attempt times without a failing input"
			say "fuzzing $name stopped without a failing input (attempt $attempt); running it again"
			attempt=$((attempt + 1))
		done
	done
fi

echo "scripts/test.sh: all checks passed"
