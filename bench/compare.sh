#!/usr/bin/env bash
# Compares this module's signaling route with PeerJS server 1.0.2 and the
# bare gorilla/websocket relay (bench/barerelay) under the same workloads,
# measured with `caddy webrtc-loadtest`, and prints the medians as a table.
# Each server runs fresh for every workload and round, on loopback only.
#
# Usage: bench/compare.sh
# Environment (defaults are the BENCHMARKS.md workloads):
#   ROUNDS=3            rounds per server and workload (the table has medians)
#   DURATION=30s        sending phase of the rooms and flat-out workloads
#   IDLE_DURATION=10s   how long the idle peers are held
#   ROOM_PEERS=3000 FLAT_PEERS=200 IDLE_PEERS=10000
#   SERVERS="caddy peerjs bare"  (add "base" with BASELINE)
#   BASELINE=<git rev>  also build caddy from that revision of this repository,
#                       as server "base": an A/B of a change in one run
#   WORKLOADS="rooms flat idle"
#   BASE_PORT=19300     caddy, peerjs, bare and base listen on BASE_PORT+0, +1, +2, +3
#   OUT=<dir>           keep the JSON summaries and logs there
# Needs go, node and npm (npm install peer@1.0.2 runs in a temp dir).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-30s}
IDLE_DURATION=${IDLE_DURATION:-10s}
ROOM_PEERS=${ROOM_PEERS:-3000}
FLAT_PEERS=${FLAT_PEERS:-200}
IDLE_PEERS=${IDLE_PEERS:-10000}
SERVERS=${SERVERS:-caddy peerjs bare}
WORKLOADS=${WORKLOADS:-rooms flat idle}
BASE_PORT=${BASE_PORT:-19300}
BASELINE=${BASELINE:-}
# Ramp rate (connections/s) and the signal size of every workload.
RAMP=500
SIZE=600
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh" # sets work (a temp dir), OUT and START_TRIES
server_pid=

cleanup() {
	stop_server
	rm -rf "$work/xdg" "$work/node_modules" "$work/base-src"
}
trap cleanup EXIT

