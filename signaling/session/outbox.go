package session

import "strconv"

// Bounds of what a session holds for its peer beyond the frames waiting to
// be written: frames kept after writing, for a resume to replay, and
// everything held while the peer is away.
const (
	// replayFrames bounds the frames a session holds for replay, and the
	// frames an away peer may have waiting.
	replayFrames = 256
	// replayBytes bounds the same in bytes.
	replayBytes = 1 << 20
	// queueBytes bounds the bytes waiting for a connected peer, as
	// sendQueueSize bounds the frames: a peer that reads nothing holds
	// no more than it could take away with it (replayBytes).
	queueBytes = replayBytes
)

// Frame is a server→peer frame with its sequence number.
type Frame struct {
	Seq uint64
	B   []byte
}

// outbox is a session's outbound frames in sequence order: those written
// but kept for replay (frames[start:head]), then those waiting to be
// written (frames[head:]). A frame written may still be lost with the
// connection, so it is kept until the peer proves it arrived (a pong to a
// ping sent after it, or last_seq on resume) or the bounds push it out.
// Without resume nothing is kept: an idle peer then holds no slice at all.
type outbox struct {
	frames []Frame
	start  int    // first frame kept
	head   int    // first frame not yet written
	bytes  int    // of frames[start:]
	queued int    // bytes of frames[head:], those waiting
	next   uint64 // seq of the next frame; the first is 1
	retain bool   // keep written frames for replay
	// waitingSince is since when (MonoNow) the written frames have
	// waited for an acknowledgement with none coming; see ackWait.
	waitingSince int64
}

// pending is the number of frames waiting to be written.
func (o *outbox) pending() int { return len(o.frames) - o.head }

// held is the number of frames held, kept and waiting.
func (o *outbox) held() int { return len(o.frames) - o.start }

// pendingBytes is the size of the frames waiting to be written.
func (o *outbox) pendingBytes() int { return o.queued }

// queueFull tells whether a connected peer's queue has no room for a frame
// of size bytes: sendQueueSize frames, or queueBytes of them (an empty
// queue takes any one frame, however large max_message_size allows).
func (o *outbox) queueFull(size int) bool {
	n := o.pending()
	return n >= SendQueueSize || n > 0 && o.queued+size > queueBytes
}

// awayFull tells whether an away peer may be kept no frame of size bytes
// more: it missed too much to come back to a usable state.
func (o *outbox) awayFull(size int) bool {
	return o.pending() >= replayFrames || o.queued+size > replayBytes
}

// push appends a frame and numbers it. Kept frames beyond the bounds make
// room, oldest first.
func (o *outbox) push(b []byte) {
	o.next = o.nextSeq()
	if len(o.frames) == cap(o.frames) && o.start > 0 {
		// Reuse the slots already let go rather than grow the slice.
		n := copy(o.frames, o.frames[o.start:])
		clear(o.frames[n:])
		o.frames, o.head, o.start = o.frames[:n], o.head-o.start, 0
	}
	o.frames = append(o.frames, Frame{Seq: o.next, B: b})
	o.next++
	o.bytes += len(b)
	o.queued += len(b)
	for o.start < o.head && (o.held() > replayFrames || o.bytes > replayBytes) {
		o.drop()
	}
}

// take marks up to max frames, at most maxBytes after the first, written and
// appends them to dst.
func (o *outbox) take(dst []Frame, maxBytes int) []Frame {
	waiting := o.written()
	size := 0
	for o.head < len(o.frames) && len(dst) < cap(dst) {
		f := o.frames[o.head]
		if len(dst) > 0 && size+len(f.B) > maxBytes {
			break
		}
		size += len(f.B)
		dst = append(dst, f)
		o.head++
	}
	o.queued -= size
	if !o.retain {
		for o.start < o.head {
			o.drop()
		}
	} else if !waiting && o.written() {
		o.waitingSince = MonoNow()
	}
	o.shrink()
	return dst
}

// acked lets go of the written frames up to seq, which the peer has.
func (o *outbox) acked(seq uint64) {
	if !o.written() || o.frames[o.start].Seq > seq {
		return // nothing new
	}
	for o.start < o.head && o.frames[o.start].Seq <= seq {
		o.drop()
	}
	o.waitingSince = MonoNow() // progress: what is left waits from now
	o.shrink()
}

// written tells whether written frames are kept.
func (o *outbox) written() bool { return o.start < o.head }

// ackWait is since when (MonoNow) the written frames kept have waited
// for an acknowledgement with none coming, or 0 when none are kept.
func (o *outbox) ackWait() int64 {
	if !o.written() {
		return 0
	}
	return o.waitingSince
}

// rewind makes every frame after seq wait to be written again, for a peer
// that resumes having processed frames up to seq. It reports false when a
// frame after seq is no longer held, or seq was never written.
func (o *outbox) rewind(seq uint64) bool {
	if seq > o.lastTaken() {
		return false
	}
	if seq+1 < o.nextSeq() && (o.held() == 0 || o.frames[o.start].Seq > seq+1) {
		return false // frames after seq were let go
	}
	i := o.start
	for i < len(o.frames) && o.frames[i].Seq <= seq {
		i++
	}
	o.head, o.queued = i, 0
	for _, f := range o.frames[i:] {
		o.queued += len(f.B)
	}
	o.acked(seq)
	return true
}

// nextSeq is the seq the next frame gets.
func (o *outbox) nextSeq() uint64 { return max(o.next, 1) }

// drop lets go of the oldest kept frame.
func (o *outbox) drop() {
	o.bytes -= len(o.frames[o.start].B)
	o.frames[o.start] = Frame{}
	o.start++
}

// shrink drops the slice once it holds nothing, so that an idle peer holds
// none; a small one is kept to spare a trickle allocations.
func (o *outbox) shrink() {
	if o.start < len(o.frames) {
		return
	}
	o.frames, o.start, o.head = o.frames[:0], 0, 0
	if cap(o.frames) > 4 {
		o.frames = nil
	}
}

// lastTaken is the seq of the last frame written, 0 if none.
func (o *outbox) lastTaken() uint64 {
	if o.head < len(o.frames) {
		return o.frames[o.head].Seq - 1
	}
	return o.nextSeq() - 1
}

// seqPrefix is what a frame gains in front: `{"seq":<n>,` replaces its
// opening brace. Server frames are JSON objects with at least "type".
func appendSeqPrefix(b []byte, seq uint64) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, ',')
}

// Sequenced returns frame as the peer receives it, seq first.
func (f Frame) Sequenced(dst []byte) []byte {
	if f.Seq == 0 {
		return append(dst, f.B...)
	}
	return append(appendSeqPrefix(dst, f.Seq), f.B[1:]...)
}

// WireLen is the sequenced frame's length.
func (f Frame) WireLen() int {
	if f.Seq == 0 {
		return len(f.B)
	}
	var tmp [32]byte
	return len(appendSeqPrefix(tmp[:0], f.Seq)) + len(f.B) - 1
}
