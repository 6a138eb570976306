package natshub

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/caddy-webrtc/caddy-webrtc/internal/rtctest"
)

// loopbackPeer is a pion peer connection that gathers host candidates on
// loopback IPv4 only.
func loopbackPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	pc, err := rtctest.LoopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// describe sets desc as pc's local description and returns it once ICE
// gathering is complete, candidates included (no trickle).
func describe(t *testing.T, pc *webrtc.PeerConnection, desc webrtc.SessionDescription, err error) webrtc.SessionDescription {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return *pc.LocalDescription()
}

// remoteSDP reads the next signal from peer id and sets its sdp as pc's
// remote description.
func remoteSDP(t *testing.T, cl *client, from string, pc *webrtc.PeerConnection) {
	t.Helper()
	f := cl.expectFrom("signal", from)
	var d struct {
		SDP webrtc.SessionDescription `json:"sdp"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("signal data %s: %v", f.Data, err)
	}
	if err := pc.SetRemoteDescription(d.SDP); err != nil {
		t.Fatal(err)
	}
}

// A pion data-channel call between a peer on Caddy A and a peer on Caddy
// B, signaled through protocol v1 across NATS: messages cross both ways.
func TestPionCallAcrossCaddyProcesses(t *testing.T) {
	srv := startNATS(t)
	a, b := twoCaddies(t, srv.URL(), 0)
	pa := join(t, a, "call")
	pb := join(t, b, "call")
	pa.expectFrom("peer-joined", pb.id)

	// The member already in the room offers to the newcomer.
	offerer, answerer := loopbackPeer(t), loopbackPeer(t)
	toB, toA := make(chan string, 1), make(chan string, 1)
	dc, err := offerer.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { _ = dc.SendText("hello from A") })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { toA <- string(m.Data) })
	answerer.OnDataChannel(func(d *webrtc.DataChannel) {
		d.OnMessage(func(m webrtc.DataChannelMessage) {
			toB <- string(m.Data)
			_ = d.SendText("hello from B")
		})
	})

	offer, err := offerer.CreateOffer(nil)
	pa.signal(pb.id, map[string]any{"sdp": describe(t, offerer, offer, err)})
	remoteSDP(t, pb, pa.id, answerer)
	answer, err := answerer.CreateAnswer(nil)
	pb.signal(pa.id, map[string]any{"sdp": describe(t, answerer, answer, err)})
	remoteSDP(t, pa, pb.id, offerer)

	for _, c := range []struct {
		ch   chan string
		want string
	}{{toB, "hello from A"}, {toA, "hello from B"}} {
		select {
		case got := <-c.ch:
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q within 20s (ICE %s / %s)", c.want, offerer.ICEConnectionState(), answerer.ICEConnectionState())
		}
	}
	pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected candidate pair: %v", err)
	}
	for _, c := range []*webrtc.ICECandidate{pair.Local, pair.Remote} {
		if ip := net.ParseIP(c.Address); ip == nil || !ip.IsLoopback() {
			t.Fatalf("candidate %s is not on loopback", c.Address)
		}
	}
}
