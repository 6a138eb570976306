package loadtest

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

// flatOutStall is how long a FlatOut sender waits for a delivery before it
// assumes its in-flight signals are lost and sends again; without it, one
// lost signal would shrink its window for good.
const flatOutStall = time.Second

// payloadOverhead is about what a payload takes besides its padding.
const payloadOverhead = 60

// sendLoop sends p's signals until ctx ends.
func (r *run) sendLoop(ctx context.Context, p *peer) {
	if r.cfg.FlatOut {
		r.sendFlatOut(ctx, p)
		return
	}
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	// A random phase spreads the peers' sends over the interval instead of
	// sending them all in one burst per tick.
	phase := time.NewTimer(rand.N(interval))
	defer phase.Stop()
	select {
	case <-ctx.Done():
		return
	case <-phase.C:
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := r.sendOne(p); err != nil && err != errNoRoomMate {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sendFlatOut keeps Window signals of p in flight, sending those that are
// due in one write.
func (r *run) sendFlatOut(ctx context.Context, p *peer) {
	stall := time.NewTimer(flatOutStall)
	defer stall.Stop()
	for ctx.Err() == nil {
		if due := int64(r.cfg.Window) - p.inflight.Load(); due > 0 {
			if err := r.sendSignals(p, int(due)); err != nil && err != errNoRoomMate {
				return
			}
		}
		stall.Reset(flatOutStall)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-stall.C:
			p.inflight.Store(0)
		}
	}
}

// sendOne sends the next signal to the next connected room-mate.
func (r *run) sendOne(p *peer) error { return r.sendSignals(p, 1) }

// sendSignals sends up to n signals, round-robin to the connected
// room-mates, in one write.
func (r *run) sendSignals(p *peer, n int) error {
	p.out.reset()
	for range n {
		to, slot := r.nextMate(p)
		if to == "" {
			break
		}
		p.seqTo[slot]++
		p.scratch = r.appendPayload(p.scratch[:0], p.index, p.seqTo[slot])
		p.out.add(r.proto.appendSignal(p.out.next(), to, p.lastSeq.Load(), p.scratch))
	}
	sent := len(p.out.ends)
	if sent == 0 {
		return errNoRoomMate
	}
	r.sent.Add(uint64(sent))
	p.inflight.Add(int64(sent))
	if err := p.write(p.out.frames()...); err != nil {
		r.sent.Add(-uint64(sent))
		p.inflight.Add(-int64(sent))
		return err
	}
	return nil
}

// nextMate picks room-mates round-robin, skipping those not connected.
func (r *run) nextMate(p *peer) (string, int) {
	n := len(p.room.members)
	for range n {
		p.next = (p.next + 1) % n
		if p.next == p.slot {
			continue
		}
		if id := p.room.members[p.next].id.Load(); id != nil {
			return *id, p.next
		}
	}
	return "", 0
}

// appendPayload builds a signal's data by hand: this runs for every signal
// on a machine shared with the server under test. parsePayload reads it.
func (r *run) appendPayload(b []byte, from int, seq uint64) []byte {
	b = append(b, `{"f":`...)
	b = strconv.AppendInt(b, int64(from), 10)
	b = append(b, `,"s":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, int64(time.Since(r.start)), 10)
	b = append(b, `,"p":"`...)
	b = append(b, r.pad...)
	return append(b, `"}`...)
}
