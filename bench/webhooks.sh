#!/usr/bin/env bash
# Webhooks under churn, and what a bad receiver does to signaling: one
# Caddy (memory hub) relays signals between --peers peers while
# --churn-peers more come and go (`caddy webrtc-loadtest --churn-peers`),
# each join and leave a webhook event, posted to bench/hookrecv. Four
# scenarios, each on a fresh Caddy, rounds interleaved:
#   none  no webhook configured (the baseline of relay latency)
#   up    the receiver answers 204 at once
#   down  nothing listens at the webhook URL (connection refused)
#   hang  the receiver answers nothing (each attempt waits for its timeout)
# and prints the medians: relay p50/p99 of the signaling peers, the churn's
# joins per second, and for the webhooks the events received, their rate,
# delivery latency (event "at" to arrival) and what Caddy's metrics count
# as sent, failed and dropped.
#
# Usage: bench/webhooks.sh
# Environment:
#   ROUNDS=3  DURATION=30s  PEERS=200  RATE=10  CHURN_PEERS=3000  CHURN_HOLD=5s
#   SCENARIOS="none up down hang"
#   BASE_PORT=19400     Caddy, its admin endpoint and the receiver on +0, +1, +2
#   OUT=<dir>           keep the JSON summaries and logs there
# Needs go and node.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-30s}
PEERS=${PEERS:-200}
RATE=${RATE:-10}
CHURN_PEERS=${CHURN_PEERS:-3000}
CHURN_HOLD=${CHURN_HOLD:-5s}
SCENARIOS=${SCENARIOS:-none up down hang}
BASE_PORT=${BASE_PORT:-19400}
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh" # sets work (a temp dir), OUT and START_TRIES
caddy_port=$BASE_PORT admin_port=$((BASE_PORT + 1)) recv_port=$((BASE_PORT + 2))
caddy_pid= recv_pid=

cleanup() {
	stop caddy_pid
	stop recv_pid
	rm -rf "$work/xdg"
}
trap cleanup EXIT

# stop VAR: ends the process whose pid VAR holds.
stop() {
	local pid=${!1}
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		printf -v "$1" ''
	fi
}

