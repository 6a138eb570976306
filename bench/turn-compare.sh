#!/usr/bin/env bash
# Compares the embedded TURN server (the `turn` app in this module's Caddy,
# pion/turn underneath) with coturn from Debian's package under the same
# load: coturn's own client, `turnutils_uclient -y` (client to client
# through the relay, every message crossing the server twice), with TURN
# REST credentials under one shared secret. Loopback only. Each round
# starts both servers fresh, one after the other, and the table has the
# medians of the rounds.
#
# Usage: bench/turn-compare.sh
# Environment:
#   ROUNDS=3          rounds per row and server (the table has medians)
#   DURATION=10       seconds of load per run (the message count is derived
#                     from it and the row's interval)
#   ROWS="udp50 udp200 tcp50 overload"
#   SERVERS="coturn embedded"
#   BASE_PORT=3578    embedded listens on BASE_PORT, coturn on BASE_PORT+1
#   CADDY=<binary>    use this caddy instead of building ./cmd/caddy
#   BASELINE=<binary> also run this caddy (say, built from the commit before a
#                     change) as the server "baseline", side by side with the
#                     others in every round; SERVERS then defaults to
#                     "coturn baseline embedded"
#   OUT=<dir>         keep the client outputs and server logs there
# Needs go, ss (iproute2) and coturn (`apt-get install -y coturn`, asked for
# when turnserver or turnutils_uclient is missing and we are root).
#
# The rows (uclient flags; -c: no RTCP companion sessions):
#   udp50     UDP, 50 clients,  1000 B every 10 ms   -m 50  -l 1000 -z 10
#   udp200    UDP, 200 clients,  200 B every 20 ms   -m 200 -l 200  -z 20
#   tcp50     TCP, 50 clients,  1000 B every 10 ms   -t -m 50 -l 1000 -z 10
#   overload  UDP, 100 clients, 1000 B every 1 ms    -m 100 -l 1000 -z 1
# Columns: loss and round-trip time as uclient prints them; server CPU
# (utime+stime from /proc/<pid>/stat, from just before the client starts to
# just after it ends) divided by the messages the clients received, i.e. per
# message relayed end to end (two hops through the server: in on the
# listener, out of one relay socket, in on the other, out to the client);
# RSS of the whole server process (coturn; all of Caddy) when the load ends.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
ROWS=${ROWS:-udp50 udp200 tcp50 overload}
if [[ -n ${BASELINE:-} ]]; then
	SERVERS=${SERVERS:-coturn baseline embedded}
else
	SERVERS=${SERVERS:-coturn embedded}
fi
BASE_PORT=${BASE_PORT:-3578}
SECRET=benchsecret$$
REALM=bench
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh" # sets work (a temp dir), OUT and START_TRIES
: >"$OUT/results"
server_pid=
hz=$(getconf CLK_TCK)

cleanup() {
	stop_server
	rm -rf "$work/xdg"
}
trap cleanup EXIT

need_coturn() {
	if command -v turnserver >/dev/null && command -v turnutils_uclient >/dev/null; then
		return
	fi
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing coturn..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y coturn >&2 ||
			{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y coturn >&2; }
		# The package enables a system service; it must not share the machine.
		systemctl disable --now coturn >/dev/null 2>&1 || true
	else
		echo "coturn is missing: apt-get install -y coturn" >&2
		exit 1
	fi
}

build() {
	if [[ -n ${CADDY:-} ]]; then
		cp "$CADDY" "$work/caddy"
	else
		echo "building caddy..." >&2
		(cd "$repo" && go build -o "$work/caddy" ./cmd/caddy)
	fi
	if [[ -n ${BASELINE:-} ]]; then
		cp "$BASELINE" "$work/caddy-baseline"
	fi
	# Loopback peers are denied by default (the deny list); the benchmark's
	# peers are the clients' relay addresses on 127.0.0.1.
	cat >"$work/Caddyfile" <<CADDYFILE
{
	admin off
	persist_config off
	log {
		level ERROR
	}
	turn {
		realm $REALM
		secret $SECRET
		listen udp/127.0.0.1:$BASE_PORT tcp/127.0.0.1:$BASE_PORT
		relay_address 127.0.0.1
		public_ip 127.0.0.1
		allow_peers 127.0.0.0/8
	}
}
CADDYFILE
}

# start_server NAME: runs the server in the background (exec'd, so that
# server_pid is the server process itself) and sets port.
start_server() {
	local p=$BASE_PORT
	[[ $1 == coturn ]] && p=$((BASE_PORT + 1))
	local bin=$work/caddy
	[[ $1 == baseline ]] && bin=$work/caddy-baseline
	# coturn binds with SO_REUSEPORT: a server left over on the port would
	# quietly take part of the load.
	if [[ -n $(ss -Hlun "sport = :$p") || -n $(ss -Hltn "sport = :$p") ]]; then
		echo "port $p is taken: $(ss -Hlunp "sport = :$p")" >&2
		exit 1
	fi
	case $1 in
	embedded | baseline)
		port=$BASE_PORT
		XDG_DATA_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg \
			"$bin" run --config "$work/Caddyfile" --adapter caddyfile >>"$OUT/caddy.log" 2>&1 &
		;;
	coturn)
		port=$((BASE_PORT + 1))
		turnserver -n --listening-ip=127.0.0.1 --listening-port="$port" --relay-ip=127.0.0.1 \
			--use-auth-secret --static-auth-secret="$SECRET" --realm="$REALM" --allow-loopback-peers \
			--no-cli --no-tls --no-dtls --no-stdout-log --log-file="$OUT/coturn.log" \
			--pidfile="$work/coturn.pid" >>"$OUT/coturn.out" 2>&1 &
		;;
	esac
	server_pid=$!
	wait_for "$1 did not start listening on $port" listening "$port"
}

