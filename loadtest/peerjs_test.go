package loadtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakePeerJS speaks the part of the PeerJS server protocol the engine uses
// (as in peer 1.0.2's dist/index.cjs): ?key&id&token, an OPEN frame, and
// OFFER frames relayed to dst with src added.
type fakePeerJS struct {
	mu      sync.Mutex
	clients map[string]*fakeClient
}

type fakeClient struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (f *fakePeerJS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path != "/peerjs" || q.Get("key") != peerJSKey || q.Get("id") == "" || q.Get("token") == "" {
		http.Error(w, "bad parameters", http.StatusBadRequest)
		return
	}
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	id, c := q.Get("id"), &fakeClient{conn: conn}
	f.mu.Lock()
	f.clients[id] = c
	f.mu.Unlock()
	c.send(map[string]string{"type": "OPEN"})
	for {
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			return
		}
		if m["type"] == "HEARTBEAT" {
			continue
		}
		m["src"] = id
		f.mu.Lock()
		dst := f.clients[m["dst"].(string)]
		f.mu.Unlock()
		if dst != nil {
			dst.send(m)
		}
	}
}

func (c *fakeClient) send(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.WriteJSON(v)
}

func TestRunPeerJS(t *testing.T) {
	srv := httptest.NewServer(&fakePeerJS{clients: map[string]*fakeClient{}})
	defer srv.Close()
	s, _ := runFor(t, Config{
		URL: wsURL(srv, "/peerjs"), Protocol: ProtocolPeerJS, Peers: 6, RoomSize: 3, Rate: 20,
		Duration: 500 * time.Millisecond,
	})
	checkClean(t, s, 6)
	if s.Protocol != ProtocolPeerJS {
		t.Errorf("summary protocol %q", s.Protocol)
	}
}

func TestPeerJSFrames(t *testing.T) {
	p := peerJSProto{}
	var m struct {
		Type    string          `json:"type"`
		Dst     string          `json:"dst"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(p.appendSignal(nil, "lt-1", 0, []byte(`{"f":1}`)), &m); err != nil || m.Type != "OFFER" || m.Dst != "lt-1" || string(m.Payload) != `{"f":1}` {
		t.Fatalf("signal frame: %+v %v", m, err)
	}
	for frame, kind := range map[string]int{
		`{"type":"OPEN"}`: kindJoined,
		`{"type":"OFFER","src":"a","dst":"b","payload":{"f":1}}`:    kindSignal,
		`{"type":"ERROR","payload":{"msg":"Invalid key provided"}}`: kindError,
		`{"type":"HEARTBEAT"}`: kindOther,
	} {
		if f, err := p.parse([]byte(frame)); err != nil || f.kind != kind {
			t.Errorf("parse(%s) = %+v, %v; want kind %d", frame, f, err, kind)
		}
	}
}
