package evloop

import (
	"net"
	"testing"
)

// A connection other than plain TCP (TLS, a pipe) keeps its own I/O.
func TestWithRawIOLeavesOtherConnsAsTheyAre(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := WithRawIO(a); got != a {
		t.Errorf("WithRawIO(net.Pipe) = %T, want the conn itself", got)
	}
}
