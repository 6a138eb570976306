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

func TestOutboxReplaysWhatThePeerMissed(t *testing.T) {
	o := outbox{retain: true}
	for i := 0; i < 5; i++ {
		o.push([]byte(`{"type":"x"}`))
	}
	got := o.take(make([]outFrame, 0, 3), maxBatch)
	if seqs(got) != "[1 2 3]" || o.pending() != 2 || o.held() != 5 {
		t.Fatalf("took %s, pending %d, held %d", seqs(got), o.pending(), o.held())
	}
	o.acked(1) // a pong for frame 1
	if o.held() != 4 {
		t.Fatalf("held %d after ack 1", o.held())
	}
	if o.rewind(4) {
		t.Fatal("rewound to a frame never written")
	}
	if !o.rewind(2) {
		t.Fatal("cannot rewind to 2")
	}
	if got := o.take(make([]outFrame, 0, 8), maxBatch); seqs(got) != "[3 4 5]" {
		t.Fatalf("replayed %s", seqs(got))
	}
	if o.rewind(1) {
		t.Fatal("rewound past frames let go")
	}
	if !o.rewind(5) || o.held() != 0 || o.frames != nil {
		t.Fatalf("after the peer has everything: held %d, slice %v", o.held(), o.frames)
	}
	if got := fmt.Sprint(o.lastTaken(), o.nextSeq()); got != "5 6" {
		t.Fatalf("lastTaken, nextSeq = %s", got)
	}
}

func TestOutboxBoundsWhatItKeeps(t *testing.T) {
	o := outbox{retain: true}
	for i := 0; i < 3*replayFrames; i++ {
		o.push([]byte(`{"type":"x"}`))
		o.take(make([]outFrame, 0, 1), maxBatch)
	}
	if o.held() != replayFrames {
		t.Fatalf("held %d, want %d", o.held(), replayFrames)
	}
	big := make([]byte, 300<<10)
	for i := 0; i < 5; i++ {
		o.push(big)
		o.take(make([]outFrame, 0, 1), maxBatch)
	}
	if o.bytes > replayBytes {
		t.Fatalf("holds %d bytes", o.bytes)
	}
	plain := outbox{}
	plain.push([]byte(`{"type":"x"}`))
	plain.take(make([]outFrame, 0, 1), maxBatch)
	if plain.held() != 0 {
		t.Fatal("kept a frame without resume")
	}
}

func TestSequencedFrame(t *testing.T) {
	f := outFrame{seq: 12, b: []byte(`{"type":"pong"}`)}
	if got := string(f.sequenced(nil)); got != `{"seq":12,"type":"pong"}` || f.wireLen() != len(got) {
		t.Fatalf("%s (wireLen %d)", got, f.wireLen())
	}
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