build() {
	echo "building caddy and barerelay..." >&2
	(cd "$repo" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/barerelay" ./bench/barerelay)
	if [[ -n $BASELINE ]]; then
		echo "building caddy at $BASELINE as base..." >&2
		mkdir -p "$work/base-src"
		git -C "$repo" archive "$BASELINE" | tar -x -C "$work/base-src"
		(cd "$work/base-src" && go build -o "$work/base-caddy" ./cmd/caddy)
	fi
	echo "installing peer@1.0.2..." >&2
	(cd "$work" && npm install --silent --no-audit --no-fund peer@1.0.2 >/dev/null)
	# Generous limits: every load-test peer comes from one IP, and the
	# flat-out workload sends far more than 20 frames/s per peer.
	caddyfile $((BASE_PORT)) >"$work/Caddyfile"
	caddyfile $((BASE_PORT + 3)) >"$work/Caddyfile-base"
}

# caddyfile PORT: the config of either caddy.
caddyfile() {
	cat <<CADDYFILE
{
	admin off
	persist_config off
	log {
		level ERROR
	}
}
http://127.0.0.1:$1 {
	handle /rtc/* {
		webrtc_signaling {
			limits {
				connections_per_ip 100000
				frames_per_second  100000
				burst              100000
			}
		}
	}
}
CADDYFILE
}

# start_server NAME: runs the server in the background (exec, so that
# server_pid is the server itself, whose RSS and CPU are measured) and
# sets url and proto.
start_server() {
	local port
	case $1 in
	caddy)
		port=$BASE_PORT url="ws://127.0.0.1:$port/rtc/ws" proto=caddy
		XDG_DATA_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg \
			"$work/caddy" run --config "$work/Caddyfile" >>"$OUT/caddy.log" 2>&1 &
		;;
	peerjs)
		port=$((BASE_PORT + 1)) url="ws://127.0.0.1:$port/peerjs" proto=peerjs
		(cd "$work" && exec node -e "require('peer').PeerServer({port: $port, host: '127.0.0.1', concurrent_limit: 1000000})") \
			>>"$OUT/peerjs.log" 2>&1 &
		;;
	base)
		port=$((BASE_PORT + 3)) url="ws://127.0.0.1:$port/rtc/ws" proto=caddy
		XDG_DATA_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg \
			"$work/base-caddy" run --config "$work/Caddyfile-base" >>"$OUT/base.log" 2>&1 &
		;;
	bare)
		port=$((BASE_PORT + 2)) url="ws://127.0.0.1:$port/rtc/ws" proto=caddy
		"$work/barerelay" -addr "127.0.0.1:$port" >>"$OUT/bare.log" 2>&1 &
		;;
	esac
	server_pid=$!
	wait_for "$1 did not start listening on $port" curl -s -o /dev/null "http://127.0.0.1:$port/"
}

stop_server() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}

# workload NAME: the load-test flags of a workload.
workload() {
	case $1 in
	rooms) echo "--peers $ROOM_PEERS --room-size 5 --rate 2 --duration $DURATION" ;;
	flat) echo "--peers $FLAT_PEERS --room-size 5 --flat-out --duration $DURATION" ;;
	idle) echo "--peers $IDLE_PEERS --room-size 5 --rate 0 --duration $IDLE_DURATION" ;;
	esac
}

measure() {
	local round server wl
	for round in $(seq "$ROUNDS"); do
		for wl in $WORKLOADS; do
			for server in $SERVERS; do
				start_server "$server"
				echo "round $round: $server $wl" >&2
				# shellcheck disable=SC2046 # the flags are words
				"$work/caddy" webrtc-loadtest --protocol "$proto" --url "$url" --pid "$server_pid" \
					--ramp "$RAMP" --size "$SIZE" $(workload "$wl") --json \
					>"$OUT/$server-$wl-$round.json" 2>"$OUT/$server-$wl-$round.progress"
				stop_server
			done
		done
	done
}

# table prints the medians of every server and workload.
table() {
	node - "$OUT" "$SERVERS" <<'JS'
const fs = require("fs");
const [dir, servers] = process.argv.slice(2);
const med = (xs) => { xs = xs.filter((x) => x !== undefined).sort((a, b) => a - b); return xs.length ? xs[(xs.length - 1) >> 1] : NaN; };
const load = (s, w) => fs.readdirSync(dir).filter((f) => f.startsWith(`${s}-${w}-`) && f.endsWith(".json"))
	.map((f) => JSON.parse(fs.readFileSync(`${dir}/${f}`)));
// perFrame is the server's CPU per relayed frame: a core's share over the frames delivered per second.
const perFrame = (r) => r.msgs_per_sec > 0 ? r.server.cpu_percent * 1e4 / r.msgs_per_sec : undefined;
const cols = {
	rooms: [["connected", (r) => r.connected], ["join p50 ms", (r) => r.join_p50_ms], ["join p99 ms", (r) => r.join_p99_ms],
		["relay p50 ms", (r) => r.relay_p50_ms], ["p90", (r) => r.relay_p90_ms], ["p99", (r) => r.relay_p99_ms], ["max", (r) => r.relay_max_ms],
		["lost", (r) => r.lost], ["dup", (r) => r.duplicated], ["misord", (r) => r.misordered], ["msgs/s", (r) => r.msgs_per_sec],
		["CPU % core", (r) => r.server.cpu_percent], ["CPU µs/frame", perFrame], ["RSS MiB", (r) => r.server.rss_end_bytes / 1048576]],
	flat: [["connected", (r) => r.connected], ["msgs/s", (r) => r.msgs_per_sec], ["relay p50 ms", (r) => r.relay_p50_ms],
		["p99", (r) => r.relay_p99_ms], ["max", (r) => r.relay_max_ms], ["lost", (r) => r.lost], ["misord", (r) => r.misordered],
		["CPU % core", (r) => r.server.cpu_percent], ["CPU µs/frame", perFrame], ["RSS MiB", (r) => r.server.rss_end_bytes / 1048576]],
	idle: [["connected", (r) => r.connected], ["failed", (r) => r.failed], ["join p50 ms", (r) => r.join_p50_ms], ["join p99 ms", (r) => r.join_p99_ms],
		["RSS MiB", (r) => r.server.rss_end_bytes / 1048576], ["KiB/peer", (r) => r.server.rss_per_peer_bytes / 1024]],
};
const fmt = (x) => Number.isNaN(x) ? "-" : Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 0);
for (const [w, cs] of Object.entries(cols)) {
	if (!servers.split(/\s+/).some((s) => s && load(s, w).length)) continue; // workload not run
	console.log(`\n${w}\n\n| server | runs | ${cs.map((c) => c[0]).join(" | ")} |`);
	console.log(`|---|---|${cs.map(() => "---").join("|")}|`);
	for (const s of servers.split(/\s+/).filter(Boolean)) {
		const rs = load(s, w);
		console.log(`| ${s} | ${rs.length} | ${cs.map(([, f]) => fmt(med(rs.map(f)))).join(" | ")} |`);
	}
}
JS
}

build
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
measure
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
table
echo "JSON summaries and progress logs: $OUT" >&2
