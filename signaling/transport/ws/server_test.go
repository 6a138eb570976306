package ws

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"github.com/gorilla/websocket"
)

// server serves WebSocket peers the way the Caddy face (package
// signaling) does, reduced to what the transport needs: every peer joins
// the room its query names, as a session of one memory hub, with no
// limit but the message size. Tests change its fields before peers
// connect.
type server struct {
	PingInterval   time.Duration
	ResumeWindow   time.Duration // 0: resume is off
	MaxMessageSize int64

	metrics  *testMetrics // this server's, to tell its sessions from others'
	hub      *hub.MemoryHub
	sessions *session.Registry
	away     session.AddrSlots
}

// testMaxMessageSize is the handler's default max_message_size.
const testMaxMessageSize = 64 << 10

// newServer is a server with the handler's defaults.
func newServer() *server {
	return &server{
		PingInterval:   25 * time.Second,
		MaxMessageSize: testMaxMessageSize,
		metrics:        &testMetrics{},
		hub:            hub.NewMemoryHub(),
		sessions:       session.NewRegistry("ws-test"),
	}
}

// config is the config of the sessions joining now.
func (h *server) config() *session.Config {
	return &session.Config{
		HubName:         "ws-test",
		Hub:             h.hub,
		Logger:          zap.NewNop(),
		Metrics:         h.metrics,
		MaxMessageSize:  h.MaxMessageSize,
		FramesPerSecond: 1e9, // tests relay far beyond a person's frame rate
		Burst:           1e9,
		ResumeWindow:    h.ResumeWindow,
		Sessions:        h.sessions,
		Away:            &h.away,
		AwayPerAddr:     1 << 30,
	}
}

// ServeHTTP upgrades, joins the peer to its room and runs its connection.
func (h *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := Upgrade(w, r)
	if err != nil {
		return
	}
	c := NewConn(conn, h.metrics, h.MaxMessageSize)
	room := r.URL.Query().Get("room")
	s := session.New(h.config(), room, wire.PeerInfo{}, r.RemoteAddr, c)
	c.Attach(s)
	welcome := func(members []wire.PeerInfo) []byte {
		return wire.Encode(wire.Welcome{Type: wire.TypeWelcome, ID: s.ID(), Room: room, Peers: members,
			Resume: session.Token("ws-test", room, s.ID(), 0)})
	}
	if _, err := s.Join(hub.JoinRequest{Welcome: welcome}); err != nil {
		c.Attach(nil)
		c.Refuse(wire.CodeUnavailable, err.Error(), wire.CloseGoingAway, h.PingInterval)
		_ = conn.Close()
		return
	}
	c.Run(h.PingInterval, func() {})
}

// newBenchServer serves a new server's peers over loopback.
func newBenchServer(tb testing.TB) (*httptest.Server, *server) {
	return newBenchServerOn(tb, nil)
}

// newBenchServerOn is newBenchServer with its listener wrapped by wrap,
// unless nil.
func newBenchServerOn(tb testing.TB, wrap func(net.Listener) net.Listener) (*httptest.Server, *server) {
	tb.Helper()
	h := newServer()
	srv := httptest.NewUnstartedServer(h)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	tb.Cleanup(func() {
		srv.Close()
		h.hub.Shutdown()
	})
	return srv, h
}

// wsURL is the WebSocket URL of srv's root.
func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/" }

// relayPair joins two peers to one room of a new server and returns
// them and a frame from the first to the second.
func relayPair(b testing.TB) (a, c *websocket.Conn, frame []byte) {
	srv, _ := newBenchServer(b)
	return wstest.JoinPair(b, srv, websocket.DefaultDialer)
}

// joined is a session of h in room, carried by t, member of the hub.
func joined(tb testing.TB, h *server, room, ip string, t session.Transport) *session.Session {
	tb.Helper()
	s := session.New(h.config(), room, wire.PeerInfo{}, ip, t)
	if _, err := s.Join(hub.JoinRequest{Welcome: func([]wire.PeerInfo) []byte { return []byte(`{"type":"welcome"}`) }}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// heldTransport takes no frames, as a peer that reads nothing.
type heldTransport struct{}

func (*heldTransport) Wake()                   {}
func (*heldTransport) Send()                   {}
func (*heldTransport) Displace()               {}
func (*heldTransport) Close(int, string, bool) {}

// testMetrics counts nothing; a server's own tells its sessions apart.
type testMetrics struct{ _ byte }

func (*testMetrics) FrameIn(string, int) {}
func (*testMetrics) FrameOut([]byte)     {}
func (*testMetrics) Resume(string)       {}
func (*testMetrics) Left()               {}
func (*testMetrics) SlowDropped()        {}
func (*testMetrics) RateLimited()        {}
