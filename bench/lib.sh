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

# cap_cpu PID PERCENT moves PID into a cgroup of its own that may use
# PERCENT % of one core (CPU quota over a 2 ms period, so that the
# process runs in slices of about a millisecond; the kernel's smallest
# quota, 1 ms, makes 50 the lowest PERCENT), and sets capped_cgroup to that
# cgroup's directory for uncap_cpu. It returns 1, saying why, when this
# machine gives no CPU controller to this user (root, cgroup v1 or v2) or
# the process could not be moved. On cgroup v2 it enables the cpu
# controller for the root's children, if it was not, and leaves it so.
cap_cpu() {
	local pid="$1" percent="$2" period=2000 quota dir
	quota=$((period * percent / 100))
	capped_cgroup=""
	if ((quota < 1000)); then
		say "cannot cap the hub's CPU at $percent %: the kernel's smallest quota is 1 ms per 2 ms period (50 %)"
		return 1
	fi
	if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		dir="/sys/fs/cgroup/rtckit-bench-$$"
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || { echo +cpu >/sys/fs/cgroup/cgroup.subtree_control; } 2>/dev/null || true
		if ! { mkdir -p "$dir" && echo "$quota $period" >"$dir/cpu.max"; } 2>/dev/null; then
			say "cannot cap the hub's CPU: no writable cgroup v2 cpu controller (run as root)"
			rmdir "$dir" 2>/dev/null || true
			return 1
		fi
	elif [ -w /sys/fs/cgroup/cpu ]; then
		dir="/sys/fs/cgroup/cpu/rtckit-bench-$$"
		if ! { mkdir -p "$dir" && echo "$period" >"$dir/cpu.cfs_period_us" && echo "$quota" >"$dir/cpu.cfs_quota_us"; } 2>/dev/null; then
			say "cannot cap the hub's CPU: the cgroup v1 cpu controller refused the quota"
			rmdir "$dir" 2>/dev/null || true
			return 1
		fi
	else
		say "cannot cap the hub's CPU: no cgroup cpu controller is writable (run as root)"
		return 1
	fi
	# A failure here would leave the hub uncapped under a "capped" label.
	if ! { echo "$pid" >"$dir/cgroup.procs"; } 2>/dev/null || ! grep -qx "$pid" "$dir/cgroup.procs"; then
		say "cannot move process $pid into $dir"
		rmdir "$dir" 2>/dev/null || true
		return 1
	fi
	capped_cgroup="$dir"
}

# uncap_cpu removes the cgroup of cap_cpu once its process has exited.
uncap_cpu() {
	if [ -n "${capped_cgroup:-}" ]; then
		rmdir "$capped_cgroup" 2>/dev/null || say "could not remove $capped_cgroup"
		capped_cgroup=""
	fi
}
