package signaling

import (
	"fmt"
	"testing"
)

func TestSessionToken(t *testing.T) {
	tok := sessionToken("default", "room", "peer1", 3)
	if id, gen, ok := parseSessionToken(tok, "default", "room"); !ok || id != "peer1" || gen != 3 {
		t.Fatalf("genuine token: %q %d %v", id, gen, ok)
	}
	for name, bad := range map[string][3]string{
		"other room":       {tok, "default", "room2"},
		"other hub":        {tok, "other", "room"},
		"other peer":       {"peer2" + tok[len("peer1"):], "default", "room"},
		"other generation": {"peer1.4" + tok[len("peer1.3"):], "default", "room"},
		"no MAC":           {"peer1", "default", "room"},
		"no generation":    {"peer1." + tok[len("peer1.3."):], "default", "room"},
		"bad base64":       {"peer1.3.!!!", "default", "room"},
		"empty id":         {tok[len("peer1"):], "default", "room"},
		"truncated":        {tok[:len(tok)-2], "default", "room"},
		"overlong":         {tok + string(make([]byte, maxSessionTokenLen)), "default", "room"},
		"empty token":      {"", "default", "room"},
	} {
		if id, _, ok := parseSessionToken(bad[0], bad[1], bad[2]); ok {
			t.Errorf("%s: accepted as %q", name, id)
		}
	}
}

// seqs lists the seqs of frames.
func seqs(fs []outFrame) string {
	return fmt.Sprint(func() []uint64 {
		var s []uint64
		for _, f := range fs {
			s = append(s, f.seq)
		}
		return s
	}())
}

func TestWellFormedToken(t *testing.T) {
	id := newPeerID()
	if tok := sessionToken("h", "r", id, 7); !wellFormedToken(tok) {
		t.Fatalf("%s refused", tok)
	}
	for _, bad := range []string{"", "x", id, id + ".1", id + ".x.AAAAAAAAAAAAAAAAAAAAAA", "abc.1.AAAAAAAAAAAAAAAAAAAAAA", id + ".1.AAAA"} {
		if wellFormedToken(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
