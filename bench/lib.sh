# bench/lib.sh holds what the benchmark scripts share; source it after
# defining say (the script's message function).

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

# start_signal_hub BIN DIR MAX_CONNECTIONS starts `BIN signal serve` on a
# free loopback port, pinned to core 1, with its output in DIR; it sets
# hub_pid and hub_url (a 127.0.0.1 URL), or exits when the hub does not
# start.
start_signal_hub() {
	local bin="$1" dir="$2" max="$3"
	: >"$dir/hub.json"
	taskset -c 1 "$bin" --json signal serve --listen 127.0.0.1:0 --rate 0 \
		--max-connections "$max" >"$dir/hub.json" 2>"$dir/hub.log" &
	hub_pid=$!
	hub_url=""
	for _ in $(seq 100); do
		hub_url="$(jq -r 'select(.event=="listening") | .websocket' "$dir/hub.json" 2>/dev/null || true)"
		[ -n "$hub_url" ] && break
		sleep 0.1
	done
	if [ -z "$hub_url" ]; then
		say "the hub did not start:"
		cat "$dir/hub.log" >&2
		exit 1
	fi
	hub_url="${hub_url/localhost/127.0.0.1}"
}
