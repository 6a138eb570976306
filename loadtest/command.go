package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// CommandName is the name of the load-test subcommand.
const CommandName = "webrtc-loadtest"

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  CommandName,
		Usage: "--url <ws(s)://host/path> [--peers 1000] [--room-size 5] [--rate 2 | --flat-out] [--duration 30s] [--churn-peers 3000 --churn-hold 5s] [--token-secret <secret>] [--pid <server pid>] [--json]",
		Short: "Load-tests a webrtc_signaling route (or a PeerJS server)",
		Long: `
Opens --peers signaling peers against --url, grouped in rooms of
--room-size, ramping up at --ramp connections per second. Once all have
dialed, every peer sends --rate signals per second of about --size bytes
to its room-mates in turn, for --duration. Each signal carries a sequence
number and a send time, so receivers count lost, duplicated and misordered
signals and measure the relay latency. A progress line is printed every
second on stderr, and a summary at the end on stdout (--json for
machines). --rate 0 holds idle connections (to measure memory per peer).

With --pid of a server process on this host, the summary has its RSS
(/proc/<pid>/status VmRSS) and CPU use (/proc/<pid>/stat utime+stime).

The route's default limits stop a load test from one IP (50 connections
per IP, 20 frames/s per peer). Configure the route under test with
    limits {
        connections_per_ip 100000
        frames_per_second  1000
        burst              1000
    }

--protocol peerjs load-tests a PeerJS server (--url ws://host:port/peerjs)
with OFFER messages between peers whose ids the load tester assigns.

--churn-peers adds peers, in rooms of their own, that come and go while
the others send: each joins, stays --churn-hold (give or take a quarter),
leaves with a normal close and joins again. The summary counts their joins
and leaves; it is the load for a hub's webhooks (see bench/webhooks.sh).

--token-secret mints a room token for every peer (sub = peer index).
Placeholders such as {env.ROOM_TOKEN_SECRET} are replaced.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Args = cobra.NoArgs
			addFlags(cmd)
			// Wrapped per call so output goes to the command's writers,
			// which tests replace.
			cmd.RunE = func(c *cobra.Command, args []string) error {
				run := func(fl caddycmd.Flags) (int, error) {
					return runCommand(fl, c.OutOrStdout(), c.ErrOrStderr())
				}
				return caddycmd.WrapCommandFuncForCobra(run)(c, args)
			}
		},
	})
}

func addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("url", "", "Signaling URL, e.g. wss://example.com/rtc/ws or ws://127.0.0.1:9000/peerjs")
	f.String("protocol", ProtocolCaddy, "caddy (webrtc_signaling protocol v1) or peerjs")
	f.Int("peers", 100, "Peers to connect")
	f.Int("room-size", DefaultRoomSize, "Peers per room")
	f.Float64("rate", DefaultRate, "Signals per second each peer sends (0: idle)")
	f.Bool("flat-out", false, "Send as fast as the server relays (--window signals in flight per peer)")
	f.Int("window", DefaultWindow, "Signals in flight per peer with --flat-out")
	f.Int("size", DefaultSize, "Approximate signal payload size in bytes")
	f.Duration("duration", DefaultDuration, "How long to send once all peers have dialed")
	f.Duration("drain", DefaultDrain, "How long signals in flight may still arrive after --duration; later ones count as lost")
	f.String("room-prefix", "", "Prefix of room names (default: random)")
	f.String("token-secret", "", "Room token secret or a placeholder such as {env.VAR}")
	f.Bool("insecure", false, "Skip TLS certificate verification (e.g. Caddy's internal CA)")
	f.Float64("ramp", DefaultRamp, "Connections per second while ramping up")
	f.Int("dials", DefaultDials, "Concurrent dials while ramping up")
	f.Int("churn-peers", 0, "More peers, in rooms of their own, that join, stay --churn-hold, leave and join again while the others send")
	f.Duration("churn-hold", DefaultChurnHold, "How long a churning peer stays (give or take a quarter)")
	f.Int("pid", 0, "PID of the server process on this host, for its RSS and CPU")
	f.Bool("json", false, "Print the summary as JSON")
}

// runCommand runs the load test the flags describe until it ends or the
// process is interrupted.
func runCommand(fl caddycmd.Flags, out, progress io.Writer) (int, error) {
	cfg, err := configFromFlags(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	// Ctrl-C ends the run early, with a summary of what was measured.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := Run(ctx, cfg, progress)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(s)
	} else {
		err = s.WriteText(out)
	}
	if err != nil {
		return caddy.ExitCodeFailedQuit, fmt.Errorf("writing the summary: %v", err)
	}
	return caddy.ExitCodeSuccess, nil
}

// configFromFlags builds the Config.
func configFromFlags(fl caddycmd.Flags) (Config, error) {
	cfg := Config{
		URL: fl.String("url"), Protocol: fl.String("protocol"),
		Peers: fl.Int("peers"), RoomSize: fl.Int("room-size"),
		Rate: fl.Float64("rate"), FlatOut: fl.Bool("flat-out"), Window: fl.Int("window"),
		Size: fl.Int("size"), Duration: fl.Duration("duration"), Drain: fl.Duration("drain"), RoomPrefix: fl.String("room-prefix"),
		Insecure: fl.Bool("insecure"), Ramp: fl.Float64("ramp"), Dials: fl.Int("dials"), PID: fl.Int("pid"),
		ChurnPeers: fl.Int("churn-peers"), ChurnHold: fl.Duration("churn-hold"),
	}
	if cfg.URL == "" {
		return cfg, fmt.Errorf("missing required flag --url")
	}
	if s := fl.String("token-secret"); s != "" {
		secrets, err := turncreds.ResolveSecrets(caddy.NewReplacer(), []string{s})
		if err != nil {
			// Quotes the flag only when it resolved to nothing, so it
			// holds placeholders, not a secret.
			return cfg, fmt.Errorf("--token-secret: %w", err)
		}
		cfg.TokenSecret = []byte(secrets[0])
	}
	return cfg, nil
}
