package session

import "time"

// MonoNow is the monotonic clock in nanoseconds: as a field, 8 bytes
// per connection instead of a time.Time's 24.
func MonoNow() int64 { return int64(time.Since(monoStart)) }

var monoStart = time.Now()
