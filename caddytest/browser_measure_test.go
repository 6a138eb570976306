//go:build linux

package caddytest

import (
	"bytes"
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

// meter is a browser whose CPU time measure counts.
type meter interface {
	// label names the browser in the log.
	label() string
	// cpu is the CPU time the browser has used so far.
	cpu() time.Duration
	// settle waits until the previous case's pages are gone.
	settle()
}

// measure logs, when the case ends, how long it took, how much CPU time
// each browser used meanwhile, and the load average.
func measure(t *testing.T, browsers ...meter) {
	for _, b := range browsers {
		b.settle()
	}
	start, cpu := time.Now(), make([]time.Duration, len(browsers))
	for i, b := range browsers {
		cpu[i] = b.cpu()
	}
	t.Cleanup(func() {
		took := time.Since(start)
		var used []string
		for i, b := range browsers {
			d := b.cpu() - cpu[i]
			used = append(used, fmt.Sprintf("%s used %s of CPU (%.2f cores)", b.label(), d.Round(100*time.Millisecond), d.Seconds()/took.Seconds()))
		}
		t.Logf("case took %s; %s; load %s", took.Round(100*time.Millisecond), strings.Join(used, ", "), loadAverage())
	})
}

func (b *chromium) label() string { return "Chromium" }
func (b *chromium) settle()       { settle(func() int { return len(chromiumPIDs(b.dataDir)) }) }

// settleTimeout bounds settle: a measurement is no reason to wait long.
const settleTimeout = 3 * time.Second

// settle waits until the count of a browser's processes has been stable
// for a moment: the renderers of the previous case's pages have exited,
// so that their CPU time, which their parent collects when they end, is
// not counted in the next case.
func settle(processes func() int) {
	deadline := time.Now().Add(settleTimeout)
	last := processes()
	for stable := 0; stable < 3 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := processes()
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
	// utime, stime, cutime and cstime are the 14th to 17th of the line.
	fields := statFields(stat)
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

// statFields are the fields of /proc/<pid>/stat after the command name,
// which may hold spaces: the state (the 3rd field of the line) first.
func statFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	return strings.Fields(string(stat[i+1:]))
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
