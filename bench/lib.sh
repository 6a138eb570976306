# Shared by the bench scripts, sourced after they set repo.

# work is a fresh temp dir; OUT (default $work/out) keeps the outputs.
work=$(mktemp -d)
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
# How long a freshly started server may take to listen (tenths of a second).
START_TRIES=100

# wait_for MESSAGE CMD...: runs CMD every 0.1 s until it succeeds, at most
# START_TRIES times; then prints MESSAGE and exits.
wait_for() {
	local msg=$1 i
	shift
	for ((i = 0; i < START_TRIES; i++)); do
		if "$@"; then
			return
		fi
		sleep 0.1
	done
	echo "$msg" >&2
	exit 1
}
