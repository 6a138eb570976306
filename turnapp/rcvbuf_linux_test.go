//go:build linux

package turnapp

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/sys/unix"
)

// A UDP listener socket, as Caddy's pool wraps it, gets the receive
// buffer asked for: all of it with CAP_NET_ADMIN (SO_RCVBUFFORCE), else as
// much as net.core.rmem_max allows; never the kernel's default when more
// is allowed.
func TestReceiveBuffer(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	pcs, err := listenPackets(ctx, listenerSpec{"udp", "127.0.0.1:0"}, 1)
	for _, pc := range pcs {
		defer pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	const asked = 3 << 20
	granted, err := setReceiveBuffer(pcs[0], asked)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rawConn(pcs[0])
	if err != nil {
		t.Fatal(err)
	}
	var now int
	_ = raw.Control(func(fd uintptr) { now, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	if err != nil || now/2 != granted {
		t.Fatalf("the socket holds %d (%v), setReceiveBuffer said %d granted", now/2, err, granted)
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no rmem_max to compare with:", err)
	}
	rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if granted != asked && granted != min(asked, rmemMax) {
		t.Fatalf("granted %d, want %d (forced) or %d (rmem_max)", granted, asked, min(asked, rmemMax))
	}
}
