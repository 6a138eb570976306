package loadtest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

func TestPayloadRoundTrip(t *testing.T) {
	r := &run{pad: strings.Repeat("x", 540)}
	b := r.appendPayload(nil, 17, 123456)
	pl, ok := parsePayload(b)
	if !ok || pl.From != 17 || pl.Seq != 123456 || pl.Sent < 0 {
		t.Fatalf("parsePayload(%.40q...) = %+v, %v", b, pl, ok)
	}
}

// Whatever is not exactly the load tester's own layout goes to the JSON
// decoder; the quick path must never misread it.
func TestParsePayloadRefusesOtherShapes(t *testing.T) {
	for _, d := range []string{
		``,
		`{"s":1,"f":2,"t":3,"p":"x"}`,
		`{"f":1,"s":2,"t":3,"p":"x"`,
		`{"f":1,"s":2,"t":3,"p":"x"} `,
		`{"f":1,"s":2,"t":3,"p":"x"x"}`,
		`{"f":1,"s":2,"t":3,"p":"x\"}`,
		`{"f":1,"s":-2,"t":3,"p":"x"}`,
		`{"f":,"s":2,"t":3,"p":"x"}`,
		`{"f":1e3,"s":2,"t":3,"p":"x"}`,
		`{"f":99999999999999999999,"s":2,"t":3,"p":"x"}`,
	} {
		if pl, ok := parsePayload([]byte(d)); ok {
			t.Errorf("parsePayload(%q) = %+v, want refused", d, pl)
		}
	}
}

func TestQuickSignal(t *testing.T) {
	const data = `{"f":1,"s":2,"t":3,"p":"xx"}`
	for _, c := range []struct {
		proto protocol
		frame string
		ok    bool
	}{
		{caddyProto{}, `{"seq":9,"type":"signal","from":"a","data":` + data + `}`, true},
		{caddyProto{}, `{"seq":9,"type":"peer-joined","id":"a"}`, false},
		{caddyProto{}, `{"seq":9,"type":"error","code":"x","data":{}}`, false},
		{caddyProto{}, `{"seq":9,"data":` + data + `,"type":"signal"}`, false},
		{peerJSProto{}, `{"type":"OFFER","src":"a","dst":"b","payload":` + data + `}`, true},
		{peerJSProto{}, `{"type":"EXPIRE","src":"a","dst":"b"}`, false},
	} {
		got, ok := c.proto.quick([]byte(c.frame))
		if ok != c.ok || (ok && string(got) != data) {
			t.Errorf("%s quick(%s) = %s, %v", c.proto.name(), c.frame, got, ok)
		}
	}
}

// The frames the load tester writes itself are what a WebSocket server
// reads: gorilla's server side decodes them, masks and all.
func TestClientFramesDecode(t *testing.T) {
	msgs := [][]byte{[]byte("a"), bytes.Repeat([]byte("0123456789"), 13), bytes.Repeat([]byte{'y'}, 70000)}
	got := make(chan []byte, len(msgs))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for range msgs {
			typ, b, err := ws.ReadMessage()
			if err != nil || typ != websocket.TextMessage {
				b = nil
			}
			got <- b
		}
	}))
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial(wsURL(srv, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &peer{conn: conn}
	if err := p.write(msgs...); err != nil {
		t.Fatal(err)
	}
	for i, want := range msgs {
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(b), len(want))
		}
	}
}
