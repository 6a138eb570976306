package loadtest

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram keeps log-spaced buckets, the way HDR histograms do: values
// below subBuckets are exact, larger ones keep their top subBits bits, so
// every bucket is at most 1/halfBuckets (about 3%) wide relative to its
// value. That is exact enough for p50..p99 of latencies, costs a fixed few
// kilobytes however many samples arrive, and adds are lock-free.
const (
	subBits     = 6
	subBuckets  = 1 << subBits // 64
	halfBuckets = subBuckets / 2
	// maxShift covers every uint64 value.
	maxShift   = 64 - subBits
	numBuckets = subBuckets + maxShift*halfBuckets
)

// Histogram counts durations with microsecond resolution. The zero value
// is ready to use and safe for concurrent use.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Uint64
}

// bucketOf maps a value to its bucket index.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	top := v >> uint(shift)          // in [halfBuckets, subBuckets)
	return subBuckets + (shift-1)*halfBuckets + int(top-halfBuckets)
}

// bucketValue is the largest value of bucket i, so percentiles never
// understate a latency.
func bucketValue(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := (i-subBuckets)/halfBuckets + 1
	top := uint64((i-subBuckets)%halfBuckets + halfBuckets)
	return (top+1)<<uint(shift) - 1
}

// Record adds one duration (negative ones count as zero).
func (h *Histogram) Record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration {
	return time.Duration(h.max.Load()) * time.Microsecond
}

// Quantile returns the value below or at which a fraction q (0..1] of the
// samples lie, or 0 when there are none. It is capped by Max, so a
// quantile never exceeds a value that was seen.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := min(bucketValue(i), h.max.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}
