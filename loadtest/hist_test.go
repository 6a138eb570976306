package loadtest

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	// Every value lands in a bucket whose upper bound is at or above it
	// and within the promised relative width.
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 123456789, 1<<63 + 5, ^uint64(0)} {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("value %d: bucket %d out of range", v, i)
		}
		up := bucketValue(i)
		if up < v || (v >= subBuckets && float64(up-v) > float64(v)/halfBuckets) {
			t.Fatalf("value %d: bucket %d bound %d", v, i, up)
		}
		if i > 0 && bucketValue(i-1) >= v {
			t.Fatalf("value %d: previous bucket bound %d is not below it", v, bucketValue(i-1))
		}
	}
}

func TestQuantilesNearExact(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 {
		t.Fatal("an empty histogram reports values")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100000 {
		d := time.Duration(r.ExpFloat64()*float64(3*time.Millisecond)) + 100*time.Microsecond
		d = d.Truncate(time.Microsecond)
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/halfBuckets+float64(time.Microsecond) {
			t.Errorf("p%g = %v, exact %v", q*100, got, exact)
		}
	}
	if h.Max() != all[len(all)-1] || h.Quantile(1) != all[len(all)-1] {
		t.Errorf("max %v, p100 %v, want %v", h.Max(), h.Quantile(1), all[len(all)-1])
	}
	if h.Count() != uint64(len(all)) {
		t.Errorf("count %d", h.Count())
	}
}
