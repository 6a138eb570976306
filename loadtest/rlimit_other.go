//go:build !unix

package loadtest

import "io"

// checkFileLimit has nothing to raise where there is no RLIMIT_NOFILE.
func checkFileLimit(int, io.Writer) {}
