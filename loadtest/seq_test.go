package loadtest

import "testing"

func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	steps := []struct {
		seq  uint64
		want int
	}{
		{1, seqInOrder}, {2, seqInOrder}, {2, seqDuplicate}, // repeated
		{5, seqInOrder},                 // 3 and 4 missing so far
		{3, seqLate}, {3, seqDuplicate}, // 3 late, then again
		{6, seqInOrder}, {4, seqLate}, {1, seqDuplicate},
	}
	for i, s := range steps {
		if got := tr.observe(s.seq); got != s.want {
			t.Fatalf("step %d: observe(%d) = %d, want %d", i, s.seq, got, s.want)
		}
	}
	if len(tr.missing) != 0 {
		t.Fatalf("missing %v after every gap was filled", tr.missing)
	}
}

func TestSeqTrackerBoundsGaps(t *testing.T) {
	var tr seqTracker
	tr.observe(1 << 40) // a huge jump must not allocate a huge set
	if len(tr.missing) != maxTrackedGap {
		t.Fatalf("tracked %d missing numbers, want the cap %d", len(tr.missing), maxTrackedGap)
	}
}
