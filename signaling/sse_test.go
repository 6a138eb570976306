package signaling

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// parseEvents reads events the way EventSource does (the parts of the
// format the server uses): id and data fields, data lines joined with "\n",
// a blank line dispatching.
func parseEvents(t *testing.T, stream string) (ids, data []string) {
	t.Helper()
	stream = strings.ReplaceAll(strings.ReplaceAll(stream, "\r\n", "\n"), "\r", "\n")
	var id string
	var lines []string
	for _, line := range strings.Split(stream, "\n") {
		switch {
		case line == "":
			if lines != nil {
				ids, data = append(ids, id), append(data, strings.Join(lines, "\n"))
			}
			id, lines = "", nil
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, line[len("data: "):])
		case strings.HasPrefix(line, ":"):
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	return ids, data
}

func TestAppendEvent(t *testing.T) {
	frames := []outFrame{
		{seq: 1, b: []byte(`{"type":"welcome","id":"a"}`)},
		{b: []byte(`{"type":"error","code":"resume_failed","message":"x"}`)},
		// Relayed data with line breaks between tokens, of every kind; a
		// "\n" inside a string is escaped and stays as it is.
		{seq: 12, b: []byte("{\"type\":\"signal\",\"from\":\"a\",\"data\":{\n  \"sdp\":\"v=0\\r\\n\",\r\n\"x\":\r[1,\n\n2]\n}}")},
		// Relayed by a front from the session's home: sequenced already.
		{b: []byte(`{"seq":13,"type":"pong"}`)},
	}
	var b []byte
	for _, f := range frames {
		b = appendEvent(b, f)
	}
	if !strings.HasPrefix(string(b), "id: 1\ndata: {\"seq\":1,\"type\":\"welcome\",\"id\":\"a\"}\n\ndata: {\"type\":\"error\"") {
		t.Fatalf("stream starts %q", b)
	}
	ids, data := parseEvents(t, string(b))
	if len(data) != len(frames) || ids[0] != "1" || ids[1] != "" || ids[2] != "12" || ids[3] != "13" {
		t.Fatalf("ids %q, %d events", ids, len(data))
	}
	for i, f := range frames {
		var got, want any
		if err := json.Unmarshal([]byte(data[i]), &got); err != nil {
			t.Fatalf("event %d: %v in %q", i, err, data[i])
		}
		_ = json.Unmarshal(f.sequenced(nil), &want)
		if g, w := wire.Encode(got), wire.Encode(want); string(g) != string(w) {
			t.Fatalf("event %d: %s, want %s", i, g, w)
		}
	}
	if !strings.Contains(data[2], `"sdp":"v=0\r\n"`) {
		t.Fatalf("escaped line breaks changed: %q", data[2])
	}
}

func TestCurrentSessionToken(t *testing.T) {
	h := &Handler{Hub: "current-test"}
	h.useHub(nil, newHubState(h.Hub)) // no room is joined
	sessions := &h.state.sessions
	s := &session{id: newPeerID(), cfg: h.sessCfg, room: "r"}
	sessions.add(s)
	defer sessions.remove(s)
	old := sessionToken(h.Hub, "r", s.id, 0)
	if sessions.current(old) != s {
		t.Fatal("the current token does not name its session")
	}
	s.gen = 1 // a resume moved the session on
	if sessions.current(old) != nil {
		t.Fatal("a token a resume replaced still names the session")
	}
	if sessions.current(sessionToken(h.Hub, "r", s.id, 1)) != s {
		t.Fatal("the new token does not name the session")
	}
	for name, tok := range map[string]string{
		"other hub":  sessionToken("other", "r", s.id, 1),
		"other room": sessionToken(h.Hub, "r2", s.id, 1),
		"no token":   "",
		"garbage":    "x.y.z",
	} {
		if sessions.current(tok) != nil {
			t.Errorf("%s: names a session", name)
		}
	}
}
