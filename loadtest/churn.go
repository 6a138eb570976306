package loadtest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Churn: while the signaling peers send, ChurnPeers more peers, in rooms
// of their own, join, stay ChurnHold (give or take a quarter, so that
// they do not move in step), leave with a normal close (1000, so the
// server ends their session at once rather than keeping it resumable) and
// join again, until the sending phase ends. It is the load of a site
// whose visitors come and go: every cycle is a join and a leave for the
// hub, and for the webhooks (peer_joined, peer_left, and room_started and
// room_finished when a room empties).

// churnState counts the churners' cycles.
type churnState struct {
	joins, leaves, failed atomic.Int64
	joinHist              Histogram
	mu                    sync.Mutex
	failures              map[string]int
	firstErr              string
}

// ChurnStats is what the churners did (with Config.ChurnPeers).
type ChurnStats struct {
	Peers int           `json:"peers"`
	Hold  time.Duration `json:"hold_ns"`
	// Joins and Leaves are completed cycles' halves; JoinsPerSec is Joins
	// over the sending phase.
	Joins       int64          `json:"joins"`
	Leaves      int64          `json:"leaves"`
	JoinsPerSec float64        `json:"joins_per_sec"`
	Failed      int64          `json:"failed"`
	Failures    map[string]int `json:"failures,omitempty"`
	FirstError  string         `json:"first_error,omitempty"`
	JoinP50     float64        `json:"join_p50_ms"`
	JoinP99     float64        `json:"join_p99_ms"`
}

// churnAll runs every churner until ctx ends, starting them over the
// first hold so that their cycles are spread out.
func (r *run) churnAll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range r.cfg.ChurnPeers {
		wg.Go(func() {
			stagger := time.Duration(rand.Int64N(int64(r.cfg.ChurnHold) + 1))
			if !sleepCtx(ctx, stagger) {
				return
			}
			r.churner(ctx, i)
		})
	}
	wg.Wait()
}

// churner is one coming-and-going peer: peer index i of the churn rooms.
func (r *run) churner(ctx context.Context, i int) {
	p := &peer{index: r.cfg.Peers + i, room: &room{name: r.cfg.RoomPrefix + "-churn-" + strconv.Itoa(i/r.cfg.RoomSize)}}
	for ctx.Err() == nil {
		start := time.Now()
		conn, _, code, err := r.join(ctx, p)
		if err != nil {
			if ended(ctx) {
				return // cut by the end of the run, not refused
			}
			r.churn.fail(code, err)
			if !sleepCtx(ctx, r.cfg.ChurnHold/4) { // not a tight loop against a refusing server
				return
			}
			continue
		}
		r.churn.joinHist.Record(time.Since(start))
		r.churn.joins.Add(1)
		hold := r.cfg.ChurnHold*3/4 + time.Duration(rand.Int64N(int64(r.cfg.ChurnHold)/2+1))
		discardUntil(ctx, conn, time.Now().Add(hold))
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeTimeout))
		conn.Close()
		r.churn.leaves.Add(1)
	}
}

// discardUntil reads and drops the frames a churner gets (its room-mates
// coming and going) until deadline or ctx ends.
func discardUntil(ctx context.Context, conn *websocket.Conn, deadline time.Time) {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	_ = conn.SetReadDeadline(deadline)
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

func (c *churnState) fail(code string, err error) {
	c.failed.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstErr == "" {
		c.firstErr = err.Error()
	}
	if c.failures == nil {
		c.failures = map[string]int{}
	}
	c.failures[code]++
}

// churnStats is the churn's part of the summary, or nil without churners.
func (r *run) churnStats(measured time.Duration) *ChurnStats {
	if r.cfg.ChurnPeers == 0 {
		return nil
	}
	c := &r.churn
	s := &ChurnStats{
		Peers: r.cfg.ChurnPeers, Hold: r.cfg.ChurnHold,
		Joins: c.joins.Load(), Leaves: c.leaves.Load(), Failed: c.failed.Load(),
		JoinP50: ms(c.joinHist.Quantile(0.50)), JoinP99: ms(c.joinHist.Quantile(0.99)),
	}
	if measured > 0 {
		s.JoinsPerSec = float64(s.Joins) / measured.Seconds()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.FirstError = c.firstErr
	if len(c.failures) > 0 {
		s.Failures = make(map[string]int, len(c.failures))
		maps.Copy(s.Failures, c.failures)
	}
	return s
}

// text renders the churn line of the text summary.
func (s *ChurnStats) text() string {
	return fmt.Sprintf("churn      %d peers holding %s: %d joins (%.0f/s), %d leaves, failed %d%s, join p50 %.1f ms p99 %.1f ms\n",
		s.Peers, s.Hold, s.Joins, s.JoinsPerSec, s.Leaves, s.Failed, codes(s.Failures), s.JoinP50, s.JoinP99)
}

// ended says whether ctx is done or its deadline has passed: a dial under
// ctx fails on the deadline a moment before ctx itself reports it.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// sleepCtx waits d or until ctx ends, and says whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
