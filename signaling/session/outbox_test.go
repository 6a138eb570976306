package session

import (
	"fmt"
	"testing"
)

func TestOutboxReplaysWhatThePeerMissed(t *testing.T) {
	o := outbox{retain: true}
	for i := 0; i < 5; i++ {
		o.push([]byte(`{"type":"x"}`))
	}
	got := o.take(make([]Frame, 0, 3), MaxBatch)
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
	if got := o.take(make([]Frame, 0, 8), MaxBatch); seqs(got) != "[3 4 5]" {
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
		o.take(make([]Frame, 0, 1), MaxBatch)
	}
	if o.held() != replayFrames {
		t.Fatalf("held %d, want %d", o.held(), replayFrames)
	}
	big := make([]byte, 300<<10)
	for i := 0; i < 5; i++ {
		o.push(big)
		o.take(make([]Frame, 0, 1), MaxBatch)
	}
	if o.bytes > replayBytes {
		t.Fatalf("holds %d bytes", o.bytes)
	}
	plain := outbox{}
	plain.push([]byte(`{"type":"x"}`))
	plain.take(make([]Frame, 0, 1), MaxBatch)
	if plain.held() != 0 {
		t.Fatal("kept a frame without resume")
	}
}

func TestSequencedFrame(t *testing.T) {
	f := Frame{Seq: 12, B: []byte(`{"type":"pong"}`)}
	if got := string(f.Sequenced(nil)); got != `{"seq":12,"type":"pong"}` || f.WireLen() != len(got) {
		t.Fatalf("%s (wireLen %d)", got, f.WireLen())
	}
}