# listening PORT: whether something listens on UDP and TCP PORT.
listening() { [[ -n $(ss -Hlun "sport = :$1") && -n $(ss -Hltn "sport = :$1") ]]; }

stop_server() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}

# row NAME: the uclient flags of a row, the message count from DURATION.
row() {
	local z
	case $1 in
	udp50) z=10 && echo "-m 50 -l 1000 -z $z" ;;
	udp200) z=20 && echo "-m 200 -l 200 -z $z" ;;
	tcp50) z=10 && echo "-t -m 50 -l 1000 -z $z" ;;
	overload) z=1 && echo "-m 100 -l 1000 -z $z" ;;
	*) echo "unknown row $1" >&2 && exit 1 ;;
	esac
	echo "-n $((DURATION * 1000 / z))"
}

# cpu_ticks PID: utime+stime of the process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# run_one SERVER ROW ROUND: one load run; appends a result line
# "row server round recv lost% rtt_ms cpu_us_per_msg rss_mib" to results.
run_one() {
	local server=$1 r=$2 round=$3 log
	log="$OUT/$r-$server-$round.txt"
	start_server "$server"
	local t0 t1 rss
	t0=$(cpu_ticks "$server_pid")
	# shellcheck disable=SC2046 # the flags are words
	timeout $((DURATION * 4 + 30)) turnutils_uclient -y -c $(row "$r") -W "$SECRET" -p "$port" 127.0.0.1 >"$log" 2>&1 || true
	t1=$(cpu_ticks "$server_pid")
	rss=$(rss_kib "$server_pid")
	stop_server
	awk -v row="$r" -v server="$server" -v round="$round" -v ticks=$((t1 - t0)) -v hz="$hz" -v rss="$rss" '
		/tot_recv_msgs=/ && !/msz=/ { sub(/.*tot_recv_msgs=/, ""); recv = $1 + 0 }
		/Total lost packets/ { sub(/^[^(]*\(/, ""); sub(/%.*/, ""); lost = $1 + 0 }
		/Average round trip delay/ { sub(/.*delay /, ""); rtt = $1 + 0 }
		END {
			cpu = recv ? ticks / hz / recv * 1e6 : -1
			printf "%s %s %s %d %.2f %.3f %.1f %.0f\n", row, server, round, recv, lost, rtt, cpu, rss / 1024
		}' "$log" >"$work/line"
	# A client that timed out printed no totals: the run is left out of the
	# medians (the table's runs column shows it).
	if [[ $(awk '{print $4}' "$work/line") == 0 ]]; then
		echo "$(cat "$work/line") (no totals from the client: left out)" >&2
	else
		tee -a "$OUT/results" <"$work/line" >&2
	fi
}

measure() {
	local round r server
	for round in $(seq "$ROUNDS"); do
		for r in $ROWS; do
			for server in $SERVERS; do
				run_one "$server" "$r" "$round"
			done
		done
	done
}

# table prints the medians per row and server, and the embedded/coturn
# ratio of CPU per message.
table() {
	awk -v rows="$ROWS" -v servers="$SERVERS" '
		function med(key, col,    n, i, j, t, a) {
			n = split(vals[key, col], a, " ")
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n ? a[int((n + 1) / 2)] : "-"
		}
		{ for (c = 4; c <= 8; c++) vals[$1 " " $2, c] = vals[$1 " " $2, c] " " $c; runs[$1 " " $2]++ }
		END {
			print "| row | server | runs | received | loss % | rtt ms | CPU µs/msg | RSS MiB | CPU ratio to coturn |"
			print "|---|---|---|---|---|---|---|---|---|"
			nr = split(rows, R, " "); ns = split(servers, S, " ")
			for (i = 1; i <= nr; i++) for (j = 1; j <= ns; j++) {
				k = R[i] " " S[j]; if (!runs[k]) continue
				ratio = "-"
				if (runs[R[i] " coturn"] && med(R[i] " coturn", 7) > 0) ratio = sprintf("%.2fx", med(k, 7) / med(R[i] " coturn", 7))
				printf "| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", R[i], S[j], runs[k], med(k, 4), med(k, 5), med(k, 6), med(k, 7), med(k, 8), ratio
			}
		}' "$OUT/results"
}

need_coturn
build
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# row server round received loss% rtt_ms cpu_us_per_msg rss_mib" >&2
measure
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
table
echo "client outputs and server logs: $OUT" >&2
