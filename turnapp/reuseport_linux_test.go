//go:build linux

package turnapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/pion/stun/v3"
)

// The sockets of a UDP listener share its address, the port the kernel
// picked for the first one included.
func TestListenPacketsShareAddress(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	pcs, err := listenPackets(ctx, listenerSpec{"udp", "127.0.0.1:0"}, 4)
	for _, pc := range pcs {
		defer pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(pcs) != 4 {
		t.Fatalf("%d sockets, want 4", len(pcs))
	}
	for _, pc := range pcs[1:] {
		if pc.LocalAddr().String() != pcs[0].LocalAddr().String() {
			t.Errorf("socket on %s, the first on %s", pc.LocalAddr(), pcs[0].LocalAddr())
		}
	}
}

// With several sockets per UDP listener, every client relays through its
// own allocation both ways, and the per-user quota and the deny list hold
// over all the sockets.
func TestSeveralUDPSockets(t *testing.T) {
	old := udpSockets
	udpSockets = func() int { return 4 }
	t.Cleanup(func() { udpSockets = old })
	peers, err := newPeerPolicy(nil, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	const clients = 12
	ts := startServer(t, policy{peers: peers, maxPerUser: clients})
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	buf := make([]byte, 64)
	for i := range clients {
		username, password := credential("ann", time.Duration(i)*time.Second)
		relay, err := turnClient(t, "udp", ts.udp, username, password).Allocate()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer relay.Close()
		msg := fmt.Sprintf("from client %d", i)
		if _, err := relay.WriteTo([]byte(msg), peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(waitLimit))
		n, from, err := peer.ReadFrom(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("peer got %q, %v, want %q", buf[:n], err, msg)
		}
		if from.String() != relay.LocalAddr().String() {
			t.Errorf("client %d: the peer heard from %s, its relay is %s", i, from, relay.LocalAddr())
		}
		msg = fmt.Sprintf("to client %d", i)
		if _, err := peer.WriteTo([]byte(msg), from); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(waitLimit))
		if n, _, err = relay.ReadFrom(buf); err != nil || string(buf[:n]) != msg {
			t.Fatalf("client %d got %q, %v, want %q", i, buf[:n], err, msg)
		}
		denied := &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}
		err = relay.(interface{ CreatePermissions(...net.Addr) error }).CreatePermissions(denied)
		var te *stun.TurnError
		if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
			t.Fatalf("client %d: permission to 10.0.0.1: %v, want 403", i, err)
		}
	}
	username, password := credential("ann", time.Minute)
	_, err = turnClient(t, "udp", ts.udp, username, password).Allocate()
	var te *stun.TurnError
	if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeAllocQuotaReached {
		t.Fatalf("allocation %d of ann with a quota of %d: %v, want 486", clients+1, clients, err)
	}
}
