package caddytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What the browser cases cost, logged per case: the suite must pass on a
// 2-core machine, so it is measured where it runs.

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// measure logs, when the case ends, how long it took, how much CPU time
// Chromium used meanwhile, and the load average.
func measure(t *testing.T, b *chromium) {
	settle(b.dataDir)
	start, cpu := time.Now(), b.cpu()
	t.Cleanup(func() {
		used := b.cpu() - cpu
		took := time.Since(start)
		t.Logf("case took %s; Chromium used %s of CPU (%.2f cores); load %s",
			took.Round(100*time.Millisecond), used.Round(100*time.Millisecond), used.Seconds()/took.Seconds(), loadAverage())
	})
}

// settleTimeout bounds settle: a measurement is no reason to wait long.
const settleTimeout = 3 * time.Second

// settle waits until the renderers of the previous case's pages have
// exited, so that their CPU time, which their parent collects when they
// end, is not counted in the next case.
func settle(dataDir string) {
	deadline := time.Now().Add(settleTimeout)
	last := len(chromiumPIDs(dataDir))
	for stable := 0; stable < 3 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := len(chromiumPIDs(dataDir))
		if n == last {
			stable++
		} else {
			stable, last = 0, n
		}
	}
}

// chromiumCPU is the CPU time used so far by the Chromium whose user data
// directory is dataDir: its live processes and, through the times of
// reaped children that every parent keeps, those that have ended.
func chromiumCPU(dataDir string) time.Duration {
	var total time.Duration
	for _, pid := range chromiumPIDs(dataDir) {
		total += processCPU(pid)
	}
	return total
}

// chromiumPIDs are the live processes of the Chromium of dataDir.
func chromiumPIDs(dataDir string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, dir := range procs {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "--user-data-dir="+dataDir) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		pids = append(pids, pid)
	}
	return pids
}

// processCPU is the CPU time of a process and of its reaped children.
func processCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: utime, stime,
	// cutime and cstime are the 14th to 17th of the line.
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat)[i+1:])
	if len(fields) < 15 {
		return 0
	}
	var ticks int64
	for _, f := range fields[11:15] {
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
