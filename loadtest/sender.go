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

// sendFlatOut keeps Window signals of p in flight.
func (r *run) sendFlatOut(ctx context.Context, p *peer) {
	stall := time.NewTimer(flatOutStall)
	defer stall.Stop()
	for ctx.Err() == nil {
		for p.inflight.Load() < int64(r.cfg.Window) {
			if err := r.sendOne(p); err == errNoRoomMate {
				break
			} else if err != nil {
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
func (r *run) sendOne(p *peer) error {
	to, slot := r.nextMate(p)
	if to == "" {
		return errNoRoomMate
	}
	seq := p.seqTo[slot] + 1
	frame := r.proto.signal(to, r.payload(p.index, seq))
	r.sent.Add(1)
	p.inflight.Add(1)
	if err := p.write(frame); err != nil {
		r.sent.Add(^uint64(0))
		p.inflight.Add(-1)
		return err
	}
	p.seqTo[slot] = seq
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

// payload builds a signal's data by hand: this runs for every signal on a
// machine shared with the server under test.
func (r *run) payload(from int, seq uint64) []byte {
	b := make([]byte, 0, len(r.pad)+payloadOverhead)
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
