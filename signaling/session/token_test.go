package session

import (
	"fmt"
	"testing"
)

func TestSessionToken(t *testing.T) {
	tok := Token("default", "room", "peer1", 3)
	if id, gen, ok := ParseToken(tok, "default", "room"); !ok || id != "peer1" || gen != 3 {
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
		"overlong":         {tok + string(make([]byte, MaxSessionTokenLen)), "default", "room"},
		"empty token":      {"", "default", "room"},
	} {
		if id, _, ok := ParseToken(bad[0], bad[1], bad[2]); ok {
			t.Errorf("%s: accepted as %q", name, id)
		}
	}
}

// seqs lists the seqs of frames.
func seqs(fs []Frame) string {
	return fmt.Sprint(func() []uint64 {
		var s []uint64
		for _, f := range fs {
			s = append(s, f.Seq)
		}
		return s
	}())
}

func TestWellFormedToken(t *testing.T) {
	id := NewPeerID()
	if tok := Token("h", "r", id, 7); !WellFormedToken(tok) {
		t.Fatalf("%s refused", tok)
	}
	for _, bad := range []string{"", "x", id, id + ".1", id + ".x.AAAAAAAAAAAAAAAAAAAAAA", "abc.1.AAAAAAAAAAAAAAAAAAAAAA", id + ".1.AAAA"} {
		if WellFormedToken(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The registry names a session by its current token only.
func TestCurrentSessionToken(t *testing.T) {
	sessions := NewRegistry("current-test")
	s := &Session{id: NewPeerID(), cfg: &Config{HubName: "current-test"}, room: "r"}
	sessions.Add(s)
	defer sessions.Remove(s)
	old := Token("current-test", "r", s.id, 0)
	if sessions.Current(old) != s {
		t.Fatal("the current token does not name its session")
	}
	s.gen = 1 // a resume moved the session on
	if sessions.Current(old) != nil {
		t.Fatal("a token a resume replaced still names the session")
	}
	if sessions.Current(Token("current-test", "r", s.id, 1)) != s {
		t.Fatal("the new token does not name the session")
	}
	for name, tok := range map[string]string{
		"other hub":  Token("other", "r", s.id, 1),
		"other room": Token("current-test", "r2", s.id, 1),
		"no token":   "",
		"garbage":    "x.y.z",
	} {
		if sessions.Current(tok) != nil {
			t.Errorf("%s: names a session", name)
		}
	}
}
