// Package evloop reads plain TCP connections with epoll on Linux, one loop
// per P, so that an idle connection costs no goroutine, and writes them
// with raw non-blocking system calls (WithRawIO, TryWrite, FinishWrite).
// It knows nothing of WebSockets: a connection's Reader takes the bytes.
// Elsewhere than on Linux it does nothing (Read reports false).
//
// It imports nothing of this module.
package evloop
