package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat. It is
// USER_HZ, 100 on every Linux architecture Go supports (sysconf is not
// reachable without cgo).
const clockTicks = 100

// procStat is one sample of a process's cost.
type procStat struct {
	at  time.Time
	rss uint64  // bytes
	cpu float64 // user + system seconds
}

// serverProbe samples the server process at the phases of a run. A nil
// probe (no PID) does nothing.
type serverProbe struct {
	pid     int
	mu      sync.Mutex
	samples map[string]procStat
	maxRSS  uint64
	err     error
}

func newServerProbe(pid int) *serverProbe {
	if pid <= 0 {
		return nil
	}
	return &serverProbe{pid: pid, samples: map[string]procStat{}}
}

// sample records the process's state under a phase name.
func (s *serverProbe) sample(phase string) {
	if s == nil {
		return
	}
	st, err := readProc(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	if phase != "" {
		s.samples[phase] = st
	}
	s.maxRSS = max(s.maxRSS, st.rss)
}

// current returns the latest state, for progress lines.
func (s *serverProbe) current() (procStat, bool) {
	if s == nil {
		return procStat{}, false
	}
	st, err := readProc(s.pid)
	if err != nil {
		return procStat{}, false
	}
	s.mu.Lock()
	s.maxRSS = max(s.maxRSS, st.rss)
	s.mu.Unlock()
	return st, true
}

// readProc reads VmRSS from /proc/<pid>/status and utime+stime from
// /proc/<pid>/stat.
func readProc(pid int) (procStat, error) {
	st := procStat{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	if st.rss, err = parseVmRSS(status); err != nil {
		return st, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	st.cpu, err = parseCPU(stat)
	return st, err
}

// parseVmRSS finds "VmRSS:   1234 kB" and returns bytes.
func parseVmRSS(status []byte) (uint64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		return kb << 10, err
	}
	return 0, fmt.Errorf("no VmRSS line in /proc status")
}

// parseCPU returns utime+stime in seconds. The fields are counted after the
// command name's closing parenthesis, since the name may contain spaces.
func parseCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	// After ")": state is field 3 of stat(5); utime and stime are 14, 15.
	f := strings.Fields(string(stat[i+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	u, err1 := strconv.ParseUint(f[utime], 10, 64)
	s, err2 := strconv.ParseUint(f[stime], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	return float64(u+s) / clockTicks, nil
}
