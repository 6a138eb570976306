package loadtest

import (
	"os"
	"runtime"
	"testing"
)

func TestParseProc(t *testing.T) {
	rss, err := parseVmRSS([]byte("Name:\tcaddy\nVmPeak:\t  999 kB\nVmRSS:\t   1234 kB\nThreads: 9\n"))
	if err != nil || rss != 1234*1024 {
		t.Fatalf("VmRSS = %d, %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("no error without a VmRSS line")
	}
	// The command name holds spaces and a parenthesis, as names may.
	stat := "42 (my (odd) cmd) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200\n"
	cpu, err := parseCPU([]byte(stat))
	if err != nil || cpu != 3.0 {
		t.Fatalf("cpu = %v, %v; want 3.0 s (250+50 ticks)", cpu, err)
	}
	if _, err := parseCPU([]byte("42 (x) S 1 2")); err == nil {
		t.Fatal("no error for a truncated stat line")
	}
}

func TestReadOwnProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	st, err := readProc(os.Getpid())
	if err != nil || st.rss == 0 {
		t.Fatalf("readProc(self) = %+v, %v", st, err)
	}
}
