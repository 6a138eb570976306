package loadtest

// Verdicts of a received sequence number.
const (
	seqInOrder   = iota // the next one, or a jump ahead (the gap is missing so far)
	seqLate             // fills an earlier gap: delivered, but misordered
	seqDuplicate        // seen before
)

// maxTrackedGap bounds the missing numbers remembered per sender, so a
// sender whose signals are mostly lost cannot grow a receiver's memory
// without bound. Numbers beyond it that arrive late count as duplicates,
// which overstates duplicates only in a run that is already losing
// thousands of signals from one sender.
const maxTrackedGap = 4096

// seqTracker checks the sequence numbers one receiver gets from one sender.
// Senders number their signals to each receiver 1, 2, 3, ... It is used by
// one goroutine (the receiver's reader).
type seqTracker struct {
	highest uint64
	missing map[uint64]struct{} // below highest, not received yet
}

// observe classifies seq and updates the state.
func (t *seqTracker) observe(seq uint64) int {
	switch {
	case seq > t.highest:
		for s := t.highest + 1; s < seq && len(t.missing) < maxTrackedGap; s++ {
			if t.missing == nil {
				t.missing = make(map[uint64]struct{})
			}
			t.missing[s] = struct{}{}
		}
		t.highest = seq
		return seqInOrder
	default:
		if _, ok := t.missing[seq]; ok {
			delete(t.missing, seq)
			return seqLate
		}
		return seqDuplicate
	}
}
