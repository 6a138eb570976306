package caddytest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/loadtest"
)

// loadTestSecret signs the smoke test's room tokens.
const loadTestSecret = "loadtest-secret-0123456789abcdef"

// loadTestSite is the signaling route with tokens and limits generous
// enough for every peer of a load test coming from one IP.
const loadTestSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			token_secret ` + loadTestSecret + `
			limits {
				connections_per_ip 100000
				frames_per_second  1000
				burst              1000
			}
		}
	}
}
`

// Smoke-test workload: small enough for CI, busy enough to relay a few
// hundred signals through every room.
const (
	smokePeers    = 50
	smokeRoomSize = 5
	smokeRate     = 5
	smokeDuration = 3 * time.Second
	smokeTimeout  = time.Minute
)

// TestLoadTestSmoke runs caddy webrtc-loadtest's engine for a few seconds
// against the in-process Caddy: every peer joins with a minted token and
// every signal arrives once, in order.
func TestLoadTestSmoke(t *testing.T) {
	loadCaddyfile(t, loadTestSite, false)
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()
	var progress bytes.Buffer
	s, err := loadtest.Run(ctx, loadtest.Config{
		URL: "ws://localhost:9080/rtc/ws", Peers: smokePeers, RoomSize: smokeRoomSize,
		Rate: smokeRate, Duration: smokeDuration, TokenSecret: []byte(loadTestSecret),
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = s.WriteText(&text)
	t.Logf("summary:\n%s", text.String())
	if s.Connected != smokePeers || s.Failed != 0 || s.Dropped != 0 {
		t.Fatalf("connected %d failed %d %v (%s) dropped %d\n%s", s.Connected, s.Failed, s.Failures, s.FirstError, s.Dropped, progress.String())
	}
	if s.Delivered == 0 || s.Lost != 0 || s.Duplicated != 0 || s.Misordered != 0 || len(s.ServerErrors) != 0 {
		t.Fatalf("sent %d delivered %d lost %d duplicated %d misordered %d server errors %v",
			s.Sent, s.Delivered, s.Lost, s.Duplicated, s.Misordered, s.ServerErrors)
	}
}

// TestLoadTestDefaultLimits shows what a load test meets on a route with
// the default connections_per_ip (50): the peers beyond it are refused
// with HTTP 429, and the summary counts them.
func TestLoadTestDefaultLimits(t *testing.T) {
	loadCaddyfile(t, signalingDefaultLimitsSite, false)
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()
	const peers, perIP = 60, 50
	var progress bytes.Buffer
	s, err := loadtest.Run(ctx, loadtest.Config{
		URL: "ws://localhost:9080/rtc/ws", Peers: peers, Rate: 0, Duration: 100 * time.Millisecond,
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if s.Connected != perIP || s.Failures["http_429"] != peers-perIP {
		t.Fatalf("connected %d failures %v, want %d connected and %d refused with 429", s.Connected, s.Failures, perIP, peers-perIP)
	}
	if !bytes.Contains(progress.Bytes(), []byte("connections_per_ip 100000")) {
		t.Fatalf("no hint about limits in the output:\n%s", progress.String())
	}
}

const signalingDefaultLimitsSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling
	}
}
`
