package caddytest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/caddy-webrtc/caddy-webrtc/internal/rtctest"
)

// signalData is what the test peers put in the signal frames' data: the
// same shape a browser app would use.
type signalData struct {
	SDP       *webrtc.SessionDescription `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
}

// rtcPeer is a pion peer that signals through a wsClient.
type rtcPeer struct {
	ws     *wsClient
	pc     *webrtc.PeerConnection
	remote string

	mu      sync.Mutex
	pending []webrtc.ICECandidateInit // candidates that arrived before the remote description
	trickle int                       // candidates this side sent
	sendMu  sync.Mutex
}

func newRTCPeer(t *testing.T, ws *wsClient, cfg webrtc.Configuration) *rtcPeer {
	t.Helper()
	// Host candidates on loopback only: the call never touches another address.
	pc, err := rtctest.LoopbackAPI().NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	p := &rtcPeer{ws: ws, pc: pc}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		p.mu.Lock()
		p.trickle++
		p.mu.Unlock()
		p.sendSignal(signalData{Candidate: &init})
	})
	return p
}

// sendSignal may run on pion's goroutines; gorilla allows one writer.
func (p *rtcPeer) sendSignal(d signalData) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	_ = p.ws.conn.WriteJSON(map[string]any{"type": "signal", "to": p.remote, "data": d})
}

// handle applies one signal frame from the remote peer. It runs on the
// pump goroutine, so it returns errors instead of failing the test.
func (p *rtcPeer) handle(f frame) error {
	var d signalData
	if err := json.Unmarshal(f.Data, &d); err != nil {
		return fmt.Errorf("bad signal data %s: %w", f.Data, err)
	}
	switch {
	case d.SDP != nil:
		if err := p.pc.SetRemoteDescription(*d.SDP); err != nil {
			return fmt.Errorf("set remote %s: %w", d.SDP.Type, err)
		}
		if d.SDP.Type == webrtc.SDPTypeOffer {
			answer, err := p.pc.CreateAnswer(nil)
			if err != nil {
				return fmt.Errorf("create answer: %w", err)
			}
			if err := p.pc.SetLocalDescription(answer); err != nil {
				return fmt.Errorf("set local answer: %w", err)
			}
			p.sendSignal(signalData{SDP: &answer})
		}
		p.mu.Lock()
		pending := p.pending
		p.pending = nil
		p.mu.Unlock()
		for _, c := range pending {
			if err := p.pc.AddICECandidate(c); err != nil {
				return fmt.Errorf("add candidate: %w", err)
			}
		}
	case d.Candidate != nil:
		if p.pc.RemoteDescription() == nil {
			p.mu.Lock()
			p.pending = append(p.pending, *d.Candidate)
			p.mu.Unlock()
			return nil
		}
		if err := p.pc.AddICECandidate(*d.Candidate); err != nil {
			return fmt.Errorf("add candidate: %w", err)
		}
	}
	return nil
}

// pump reads signal frames until stop closes.
func (p *rtcPeer) pump(stop <-chan struct{}, errs chan<- error) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		f, err := p.ws.read()
		if err != nil {
			select {
			case <-stop:
			default:
				errs <- err
			}
			return
		}
		if f.Type != "signal" {
			continue
		}
		if err := p.handle(f); err != nil {
			errs <- err
			return
		}
	}
}

// runCall connects two pion peers through the signaling route at url and
// checks a data channel carries a message each way. Each peer's
// configuration is made from its welcome frame. It returns the selected
// candidate pair of the offerer.
func runCall(t *testing.T, url string, cfgFor func(welcome frame) webrtc.Configuration) *webrtc.ICECandidatePair {
	aws, aw := join(t, url)
	bws, bw := join(t, url)
	if f := aws.expect("peer-joined"); f.ID != bws.id {
		t.Fatalf("peer-joined %q", f.ID)
	}
	a := newRTCPeer(t, aws, cfgFor(aw))
	b := newRTCPeer(t, bws, cfgFor(bw))
	a.remote, b.remote = bws.id, aws.id

	aGot := make(chan string, 1)
	bGot := make(chan string, 1)
	b.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			bGot <- string(m.Data)
			_ = dc.SendText("pong from b")
		})
	})
	dc, err := a.pc.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { _ = dc.SendText("ping from a") })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { aGot <- string(m.Data) })

	stop := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.pump(stop, errs) }()
	go func() { defer wg.Done(); b.pump(stop, errs) }()
	defer func() {
		close(stop)
		aws.leave()
		bws.leave()
		wg.Wait()
	}()

	offer, err := a.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	a.sendSignal(signalData{SDP: &offer})

	timeout := time.After(30 * time.Second)
	for _, want := range []struct {
		ch  chan string
		msg string
	}{{bGot, "ping from a"}, {aGot, "pong from b"}} {
		select {
		case got := <-want.ch:
			if got != want.msg {
				t.Fatalf("data channel carried %q, want %q", got, want.msg)
			}
		case err := <-errs:
			t.Fatalf("signaling failed: %v", err)
		case <-timeout:
			t.Fatalf("no data channel message %q; ICE a=%s b=%s", want.msg, a.pc.ICEConnectionState(), b.pc.ICEConnectionState())
		}
	}
	a.mu.Lock()
	trickled := a.trickle
	a.mu.Unlock()
	if trickled == 0 {
		t.Fatal("no ICE candidate was trickled through the signaling route")
	}
	pair, err := a.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected candidate pair: %v", err)
	}
	return pair
}

func TestWebRTCCallThroughSignaling(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	pair := runCall(t, roomURL+"call", func(frame) webrtc.Configuration { return webrtc.Configuration{} })
	t.Logf("connected over %s", pair)
}

// welcomeICE turns a welcome frame's iceServers into pion's form.
func welcomeICE(w frame) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range w.ICEServers {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// TestRelayOnlyCallThroughEmbeddedTURN: two peers that may only use relay
// candidates connect through the signaling route and the embedded TURN
// server, with the credentials the welcome frame carried.
func TestRelayOnlyCallThroughEmbeddedTURN(t *testing.T) {
	loadConfig(t, "text/caddyfile", withGlobals(turnGlobals, turnSites+`
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			credentials
		}
	}
}
`), false)
	pair := runCall(t, roomURL+"relay", func(w frame) webrtc.Configuration {
		ice := welcomeICE(w)
		if len(ice) != 2 || ice[1].Username == "" {
			t.Fatalf("welcome iceServers %+v", w.ICEServers)
		}
		return webrtc.Configuration{ICEServers: ice, ICETransportPolicy: webrtc.ICETransportPolicyRelay}
	})
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("selected pair is not relay to relay: %s", pair)
	}
	t.Logf("connected over %s", pair)
}
