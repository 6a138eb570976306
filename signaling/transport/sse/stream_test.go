package sse

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

func TestAppendEvent(t *testing.T) {
	frames := []session.Frame{
		{Seq: 1, B: []byte(`{"type":"welcome","id":"a"}`)},
		{B: []byte(`{"type":"error","code":"resume_failed","message":"x"}`)},
		// Relayed data with line breaks between tokens, of every kind; a
		// "\n" inside a string is escaped and stays as it is.
		{Seq: 12, B: []byte("{\"type\":\"signal\",\"from\":\"a\",\"data\":{\n  \"sdp\":\"v=0\\r\\n\",\r\n\"x\":\r[1,\n\n2]\n}}")},
		// Relayed by a front from the session's home: sequenced already.
		{B: []byte(`{"seq":13,"type":"pong"}`)},
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
		_ = json.Unmarshal(f.Sequenced(nil), &want)
		if g, w := wire.Encode(got), wire.Encode(want); string(g) != string(w) {
			t.Fatalf("event %d: %s, want %s", i, g, w)
		}
	}
	if !strings.Contains(data[2], `"sdp":"v=0\r\n"`) {
		t.Fatalf("escaped line breaks changed: %q", data[2])
	}
}

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
