//go:build unix

package loadtest

import (
	"fmt"
	"io"
	"syscall"
)

// spareFiles are descriptors the process needs besides its peers (stdio,
// the /proc files, DNS, ...).
const spareFiles = 64

// checkFileLimit raises the open-file limit to the hard limit, since every
// peer is a socket, and says so when peers will not fit even then.
func checkFileLimit(peers int, out io.Writer) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(out, "warning: reading the open-file limit: %v\n", err)
		return
	}
	if lim.Cur < lim.Max {
		old := lim.Cur
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			lim.Cur = old
			fmt.Fprintf(out, "warning: raising the open-file limit: %v\n", err)
		} else {
			fmt.Fprintf(out, "raised the open-file limit from %d to %d\n", old, lim.Cur)
		}
	}
	if uint64(peers)+spareFiles > uint64(lim.Cur) {
		fmt.Fprintf(out, "warning: %d peers need about %d open files, the limit is %d (raise it with ulimit -n or in limits.conf); peers beyond it will fail to dial\n",
			peers, peers+spareFiles, lim.Cur)
	}
}