build() {
	echo "building caddy and hookrecv..." >&2
	(cd "$repo" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/hookrecv" ./bench/hookrecv)
}

# caddyfile SCENARIO: the config, with a webhook unless the scenario is none.
caddyfile() {
	local hook=""
	if [[ $1 != none ]]; then
		hook="webhook http://127.0.0.1:$recv_port/hook {
				secret whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==
			}"
	fi
	cat <<CADDYFILE
{
	admin 127.0.0.1:$admin_port
	persist_config off
	log {
		level ERROR
	}
}
http://127.0.0.1:$caddy_port {
	handle /rtc/* {
		webrtc_signaling {
			limits {
				connections_per_ip 100000
				frames_per_second  100000
				burst              100000
			}
			$hook
		}
	}
}
CADDYFILE
}

start() {
	local scenario=$1
	case $scenario in
	up) "$work/hookrecv" -addr "127.0.0.1:$recv_port" >"$OUT/recv-$2.json" 2>>"$OUT/recv.log" & ;;
	hang) "$work/hookrecv" -addr "127.0.0.1:$recv_port" -hang >"$OUT/recv-$2.json" 2>>"$OUT/recv.log" & ;;
	esac
	if [[ $scenario == up || $scenario == hang ]]; then
		recv_pid=$!
		# A TCP connect, not a request: the hanging receiver answers none.
		wait_for "hookrecv did not start" bash -c "exec 3<>/dev/tcp/127.0.0.1/$recv_port" 2>/dev/null
	fi
	caddyfile "$scenario" >"$work/Caddyfile"
	XDG_DATA_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg \
		"$work/caddy" run --config "$work/Caddyfile" >>"$OUT/caddy.log" 2>&1 &
	caddy_pid=$!
	wait_for "caddy did not start" curl -s -o /dev/null "http://127.0.0.1:$caddy_port/"
}

# metrics NAME: Caddy's webhook counters, summed over labels, as JSON.
metrics() {
	curl -s "http://127.0.0.1:$admin_port/metrics" | awk '
		/^caddy_webrtc_signaling_webhook_sent_total/ { sent += $NF }
		/^caddy_webrtc_signaling_webhook_failed_total/ { failed += $NF }
		/^caddy_webrtc_signaling_webhook_dropped_total/ { dropped += $NF }
		/^caddy_webrtc_signaling_webhook_queue_length/ { queue += $NF }
		END { printf "{\"sent\":%d,\"failed\":%d,\"dropped\":%d,\"queue\":%d}\n", sent, failed, dropped, queue }' >"$OUT/metrics-$1.json"
}

measure() {
	local round scenario name
	for round in $(seq "$ROUNDS"); do
		for scenario in $SCENARIOS; do
			name=$scenario-$round
			echo "round $round: $scenario" >&2
			start "$scenario" "$name"
			"$work/caddy" webrtc-loadtest --url "ws://127.0.0.1:$caddy_port/rtc/ws" --pid "$caddy_pid" \
				--peers "$PEERS" --room-size 2 --rate "$RATE" --duration "$DURATION" \
				--churn-peers "$CHURN_PEERS" --churn-hold "$CHURN_HOLD" --ramp 1000 --json \
				>"$OUT/lt-$name.json" 2>"$OUT/lt-$name.progress"
			metrics "$name"
			stop caddy_pid
			stop recv_pid # prints its summary into recv-$name.json
		done
	done
}

table() {
	node - "$OUT" "$SCENARIOS" <<'JS'
const fs = require("fs");
const [dir, scenarios] = process.argv.slice(2);
const med = (xs) => { xs = xs.filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b); return xs.length ? xs[(xs.length - 1) >> 1] : NaN; };
const read = (f) => { try { return JSON.parse(fs.readFileSync(`${dir}/${f}`)); } catch { return undefined; } };
const runs = (s) => fs.readdirSync(dir).filter((f) => f.startsWith(`lt-${s}-`) && f.endsWith(".json"))
	.map((f) => f.slice(3, -5)).map((n) => ({ lt: read(`lt-${n}.json`), m: read(`metrics-${n}.json`), r: read(`recv-${n}.json`) }));
const cols = [
	["relay p50 ms", (x) => x.lt.relay_p50_ms], ["relay p99 ms", (x) => x.lt.relay_p99_ms], ["lost", (x) => x.lt.lost],
	["churn joins/s", (x) => x.lt.churn.joins_per_sec], ["churn fails", (x) => x.lt.churn.failed],
	["CPU % core", (x) => x.lt.server.cpu_percent],
	["events received", (x) => x.r?.events], ["events/s", (x) => x.r?.per_sec], ["dup", (x) => x.r?.duplicates],
	["delivery p50 ms", (x) => x.r?.latency_p50_ms], ["delivery p99 ms", (x) => x.r?.latency_p99_ms],
	["sent", (x) => x.m?.sent], ["failed attempts", (x) => x.m?.failed], ["dropped", (x) => x.m?.dropped], ["queued at end", (x) => x.m?.queue],
];
const fmt = (x) => Number.isNaN(x) ? "-" : Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 0);
console.log(`\n| scenario | runs | ${cols.map((c) => c[0]).join(" | ")} |`);
console.log(`|---|---|${cols.map(() => "---").join("|")}|`);
for (const s of scenarios.split(/\s+/).filter(Boolean)) {
	const rs = runs(s);
	console.log(`| ${s} | ${rs.length} | ${cols.map(([, f]) => fmt(med(rs.map((x) => { try { return f(x); } catch { return undefined; } })))).join(" | ")} |`);
}
JS
}

build
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
measure
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
table
echo "JSON summaries and logs: $OUT" >&2
