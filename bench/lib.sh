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
